//! Pod start benchmark: apply the S1 seed pod and time until every container is Running (as
//! the agent's watch reports it), network included, then time its deletion; report p50/p99,
//! and the resident memory of each pod's shim. Then a burst: N copies of the pod applied at
//! once, timed until all run, with the agent's and shims' memory per pod. With podman
//! installed, the same pod and a burst of 20 through `podman kube play` in the same run.
//! Unless `--skip-api`, 200 running copies listed as kubectl does (server and whole command).
//!
//! Then the API server benchmarks (see `api`): memory, GET latency, concurrent creates, list
//! and `kubectl get` times, and watch fan-out.
//!
//! Then the streaming benchmarks (see `streams`): exec round trip (server time over the socket,
//! `peapod exec`, `kubectl exec`) and port-forward throughput (pod IP directly, `kubectl
//! port-forward` over WebSocket and SPDY, `peapod port-forward`).
//!
//! Then the steady-state benchmarks (see `steady`): the agent's CPU and memory while 100 idle
//! pods run, and while 100 pods run an httpGet readiness and an exec liveness probe every
//! second. Then the ConfigMap benchmarks (see `config`): an update's way to the mounted file,
//! and the agent at rest with 100 pods each mounting 3 ConfigMaps and 3 Secrets. Then the pull benchmark (see `pull`): a local registry's multi-layer image pulled by
//! `peapod pull` into a fresh agent and by `podman pull`, side by side.
//!
//! Then the Services, DNS and Ingress benchmarks (see `services`): rule programming latency
//! with 10 to 1000 Services, ClusterIP against the pod IP, dnsperf against dnsmasq, and wrk
//! through the ingress against nginx.
//!
//! Then the topology page's cost (see `ui`): the agent at rest with 100 pods without and with
//! the page open in headless Chromium, and the page's load time and size.
//!
//! The agent runs on its own bridge (ppbench0) and range (10.231.0.0/16), removed at the end.
//!
//! Usage: peapod-bench [--runs N] [--burst N] [--pull-runs N] [--pull-only | --skip-pull]
//!                     [--idle] [--probes] [--skip-steady] [--skip-api] [--window SECS]
//!                     [--streams] [--skip-streams] [--config] [--skip-config]
//!                     [--workloads] [--skip-workloads] [--services] [--skip-services]
//!                     [--ui] [--skip-ui] [--ui-pods N]
//!                     [--steady-pods N] [--service-cases rules,data,dns,ingress]
//!                     [--podman-idle] [--peapod PATH] [--images DIR] [--manifest FILE]
//! `--api`, `--streams`, `--pull-only`, `--idle`, `--probes`, `--config`, `--workloads` and
//! `--services` (and `--ui`) select what runs (together: each of them); without any of them everything runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

mod api;
mod config;
mod pull;
#[path = "../../crates/peapod-image/tests/support/registry.rs"]
mod registry;
mod services;
mod steady;
mod streams;
mod ui;
mod workloads;

const BRIDGE: &str = "ppbench0";
/// The benchmark agent's HTTPS address, away from a real agent's 6443.
const API_LISTEN: &str = "127.0.0.1:16443";
/// Outside 10.100-10.199, where the e2e tests pick their ranges, so both can run at once.
const POD_CIDR: &str = "10.231.0.0/16";
const PODMAN_BURST: usize = 20;
/// How long a burst of pods may take to run, or to go once deleted.
const BURST_TIMEOUT: Duration = Duration::from_secs(120);
/// Running pods listed by `kubectl get pods` (issue 12's figure).
const LISTED_PODS: usize = 200;
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

struct Options {
    runs: usize,
    burst: usize,
    pull_runs: usize,
    pods: bool,
    api: bool,
    streams: bool,
    pull: bool,
    idle: bool,
    probes: bool,
    config: bool,
    workloads: bool,
    services: bool,
    /// The topology page's cost (see `ui`).
    ui: bool,
    /// Pods the page's benchmark runs.
    ui_pods: usize,
    /// Which Services cases run (`rules`, `data`, `dns`, `ingress`); all when empty.
    service_cases: Vec<String>,
    podman_idle: bool,
    window: Duration,
    steady_pods: usize,
    peapod: PathBuf,
    images: PathBuf,
    manifest: PathBuf,
}

fn options() -> Result<Options> {
    let mut options = options_default();
    parse_args(&mut options, std::env::args().skip(1))?;
    Ok(options)
}

fn options_default() -> Options {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Options {
        runs: 20,
        burst: 100,
        pull_runs: 5,
        pods: true,
        api: true,
        streams: true,
        pull: true,
        idle: true,
        probes: true,
        config: true,
        workloads: true,
        services: true,
        ui: true,
        ui_pods: 100,
        service_cases: Vec::new(),
        podman_idle: false,
        window: Duration::from_secs(30),
        steady_pods: 100,
        peapod: repo.join("target/release/peapod"),
        images: repo.join("target/test-images"),
        manifest: repo.join("examples/s1-web-content-sidecar.yaml"),
    }
}

fn parse_args(options: &mut Options, args: impl IntoIterator<Item = String>) -> Result<()> {
    let mut selected = Vec::new();
    let mut skip_pull = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--api" | "--streams" | "--pull-only" | "--idle" | "--probes" | "--config"
            | "--workloads" | "--services" | "--ui" => selected.push(arg),
            "--skip-pull" => skip_pull = true,
            "--skip-steady" => (options.idle, options.probes) = (false, false),
            "--skip-api" => options.api = false,
            "--skip-streams" => options.streams = false,
            "--skip-config" => options.config = false,
            "--skip-workloads" => options.workloads = false,
            "--skip-services" => options.services = false,
            "--skip-ui" => options.ui = false,
            "--podman-idle" => options.podman_idle = true,
            _ => {
                let value = args
                    .next()
                    .with_context(|| format!("{arg} needs a value"))?;
                set_option(options, &arg, value)?;
            }
        }
    }
    if !selected.is_empty() {
        let chosen = |flag: &str| selected.iter().any(|s| s == flag);
        options.pods = false;
        options.api = chosen("--api");
        options.streams = chosen("--streams");
        options.pull = chosen("--pull-only");
        options.idle = chosen("--idle");
        options.probes = chosen("--probes");
        options.config = chosen("--config");
        options.workloads = chosen("--workloads");
        options.services = chosen("--services");
        options.ui = chosen("--ui");
    }
    options.pull &= !skip_pull;
    let any = options.pods || options.api || options.streams;
    let steady = options.idle || options.probes || options.config;
    if !(any || options.pull || steady || options.workloads || options.services || options.ui) {
        bail!("these options leave nothing to measure");
    }
    Ok(())
}

fn set_option(options: &mut Options, name: &str, value: String) -> Result<()> {
    match name {
        "--runs" => options.runs = value.parse()?,
        "--burst" => options.burst = value.parse()?,
        "--pull-runs" => options.pull_runs = value.parse()?,
        "--window" => options.window = Duration::from_secs_f64(value.parse()?),
        "--steady-pods" => options.steady_pods = value.parse()?,
        "--ui-pods" => options.ui_pods = value.parse()?,
        "--service-cases" => options.service_cases = services::cases(&value)?,
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
    if options.api {
        api::run(&options)?;
    }
    if options.streams {
        streams::run(&options)?;
    }
    if options.idle {
        steady::run(&options, steady::Kind::Idle)?;
    }
    if options.probes {
        steady::run(&options, steady::Kind::Probes)?;
    }
    if options.config {
        config::run(&options)?;
        steady::run(&options, steady::Kind::Config)?;
    }
    if options.workloads {
        workloads::run(&options)?;
    }
    if options.services {
        services::run(&options)?;
    }
    if options.ui {
        ui::run(&options)?;
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
    let _ = agent.start_pod(&pod_json)?; // warm-up
    agent.delete_pod(&name)?;
    let cpu_before = agent.cpu_ms();
    for _ in 0..options.runs {
        starts.push(agent.start_pod(&pod_json)?);
        rss.push(shim_rss_kib(root.path())?);
        deletes.push(agent.delete_pod(&name)?);
    }
    let cpu_per_pod = (agent.cpu_ms() - cpu_before) / options.runs as f64;
    println!(
        "peapod: S1 pod ({} containers), {} runs",
        pod_json["spec"]["containers"]
            .as_array()
            .map_or(0, |c| c.len()),
        options.runs
    );
    report("apply -> all containers Running", &mut starts);
    report("delete (grace 0) -> pod gone", &mut deletes);
    println!("  agent CPU (user + system) per pod, start to gone: {cpu_per_pod:.1} ms");
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
    if options.api {
        agent.list_running(&pod_json, LISTED_PODS, root.path())?;
    }

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
    /// Set once stopped: the exit status, None when it had to be killed.
    exit: Option<Option<ExitStatus>>,
}

impl Agent {
    /// An agent on `root` with the busybox test image loaded.
    fn start(options: &Options, root: &Path) -> Result<Agent> {
        Agent::start_with_env(options, root, &[])
    }

    /// An agent on `root` with the busybox test image loaded and `env` set besides the bench's.
    fn start_with_env(options: &Options, root: &Path, env: &[(&str, &str)]) -> Result<Agent> {
        let agent = Agent::spawn_with_env(&options.peapod, root, env)?;
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
        Agent::spawn_with_env(peapod, root, &[])
    }

    fn spawn_with_env(peapod: &Path, root: &Path, env: &[(&str, &str)]) -> Result<Agent> {
        let child = Command::new(peapod)
            .arg("serve")
            .env("PEAPOD_ROOT", root)
            .env("PEAPOD_BRIDGE", BRIDGE)
            .env("PEAPOD_POD_CIDR", POD_CIDR)
            .env("PEAPOD_API_LISTEN", API_LISTEN)
            // The build shares this disk: a full target directory (under 1 % free at times)
            // must not evict the pods under measurement.
            .env(
                "PEAPOD_EVICTION_HARD",
                "nodefs.available<0%,imagefs.available<0%",
            )
            .envs(env.iter().copied())
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
        Ok(Agent {
            child,
            socket,
            exit: None,
        })
    }

    /// Milliseconds from the apply request to the watch event showing every container running.
    fn start_pod(&self, pod: &Value) -> Result<f64> {
        let mut watch = self.request("GET", "/api/v1/namespaces/default/pods?watch=true", None)?;
        let body = pod.to_string();
        let started = Instant::now();
        let mut apply = self.request("POST", "/api/v1/namespaces/default/pods", Some(&body))?;
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
        let mut watch = self.watch()?;
        let pods = copies(pod, "burst", count);
        let started = Instant::now();
        self.apply_all(&pods)?;
        wait_for(&mut watch, count, BURST_TIMEOUT, all_running)?;
        let running_ms = started.elapsed().as_secs_f64() * 1000.0;
        let agent_rss_kib = status_field(self.child.id(), "VmRSS:");
        let shims_anon_kib = shim_pids(root)
            .into_iter()
            .map(|pid| status_field(pid, "RssAnon:"))
            .sum();
        let delete_ms = self.delete_all(&pod_names(&pods), 0, root)?;
        Ok(Burst {
            running_ms,
            delete_ms,
            agent_rss_kib,
            shims_anon_kib,
        })
    }

    /// Starts `count` copies of the pod, times listing them as kubectl does, then deletes them.
    fn list_running(&self, pod: &Value, count: usize, root: &Path) -> Result<()> {
        let mut watch = self.watch()?;
        let pods = copies(pod, "listed", count);
        self.apply_all(&pods)?;
        wait_for(&mut watch, count, BURST_TIMEOUT, all_running)?;
        println!("peapod: {count} running S1 pods listed");
        let what = format!("{count} running pods");
        api::list_timings(self, root, "/api/v1/namespaces/default/pods", "pods", &what)?;
        self.delete_all(&pod_names(&pods), 0, root)?;
        Ok(())
    }

    /// A watch on the default namespace's pods, past its response headers.
    fn watch(&self) -> Result<BufReader<UnixStream>> {
        let watch = self.request("GET", "/api/v1/namespaces/default/pods?watch=true", None)?;
        let mut reader = BufReader::new(watch);
        skip_headers(&mut reader)?;
        Ok(reader)
    }

    /// Applies every pod at once, one concurrent request each; fails on the first refusal.
    fn apply_all(&self, pods: &[Value]) -> Result<()> {
        std::thread::scope(|scope| -> Result<()> {
            let applies: Vec<_> = pods
                .iter()
                .map(|pod| scope.spawn(move || self.apply(pod)))
                .collect();
            for apply in applies {
                apply.join().expect("apply thread")?;
            }
            Ok(())
        })
    }

    fn apply(&self, pod: &Value) -> Result<()> {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let mut response = self.request(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(&pod.to_string()),
        )?;
        let mut text = String::new();
        response.read_to_string(&mut text)?;
        if !text.starts_with("HTTP/1.1 201") {
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
            bail!(
                "applying {name}: {} {body}",
                text.lines().next().unwrap_or("")
            );
        }
        Ok(())
    }

    /// Deletes the named pods with a grace period of `grace` seconds, then waits until neither
    /// a pod nor a shim of this agent is left; milliseconds from the first request.
    fn delete_all(&self, names: &[String], grace: u64, root: &Path) -> Result<f64> {
        let started = Instant::now();
        for name in names {
            let mut response = self.request(
                "DELETE",
                &format!("/api/v1/namespaces/default/pods/{name}?gracePeriodSeconds={grace}"),
                None,
            )?;
            response.read_to_string(&mut String::new())?;
        }
        let deadline = started + BURST_TIMEOUT + Duration::from_secs(grace);
        while !shim_pids(root).is_empty() || self.pod_count()? > 0 {
            if Instant::now() > deadline {
                bail!(
                    "{} pods and {} shims still there {} s after their deletion",
                    self.pod_count()?,
                    shim_pids(root).len(),
                    deadline.duration_since(started).as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(started.elapsed().as_secs_f64() * 1000.0)
    }

    /// The default namespace's pods, as the API lists them.
    fn pods(&self) -> Result<Vec<Value>> {
        let mut response = self.request("GET", "/api/v1/namespaces/default/pods", None)?;
        let mut text = String::new();
        response.read_to_string(&mut text)?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("{}");
        let mut list: Value = serde_json::from_str(body).unwrap_or_default();
        Ok(match list["items"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        })
    }

    fn pod_count(&self) -> Result<usize> {
        Ok(self.pods()?.len())
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
        self.shut_down();
    }

    /// The agent's CPU time so far (user and system, its threads included), in milliseconds.
    fn cpu_ms(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()));
        let stat = stat.unwrap_or_default();
        // The fields after the command name, which may hold spaces, start at its closing ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        ticks as f64 * 1000.0 / per_second
    }

    /// The agent's resident memory.
    fn rss_kib(&self) -> u64 {
        status_field(self.child.id(), "VmRSS:")
    }

    /// Stops the agent and fails unless it exits with status 0 on its own after SIGTERM.
    fn stop_cleanly(&mut self) -> Result<()> {
        match self.shut_down() {
            Some(status) if status.success() => Ok(()),
            Some(status) => bail!("the agent did not stop cleanly: {status}"),
            None => bail!(
                "the agent did not stop within {} s of SIGTERM",
                STOP_TIMEOUT.as_secs()
            ),
        }
    }

    /// SIGTERM, then SIGKILL after `STOP_TIMEOUT`; removes the bench's bridge and table. The
    /// exit status, None when the agent had to be killed (the first call's, on later calls).
    fn shut_down(&mut self) -> Option<ExitStatus> {
        if let Some(exit) = self.exit {
            return exit;
        }
        let exit = match self.child.try_wait() {
            Ok(None) => {
                unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
                self.wait_exit()
            }
            Ok(status) => status,
            Err(_) => None,
        };
        self.exit = Some(exit);
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
        exit
    }

    fn wait_exit(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
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

/// Reads watch events until `done` holds for `count` pods at once (each pod as its latest
/// event shows it); fails after `timeout`.
fn wait_for(
    watch: &mut BufReader<UnixStream>,
    count: usize,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut states = std::collections::HashMap::new();
    let mut line = String::new();
    while states.values().filter(|done| **done).count() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let timed_out = || {
            let done = states.values().filter(|done| **done).count();
            anyhow::anyhow!(
                "{done} of {count} pods in the awaited state after {} s",
                timeout.as_secs()
            )
        };
        if left.is_zero() {
            return Err(timed_out());
        }
        watch.get_ref().set_read_timeout(Some(left))?;
        line.clear();
        match watch.read_line(&mut line) {
            Ok(0) => bail!("the watch ended before {count} pods were ready"),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out())
            }
            Err(e) => return Err(e.into()),
        }
        let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let pod = &event["object"];
        if let Some(name) = pod["metadata"]["name"].as_str() {
            let gone = event["type"] == "DELETED";
            states.insert(name.to_string(), !gone && done(pod));
        }
    }
    Ok(())
}

/// `count` copies of `pod` named `PREFIX-0`, `PREFIX-1`, ...
fn copies(pod: &Value, prefix: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let mut copy = pod.clone();
            copy["metadata"]["name"] = Value::String(format!("{prefix}-{i}"));
            copy
        })
        .collect()
}

fn pod_names(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .filter_map(|pod| pod["metadata"]["name"].as_str().map(str::to_string))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Options> {
        let mut options = options_default();
        parse_args(&mut options, args.iter().map(|a| a.to_string()))?;
        Ok(options)
    }

    fn modes(o: &Options) -> (bool, bool, bool, bool) {
        (o.pods, o.idle, o.probes, o.pull)
    }

    #[test]
    fn without_a_selection_everything_runs() {
        let o = parsed(&["--window", "2.5", "--steady-pods", "7"]).unwrap();
        assert_eq!(modes(&o), (true, true, true, true));
        assert_eq!(o.window, Duration::from_millis(2500));
        assert_eq!(o.steady_pods, 7);
        assert!(!o.podman_idle);
        assert!(parsed(&["--podman-idle"]).unwrap().podman_idle);
    }

    #[test]
    fn selections_add_up_and_exclude_the_rest() {
        assert_eq!(
            modes(&parsed(&["--idle"]).unwrap()),
            (false, true, false, false)
        );
        let both = parsed(&["--probes", "--pull-only"]).unwrap();
        assert_eq!(modes(&both), (false, false, true, true));
        assert!(!both.streams && !both.api);
        let streams = parsed(&["--streams"]).unwrap();
        assert!(streams.streams && !streams.api);
        assert_eq!(modes(&streams), (false, false, false, false));
        assert!(parsed(&[]).unwrap().streams);
        let services = parsed(&["--services"]).unwrap();
        assert!(services.services && !services.workloads && !services.api);
        assert!(parsed(&[]).unwrap().services);
        assert!(!parsed(&["--skip-services"]).unwrap().services);
        let ui = parsed(&["--ui", "--ui-pods", "10"]).unwrap();
        assert!(ui.ui && !ui.services && !ui.pods && ui.ui_pods == 10);
        assert!(parsed(&[]).unwrap().ui && !parsed(&["--skip-ui"]).unwrap().ui);
    }

    #[test]
    fn skips_remove_modes_and_an_empty_run_is_refused() {
        let o = parsed(&["--skip-steady", "--skip-pull"]).unwrap();
        assert_eq!(modes(&o), (true, false, false, false));
        let pods_only = parsed(&[
            "--skip-steady",
            "--skip-pull",
            "--skip-api",
            "--skip-streams",
        ])
        .unwrap();
        assert!(pods_only.pods && !pods_only.api && !pods_only.streams);
        assert!(parsed(&["--pull-only", "--skip-pull"]).is_err());
        assert!(parsed(&["--window"]).is_err());
        assert!(parsed(&["--bogus", "1"]).is_err());
    }
}
