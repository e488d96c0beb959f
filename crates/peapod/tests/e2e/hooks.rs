//! Lifecycle hooks and termination as kubelet runs them (Kubernetes' "Container Lifecycle
//! Hook" conformance cases, with short timings): postStart holds the Running state back and its
//! failure kills the container; preStop (exec, httpGet, sleep) runs before the stop signal
//! within the grace period; a container that ignores SIGTERM is SIGKILLed when grace runs out.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn message(event: &Value) -> &str {
    event["message"].as_str().unwrap_or("")
}

/// `peapod delete pod NAME` (waiting until it is gone); how long it took.
fn timed_delete(agent: &Agent, name: &str) -> Duration {
    let started = Instant::now();
    agent.ok(&["delete", "pod", name]);
    let took = started.elapsed();
    assert!(agent.pod(name).is_none(), "{name} still exists");
    took
}

/// A main process that appends "term" to /data/order on SIGTERM and exits 0.
const TRAPS_TERM: &str = "trap 'echo term >> /data/order; exit 0' TERM; sleep 1000 & wait";

fn host_path_volume(dir: &Path) -> String {
    format!(
        "  volumes:\n  - name: data\n    hostPath: {{path: {}, type: Directory}}\n",
        dir.display()
    )
}

// ----- 12, 13: postStart --------------------------------------------------------------------------

#[test]
fn post_start_runs_before_the_container_is_reported_running() {
    let agent = Agent::start();
    agent.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: post-start}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "600"]
    lifecycle:
      postStart:
        exec: {command: [sh, -c, "echo started > /tmp/poststart; sleep 2"]}
"#,
    );
    let mut before = Vec::new();
    let deadline = Instant::now() + T;
    let (pod, seen_running_at) = loop {
        assert!(Instant::now() < deadline, "never running: {before:#?}");
        let pod = agent.pod("post-start").expect("the pod");
        let now = jiff::Timestamp::now();
        if container(&pod, "c")["state"]["running"].is_object() {
            break (pod, now);
        }
        before.push(pod);
        std::thread::sleep(Duration::from_millis(100));
    };
    let started_at = timestamp(&container(&pod, "c")["state"]["running"]["startedAt"]);
    let held = seen_running_at.duration_since(started_at);
    assert!(
        held >= jiff::SignedDuration::from_millis(1900),
        "Running only after the 2 s hook: reported {held:?} after startedAt {started_at}"
    );
    for earlier in &before {
        let state = &container(earlier, "c")["state"];
        assert!(
            state.is_null() || state["waiting"].is_object(),
            "not Running while postStart runs: {earlier:#}"
        );
        assert_ne!(earlier["status"]["phase"], "Running", "{earlier:#}");
    }
    let (code, out, err) = agent.exec("post-start", "c", &["cat", "/tmp/poststart"]);
    assert_eq!((code, out.as_str()), (0, "started\n"), "{err}");
    agent.delete_and_check("post-start", "0");
}

#[test]
fn failing_post_start_kills_and_restarts_the_container() {
    let agent = Agent::start();
    agent.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: post-start-fails}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "600"]
    lifecycle:
      postStart:
        exec: {command: [sh, -c, "exit 1"]}
"#,
    );
    let mut waiting_reasons = std::collections::BTreeSet::new();
    let restarted = agent.wait_pod("post-start-fails", "a restart", T, |p| {
        container(p, "c")["restartCount"].as_i64() >= Some(1)
    });
    let uid = restarted["metadata"]["uid"].as_str().unwrap().to_string();
    let failed = agent.wait_event(&uid, "FailedPostStartHook", T, |_| true);
    assert_eq!(message(&failed), "PostStartHook failed");
    assert_eq!(failed["type"], "Warning");
    assert_eq!(failed["involvedObject"]["fieldPath"], "spec.containers{c}");
    let killing = agent.wait_event(&uid, "Killing", T, |_| true);
    assert_eq!(message(&killing), "FailedPostStartHook");
    assert_eq!(killing["type"], "Normal");
    let last = &container(&restarted, "c")["lastState"]["terminated"];
    assert!(last.is_object(), "{restarted:#}");
    // It keeps failing: never Running for long, waiting with kubelet's reasons in between.
    for _ in 0..30 {
        let pod = agent.pod("post-start-fails").unwrap();
        if let Some(reason) = container(&pod, "c")["state"]["waiting"]["reason"].as_str() {
            waiting_reasons.insert(reason.to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        waiting_reasons.iter().all(|r| [
            "PostStartHookError",
            "CrashLoopBackOff",
            "ContainerCreating"
        ]
        .contains(&r.as_str())),
        "{waiting_reasons:?}"
    );
    agent.delete_and_check("post-start-fails", "0");
}

// ----- 14, 15: preStop before the signal -----------------------------------------------------------

#[test]
fn pre_stop_exec_runs_before_the_stop_signal() {
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    agent.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: pre-stop}}
spec:
  terminationGracePeriodSeconds: 5
{volumes}  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", {TRAPS_TERM:?}]
    volumeMounts: [{{name: data, mountPath: /data}}]
    lifecycle:
      preStop:
        exec: {{command: [sh, -c, "echo prestop >> /data/order; sleep 1"]}}
"#,
        volumes = host_path_volume(dir.path())
    ));
    agent.wait_running("pre-stop");
    let uid = agent.uid("pre-stop");
    let watch = agent.watch_pod("pre-stop");
    let took = timed_delete(&agent, "pre-stop");
    let seen = watch.stop();
    let order = std::fs::read_to_string(dir.path().join("order")).unwrap_or_default();
    assert_eq!(order, "prestop\nterm\n", "preStop, then SIGTERM");
    assert!(took >= Duration::from_secs(1), "the hook's 1 s: {took:?}");
    let (after, terminated) = finished_after_delete(&seen, "c");
    assert!(
        (1..=3).contains(&after),
        "the hook's 1 s, then a prompt exit on TERM within the 5 s grace: {after} s"
    );
    assert_eq!(terminated["exitCode"], 0, "{terminated:#}");
    let killing = agent.wait_event(&uid, "Killing", T, |_| true);
    assert_eq!(message(&killing), "Stopping container c");
    agent.leak_check(&uid);
}

#[test]
fn pre_stop_http_get_reaches_the_pod_before_the_stop_signal() {
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    let cgi = dir.path().join("cgi-bin");
    std::fs::create_dir(&cgi).unwrap();
    std::fs::write(
        cgi.join("hook"),
        "#!/bin/sh\necho \"$QUERY_STRING $HTTP_USER_AGENT\" >> /data/order\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'\n",
    )
    .unwrap();
    std::fs::set_permissions(
        cgi.join("hook"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    agent.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: pre-stop-http}}
spec:
  terminationGracePeriodSeconds: 5
{volumes}  containers:
  - name: web
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["httpd", "-f", "-vv", "-p", "8080", "-h", "/data"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", {TRAPS_TERM:?}]
    volumeMounts: [{{name: data, mountPath: /data}}]
    lifecycle:
      preStop:
        httpGet: {{path: "/cgi-bin/hook?msg=prestop", port: 8080}}
"#,
        volumes = host_path_volume(dir.path())
    ));
    agent.wait_running("pre-stop-http");
    let uid = agent.uid("pre-stop-http");
    let took = timed_delete(&agent, "pre-stop-http");
    let order = std::fs::read_to_string(dir.path().join("order")).unwrap_or_default();
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(lines.len(), 2, "one hook request, then TERM: {order:?}");
    assert!(
        lines[0].starts_with("msg=prestop kube-lifecycle/"),
        "the hook's GET, query and User-Agent intact: {order:?}"
    );
    assert_eq!(lines[1], "term", "{order:?}");
    // httpd (PID 1 without a TERM handler) outlives the grace period and is SIGKILLed.
    assert!(took < Duration::from_secs(9), "{took:?}");
    assert!(
        agent
            .events_of(&uid)
            .iter()
            .all(|e| e["reason"] != "FailedPreStopHook"),
        "{:#?}",
        agent.events_of(&uid)
    );
    agent.leak_check(&uid);
}

// ----- 16: preStop sleep, SIGKILL after the grace period -------------------------------------------

#[test]
fn pre_stop_sleep_delays_the_stop_signal() {
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    agent.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: pre-stop-sleep}}
spec:
  terminationGracePeriodSeconds: 10
{volumes}  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", {TRAPS_TERM:?}]
    volumeMounts: [{{name: data, mountPath: /data}}]
    lifecycle:
      preStop:
        sleep: {{seconds: 3}}
"#,
        volumes = host_path_volume(dir.path())
    ));
    agent.wait_running("pre-stop-sleep");
    let uid = agent.uid("pre-stop-sleep");
    let watch = agent.watch_pod("pre-stop-sleep");
    let took = timed_delete(&agent, "pre-stop-sleep");
    let seen = watch.stop();
    assert!(
        took >= Duration::from_secs(3),
        "3 s of preStop sleep: {took:?}"
    );
    let (after, terminated) = finished_after_delete(&seen, "c");
    assert!(
        (3..=5).contains(&after),
        "3 s of preStop sleep, then TERM ends it well within the 10 s grace: {after} s, {terminated:#}"
    );
    assert_eq!(
        terminated["exitCode"], 0,
        "the TERM trap exits 0: {terminated:#}"
    );
    let order = std::fs::read_to_string(dir.path().join("order")).unwrap_or_default();
    assert_eq!(
        order, "term\n",
        "SIGTERM came after the sleep, within grace"
    );
    agent.leak_check(&uid);
}

#[test]
fn container_ignoring_sigterm_is_killed_when_grace_runs_out() {
    let agent = Agent::start();
    agent.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap '' TERM; sleep 1000"]
"#,
    );
    agent.wait_running("stubborn");
    let uid = agent.uid("stubborn");
    let watch = agent.watch_pod("stubborn");
    let took = timed_delete(&agent, "stubborn");
    let seen = watch.stop();
    // The CLI's own wall time also counts process start-up on a loaded machine: the bound
    // that matters is the agent's, finishedAt - deletionTimestamp, checked below.
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(10),
        "SIGKILL after the 2 s grace: {took:?}; watch: {:#}\nagent log:\n{}",
        Value::Array(seen.clone()),
        agent.agent_log()
    );
    let (after, terminated) = finished_after_delete(&seen, "c");
    assert_eq!(terminated["exitCode"], 137, "{terminated:#}");
    assert_eq!(terminated["reason"], "Error", "{terminated:#}");
    assert!(
        (2..=3).contains(&after),
        "SIGKILL when the 2 s grace ran out, not before: {after} s, {terminated:#}"
    );
    let killing = agent.wait_event(&uid, "Killing", T, |_| true);
    assert_eq!(message(&killing), "Stopping container c");
    agent.leak_check(&uid);
}
