//! Services, DNS and Ingress (issue 16), each case on a fresh agent with a Service range,
//! NodePort range and ingress ports of its own:
//! - rule programming: with 10, 100 and 1000 selectorless Services (hand-written Endpoints,
//!   mirrored into EndpointSlices) pointing at one busybox httpd pod, the time from the POST
//!   of one more Service (its Endpoints written before) to the first GET the pod answers
//!   through its cluster IP from the host, and from the POST of the Endpoints of a Service
//!   that had none;
//!   beside kube's published figure (kube-proxy is not packaged for Debian);
//! - the data path from the host: GETs of a small file, a connection each, and a 100 MiB
//!   transfer, through the cluster IP against the pod IP directly;
//! - DNS (see `dns`) and Ingress (see `ingress`), each beside a peer.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::api::call;
use crate::workloads::{delete_all, ms, send, wait_until};
use crate::{report, Agent, Options, POD_CIDR};

mod dns;
mod ingress;

/// Apart from the e2e tests' 100.64.0.0/10 ranges and the default 10.43.0.0/16.
const SERVICE_CIDR: &str = "10.232.0.0/16";
/// Above the e2e tests' NodePort slots (30000-32719).
const NODE_PORTS: &str = "32720-32767";
const INGRESS_HTTP_PORT: u16 = 18080;
const INGRESS_HTTPS_PORT: u16 = 18443;
/// The Debian packages of the peers; a missing one skips its comparison.
const PEERS_INSTALL: &str = "apt-get install dnsperf dnsmasq-base wrk nginx-light";
const SERVICES: &str = "/api/v1/namespaces/default/services";
const ENDPOINTS: &str = "/api/v1/namespaces/default/endpoints";
const PODS: &str = "/api/v1/namespaces/default/pods";
const SCALES: [usize; 3] = [10, 100, 1000];
/// Services (and Endpoints) timed at each scale.
const PROBES: usize = 10;
/// A connect attempt's timeout, and the pause between attempts refused at once.
const CONNECT_POLL: Duration = Duration::from_millis(1);
/// Time for the proxy to drop a removed probe before the next one is timed.
const SETTLE: Duration = Duration::from_millis(200);
const GETS: usize = 1000;
const BIG_MIB: usize = 100;
const TRANSFERS: usize = 3;
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(120);
const KUBE_FIGURE: &str = "kube-proxy (nftables mode), as published (kubernetes PR #126013): \
                           141 ms to add one Service when 10 000 exist";

/// One case: it measures and prints its figures.
type Case = fn(&Options) -> Result<()>;

/// The cases, by the names `--service-cases` takes.
const CASES: [(&str, Case); 4] = [
    ("rules", rule_programming),
    ("data", data_path),
    ("dns", dns::run),
    ("ingress", ingress::run),
];

/// Runs the chosen cases (all by default) and prints the figures.
pub(crate) fn run(options: &Options) -> Result<()> {
    println!("peapod: Services, DNS and Ingress (Service range {SERVICE_CIDR})");
    let chosen = |name: &str| {
        options.service_cases.is_empty() || options.service_cases.iter().any(|c| c == name)
    };
    for (name, case) in CASES {
        if chosen(name) {
            case(options)?;
        }
    }
    Ok(())
}

/// The case names of a `--service-cases` value, each checked.
pub(crate) fn cases(value: &str) -> Result<Vec<String>> {
    let names: Vec<String> = value.split(',').map(|c| c.trim().to_owned()).collect();
    for name in &names {
        if !CASES.iter().any(|(known, _)| known == name) {
            let known: Vec<&str> = CASES.iter().map(|(known, _)| *known).collect();
            bail!(
                "--service-cases: no case {name:?} (the cases: {})",
                known.join(", ")
            );
        }
    }
    Ok(names)
}

/// Runs `body` on an agent of its own (the bench's ranges and ports), then deletes its pods
/// and stops it, required to stop cleanly.
fn fresh_agent(options: &Options, body: impl FnOnce(&Agent) -> Result<()>) -> Result<()> {
    let root = tempfile::Builder::new()
        .prefix("peapod-bench-services-")
        .tempdir()?;
    let http = INGRESS_HTTP_PORT.to_string();
    let https = INGRESS_HTTPS_PORT.to_string();
    let env = [
        ("PEAPOD_SERVICE_CIDR", SERVICE_CIDR),
        ("PEAPOD_SERVICE_NODE_PORT_RANGE", NODE_PORTS),
        ("PEAPOD_INGRESS_HTTP_PORT", http.as_str()),
        ("PEAPOD_INGRESS_HTTPS_PORT", https.as_str()),
    ];
    let mut agent = Agent::start_with_env(options, root.path(), &env)?;
    // A failed case still deletes its pods: the agent leaves them running when it stops.
    let measured = body(&agent);
    let deleted = delete_all(&agent, root.path(), PODS);
    measured.and(deleted).and(agent.stop_cleanly())
}

/// The first address of the bench's pod range: the bridge's, where the cluster DNS listens.
fn gateway() -> Ipv4Addr {
    let network: Ipv4Addr = POD_CIDR
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("the bench's pod range");
    Ipv4Addr::from(u32::from(network) + 1)
}

/// A busybox httpd pod labelled `app` serving /index.html (and with `big`, a 100 MiB /big)
/// on 8080.
fn web_pod(name: &str, app: &str, big: bool) -> Value {
    let big = if big {
        format!("dd if=/dev/zero of=/www/big bs=1048576 count={BIG_MIB} 2>/dev/null && ")
    } else {
        String::new()
    };
    let script = format!(
        "mkdir -p /www && echo hello from {name} > /www/index.html && {big}exec httpd -f -p 8080 -h /www"
    );
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "web", "image": "busybox", "command": ["sh", "-c", script]}],
        },
    })
}

/// Starts the pods and returns their IPs once each accepts connections on 8080.
fn start_pods(agent: &Agent, pods: &[Value]) -> Result<Vec<Ipv4Addr>> {
    for pod in pods {
        send(agent, "POST", PODS, pod)?;
    }
    let mut ips = Vec::new();
    for pod in pods {
        let path = format!("{PODS}/{}", pod["metadata"]["name"].as_str().unwrap_or(""));
        wait_until(agent, &path, |p| {
            p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string()
        })?;
        let (_, body) = call(&agent.socket, "GET", &path, "application/json", "")?;
        let pod: Value = serde_json::from_str(&body)?;
        let ip: Ipv4Addr = pod["status"]["podIP"].as_str().unwrap_or("").parse()?;
        first_connect(SocketAddr::from((ip, 8080)), Instant::now())?;
        ips.push(ip);
    }
    Ok(ips)
}

/// A ClusterIP Service on port 80 to 8080, selecting `app` when given.
fn service(name: &str, app: Option<&str>) -> Value {
    let mut spec = json!({"ports": [{"name": "http", "port": 80, "targetPort": 8080}]});
    if let Some(app) = app {
        spec["selector"] = json!({ "app": app });
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

/// Endpoints of one address, on the port named as the Service's.
fn endpoints(name: &str, pod: Ipv4Addr) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
        "subsets": [{"addresses": [{"ip": pod.to_string()}],
                     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}],
    })
}

/// POSTs the Service and returns the cluster IP it was given.
fn create_service(agent: &Agent, service: &Value) -> Result<Ipv4Addr> {
    let (code, body) = call(
        &agent.socket,
        "POST",
        SERVICES,
        "application/json",
        &service.to_string(),
    )?;
    if code != 201 {
        bail!("POST {SERVICES}: {code} {body}");
    }
    let created: Value = serde_json::from_str(&body)?;
    let ip = created["spec"]["clusterIP"].as_str().unwrap_or("");
    ip.parse()
        .with_context(|| format!("the Service's cluster IP {ip:?}"))
}

/// Milliseconds from `started` to the first accepted TCP connection to `address`, tried every
/// `CONNECT_POLL`; fails after `TIMEOUT`.
fn first_connect(address: SocketAddr, started: Instant) -> Result<f64> {
    loop {
        let attempt = Instant::now();
        if TcpStream::connect_timeout(&address, CONNECT_POLL).is_ok() {
            return Ok(ms(started));
        }
        if started.elapsed() > TIMEOUT {
            bail!("{address} refused connections for {} s", TIMEOUT.as_secs());
        }
        std::thread::sleep(CONNECT_POLL.saturating_sub(attempt.elapsed()));
    }
}

/// Milliseconds from `started` to the first GET of /index.html through `address` that a
/// pod answers, tried every `CONNECT_POLL`; fails after `TIMEOUT`. A connect alone proves
/// nothing where the default route accepts any TCP connection itself (a transparent proxy):
/// a cluster IP without rules yet would seem to work.
fn first_answer(address: SocketAddr, started: Instant) -> Result<f64> {
    loop {
        let attempt = Instant::now();
        if pod_answers(address) {
            return Ok(ms(started));
        }
        if started.elapsed() > TIMEOUT {
            bail!(
                "no pod answered through {address} for {} s",
                TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(CONNECT_POLL.saturating_sub(attempt.elapsed()));
    }
}

/// Whether a GET of /index.html through `address` gets a `web_pod`'s page.
fn pod_answers(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, CONNECT_POLL) else {
        return false;
    };
    let mut answer = String::new();
    stream.set_read_timeout(Some(IO_TIMEOUT)).is_ok()
        && write!(stream, "GET /index.html HTTP/1.0\r\nHost: bench\r\n\r\n").is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.contains("hello from ")
}

/// Waits until `address` refuses at once (the rule of a Service without endpoints).
fn wait_refused(address: SocketAddr) -> Result<()> {
    let started = Instant::now();
    loop {
        match TcpStream::connect_timeout(&address, IO_TIMEOUT) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(()),
            _ if started.elapsed() > TIMEOUT => bail!("{address} never refused"),
            _ => std::thread::sleep(CONNECT_POLL),
        }
    }
}

/// Rule programming latency at each scale, for a new Service and for new Endpoints.
fn rule_programming(options: &Options) -> Result<()> {
    println!(
        "  rule programming: API write -> first GET the pod answers through the cluster IP \
         from the host (tried every {} ms), {PROBES} writes per scale",
        CONNECT_POLL.as_millis()
    );
    fresh_agent(options, |agent| {
        let pod = start_pods(agent, &[web_pod("target", "target", false)])?[0];
        let mut existing = 0;
        for scale in SCALES {
            fill(agent, existing..scale, pod)?;
            existing = scale;
            let mut services = Vec::new();
            let mut endpoint_writes = Vec::new();
            for probe in 0..PROBES {
                let name = format!("probe-{scale}-{probe}");
                services.push(new_service_latency(agent, &name, pod)?);
                remove(agent, &name)?;
                endpoint_writes.push(new_endpoints_latency(agent, &name, pod)?);
                remove(agent, &name)?;
            }
            report(
                &format!("{scale} Services: POST of a Service (its Endpoints there)"),
                &mut services,
            );
            report(
                &format!("{scale} Services: POST of the Endpoints of a Service without"),
                &mut endpoint_writes,
            );
        }
        Ok(())
    })?;
    println!("  {KUBE_FIGURE}");
    Ok(())
}

/// Creates the Services `svc-N` of `range` with their Endpoints, four writers at once, and
/// waits until the last one connects.
fn fill(agent: &Agent, range: std::ops::Range<usize>, pod: Ipv4Addr) -> Result<()> {
    const WRITERS: usize = 4;
    let last = std::thread::scope(|scope| -> Result<Option<Ipv4Addr>> {
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let range = range.clone();
                scope.spawn(move || -> Result<Option<Ipv4Addr>> {
                    let mut last = None;
                    for i in range.skip(writer).step_by(WRITERS) {
                        let name = format!("svc-{i}");
                        send(agent, "POST", ENDPOINTS, &endpoints(&name, pod))?;
                        last = Some(create_service(agent, &service(&name, None))?);
                    }
                    Ok(last)
                })
            })
            .collect();
        let mut last = None;
        for writer in writers {
            last = writer.join().expect("writer thread")?.or(last);
        }
        Ok(last)
    })?;
    if let Some(ip) = last {
        first_answer(SocketAddr::from((ip, 80)), Instant::now())?;
    }
    Ok(())
}

/// Milliseconds from the POST of a Service whose Endpoints exist to its first connection.
fn new_service_latency(agent: &Agent, name: &str, pod: Ipv4Addr) -> Result<f64> {
    send(agent, "POST", ENDPOINTS, &endpoints(name, pod))?;
    let started = Instant::now();
    let ip = create_service(agent, &service(name, None))?;
    first_answer(SocketAddr::from((ip, 80)), started)
}

/// Milliseconds from the POST of the Endpoints of a Service that refused (none) to its first
/// connection.
fn new_endpoints_latency(agent: &Agent, name: &str, pod: Ipv4Addr) -> Result<f64> {
    let ip = create_service(agent, &service(name, None))?;
    let address = SocketAddr::from((ip, 80));
    wait_refused(address)?;
    let started = Instant::now();
    send(agent, "POST", ENDPOINTS, &endpoints(name, pod))?;
    first_answer(address, started)
}

/// Deletes the Service and Endpoints `name` (which the endpoints controller may have deleted
/// with the Service, as kube's does), then lets the proxy catch up.
fn remove(agent: &Agent, name: &str) -> Result<()> {
    for collection in [SERVICES, ENDPOINTS] {
        let path = format!("{collection}/{name}");
        let (code, body) = call(&agent.socket, "DELETE", &path, "application/json", "")?;
        let gone = code == 404 && collection == ENDPOINTS;
        if !(200..300).contains(&code) && !gone {
            bail!("DELETE {path}: {code} {body}");
        }
    }
    std::thread::sleep(SETTLE);
    Ok(())
}

/// GETs through the cluster IP against the pod IP, then 100 MiB transfers.
fn data_path(options: &Options) -> Result<()> {
    fresh_agent(options, |agent| {
        let pod = start_pods(agent, &[web_pod("web", "web", true)])?[0];
        let cluster_ip = create_service(agent, &service("web", Some("web")))?;
        let cluster = SocketAddr::from((cluster_ip, 80));
        first_answer(cluster, Instant::now())?;
        let direct = SocketAddr::from((pod, 8080));
        let mut medians = Vec::new();
        for (label, address) in [("pod IP", direct), ("cluster IP", cluster)] {
            get_times(address, GETS / 10)?;
            let mut times = get_times(address, GETS)?;
            report(
                &format!("{label}: {GETS} GETs of /index.html from the host, a connection each"),
                &mut times,
            );
            medians.push(crate::percentile(&mut times, 50.0));
        }
        println!(
            "  the cluster IP adds {:.3} ms at p50",
            medians[1] - medians[0]
        );
        for (label, address) in [("pod IP", direct), ("cluster IP", cluster)] {
            let best = (0..TRANSFERS)
                .map(|_| transfer_mb_per_s(address))
                .collect::<Result<Vec<f64>>>()?
                .into_iter()
                .fold(0.0, f64::max);
            println!("  {label}: {BIG_MIB} MiB GET: {best:.0} MB/s (best of {TRANSFERS})");
        }
        Ok(())
    })
}

/// Milliseconds of each of `count` GETs of /index.html, connect to the last byte.
fn get_times(address: SocketAddr, count: usize) -> Result<Vec<f64>> {
    (0..count)
        .map(|_| {
            let started = Instant::now();
            get(address, "/index.html")?;
            Ok(ms(started))
        })
        .collect()
}

fn transfer_mb_per_s(address: SocketAddr) -> Result<f64> {
    let started = Instant::now();
    let bytes = get(address, "/big")?;
    if bytes < BIG_MIB << 20 {
        bail!("GET /big from {address}: {bytes} bytes");
    }
    Ok(bytes as f64 / started.elapsed().as_secs_f64() / 1e6)
}

/// An HTTP/1.0 GET on a connection of its own: the bytes received, headers included; fails
/// unless the status is 200.
fn get(address: SocketAddr, path: &str) -> Result<usize> {
    let mut stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n")?;
    let mut buffer = vec![0u8; 256 << 10];
    let mut total = 0;
    loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        if total == 0 && buffer.get(9..12) != Some(b"200".as_slice()) {
            let line = String::from_utf8_lossy(&buffer[..read.min(40)]).into_owned();
            bail!("GET {path} from {address}: {line}");
        }
        total += read;
    }
    Ok(total)
}

/// A peer's process (dnsmasq, nginx), stopped with SIGTERM (SIGKILL after 5 s) when dropped.
struct Peer {
    child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: kill has no preconditions; the pid is our own child's, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a peer is skipped, when `program` is missing.
fn missing(program: &str) -> Option<String> {
    (!crate::which(program))
        .then(|| format!("  {program} not installed ({PEERS_INSTALL}): its comparison is skipped"))
}

/// The file's text, for a peer's error.
fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
