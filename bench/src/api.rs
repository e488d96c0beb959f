//! API server benchmarks (issue 12), on a fresh agent with an empty store:
//! - the agent's resident memory idle, and after 1000 ConfigMaps;
//! - a GET of one object over the socket (p50/p99 over 1000 requests);
//! - 1000 ConfigMaps created by 8 concurrent clients (per-request p50/p99, total time);
//! - listing them: the server's time for the Table kubectl asks for, and `kubectl get cm` as a
//!   whole command (when kubectl is installed);
//! - watch fan-out: 100 watchers, 1000 changes, the delay from each write's answer to its event
//!   at each watcher (p50/p99).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{report, which, Agent, Options};

const OBJECTS: usize = 1000;
const CLIENTS: usize = 8;
const WATCHERS: usize = 100;
const CHANGES: usize = 1000;
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

pub fn run(options: &Options) -> Result<()> {
    let root = tempfile::Builder::new()
        .prefix("peapod-bench-api-")
        .tempdir()?;
    let mut agent = Agent::spawn(&options.peapod, root.path())?;
    std::thread::sleep(Duration::from_secs(2));
    println!("peapod: API server");
    println!("  agent RSS idle: {} KiB", agent.rss_kib());
    get_latency(&agent)?;
    create_concurrently(&agent)?;
    println!(
        "  agent RSS with {OBJECTS} ConfigMaps: {} KiB",
        agent.rss_kib()
    );
    list_latency(&agent, root.path())?;
    watch_fan_out(&agent)?;
    agent.stop_cleanly()
}

/// One HTTP/1.1 request on a new connection; the status code and the body.
pub(crate) fn call(
    socket: &Path,
    method: &str,
    path: &str,
    accept: &str,
    body: &str,
) -> Result<(u16, String)> {
    let mut stream = UnixStream::connect(socket)?;
    let content_type = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: peapod\r\nConnection: close\r\nAccept: {accept}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((code, body.to_owned()))
}

fn config_map(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
           "data": {"key": "value", "other": "x".repeat(64)}})
    .to_string()
}

const CONFIG_MAPS: &str = "/api/v1/namespaces/default/configmaps";

fn get_latency(agent: &Agent) -> Result<()> {
    let (code, body) = call(
        &agent.socket,
        "POST",
        CONFIG_MAPS,
        "application/json",
        &config_map("probe"),
    )?;
    if code != 201 {
        bail!("creating a ConfigMap: {code} {body}");
    }
    let path = format!("{CONFIG_MAPS}/probe");
    let mut samples = Vec::with_capacity(OBJECTS);
    for _ in 0..OBJECTS {
        let started = Instant::now();
        let (code, _) = call(&agent.socket, "GET", &path, "application/json", "")?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        if code != 200 {
            bail!("GET {path}: {code}");
        }
    }
    report("GET one ConfigMap over the socket", &mut samples);
    Ok(())
}

fn create_concurrently(agent: &Agent) -> Result<()> {
    let samples = Arc::new(Mutex::new(Vec::with_capacity(OBJECTS)));
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (socket, samples) = (agent.socket.clone(), samples.clone());
            std::thread::spawn(move || -> Result<()> {
                for i in (client..OBJECTS).step_by(CLIENTS) {
                    let begun = Instant::now();
                    let (code, body) = call(
                        &socket,
                        "POST",
                        CONFIG_MAPS,
                        "application/json",
                        &config_map(&format!("cm-{i:04}")),
                    )?;
                    if code != 201 {
                        bail!("creating cm-{i:04}: {code} {body}");
                    }
                    samples
                        .lock()
                        .unwrap()
                        .push(begun.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a client thread")?;
    }
    let total = started.elapsed().as_secs_f64() * 1000.0;
    let mut samples = samples.lock().unwrap().clone();
    report(
        &format!("create {OBJECTS} ConfigMaps, {CLIENTS} clients, per request"),
        &mut samples,
    );
    println!("  create {OBJECTS} ConfigMaps, {CLIENTS} clients: {total:.0} ms in all");
    Ok(())
}

fn list_latency(agent: &Agent, root: &Path) -> Result<()> {
    let what = format!("{} ConfigMaps", OBJECTS + 1);
    list_timings(agent, root, CONFIG_MAPS, "cm", &what)
}

/// The server's time for the first 500-object page of `collection` as the Table kubectl asks
/// for, and `kubectl get RESOURCE` as a whole command over HTTPS (when kubectl is installed).
pub fn list_timings(
    agent: &Agent,
    root: &Path,
    collection: &str,
    resource: &str,
    what: &str,
) -> Result<()> {
    let mut server = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let path = format!("{collection}?limit=500");
        let (code, body) = call(&agent.socket, "GET", &path, TABLE, "")?;
        server.push(started.elapsed().as_secs_f64() * 1000.0);
        if code != 200 || !body.contains("\"Table\"") {
            bail!("listing {what} as a Table: {code}");
        }
    }
    report(
        &format!("list {what} as a Table (server, first 500-object page)"),
        &mut server,
    );
    if !which("kubectl") {
        println!("  kubectl not installed: `kubectl get {resource}` not timed");
        return Ok(());
    }
    let kubeconfig = root.join("var/lib/peapod/kubeconfig.yaml");
    let cache = tempfile::tempdir()?;
    let mut whole = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", resource])
            .env("KUBECACHEDIR", cache.path())
            .stdout(Stdio::null())
            .output()?;
        whole.push(started.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            bail!("kubectl get {resource}: {stderr}");
        }
    }
    report(
        &format!("kubectl get {resource} over {what} (whole command, HTTPS)"),
        &mut whole,
    );
    Ok(())
}

/// 100 watchers of ConfigMaps; a writer patches one ConfigMap 1000 times; each event's delay
/// is its arrival at a watcher minus the moment its write was answered.
fn watch_fan_out(agent: &Agent) -> Result<()> {
    let (_, body) = call(
        &agent.socket,
        "GET",
        &format!("{CONFIG_MAPS}/probe"),
        "application/json",
        "",
    )?;
    let object: Value = serde_json::from_str(&body).context("the probe ConfigMap")?;
    let from = object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_owned();
    let epoch = Instant::now();
    let ready = Arc::new(Barrier::new(WATCHERS + 1));
    let arrivals = Arc::new(Mutex::new(Vec::with_capacity(WATCHERS * CHANGES)));
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| {
            let (socket, ready, arrivals, from) = (
                agent.socket.clone(),
                ready.clone(),
                arrivals.clone(),
                from.clone(),
            );
            std::thread::spawn(move || watcher(&socket, &from, epoch, &ready, &arrivals))
        })
        .collect();
    ready.wait();
    std::thread::sleep(Duration::from_millis(500));
    let mut answered = std::collections::HashMap::new();
    for i in 0..CHANGES {
        let patch = json!({"data": {"key": format!("value-{i}")}}).to_string();
        let (code, body) = call(
            &agent.socket,
            "PATCH",
            &format!("{CONFIG_MAPS}/probe"),
            "application/json",
            &patch,
        )?;
        if code != 200 {
            bail!("patching the probe: {code} {body}");
        }
        let patched: Value = serde_json::from_str(&body)?;
        let rv = patched["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        answered.insert(rv, epoch.elapsed());
    }
    for watcher in watchers {
        watcher.join().expect("a watcher thread")?;
    }
    let mut delays: Vec<f64> = arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(rv, at): &(String, Duration)| {
            let sent = answered.get(rv)?;
            Some(at.saturating_sub(*sent).as_secs_f64() * 1000.0)
        })
        .collect();
    if delays.len() != WATCHERS * CHANGES {
        bail!(
            "watchers saw {} of {} events",
            delays.len(),
            WATCHERS * CHANGES
        );
    }
    report(
        &format!("watch fan-out, {WATCHERS} watchers x {CHANGES} changes, write answered -> event"),
        &mut delays,
    );
    Ok(())
}

fn watcher(
    socket: &Path,
    from: &str,
    epoch: Instant,
    ready: &Barrier,
    arrivals: &Mutex<Vec<(String, Duration)>>,
) -> Result<()> {
    let mut stream = UnixStream::connect(socket)?;
    let path = format!("{CONFIG_MAPS}?watch=true&resourceVersion={from}&fieldSelector=metadata.name%3Dprobe&timeoutSeconds=120");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: peapod\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    super::skip_headers(&mut reader)?;
    ready.wait();
    let mut seen = Vec::with_capacity(CHANGES);
    let mut line = String::new();
    while seen.len() < CHANGES {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("a watch ended after {} events", seen.len());
        }
        // Chunk-size lines such as `412` are JSON numbers: only objects are events.
        let Ok(event @ Value::Object(_)) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let rv = event["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        seen.push((rv.to_owned(), epoch.elapsed()));
    }
    arrivals.lock().unwrap().extend(seen);
    Ok(())
}
