//! `peapod play -f FILE`: an agent in the foreground that applies the file, streams the
//! containers' logs prefixed with pod and container, and deletes what it applied on Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

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
        .env(
            "PEAPOD_EVICTION_HARD",
            "nodefs.available<1%,imagefs.available<1%",
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
