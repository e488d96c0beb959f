//! Lifecycle guarantees, end to end: agent kill/restart, graceful termination timing,
//! CrashLoopBackOff timing, restart policies, init containers, native sidecars, logs and exec.
//! Each test runs a real agent on its own PEAPOD_ROOT and ends with a leak check.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

// ----- helpers -----------------------------------------------------------------------------

/// Pids of `peapod shim` processes whose command line names `uid`.
fn shim_pids(uid: &str) -> Vec<i32> {
    let out = Command::new("pgrep")
        .args(["-f", "peapod shim"])
        .output()
        .expect("pgrep");
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|c| c.contains(uid))
                .unwrap_or(false)
        })
        .collect()
}

fn restart_count(pod: &Value, name: &str) -> i64 {
    container(pod, name)["restartCount"].as_i64().unwrap_or(-1)
}

fn waiting_reason<'a>(pod: &'a Value, name: &str) -> &'a str {
    container(pod, name)["state"]["waiting"]["reason"]
        .as_str()
        .unwrap_or("")
}

/// A pod that reached Succeeded or Failed keeps its object but not its sandbox: the shim is
/// gone and PodReadyToStartContainers is False, as the kubelet kills a terminal pod's sandbox.
fn assert_sandbox_released(agent: &Agent, name: &str) {
    let uid = agent.uid(name);
    wait_until(
        Duration::from_secs(5),
        &format!("{name}'s shim to exit"),
        || shim_pids(&uid).is_empty(),
    );
    let pod = agent.wait_pod(
        name,
        "PodReadyToStartContainers False",
        Duration::from_secs(5),
        |p| condition(p, "PodReadyToStartContainers")["status"] == "False",
    );
    assert!(
        matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        ),
        "{pod:#}"
    );
}

/// SIGKILLs every process of a container from the host.
fn kill_container(uid: &str, container_id: &str) {
    let pids = container_pids(uid, container_id);
    assert!(
        !pids.is_empty(),
        "container {container_id} has no processes"
    );
    for pid in pids {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Talks to the pod's shim directly: one write holding the exec request line for `wc -c`
/// with stdin, a STDIN frame with `input` and STDIN_EOF. Returns the STDOUT text once the
/// STATUS frame says exit 0, or None when no status came within 10 s.
fn shim_exec_in_one_write(agent: &Agent, uid: &str, id: &str, input: &[u8]) -> Option<String> {
    use std::io::{Read, Write};
    let frame = |channel: u8, payload: &[u8]| {
        let mut f = vec![channel];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    };
    let socket = agent
        .path()
        .join(format!("run/peapod/pods/{uid}/shim.sock"));
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("the shim's socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = serde_json::json!({
        "op": "exec", "id": id, "command": ["wc", "-c"], "tty": false, "stdin": true,
    });
    let mut bytes = serde_json::to_vec(&request).unwrap();
    bytes.push(b'\n');
    bytes.extend(frame(0, input));
    bytes.extend(frame(5, b""));
    stream.write_all(&bytes).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    let (mut out, mut status, mut at) = (Vec::new(), None, 0);
    while got.len() >= at + 5 {
        let len = u32::from_be_bytes(got[at + 1..at + 5].try_into().unwrap()) as usize;
        let payload = got.get(at + 5..at + 5 + len)?;
        match got[at] {
            1 => out.extend_from_slice(payload),
            3 => status = Some(text(payload)),
            _ => {}
        }
        at += 5 + len;
    }
    (status?.contains("\"exitCode\":0")).then(|| text(&out))
}

fn is_rfc3339(s: &str) -> bool {
    s.parse::<jiff::Timestamp>().is_ok()
        && s.len() >= 20
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[10] == b'T'
}

// ----- 1. agent kill / restart -------------------------------------------------------------

const PAIR: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: pair
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: alpha
    image: busybox
    command: ["sh", "-c", "echo hello from alpha; exec sleep 3600"]
  - name: beta
    image: busybox
    command: ["sh", "-c", "echo hello from beta; exec sleep 3600"]
"#;

#[test]
fn agent_kill_and_restart_keeps_pods_and_records_exits_made_while_down() {
    let mut agent = Agent::start();
    agent.apply(PAIR);
    agent.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: lone}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: only
    image: busybox
    command: ["sleep", "3600"]
"#,
    );
    let lone = agent.wait_running("lone");
    let (lone_uid, lone_id) = (agent.uid("lone"), container_id_of(&lone, "only"));
    let before = agent.wait_running("pair");
    let uid = agent.uid("pair");
    let (alpha, beta) = (
        container_id_of(&before, "alpha"),
        container_id_of(&before, "beta"),
    );
    let shims = shim_pids(&uid);
    assert_eq!(shims.len(), 1, "one shim for the pod: {shims:?}");
    let alpha_pids = container_pids(&uid, &alpha);
    assert!(!alpha_pids.is_empty(), "alpha has processes");

    agent.kill_and_restart();
    // Give the new agent time to re-attach; the pod must stay as it was throughout.
    std::thread::sleep(Duration::from_secs(1));
    let got = agent.cli(&["get", "pod", "pair", "-o", "json"]);
    assert!(
        got.status.success(),
        "get right after the restart: {}",
        text(&got.stderr)
    );
    let after = agent.wait_running("pair");
    assert_eq!(
        container_id_of(&after, "alpha"),
        alpha,
        "alpha was not replaced"
    );
    assert_eq!(
        container_id_of(&after, "beta"),
        beta,
        "beta was not replaced"
    );
    assert_eq!(restart_count(&after, "alpha"), 0);
    assert_eq!(restart_count(&after, "beta"), 0);
    assert_eq!(after["status"]["phase"], "Running");
    assert_eq!(
        after["metadata"]["uid"].as_str(),
        Some(uid.as_str()),
        "the same pod object"
    );
    assert_eq!(shim_pids(&uid), shims, "the shim survived the agent");
    assert_eq!(
        container_pids(&uid, &alpha),
        alpha_pids,
        "alpha's processes were not restarted"
    );

    let table = agent.ok(&["get", "pod", "pair"]);
    let row = table.lines().nth(1).expect("a row");
    assert!(
        row.starts_with("pair") && row.contains("2/2") && row.contains("Running"),
        "{table}"
    );
    let logs = agent.ok(&["logs", "pair", "-c", "beta"]);
    assert_eq!(logs, "hello from beta\n");
    let (code, out, err) = agent.exec("pair", "alpha", &["cat", "/etc/hostname"]);
    assert_eq!((code, out.trim()), (0, "pair"), "exec after restart: {err}");

    // While the agent is down, alpha's process dies: the next agent must record the exit.
    // So does lone's, whose restartPolicy Never makes the pod Failed.
    agent.kill_agent();
    kill_container(&uid, &alpha);
    kill_container(&lone_uid, &lone_id);
    wait_until(
        Duration::from_secs(5),
        "alpha's and lone's processes to be gone",
        || {
            container_pids(&uid, &alpha).is_empty()
                && container_pids(&lone_uid, &lone_id).is_empty()
        },
    );
    std::thread::sleep(Duration::from_millis(1500));
    let agent_back = jiff::Timestamp::now();
    agent.restart();
    let restarted = agent.wait_pod(
        "pair",
        "alpha restarted once",
        Duration::from_secs(20),
        |p| restart_count(p, "alpha") == 1 && all_running(p),
    );
    let last = &container(&restarted, "alpha")["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "killed by SIGKILL: {restarted:#}");
    assert_eq!(last["reason"], "Error", "{restarted:#}");
    assert_eq!(
        last["containerID"].as_str(),
        Some(alpha.as_str()),
        "the old attempt is the last state"
    );
    assert_ne!(container_id_of(&restarted, "alpha"), alpha, "a new attempt");
    assert_eq!(container_id_of(&restarted, "beta"), beta, "beta untouched");
    assert_eq!(restart_count(&restarted, "beta"), 0);
    assert_eq!(shim_pids(&uid), shims, "still the same shim");
    let logs = agent.ok(&["logs", "pair", "-c", "alpha"]);
    assert_eq!(logs, "hello from alpha\n");

    let lone = agent.wait_phase("lone", "Failed", Duration::from_secs(10));
    let only = container(&lone, "only");
    assert_eq!(only["state"]["terminated"]["exitCode"], 137, "{lone:#}");
    assert_eq!(only["state"]["terminated"]["reason"], "Error");
    assert_eq!(only["restartCount"], 0, "Never: not restarted");
    assert_eq!(only["containerID"].as_str(), Some(lone_id.as_str()));
    // The exit is stamped when it happened (the shim saw it), not when the agent came back.
    let finished = timestamp(&only["state"]["terminated"]["finishedAt"]);
    let back_second = jiff::Timestamp::from_second(agent_back.as_second()).unwrap();
    assert!(
        finished < back_second,
        "finishedAt {finished} is the exit's time, before {agent_back}"
    );
    assert_sandbox_released(&agent, "lone");

    agent.delete_and_check("pair", "1");
    assert!(shim_pids(&uid).is_empty());
    agent.delete_and_check("lone", "1");
}

// ----- 2. graceful termination timing ------------------------------------------------------

fn timed_delete(agent: &Agent, name: &str, extra: &[&str]) -> Duration {
    let uid = agent.uid(name);
    let mut args = vec!["delete", "pod", name];
    args.extend_from_slice(extra);
    let started = Instant::now();
    agent.ok(&args);
    let took = started.elapsed();
    assert!(
        agent.pod(name).is_none(),
        "{name} still exists after delete"
    );
    agent.leak_check(&uid);
    took
}

#[test]
fn graceful_termination_honours_the_grace_period() {
    let agent = Agent::start();
    // Traps TERM and exits at once: delete is quick even with a long grace period.
    agent.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: polite}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo ready; sleep 1000 & wait"]
"#,
    );
    agent.wait_running("polite");
    wait_until(Duration::from_secs(5), "polite to print ready", || {
        agent.ok(&["logs", "polite"]).contains("ready")
    });
    let took = timed_delete(&agent, "polite", &[]);
    assert!(
        took < Duration::from_secs(4),
        "a container that exits on TERM deletes fast: {took:?}"
    );

    // `sleep` as PID 1 of its PID namespace ignores TERM: delete waits out the 3 s grace.
    let stubborn = |name: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: app
    image: busybox
    command: ["sleep", "1000"]
"#
        )
    };
    agent.apply(&stubborn("stubborn"));
    agent.wait_running("stubborn");
    let uid = agent.uid("stubborn");
    let (took, events, describe) = std::thread::scope(|s| {
        let deleting = s.spawn(|| {
            let started = Instant::now();
            let out = agent.cli(&["delete", "pod", "stubborn"]);
            (started.elapsed(), out)
        });
        // While it terminates, the Killing event is there and describe shows it.
        let mut events = String::new();
        let mut describe = String::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            events = agent.ok(&["events"]);
            let out = agent.cli(&["describe", "pod", "stubborn"]);
            if out.status.success() {
                describe = text(&out.stdout);
            }
            if events
                .lines()
                .any(|l| l.contains("Killing") && l.contains("stubborn"))
                && describe.contains("Killing")
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (took, out) = deleting.join().unwrap();
        assert!(out.status.success(), "delete failed: {}", text(&out.stderr));
        (took, events, describe)
    });
    assert!(
        took >= Duration::from_millis(2500) && took <= Duration::from_secs(6),
        "a container that ignores TERM is killed after the 3 s grace: {took:?}"
    );
    let killing = events
        .lines()
        .find(|l| l.contains("Killing") && l.contains("stubborn"))
        .unwrap_or_else(|| panic!("no Killing event for stubborn while terminating:\n{events}"));
    assert!(killing.contains("Stopping container app"), "{killing}");
    assert!(
        killing.contains("pod/stubborn"),
        "the event names the pod: {killing}"
    );
    assert!(
        describe.contains("Stopping container app"),
        "describe while terminating:\n{describe}"
    );
    assert!(agent.pod("stubborn").is_none());
    agent.leak_check(&uid);

    // --grace-period 0 is immediate.
    agent.apply(&stubborn("stubborn2"));
    agent.wait_running("stubborn2");
    let took = timed_delete(&agent, "stubborn2", &["--grace-period", "0"]);
    assert!(
        took < Duration::from_millis(1500),
        "--grace-period 0 is immediate: {took:?}"
    );
}

// ----- 3. CrashLoopBackOff timing ----------------------------------------------------------

#[test]
fn crash_loop_backoff_doubles_from_the_base() {
    let agent = Agent::start();
    agent.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  containers:
  - name: boom
    image: busybox
    command: ["sh", "-c", "echo crashing; exit 1"]
"#,
    );
    agent.wait_pod("crasher", "a first attempt", Duration::from_secs(20), |p| {
        container(p, "boom")["containerID"].is_string()
    });
    let started = Instant::now();
    let uid = agent.uid("crasher");
    // Note the moments the restart count changes.
    let mut changes: Vec<(i64, Duration)> = Vec::new();
    let mut seen_get_crashloop = false;
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(8) {
        if let Some(pod) = agent.pod("crasher") {
            let count = restart_count(&pod, "boom");
            if changes.last().map(|c| c.0) != Some(count) {
                changes.push((count, started.elapsed()));
            }
            last = pod;
        }
        if !seen_get_crashloop && agent.get_status("crasher") == "CrashLoopBackOff" {
            seen_get_crashloop = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let count = restart_count(&last, "boom");
    assert!(
        (3..=5).contains(&count),
        "after ~8 s with a 1 s base, 3..5 restarts, not {count}: {changes:?}"
    );
    // As the kubelet: the first restart is at once, then the wait doubles from the base.
    let first_restart = changes.iter().find(|c| c.0 == 1).map(|c| c.1);
    assert!(
        first_restart.is_some_and(|t| t < Duration::from_millis(900)),
        "the first restart does not wait for the back-off: {changes:?}"
    );
    // The gaps grow: the last one is at least twice the base.
    let times: Vec<f64> = changes
        .iter()
        .filter(|c| c.0 >= 1)
        .map(|c| c.1.as_secs_f64())
        .collect();
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.last().is_some_and(|g| *g >= 1.6),
        "the back-off doubles (restart times {changes:?})"
    );
    assert!(
        gaps.iter().all(|g| *g >= 0.7),
        "each restart waits at least the base: {changes:?}"
    );

    let pod = agent.wait_pod(
        "crasher",
        "waiting in CrashLoopBackOff",
        Duration::from_secs(10),
        |p| waiting_reason(p, "boom") == "CrashLoopBackOff",
    );
    let boom = container(&pod, "boom");
    let message = boom["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("back-off ")
            && message.contains(&format!(
                "restarting failed container=boom pod=crasher_default({uid})"
            )),
        "waiting message: {message:?}"
    );
    let last_term = &boom["lastState"]["terminated"];
    assert_eq!(last_term["exitCode"], 1, "{boom:#}");
    assert_eq!(last_term["reason"], "Error", "{boom:#}");
    assert_eq!(
        pod["status"]["phase"], "Running",
        "a crash-looping pod stays Running"
    );
    assert!(
        seen_get_crashloop || agent.get_status("crasher") == "CrashLoopBackOff",
        "get shows CrashLoopBackOff"
    );
    let events = agent.ok(&["events"]);
    let backoff = events
        .lines()
        .find(|l| l.contains("BackOff"))
        .unwrap_or_else(|| panic!("no BackOff event:\n{events}"));
    assert!(
        backoff.contains("Warning")
            && backoff.contains("Back-off restarting failed container boom"),
        "{backoff}"
    );
    assert!(agent.ok(&["logs", "crasher"]).contains("crashing"));

    agent.delete_and_check("crasher", "0");
}

// ----- 4. restart policies -----------------------------------------------------------------

fn one_shot(name: &str, policy: &str, script: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 1
  containers:
  - name: job
    image: busybox
    command: ["sh", "-c", "{script}"]
"#
    )
}

#[test]
fn restart_policies_decide_restarts_and_phase() {
    let agent = Agent::start();
    agent.apply(&one_shot("onfailure-ok", "OnFailure", "echo done; exit 0"));
    agent.apply(&one_shot(
        "onfailure-bad",
        "OnFailure",
        "echo failing; exit 3",
    ));
    agent.apply(&one_shot("never-bad", "Never", "echo failing; exit 3"));

    let ok = agent.wait_phase("onfailure-ok", "Succeeded", Duration::from_secs(20));
    let job = container(&ok, "job");
    assert_eq!(job["state"]["terminated"]["reason"], "Completed", "{job:#}");
    assert_eq!(job["state"]["terminated"]["exitCode"], 0);
    assert_eq!(agent.get_status("onfailure-ok"), "Completed");

    let bad = agent.wait_pod("onfailure-bad", "a restart", Duration::from_secs(20), |p| {
        restart_count(p, "job") >= 1
    });
    assert_eq!(
        container(&bad, "job")["lastState"]["terminated"]["exitCode"],
        3,
        "{bad:#}"
    );
    assert_eq!(
        bad["status"]["phase"], "Running",
        "OnFailure keeps retrying: {bad:#}"
    );

    let never = agent.wait_phase("never-bad", "Failed", Duration::from_secs(20));
    let job = container(&never, "job");
    assert_eq!(job["state"]["terminated"]["reason"], "Error", "{job:#}");
    assert_eq!(job["state"]["terminated"]["exitCode"], 3);
    assert_eq!(job["restartCount"], 0);
    assert_eq!(agent.get_status("never-bad"), "Error");

    // Give a wrong restart the time to happen: none does.
    std::thread::sleep(Duration::from_secs(2));
    let ok = agent.pod("onfailure-ok").unwrap();
    assert_eq!(
        restart_count(&ok, "job"),
        0,
        "exit 0 under OnFailure is not restarted"
    );
    assert_eq!(ok["status"]["phase"], "Succeeded");
    let never = agent.pod("never-bad").unwrap();
    assert_eq!(restart_count(&never, "job"), 0, "Never does not restart");
    assert_eq!(never["status"]["phase"], "Failed");
    assert_eq!(agent.ok(&["logs", "never-bad"]), "failing\n");
    // Conditions of terminal pods, as the kubelet writes them.
    assert_eq!(
        condition(&never, "Ready")["reason"],
        "PodFailed",
        "{never:#}"
    );
    assert_eq!(condition(&never, "ContainersReady")["reason"], "PodFailed");
    assert_eq!(condition(&never, "Initialized")["status"], "True");
    assert_eq!(condition(&ok, "Ready")["reason"], "PodCompleted", "{ok:#}");
    assert_eq!(condition(&ok, "Initialized")["status"], "True");
    assert_sandbox_released(&agent, "never-bad");
    assert_sandbox_released(&agent, "onfailure-ok");

    agent.delete_and_check("onfailure-ok", "0");
    agent.delete_and_check("onfailure-bad", "0");
    agent.delete_and_check("never-bad", "0");
}

// ----- 5. init containers ------------------------------------------------------------------

#[test]
fn init_containers_run_in_order_before_the_app() {
    let agent = Agent::start();
    agent.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: inits}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: work, emptyDir: {}}
  initContainers:
  - name: first
    image: busybox
    command: ["sh", "-c", "echo first-start >> /w/order; sleep 2; echo first-end >> /w/order"]
    volumeMounts: [{name: work, mountPath: /w}]
  - name: second
    image: busybox
    command: ["sh", "-c", "echo second-start >> /w/order"]
    volumeMounts: [{name: work, mountPath: /w}]
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "echo app-start >> /w/order; exec sleep 3600"]
    volumeMounts: [{name: work, mountPath: /w}]
"#,
    );
    let pending = agent.wait_pod("inits", "first running", Duration::from_secs(20), |p| {
        container(p, "first")["state"]["running"].is_object()
    });
    assert_eq!(pending["status"]["phase"], "Pending");
    assert!(
        container(&pending, "second")["state"]["waiting"].is_object(),
        "{pending:#}"
    );
    assert_eq!(waiting_reason(&pending, "app"), "PodInitializing");
    assert_eq!(container(&pending, "first")["ready"], false, "{pending:#}");
    assert_eq!(agent.get_status("inits"), "Init:0/2");

    let pod = agent.wait_running("inits");
    let (code, order, _) = agent.exec("inits", "app", &["cat", "/w/order"]);
    assert_eq!(code, 0);
    assert_eq!(order, "first-start\nfirst-end\nsecond-start\napp-start\n");
    let first = &container(&pod, "first")["state"]["terminated"];
    let second = &container(&pod, "second")["state"]["terminated"];
    assert_eq!(
        (first["exitCode"].as_i64(), first["reason"].as_str()),
        (Some(0), Some("Completed"))
    );
    assert_eq!(
        (second["exitCode"].as_i64(), second["reason"].as_str()),
        (Some(0), Some("Completed"))
    );
    assert!(
        timestamp(&second["startedAt"]) >= timestamp(&first["finishedAt"]),
        "second starts after first exits"
    );
    // kubelet reports an init container that exited 0 ready (the InitContainer conformance
    // tests check it).
    for name in ["first", "second"] {
        assert_eq!(container(&pod, name)["ready"], true, "{name}: {pod:#}");
    }
    let app_started = timestamp(&container(&pod, "app")["state"]["running"]["startedAt"]);
    assert!(
        app_started >= timestamp(&second["finishedAt"]),
        "app starts after the inits"
    );
    assert_eq!(condition(&pod, "Initialized")["status"], "True");
    agent.delete_and_check("inits", "0");
}

fn failing_init(name: &str, policy: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: setup
    image: busybox
    command: ["sh", "-c", "echo setup failing; exit 2"]
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
"#
    )
}

#[test]
fn a_failing_init_container_follows_the_restart_policy() {
    let agent = Agent::start();
    agent.apply(&failing_init("init-never", "Never"));
    agent.apply(&failing_init("init-always", "Always"));

    let failed = agent.wait_phase("init-never", "Failed", Duration::from_secs(20));
    let setup = container(&failed, "setup");
    assert_eq!(setup["state"]["terminated"]["exitCode"], 2, "{failed:#}");
    assert_eq!(setup["state"]["terminated"]["reason"], "Error");
    assert_eq!(
        setup["ready"], false,
        "a failed init container is not ready"
    );
    let app = container(&failed, "app");
    assert!(
        app["containerID"].is_null(),
        "the app never started: {failed:#}"
    );
    assert!(
        app["state"]["running"].is_null() && app["state"]["terminated"].is_null(),
        "{app:#}"
    );
    assert_eq!(agent.get_status("init-never"), "Init:Error");
    let initialized = condition(&failed, "Initialized");
    assert_eq!(
        initialized["status"], "False",
        "a pod failed in init is not initialized: {failed:#}"
    );
    assert_eq!(initialized["reason"], "ContainersNotInitialized");
    assert_eq!(
        initialized["message"],
        "containers with incomplete status: [setup]"
    );
    assert_sandbox_released(&agent, "init-never");

    let mut statuses = Vec::new();
    let looping = agent.wait_pod(
        "init-always",
        "init in CrashLoopBackOff",
        Duration::from_secs(20),
        |p| waiting_reason(p, "setup") == "CrashLoopBackOff" && restart_count(p, "setup") >= 1,
    );
    for _ in 0..30 {
        let s = agent.get_status("init-always");
        if !statuses.contains(&s) {
            statuses.push(s.clone());
        }
        if s == "Init:CrashLoopBackOff" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        statuses.iter().any(|s| s == "Init:CrashLoopBackOff"),
        "get STATUS: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| s.starts_with("Init:")),
        "get STATUS: {statuses:?}"
    );
    assert_eq!(looping["status"]["phase"], "Pending");
    assert_eq!(
        container(&looping, "setup")["lastState"]["terminated"]["reason"],
        "Error"
    );
    assert!(
        container(&looping, "app")["containerID"].is_null(),
        "the app never started"
    );
    // Still restarting later, with growing back-off (never started the app).
    let later = agent.wait_pod(
        "init-always",
        "a second init restart",
        Duration::from_secs(15),
        |p| restart_count(p, "setup") >= 2,
    );
    assert!(container(&later, "app")["containerID"].is_null());

    // Nothing more happens to the Never pod.
    let still = agent.pod("init-never").unwrap();
    assert_eq!(restart_count(&still, "setup"), 0);
    assert_eq!(still["status"]["phase"], "Failed");

    agent.delete_and_check("init-never", "0");
    agent.delete_and_check("init-always", "0");
}

// ----- 6. native sidecars ------------------------------------------------------------------

#[test]
fn native_sidecar_runs_beside_the_app_and_stops_after_it() {
    let agent = Agent::start();
    agent.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: sidecar}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  volumes:
  - {name: work, emptyDir: {}}
  initContainers:
  - name: helper
    image: busybox
    restartPolicy: Always
    command: ["sh", "-c", "trap 'echo helper stopping; exit 0' TERM; echo up > /w/helper; sleep 3600 & wait"]
    volumeMounts: [{name: work, mountPath: /w}]
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "cat /w/helper && echo saw-helper; sleep 3; echo app done"]
    volumeMounts: [{name: work, mountPath: /w}]
"#,
    );
    let both = agent.wait_pod(
        "sidecar",
        "app and helper running",
        Duration::from_secs(20),
        |p| {
            container(p, "app")["state"]["running"].is_object()
                && container(p, "helper")["state"]["running"].is_object()
        },
    );
    assert_eq!(both["status"]["phase"], "Running");
    let helper_started = timestamp(&container(&both, "helper")["state"]["running"]["startedAt"]);
    let app_started = timestamp(&container(&both, "app")["state"]["running"]["startedAt"]);
    assert!(
        helper_started <= app_started,
        "the sidecar starts before the app"
    );
    assert!(container(&both, "helper")["started"] == true);
    let (code, _, _) = agent.exec("sidecar", "helper", &["true"]);
    assert_eq!(code, 0, "the sidecar runs beside the app");

    let done = agent.wait_phase("sidecar", "Succeeded", Duration::from_secs(20));
    let app = &container(&done, "app")["state"]["terminated"];
    let helper = &container(&done, "helper")["state"]["terminated"];
    assert_eq!(app["exitCode"], 0, "{done:#}");
    assert!(helper.is_object(), "the sidecar is stopped: {done:#}");
    assert!(
        timestamp(&helper["finishedAt"]) >= timestamp(&app["finishedAt"]),
        "the sidecar stops after the app"
    );
    assert_eq!(
        restart_count(&done, "helper"),
        0,
        "a sidecar stopped for termination is not restarted"
    );
    let app_logs = agent.ok(&["logs", "sidecar", "-c", "app"]);
    assert_eq!(app_logs, "up\nsaw-helper\napp done\n");
    assert_eq!(
        agent.ok(&["logs", "sidecar", "-c", "helper"]),
        "helper stopping\n"
    );
    std::thread::sleep(Duration::from_secs(1));
    let still = agent.pod("sidecar").unwrap();
    assert_eq!(still["status"]["phase"], "Succeeded");
    assert_eq!(restart_count(&still, "helper"), 0);
    agent.delete_and_check("sidecar", "0");
}

// ----- 7. logs -----------------------------------------------------------------------------

const TALKER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: state, emptyDir: {}}
  containers:
  - name: ticker
    image: busybox
    command: ["sh", "-c", "for i in 1 2 3 4 5; do echo line-$i; done; i=0; while true; do i=$((i+1)); sleep 0.5; echo tick-$i; done"]
  - name: counter
    image: busybox
    command: ["sh", "-c", "n=$(cat /s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /s/n; echo attempt $n; echo to-stderr $n >&2; exec sleep 3600"]
    volumeMounts: [{name: state, mountPath: /s}]
"#;

#[test]
fn logs_tail_timestamps_previous_follow_and_cri_files() {
    let agent = Agent::start();
    agent.apply(TALKER);
    let pod = agent.wait_running("talker");
    let uid = agent.uid("talker");
    wait_until(Duration::from_secs(10), "ticker's first ticks", || {
        agent
            .ok(&["logs", "talker", "-c", "ticker"])
            .contains("tick-2")
    });

    let all = agent.ok(&["logs", "talker", "-c", "ticker"]);
    assert!(
        all.starts_with("line-1\nline-2\nline-3\nline-4\nline-5\ntick-1\n"),
        "{all}"
    );
    let positional = agent.ok(&["logs", "talker", "ticker"]);
    assert!(positional.starts_with("line-1\n"), "{positional}");

    let tail = agent.ok(&["logs", "talker", "-c", "counter", "--tail", "1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    let tail = agent.ok(&["logs", "talker", "-c", "ticker", "--tail", "2"]);
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 2, "--tail 2: {tail:?}");
    assert!(lines.iter().all(|l| l.starts_with("tick-")), "{tail:?}");
    let n: Vec<u64> = lines.iter().map(|l| l[5..].parse().unwrap()).collect();
    assert_eq!(n[1], n[0] + 1, "the last two lines, in order: {tail:?}");

    let stamped = agent.ok(&["logs", "talker", "-c", "counter", "--timestamps"]);
    let mut saw = Vec::new();
    for line in stamped.lines() {
        let (stamp, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("no timestamp: {line}"));
        assert!(is_rfc3339(stamp), "RFC3339 prefix: {line}");
        saw.push(rest.to_string());
    }
    saw.sort();
    assert_eq!(saw, vec!["attempt 1", "to-stderr 1"], "{stamped}");

    // The CRI log file at the kubelet's path.
    let file = agent
        .path()
        .join(format!("var/log/pods/default_talker_{uid}/counter/0.log"));
    let content =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut streams = Vec::new();
    for line in content.lines() {
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        assert_eq!(parts.len(), 4, "CRI line: {line}");
        assert!(
            is_rfc3339(parts[0]) && parts[0].contains('.'),
            "RFC3339Nano: {line}"
        );
        assert_eq!(parts[2], "F", "{line}");
        streams.push(format!("{} {}", parts[1], parts[3]));
    }
    streams.sort();
    assert_eq!(
        streams,
        vec!["stderr to-stderr 1", "stdout attempt 1"],
        "{content}"
    );

    // --previous after a restart shows the previous attempt's output.
    let none = agent.cli(&["logs", "talker", "-c", "counter", "--previous"]);
    assert!(!none.status.success(), "no previous attempt yet");
    kill_container(&uid, &container_id_of(&pod, "counter"));
    agent.wait_pod(
        "talker",
        "counter restarted",
        Duration::from_secs(20),
        |p| restart_count(p, "counter") == 1 && all_running(p),
    );
    wait_until(
        Duration::from_secs(5),
        "the second attempt's output",
        || {
            agent
                .ok(&["logs", "talker", "-c", "counter"])
                .contains("attempt 2")
        },
    );
    let current = agent.ok(&["logs", "talker", "-c", "counter"]);
    assert!(!current.contains("attempt 1"), "{current}");
    let previous = agent.ok(&["logs", "talker", "-c", "counter", "--previous"]);
    assert!(
        previous.contains("attempt 1") && !previous.contains("attempt 2"),
        "{previous}"
    );
    let previous_short = agent.ok(&["logs", "talker", "-c", "counter", "-p"]);
    assert_eq!(previous_short, previous);

    // -f follows new lines.
    let mut follow = Command::new(peapod_bin())
        .args(["logs", "talker", "-c", "ticker", "-f", "--tail", "1"])
        .env("PEAPOD_ROOT", agent.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send((line, Instant::now())).is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 3 && Instant::now() < deadline {
        if let Ok(item) = rx.recv_timeout(Duration::from_millis(200)) {
            got.push(item);
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(got.len(), 3, "-f: the last line and two new ones: {got:?}");
    let ticks: Vec<u64> = got
        .iter()
        .map(|(l, _)| {
            l.strip_prefix("tick-")
                .unwrap_or_else(|| panic!("{l}"))
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(ticks, vec![ticks[0], ticks[0] + 1, ticks[0] + 2], "{got:?}");
    assert!(
        got[2].1 - got[1].1 >= Duration::from_millis(250),
        "lines arrive as they are written: {got:?}"
    );

    agent.delete_and_check("talker", "0");
}

// ----- 8. exec -----------------------------------------------------------------------------

const SHELL: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
"#;

#[test]
fn exec_passes_exit_codes_streams_and_stdin() {
    let agent = Agent::start();
    agent.apply(SHELL);
    agent.wait_running("shell");

    let (code, out, err) = agent.exec("shell", "main", &["sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "exit code passed through: {out}{err}");

    let (code, out, err) = agent.exec(
        "shell",
        "main",
        &["sh", "-c", "echo to-out; echo to-err >&2"],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "to-out\n");
    assert_eq!(err, "to-err\n");

    let cat = agent.cli_stdin_within(
        &["exec", "-i", "shell", "--", "cat"],
        "hello",
        Duration::from_secs(10),
    );
    assert!(cat.status.success(), "{}", text(&cat.stderr));
    assert_eq!(text(&cat.stdout), "hello");

    let wc = agent.cli_stdin_within(
        &["exec", "-i", "shell", "-c", "main", "--", "wc", "-l"],
        "a\nb\nc\n",
        Duration::from_secs(10),
    );
    assert_eq!(text(&wc.stdout).trim(), "3", "{}", text(&wc.stderr));

    let (code, out, _) = agent.exec("shell", "main", &["sh", "-c", "echo $HOSTNAME; pwd"]);
    assert_eq!((code, out.as_str()), (0, "shell\n/\n"));

    let missing = agent.cli(&["exec", "shell", "-c", "nope", "--", "true"]);
    assert!(
        !missing.status.success(),
        "exec into a missing container fails"
    );
    let err = text(&missing.stderr);
    // kubectl's wording (the API server's validation of pods/exec).
    assert!(
        err.contains("container nope is not valid for pod shell"),
        "a clear error: {err}"
    );

    let no_pod = agent.cli(&["exec", "ghost", "--", "true"]);
    assert!(!no_pod.status.success());
    assert!(
        text(&no_pod.stderr).contains("pods \"ghost\" not found"),
        "{}",
        text(&no_pod.stderr)
    );

    let (code, _, err) = agent.exec("shell", "main", &["/no/such/binary"]);
    assert_ne!(code, 0, "a missing binary fails");
    assert!(!err.is_empty(), "and says why");

    agent.delete_and_check("shell", "0");
}

#[test]
fn exec_stdin_sent_at_once_is_never_lost() {
    let agent = Agent::start();
    agent.apply(SHELL);
    agent.wait_running("shell");
    // At the shim: stdin frames that arrive together with the exec request line
    // (the agent forwards them as soon as the CLI sends them) must reach the process.
    let pod = agent.pod("shell").unwrap();
    let (uid, id) = (agent.uid("shell"), container_id_of(&pod, "main"));
    let reply = shim_exec_in_one_write(&agent, &uid, id.trim_start_matches("peapod://"), b"hello");
    assert_eq!(
        reply.as_deref(),
        Some("5\n"),
        "stdin sent with the exec request is delivered, EOF included"
    );

    // Through the CLI, repeatedly: stdin sent right after the upgrade must never be lost
    // (a lost EOF leaves `wc` waiting for ever).
    for _ in 0..20 {
        let wc = agent.cli_stdin_within(
            &["exec", "-i", "shell", "-c", "main", "--", "wc", "-l"],
            "a\nb\nc\n",
            Duration::from_secs(10),
        );
        assert_eq!(text(&wc.stdout).trim(), "3", "{}", text(&wc.stderr));
    }

    agent.delete_and_check("shell", "0");
}
