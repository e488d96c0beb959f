//! kubectl's streaming verbs against an agent: exec, attach, run -it, cp and the refusals
//! before an upgrade, over the protocols kubectl 1.32 speaks (WebSocket `v5.channel.k8s.io`)
//! and its SPDY fallback (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`, and Debian's kubectl 1.20,
//! which knows nothing else), judged by what kubectl prints, its exit codes, the bytes that
//! went through and what is left in the pod afterwards. Port-forward is e2e_kubectl_portforward.rs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::kubectl::{start_for, Client, Kubectl};
use crate::common::websocket::{Next, WebSocket};
use crate::common::*;
use crate::per_client;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The longest a stream verb may take here before the test calls it hung.
const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

fn sleeper(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '3600']\n"
    )
}

/// A pod whose one container `c` runs `command` with the stdin/tty fields given (YAML lines).
fn interactive(name: &str, command: &str, fields: &[&str]) -> String {
    let fields: String = fields.iter().map(|f| format!("    {f}\n")).collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: {command}\n{fields}"
    )
}

/// `len` bytes of deterministic noise, every byte value included (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn run(kubectl: &Kubectl, args: &[&str], input: &[u8]) -> Output {
    kubectl.run_input(args, input, STREAM_TIMEOUT)
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout ({} bytes): {}\nstderr: {}",
        out.status.code(),
        out.stdout.len(),
        text(&out.stdout[..out.stdout.len().min(2000)]),
        text(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// exec: streams, exit codes, stdin

per_client!(exec_streams_and_exit_codes: exec_over_websocket, exec_over_spdy, exec_with_kubectl_1_20);

fn exec_streams_and_exit_codes(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&sleeper("box"));
    agent.wait_running("box");

    // stdout and stderr kept apart; the exit code and kubectl's words for it.
    let script = "echo out; echo err >&2; exit 3";
    let out = run(&kubectl, &["exec", "box", "--", "sh", "-c", script], b"");
    assert_eq!(text(&out.stdout), "out\n", "{}", show(&out));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("err\n") && stderr.contains("\ncommand terminated with exit code 3\n"),
        "{}",
        show(&out)
    );
    let out = run(&kubectl, &["exec", "box", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        show(&out)
    );
    let out = run(
        &kubectl,
        &["exec", "box", "--", "sh", "-c", "exit 255"],
        b"",
    );
    assert_eq!(out.status.code(), Some(255), "{}", show(&out));

    // 300 kB of binary stdin, byte-exact through cat, and as the pod hashes it.
    let input = noise(300_000, 13);
    let started = Instant::now();
    let out = run(&kubectl, &["exec", "-i", "box", "--", "cat"], &input);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(out.stdout.len(), input.len(), "{}", text(&out.stderr));
    assert!(
        out.stdout == input,
        "cat echoed other bytes: sha256 {} instead of {}",
        sha256_hex(&out.stdout),
        sha256_hex(&input)
    );
    eprintln!("300 kB through cat and back: {:?}", started.elapsed());
    let out = run(&kubectl, &["exec", "-i", "box", "--", "sha256sum"], &input);
    assert_eq!(
        text(&out.stdout),
        format!("{}  -\n", sha256_hex(&input)),
        "{}",
        show(&out)
    );

    // The end of kubectl's stdin is the end of the process's stdin (what ends `tar x` in cp).
    let script = "cat > /tmp/got; echo eof-after-$(wc -c < /tmp/got)-bytes";
    let out = run(
        &kubectl,
        &["exec", "-i", "box", "--", "sh", "-c", script],
        b"abc\n",
    );
    assert_eq!(text(&out.stdout), "eof-after-4-bytes\n", "{}", show(&out));
    let out = run(&kubectl, &["exec", "-i", "box", "--", "cat"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(out.stdout.is_empty(), "{}", show(&out));

    // 8 MiB of stdout while stderr carries its hash.
    let script =
        "head -c 8388608 /dev/urandom > /tmp/blob; sha256sum < /tmp/blob >&2; cat /tmp/blob";
    let out = run(&kubectl, &["exec", "box", "--", "sh", "-c", script], b"");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(out.stdout.len(), 8 << 20, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("{}  -\n", sha256_hex(&out.stdout)),
        "stdout is not what the pod wrote"
    );

    let uid = agent.uid("box");
    agent.delete_and_check("box", "1");
    agent.leak_check(&uid);
}

// ---------------------------------------------------------------------------------------------
// exec: what kubectl says when it cannot run

per_client!(exec_of_a_missing_command: exec_of_a_missing_command_over_websocket, exec_of_a_missing_command_over_spdy, exec_of_a_missing_command_with_kubectl_1_20);

/// kube (containerd + runc) answers an InternalError, and kubectl prints
/// `error: Internal error occurred: error executing command in container: failed to exec in
/// container: failed to start exec "ID": OCI runtime exec failed: exec failed: unable to start
/// container process: exec: "nope": executable file not found in $PATH: unknown`, exit 1.
fn exec_of_a_missing_command(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&sleeper("box"));
    agent.wait_running("box");
    let out = run(&kubectl, &["exec", "box", "--", "nope"], b"");
    let stderr = text(&out.stderr);
    eprintln!("kubectl exec box -- nope: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(out.stdout.is_empty(), "{}", show(&out));
    // Over WebSocket, kube-apiserver's stream translator wraps kubelet's InternalError once
    // more (`Internal error occurred: Internal error occurred: ...`): one or two prefixes.
    let mut cause = stderr.strip_prefix("error: ").unwrap_or_default();
    while let Some(rest) = cause.strip_prefix("Internal error occurred: ") {
        cause = rest;
    }
    assert!(
        stderr.starts_with("error: Internal error occurred: ")
            && cause.starts_with("error executing command in container: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("exec: \"nope\": executable file not found in $PATH"),
        "not the runtime's usual words: {stderr}"
    );
    // The container is unharmed, and a command that is found still runs.
    let out = run(&kubectl, &["exec", "box", "--", "echo", "still-here"], b"");
    assert_eq!(text(&out.stdout), "still-here\n", "{}", show(&out));
    let uid = agent.uid("box");
    agent.delete_and_check("box", "1");
    agent.leak_check(&uid);
}

per_client!(exec_refusals: exec_refusals_over_websocket, exec_refusals_over_spdy, exec_refusals_with_kubectl_1_20);

/// A container the pod does not have (kube-apiserver's 400, which kubectl prints as it
/// prints any Status), a container that is not running (kubelet's 500 text, printed as
/// `unable to upgrade connection: ...`), a completed pod (kubectl refuses by itself).
fn exec_refusals(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&sleeper("box"));
    let pending = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pending\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: nope.invalid/none:1\n";
    kubectl.apply(pending);
    let done = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: done\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox\n    command: ['true']\n";
    kubectl.apply(done);
    agent.wait_running("box");

    let out = run(&kubectl, &["exec", "box", "-c", "nope", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        text(&out.stderr),
        "Error from server (BadRequest): container nope is not valid for pod box\n"
    );

    agent.wait_pod(
        "pending",
        "its image pull to fail",
        Duration::from_secs(30),
        |p| {
            container(p, "c")["state"]["waiting"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("ImagePull"))
        },
    );
    let out = run(&kubectl, &["exec", "pending", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        text(&out.stderr),
        "error: unable to upgrade connection: container not found (\"c\")\n"
    );

    agent.wait_phase("done", "Succeeded", Duration::from_secs(30));
    let out = run(&kubectl, &["exec", "done", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        text(&out.stderr),
        "error: cannot exec into a container in a completed pod; current phase is Succeeded\n"
    );

    // None of it broke the agent: the running pod still answers.
    let out = run(&kubectl, &["exec", "box", "--", "echo", "alive"], b"");
    assert_eq!(text(&out.stdout), "alive\n", "{}", show(&out));
    let uids: Vec<String> = ["box", "pending", "done"]
        .iter()
        .map(|p| agent.uid(p))
        .collect();
    kubectl.ok(&["delete", "pods", "--all", "--grace-period", "1"]);
    for uid in &uids {
        agent.leak_check(uid);
    }
}

// ---------------------------------------------------------------------------------------------
// exec -it through a pseudo-terminal

/// A command run by `script` in a pseudo-terminal of `rows`×`cols` (set with stty before the
/// command starts), its output collected as it comes, its input typed by the test.
struct Terminal {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

impl Terminal {
    /// Runs `command` (its program, arguments and environment) in a terminal. `before` is
    /// shell run first, in the terminal (e.g. a background resize).
    fn start(command: &Command, rows: u16, cols: u16, before: &str) -> Terminal {
        let line: Vec<String> = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|word| shell_quote(word.to_str().unwrap()))
            .collect();
        let shell = format!(
            "stty rows {rows} cols {cols}; {before} exec {}",
            line.join(" ")
        );
        let mut script = Command::new("script");
        script
            .args(["-qec", &shell, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                script.env(key, value);
            }
        }
        let mut child = script.spawn().expect("running script (util-linux)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buffer) {
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Terminal {
            child,
            stdin,
            output,
            reader: Some(reader),
        }
    }

    fn output(&self) -> String {
        text(&self.output.lock().unwrap())
    }

    /// Waits until the output has `needle` (at most `timeout`); the output so far.
    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.output();
            if output.contains(needle) {
                return output;
            }
            if Instant::now() > deadline {
                panic!("the terminal never showed {needle:?}; it showed:\n{output}");
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200));
                let output = self.output();
                assert!(
                    output.contains(needle),
                    "the terminal ended ({status}) without showing {needle:?}; it showed:\n{output}"
                );
                return output;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send(&mut self, keys: &str) {
        self.stdin.write_all(keys.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The pid of the command the terminal runs (`script`'s child, after the shell's exec).
    fn command_pid(&self) -> i32 {
        let pid = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        children
            .split_whitespace()
            .next()
            .expect("script has a child")
            .parse()
            .unwrap()
    }

    /// Waits for the command to exit (`timeout` at most): its status and all output.
    fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return (status, self.output());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the terminal's command did not exit within {timeout:?}; it showed:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

per_client!(exec_tty: exec_tty_over_websocket, exec_tty_over_spdy, exec_tty_with_kubectl_1_20);

/// `kubectl exec -it POD -- sh` in a 33×101 terminal: the shell has a pts of that size, sees
/// the terminal grow to 40×120, Ctrl-C interrupts its foreground command, `exit 5` is
/// kubectl's exit code.
fn exec_tty(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&sleeper("box"));
    agent.wait_running("box");
    let resize = agent.path().join("resize-now");
    let before = format!(
        "(i=0; while [ ! -e {0} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; stty rows 40 cols 120 </dev/tty) &",
        shell_quote(resize.to_str().unwrap())
    );
    let command = kubectl.command(&["exec", "-it", "box", "--", "sh"]);
    let mut terminal = Terminal::start(&command, 33, 101, &before);
    terminal.expect("# ", Duration::from_secs(20));
    terminal.send("tty; stty size\n");
    terminal.expect("33 101\r\n", Duration::from_secs(10));
    let output = terminal.output();
    assert!(output.contains("\n/dev/pts/"), "no pts: {output}");

    std::fs::write(&resize, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !terminal.output().contains("40 120\r\n") {
        assert!(
            Instant::now() < deadline,
            "the resize never reached the shell:\n{}",
            terminal.output()
        );
        terminal.send("stty size\n");
        std::thread::sleep(Duration::from_millis(500));
    }

    terminal.send("sleep 100; echo not-$((1+1))-interrupted\n");
    std::thread::sleep(Duration::from_millis(700));
    terminal.send("\x03");
    terminal.send("echo after-$((6*7))\n");
    let output = terminal.expect("after-42", Duration::from_secs(10));
    assert!(
        !output.contains("not-2-interrupted"),
        "Ctrl-C did not interrupt sleep: {output}"
    );

    terminal.send("exit 5\n");
    let (status, output) = terminal.finish(Duration::from_secs(20));
    assert_eq!(status.code(), Some(5), "{output}");
    assert!(
        output.contains("command terminated with exit code 5"),
        "{output}"
    );
    let uid = agent.uid("box");
    agent.delete_and_check("box", "1");
    agent.leak_check(&uid);
}

// ---------------------------------------------------------------------------------------------
// A client killed mid-stream

per_client!(a_killed_exec_client_leaves_nothing: a_killed_exec_client_leaves_nothing_over_websocket, a_killed_exec_client_leaves_nothing_over_spdy, a_killed_exec_client_leaves_nothing_with_kubectl_1_20);

/// The live processes of the container other than its main one, as command lines.
fn exec_processes(agent: &Agent, uid: &str, id: &str) -> Vec<String> {
    let state = agent.shim_state(uid).expect("the pod's shim answers");
    let main = state["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["status"] == "running")
        .and_then(|c| c["pid"].as_i64())
        .expect("a running container");
    container_pids(uid, id)
        .into_iter()
        .filter(|pid| i64::from(*pid) != main)
        .filter_map(|pid| {
            // A zombie (reaped by nobody in a container without init) has no command line.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (!cmdline.is_empty()).then(|| format!("{pid}: {}", text(&cmdline).replace('\0', " ")))
        })
        .collect()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits until the exec process `marker` names runs in the container.
fn wait_for_process(agent: &Agent, uid: &str, id: &str, marker: &str) {
    let seen = poll(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || exec_processes(agent, uid, id),
        |ps| ps.iter().any(|p| p.contains(marker)),
    );
    assert!(
        seen.iter().any(|p| p.contains(marker)),
        "{marker} never ran in the container: {seen:?}\nagent log:\n{}",
        agent.agent_log()
    );
}

/// Waits (5 s at most) until no exec process is left in the container.
fn assert_no_exec_left(agent: &Agent, uid: &str, id: &str, after: &str) {
    let left = poll(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || exec_processes(agent, uid, id),
        |ps| ps.is_empty(),
    );
    assert!(
        left.is_empty(),
        "processes left in the container 5 s after {after}: {left:?}"
    );
}

fn a_killed_exec_client_leaves_nothing(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&sleeper("box"));
    let pod = agent.wait_running("box");
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let id = container_id_of(&pod, "c");
    let id = id.trim_start_matches("peapod://");
    let agent_fds = open_fds(agent.agent_pid());

    // A silent command, a shell waiting on its child.
    let running = kubectl.start(&["exec", "box", "--", "sh", "-c", "sleep 1001; echo never"]);
    wait_for_process(&agent, &uid, id, "sleep 1001");
    running.stop();
    assert_no_exec_left(
        &agent,
        &uid,
        id,
        "killing `kubectl exec -- sh -c 'sleep 1001; ...'`",
    );

    // A command writing all the time, with stdin open.
    let script = "while :; do echo tick; sleep 0.05; done";
    let (running, stdin) =
        kubectl.start_with_stdin(&["exec", "-i", "box", "--", "sh", "-c", script]);
    running.wait_for("ticks", |out| out.matches("tick").count() > 5);
    running.stop();
    drop(stdin);
    assert_no_exec_left(
        &agent,
        &uid,
        id,
        "killing `kubectl exec -i -- sh -c 'while ...'`",
    );

    // A terminal: the hang-up reaches the shell and its foreground job.
    let command = kubectl.command(&["exec", "-it", "box", "--", "sh"]);
    let mut terminal = Terminal::start(&command, 24, 80, "");
    terminal.expect("# ", Duration::from_secs(20));
    terminal.send("sleep 1003\n");
    wait_for_process(&agent, &uid, id, "sleep 1003");
    unsafe { libc::kill(terminal.command_pid(), libc::SIGKILL) };
    let _ = terminal.finish(Duration::from_secs(10));
    assert_no_exec_left(&agent, &uid, id, "killing `kubectl exec -it -- sh`");

    // Nothing of the three sessions is held by the agent either.
    let fds = poll(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || open_fds(agent.agent_pid()),
        |n| *n <= agent_fds,
    );
    assert!(
        fds <= agent_fds,
        "the agent holds {fds} descriptors after the killed clients, {agent_fds} before"
    );
    let out = run(&kubectl, &["exec", "box", "--", "echo", "alive"], b"");
    assert_eq!(text(&out.stdout), "alive\n", "{}", show(&out));
    agent.delete_and_check("box", "1");
    agent.leak_check(&uid);
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_client_that_does_not_read_holds_up_its_process_only_over_websocket() {
    a_client_that_does_not_read(Client::Default);
}

#[test]
fn a_client_that_does_not_read_holds_up_its_process_only_over_spdy() {
    a_client_that_does_not_read(Client::Spdy);
}

/// kubectl stopped (SIGSTOP) while the command writes 2 GB: the agent and the shim buffer a
/// bounded amount, the process waits, other sessions go on; then kubectl, killed, takes the
/// process with it.
fn a_client_that_does_not_read(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&sleeper("box"));
    let pod = agent.wait_running("box");
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let id = container_id_of(&pod, "c");
    let id = id.trim_start_matches("peapod://");
    let shim = agent.shim_state(&uid).unwrap()["pid"].as_u64().unwrap() as u32;
    let before = (rss_kib(agent.agent_pid()), rss_kib(shim));

    let flood = "head -c 2000000000 /dev/zero; echo finished >&2";
    let running = kubectl.start(&["exec", "box", "--", "sh", "-c", flood]);
    wait_for_process(&agent, &uid, id, "head -c 2000000000");
    unsafe { libc::kill(running.pid() as i32, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_secs(4));
    let during = (rss_kib(agent.agent_pid()), rss_kib(shim));
    let other = run(&kubectl, &["exec", "box", "--", "echo", "alive"], b"");
    std::thread::sleep(Duration::from_secs(1));
    let later = (rss_kib(agent.agent_pid()), rss_kib(shim));
    eprintln!(
        "RSS KiB (agent, shim): before {before:?}, after 4 s {during:?}, after 5 s {later:?}"
    );
    let still = exec_processes(&agent, &uid, id);
    unsafe { libc::kill(running.pid() as i32, libc::SIGCONT) };
    running.stop();
    assert_eq!(text(&other.stdout), "alive\n", "{}", show(&other));
    assert!(
        still.iter().any(|p| p.contains("head -c 2000000000")),
        "the flood did not wait for its reader: {still:?}"
    );
    for (what, grew) in [
        ("agent", later.0.saturating_sub(before.0)),
        ("shim", later.1.saturating_sub(before.1)),
    ] {
        assert!(
            grew < 64 * 1024,
            "the {what} grew by {grew} KiB while its client did not read"
        );
    }
    assert_no_exec_left(&agent, &uid, id, "killing the stopped kubectl");
    agent.delete_and_check("box", "1");
    agent.leak_check(&uid);
}

// ---------------------------------------------------------------------------------------------
// attach

per_client!(attach: attach_over_websocket, attach_over_spdy, attach_with_kubectl_1_20);

/// `kubectl attach -i` to a `stdin: true` container running cat sees its input echoed, and the
/// container's stdin outlives the session; with `stdinOnce` the end of the first session's
/// stdin is the end of the container's; `attach -it` to a `tty` + `stdinOnce` shell.
fn attach(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&interactive("catter", "[cat]", &["stdin: true"]));
    let once = "[sh, -c, 'cat; echo stdin-closed; exec sleep 3600']";
    kubectl.apply(&interactive(
        "once",
        once,
        &["stdin: true", "stdinOnce: true"],
    ));
    let shell = ["stdin: true", "stdinOnce: true", "tty: true"];
    kubectl.apply(&interactive("shtty", "[sh]", &shell));
    for pod in ["catter", "once", "shtty"] {
        agent.wait_running(pod);
    }

    for round in 1..=2 {
        let (running, mut stdin) = kubectl.start_with_stdin(&["attach", "-i", "catter"]);
        // Attaching takes a moment; what is typed before reaches cat all the same.
        stdin
            .write_all(format!("hello-{round}\n").as_bytes())
            .unwrap();
        running.wait_for("the echo", |out| out.contains(&format!("hello-{round}\n")));
        running.stop();
    }
    let logs = kubectl.ok(&["logs", "catter"]);
    assert_eq!(logs, "hello-1\nhello-2\n", "cat's stdin lost input");

    let (running, mut stdin) = kubectl.start_with_stdin(&["attach", "-i", "once"]);
    stdin.write_all(b"first\n").unwrap();
    running.wait_for("the echo", |out| out.contains("first\n"));
    drop(stdin);
    running.wait_for("cat's end", |out| out.contains("stdin-closed\n"));
    running.stop();
    let logs = kubectl.ok(&["logs", "once"]);
    assert_eq!(logs, "first\nstdin-closed\n");

    let command = kubectl.command(&["attach", "-it", "shtty"]);
    let mut terminal = Terminal::start(&command, 30, 90, "");
    terminal.expect("If you don't see a command prompt", Duration::from_secs(20));
    // kubectl says so before it puts the terminal in raw mode and attaches.
    std::thread::sleep(Duration::from_secs(1));
    terminal.send("tty; stty size; echo marker-$((6*7)); exit 7\n");
    let (status, output) = terminal.finish(Duration::from_secs(30));
    assert!(output.contains("\n/dev/pts/"), "no pts: {output}");
    assert!(
        output.contains("30 90\r\n"),
        "not the terminal's size: {output}"
    );
    assert!(output.contains("marker-42"), "{output}");
    assert_eq!(status.code(), Some(0), "{output}");
    agent.wait_pod(
        "shtty",
        "the shell's exit 7",
        Duration::from_secs(30),
        |p| container(p, "c")["lastState"]["terminated"]["exitCode"] == 7,
    );

    let uids: Vec<String> = ["catter", "once", "shtty"]
        .iter()
        .map(|p| agent.uid(p))
        .collect();
    kubectl.ok(&["delete", "pods", "--all", "--grace-period", "1"]);
    for uid in &uids {
        agent.leak_check(uid);
    }
}

// ---------------------------------------------------------------------------------------------
// run -it --rm / run -i --rm

per_client!(run_rm: run_rm_over_websocket, run_rm_over_spdy, run_rm_with_kubectl_1_20);

/// The uid a deleted pod had, from its events.
fn uid_from_events(agent: &Agent, name: &str) -> String {
    let events = agent.api_get("/api/v1/namespaces/default/events");
    events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["involvedObject"]["kind"] == "Pod" && e["involvedObject"]["name"] == name)
        .and_then(|e| e["involvedObject"]["uid"].as_str())
        .unwrap_or_else(|| panic!("no event of pod {name}: {events:#}"))
        .to_string()
}

/// kubectl run --rm deletes without waiting (`pod "NAME" deleted` is the DELETE's answer):
/// the pod, whose container has ended, must be gone soon after, as kubelet removes a deleted
/// pod with nothing running at once.
fn gone_soon(agent: &Agent, name: &str) {
    let started = Instant::now();
    let gone = poll(
        Duration::from_secs(15),
        Duration::from_millis(100),
        || agent.pod(name).is_none(),
        |gone| *gone,
    );
    assert!(gone, "{name} still exists 15 s after run --rm deleted it");
    eprintln!("{name} gone {:?} after kubectl's exit", started.elapsed());
}

/// `kubectl run -it --rm` in a terminal creates the pod, attaches, shows the shell, deletes the
/// pod when the shell exits and passes its exit code; `run -i --rm` without a terminal feeds
/// kubectl's stdin to the container.
fn run_rm(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    let run_it = [
        "run",
        "-it",
        "--rm",
        "--image=busybox",
        "--restart=Never",
        "runner",
        "--",
        "sh",
    ];
    let command = kubectl.command(&run_it);
    let mut terminal = Terminal::start(&command, 24, 80, "");
    terminal.expect("If you don't see a command prompt", Duration::from_secs(30));
    // kubectl says so before it puts the terminal in raw mode and attaches.
    std::thread::sleep(Duration::from_secs(1));
    terminal.send("echo typed-$((2+3)); exit 4\n");
    let (status, output) = terminal.finish(Duration::from_secs(60));
    assert!(output.contains("typed-5\r\n"), "{output}");
    assert!(output.contains("pod \"runner\" deleted"), "{output}");
    assert_eq!(status.code(), Some(4), "{output}");
    gone_soon(&agent, "runner");
    agent.leak_check(&uid_from_events(&agent, "runner"));

    let run_i = [
        "run",
        "-i",
        "--rm",
        "--image=busybox",
        "--restart=Never",
        "feeder",
        "--",
        "sh",
        "-c",
        "cat; echo done-$((1+1))",
    ];
    let input = b"line1\nline2\n";
    let out = kubectl.run_input(&run_i, input, STREAM_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("line1\nline2\ndone-2\n"),
        "{}",
        show(&out)
    );
    assert!(stdout.contains("pod \"feeder\" deleted"), "{}", show(&out));
    gone_soon(&agent, "feeder");
    agent.leak_check(&uid_from_events(&agent, "feeder"));
}

// ---------------------------------------------------------------------------------------------
// cp

per_client!(cp: cp_over_websocket, cp_over_spdy, cp_with_kubectl_1_20);

/// Every file under `dir`, relative path → content.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.insert(
                    format!("{}/", path.strip_prefix(dir).unwrap().display()),
                    Vec::new(),
                );
                todo.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// A directory with a binary file, a nested directory, a name with a space and 20 MiB of
/// noise goes into the pod and comes back byte for byte.
fn cp(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&sleeper("box"));
    agent.wait_running("box");
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    std::fs::create_dir_all(source.join("nested/deeper")).unwrap();
    std::fs::create_dir_all(source.join("empty")).unwrap();
    std::fs::write(source.join("bin.dat"), noise(70_000, 5)).unwrap();
    std::fs::write(source.join("nested/deeper/hello.txt"), "hello\n").unwrap();
    std::fs::write(source.join("nested/with space.txt"), "spaced\n").unwrap();
    let big = noise(20 << 20, 7);
    std::fs::write(source.join("nested/big"), &big).unwrap();

    let started = Instant::now();
    let out = run(
        &kubectl,
        &["cp", source.to_str().unwrap(), "box:/tmp/x"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    eprintln!("cp into the pod: {:?}", started.elapsed());
    let listing = run(
        &kubectl,
        &[
            "exec",
            "box",
            "--",
            "sh",
            "-c",
            "cd /tmp/x && find . | sort",
        ],
        b"",
    );
    assert_eq!(
        text(&listing.stdout),
        ".\n./bin.dat\n./empty\n./nested\n./nested/big\n./nested/deeper\n./nested/deeper/hello.txt\n./nested/with space.txt\n",
        "{}",
        show(&listing)
    );
    let hashed = run(
        &kubectl,
        &["exec", "box", "--", "sha256sum", "/tmp/x/nested/big"],
        b"",
    );
    assert_eq!(
        text(&hashed.stdout),
        format!("{}  /tmp/x/nested/big\n", sha256_hex(&big)),
        "{}",
        show(&hashed)
    );

    let back = work.path().join("back");
    let started = Instant::now();
    let out = run(&kubectl, &["cp", "box:/tmp/x", back.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    eprintln!("cp out of the pod: {:?}", started.elapsed());
    let (sent, got) = (tree(&source), tree(&back));
    assert_eq!(
        sent.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "not the same files"
    );
    for (path, content) in &sent {
        assert!(
            got[path] == *content,
            "{path} came back different: {} bytes, sha256 {} instead of {}",
            got[path].len(),
            sha256_hex(&got[path]),
            sha256_hex(content)
        );
    }

    // A single file to a file name.
    let single = work.path().join("single.bin");
    let out = run(
        &kubectl,
        &["cp", "box:/tmp/x/bin.dat", single.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(std::fs::read(&single).unwrap() == noise(70_000, 5));

    let uid = agent.uid("box");
    agent.delete_and_check("box", "1");
    agent.leak_check(&uid);
}

// ---------------------------------------------------------------------------------------------
// Bad input against the API directly

/// The admin's credentials from the agent's kubeconfig, as PEM files under `dir`, and the
/// server's URL.
struct Api {
    server: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Api {
    fn new(agent: &Agent, dir: &Path) -> Api {
        use base64::Engine;
        let kubeconfig =
            std::fs::read_to_string(agent.path().join("var/lib/peapod/kubeconfig.yaml")).unwrap();
        let config: Value = serde_yaml_ng::from_str(&kubeconfig).expect("kubeconfig YAML");
        let write = |name: &str, field: &Value| {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(field.as_str().expect("base64 field"))
                .unwrap();
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let cluster = &config["clusters"][0]["cluster"];
        let user = &config["users"][0]["user"];
        Api {
            server: cluster["server"].as_str().unwrap().to_string(),
            ca: write("ca.crt", &cluster["certificate-authority-data"]),
            cert: write("admin.crt", &user["client-certificate-data"]),
            key: write("admin.key", &user["client-key-data"]),
        }
    }

    /// curl over HTTP/1.1 (upgrades are HTTP/1.1): status code, headers (lower case) and body.
    fn curl(&self, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "--http1.1", "--max-time", "10", "-i", "-X", method])
            .arg("--cacert")
            .arg(&self.ca)
            .arg("--cert")
            .arg(&self.cert)
            .arg("--key")
            .arg(&self.key);
        for header in headers {
            command.args(["-H", header]);
        }
        let out = command
            .arg(format!("{}{path}", self.server))
            .stdin(Stdio::null())
            .output()
            .expect("running curl");
        let answer = text(&out.stdout);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| {
            panic!(
                "no HTTP answer to {method} {path}: {answer} {}",
                text(&out.stderr)
            )
        });
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, head.to_lowercase(), body.to_string())
    }
}

const WEBSOCKET_UPGRADE: [&str; 4] = [
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
];

/// kube-apiserver's UpgradeAwareHandler answers a connect request that is no upgrade with its
/// responder: a 400 Status `Upgrade request required`. An unserved WebSocket subprotocol is
/// refused by kubelet's x/net handshake (403, no body), passed through; an unserved SPDY
/// stream protocol by httpstream.Handshake (403 text). After each, the agent serves on.
#[test]
fn bad_upgrades_are_refused_as_kube_refuses_them() {
    let Some((agent, kubectl)) = start_for(Client::Default) else {
        return;
    };
    kubectl.apply(&sleeper("box"));
    agent.wait_running("box");
    let dir = tempfile::tempdir().unwrap();
    let api = Api::new(&agent, dir.path());
    let pod = "/api/v1/namespaces/default/pods/box";
    let still_serves = |after: &str| {
        let out = run(&kubectl, &["exec", "box", "--", "echo", "alive"], b"");
        assert_eq!(
            text(&out.stdout),
            "alive\n",
            "after {after}: {}",
            show(&out)
        );
        let listed = kubectl.ok(&["get", "pods", "-o", "name"]);
        assert_eq!(listed, "pod/box\n", "after {after}");
    };

    let mut failures = Vec::new();
    for (method, path) in [
        ("POST", format!("{pod}/exec?command=true&stdout=true")),
        ("GET", format!("{pod}/exec?command=true&stdout=true")),
        ("POST", format!("{pod}/attach?stdout=true")),
        ("POST", format!("{pod}/portforward?ports=80")),
    ] {
        let (code, head, body) = api.curl(method, &path, &[]);
        let status: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if code != 400
            || !head.contains("content-type: application/json")
            || status["kind"] != "Status"
            || status["message"] != "Upgrade request required"
            || status["reason"] != "BadRequest"
            || status["code"] != 400
        {
            failures.push(format!(
                "{method} {path} without upgrade: {code}\n{head}\n\n{body}\n(kube: 400 application/json Status BadRequest \"Upgrade request required\")"
            ));
        }
        still_serves(&format!("{method} {path}"));
    }

    for path in [
        format!("{pod}/exec?command=true&stdout=true"),
        format!("{pod}/portforward?ports=80"),
    ] {
        let mut headers = WEBSOCKET_UPGRADE.to_vec();
        headers.push("Sec-WebSocket-Protocol: nope");
        let (code, head, body) = api.curl("GET", &path, &headers);
        if code != 403 || !body.is_empty() {
            failures.push(format!(
                "GET {path} with subprotocol nope: {code}\n{head}\n\n{body}\n(kube: 403, empty body)"
            ));
        }
        still_serves(&format!("subprotocol nope on {path}"));
    }

    let spdy = [
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
        "X-Stream-Protocol-Version: v9.channel.k8s.io",
    ];
    let path = format!("{pod}/exec?command=true&stdout=true");
    let (code, head, body) = api.curl("POST", &path, &spdy);
    let expected = "unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io], server accepts [";
    if code != 403 || !body.starts_with(expected) {
        failures.push(format!(
            "POST {path} with SPDY stream protocol v9: {code}\n{head}\n\n{body}\n(kube: 403 {expected}...])"
        ));
    }
    still_serves("an unserved SPDY protocol");

    let uid = agent.uid("box");
    agent.delete_and_check("box", "1");
    agent.leak_check(&uid);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// kube's WebSocket channel reader (apimachinery wsstream `Conn.handle`) skips a frame for a
/// channel it does not have ("possible protocol error") and a frame on an output channel, and
/// reads on: the session goes on and ends as usual.
#[test]
fn websocket_frames_for_unknown_channels_are_ignored() {
    let agent = Agent::start();
    agent.apply(&sleeper("box"));
    agent.wait_running("box");
    let path =
        "/api/v1/namespaces/default/pods/box/exec?command=cat&stdin=true&stdout=true&stderr=true";
    let mut socket = WebSocket::connect(&agent.socket(), path, "v5.channel.k8s.io");
    socket.send(&[9, b'x']);
    socket.send(&[1, b'y']);
    socket.send(b"\x00hello\n");
    socket.send(&[255, 0]);
    let mut stdout = Vec::new();
    let mut status = None;
    while let Next::Message(opcode, payload) = socket.next() {
        if opcode == 0x8 {
            break;
        }
        match payload.first() {
            Some(1) => stdout.extend_from_slice(&payload[1..]),
            Some(3) => status = Some(text(&payload[1..])),
            _ => {}
        }
    }
    assert_eq!(text(&stdout), "hello\n", "status: {status:?}");
    let status: Value = serde_json::from_str(status.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(status["status"], "Success", "{status}");
    let (code, out, _) = agent.exec("box", "c", &["echo", "alive"]);
    assert_eq!((code, out.as_str()), (0, "alive\n"));
    let uid = agent.uid("box");
    agent.delete_and_check("box", "1");
    agent.leak_check(&uid);
}

/// The WebSocket protocols kube-apiserver passes to kubelet besides v5: `v4.channel.k8s.io`
/// (Status JSON on the error channel), `channel.k8s.io` (the Status message as text) and
/// `base64.channel.k8s.io` (text frames: the channel as a digit, then base64). Each opens with
/// an empty message on stdout, keeps stdout and stderr apart and reports exit 3.
#[test]
fn websocket_exec_speaks_v4_and_the_older_protocols() {
    use base64::Engine;
    let agent = Agent::start();
    agent.apply(&sleeper("box"));
    agent.wait_running("box");
    let path = "/api/v1/namespaces/default/pods/box/exec?command=sh&command=-c&command=echo%20out%3B%20echo%20err%20%3E%262%3B%20exit%203&stdout=true&stderr=true";
    let mut failures = Vec::new();
    for protocol in [
        "v4.channel.k8s.io",
        "channel.k8s.io",
        "base64.channel.k8s.io",
        "v4.base64.channel.k8s.io",
    ] {
        let base64 = protocol.contains("base64");
        let mut socket = WebSocket::connect(&agent.socket(), path, protocol);
        let mut messages: Vec<(u8, Vec<u8>)> = Vec::new();
        loop {
            match socket.next() {
                Next::Message(8, _) | Next::Closed => break,
                Next::Message(opcode, payload) if !payload.is_empty() => {
                    let (channel, data) = if base64 {
                        assert_eq!(opcode, 1, "{protocol}: not a text frame");
                        let data = base64::engine::general_purpose::STANDARD
                            .decode(&payload[1..])
                            .unwrap_or_else(|e| panic!("{protocol}: {e}: {payload:?}"));
                        (payload[0] - b'0', data)
                    } else {
                        assert_eq!(opcode, 2, "{protocol}: not a binary frame");
                        (payload[0], payload[1..].to_vec())
                    };
                    messages.push((channel, data));
                }
                Next::Message(..) => {}
                Next::TimedOut => panic!("{protocol}: no end; so far {messages:?}"),
            }
        }
        let on = |channel: u8| -> String {
            messages
                .iter()
                .filter(|(c, _)| *c == channel)
                .map(|(_, d)| text(d))
                .collect()
        };
        let first = messages.first().cloned();
        let (stdout, stderr, error) = (on(1), on(2), on(3));
        let error_ok = if protocol.starts_with("v4.") {
            let status: Value = serde_json::from_str(&error).unwrap_or(Value::Null);
            status["status"] == "Failure"
                && status["reason"] == "NonZeroExitCode"
                && status["details"]["causes"][0]["reason"] == "ExitCode"
                && status["details"]["causes"][0]["message"] == "3"
        } else {
            error.starts_with("command terminated with non-zero exit code: ")
                && error.ends_with("exit code 3")
        };
        if first != Some((1, Vec::new())) || stdout != "out\n" || stderr != "err\n" || !error_ok {
            failures.push(format!(
                "{protocol}: first message {first:?}, stdout {stdout:?}, stderr {stderr:?}, error channel {error:?}"
            ));
        }
    }
    let (code, out, _) = agent.exec("box", "c", &["echo", "alive"]);
    assert_eq!((code, out.as_str()), (0, "alive\n"));
    let uid = agent.uid("box");
    agent.delete_and_check("box", "1");
    agent.leak_check(&uid);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
