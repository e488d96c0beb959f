//! peapod's own streaming verbs against real pods, over the protocols kubectl speaks: exec
//! and attach (WebSocket `v5.channel.k8s.io`), cp (tar over exec, both ways) and port-forward
//! (SPDY/3.1). Judged by exit codes, what is printed, the bytes that arrive, and, at the end
//! of each test, that nothing of the pod is left.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::*;

const WITHIN: Duration = Duration::from_secs(30);

fn pod(name: &str, container: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n{container}"
    )
}

fn sleeper(name: &str) -> String {
    pod(name, "    command: [sleep, '3600']\n")
}

/// A CLI left running, its output gathered as it comes; killed when dropped.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    fn start(agent: &Agent, args: &[&str]) -> Running {
        let mut child = Command::new(peapod_bin())
            .args(args)
            .env("PEAPOD_ROOT", agent.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running the peapod CLI");
        let (stdout, stderr) = (Arc::default(), Arc::default());
        let readers = vec![
            gather(child.stdout.take().unwrap(), Arc::clone(&stdout)),
            gather(child.stderr.take().unwrap(), Arc::clone(&stderr)),
        ];
        Running {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn write(&mut self, input: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(input).unwrap();
        stdin.flush().unwrap();
    }

    fn stdout(&self) -> String {
        text(&self.stdout.lock().unwrap())
    }

    fn stderr(&self) -> String {
        text(&self.stderr.lock().unwrap())
    }

    /// Waits until stdout satisfies `check`; returns it.
    fn wait_stdout(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        self.wait_output(what, Running::stdout, check)
    }

    fn wait_stderr(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        self.wait_output(what, Running::stderr, check)
    }

    fn wait_output(
        &self,
        what: &str,
        read: fn(&Running) -> String,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + WITHIN;
        while Instant::now() < deadline {
            let output = read(self);
            if check(&output) {
                return output;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "never printed {what}: stdout {:?}, stderr {:?}",
            self.stdout(),
            self.stderr()
        );
    }

    fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for the exit (at most [`WITHIN`]); its code, or `128 + signal`.
    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + WITHIN;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                for reader in self.readers.drain(..) {
                    reader.join().unwrap();
                }
                use std::os::unix::process::ExitStatusExt;
                return status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            }
            assert!(
                Instant::now() < deadline,
                "the CLI did not exit: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gather(mut stream: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                return;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

#[test]
fn exec_passes_exit_codes_output_and_stdin_over_websocket() {
    let agent = Agent::start();
    agent.apply(&sleeper("box"));
    agent.wait_running("box");

    let (code, out, err) = agent.exec("box", "c", &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((code, out.as_str()), (3, "out\n"), "{err}");
    assert_eq!(err, "err\ncommand terminated with exit code 3\n");

    let cat = agent.cli_stdin_within(&["exec", "-i", "box", "--", "cat"], "hello\n", WITHIN);
    assert!(cat.status.success(), "{}", text(&cat.stderr));
    assert_eq!(text(&cat.stdout), "hello\n");
    let big = "0123456789".repeat(200_000);
    let wc = agent.cli_stdin_within(&["exec", "-i", "box", "--", "wc", "-c"], &big, WITHIN);
    assert_eq!(text(&wc.stdout).trim(), "2000000", "{}", text(&wc.stderr));

    let missing = agent.cli(&["exec", "box", "-c", "nope", "--", "true"]);
    assert_eq!(missing.status.code(), Some(1));
    let invalid = "Error from server (BadRequest): container nope is not valid for pod box\n";
    assert_eq!(text(&missing.stderr), invalid);
    let ghost = agent.cli(&["exec", "ghost", "--", "true"]);
    assert_eq!(
        text(&ghost.stderr),
        "Error from server (NotFound): pods \"ghost\" not found\n"
    );
    let (code, _, err) = agent.exec("box", "c", &["/no/such/binary"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("error: Internal error occurred: error executing command"),
        "{err}"
    );

    agent.delete_and_check("box", "1");
}

#[test]
fn attach_joins_a_running_cat_and_leaves_it_running() {
    let agent = Agent::start();
    agent.apply(&pod("cat", "    command: [cat]\n    stdin: true\n"));
    agent.wait_running("cat");

    let mut attached = Running::start(&agent, &["attach", "-i", "cat"]);
    attached.wait_stderr("the prompt hint", |err| {
        err.contains("If you don't see a command prompt, try pressing enter.")
    });
    // The session may still be connecting: repeat until an echo comes back.
    let deadline = Instant::now() + WITHIN;
    while !attached.stdout().contains("hello\n") {
        assert!(Instant::now() < deadline, "no echo: {}", attached.stderr());
        attached.write(b"hello\n");
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = attached.stdout().len();
    attached.write(b"again\n");
    attached.wait_stdout("the second echo", |out| out[before..].contains("again\n"));
    attached.signal(libc::SIGTERM);
    assert_eq!(attached.wait(), 128 + libc::SIGTERM);

    let pod = agent.pod("cat").unwrap();
    assert_eq!(
        container(&pod, "c")["restartCount"],
        0,
        "detaching ends nothing: {pod:#}"
    );
    assert!(
        container(&pod, "c")["state"]["running"].is_object(),
        "{pod:#}"
    );
    agent.delete_and_check("cat", "1");
}

#[test]
fn attach_with_stdin_once_ends_with_the_container() {
    let agent = Agent::start();
    let once = "    command: [cat]\n    stdin: true\n    stdinOnce: true\n  restartPolicy: Never\n";
    agent.apply(&pod("once", once));
    agent.wait_running("once");
    let attached = agent.cli_stdin_within(&["attach", "-i", "once"], "bye\n", WITHIN);
    assert_eq!(
        attached.status.code(),
        Some(0),
        "{}",
        text(&attached.stderr)
    );
    assert_eq!(text(&attached.stdout), "bye\n");
    agent.wait_phase("once", "Succeeded", WITHIN);
    agent.delete_and_check("once", "1");
}

/// A directory with text, a 3 MB binary file (every byte value), a nested and an empty
/// directory.
fn local_tree(root: &Path) -> Vec<u8> {
    let binary: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 256) as u8).collect();
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("a.txt"), "first file\n").unwrap();
    std::fs::write(root.join("sub/deeper/blob.bin"), &binary).unwrap();
    binary
}

#[test]
fn cp_copies_a_directory_with_a_binary_file_both_ways_byte_for_byte() {
    let agent = Agent::start();
    agent.apply(&sleeper("box"));
    agent.wait_running("box");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tree");
    let binary = local_tree(&src);

    agent.ok(&["cp", src.to_str().unwrap(), "box:/tmp/copy"]);
    let (code, listing, err) = agent.exec("box", "c", &["find", "/tmp/copy"]);
    assert_eq!(code, 0, "{err}");
    let mut listed: Vec<&str> = listing.lines().collect();
    listed.sort();
    let expected = [
        "/tmp/copy",
        "/tmp/copy/a.txt",
        "/tmp/copy/empty",
        "/tmp/copy/sub",
        "/tmp/copy/sub/deeper",
        "/tmp/copy/sub/deeper/blob.bin",
    ];
    assert_eq!(listed, expected);
    let (_, size, _) = agent.exec(
        "box",
        "c",
        &["stat", "-c", "%s", "/tmp/copy/sub/deeper/blob.bin"],
    );
    assert_eq!(size.trim(), "3000000");

    agent.ok(&["cp", src.to_str().unwrap(), "box:/tmp"]);
    let (code, _, _) = agent.exec("box", "c", &["test", "-f", "/tmp/tree/a.txt"]);
    assert_eq!(
        code, 0,
        "copied into an existing directory, under its own name"
    );

    let back = dir.path().join("back");
    let out = agent.cli(&["cp", "box:/tmp/copy", back.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(back.join("a.txt")).unwrap(), b"first file\n");
    assert!(
        std::fs::read(back.join("sub/deeper/blob.bin")).unwrap() == binary,
        "byte for byte"
    );
    assert!(back.join("empty").is_dir());

    let file = dir.path().join("one.bin");
    agent.ok(&[
        "cp",
        "default/box:/tmp/copy/sub/deeper/blob.bin",
        file.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&file).unwrap() == binary);

    let missing = agent.cli(&["cp", "box:/no/such", dir.path().join("x").to_str().unwrap()]);
    assert_ne!(missing.status.code(), Some(0));
    assert!(
        text(&missing.stderr).contains("command terminated with exit code"),
        "{}",
        text(&missing.stderr)
    );

    agent.delete_and_check("box", "1");
}

fn http_get(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WITHIN)).unwrap();
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The local port of the `Forwarding from 127.0.0.1:PORT -> REMOTE` line.
fn local_port(out: &str, remote: u16) -> u16 {
    let suffix = format!(" -> {remote}");
    let line = out
        .lines()
        .find(|line| line.starts_with("Forwarding from 127.0.0.1:") && line.ends_with(&suffix))
        .unwrap_or_else(|| panic!("no forwarding to {remote}: {out}"));
    let address = &line["Forwarding from 127.0.0.1:".len()..line.len() - suffix.len()];
    address.parse().unwrap()
}

#[test]
fn port_forward_serves_concurrent_requests_and_reports_a_closed_port() {
    let agent = Agent::start();
    let httpd = "    command: [sh, -c, 'mkdir -p /www && echo hello from the pod > /www/index.html && exec httpd -f -p 8080 -h /www']\n";
    agent.apply(&pod("web", httpd));
    agent.wait_running("web");

    let forwarding = Running::start(&agent, &["port-forward", "pod/web", ":8080", ":9999"]);
    let out = forwarding.wait_stdout("both ports", |out| {
        out.lines()
            .filter(|line| line.starts_with("Forwarding from 127.0.0.1:"))
            .count()
            == 2
    });
    let (http, closed) = (local_port(&out, 8080), local_port(&out, 9999));

    // httpd may still be starting: the first request is retried.
    let deadline = Instant::now() + WITHIN;
    while !http_get(http).contains("hello from the pod") {
        assert!(Instant::now() < deadline, "{}", forwarding.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    let requests: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || http_get(http)))
        .collect();
    for request in requests {
        let answer = request.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("hello from the pod\n"), "{answer}");
    }
    forwarding.wait_stdout("the connections", |out| {
        out.contains(&format!("Handling connection for {http}\n"))
    });

    assert_eq!(http_get(closed), "", "nothing listens on 9999 in the pod");
    let refused = format!("an error occurred forwarding {closed} -> 9999: ");
    let err = forwarding.wait_stderr("the refusal", |err| err.contains(&refused));
    assert!(err.contains("connection refused"), "{err}");
    assert!(
        http_get(http).contains("hello from the pod"),
        "the session outlives a refused connection"
    );

    let mut forwarding = forwarding;
    forwarding.signal(libc::SIGINT);
    assert_eq!(
        forwarding.wait(),
        0,
        "Ctrl-C ends port-forward: {}",
        forwarding.stderr()
    );

    let uid = agent.uid("web");
    let mut orphaned = Running::start(&agent, &["port-forward", "web", ":8080"]);
    let out = orphaned.wait_stdout("the port", |out| out.contains(" -> 8080\n"));
    let port = local_port(&out, 8080);
    agent.ok(&["delete", "pod", "web", "--grace-period", "1"]);
    assert_eq!(http_get(port), "", "the pod is gone");
    assert_eq!(orphaned.wait(), 1);
    assert!(
        orphaned
            .stderr()
            .ends_with("error: lost connection to pod\n"),
        "{}",
        orphaned.stderr()
    );
    agent.leak_check(&uid);
}

#[test]
fn port_forward_refuses_a_pod_that_is_not_running() {
    let agent = Agent::start();
    agent.apply(&pod(
        "done",
        "    command: ['true']\n  restartPolicy: Never\n",
    ));
    agent.wait_phase("done", "Succeeded", WITHIN);
    let uid = agent.uid("done");
    let out = agent.cli(&["port-forward", "done", "8080"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: unable to forward port because pod is not running. Current status=Succeeded\n"
    );
    let exec = agent.cli(&["exec", "done", "--", "true"]);
    let completed =
        "error: cannot exec into a container in a completed pod; current phase is Succeeded\n";
    assert_eq!(text(&exec.stderr), completed);
    agent.ok(&["delete", "pod", "done", "--grace-period", "0"]);
    agent.leak_check(&uid);
}
