//! `top pod`: the agent's metrics.k8s.io pod metrics, printed as `kubectl top pod` prints
//! them (CPU in millicores, memory in MiB, kubectl's sorting, empty-result messages).

use jiff::Timestamp;
use peapod_printers::align;
use serde::Deserialize;
use serde_json::Value;

use crate::args::{TopArgs, TopCommand, TopPodArgs};
use crate::client::{Client, ClientError};
use crate::console::Console;
use crate::error::CliError;
use crate::objects::{list_pods, pods};
use crate::query::{encode, Query};

const METRICS_API: &str = "/apis/metrics.k8s.io/v1beta1";
/// kubectl's `metricsCreationDelay`: younger pods may simply not have metrics yet.
const METRICS_CREATION_DELAY: std::time::Duration = std::time::Duration::from_secs(120);

/// What kubectl top refuses or reports as `error: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopError {
    #[error("--sort-by accepts only cpu or memory")]
    SortBy,
    #[error("only one of NAME or selector can be provided")]
    NameWithSelector,
    #[error("metrics not available yet")]
    NotAvailableYet,
    #[error("Metrics not available for pod {namespace}/{name}, age: {age}")]
    NotAvailable {
        namespace: String,
        name: String,
        age: String,
    },
    #[error("pod metrics {pod}: invalid {resource} quantity {value:?}")]
    Quantity {
        pod: String,
        resource: &'static str,
        value: String,
    },
}

/// Why `top` stopped: its own errors print here, the rest as every verb's do.
#[derive(Debug)]
enum Failure {
    Top(TopError),
    Cli(CliError),
}

impl From<TopError> for Failure {
    fn from(err: TopError) -> Self {
        Failure::Top(err)
    }
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        Failure::Cli(err.into())
    }
}

impl From<CliError> for Failure {
    fn from(err: CliError) -> Self {
        Failure::Cli(err)
    }
}

pub async fn top(client: &Client, args: TopArgs, console: &mut Console) -> Result<i32, CliError> {
    match args.command {
        TopCommand::Pod(args) => match top_pod(client, &args, console).await {
            Ok(code) => Ok(code),
            Err(Failure::Top(err)) => {
                console.eprintln(&format!("error: {err}"));
                Ok(1)
            }
            Err(Failure::Cli(err)) => Err(err),
        },
    }
}

/// Which column orders the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Namespace (with -A), then name.
    Name,
    Cpu,
    Memory,
}

impl SortBy {
    fn parse(flag: Option<&str>) -> Result<SortBy, TopError> {
        match flag.unwrap_or_default() {
            "" => Ok(SortBy::Name),
            "cpu" => Ok(SortBy::Cpu),
            "memory" => Ok(SortBy::Memory),
            _ => Err(TopError::SortBy),
        }
    }
}

async fn top_pod(
    client: &Client,
    args: &TopPodArgs,
    console: &mut Console,
) -> Result<i32, Failure> {
    let sort = SortBy::parse(args.sort_by.as_deref())?;
    let selector = args.selector.as_deref().filter(|s| !s.is_empty());
    if args.name.is_some() && selector.is_some() {
        return Err(TopError::NameWithSelector.into());
    }
    let namespace = args.namespace.as_deref().unwrap_or("default");
    let metrics = fetch(client, args, namespace, selector).await?;
    if metrics.is_empty() {
        verify_empty(client, namespace, selector, Timestamp::now()).await?;
        let scope = crate::fetch::Scope::new(Some(namespace), args.all_namespaces);
        console.eprintln(&scope.no_resources(&[]));
        return Ok(0);
    }
    let usages = metrics
        .iter()
        .map(PodUsage::from_metrics)
        .collect::<Result<Vec<_>, _>>()?;
    let layout = Layout {
        containers: args.containers,
        namespace: args.all_namespaces,
        headers: !args.no_headers,
        sort,
    };
    console.print(&render(usages, &layout))?;
    Ok(0)
}

/// The pod metrics asked for: one pod by name, else a list (namespace or all, selector).
async fn fetch(
    client: &Client,
    args: &TopPodArgs,
    namespace: &str,
    selector: Option<&str>,
) -> Result<Vec<PodMetrics>, ClientError> {
    if let Some(name) = &args.name {
        let path = format!("{}/{}", pod_metrics_path(Some(namespace)), encode(name));
        return Ok(vec![client.get_json(&path).await?]);
    }
    let scope = (!args.all_namespaces).then_some(namespace);
    let mut query = Query::new();
    query.opt("labelSelector", selector);
    let path = format!("{}{query}", pod_metrics_path(scope));
    let list: PodMetricsList = client.get_json(&path).await?;
    Ok(list.items)
}

/// `/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods`, or `.../pods` for all namespaces.
pub fn pod_metrics_path(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{METRICS_API}/namespaces/{}/pods", encode(ns)),
        None => format!("{METRICS_API}/pods"),
    }
}

/// kubectl's `verifyEmptyMetrics`: no pods at all is fine (an empty answer); pods but no
/// metrics is "not available yet", or names the first pod old enough to have had some.
/// Like kubectl, it looks in the current namespace even with -A.
async fn verify_empty(
    client: &Client,
    namespace: &str,
    selector: Option<&str>,
    now: Timestamp,
) -> Result<(), Failure> {
    let listed = list_pods(client, Some(namespace), selector).await?;
    let pods = pods("pods", &listed.items)?;
    if pods.is_empty() {
        return Ok(());
    }
    for pod in &pods {
        let created = pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(now, |t| t.0);
        let age = std::time::Duration::try_from(now.duration_since(created)).unwrap_or_default();
        if age > METRICS_CREATION_DELAY {
            return Err(TopError::NotAvailable {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                age: peapod_printers::go_duration(age),
            }
            .into());
        }
    }
    Err(TopError::NotAvailableYet.into())
}

// ----- the metrics.k8s.io schema (what top reads of it) ----------------------------------

#[derive(Debug, Clone, Deserialize)]
struct PodMetricsList {
    #[serde(default)]
    items: Vec<PodMetrics>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PodMetrics {
    #[serde(default)]
    metadata: MetricsMeta,
    #[serde(default)]
    containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct MetricsMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ContainerMetrics {
    name: String,
    #[serde(default)]
    usage: serde_json::Map<String, Value>,
}

// ----- usage and printing ----------------------------------------------------------------

/// CPU and memory in nano-units (nanocores, nanobytes), exact enough to sum like Quantities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu: i128,
    pub memory: i128,
}

impl Usage {
    /// Quantity.MilliValue(): rounded up.
    pub fn millicores(&self) -> i128 {
        ceil_div(self.cpu, 1_000_000)
    }

    /// Quantity.Value(): rounded up.
    pub fn bytes(&self) -> i128 {
        ceil_div(self.memory, 1_000_000_000)
    }

    fn add(self, other: Usage) -> Usage {
        Usage {
            cpu: self.cpu + other.cpu,
            memory: self.memory + other.memory,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<(String, Usage)>,
}

impl PodUsage {
    fn from_metrics(metrics: &PodMetrics) -> Result<PodUsage, TopError> {
        let pod = &metrics.metadata.name;
        let containers = metrics
            .containers
            .iter()
            .map(|c| {
                let usage = Usage {
                    cpu: quantity_of(pod, &c.usage, "cpu")?,
                    memory: quantity_of(pod, &c.usage, "memory")?,
                };
                Ok((c.name.clone(), usage))
            })
            .collect::<Result<Vec<_>, TopError>>()?;
        Ok(PodUsage {
            namespace: metrics.metadata.namespace.clone(),
            name: pod.clone(),
            containers,
        })
    }

    /// The pod's usage: its containers' summed (kubectl's getPodMetrics).
    pub fn total(&self) -> Usage {
        self.containers
            .iter()
            .fold(Usage::default(), |sum, (_, u)| sum.add(*u))
    }
}

/// A resource of a usage map; absent is zero, as an absent ResourceList entry is.
fn quantity_of(
    pod: &str,
    usage: &serde_json::Map<String, Value>,
    resource: &'static str,
) -> Result<i128, TopError> {
    let Some(value) = usage.get(resource) else {
        return Ok(0);
    };
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    parse_quantity(&text).ok_or(TopError::Quantity {
        pod: pod.to_string(),
        resource,
        value: text,
    })
}

/// How the table is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub containers: bool,
    pub namespace: bool,
    pub headers: bool,
    pub sort: SortBy,
}

/// kubectl's PrintPodMetrics: every cell tab-terminated (so the last column is padded too),
/// rows sorted by name or by usage, descending.
pub fn render(mut pods: Vec<PodUsage>, layout: &Layout) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    if layout.headers {
        let mut header = Vec::new();
        if layout.namespace {
            header.push("NAMESPACE");
        }
        if layout.containers {
            header.push("POD");
        }
        header.extend(["NAME", "CPU(cores)", "MEMORY(bytes)", ""]);
        rows.push(header.into_iter().map(String::from).collect());
    }
    sort_pods(&mut pods, layout);
    for pod in &mut pods {
        let prefix: Vec<String> = layout
            .namespace
            .then(|| pod.namespace.clone())
            .into_iter()
            .collect();
        if layout.containers {
            sort_containers(&mut pod.containers, layout.sort);
            for (name, usage) in &pod.containers {
                let mut row = prefix.clone();
                row.push(pod.name.clone());
                row.extend(cells(name, usage));
                rows.push(row);
            }
        } else {
            let mut row = prefix;
            row.extend(cells(&pod.name, &pod.total()));
            rows.push(row);
        }
    }
    align(&rows)
}

fn cells(name: &str, usage: &Usage) -> [String; 4] {
    [
        name.to_string(),
        format!("{}m", usage.millicores()),
        format!("{}Mi", usage.bytes() / (1024 * 1024)),
        String::new(),
    ]
}

fn sort_pods(pods: &mut [PodUsage], layout: &Layout) {
    match layout.sort {
        SortBy::Cpu => pods.sort_by_key(|p| std::cmp::Reverse(p.total().millicores())),
        SortBy::Memory => pods.sort_by_key(|p| std::cmp::Reverse(p.total().bytes())),
        SortBy::Name if layout.namespace => {
            pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
        }
        SortBy::Name => pods.sort_by(|a, b| a.name.cmp(&b.name)),
    }
}

fn sort_containers(containers: &mut [(String, Usage)], sort: SortBy) {
    match sort {
        SortBy::Cpu => containers.sort_by_key(|(_, u)| std::cmp::Reverse(u.millicores())),
        SortBy::Memory => containers.sort_by_key(|(_, u)| std::cmp::Reverse(u.bytes())),
        SortBy::Name => containers.sort_by(|a, b| a.0.cmp(&b.0)),
    }
}

// ----- quantities ------------------------------------------------------------------------

/// A Kubernetes Quantity ("250m", "1.5", "12345n", "64Mi", "1e3", "2E") in nano-units,
/// rounded up; None when it is not one.
pub fn parse_quantity(text: &str) -> Option<i128> {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    if !digits.chars().all(|c| c.is_ascii_digit()) || digits.len() > 30 {
        return None;
    }
    let mantissa: i128 = digits.parse().ok()?;
    let (exponent, binary) = suffix_scale(suffix)?;
    let exponent = exponent - fraction.len() as i32 + 9;
    let scaled = scale(
        mantissa.checked_mul(1024i128.checked_pow(binary)?)?,
        exponent,
    )?;
    Some(if negative { -scaled } else { scaled })
}

/// (power of ten, power of 1024) of a Quantity suffix.
fn suffix_scale(suffix: &str) -> Option<(i32, u32)> {
    let decimal = match suffix {
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "" => 0,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        _ => {
            let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            if let Some(i) = binary.iter().position(|b| *b == suffix) {
                return Some((0, i as u32 + 1));
            }
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            return Some((exponent.parse().ok()?, 0));
        }
    };
    Some((decimal, 0))
}

/// `value * 10^exponent`, rounded up when the exponent is negative.
fn scale(value: i128, exponent: i32) -> Option<i128> {
    let power = 10i128.checked_pow(exponent.unsigned_abs())?;
    if exponent >= 0 {
        value.checked_mul(power)
    } else {
        Some(ceil_div(value, power))
    }
}

fn ceil_div(value: i128, by: i128) -> i128 {
    let quotient = value / by;
    if value % by > 0 {
        quotient + 1
    } else {
        quotient
    }
}

/// The scripted agent of the crate's verb tests (tests.rs keeps its module private).
#[cfg(test)]
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "tests/fake.rs"]
mod fake;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use super::fake::{Buf, Fake, Reply};

    fn usage(cpu: &str, memory: &str) -> Usage {
        Usage {
            cpu: parse_quantity(cpu).unwrap(),
            memory: parse_quantity(memory).unwrap(),
        }
    }

    fn pod(namespace: &str, name: &str, containers: &[(&str, &str, &str)]) -> PodUsage {
        PodUsage {
            namespace: namespace.into(),
            name: name.into(),
            containers: containers
                .iter()
                .map(|(c, cpu, mem)| (c.to_string(), usage(cpu, mem)))
                .collect(),
        }
    }

    fn layout(containers: bool, namespace: bool, sort: SortBy) -> Layout {
        Layout {
            containers,
            namespace,
            headers: true,
            sort,
        }
    }

    #[test]
    fn quantities_parse_to_nano_units() {
        assert_eq!(parse_quantity("12345n"), Some(12_345));
        assert_eq!(parse_quantity("5m"), Some(5_000_000));
        assert_eq!(parse_quantity("1.5"), Some(1_500_000_000));
        assert_eq!(parse_quantity("2"), Some(2_000_000_000));
        assert_eq!(parse_quantity("12u"), Some(12_000));
        assert_eq!(parse_quantity("1Ki"), Some(1024 * 1_000_000_000));
        assert_eq!(
            parse_quantity("30Mi"),
            Some(30 << 20).map(|b: i128| b * 1_000_000_000)
        );
        assert_eq!(parse_quantity("1k"), Some(1_000_000_000_000));
        assert_eq!(parse_quantity("1e3"), Some(1_000_000_000_000));
        assert_eq!(parse_quantity("1E"), Some(10i128.pow(27)));
        assert_eq!(parse_quantity("0"), Some(0));
        for bad in ["", "m", "1x", "1.2.3", "Mi", "1e"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn kubectl_rounds_cpu_up_to_millicores_and_memory_down_to_mib() {
        let u = usage("12345n", "1048575");
        assert_eq!((u.millicores(), u.bytes() / (1 << 20)), (1, 0));
        let u = usage("987654321n", "36Mi");
        assert_eq!((u.millicores(), u.bytes() / (1 << 20)), (988, 36));
        // Summed exactly, then rounded: two 0.4m containers make 1m, not 2m.
        let p = pod("d", "p", &[("a", "400u", "0"), ("b", "400u", "0")]);
        assert_eq!(p.total().millicores(), 1);
    }

    #[test]
    fn pods_print_like_kubectl_top() {
        let pods = vec![
            pod("default", "mem", &[("c", "300000n", "30Mi")]),
            pod("default", "burner", &[("c", "987654321n", "1Mi")]),
        ];
        assert_eq!(
            render(pods, &layout(false, false, SortBy::Name)),
            "NAME     CPU(cores)   MEMORY(bytes)   \n\
             burner   988m         1Mi             \n\
             mem      1m           30Mi            \n"
        );
    }

    #[test]
    fn containers_and_namespaces_get_their_columns() {
        let pods = vec![
            pod("b", "web", &[("zz", "5m", "2Mi"), ("aa", "1m", "3Mi")]),
            pod("a", "web", &[("c", "0", "1Mi")]),
        ];
        let text = render(pods, &layout(true, true, SortBy::Name));
        assert_eq!(
            text,
            "NAMESPACE   POD   NAME   CPU(cores)   MEMORY(bytes)   \n\
             a           web   c      0m           1Mi             \n\
             b           web   aa     1m           3Mi             \n\
             b           web   zz     5m           2Mi             \n"
        );
        let bare = render(
            vec![pod("a", "web", &[("c", "0", "1Mi")])],
            &Layout {
                headers: false,
                ..layout(false, false, SortBy::Name)
            },
        );
        assert_eq!(bare, "web   0m    1Mi   \n", "columns are at least 6 wide");
    }

    #[test]
    fn sorting_by_usage_is_descending() {
        let pods = || {
            vec![
                pod("d", "a", &[("c", "1m", "50Mi")]),
                pod("d", "b", &[("c", "900m", "1Mi"), ("d", "100m", "1Mi")]),
                pod("d", "c", &[("c", "10m", "10Mi")]),
            ]
        };
        let names = |text: String| -> Vec<String> {
            text.lines()
                .skip(1)
                .map(|l| l.split_whitespace().next().unwrap().to_string())
                .collect()
        };
        let by_cpu = render(pods(), &layout(false, false, SortBy::Cpu));
        assert_eq!(names(by_cpu), ["b", "c", "a"]);
        let by_memory = render(pods(), &layout(false, false, SortBy::Memory));
        assert_eq!(names(by_memory), ["a", "c", "b"]);
        assert!(render(pods(), &layout(false, false, SortBy::Cpu)).contains("b      1000m "));
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(
            peapod_printers::go_duration(std::time::Duration::from_millis(183_250)),
            "3m3.25s"
        );
        assert_eq!(
            peapod_printers::go_duration(std::time::Duration::from_secs(7200)),
            "2h0m0s"
        );
    }

    // ----- the verb against a fake agent ---------------------------------------------------

    struct Outcome {
        code: i32,
        out: String,
        err: String,
    }

    async fn run(fake: &Fake, args: &[&str]) -> Outcome {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            command: crate::ClientCommand,
        }
        let cli =
            Cli::try_parse_from(std::iter::once("peapod").chain(args.iter().copied())).unwrap();
        let (out, err) = (Buf::default(), Buf::default());
        let mut console = Console::new(
            Box::new(out.clone()),
            Box::new(err.clone()),
            Box::new(std::io::empty()),
        );
        let code =
            crate::run_with(&Client::new(fake.socket.clone()), cli.command, &mut console).await;
        Outcome {
            code,
            out: out.text(),
            err: err.text(),
        }
    }

    fn metrics(name: &str, containers: &[(&str, &str, &str)]) -> Value {
        json!({
            "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "timestamp": "2024-01-01T00:00:00Z", "window": "500ms",
            "containers": containers.iter()
                .map(|(c, cpu, mem)| json!({"name": c, "usage": {"cpu": cpu, "memory": mem}}))
                .collect::<Vec<_>>()
        })
    }

    fn list(items: Vec<Value>) -> Value {
        json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items})
    }

    fn pod_list(created: &[Timestamp]) -> Value {
        let items: Vec<Value> = created
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({"metadata": {"name": format!("p{i}"), "namespace": "default",
                "creationTimestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}})
            })
            .collect();
        json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
    }

    #[tokio::test]
    async fn top_pods_lists_in_the_namespace_with_the_selector() {
        let fake = Fake::start(|_| {
            Reply::json(
                200,
                list(vec![metrics(
                    "web",
                    &[("a", "250m", "64Mi"), ("b", "250m", "64Mi")],
                )]),
            )
        });
        let o = run(&fake, &["top", "pods", "-n", "dev", "-l", "app=web"]).await;
        assert_eq!(o.code, 0, "{}", o.err);
        assert_eq!(
            o.out,
            "NAME   CPU(cores)   MEMORY(bytes)   \nweb    500m         128Mi           \n"
        );
        assert_eq!(
            fake.uris(),
            ["GET /apis/metrics.k8s.io/v1beta1/namespaces/dev/pods?labelSelector=app%3Dweb"]
        );
        let o = run(&fake, &["top", "pod", "-A", "--containers", "--no-headers"]).await;
        assert_eq!(
            o.out,
            "default   web   a     250m   64Mi   \ndefault   web   b     250m   64Mi   \n"
        );
        assert_eq!(fake.uris()[1], "GET /apis/metrics.k8s.io/v1beta1/pods");
    }

    #[tokio::test]
    async fn a_pod_without_metrics_is_the_servers_not_found() {
        let fake = Fake::start(|_| Reply::not_found("podmetrics.metrics.k8s.io", "x"));
        let o = run(&fake, &["top", "pod", "x"]).await;
        assert_eq!(o.code, 1);
        assert_eq!(o.out, "");
        assert_eq!(
            o.err,
            "Error from server (NotFound): podmetrics.metrics.k8s.io \"x\" not found\n"
        );
        assert_eq!(
            fake.uris(),
            ["GET /apis/metrics.k8s.io/v1beta1/namespaces/default/pods/x"]
        );
    }

    #[tokio::test]
    async fn no_metrics_for_young_pods_is_not_available_yet() {
        let fake = Fake::start(|req| {
            if req.path().starts_with("/apis/metrics") {
                Reply::json(200, list(vec![]))
            } else {
                Reply::json(200, pod_list(&[Timestamp::now()]))
            }
        });
        let o = run(&fake, &["top", "pod"]).await;
        assert_eq!(
            (o.code, o.err.as_str()),
            (1, "error: metrics not available yet\n")
        );
    }

    #[tokio::test]
    async fn no_metrics_for_an_old_pod_names_it() {
        let old = Timestamp::now() - jiff::SignedDuration::from_secs(600);
        let fake = Fake::start(move |req| {
            if req.path().starts_with("/apis/metrics") {
                Reply::json(200, list(vec![]))
            } else {
                Reply::json(200, pod_list(&[old]))
            }
        });
        let o = run(&fake, &["top", "pod"]).await;
        assert_eq!(o.code, 1);
        assert!(
            o.err
                .starts_with("error: Metrics not available for pod default/p0, age: 10m"),
            "{}",
            o.err
        );
    }

    #[tokio::test]
    async fn no_pods_at_all_is_an_empty_answer() {
        let fake = Fake::start(|req| {
            if req.path().starts_with("/apis/metrics") {
                Reply::json(200, list(vec![]))
            } else {
                Reply::json(200, pod_list(&[]))
            }
        });
        let o = run(&fake, &["top", "pod", "-n", "dev"]).await;
        assert_eq!((o.code, o.out.as_str()), (0, ""));
        assert_eq!(o.err, "No resources found in dev namespace.\n");
        let o = run(&fake, &["top", "pod", "-A"]).await;
        assert_eq!(o.err, "No resources found\n");
    }

    #[tokio::test]
    async fn bad_flags_are_refused_before_asking() {
        let fake = Fake::start(|_| Reply::json(200, list(vec![])));
        let o = run(&fake, &["top", "pod", "--sort-by", "name"]).await;
        assert_eq!(
            (o.code, o.err.as_str()),
            (1, "error: --sort-by accepts only cpu or memory\n")
        );
        let o = run(&fake, &["top", "pod", "x", "-l", "a=b"]).await;
        assert_eq!(
            o.err,
            "error: only one of NAME or selector can be provided\n"
        );
        assert!(fake.uris().is_empty());
    }
}
