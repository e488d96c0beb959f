//! The metrics.k8s.io/v1beta1 API as metrics-server serves it (`PodMetrics`, `NodeMetrics` and
//! their lists), measured from cgroups (the running containers', and the root's for the node):
//! memory is the working set, CPU the rate of the cumulative usage counter between two samples.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_api::selector::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::agent::api::Shared;

const API_VERSION: &str = "metrics.k8s.io/v1beta1";
/// The node's memory where its root cgroup has no memory files (cgroup v2).
const MEMINFO: &str = "/proc/meminfo";
/// A previous sample younger than this gives too noisy a rate: sample afresh.
const MIN_WINDOW: Duration = Duration::from_millis(100);
/// A previous sample older than this says little about the current rate: sample afresh.
const MAX_WINDOW: Duration = Duration::from_secs(60);
/// The pause between the two samples of a fresh measurement.
const FRESH_WINDOW: Duration = Duration::from_millis(500);
/// Samples of containers nobody asked about for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Nothing measured for an object that exists (`resource` is `podmetrics` or
    /// `nodemetrics`, as metrics-server names its resources in errors).
    #[error("{resource}.metrics.k8s.io \"{name}\" not found")]
    NotFound {
        resource: &'static str,
        name: String,
    },
    /// No such Node: metrics-server passes on its node lister's error.
    #[error("node \"{name}\" not found")]
    NoNode { name: String },
    #[error("unable to parse requirement: {0}")]
    Selector(#[from] peapod_api::selector::SelectorError),
    #[error(transparent)]
    Store(#[from] peapod_store::StoreError),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no {field} in {content:?}")]
    Parse {
        path: PathBuf,
        field: &'static str,
        content: String,
    },
    #[error("no {controller} cgroup for {relative}")]
    NoCgroup {
        controller: &'static str,
        relative: String,
    },
}

impl MetricsError {
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            MetricsError::NotFound { .. } | MetricsError::NoNode { .. } => {
                (StatusCode::NOT_FOUND, "NotFound")
            }
            MetricsError::Selector(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            MetricsError::Store(err) => (
                StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                err.reason(),
            ),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }
}

impl IntoResponse for MetricsError {
    fn into_response(self) -> Response {
        let (code, reason) = self.status();
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": reason,
            "code": code.as_u16(),
        });
        match &self {
            MetricsError::NotFound { resource, name } => {
                body["details"] =
                    json!({"name": name, "group": "metrics.k8s.io", "kind": resource});
            }
            MetricsError::NoNode { name } => {
                body["details"] = json!({"name": name, "kind": "node"})
            }
            _ => {}
        }
        (code, Json(body)).into_response()
    }
}

// ----- schema ----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetrics {
    pub kind: String,
    pub api_version: String,
    pub metadata: MetricsMeta,
    pub timestamp: String,
    pub window: String,
    pub containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsMeta {
    pub name: String,
    pub namespace: String,
    pub creation_timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerMetrics {
    pub name: String,
    pub usage: Usage,
}

/// Quantities as metrics-server writes them: cpu in nanocores ("12345n"), memory in bytes
/// ("1234Ki").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub cpu: String,
    pub memory: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetricsList {
    pub kind: String,
    pub api_version: String,
    pub metadata: serde_json::Value,
    pub items: Vec<PodMetrics>,
}

/// The node's usage: its root cgroup, as kubelet reports the node to metrics-server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetrics {
    pub kind: String,
    pub api_version: String,
    pub metadata: NodeMetricsMeta,
    pub timestamp: String,
    pub window: String,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetricsMeta {
    pub name: String,
    pub creation_timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetricsList {
    pub kind: String,
    pub api_version: String,
    pub metadata: serde_json::Value,
    pub items: Vec<NodeMetrics>,
}

// ----- handlers --------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricsParams {
    label_selector: Option<String>,
}

/// `GET /apis/metrics.k8s.io/v1beta1/pods`
pub async fn list_all_pod_metrics(
    State(ctx): State<Shared>,
    Query(params): Query<MetricsParams>,
) -> Result<Json<PodMetricsList>, MetricsError> {
    list_response(&ctx, None, &params).await
}

/// `GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods`
pub async fn list_pod_metrics(
    State(ctx): State<Shared>,
    UrlPath(ns): UrlPath<String>,
    Query(params): Query<MetricsParams>,
) -> Result<Json<PodMetricsList>, MetricsError> {
    list_response(&ctx, Some(&ns), &params).await
}

/// `GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{name}`: NotFound unless a
/// container of the pod runs, as metrics-server answers for pods it has no metrics of.
pub async fn get_pod_metrics(
    State(ctx): State<Shared>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
) -> Result<Json<PodMetrics>, MetricsError> {
    let pods: Vec<Pod> = ctx.store.get::<Pod>(&ns, &name)?.into_iter().collect();
    let cgroups = Cgroups::host();
    measure(&cgroups, &ctx.paths.cgroup_parent(), &pods)
        .await
        .pop()
        .map(Json)
        .ok_or(MetricsError::NotFound {
            resource: "podmetrics",
            name,
        })
}

impl MetricsParams {
    /// Whether an object with `labels` is selected (everything without a selector).
    fn selects(&self) -> Result<impl Fn(&ObjectMeta) -> bool, MetricsError> {
        let selector = self
            .label_selector
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::parse::<LabelSelector>)
            .transpose()?;
        Ok(move |meta: &ObjectMeta| {
            let empty = BTreeMap::new();
            selector
                .as_ref()
                .is_none_or(|s| s.matches(meta.labels.as_ref().unwrap_or(&empty)))
        })
    }
}

async fn list_response(
    ctx: &Shared,
    ns: Option<&str>,
    params: &MetricsParams,
) -> Result<Json<PodMetricsList>, MetricsError> {
    let selects = params.selects()?;
    let pods: Vec<Pod> = ctx
        .store
        .list::<Pod>(ns)?
        .into_iter()
        .filter(|p| selects(&p.metadata))
        .collect();
    let items = measure(&Cgroups::host(), &ctx.paths.cgroup_parent(), &pods).await;
    Ok(Json(PodMetricsList {
        kind: "PodMetricsList".into(),
        api_version: API_VERSION.into(),
        metadata: json!({}),
        items,
    }))
}

/// `GET /apis/metrics.k8s.io/v1beta1/nodes`
pub async fn list_node_metrics(
    State(ctx): State<Shared>,
    Query(params): Query<MetricsParams>,
) -> Result<Json<NodeMetricsList>, MetricsError> {
    let selects = params.selects()?;
    let nodes: Vec<Node> = ctx.store.list::<Node>(None)?;
    let selected: Vec<Node> = nodes.into_iter().filter(|n| selects(&n.metadata)).collect();
    Ok(Json(NodeMetricsList {
        kind: "NodeMetricsList".into(),
        api_version: API_VERSION.into(),
        metadata: json!({}),
        items: node_metrics(&ctx.node_name, &selected).await,
    }))
}

/// `GET /apis/metrics.k8s.io/v1beta1/nodes/{name}`: metrics-server's answers, the node
/// lister's NotFound for a Node that does not exist and a NotFound on nodemetrics for one that
/// could not be measured.
pub async fn get_node_metrics(
    State(ctx): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<NodeMetrics>, MetricsError> {
    let node = ctx.store.get::<Node>("", &name)?;
    let node = node.ok_or_else(|| MetricsError::NoNode { name: name.clone() })?;
    node_metrics(&ctx.node_name, &[node])
        .await
        .pop()
        .map(Json)
        .ok_or(MetricsError::NotFound {
            resource: "nodemetrics",
            name,
        })
}

/// The metrics of the agent's own node when `nodes` holds it (the only node it can measure).
async fn node_metrics(own: &str, nodes: &[Node]) -> Vec<NodeMetrics> {
    let Some(node) = nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(own))
    else {
        return Vec::new();
    };
    let root = match Cgroups::host().node(Path::new(MEMINFO)) {
        Ok(root) => root,
        Err(err) => {
            tracing::debug!(%err, "node without metrics");
            return Vec::new();
        }
    };
    let Some(Some(measured)) = measure_cgroups(&[&root]).await.pop() else {
        return Vec::new();
    };
    let stamp = time_text(jiff::Timestamp::now());
    vec![NodeMetrics {
        kind: "NodeMetrics".into(),
        api_version: API_VERSION.into(),
        metadata: NodeMetricsMeta {
            name: own.to_owned(),
            creation_timestamp: stamp.clone(),
            labels: node.metadata.labels.clone(),
        },
        timestamp: stamp,
        window: window_text(measured.window),
        usage: measured.usage(),
    }]
}

// ----- measuring -------------------------------------------------------------------------

/// One running container to measure.
struct Target {
    pod: usize,
    name: String,
    cgroup: ContainerCgroup,
}

/// What one cgroup measured.
#[derive(Debug, Clone, Copy)]
struct Measurement {
    nanocores: u64,
    working_set: u64,
    window: Duration,
}

impl Measurement {
    fn usage(&self) -> Usage {
        Usage {
            cpu: cpu_quantity(self.nanocores),
            memory: memory_quantity(self.working_set),
        }
    }
}

/// What one container measured.
struct Measured {
    pod: usize,
    name: String,
    measurement: Measurement,
}

/// The metrics of every pod of `pods` that has a running container whose cgroup could be
/// read, in the order of `pods`.
pub async fn measure(cgroups: &Cgroups, parent: &str, pods: &[Pod]) -> Vec<PodMetrics> {
    let targets = targets(cgroups, parent, pods);
    let found: Vec<&ContainerCgroup> = targets.iter().map(|t| &t.cgroup).collect();
    let measurements = measure_cgroups(&found).await;
    let measured: Vec<Measured> = targets
        .into_iter()
        .zip(measurements)
        .filter_map(|(target, measurement)| {
            Some(Measured {
                pod: target.pod,
                name: target.name,
                measurement: measurement?,
            })
        })
        .collect();
    assemble(pods, measured, jiff::Timestamp::now())
}

/// The CPU rate and working set of each cgroup (`None` for one that could not be read).
/// Waits [`FRESH_WINDOW`] once when some cgroup has no usable previous sample.
async fn measure_cgroups(cgroups: &[&ContainerCgroup]) -> Vec<Option<Measurement>> {
    let first: Vec<Option<Sample>> = cgroups.iter().map(|c| c.sample().ok()).collect();
    let mut rates: Vec<Option<(u64, Duration)>> = cgroups
        .iter()
        .zip(&first)
        .map(|(cgroup, now)| rate_since(previous(cgroup)?, (*now)?))
        .collect();
    if rates
        .iter()
        .zip(&first)
        .any(|(r, f)| r.is_none() && f.is_some())
    {
        tokio::time::sleep(FRESH_WINDOW).await;
    }
    complete_rates(cgroups, &first, &mut rates);
    cgroups
        .iter()
        .zip(rates)
        .map(|(cgroup, rate)| {
            let (nanocores, window) = rate?;
            Some(Measurement {
                nanocores,
                working_set: cgroup.working_set().ok()?,
                window,
            })
        })
        .collect()
}

/// Takes the second sample of the cgroups that have no rate yet, and remembers each
/// cgroup's latest sample for the next request.
fn complete_rates(
    cgroups: &[&ContainerCgroup],
    first: &[Option<Sample>],
    rates: &mut [Option<(u64, Duration)>],
) {
    for ((cgroup, now), rate_slot) in cgroups.iter().zip(first).zip(rates.iter_mut()) {
        let Some(now) = *now else { continue };
        let latest = match rate_slot {
            Some(_) => now,
            None => match cgroup.sample() {
                Ok(later) => {
                    *rate_slot = rate(now, later);
                    later
                }
                Err(_) => continue,
            },
        };
        remember(cgroup, latest);
    }
}

/// The running containers of `pods` whose cgroup has both a CPU counter and memory files.
fn targets(cgroups: &Cgroups, parent: &str, pods: &[Pod]) -> Vec<Target> {
    let mut targets = Vec::new();
    for (index, pod) in pods.iter().enumerate() {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        for (name, id) in running_containers(pod) {
            let relative = format!("{}/pod{uid}/{id}", parent.trim_matches('/'));
            match cgroups.container(&relative) {
                Ok(cgroup) => targets.push(Target {
                    pod: index,
                    name,
                    cgroup,
                }),
                Err(err) => tracing::debug!(%err, "container without metrics"),
            }
        }
    }
    targets
}

/// (name, runtime id) of each container of the pod that runs (restartable init containers
/// included), in status order.
fn running_containers(pod: &Pod) -> Vec<(String, String)> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .filter(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
        .filter_map(|s| {
            let id = s.container_id.as_deref()?.strip_prefix("peapod://")?;
            Some((s.name.clone(), id.to_string()))
        })
        .collect()
}

fn assemble(pods: &[Pod], measured: Vec<Measured>, now: jiff::Timestamp) -> Vec<PodMetrics> {
    let stamp = time_text(now);
    let mut items: Vec<PodMetrics> = Vec::new();
    let mut windows: Vec<Duration> = Vec::new();
    let mut last_pod = None;
    for m in measured {
        if last_pod != Some(m.pod) {
            let pod = &pods[m.pod];
            items.push(PodMetrics {
                kind: "PodMetrics".into(),
                api_version: API_VERSION.into(),
                metadata: MetricsMeta {
                    name: pod.metadata.name.clone().unwrap_or_default(),
                    namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                    creation_timestamp: stamp.clone(),
                    labels: pod.metadata.labels.clone(),
                },
                timestamp: stamp.clone(),
                window: String::new(),
                containers: Vec::new(),
            });
            windows.push(Duration::ZERO);
            last_pod = Some(m.pod);
        }
        let (item, window) = (items.last_mut(), windows.last_mut());
        if let (Some(item), Some(window)) = (item, window) {
            *window = (*window).max(m.measurement.window);
            item.containers.push(ContainerMetrics {
                name: m.name,
                usage: m.measurement.usage(),
            });
        }
    }
    for (item, window) in items.iter_mut().zip(windows) {
        item.window = window_text(window);
    }
    items
}

/// A time as Kubernetes writes it (RFC 3339, to the second).
fn time_text(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A window as metrics-server writes it: a Go duration, to the millisecond.
fn window_text(window: Duration) -> String {
    peapod_printers::go_duration(Duration::from_millis(window.as_millis() as u64))
}

// ----- samples and rates -----------------------------------------------------------------

/// The cumulative CPU time of a container at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub usage_ns: u64,
    pub at: Instant,
}

/// Each container's latest sample, by its CPU counter file (unique per agent and container).
fn samples() -> &'static Mutex<HashMap<PathBuf, Sample>> {
    static SAMPLES: OnceLock<Mutex<HashMap<PathBuf, Sample>>> = OnceLock::new();
    SAMPLES.get_or_init(Default::default)
}

fn previous(cgroup: &ContainerCgroup) -> Option<Sample> {
    let samples = samples().lock().unwrap_or_else(|e| e.into_inner());
    samples.get(cgroup.cpu.path()).copied()
}

fn remember(cgroup: &ContainerCgroup, sample: Sample) {
    let mut samples = samples().lock().unwrap_or_else(|e| e.into_inner());
    samples.retain(|_, s| sample.at.duration_since(s.at) < FORGET_AFTER);
    samples.insert(cgroup.cpu.path().to_path_buf(), sample);
}

/// Nanocores used between two samples, and the window; None when the counter went back or
/// no time passed.
pub fn rate(earlier: Sample, later: Sample) -> Option<(u64, Duration)> {
    let window = later.at.checked_duration_since(earlier.at)?;
    let used = later.usage_ns.checked_sub(earlier.usage_ns)?;
    let nanos = window.as_nanos();
    (nanos > 0).then(|| ((u128::from(used) * 1_000_000_000 / nanos) as u64, window))
}

/// The rate since a remembered sample, when its age makes a meaningful window.
fn rate_since(previous: Sample, now: Sample) -> Option<(u64, Duration)> {
    let (nanocores, window) = rate(previous, now)?;
    (MIN_WINDOW..=MAX_WINDOW)
        .contains(&window)
        .then_some((nanocores, window))
}

// ----- cgroup files ----------------------------------------------------------------------

/// Where the cgroup hierarchies are mounted: v2 unified at the root itself, v1 one directory
/// per hierarchy (cpuacct, memory, ...), or both (hybrid).
#[derive(Debug, Clone)]
pub struct Cgroups {
    root: PathBuf,
}

/// The container's cumulative CPU counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuCounter {
    /// v1 `cpuacct.usage`, nanoseconds.
    V1(PathBuf),
    /// v2 `cpu.stat` line `usage_usec`.
    V2(PathBuf),
}

impl CpuCounter {
    fn path(&self) -> &Path {
        match self {
            CpuCounter::V1(p) | CpuCounter::V2(p) => p,
        }
    }
}

/// The files the working set is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryFiles {
    /// v1 `memory.usage_in_bytes` and `memory.stat` (`total_inactive_file`).
    V1 { usage: PathBuf, stat: PathBuf },
    /// v2 `memory.current` and `memory.stat` (`inactive_file`).
    V2 { current: PathBuf, stat: PathBuf },
    /// `/proc/meminfo`, for the v2 root cgroup, which has no `memory.current`: in use is
    /// `MemTotal` − `MemFree` (runc's root statistics), less `Inactive(file)`.
    Meminfo(PathBuf),
}

/// One container's cgroup files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    pub cpu: CpuCounter,
    pub memory: MemoryFiles,
}

impl Cgroups {
    pub fn host() -> Cgroups {
        Cgroups::at("/sys/fs/cgroup")
    }

    pub fn at(root: impl Into<PathBuf>) -> Cgroups {
        Cgroups { root: root.into() }
    }

    /// The directories that may hold `relative`: each v1 hierarchy, then the unified root.
    fn candidates(&self, relative: &str) -> Vec<PathBuf> {
        let relative = relative.trim_start_matches('/');
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(relative))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        let unified = self.root.join(relative);
        if self.root.join("cgroup.controllers").is_file() && unified.is_dir() {
            dirs.push(unified);
        }
        dirs
    }

    /// Locates the CPU counter and memory files of the cgroup at `relative` (below each
    /// hierarchy's root), v1 files first.
    pub fn container(&self, relative: &str) -> Result<ContainerCgroup, MetricsError> {
        self.locate(relative, None)
    }

    /// The node's cgroup, as kubelet measures the node: the hierarchies' roots, with
    /// `meminfo` for memory where the root has no memory files.
    pub fn node(&self, meminfo: &Path) -> Result<ContainerCgroup, MetricsError> {
        self.locate("", Some(meminfo))
    }

    fn locate(
        &self,
        relative: &str,
        meminfo: Option<&Path>,
    ) -> Result<ContainerCgroup, MetricsError> {
        let dirs = self.candidates(relative);
        let find = |file: &str| dirs.iter().map(|d| d.join(file)).find(|p| p.is_file());
        let missing = |controller| MetricsError::NoCgroup {
            controller,
            relative: relative.to_string(),
        };
        let cpu = find("cpuacct.usage")
            .map(CpuCounter::V1)
            .or_else(|| find("cpu.stat").map(CpuCounter::V2))
            .ok_or_else(|| missing("cpu"))?;
        let memory = match find("memory.usage_in_bytes") {
            Some(usage) => MemoryFiles::V1 {
                stat: usage.with_file_name("memory.stat"),
                usage,
            },
            None => match (find("memory.current"), meminfo) {
                (Some(current), _) => MemoryFiles::V2 {
                    stat: current.with_file_name("memory.stat"),
                    current,
                },
                (None, Some(meminfo)) => MemoryFiles::Meminfo(meminfo.to_path_buf()),
                (None, None) => return Err(missing("memory")),
            },
        };
        Ok(ContainerCgroup { cpu, memory })
    }
}

impl ContainerCgroup {
    /// Cumulative CPU time in nanoseconds.
    pub fn cpu_usage_ns(&self) -> Result<u64, MetricsError> {
        match &self.cpu {
            CpuCounter::V1(path) => parse_single(path, &read(path)?, "cpuacct.usage"),
            CpuCounter::V2(path) => {
                let usec = stat_value(path, &read(path)?, "usage_usec")?;
                Ok(usec.saturating_mul(1000))
            }
        }
    }

    pub fn sample(&self) -> Result<Sample, MetricsError> {
        let usage_ns = self.cpu_usage_ns()?;
        Ok(Sample {
            usage_ns,
            at: Instant::now(),
        })
    }

    /// Memory in use minus inactive file cache, floored at 0 (containerd's getWorkingSet).
    pub fn working_set(&self) -> Result<u64, MetricsError> {
        let (usage, usage_path, stat, key) = match &self.memory {
            MemoryFiles::V1 { usage, stat } => {
                (usage, "memory.usage_in_bytes", stat, "total_inactive_file")
            }
            MemoryFiles::V2 { current, stat } => (current, "memory.current", stat, "inactive_file"),
            MemoryFiles::Meminfo(path) => {
                let content = read(path)?;
                let field = |key| meminfo_bytes(path, &content, key);
                let used = field("MemTotal")?.saturating_sub(field("MemFree")?);
                return Ok(used.saturating_sub(field("Inactive(file)")?));
            }
        };
        let used = parse_single(usage, &read(usage)?, usage_path)?;
        let inactive = stat_value(stat, &read(stat)?, key)?;
        Ok(used.saturating_sub(inactive))
    }
}

fn read(path: &Path) -> Result<String, MetricsError> {
    std::fs::read_to_string(path).map_err(|source| MetricsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A file holding one number.
pub fn parse_single(path: &Path, content: &str, field: &'static str) -> Result<u64, MetricsError> {
    content.trim().parse().map_err(|_| MetricsError::Parse {
        path: path.to_path_buf(),
        field,
        content: content.to_string(),
    })
}

/// The value of `key` in a flat keyed file (`memory.stat`, `cpu.stat`: "key value" lines).
pub fn stat_value(path: &Path, content: &str, key: &'static str) -> Result<u64, MetricsError> {
    content
        .lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .ok_or_else(|| MetricsError::Parse {
            path: path.to_path_buf(),
            field: key,
            content: content.to_string(),
        })
}

/// A `/proc/meminfo` field (`MemTotal:  16384 kB`) in bytes.
pub fn meminfo_bytes(path: &Path, content: &str, key: &'static str) -> Result<u64, MetricsError> {
    content
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| MetricsError::Parse {
            path: path.to_path_buf(),
            field: key,
            content: content.to_string(),
        })
}

// ----- quantities and durations ----------------------------------------------------------

/// Nanocores as metrics-server's `NewScaledQuantity(n, -9)` serializes: canonical DecimalSI
/// ("12345n", "5m", "1500m", "2").
pub fn cpu_quantity(nanocores: u64) -> String {
    decimal_si(nanocores, -9)
}

/// Bytes as `NewQuantity(b, BinarySI)` serializes: "1234Ki", "30Mi", "1500"; below 1024 the
/// DecimalSI form ("1k" for 1000).
pub fn memory_quantity(bytes: u64) -> String {
    if bytes < 1024 {
        return decimal_si(bytes, 0);
    }
    let (mut amount, mut power) = (bytes, 0usize);
    while amount % 1024 == 0 && power < 6 {
        amount /= 1024;
        power += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
    format!("{amount}{suffix}")
}

/// `mantissa * 10^exponent` in canonical DecimalSI: trailing zeros removed, then the exponent
/// brought down to a multiple of 3 with its SI suffix.
fn decimal_si(mantissa: u64, exponent: i32) -> String {
    if mantissa == 0 {
        return "0".to_string();
    }
    let (mut amount, mut exponent) = (u128::from(mantissa), exponent);
    while amount % 10 == 0 {
        amount /= 10;
        exponent += 1;
    }
    let extra = exponent.rem_euclid(3);
    amount *= 10u128.pow(extra as u32);
    exponent -= extra;
    let suffix = match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        other => return format!("{amount}e{other}"),
    };
    format!("{amount}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REL: &str = "/peapod/podu1/c1";

    fn write(path: &Path, content: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// A v1 layout as this machine has it: separate cpu, cpuacct and memory hierarchies.
    fn v1_fixture(root: &Path, usage_ns: u64) {
        std::fs::create_dir_all(root.join("cpu").join(&REL[1..])).unwrap();
        write(
            &root.join("cpuacct").join(&REL[1..]).join("cpuacct.usage"),
            &format!("{usage_ns}\n"),
        );
        let memory = root.join("memory").join(&REL[1..]);
        write(&memory.join("memory.usage_in_bytes"), "41943040\n");
        write(
            &memory.join("memory.stat"),
            "cache 8388608\nrss 31457280\ninactive_file 1\ntotal_cache 8388608\ntotal_inactive_file 4194304\n",
        );
    }

    fn v2_fixture(root: &Path) {
        write(&root.join("cgroup.controllers"), "cpu memory pids\n");
        let dir = root.join(&REL[1..]);
        write(
            &dir.join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
        );
        write(&dir.join("memory.current"), "10485760\n");
        write(
            &dir.join("memory.stat"),
            "anon 8388608\nfile 2097152\nactive_file 1048576\ninactive_file 1048576\n",
        );
    }

    #[test]
    fn v1_files_give_usage_and_working_set() {
        let root = tempfile::tempdir().unwrap();
        v1_fixture(root.path(), 123_456_789);
        let cgroup = Cgroups::at(root.path()).container(REL).unwrap();
        assert!(matches!(cgroup.cpu, CpuCounter::V1(_)));
        assert!(matches!(cgroup.memory, MemoryFiles::V1 { .. }));
        assert_eq!(cgroup.cpu_usage_ns().unwrap(), 123_456_789);
        assert_eq!(cgroup.working_set().unwrap(), 41_943_040 - 4_194_304);
    }

    #[test]
    fn v2_files_give_usage_and_working_set() {
        let root = tempfile::tempdir().unwrap();
        v2_fixture(root.path());
        let cgroup = Cgroups::at(root.path()).container(REL).unwrap();
        assert!(matches!(cgroup.cpu, CpuCounter::V2(_)));
        assert_eq!(cgroup.cpu_usage_ns().unwrap(), 2_500_000_000);
        assert_eq!(cgroup.working_set().unwrap(), 10_485_760 - 1_048_576);
    }

    #[test]
    fn working_set_is_floored_at_zero() {
        let root = tempfile::tempdir().unwrap();
        v2_fixture(root.path());
        write(
            &root.path().join(&REL[1..]).join("memory.current"),
            "4096\n",
        );
        let cgroup = Cgroups::at(root.path()).container(REL).unwrap();
        assert_eq!(cgroup.working_set().unwrap(), 0);
    }

    #[test]
    fn a_missing_cgroup_or_key_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let err = Cgroups::at(root.path()).container(REL).unwrap_err();
        assert_eq!(err.to_string(), format!("no cpu cgroup for {REL}"));
        let err = stat_value(Path::new("/x/cpu.stat"), "user_usec 5\n", "usage_usec").unwrap_err();
        assert!(
            err.to_string().starts_with("/x/cpu.stat: no usage_usec"),
            "{err}"
        );
        assert_eq!(stat_value(Path::new("x"), "a 1\nb 2\n", "b").unwrap(), 2);
        assert!(parse_single(Path::new("x"), "max\n", "memory.current").is_err());
    }

    fn sample(usage_ns: u64, at: Instant) -> Sample {
        Sample { usage_ns, at }
    }

    #[test]
    fn rate_is_counter_delta_over_time() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(
            rate(sample(1_000, t0), sample(250_001_000, t1)),
            Some((500_000_000, Duration::from_millis(500)))
        );
        assert_eq!(
            rate(sample(5, t0), sample(4, t1)),
            None,
            "counter went back"
        );
        assert_eq!(rate(sample(5, t0), sample(5, t0)), None, "no time passed");
    }

    #[test]
    fn remembered_samples_need_a_meaningful_age() {
        let t0 = Instant::now();
        let young = t0 + Duration::from_millis(50);
        let old = t0 + Duration::from_secs(120);
        assert_eq!(rate_since(sample(0, t0), sample(10, young)), None);
        assert_eq!(rate_since(sample(0, t0), sample(10, old)), None);
        let ok = t0 + Duration::from_secs(2);
        assert_eq!(
            rate_since(sample(0, t0), sample(1_000_000_000, ok)),
            Some((500_000_000, Duration::from_secs(2)))
        );
    }

    #[test]
    fn cpu_quantities_are_canonical_decimal_si() {
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(cpu_quantity(12_345), "12345n");
        assert_eq!(cpu_quantity(12_000), "12u");
        assert_eq!(cpu_quantity(1_200_000), "1200u");
        assert_eq!(cpu_quantity(5_000_000), "5m");
        assert_eq!(cpu_quantity(1_500_000_000), "1500m");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(987_654_321), "987654321n");
    }

    #[test]
    fn memory_quantities_are_canonical_binary_si() {
        assert_eq!(memory_quantity(0), "0");
        assert_eq!(memory_quantity(500), "500");
        assert_eq!(memory_quantity(1000), "1k");
        assert_eq!(memory_quantity(1024), "1Ki");
        assert_eq!(memory_quantity(1500), "1500");
        assert_eq!(memory_quantity(1234 * 1024), "1234Ki");
        assert_eq!(memory_quantity(30 * 1024 * 1024), "30Mi");
        assert_eq!(memory_quantity(3 * 1024 * 1024 * 1024), "3Gi");
    }

    fn pod(name: &str, containers: &[(&str, Option<&str>)]) -> Pod {
        let statuses: Vec<serde_json::Value> = containers
            .iter()
            .map(|(c, id)| {
                let state = match id {
                    Some(_) => json!({"running": {"startedAt": "2024-01-01T00:00:00Z"}}),
                    None => json!({"waiting": {"reason": "ContainerCreating"}}),
                };
                json!({"name": c, "image": "busybox", "imageID": "", "ready": true,
                       "restartCount": 0, "state": state,
                       "containerID": id.map(|i| format!("peapod://{i}"))})
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"containers": containers.iter().map(|(c, _)| json!({"name": c})).collect::<Vec<_>>()},
            "status": {"phase": "Running", "containerStatuses": statuses}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn measuring_samples_twice_and_reports_running_containers() {
        let root = tempfile::tempdir().unwrap();
        v1_fixture(root.path(), 1_000_000_000);
        let counter = root
            .path()
            .join("cpuacct")
            .join(&REL[1..])
            .join("cpuacct.usage");
        let bump = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            std::fs::write(counter, "1250000000\n").unwrap();
        });
        let pods = [
            pod("web", &[("c1", Some("c1")), ("side", None)]),
            pod("idle", &[("c", None)]),
        ];
        let started = Instant::now();
        let items = measure(&Cgroups::at(root.path()), "/peapod", &pods).await;
        bump.await.unwrap();
        assert!(started.elapsed() >= FRESH_WINDOW);
        assert_eq!(items.len(), 1, "{items:?}");
        let web = &items[0];
        assert_eq!(
            (web.kind.as_str(), web.api_version.as_str()),
            ("PodMetrics", API_VERSION)
        );
        assert_eq!(web.metadata.name, "web");
        assert_eq!(web.metadata.labels.as_ref().unwrap()["app"], "x");
        assert!(
            web.window.ends_with("ms") && web.window.starts_with('5'),
            "{}",
            web.window
        );
        assert_eq!(web.containers.len(), 1);
        assert_eq!(web.containers[0].name, "c1");
        assert_eq!(web.containers[0].usage.memory, "36Mi");
        let cpu = &web.containers[0].usage.cpu;
        let nanocores: u64 = cpu.trim_end_matches('n').parse().unwrap();
        assert!((400_000_000..=500_000_000).contains(&nanocores), "{cpu}");

        // A second look right away has a young previous sample: it measures afresh (no
        // change meanwhile: zero), and a look 200 ms later reuses the remembered one.
        let again = measure(&Cgroups::at(root.path()), "/peapod", &pods).await;
        assert_eq!(again[0].containers[0].usage.cpu, "0");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let reused = measure(&Cgroups::at(root.path()), "/peapod", &pods).await;
        assert!(started.elapsed() < FRESH_WINDOW);
        assert!(reused[0].window.starts_with('2'), "{}", reused[0].window);
    }

    #[test]
    fn not_found_is_a_kubernetes_status() {
        let not_found = |resource| MetricsError::NotFound {
            resource,
            name: "x".into(),
        };
        let response = not_found("podmetrics").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            not_found("podmetrics").to_string(),
            "podmetrics.metrics.k8s.io \"x\" not found"
        );
        assert_eq!(
            not_found("nodemetrics").to_string(),
            "nodemetrics.metrics.k8s.io \"x\" not found"
        );
        let no_node = MetricsError::NoNode { name: "x".into() };
        assert_eq!(no_node.to_string(), "node \"x\" not found");
        assert_eq!(no_node.into_response().status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_node_is_the_root_cgroup() {
        let root = tempfile::tempdir().unwrap();
        write(&root.path().join("cpuacct/cpuacct.usage"), "7000\n");
        write(
            &root.path().join("memory/memory.usage_in_bytes"),
            "41943040\n",
        );
        write(
            &root.path().join("memory/memory.stat"),
            "total_inactive_file 4194304\n",
        );
        let node = Cgroups::at(root.path())
            .node(Path::new("/nonexistent"))
            .unwrap();
        assert_eq!(node.cpu_usage_ns().unwrap(), 7000);
        assert_eq!(node.working_set().unwrap(), 41_943_040 - 4_194_304);
    }

    #[test]
    fn the_v2_root_has_its_memory_from_meminfo() {
        let root = tempfile::tempdir().unwrap();
        write(&root.path().join("cgroup.controllers"), "cpu memory\n");
        write(&root.path().join("cpu.stat"), "usage_usec 3\n");
        let meminfo = root.path().join("meminfo");
        write(
            &meminfo,
            "MemTotal:       16384 kB\nMemFree:         4096 kB\nInactive(file):  2048 kB\n",
        );
        let node = Cgroups::at(root.path()).node(&meminfo).unwrap();
        assert_eq!(node.memory, MemoryFiles::Meminfo(meminfo.clone()));
        assert_eq!(node.cpu_usage_ns().unwrap(), 3000);
        assert_eq!(node.working_set().unwrap(), (16384 - 4096 - 2048) * 1024);
        let err = meminfo_bytes(&meminfo, "MemFree: 1 kB\n", "MemTotal").unwrap_err();
        assert!(err.to_string().contains("no MemTotal"), "{err}");
        assert!(Cgroups::at(root.path()).container("").is_err());
    }
}
