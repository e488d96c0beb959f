//! Termination messages as kubelet reports them (the cases of Kubernetes' conformance test
//! "Container Runtime ... on terminated container should report termination message"): the
//! file at terminationMessagePath wins; FallbackToLogsOnError takes the log's end only after
//! a failure with an empty file.

use std::time::Duration;

use crate::common::*;

fn pod(name: &str, path: &str, policy: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      imagePullPolicy: IfNotPresent
      terminationMessagePath: {path}
      terminationMessagePolicy: {policy}
      command: ["sh", "-c", {script:?}]
"#
    )
}

fn message(agent: &Agent, name: &str, phase: &str) -> serde_json::Value {
    let pod = agent.wait_phase(name, phase, Duration::from_secs(30));
    container(&pod, "main")["state"]["terminated"]["message"].clone()
}

#[test]
fn termination_messages_follow_the_policy() {
    let agent = Agent::start();
    let cases = [
        (
            "file-default",
            "/dev/termination-log",
            "File",
            "echo -n DONE > /dev/termination-log",
        ),
        (
            "file-custom",
            "/dev/termination-custom-log",
            "File",
            "echo -n DONE > /dev/termination-custom-log; echo noise",
        ),
        (
            "fallback-failed",
            "/dev/termination-log",
            "FallbackToLogsOnError",
            "echo -n DONE; /bin/false",
        ),
        (
            "fallback-ok",
            "/dev/termination-log",
            "FallbackToLogsOnError",
            "echo -n DONE; /bin/true",
        ),
        (
            "file-beats-log",
            "/dev/termination-log",
            "FallbackToLogsOnError",
            "echo -n OK > /dev/termination-log; echo DONE; exit 3",
        ),
        (
            "file-only",
            "/dev/termination-log",
            "File",
            "echo -n DONE; exit 1",
        ),
    ];
    for (name, path, policy, script) in cases {
        agent.apply(&pod(name, path, policy, script));
    }
    assert_eq!(message(&agent, "file-default", "Succeeded"), "DONE");
    assert_eq!(message(&agent, "file-custom", "Succeeded"), "DONE");
    assert_eq!(message(&agent, "fallback-failed", "Failed"), "DONE");
    assert!(message(&agent, "fallback-ok", "Succeeded").is_null());
    assert_eq!(message(&agent, "file-beats-log", "Failed"), "OK");
    assert!(message(&agent, "file-only", "Failed").is_null());

    let described = agent.ok(&["describe", "pod", "fallback-failed"]);
    assert!(
        described.contains("Message:") && described.contains("DONE"),
        "{described}"
    );
    for (name, ..) in cases {
        agent.delete_and_check(name, "0");
    }
}

fn deadline_pod(name: &str, deadline: Option<u32>) -> String {
    deadline_pod_with_grace(name, deadline, 1)
}

/// `sleep` as PID 1 ignores SIGTERM: its container stops only when the grace period ends.
fn deadline_pod_with_grace(name: &str, deadline: Option<u32>, grace: u32) -> String {
    let deadline = deadline.map_or(String::new(), |d| format!("  activeDeadlineSeconds: {d}\n"));
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
{deadline}  terminationGracePeriodSeconds: {grace}
  containers:
    - name: main
      image: busybox
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
"#
    )
}

#[test]
fn active_deadline_fails_the_pod_and_can_be_lowered_while_running() {
    let agent = Agent::start();
    agent.apply(&deadline_pod("short", Some(2)));
    let running = agent.wait_running("short");
    assert!(running["status"]["reason"].is_null());
    let started = std::time::Instant::now();
    let failed = agent.wait_phase("short", "Failed", Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded");
    assert_eq!(
        failed["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    // Failed at once; the container is killed when its grace period ends.
    let stopped = agent.wait_pod("short", "main killed", Duration::from_secs(10), |p| {
        container(p, "main")["state"]["terminated"].is_object()
    });
    let main = container(&stopped, "main");
    assert_eq!(main["state"]["terminated"]["exitCode"], 137, "{main}");
    let events = agent.ok(&["events"]);
    assert!(events.contains("DeadlineExceeded"), "{events}");

    agent.apply(&deadline_pod("lowered", Some(600)));
    agent.wait_running("lowered");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(agent.get_status("lowered"), "Running");
    agent.apply(&deadline_pod("lowered", Some(1)));
    let failed = agent.wait_phase("lowered", "Failed", Duration::from_secs(20));
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded");

    agent.delete_and_check("short", "0");
    agent.delete_and_check("lowered", "0");
}

#[test]
fn a_pod_past_its_deadline_reads_failed_while_its_containers_stop() {
    let agent = Agent::start();
    agent.apply(&deadline_pod_with_grace("stopping", Some(2), 15));
    agent.wait_running("stopping");
    // kubelet's generateAPIPodStatus fails the pod as soon as the deadline passes, before
    // its containers are dead.
    let failed = agent.wait_phase("stopping", "Failed", Duration::from_secs(15));
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded");
    assert_eq!(
        failed["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    let main = container(&failed, "main");
    assert!(
        main["state"]["running"].is_object(),
        "still stopping while Failed: {failed:#}"
    );
    assert_eq!(condition(&failed, "Ready")["reason"], "PodFailed");
    let stopped = agent.wait_pod("stopping", "main killed", Duration::from_secs(30), |p| {
        container(p, "main")["state"]["terminated"].is_object()
    });
    assert_eq!(stopped["status"]["phase"], "Failed");
    assert_eq!(stopped["status"]["reason"], "DeadlineExceeded");
    assert_eq!(
        container(&stopped, "main")["state"]["terminated"]["exitCode"],
        137
    );
    agent.delete_and_check("stopping", "0");
}
