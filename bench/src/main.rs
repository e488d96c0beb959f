//! Pod start benchmark: apply the S1 seed pod and time until every container is Running (as
//! the agent's watch reports it), network included, then time its deletion; report p50/p99,
//! and the resident memory of each pod's shim. Then a burst: N copies of the pod applied at
//! once, timed until all run, with the agent's and shims' memory per pod. With podman
//! installed, the same pod and a burst of 20 through `podman kube play` in the same run.
//!
//! Then the pull benchmark (see `pull`): a local registry's multi-layer image pulled by
//! `peapod pull` into a fresh agent and by `podman pull`, side by side.
//!
//! The agent runs on its own bridge (ppbench0) and range (10.199.0.0/16), removed at the end.
//!
//! Usage: peapod-bench [--runs N] [--burst N] [--pull-runs N] [--pull-only | --skip-pull]
//!                     [--peapod PATH] [--images DIR] [--manifest FILE]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

mod pull;
#[path = "../../crates/peapod-image/tests/support/registry.rs"]
mod registry;

const BRIDGE: &str = "ppbench0";
const POD_CIDR: &str = "10.199.0.0/16";
const PODMAN_BURST: usize = 20;

struct Options {
    runs: usize,
    burst: usize,
    pull_runs: usize,
    pods: bool,
    pull: bool,
    peapod: PathBuf,
    images: PathBuf,
    manifest: PathBuf,
}

fn options() -> Result<Options> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut options = Options {
        runs: 20,
        burst: 100,
        pull_runs: 5,
        pods: true,
        pull: true,
        peapod: repo.join("target/release/peapod"),
        images: repo.join("target/test-images"),
        manifest: repo.join("examples/s1-web-content-sidecar.yaml"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pull-only" => options.pods = false,
            "--skip-pull" => options.pull = false,
            _ => {
                let value = args
                    .next()
                    .with_context(|| format!("{arg} needs a value"))?;
                set_option(&mut options, &arg, value)?;
            }
        }
    }
    if !options.pods && !options.pull {
        bail!("--pull-only and --skip-pull together leave nothing to measure");
    }
    Ok(options)
}

fn set_option(options: &mut Options, name: &str, value: String) -> Result<()> {
    match name {
        "--runs" => options.runs = value.parse()?,
        "--burst" => options.burst = value.parse()?,
        "--pull-runs" => options.pull_runs = value.parse()?,
        "--peapod" => options.peapod = value.into(),
        "--images" => options.images = value.into(),
        "--manifest" => options.manifest = value.into(),
        other => bail!("unknown option {other}"),
    }
    Ok(())
}

fn main() -> Result<()> {
    let options = options()?;
    if options.pods {
        pod_bench(&options)?;
    }
    if options.pull {
        pull::run(&options)?;
    }
    Ok(())
}

/// The S1 pod's start and delete latencies, the burst, and podman's kube play beside them.
fn pod_bench(options: &Options) -> Result<()> {
    let root = tempfile::Builder::new().prefix("peapod-bench-").tempdir()?;
    let mut agent = Agent::start(options, root.path())?;
    let manifest = std::fs::read_to_string(&options.manifest)?;
    let pod_json = to_json(&manifest)?;
    let name = pod_json["metadata"]["name"]
        .as_str()
        .unwrap_or("example-pod")
        .to_string();

    let mut starts = Vec::new();
    let mut deletes = Vec::new();
    let mut rss = Vec::new();
    let _ = agent.start_pod(&pod_json, &name)?; // warm-up
    agent.delete_pod(&name)?;
    for _ in 0..options.runs {
        starts.push(agent.start_pod(&pod_json, &name)?);
        rss.push(shim_rss_kib(root.path())?);
        deletes.push(agent.delete_pod(&name)?);
    }
    println!(
        "peapod: S1 pod ({} containers), {} runs",
        pod_json["spec"]["containers"]
            .as_array()
            .map_or(0, |c| c.len()),
        options.runs
    );
    report("apply -> all containers Running", &mut starts);
    report("delete (grace 0) -> pod gone", &mut deletes);
    let max_rss = rss.iter().map(|(total, _)| *total).max().unwrap_or(0);
    let max_anon = rss.iter().map(|(_, anon)| *anon).max().unwrap_or(0);
    println!(
        "  shim memory per pod: RSS max {max_rss} KiB, of which private (anonymous) max {max_anon} KiB; the rest is the shared binary's page cache"
    );

    let burst = agent.burst(&pod_json, options.burst, root.path())?;
    println!("peapod: {} S1 pods applied at once", options.burst);
    println!(
        "  apply -> all {} pods Running: {:.0} ms ({:.1} ms per pod)",
        options.burst,
        burst.running_ms,
        burst.running_ms / options.burst as f64
    );
    println!(
        "  memory per pod: agent {:.0} KiB (RSS {} KiB for all), shims private {:.0} KiB",
        burst.agent_rss_kib as f64 / options.burst as f64,
        burst.agent_rss_kib,
        burst.shims_anon_kib as f64 / options.burst as f64
    );
    println!(
        "  delete all (grace 0) -> all gone: {:.0} ms",
        burst.delete_ms
    );

    if which("podman") {
        let mut podman = podman_runs(options, &manifest)?;
        report("podman kube play (same pod)", &mut podman);
        let ratio = percentile(&mut podman, 50.0) / percentile(&mut starts, 50.0);
        println!("  p50 ratio podman / peapod: {ratio:.1}x");
        let podman_burst = podman_burst(&manifest, PODMAN_BURST)?;
        println!(
            "  podman kube play of {PODMAN_BURST} pods at once: {:.0} ms ({:.1} ms per pod; peapod {:.1})",
            podman_burst,
            podman_burst / PODMAN_BURST as f64,
            burst.running_ms / options.burst as f64
        );
    } else {
        println!(
            "podman: not installed (../shared/tools/podman-peer-setup installs it); no comparison"
        );
    }
    agent.stop();
    Ok(())
}

struct Burst {
    running_ms: f64,
    delete_ms: f64,
    agent_rss_kib: u64,
    shims_anon_kib: u64,
}

fn report(what: &str, samples: &mut [f64]) {
    println!(
        "  {what}: p50 {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms",
        percentile(samples, 50.0),
        percentile(samples, 99.0),
        samples.iter().cloned().fold(f64::INFINITY, f64::min),
        samples.iter().cloned().fold(0.0, f64::max)
    );
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if samples.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    /// An agent on `root` with the busybox test image loaded.
    fn start(options: &Options, root: &Path) -> Result<Agent> {
        let agent = Agent::spawn(&options.peapod, root)?;
        let status = Command::new(&options.peapod)
            .args(["load", "-i"])
            .arg(options.images.join("busybox-oci.tar"))
            .env("PEAPOD_ROOT", root)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("loading the busybox image failed (build it with tests/images/build.sh target/test-images)");
        }
        Ok(agent)
    }

    /// An agent on `root` (an empty store), once its socket answers.
    fn spawn(peapod: &Path, root: &Path) -> Result<Agent> {
        let child = Command::new(peapod)
            .arg("serve")
            .env("PEAPOD_ROOT", root)
            .env("PEAPOD_BRIDGE", BRIDGE)
            .env("PEAPOD_POD_CIDR", POD_CIDR)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", peapod.display()))?;
        let socket = root.join("run/peapod/peapod.sock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline {
                bail!("the agent did not start");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Agent { child, socket })
    }

    /// Milliseconds from the apply request to the watch event showing every container running.
    fn start_pod(&self, pod: &Value, name: &str) -> Result<f64> {
        let mut watch = self.request("GET", "/api/v1/namespaces/default/pods?watch=true", None)?;
        let body = pod.to_string();
        let started = Instant::now();
        let mut apply = self.request(
            "PATCH",
            &format!("/api/v1/namespaces/default/pods/{name}"),
            Some(&body),
        )?;
        let mut sink = String::new();
        apply.read_to_string(&mut sink)?;
        let mut reader = BufReader::new(&mut watch);
        skip_headers(&mut reader)?;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("watch ended before the pod ran");
            }
            let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
                continue;
            };
            if all_running(&event["object"]) {
                return Ok(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }

    /// Applies `count` copies of the pod at once; times until the watch has seen every one
    /// Running, measures memory, then deletes them all.
    fn burst(&self, pod: &Value, count: usize, root: &Path) -> Result<Burst> {
        let mut watch = self.request("GET", "/api/v1/namespaces/default/pods?watch=true", None)?;
        let names: Vec<String> = (0..count).map(|i| format!("burst-{i}")).collect();
        let started = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            let applies: Vec<_> = names
                .iter()
                .map(|name| {
                    let mut copy = pod.clone();
                    copy["metadata"]["name"] = Value::String(name.clone());
                    scope.spawn(move || -> Result<()> {
                        let mut response = self.request(
                            "PATCH",
                            &format!("/api/v1/namespaces/default/pods/{name}"),
                            Some(&copy.to_string()),
                        )?;
                        let mut text = String::new();
                        response.read_to_string(&mut text)?;
                        if !text.starts_with("HTTP/1.1 201") {
                            bail!("applying {name}: {}", text.lines().next().unwrap_or(""));
                        }
                        Ok(())
                    })
                })
                .collect();
            for apply in applies {
                apply.join().expect("apply thread")?;
            }
            Ok(())
        })?;
        let mut reader = BufReader::new(&mut watch);
        skip_headers(&mut reader)?;
        let mut running = std::collections::HashSet::new();
        let mut line = String::new();
        while running.len() < count {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("watch ended with {} of {count} pods running", running.len());
            }
            let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
                continue;
            };
            if all_running(&event["object"]) {
                if let Some(name) = event["object"]["metadata"]["name"].as_str() {
                    running.insert(name.to_string());
                }
            }
        }
        let running_ms = started.elapsed().as_secs_f64() * 1000.0;
        let agent_rss_kib = status_field(self.child.id(), "VmRSS:");
        let shims_anon_kib = shim_pids(root)
            .into_iter()
            .map(|pid| status_field(pid, "RssAnon:"))
            .sum();
        let started = Instant::now();
        for name in &names {
            let mut response = self.request(
                "DELETE",
                &format!("/api/v1/namespaces/default/pods/{name}?gracePeriodSeconds=0"),
                None,
            )?;
            response.read_to_string(&mut String::new())?;
        }
        while !shim_pids(root).is_empty() || self.pod_count()? > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Burst {
            running_ms,
            delete_ms: started.elapsed().as_secs_f64() * 1000.0,
            agent_rss_kib,
            shims_anon_kib,
        })
    }

    fn pod_count(&self) -> Result<usize> {
        let mut response = self.request("GET", "/api/v1/namespaces/default/pods", None)?;
        let mut text = String::new();
        response.read_to_string(&mut text)?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("{}");
        let list: Value = serde_json::from_str(body).unwrap_or_default();
        Ok(list["items"].as_array().map_or(0, Vec::len))
    }

    fn delete_pod(&self, name: &str) -> Result<f64> {
        let started = Instant::now();
        let mut response = self.request(
            "DELETE",
            &format!("/api/v1/namespaces/default/pods/{name}?gracePeriodSeconds=0"),
            None,
        )?;
        let mut sink = String::new();
        response.read_to_string(&mut sink)?;
        loop {
            let mut get = self.request(
                "GET",
                &format!("/api/v1/namespaces/default/pods/{name}"),
                None,
            )?;
            let mut text = String::new();
            get.read_to_string(&mut text)?;
            if text.starts_with("HTTP/1.1 404") {
                return Ok(started.elapsed().as_secs_f64() * 1000.0);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn request(&self, method: &str, path: &str, body: Option<&str>) -> Result<UnixStream> {
        let mut stream = UnixStream::connect(&self.socket)?;
        let body = body.unwrap_or("");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: peapod\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        Ok(stream)
    }

    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        // Absent when no pod ran (the pull benchmark's agents).
        let _ = Command::new("ip")
            .args(["link", "del", BRIDGE])
            .stderr(Stdio::null())
            .status();
        let table = format!("peapod-{BRIDGE}");
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .stderr(Stdio::null())
            .status();
    }
}

/// A run that fails midway (an error returned with `?`) still stops its agent.
impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

fn skip_headers(reader: &mut impl BufRead) -> Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            return Ok(());
        }
    }
}

fn all_running(pod: &Value) -> bool {
    pod["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|c| c["state"]["running"].is_object()))
}

fn to_json(manifest: &str) -> Result<Value> {
    for document in manifest.split("\n---") {
        let value: Value = serde_yaml_ng::from_str(document)?;
        if value["kind"] == "Pod" {
            return Ok(value);
        }
    }
    bail!("the manifest has no Pod")
}

/// The largest (VmRSS, RssAnon) of this run's shims, in KiB.
fn shim_rss_kib(root: &Path) -> Result<(u64, u64)> {
    Ok(shim_pids(root).into_iter().fold((0, 0), |max, pid| {
        (
            max.0.max(status_field(pid, "VmRSS:")),
            max.1.max(status_field(pid, "RssAnon:")),
        )
    }))
}

/// The pids of this run's shims.
fn shim_pids(root: &Path) -> Vec<u32> {
    let root = root.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).ok()?;
            (cmdline.contains("\0shim\0") && cmdline.contains(&root)).then_some(pid)
        })
        .collect()
}

/// A "Name:   123 kB" field of /proc/PID/status, in KiB (0 when unreadable).
fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `podman kube play` of the same manifest with the image podman-peer-setup imports
/// (localhost/busybox:latest), timed from the command's start to its return (podman returns
/// once the containers are started), then `podman kube down`.
fn podman_runs(options: &Options, manifest: &str) -> Result<Vec<f64>> {
    let file = tempfile::Builder::new().suffix(".yaml").tempfile()?;
    std::fs::write(
        file.path(),
        manifest.replace("image: busybox", "image: localhost/busybox:latest"),
    )?;
    (0..options.runs.min(20))
        .map(|_| podman_play(file.path()))
        .collect()
}

/// Milliseconds `podman kube play FILE` takes to return, then `podman kube down FILE`.
fn podman_play(file: &Path) -> Result<f64> {
    let started = Instant::now();
    let status = Command::new("podman")
        .args(["kube", "play", "--quiet"])
        .arg(file)
        .stdout(Stdio::null())
        .status()?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let _ = Command::new("podman")
        .args(["kube", "down"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !status.success() {
        bail!("podman kube play {} failed", file.display());
    }
    Ok(elapsed)
}

/// `podman kube play` of `count` copies of the pod in one multi-document file, timed until
/// the command returns (podman returns once every container started), then `kube down`.
fn podman_burst(manifest: &str, count: usize) -> Result<f64> {
    // podman publishes every containerPort on the host, so copies of a pod with ports clash:
    // its copies go without them (peapod's keep theirs, which cost nothing on the host).
    let pod: String = manifest
        .replace("image: busybox", "image: localhost/busybox:latest")
        .lines()
        .filter(|l| !l.trim_start().starts_with("ports:") && !l.contains("containerPort:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let documents: Vec<String> = (0..count)
        .map(|i| pod.replace("name: example-pod", &format!("name: burst-{i}")))
        .collect();
    let file = tempfile::Builder::new().suffix(".yaml").tempfile()?;
    std::fs::write(file.path(), documents.join("\n---\n"))?;
    podman_play(file.path())
}
