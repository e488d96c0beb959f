//! `peapod play -f FILE`: an agent in the foreground that applies the file, streams the
//! containers' logs prefixed with pod and container and, on stderr, the events that hold a pod
//! back, and deletes what it applied on Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn play_streams_prefixed_logs_and_cleans_up_on_interrupt() {
    let mut agent = Agent::start();
    agent.kill_agent();
    // The seed's shells ignore SIGTERM as PID 1: a short grace keeps the test quick.
    let manifest = agent.path().join("s4.yaml");
    let text = example_text("s4-log-sidecar.yaml")
        .replace("spec:\n", "spec:\n  terminationGracePeriodSeconds: 2\n");
    std::fs::write(&manifest, text).unwrap();
    let mut play = Command::new(peapod_bin())
        .args(["play", "-f", manifest.to_str().unwrap()])
        .env("PEAPOD_ROOT", agent.path())
        // The agent's own network, which its Drop removes: never the default peapod0.
        .env("PEAPOD_BRIDGE", &agent.bridge)
        .env("PEAPOD_POD_CIDR", &agent.cidr)
        .env("PEAPOD_SERVICE_CIDR", agent.service_cidr())
        .env("PEAPOD_SERVICE_NODE_PORT_RANGE", agent.node_port_range())
        .env(
            "PEAPOD_EVICTION_HARD",
            "nodefs.available<64Mi,imagefs.available<64Mi",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting peapod play");
    let stdout = play.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen
        .iter()
        .any(|l: &String| l == "[log-collector/sidecar] app line 2")
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("play did not stream the sidecar's lines; saw {seen:?}"),
        }
    }
    assert!(
        seen.contains(&"pod/log-collector created".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"[log-collector/sidecar] app line 1".to_string()),
        "{seen:?}"
    );
    let uid = std::fs::read_dir(agent.path().join("run/peapod/pods"))
        .unwrap()
        .flatten()
        .next()
        .expect("a pod sandbox")
        .file_name()
        .to_string_lossy()
        .to_string();

    unsafe { libc::kill(play.id() as i32, libc::SIGINT) };
    let started = Instant::now();
    let status = play.wait().unwrap();
    assert!(status.success(), "play exits 0 after Ctrl-C: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "deleting took {:?}",
        started.elapsed()
    );
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l == "pod \"log-collector\" deleted"),
        "{rest:?}"
    );
    agent.leak_check(&uid);
    assert!(
        !agent.socket().exists(),
        "the embedded agent removed its socket"
    );
}

/// `peapod play -f MANIFEST` on the (stopped) agent's root, with a 1 s CrashLoopBackOff; its
/// stderr lines arrive on the receiver.
fn play_on(agent: &Agent, manifest: &str) -> (Child, Receiver<String>) {
    let file = agent.path().join("played.yaml");
    std::fs::write(&file, manifest).unwrap();
    let mut play = Command::new(peapod_bin())
        .args(["play", "-f", file.to_str().unwrap()])
        .env("PEAPOD_ROOT", agent.path())
        .env("PEAPOD_BRIDGE", &agent.bridge)
        .env("PEAPOD_POD_CIDR", &agent.cidr)
        .env("PEAPOD_SERVICE_CIDR", agent.service_cidr())
        .env("PEAPOD_SERVICE_NODE_PORT_RANGE", agent.node_port_range())
        .env("PEAPOD_CRASHLOOP_BACKOFF", "1s")
        .env(
            "PEAPOD_EVICTION_HARD",
            "nodefs.available<64Mi,imagefs.available<64Mi",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting peapod play");
    let stderr = play.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (play, rx)
}

/// Waits for a stderr line that `wanted` accepts; panics with what came instead.
fn wait_line(lines: &Receiver<String>, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("play printed no {what}; its stderr:\n{}", seen.join("\n")),
        }
    }
}

/// Ctrl-C; play's exit status and the rest of its stderr once it exited.
fn interrupt(mut play: Child, lines: &Receiver<String>) -> (std::process::ExitStatus, Vec<String>) {
    unsafe { libc::kill(play.id() as i32, libc::SIGINT) };
    let status = play.wait().unwrap();
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        rest.push(line);
    }
    (status, rest)
}

fn pod_uid(agent: &Agent) -> String {
    std::fs::read_dir(agent.path().join("run/peapod/pods"))
        .unwrap()
        .flatten()
        .next()
        .expect("a pod sandbox")
        .file_name()
        .to_string_lossy()
        .to_string()
}

#[test]
fn play_reports_an_image_it_cannot_pull_and_fails() {
    let mut agent = Agent::start();
    agent.kill_agent();
    // Nothing listens on port 1: the pull fails at once, as it does offline.
    let (play, lines) = play_on(
        &agent,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ghost}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  \
         - {name: app, image: 'localhost:1/missing:1.0'}\n",
    );
    let failed = wait_line(&lines, "pull failure", |l| {
        l.starts_with("pod/ghost: Warning Failed:")
    });
    assert!(
        failed.contains("Failed to pull image \"localhost:1/missing:1.0\""),
        "{failed}"
    );
    wait_line(&lines, "image back-off", |l| {
        l.starts_with(
            "pod/ghost: Normal BackOff: Back-off pulling image \"localhost:1/missing:1.0\"",
        )
    });
    let uid = pod_uid(&agent);
    let (status, rest) = interrupt(play, &lines);
    assert_eq!(
        status.code(),
        Some(1),
        "play fails when a pod could not run: {rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.starts_with("pod/ghost did not run: container app ")
                && l.contains("ImagePull")),
        "{rest:?}"
    );
    agent.leak_check(&uid);
}

#[test]
fn play_reports_a_crash_loop() {
    let mut agent = Agent::start();
    agent.kill_agent();
    let (play, lines) = play_on(
        &agent,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: crasher}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  \
         - {name: app, image: busybox, imagePullPolicy: Never, command: [sh, -c, 'exit 3']}\n",
    );
    let backoff = wait_line(&lines, "crash-loop back-off", |l| {
        l.starts_with("pod/crasher: Warning BackOff: Back-off restarting failed container app")
    });
    assert!(backoff.contains("crasher_default"), "{backoff}");
    let uid = pod_uid(&agent);
    interrupt(play, &lines);
    agent.leak_check(&uid);
}
