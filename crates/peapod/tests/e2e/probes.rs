//! Probes run for real, checked against what kubelet does (Kubernetes' "Probing container"
//! conformance cases with short periods): liveness restarts with Unhealthy and Killing events,
//! readiness drives the ready flag and the Ready condition without restarts, a startup probe
//! holds the others back, exec/httpGet/tcpSocket/grpc handlers, timeouts, broken probes and
//! deletion.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// A pod with the given containers (YAML list items, indented by two spaces).
fn pod(name: &str, extra_spec: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n{extra_spec}  containers:\n{containers}"
    )
}

/// A busybox container running `script` with `probes` (YAML at container level).
fn busybox(name: &str, script: &str, probes: &str) -> String {
    format!(
        "  - name: {name}\n    image: busybox\n    imagePullPolicy: IfNotPresent\n    command: [\"sh\", \"-c\", {script:?}]\n{probes}"
    )
}

/// A script that serves `/www/index.html` with busybox httpd on `port`, after `delay` seconds.
fn httpd(port: u16, delay: u32) -> String {
    format!(
        "mkdir -p /www && echo ok > /www/index.html && sleep {delay} && exec httpd -f -p {port} -h /www"
    )
}

fn restarts(pod: &Value, name: &str) -> i64 {
    container(pod, name)["restartCount"].as_i64().unwrap_or(-1)
}

fn message(event: &Value) -> &str {
    event["message"].as_str().unwrap_or("")
}

fn field_path(event: &Value) -> &str {
    event["involvedObject"]["fieldPath"].as_str().unwrap_or("")
}

/// The pod's events whose message contains `part`.
fn events_containing(agent: &Agent, uid: &str, part: &str) -> Vec<Value> {
    agent
        .events_of(uid)
        .into_iter()
        .filter(|e| message(e).contains(part))
        .collect()
}

fn seconds_between(from: &Value, to: &Value) -> i64 {
    timestamp(to).as_second() - timestamp(from).as_second()
}

const T: Duration = Duration::from_secs(30);

// ----- 1, 2: exec liveness ---------------------------------------------------------------

#[test]
fn exec_liveness_failure_restarts_the_container_with_events() {
    let agent = Agent::start();
    agent.apply(&pod(
        "live-exec",
        "",
        &busybox(
            "c",
            "touch /tmp/healthy; sleep 3; rm -f /tmp/healthy; sleep 600",
            "    livenessProbe:\n      exec: {command: [cat, /tmp/healthy]}\n      periodSeconds: 1\n      failureThreshold: 1\n",
        ),
    ));
    let running = agent.wait_running("live-exec");
    let uid = agent.uid("live-exec");
    let first = container_id_of(&running, "c");
    let restarted = agent.wait_pod("live-exec", "a restart", T, |p| restarts(p, "c") >= 1);
    let c = container(&restarted, "c");
    assert_eq!(c["restartCount"], 1, "{c:#}");
    let last = &c["lastState"]["terminated"];
    assert_eq!(last["containerID"], first.as_str(), "{c:#}");
    // sh as PID 1 ignores SIGTERM: SIGKILL after the (minimum 2 s) grace period.
    assert_eq!(last["exitCode"], 137, "{c:#}");
    assert_eq!(last["reason"], "Error", "{c:#}");
    assert!(
        seconds_between(&last["startedAt"], &last["finishedAt"]) >= 3,
        "the probe passed while the file existed: {c:#}"
    );
    assert_ne!(
        c["containerID"],
        first.as_str(),
        "a new instance runs: {c:#}"
    );

    let unhealthy = agent.wait_event(&uid, "Unhealthy", T, |m| m.starts_with("Liveness"));
    assert_eq!(
        message(&unhealthy).trim_end(),
        "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory"
    );
    assert_eq!(unhealthy["type"], "Warning");
    assert_eq!(field_path(&unhealthy), "spec.containers{c}");
    let killing = agent.wait_event(&uid, "Killing", T, |m| m.contains("liveness"));
    assert_eq!(
        message(&killing),
        "Container c failed liveness probe, will be restarted"
    );
    assert_eq!(killing["type"], "Normal");
    assert_eq!(field_path(&killing), "spec.containers{c}");
    let described = agent.ok(&["describe", "pod", "live-exec"]);
    assert!(
        described.contains("Liveness probe failed") && described.contains("Unhealthy"),
        "{described}"
    );
    agent.delete_and_check("live-exec", "0");
}

#[test]
fn exec_liveness_that_passes_never_restarts() {
    let agent = Agent::start();
    agent.apply(&pod(
        "live-ok",
        "",
        &busybox(
            "c",
            "touch /tmp/healthy; sleep 600",
            "    livenessProbe:\n      exec: {command: [sh, -c, \"date >> /tmp/probed; cat /tmp/healthy\"]}\n      periodSeconds: 1\n      failureThreshold: 1\n",
        ),
    ));
    agent.wait_running("live-ok");
    let uid = agent.uid("live-ok");
    std::thread::sleep(Duration::from_secs(8));
    let pod = agent.pod("live-ok").unwrap();
    assert_eq!(restarts(&pod, "c"), 0, "{pod:#}");
    assert!(container(&pod, "c")["state"]["running"].is_object());
    let (code, probed, err) = agent.exec("live-ok", "c", &["cat", "/tmp/probed"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        probed.lines().count() >= 6,
        "the probe runs every second: {probed:?}"
    );
    let complaints: Vec<Value> = agent
        .events_of(&uid)
        .into_iter()
        .filter(|e| e["reason"] == "Unhealthy" || e["reason"] == "Killing")
        .collect();
    assert!(complaints.is_empty(), "{complaints:#?}");
    agent.delete_and_check("live-ok", "0");
}

// ----- 3, 4: httpGet readiness ---------------------------------------------------------------

fn ready(pod: &Value, name: &str) -> bool {
    container(pod, name)["ready"] == true
}

fn ready_column(agent: &Agent, name: &str) -> String {
    columns(&agent.ok(&["get", "pod", name]), 1)[1].to_string()
}

#[test]
fn http_readiness_drives_ready_and_conditions_without_restarts() {
    let agent = Agent::start();
    let readiness = |port: &str| {
        format!("    readinessProbe:\n      httpGet: {{path: /index.html, port: {port}}}\n      periodSeconds: 1\n      failureThreshold: 1\n")
    };
    let named = format!(
        "    ports:\n    - {{name: http, containerPort: 8081}}\n{}",
        readiness("http")
    );
    let containers = busybox("c", &httpd(8080, 3), &readiness("8080"))
        + &busybox("named", &httpd(8081, 3), &named);
    agent.apply(&pod("ready-http", "", &containers));
    let uid;
    {
        let running = agent.wait_running("ready-http");
        uid = running["metadata"]["uid"].as_str().unwrap().to_string();
        assert!(
            !ready(&running, "c") && !ready(&running, "named"),
            "{running:#}"
        );
        for type_ in ["Ready", "ContainersReady"] {
            let cond = condition(&running, type_);
            assert_eq!(cond["status"], "False", "{running:#}");
            assert_eq!(cond["reason"], "ContainersNotReady", "{running:#}");
            assert_eq!(
                cond["message"], "containers with unready status: [c named]",
                "{running:#}"
            );
        }
    }
    let all_ready =
        |p: &Value| ready(p, "c") && ready(p, "named") && condition(p, "Ready")["status"] == "True";
    // Before httpd listens, the probe's transport error (Go's text) is the failure.
    let ip = agent.pod("ready-http").unwrap()["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = agent.wait_event(&uid, "Unhealthy", T, |m| m.contains("8080"));
    assert_eq!(
        message(&refused),
        format!(
            "Readiness probe failed: Get \"http://{ip}:8080/index.html\": dial tcp {ip}:8080: connect: connection refused"
        )
    );
    let up = agent.wait_pod("ready-http", "both containers ready", T, all_ready);
    assert_eq!(
        condition(&up, "ContainersReady")["status"],
        "True",
        "{up:#}"
    );
    assert_eq!(ready_column(&agent, "ready-http"), "2/2");

    // The endpoint starts failing: not ready, never restarted.
    let (code, _, err) = agent.exec("ready-http", "c", &["rm", "/www/index.html"]);
    assert_eq!(code, 0, "{err}");
    let down = agent.wait_pod("ready-http", "c unready", T, |p| {
        !ready(p, "c") && condition(p, "Ready")["status"] == "False"
    });
    assert!(ready(&down, "named"), "{down:#}");
    assert_eq!(
        condition(&down, "Ready")["message"],
        "containers with unready status: [c]"
    );
    assert_eq!(condition(&down, "ContainersReady")["status"], "False");
    assert_eq!(ready_column(&agent, "ready-http"), "1/2");
    let unhealthy = agent.wait_event(&uid, "Unhealthy", T, |m| m.contains("statuscode"));
    assert_eq!(
        message(&unhealthy),
        "Readiness probe failed: HTTP probe failed with statuscode: 404"
    );
    assert_eq!(field_path(&unhealthy), "spec.containers{c}");
    std::thread::sleep(Duration::from_secs(2));
    let still = agent.pod("ready-http").unwrap();
    assert!(!ready(&still, "c"), "{still:#}");
    assert_eq!(
        restarts(&still, "c"),
        0,
        "readiness never restarts: {still:#}"
    );

    // And recovers.
    let (code, _, err) = agent.exec(
        "ready-http",
        "c",
        &["sh", "-c", "echo ok > /www/index.html"],
    );
    assert_eq!(code, 0, "{err}");
    let back = agent.wait_pod("ready-http", "ready again", T, all_ready);
    assert_eq!(restarts(&back, "c"), 0);
    assert_eq!(restarts(&back, "named"), 0);
    assert!(
        agent
            .events_of(&uid)
            .iter()
            .all(|e| e["reason"] != "Killing"),
        "no kill for readiness"
    );
    agent.delete_and_check("ready-http", "0");
}

#[test]
fn readiness_waits_for_its_initial_delay() {
    let agent = Agent::start();
    agent.apply(&pod(
        "ready-delay",
        "",
        &busybox(
            "c",
            &httpd(8080, 0),
            "    readinessProbe:\n      httpGet: {path: /index.html, port: 8080}\n      initialDelaySeconds: 3\n      periodSeconds: 1\n",
        ),
    ));
    let ready_pod = agent.wait_pod("ready-delay", "Ready", T, |p| {
        condition(p, "Ready")["status"] == "True"
    });
    let c = container(&ready_pod, "c");
    assert_eq!(c["ready"], true);
    let started = &c["state"]["running"]["startedAt"];
    let became_ready = &condition(&ready_pod, "Ready")["lastTransitionTime"];
    let waited = seconds_between(started, became_ready);
    assert!(
        (3..=6).contains(&waited),
        "ready {waited} s after the start, initialDelaySeconds 3: {ready_pod:#}"
    );
    assert_eq!(c["restartCount"], 0);
    agent.delete_and_check("ready-delay", "0");
}

// ----- 5: tcpSocket ---------------------------------------------------------------------------

#[test]
fn tcp_liveness_restarts_only_when_nothing_listens() {
    let agent = Agent::start();
    let probe = |port: u16| {
        format!("    livenessProbe:\n      tcpSocket: {{port: {port}}}\n      periodSeconds: 1\n      failureThreshold: 2\n")
    };
    agent.apply(&pod(
        "tcp-dead",
        "",
        &busybox("c", "sleep 600", &probe(9999)),
    ));
    agent.apply(&pod(
        "tcp-alive",
        "",
        &busybox("c", &httpd(8080, 0), &probe(8080)),
    ));
    agent.wait_running("tcp-alive");
    let alive_since = Instant::now();
    let dead_uid = agent.uid("tcp-dead");
    let alive_uid = agent.uid("tcp-alive");
    let ip = agent.wait_running("tcp-dead")["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();

    agent.wait_pod("tcp-dead", "a restart", T, |p| restarts(p, "c") >= 1);
    let unhealthy = agent.wait_event(&dead_uid, "Unhealthy", T, |m| m.starts_with("Liveness"));
    let text = message(&unhealthy);
    assert!(
        text.starts_with("Liveness probe failed: ")
            && text.contains(&format!("{ip}:9999"))
            && text.contains("connection refused"),
        "{text}"
    );
    let killing = agent.wait_event(&dead_uid, "Killing", T, |m| m.contains("liveness"));
    assert_eq!(
        message(&killing),
        "Container c failed liveness probe, will be restarted"
    );

    let left = Duration::from_secs(6).saturating_sub(alive_since.elapsed());
    std::thread::sleep(left);
    let alive = agent.pod("tcp-alive").unwrap();
    assert_eq!(restarts(&alive, "c"), 0, "{alive:#}");
    assert!(
        agent
            .events_of(&alive_uid)
            .iter()
            .all(|e| e["reason"] != "Unhealthy" && e["reason"] != "Killing"),
        "{:#?}",
        agent.events_of(&alive_uid)
    );
    agent.delete_and_check("tcp-dead", "0");
    agent.delete_and_check("tcp-alive", "0");
}

// ----- 6: startup probes ------------------------------------------------------------------------

#[test]
fn startup_probe_holds_liveness_back_until_it_succeeds() {
    let agent = Agent::start();
    agent.apply(&pod(
        "startup-late",
        "",
        &busybox(
            "c",
            "sleep 3; touch /tmp/started; sleep 600",
            "    startupProbe:\n      exec: {command: [cat, /tmp/started]}\n      periodSeconds: 1\n      failureThreshold: 10\n    livenessProbe:\n      exec: {command: [sh, -c, \"exit 1\"]}\n      periodSeconds: 1\n      failureThreshold: 1\n",
        ),
    ));
    let running = agent.wait_running("startup-late");
    let uid = agent.uid("startup-late");
    let first = container_id_of(&running, "c");
    // While the startup probe fails: not started, not ready, not killed.
    let until = Instant::now() + Duration::from_millis(2000);
    while Instant::now() < until {
        let pod = agent.pod("startup-late").unwrap();
        let c = container(&pod, "c");
        if c["containerID"] == first.as_str() && c["state"]["running"].is_object() {
            assert_eq!(c["started"], false, "before /tmp/started exists: {c:#}");
            assert_eq!(c["ready"], false, "{c:#}");
        }
        assert_eq!(c["restartCount"], 0, "{c:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let restarted = agent.wait_pod("startup-late", "a restart", T, |p| restarts(p, "c") >= 1);
    let last = &container(&restarted, "c")["lastState"]["terminated"];
    assert_eq!(last["containerID"], first.as_str(), "{restarted:#}");
    assert!(
        seconds_between(&last["startedAt"], &last["finishedAt"]) >= 3,
        "liveness ran only after the startup probe passed: {last:#}"
    );
    let killing = agent.wait_event(&uid, "Killing", T, |m| m.contains("failed"));
    assert_eq!(
        message(&killing),
        "Container c failed liveness probe, will be restarted"
    );
    assert!(events_containing(&agent, &uid, "failed startup probe").is_empty());
    let startup = agent.wait_event(&uid, "Unhealthy", T, |m| m.starts_with("Startup"));
    assert_eq!(
        message(&startup).trim_end(),
        "Startup probe failed: cat: can't open '/tmp/started': No such file or directory"
    );
    agent.delete_and_check("startup-late", "0");
}

#[test]
fn startup_probe_that_never_succeeds_kills_the_container() {
    let agent = Agent::start();
    agent.apply(&pod(
        "startup-never",
        "",
        &busybox(
            "c",
            "sleep 600",
            "    startupProbe:\n      exec: {command: [cat, /tmp/never]}\n      periodSeconds: 1\n      failureThreshold: 2\n    livenessProbe:\n      exec: {command: [sh, -c, \"exit 1\"]}\n      periodSeconds: 1\n      failureThreshold: 1\n",
        ),
    ));
    let running = agent.wait_running("startup-never");
    let uid = agent.uid("startup-never");
    assert_eq!(container(&running, "c")["started"], false, "{running:#}");
    let restarted = agent.wait_pod("startup-never", "a restart", T, |p| restarts(p, "c") >= 1);
    assert_eq!(
        container(&restarted, "c")["started"],
        false,
        "{restarted:#}"
    );
    let killing = agent.wait_event(&uid, "Killing", T, |m| m.contains("failed"));
    assert_eq!(
        message(&killing),
        "Container c failed startup probe, will be restarted"
    );
    assert_eq!(field_path(&killing), "spec.containers{c}");
    assert!(
        events_containing(&agent, &uid, "Liveness probe").is_empty(),
        "liveness never runs before the container started"
    );
    agent.delete_and_check("startup-never", "0");
}

// ----- 7: grpc -------------------------------------------------------------------------------------

/// Binds 0.0.0.0:`port` inside the network namespace of process `pid` (from a helper thread,
/// since setns changes only the calling thread).
fn listen_in_netns_of(pid: i32, port: u16) -> std::net::TcpListener {
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("the pod's netns");
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        std::net::TcpListener::bind(("0.0.0.0", port)).expect("binding in the pod's netns")
    })
    .join()
    .unwrap()
}

#[test]
fn grpc_probes_follow_the_health_service() {
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::Arc;

    use grpc_health::{NOT_SERVING, SERVING};

    let agent = Agent::start();
    agent.apply(&pod(
        "grpc",
        "",
        &busybox(
            "c",
            "sleep 600",
            "    readinessProbe:\n      grpc: {port: 5000}\n      periodSeconds: 1\n      failureThreshold: 1\n    livenessProbe:\n      grpc: {port: 5000}\n      periodSeconds: 1\n      failureThreshold: 3\n",
        ),
    ));
    let running = agent.wait_running("grpc");
    let uid = agent.uid("grpc");
    let pids = container_pids(&uid, &container_id_of(&running, "c"));
    let listener = listen_in_netns_of(*pids.first().expect("a container pid"), 5000);
    let status = Arc::new(AtomicI32::new(SERVING));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.spawn(grpc_health::serve(listener, status.clone()));

    let up = agent.wait_pod("grpc", "ready", T, |p| {
        ready(p, "c") && condition(p, "Ready")["status"] == "True"
    });
    assert_eq!(restarts(&up, "c"), 0);
    // While SERVING: no new probe failures, no kill.
    let failures = |agent: &Agent| -> i64 {
        agent
            .events_of(&uid)
            .iter()
            .filter(|e| e["reason"] == "Unhealthy")
            .map(|e| e["count"].as_i64().unwrap_or(1))
            .sum()
    };
    let before = failures(&agent);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(failures(&agent), before, "{:#?}", agent.events_of(&uid));
    assert_eq!(restarts(&agent.pod("grpc").unwrap(), "c"), 0);
    assert!(events_containing(&agent, &uid, "failed liveness").is_empty());

    status.store(NOT_SERVING, Ordering::SeqCst);
    let down = agent.wait_pod("grpc", "unready", T, |p| !ready(p, "c"));
    assert_eq!(condition(&down, "Ready")["status"], "False", "{down:#}");
    let unhealthy = agent.wait_event(&uid, "Unhealthy", T, |m| {
        m.starts_with("Readiness") && m.contains("NOT_SERVING")
    });
    assert_eq!(
        message(&unhealthy),
        "Readiness probe failed: service unhealthy (responded with \"NOT_SERVING\")"
    );
    let live = agent.wait_event(&uid, "Unhealthy", T, |m| {
        m.starts_with("Liveness") && m.contains("NOT_SERVING")
    });
    assert_eq!(
        message(&live),
        "Liveness probe failed: service unhealthy (responded with \"NOT_SERVING\")"
    );
    agent.wait_pod("grpc", "a liveness restart", T, |p| restarts(p, "c") >= 1);
    let killing = agent.wait_event(&uid, "Killing", T, |m| m.contains("liveness"));
    assert_eq!(
        message(&killing),
        "Container c failed liveness probe, will be restarted"
    );
    drop(runtime);
    agent.delete_and_check("grpc", "0");
}

// ----- 8, 9: broken and slow exec probes --------------------------------------------------------

#[test]
fn exec_probe_with_a_missing_binary_is_reported_on_the_container() {
    let agent = Agent::start();
    agent.apply(&pod(
        "no-binary",
        "",
        &busybox(
            "c",
            "sleep 600",
            "    readinessProbe:\n      exec: {command: [/no/such/binary]}\n      periodSeconds: 1\n    livenessProbe:\n      exec: {command: [/no/such/binary]}\n      periodSeconds: 1\n      failureThreshold: 1\n",
        ),
    ));
    agent.wait_running("no-binary");
    let uid = agent.uid("no-binary");
    for kind in ["Readiness", "Liveness"] {
        let event = agent.wait_event(&uid, "Unhealthy", T, |m| m.starts_with(kind));
        let text = message(&event);
        assert!(
            text.starts_with(&format!(
                "{kind} probe errored and resulted in unknown state: "
            )) && text.contains("/no/such/binary"),
            "{text}"
        );
        assert_eq!(field_path(&event), "spec.containers{c}");
    }
    // An exec that cannot start errors (as containerd's ExecSync does): the result is
    // discarded, so liveness never kills and readiness stays at its initial "not ready".
    std::thread::sleep(Duration::from_secs(4));
    let pod = agent.pod("no-binary").unwrap();
    assert_eq!(restarts(&pod, "c"), 0, "{pod:#}");
    assert!(events_containing(&agent, &uid, "failed liveness").is_empty());
    assert!(!ready(&pod, "c"), "{pod:#}");
    assert_eq!(condition(&pod, "Ready")["status"], "False");
    let listed = agent.ok(&["get", "pods"]);
    assert!(listed.contains("no-binary"), "{listed}");
    assert_eq!(
        unsafe { libc::kill(agent.agent_pid() as i32, 0) },
        0,
        "the agent keeps running"
    );
    agent.delete_and_check("no-binary", "0");
}

#[test]
fn exec_probe_timeout_fails_the_probe() {
    let agent = Agent::start();
    let probe = |script: &str| {
        format!("    livenessProbe:\n      exec: {{command: [sh, -c, {script:?}]}}\n      timeoutSeconds: 1\n      periodSeconds: 1\n      failureThreshold: 1\n")
    };
    agent.apply(&pod(
        "slow",
        "",
        &busybox("c", "sleep 600", &probe("sleep 10")),
    ));
    // A background grandchild keeps the output open; the timeout still fires.
    agent.apply(&pod(
        "slow-bg",
        "",
        &busybox("c", "sleep 600", &probe("sleep 10 & exit 1")),
    ));
    agent.wait_running("slow");
    let uid = agent.uid("slow");
    let started = Instant::now();
    agent.wait_pod("slow", "a restart", T, |p| restarts(p, "c") >= 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "killed after a 1 s timeout, not after the 10 s command: {:?}",
        started.elapsed()
    );
    let unhealthy = agent.wait_event(&uid, "Unhealthy", T, |m| m.starts_with("Liveness"));
    assert!(message(&unhealthy).contains("timed out"), "{unhealthy:#}");
    assert_eq!(
        message(&unhealthy),
        "Liveness probe failed: command \"sh -c sleep 10\" timed out"
    );
    agent.wait_event(&uid, "Killing", T, |m| {
        m == "Container c failed liveness probe, will be restarted"
    });
    agent.wait_pod("slow-bg", "a restart", T, |p| restarts(p, "c") >= 1);
    agent.delete_and_check("slow", "0");
    agent.delete_and_check("slow-bg", "0");
}

// ----- 10, 11: restartPolicy Never, deletion -----------------------------------------------------

#[test]
fn failing_liveness_under_restart_policy_never_fails_the_pod() {
    let agent = Agent::start();
    agent.apply(&pod(
        "live-never",
        "  restartPolicy: Never\n",
        &busybox(
            "c",
            "sleep 600",
            "    livenessProbe:\n      exec: {command: [sh, -c, \"exit 1\"]}\n      periodSeconds: 1\n      failureThreshold: 1\n",
        ),
    ));
    agent.wait_running("live-never");
    let uid = agent.uid("live-never");
    let failed = agent.wait_phase("live-never", "Failed", T);
    let c = container(&failed, "c");
    assert_eq!(c["restartCount"], 0, "{c:#}");
    assert_eq!(c["state"]["terminated"]["exitCode"], 137, "{c:#}");
    assert_eq!(c["state"]["terminated"]["reason"], "Error", "{c:#}");
    assert_eq!(c["ready"], false);
    let killing = agent.wait_event(&uid, "Killing", T, |m| m.contains("liveness"));
    assert_eq!(message(&killing), "Container c failed liveness probe");
    std::thread::sleep(Duration::from_secs(3));
    let later = agent.pod("live-never").unwrap();
    assert_eq!(later["status"]["phase"], "Failed");
    assert_eq!(restarts(&later, "c"), 0);
    let kills = events_containing(&agent, &uid, "failed liveness probe");
    assert_eq!(kills.len(), 1, "{kills:#?}");
    assert_eq!(kills[0]["count"], 1, "{kills:#?}");
    agent.delete_and_check("live-never", "0");
}

#[test]
fn deleted_pod_goes_unready_and_is_not_killed_by_liveness() {
    let agent = Agent::start();
    let probe = |kind: &str| {
        format!("    {kind}:\n      exec: {{command: [cat, /tmp/live]}}\n      periodSeconds: 1\n      failureThreshold: 1\n")
    };
    agent.apply(
        &pod(
            "deleting",
            "",
            &busybox(
                "c",
                "touch /tmp/live; trap 'rm -f /tmp/live; sleep 3; exit 0' TERM; sleep 1000 & wait",
                &(probe("livenessProbe") + &probe("readinessProbe")),
            ),
        )
        .replace(
            "terminationGracePeriodSeconds: 1",
            "terminationGracePeriodSeconds: 5",
        ),
    );
    agent.wait_pod("deleting", "Ready", T, |p| {
        condition(p, "Ready")["status"] == "True"
    });
    let uid = agent.uid("deleting");
    let watch = agent.watch_pod("deleting");
    let started = Instant::now();
    agent.ok(&["delete", "pod", "deleting"]);
    let took = started.elapsed();
    let seen = watch.stop();
    assert!(
        took >= Duration::from_secs(3),
        "the TERM trap's 3 s: {took:?}"
    );
    let (after, terminated) = finished_after_delete(&seen, "c");
    assert!(
        (3..=4).contains(&after),
        "the TERM trap runs 3 s and exits within the 5 s grace: {after} s"
    );
    assert_eq!(terminated["exitCode"], 0, "not killed: {terminated:#}");
    assert!(
        seen.iter().any(|e| {
            e["type"] == "MODIFIED"
                && e["object"]["metadata"]["deletionTimestamp"].is_string()
                && condition(&e["object"], "Ready")["status"] == "False"
        }),
        "the pod goes NotReady while it terminates: {:#}",
        Value::Array(seen.clone())
    );
    assert!(agent.pod("deleting").is_none());
    let kills = events_containing(&agent, &uid, "failed liveness probe");
    assert!(kills.is_empty(), "{kills:#?}");
    let liveness = events_containing(&agent, &uid, "Liveness probe");
    assert!(
        liveness.is_empty(),
        "liveness stops when deletion starts: {liveness:#?}"
    );
    agent.leak_check(&uid);
}
