//! Steady-state benchmark: what the agent costs while pods just run. N pods applied at once
//! (idle: a `sleep` container without probes; probes: busybox httpd with an httpGet readiness
//! probe and an exec liveness probe, both every second), awaited Running (and Ready), left to
//! settle, then the agent process is measured over a window: CPU of one core from its own
//! utime+stime (the shims are separate processes, reported apart), RSS, peak RSS, threads and
//! context switches. Idle pods carry issue 5's target: under 1 % of a core. With
//! `--podman-idle`, the idle case is repeated with `podman kube play`, measuring its conmon
//! processes (opt-in: creating and removing 100 podman pods takes minutes).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::config;
use crate::{pod_names, shim_pids, status_field, wait_for, which, Agent, Options};

/// Time given to pods to settle between Ready and the measurement window.
const SETTLE: Duration = Duration::from_secs(5);
/// How long all pods may take to become Running (and Ready).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Issue 5's bound on the agent's CPU with idle pods, in percent of one core.
const IDLE_TARGET_PCT: f64 = 1.0;
const DELETE_GRACE_SECS: u64 = 1;
const PODMAN_REMOVERS: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Idle,
    Probes,
    /// Idle pods each mounting 3 ConfigMaps and 3 Secrets (issue 14).
    Config,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Idle => "idle",
            Kind::Probes => "probes",
            Kind::Config => "config",
        }
    }

    /// Pod number `index` of this kind, on the locally loaded busybox image.
    fn pod(self, index: usize, image: &str) -> Value {
        let mut volumes = Vec::new();
        let container = match self {
            Kind::Config => {
                let mounts;
                (volumes, mounts) = config::mounted_volumes();
                json!({
                    "name": "sleep",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                    "volumeMounts": mounts,
                })
            }
            Kind::Idle => json!({
                "name": "sleep",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
            }),
            Kind::Probes => json!({
                "name": "web",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c",
                    "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"],
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                "livenessProbe": {"exec": {"command": ["cat", "/www/index.html"]}, "periodSeconds": 1},
            }),
        };
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": format!("{}-{index}", self.label()), "namespace": "default"},
            "spec": {
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": DELETE_GRACE_SECS,
                "containers": [container],
                "volumes": volumes,
            },
        })
    }

    /// Whether a pod has reached the state measured: every container running, and ready.
    /// Before probes exist a running container is reported ready, so this holds either way.
    fn settled(self, pod: &Value) -> bool {
        let statuses = pod["status"]["containerStatuses"].as_array();
        statuses.is_some_and(|s| {
            !s.is_empty()
                && s.iter().all(|c| {
                    c["state"]["running"].is_object()
                        && (self != Kind::Probes || c["ready"] == Value::Bool(true))
                })
        })
    }
}

/// Runs one steady-state benchmark with its own agent and prints the figures.
pub(crate) fn run(options: &Options, kind: Kind) -> Result<()> {
    let root = tempfile::Builder::new()
        .prefix("peapod-bench-steady-")
        .tempdir()?;
    let mut agent = Agent::start(options, root.path())?;
    let count = options.steady_pods;
    let pods: Vec<Value> = (0..count).map(|i| kind.pod(i, "busybox")).collect();
    if kind == Kind::Config {
        config::create_mounted_objects(&agent)?;
    }
    let mut watch = agent.watch()?;
    let started = Instant::now();
    agent.apply_all(&pods)?;
    wait_for(&mut watch, count, READY_TIMEOUT, |pod| kind.settled(pod))?;
    let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
    drop(watch);
    std::thread::sleep(SETTLE);
    let usage = measure(agent.child.id(), options.window, || shim_pids(root.path()));
    let listed = agent.pods()?;

    println!(
        "peapod: {count} {} pods, agent measured over {:.0} s after {} s of settling",
        kind.label(),
        options.window.as_secs_f64(),
        SETTLE.as_secs()
    );
    let awaited = match kind {
        Kind::Idle | Kind::Config => "Running",
        Kind::Probes => "Running and Ready",
    };
    println!("  apply -> all {count} pods {awaited}: {ready_ms:.0} ms");
    usage.print();
    if kind == Kind::Probes {
        let ready = listed.iter().filter(|pod| kind.settled(pod)).count();
        println!(
            "  after the window: {ready} of {count} pods Ready, {} container restarts",
            restarts(&listed)
        );
    }
    if kind != Kind::Probes {
        println!("  {}", verdict(usage.agent_cpu_pct));
    }
    let delete_ms = agent.delete_all(&pod_names(&pods), DELETE_GRACE_SECS, root.path())?;
    println!("  delete all (grace {DELETE_GRACE_SECS} s) -> all gone: {delete_ms:.0} ms");
    agent.stop_cleanly()?;
    println!("  agent stopped cleanly (exit 0 on SIGTERM)");

    if kind == Kind::Idle && options.podman_idle {
        if which("podman") {
            podman_idle(count, options.window)?;
        } else {
            println!("podman: not installed; no idle comparison");
        }
    }
    Ok(())
}

/// The PASS/FAIL line for issue 5's idle target.
fn verdict(agent_cpu_pct: f64) -> String {
    let outcome = if agent_cpu_pct < IDLE_TARGET_PCT {
        "PASS"
    } else {
        "FAIL"
    };
    format!(
        "target (issue 5) idle agent under {IDLE_TARGET_PCT:.0} % of a core: {outcome} ({agent_cpu_pct:.2} %)"
    )
}

/// The sum of every container's restartCount.
fn restarts(pods: &[Value]) -> u64 {
    pods.iter()
        .filter_map(|pod| pod["status"]["containerStatuses"].as_array())
        .flatten()
        .filter_map(|c| c["restartCount"].as_u64())
        .sum()
}

/// A process's counters from /proc/PID/stat, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ProcStat {
    /// utime + stime: the process's own threads, children excluded.
    cpu_ticks: u64,
    /// cutime + cstime: children it has reaped.
    reaped_children_ticks: u64,
    threads: u64,
}

impl ProcStat {
    fn read(pid: u32) -> Option<ProcStat> {
        parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }
}

/// Parses /proc/PID/stat; the command name (field 2) may hold spaces and parentheses, so
/// fields are counted from its last ')'.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the name comes field 3 (the state, skipped): field N is at index N - 4.
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 4).copied();
    Some(ProcStat {
        cpu_ticks: field(14)? + field(15)?,
        reaped_children_ticks: field(16)? + field(17)?,
        threads: field(20)?,
    })
}

/// Voluntary plus involuntary context switches of all of a process's threads.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Percent of one core that `ticks` of CPU are over `seconds`.
fn cpu_pct(ticks: u64, seconds: f64) -> f64 {
    ticks as f64 / clock_ticks_per_second() / seconds * 100.0
}

/// The agent's and its helpers' use of the machine over one window.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    agent_cpu_pct: f64,
    agent_cpu_ticks: u64,
    agent_reaped_cpu_pct: f64,
    agent_rss_max_kib: u64,
    agent_hwm_kib: u64,
    agent_threads_max: u64,
    agent_switches_per_s: f64,
    helpers: usize,
    helpers_cpu_pct: f64,
    helpers_reaped_cpu_pct: f64,
    helpers_rss_kib: u64,
    helpers_anon_kib: u64,
}

impl Usage {
    pub(crate) fn print(&self) {
        println!(
            "  agent CPU: {:.2} % of a core ({} ticks of {:.0} ms; utime+stime, children excluded); {:.1} context switches/s",
            self.agent_cpu_pct,
            self.agent_cpu_ticks,
            1000.0 / clock_ticks_per_second(),
            self.agent_switches_per_s
        );
        if self.agent_reaped_cpu_pct > 0.0 {
            println!(
                "  processes the agent spawned and reaped in the window: {:.2} % of a core",
                self.agent_reaped_cpu_pct
            );
        }
        println!(
            "  agent memory: RSS {} KiB (max in the window), peak (VmHWM) {} KiB; {} threads (max)",
            self.agent_rss_max_kib, self.agent_hwm_kib, self.agent_threads_max
        );
        println!("  {}", self.helpers_line("shims"));
    }

    /// The helper processes' totals; most of their RSS is the binary's shared page cache.
    fn helpers_line(&self, what: &str) -> String {
        let reaped = if self.helpers_reaped_cpu_pct > 0.0 {
            format!(
                ", and {:.2} % in the processes they ran and reaped (exec probes)",
                self.helpers_reaped_cpu_pct
            )
        } else {
            String::new()
        };
        format!(
            "{what} ({}): CPU {:.2} % of a core in total{reaped}; RSS {} KiB in total, of which private {} KiB ({:.0} KiB each)",
            self.helpers,
            self.helpers_cpu_pct,
            self.helpers_rss_kib,
            self.helpers_anon_kib,
            self.helpers_anon_kib as f64 / self.helpers.max(1) as f64
        )
    }
}

/// Measures `pid` over `window` (sampling memory and threads every second), and beside it the
/// helper processes `helpers` lists at both ends of the window.
pub(crate) fn measure(pid: u32, window: Duration, helpers: impl Fn() -> Vec<u32>) -> Usage {
    let before_helpers = helper_stats(&helpers());
    let before = ProcStat::read(pid).unwrap_or_default();
    let before_switches = context_switches(pid);
    let started = Instant::now();
    let mut usage = Usage::default();
    while started.elapsed() < window {
        std::thread::sleep(Duration::from_secs(1).min(window.saturating_sub(started.elapsed())));
        usage.agent_rss_max_kib = usage.agent_rss_max_kib.max(status_field(pid, "VmRSS:"));
        let threads = ProcStat::read(pid).map_or(0, |s| s.threads);
        usage.agent_threads_max = usage.agent_threads_max.max(threads);
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = ProcStat::read(pid).unwrap_or_default();
    let after_switches = context_switches(pid);
    let after_helpers = helper_stats(&helpers());

    usage.agent_cpu_ticks = after.cpu_ticks.saturating_sub(before.cpu_ticks);
    usage.agent_cpu_pct = cpu_pct(usage.agent_cpu_ticks, seconds);
    usage.agent_reaped_cpu_pct = cpu_pct(
        after
            .reaped_children_ticks
            .saturating_sub(before.reaped_children_ticks),
        seconds,
    );
    // VmHWM is synced lazily, so a sample may have seen more.
    usage.agent_hwm_kib = status_field(pid, "VmHWM:").max(usage.agent_rss_max_kib);
    usage.agent_switches_per_s = after_switches.saturating_sub(before_switches) as f64 / seconds;
    add_helpers(&mut usage, &before_helpers, &after_helpers, seconds);
    usage
}

fn helper_stats(pids: &[u32]) -> HashMap<u32, ProcStat> {
    pids.iter()
        .filter_map(|pid| Some((*pid, ProcStat::read(*pid)?)))
        .collect()
}

/// Fills in the helpers' figures from the processes present at both ends of the window
/// (short-lived ones, such as an exec probe's process, would skew the per-process figures).
fn add_helpers(
    usage: &mut Usage,
    before: &HashMap<u32, ProcStat>,
    after: &HashMap<u32, ProcStat>,
    seconds: f64,
) {
    let lasting: Vec<(&ProcStat, &ProcStat)> = after
        .iter()
        .filter_map(|(pid, end)| Some((before.get(pid)?, end)))
        .collect();
    let delta = |ticks: fn(&ProcStat) -> u64| -> u64 {
        lasting
            .iter()
            .map(|(start, end)| ticks(end).saturating_sub(ticks(start)))
            .sum()
    };
    usage.helpers = lasting.len();
    usage.helpers_cpu_pct = cpu_pct(delta(|s| s.cpu_ticks), seconds);
    usage.helpers_reaped_cpu_pct = cpu_pct(delta(|s| s.reaped_children_ticks), seconds);
    let pids = || after.keys().filter(|pid| before.contains_key(pid));
    usage.helpers_rss_kib = pids().map(|pid| status_field(*pid, "VmRSS:")).sum();
    usage.helpers_anon_kib = pids().map(|pid| status_field(*pid, "RssAnon:")).sum();
}

/// The same idle pods through `podman kube play` (one multi-document file), then podman's
/// cost over the same window: podman has no daemon, so that is its conmon processes.
fn podman_idle(count: usize, window: Duration) -> Result<()> {
    let pods: Vec<Value> = (0..count)
        .map(|i| Kind::Idle.pod(i, "localhost/busybox:latest"))
        .collect();
    let documents = pods
        .iter()
        .map(serde_yaml_ng::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    let file = tempfile::Builder::new().suffix(".yaml").tempfile()?;
    std::fs::write(file.path(), documents.join("---\n"))?;
    let names = pod_names(&pods);
    let started = Instant::now();
    let played = Command::new("podman")
        .args(["kube", "play", "--quiet"])
        .arg(file.path())
        .stdout(Stdio::null())
        .status();
    let play_ms = started.elapsed().as_secs_f64() * 1000.0;
    let result = match played {
        Ok(status) if status.success() => {
            std::thread::sleep(SETTLE);
            Ok(measure_conmon(window))
        }
        Ok(status) => Err(anyhow::anyhow!(
            "podman kube play of {count} pods: {status}"
        )),
        Err(e) => Err(e.into()),
    };
    let started = Instant::now();
    let removed = remove_podman_pods(&names);
    let remove_ms = started.elapsed().as_secs_f64() * 1000.0;
    let usage = result?;
    removed?;
    println!(
        "podman: {count} idle pods (kube play of all: {play_ms:.0} ms; pod rm: {remove_ms:.0} ms)"
    );
    println!("  {}", usage.helpers_line("conmon processes"));
    Ok(())
}

/// `podman pod rm --force --time 0` of the named pods, a few podman processes at once (one
/// removes about a pod a second).
fn remove_podman_pods(names: &[String]) -> Result<()> {
    let chunk = names.len().div_ceil(PODMAN_REMOVERS).max(1);
    let removers: Vec<_> = names
        .chunks(chunk)
        .map(|chunk| {
            Command::new("podman")
                .args(["pod", "rm", "--force", "--time", "0"])
                .args(chunk)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        })
        .collect();
    let mut failed = 0;
    for remover in removers {
        if !remover?.wait()?.success() {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("podman pod rm failed for {failed} of the groups of idle pods");
    }
    Ok(())
}

/// Every conmon process's CPU over `window` (podman has no agent to measure).
fn measure_conmon(window: Duration) -> Usage {
    let before = helper_stats(&conmon_pids());
    let started = Instant::now();
    std::thread::sleep(window);
    let seconds = started.elapsed().as_secs_f64();
    let after = helper_stats(&conmon_pids());
    let mut usage = Usage::default();
    add_helpers(&mut usage, &before, &after, seconds);
    usage
}

fn conmon_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == "conmon").then_some(pid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 9 0 \
                    1000 2000000 300 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                cpu_ticks: 300,
                reaped_children_ticks: 10,
                threads: 9
            }
        );
    }

    #[test]
    fn a_truncated_stat_line_is_refused() {
        assert_eq!(parse_stat("42 (x) S 1 42 42"), None);
        assert_eq!(parse_stat("no name here"), None);
    }

    #[test]
    fn own_cpu_ticks_grow_while_spinning() {
        let pid = std::process::id();
        let before = ProcStat::read(pid).unwrap();
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = ProcStat::read(pid).unwrap();
        assert!(
            after.cpu_ticks > before.cpu_ticks,
            "{before:?} -> {after:?}"
        );
        assert!(after.threads >= 1);
        assert!(context_switches(pid) > 0);
    }

    #[test]
    fn cpu_percent_is_of_one_core() {
        let second = clock_ticks_per_second() as u64;
        assert!((cpu_pct(second, 10.0) - 10.0).abs() < 1e-9);
        assert!((cpu_pct(second * 3, 2.0) - 150.0).abs() < 1e-9);
    }

    #[test]
    fn verdict_passes_only_under_one_percent() {
        assert!(verdict(0.25).contains("PASS (0.25 %)"));
        assert!(verdict(1.0).contains("FAIL"));
    }

    fn status(running: bool, ready: bool) -> Value {
        let state = if running {
            json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}})
        } else {
            json!({"waiting": {"reason": "ContainerCreating"}})
        };
        json!({"status": {"containerStatuses": [
            {"name": "c", "state": state, "ready": ready, "restartCount": 2}
        ]}})
    }

    #[test]
    fn probes_pods_settle_when_ready_and_idle_pods_when_running() {
        assert!(Kind::Probes.settled(&status(true, true)));
        assert!(!Kind::Probes.settled(&status(true, false)));
        assert!(Kind::Idle.settled(&status(true, false)));
        assert!(!Kind::Idle.settled(&status(false, false)));
        assert!(!Kind::Idle.settled(&json!({"status": {}})));
    }

    #[test]
    fn restarts_add_up_over_pods() {
        assert_eq!(restarts(&[status(true, true), status(false, false)]), 4);
    }

    #[test]
    fn probe_pods_carry_both_probes_every_second() {
        let pod = Kind::Probes.pod(7, "busybox");
        assert_eq!(pod["metadata"]["name"], "probes-7");
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 1);
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["readinessProbe"]["httpGet"]["port"], 8080);
        assert_eq!(container["readinessProbe"]["periodSeconds"], 1);
        assert_eq!(
            container["livenessProbe"]["exec"]["command"],
            json!(["cat", "/www/index.html"])
        );
        assert_eq!(container["livenessProbe"]["periodSeconds"], 1);
        let idle = Kind::Idle.pod(0, "busybox");
        assert!(idle["spec"]["containers"][0]["readinessProbe"].is_null());
    }

    #[test]
    fn helpers_count_only_what_they_used_within_the_window() {
        let second = clock_ticks_per_second() as u64;
        let stat = |cpu, reaped| ProcStat {
            cpu_ticks: cpu,
            reaped_children_ticks: reaped,
            threads: 1,
        };
        let before = HashMap::from([(1, stat(5, 0)), (2, stat(0, 0))]);
        let after = HashMap::from([(1, stat(5 + second, second)), (3, stat(9 * second, 0))]);
        let mut usage = Usage::default();
        add_helpers(&mut usage, &before, &after, 10.0);
        assert_eq!(usage.helpers, 1);
        assert!((usage.helpers_cpu_pct - 10.0).abs() < 1e-9);
        assert!((usage.helpers_reaped_cpu_pct - 10.0).abs() < 1e-9);
        assert!(usage.helpers_line("shims").contains("reaped (exec probes)"));
    }

    #[test]
    fn helpers_are_measured_only_when_present_at_both_ends() {
        let me = std::process::id();
        let usage = measure(me, Duration::from_millis(300), || vec![me, u32::MAX]);
        assert_eq!(usage.helpers, 1);
        assert!(usage.agent_rss_max_kib > 0);
        assert!(usage.agent_hwm_kib >= usage.agent_rss_max_kib);
        assert!(usage.helpers_rss_kib > 0);
    }
}
