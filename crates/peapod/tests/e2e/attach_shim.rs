//! Attach and exec streams at the shim, end to end below the agent's routes: pods run by a real
//! agent, their shim driven directly with `ShimClient` over the pod's run directory. Covers
//! stdin held open for attach, stdinOnce, terminals, fan-out to several clients, and a shim
//! that never waits for a client that does not read. Each test ends with the leak check.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::common::*;
use peapod::paths::Paths;
use peapod::shim::client::ShimClient;
use peapod::shim::frame;
use peapod::shim::protocol::ExecRequest;
use serde_json::Value;

// ----- helpers -----------------------------------------------------------------------------

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn shim(agent: &Agent, uid: &str) -> ShimClient {
    ShimClient::new(&Paths::new(agent.path().to_path_buf()).pod_run_dir(uid))
}

/// The pod's uid and the shim's id of its container `name`.
fn ids(agent: &Agent, pod: &str, name: &str) -> (String, String) {
    let json = agent.pod(pod).expect("pod exists");
    let id = container_id_of(&json, name);
    (
        agent.uid(pod),
        id.trim_start_matches("peapod://").to_string(),
    )
}

fn log_of(agent: &Agent, pod: &str, uid: &str, name: &str) -> String {
    let path = Paths::new(agent.path().to_path_buf()).container_log("default", pod, uid, name, 0);
    std::fs::read_to_string(path).unwrap_or_default()
}

/// What the shim says of container `name` (`{"status": .., "exit": ..}`).
fn shim_container(agent: &Agent, uid: &str, name: &str) -> Value {
    let state = agent.shim_state(uid).expect("the shim answers");
    state["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .rfind(|c| c["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[derive(Debug)]
enum Next {
    Frame(u8, Vec<u8>),
    Closed,
    TimedOut,
}

/// A framed connection to the shim, read with deadlines.
struct Session {
    stream: UnixStream,
    inbuf: Vec<u8>,
    frames: VecDeque<(u8, Vec<u8>)>,
}

impl Session {
    fn new(stream: tokio::net::UnixStream) -> Session {
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Session {
            stream,
            inbuf: Vec::new(),
            frames: VecDeque::new(),
        }
    }

    fn attach(agent: &Agent, uid: &str, id: &str, stdin: bool, tty: bool) -> Session {
        let client = shim(agent, uid);
        block_on(async { Session::new(client.attach(id, stdin, tty).await.expect("attach")) })
    }

    fn exec(agent: &Agent, uid: &str, id: &str, command: &[&str]) -> Session {
        let client = shim(agent, uid);
        let request = ExecRequest {
            id: id.to_string(),
            command: command.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin: false,
        };
        block_on(async { Session::new(client.exec(request).await.expect("exec")) })
    }

    fn send(&mut self, channel: u8, payload: &[u8]) {
        self.stream
            .write_all(&frame::encode(channel, payload))
            .unwrap();
    }

    fn next(&mut self, timeout: Duration) -> Next {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 65536];
        loop {
            if let Some((channel, payload)) = self.frames.pop_front() {
                return Next::Frame(channel, payload);
            }
            if Instant::now() > deadline {
                return Next::TimedOut;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Closed,
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    self.frames.extend(frame::decode(&mut self.inbuf));
                }
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Next::Closed,
            }
        }
    }

    /// STDOUT text until it contains `needle`; panics on anything else first.
    fn stdout_until(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = String::new();
        while !seen.contains(needle) {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Next::Frame(frame::STDOUT, payload) => seen.push_str(&text(&payload)),
                Next::Frame(channel, payload) => {
                    panic!(
                        "frame {channel} {:?} before {needle:?}; seen {seen:?}",
                        text(&payload)
                    )
                }
                Next::Closed => panic!("closed before {needle:?}; seen {seen:?}"),
                Next::TimedOut => panic!("no {needle:?} within {timeout:?}; seen {seen:?}"),
            }
        }
        seen
    }

    /// Whether stdout shows `needle` within `timeout` (what came before it is dropped).
    fn stdout_shows(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut seen = String::new();
        while !seen.contains(needle) {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Next::Frame(frame::STDOUT, payload) => seen.push_str(&text(&payload)),
                Next::TimedOut => return false,
                other => panic!("{other:?} before {needle:?}; seen {seen:?}"),
            }
        }
        true
    }

    /// Output frames up to the STATUS frame (which must be the last): (stdout, stderr, status).
    fn finish(&mut self, timeout: Duration) -> (Vec<u8>, Vec<u8>, Value) {
        let deadline = Instant::now() + timeout;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Next::Frame(frame::STDOUT, payload) => out.extend(payload),
                Next::Frame(frame::STDERR, payload) => err.extend(payload),
                Next::Frame(frame::STATUS, payload) => {
                    let status = serde_json::from_slice(&payload).unwrap();
                    assert!(
                        matches!(self.next(Duration::from_secs(5)), Next::Closed),
                        "STATUS is the last frame"
                    );
                    return (out, err, status);
                }
                Next::Frame(channel, _) => panic!("unexpected frame {channel}"),
                Next::Closed => panic!("closed without a STATUS frame: {}", text(&out)),
                Next::TimedOut => panic!("no STATUS within {timeout:?}: {}", text(&out)),
            }
        }
    }
}

/// `ps` of the container (its own PID namespace), through a second exec.
fn processes(agent: &Agent, uid: &str, id: &str) -> String {
    let (out, _, status) =
        Session::exec(agent, uid, id, &["ps", "-o", "args"]).finish(Duration::from_secs(10));
    assert_eq!(status["exitCode"], 0, "{status}");
    text(&out)
}

const SECOND: Duration = Duration::from_secs(1);
const TEN_SECONDS: Duration = Duration::from_secs(10);

// ----- exec back-pressure --------------------------------------------------------------------

const BUSY: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: busy
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: ticker
    image: busybox
    command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"]
  - name: main
    image: busybox
    command: ["sleep", "3600"]
"#;

#[test]
fn an_exec_client_that_does_not_read_holds_up_its_process_only() {
    let agent = Agent::start();
    agent.apply(BUSY);
    agent.wait_running("busy");
    let (uid, main) = ids(&agent, "busy", "main");
    const SIZE: usize = 8_000_000;
    let mut slow = Session::exec(&agent, &uid, &main, &["head", "-c", "8000000", "/dev/zero"]);

    let ticks = |agent: &Agent| log_of(agent, "busy", &uid, "ticker").lines().count();
    let before = ticks(&agent);
    std::thread::sleep(2 * SECOND);
    assert!(
        ticks(&agent) >= before + 5,
        "the other container's log keeps flowing"
    );
    assert!(
        processes(&agent, &uid, &main).contains("head -c 8000000"),
        "the exec's process waits for its client (and other execs still run)"
    );

    let (out, err, status) = slow.finish(4 * TEN_SECONDS);
    assert_eq!(status["exitCode"], 0, "{status}");
    assert_eq!((out.len(), err.len()), (SIZE, 0));
    assert!(out.iter().all(|b| *b == 0));
    agent.delete_and_check("busy", "0");
}

#[test]
fn a_vanished_exec_client_takes_its_process_group_even_while_held_up() {
    let agent = Agent::start();
    agent.apply(BUSY);
    agent.wait_running("busy");
    let (uid, main) = ids(&agent, "busy", "main");
    let script = "sleep 1001 & head -c 100000000 /dev/zero";
    let gone = Session::exec(&agent, &uid, &main, &["sh", "-c", script]);
    wait_until(TEN_SECONDS, "the exec's processes", || {
        processes(&agent, &uid, &main).contains("sleep 1001")
    });
    drop(gone);
    wait_until(TEN_SECONDS, "the exec's process group to be killed", || {
        let ps = processes(&agent, &uid, &main);
        !ps.contains("sleep 1001") && !ps.contains("head -c")
    });
    assert_eq!(shim_container(&agent, &uid, "main")["status"], "running");
    agent.delete_and_check("busy", "0");
}

// ----- attach --------------------------------------------------------------------------------

const CAT: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: cat
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: cat
    image: busybox
    command: ["cat"]
    stdin: true
"#;

/// Nothing acknowledges an attach: the shim registers the client after reading its request.
/// Markers echoed through `writer` until `watcher` sees one make sure both are registered
/// before the test's own lines.
fn until_attached(writer: &mut Session, watcher: &mut Session) {
    for attempt in 0..50 {
        let marker = format!("attached-{attempt}\n");
        writer.send(frame::STDIN, marker.as_bytes());
        writer.stdout_until(&marker, TEN_SECONDS);
        if watcher.stdout_shows(&marker, Duration::from_millis(200)) {
            return;
        }
    }
    panic!("the watcher never saw the writer's output");
}

#[test]
fn attach_feeds_stdin_and_every_client_sees_the_output() {
    let agent = Agent::start();
    agent.apply(CAT);
    agent.wait_running("cat");
    let (uid, id) = ids(&agent, "cat", "cat");
    std::thread::sleep(SECOND);
    assert_eq!(
        shim_container(&agent, &uid, "cat")["status"],
        "running",
        "cat waits on its stdin, held open by the shim"
    );

    let mut writer = Session::attach(&agent, &uid, &id, true, false);
    let mut watcher = Session::attach(&agent, &uid, &id, false, false);
    until_attached(&mut writer, &mut watcher);
    writer.send(frame::STDIN, b"hello\n");
    assert_eq!(writer.stdout_until("hello\n", TEN_SECONDS), "hello\n");
    assert_eq!(watcher.stdout_until("hello\n", TEN_SECONDS), "hello\n");

    // A client that did not ask for stdin feeds nothing.
    watcher.send(frame::STDIN, b"ignored\n");
    writer.send(frame::STDIN, b"second\n");
    assert_eq!(writer.stdout_until("second\n", TEN_SECONDS), "second\n");
    assert_eq!(watcher.stdout_until("second\n", TEN_SECONDS), "second\n");

    // Without stdinOnce, a session's end leaves stdin open for the next one.
    writer.send(frame::STDIN_EOF, b"");
    let mut next = Session::attach(&agent, &uid, &id, true, false);
    next.send(frame::STDIN, b"third\n");
    for session in [&mut next, &mut watcher, &mut writer] {
        assert_eq!(session.stdout_until("third\n", TEN_SECONDS), "third\n");
    }
    drop((writer, watcher, next));
    std::thread::sleep(SECOND);
    assert_eq!(
        shim_container(&agent, &uid, "cat")["status"],
        "running",
        "detaching leaves the container running"
    );
    let log = log_of(&agent, "cat", &uid, "cat");
    for line in ["hello", "second", "third"] {
        assert!(log.contains(&format!(" stdout F {line}\n")), "{log}");
    }
    assert!(!log.contains("ignored"), "{log}");
    agent.delete_and_check("cat", "0");
}

const ONCE: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: once
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  containers:
  - name: by-eof
    image: busybox
    command: ["cat"]
    stdin: true
    stdinOnce: true
  - name: by-drop
    image: busybox
    command: ["cat"]
    stdin: true
    stdinOnce: true
"#;

#[test]
fn stdin_once_closes_stdin_when_the_first_session_ends() {
    let agent = Agent::start();
    agent.apply(ONCE);
    agent.wait_running("once");
    let (uid, by_eof) = ids(&agent, "once", "by-eof");
    let (_, by_drop) = ids(&agent, "once", "by-drop");

    let mut session = Session::attach(&agent, &uid, &by_eof, true, false);
    session.send(frame::STDIN, b"x\n");
    session.send(frame::STDIN_EOF, b"");
    let (out, _, status) = session.finish(TEN_SECONDS);
    assert_eq!(
        (text(&out).as_str(), &status),
        ("x\n", &serde_json::json!({"exitCode": 0}))
    );
    let mut late = Session::attach(&agent, &uid, &by_eof, true, false);
    let (_, _, status) = late.finish(TEN_SECONDS);
    let error = status["error"].as_str().unwrap_or_default();
    assert!(error.contains("is not running"), "{status}");

    let mut session = Session::attach(&agent, &uid, &by_drop, true, false);
    session.send(frame::STDIN, b"y\n");
    session.stdout_until("y\n", TEN_SECONDS);
    drop(session);
    let pod = agent.wait_phase("once", "Succeeded", Duration::from_secs(30));
    for name in ["by-eof", "by-drop"] {
        let terminated = &container(&pod, name)["state"]["terminated"];
        assert_eq!(terminated["exitCode"], 0, "{name}: {pod:#}");
    }
    agent.delete_and_check("once", "0");
}

const TERMINAL: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: term
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  containers:
  - name: plain
    image: busybox
    command: ["sh", "-c", "tty; stty size; echo ready; exec sleep 3600"]
    tty: true
  - name: shell
    image: busybox
    command: ["sh"]
    stdin: true
    tty: true
"#;

#[test]
fn a_terminal_is_logged_as_stdout_sized_and_fed_by_attach() {
    let agent = Agent::start();
    agent.apply(TERMINAL);
    agent.wait_running("term");
    let (uid, shell) = ids(&agent, "term", "shell");
    wait_until(TEN_SECONDS, "the tty container's log", || {
        log_of(&agent, "term", &uid, "plain").contains("ready")
    });
    let log = log_of(&agent, "term", &uid, "plain");
    assert!(
        log.contains(" stdout ") && !log.contains(" stderr "),
        "{log}"
    );
    assert!(log.contains("/dev/pts/") && log.contains("24 80"), "{log}");

    let mut session = Session::attach(&agent, &uid, &shell, true, true);
    session.send(frame::RESIZE, br#"{"width":100,"height":40}"#);
    session.send(frame::STDIN, b"stty size\n");
    session.stdout_until("40 100", TEN_SECONDS);
    session.send(frame::STDIN, b"echo out-$((2+3))\n");
    session.stdout_until("out-5", TEN_SECONDS);
    session.send(frame::STDIN, b"exit 3\n");
    let (_, err, status) = session.finish(TEN_SECONDS);
    assert!(err.is_empty(), "a terminal has no separate stderr");
    assert_eq!(status, serde_json::json!({"exitCode": 3}));
    assert!(log_of(&agent, "term", &uid, "shell").contains("out-5"));
    agent.delete_and_check("term", "0");
}

const FLOOD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: flood
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: flood
    image: busybox
    command: ["sh", "-c", "while true; do head -c 32768 /dev/zero | tr '\\0' x; echo; sleep 0.02; done"]
"#;

#[test]
fn an_attached_client_that_does_not_read_is_detached_not_waited_for() {
    let agent = Agent::start();
    agent.apply(FLOOD);
    agent.wait_running("flood");
    let (uid, id) = ids(&agent, "flood", "flood");
    let mut stalled = Session::attach(&agent, &uid, &id, false, false);
    let reader = {
        let mut session = Session::attach(&agent, &uid, &id, false, false);
        std::thread::spawn(move || {
            let mut received = 0usize;
            let started = Instant::now();
            while started.elapsed() < 6 * SECOND {
                match session.next(SECOND) {
                    Next::Frame(frame::STDOUT, payload) => received += payload.len(),
                    Next::TimedOut => {}
                    _ => return received,
                }
            }
            received
        })
    };
    // By now the stalled client holds all it may; the log must not wait for it.
    std::thread::sleep(2 * SECOND);
    let log_size = || log_of(&agent, "flood", &uid, "flood").len();
    let before = log_size();
    std::thread::sleep(SECOND);
    assert_ne!(log_size(), before, "the log keeps flowing");

    let deadline = Instant::now() + 2 * TEN_SECONDS;
    let mut buffered = 0usize;
    let closed = loop {
        match stalled.next(deadline.saturating_duration_since(Instant::now())) {
            Next::Frame(frame::STDOUT, payload) => buffered += payload.len(),
            Next::Frame(channel, _) => panic!("unexpected frame {channel}"),
            Next::Closed => break true,
            Next::TimedOut => break false,
        }
    };
    assert!(closed, "the stalled client was detached");
    assert!(
        buffered < 8_000_000,
        "what it was sent stayed bounded: {buffered}"
    );
    assert!(
        reader.join().unwrap() > 1_000_000,
        "a client that reads stays attached"
    );
    assert_eq!(shim_container(&agent, &uid, "flood")["status"], "running");
    agent.delete_and_check("flood", "0");
}
