//! End-to-end harness: a real agent (`peapod serve`) on a temporary `PEAPOD_ROOT`, the real
//! CLI, the locally built busybox test image, and a leak check that every test ends with.
#![allow(dead_code)]

pub mod kubectl;
pub mod websocket;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn peapod_bin() -> &'static str {
    env!("CARGO_BIN_EXE_peapod")
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The registry fixture of peapod-image's tests, shared so that every test finds the busybox
/// archives in one place (`registry::images_dir`).
#[path = "../../../../peapod-image/tests/support/registry.rs"]
pub mod registry;

pub use registry::images_dir;

/// A gRPC health server the probe tests serve inside a pod's network namespace.
pub mod grpc_health;

pub struct Agent {
    pub root: tempfile::TempDir,
    /// Where the agent's log goes: apart from the root, so that every start of the agent on
    /// this root appends to it.
    logs: tempfile::TempDir,
    /// Where the agent's stdout and stderr go instead of the log, if set.
    stderr: Option<PathBuf>,
    child: Option<Child>,
    backoff: String,
    /// The agent's own bridge and pod range, so that agents of tests running in parallel
    /// never share addresses.
    pub bridge: String,
    pub cidr: String,
    /// Extra environment of `peapod serve` (see `start_with_env`, `set_env`).
    env: Vec<(String, String)>,
}

/// The pod with its status before its spec and without managedFields: what a failure message
/// shows first must be what went wrong, not a page of field ownership.
fn status_first(pod: Value) -> String {
    let mut metadata = pod["metadata"].clone();
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.remove("managedFields");
    }
    format!(
        "status: {:#}\nmetadata: {:#}\nspec: {:#}",
        pod["status"], metadata, pod["spec"]
    )
}

/// A directory for an agent's log: on the disk of its root when the test gave one (an agent
/// whose stderr is on a full disk must go on), in the temporary directory otherwise.
fn log_dir(parent: Option<&Path>) -> tempfile::TempDir {
    let mut builder = tempfile::Builder::new();
    builder.prefix("peapod-e2e-log-");
    match parent {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .expect("a directory for the agent's log")
}

/// Hard eviction thresholds that leave the pods under test alone: 1% of the root's disk, at
/// most 64 MiB (a small tmpfs of a test, or the big disk the build fills).
fn eviction_reserve(root: &Path) -> String {
    let stat = nix::sys::statvfs::statvfs(root).expect("statvfs of the agent's root");
    let capacity = stat.blocks() as u64 * stat.fragment_size() as u64;
    let bytes = (capacity / 100).min(64 << 20);
    format!("nodefs.available<{bytes},imagefs.available<{bytes}")
}

/// A busybox pod `client` (container `main`, label role=client) that only sleeps: where
/// requests to Services and DNS questions are made from.
pub const CLIENT_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: client
  labels: {role: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sleep, '3600']
";

/// The log without its audit lines (one a request), which would crowd out what went wrong.
pub fn without_audit(log: &str) -> String {
    log.lines()
        .filter(|line| !line.contains("peapod::audit"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A bridge name and a /24 pod range no other agent of this test run uses: the ranges count
/// up through 10.100.0.0/16–10.163.255.0/24, from a start the process id picks.
fn fresh_network() -> (String, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let pid = std::process::id();
    let range = (pid % 64 * 256 + n) % (64 * 256);
    (
        format!("pe{}x{n}", pid % 100_000),
        format!("10.{}.{}.0/24", 100 + range / 256, range % 256),
    )
}

impl Agent {
    /// An agent with a 1 s CrashLoopBackOff base and the busybox image loaded.
    pub fn start() -> Agent {
        Agent::start_with_backoff("1s")
    }

    pub fn start_with_backoff(backoff: &str) -> Agent {
        let (bridge, cidr) = fresh_network();
        Agent::start_with(backoff, &bridge, &cidr)
    }

    /// An agent on a given bridge and pod range.
    pub fn start_with(backoff: &str, bridge: &str, cidr: &str) -> Agent {
        Agent::start_full(backoff, bridge, cidr, None, &[])
    }

    fn start_full(
        backoff: &str,
        bridge: &str,
        cidr: &str,
        parent: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Agent {
        let mut builder = tempfile::Builder::new();
        builder.prefix("peapod-e2e-");
        let root = match parent {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .expect("temporary PEAPOD_ROOT");
        let mut agent = Agent {
            root,
            logs: log_dir(parent),
            stderr: None,
            child: None,
            backoff: backoff.to_string(),
            bridge: bridge.to_string(),
            cidr: cidr.to_string(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        agent.spawn();
        agent.load_busybox();
        agent
    }

    /// An agent whose stdout and stderr go to `stderr` (e.g. /dev/full) instead of its log.
    pub fn start_writing_stderr_to(stderr: &Path) -> Agent {
        let (bridge, cidr) = fresh_network();
        let mut agent = Agent::start_full("1s", &bridge, &cidr, None, &[]);
        agent.kill_agent();
        agent.stderr = Some(stderr.to_path_buf());
        agent.spawn();
        agent
    }

    fn load_busybox(&self) {
        let loaded = self.cli(&[
            "load",
            "-i",
            images_dir().join("busybox-oci.tar").to_str().unwrap(),
        ]);
        assert!(
            loaded.status.success(),
            "loading busybox: {}",
            text(&loaded.stderr)
        );
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr.as_deref().unwrap_or(&self.log_path()))
            .unwrap();
        let child = Command::new(peapod_bin())
            .args(["serve", "--crashloop-backoff", &self.backoff])
            .env("PEAPOD_ROOT", self.root.path())
            .env("PEAPOD_BRIDGE", &self.bridge)
            .env("PEAPOD_POD_CIDR", &self.cidr)
            .env("PEAPOD_SERVICE_CIDR", self.service_cidr())
            .env("PEAPOD_SERVICE_NODE_PORT_RANGE", self.node_port_range())
            .env("RUST_LOG", "info")
            // Tests run agents side by side: HTTPS only where a test gives it its own port.
            .env("PEAPOD_API_LISTEN", "off")
            // Nor may they fight over ports 80 and 443: the ingress tests give their own.
            .env("PEAPOD_INGRESS_HTTP_PORT", "off")
            .env("PEAPOD_INGRESS_HTTPS_PORT", "off")
            // The build shares this disk: pods under test must not be evicted because the
            // target directory grew. The disk tests set their own thresholds.
            .env("PEAPOD_EVICTION_HARD", eviction_reserve(self.root.path()))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting peapod serve");
        self.child = Some(child);
        let socket = self.socket();
        let log = self.log_path();
        let child = self.child.as_mut().expect("just spawned");
        wait_until(Duration::from_secs(10), "the agent's socket", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the agent exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
    }

    /// The agent's Service range: a /24 of its own, its pod range's octets moved into
    /// 100.64.0.0/10 (10.100.7.0/24 → 100.64.7.0/24), so that parallel agents' cluster IPs
    /// never meet.
    pub fn service_cidr(&self) -> String {
        let (second, third) = self.pod_range_octets();
        format!("100.{}.{third}.0/24", second - 36)
    }

    /// The agent's NodePort range: 32 ports of its own in kube's 30000-32767 (agents of far
    /// apart pod ranges may share one; tests on NodePorts check what they were given).
    pub fn node_port_range(&self) -> String {
        let (second, third) = self.pod_range_octets();
        let slot = ((second - 100) * 256 + third) % 85;
        let first = 30000 + slot * 32;
        format!("{first}-{}", first + 31)
    }

    /// The second and third octets of the agent's 10.x.y.0 pod range (x ≥ 100).
    fn pod_range_octets(&self) -> (u32, u32) {
        let octets: Vec<u32> = self
            .cidr
            .split(['.', '/'])
            .filter_map(|part| part.parse().ok())
            .collect();
        match octets[..] {
            [10, second @ 100..=255, third, 0, _] => (second, third),
            _ => panic!(
                "pod range {} is not a 10.x.y.0 range with x ≥ 100",
                self.cidr
            ),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.root.path().join("run/peapod/peapod.sock")
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn agent_pid(&self) -> u32 {
        self.child.as_ref().expect("agent running").id()
    }

    /// SIGKILLs the agent (its pods keep running) and starts a new one on the same root.
    pub fn kill_and_restart(&mut self) {
        self.kill_agent();
        self.spawn();
    }

    pub fn kill_agent(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Runs the CLI against this agent.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(peapod_bin())
            .args(args)
            .env("PEAPOD_ROOT", self.root.path())
            .stdin(Stdio::null())
            .output()
            .expect("running the peapod CLI")
    }

    /// Runs the CLI with `input` on stdin.
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> Output {
        self.spawn_cli_with_stdin(args, input)
            .wait_with_output()
            .unwrap()
    }

    /// `cli_stdin` that gives up after `timeout` (kills the CLI) instead of hanging the test.
    pub fn cli_stdin_within(&self, args: &[&str], input: &str, timeout: Duration) -> Output {
        let child = self.spawn_cli_with_stdin(args, input);
        let pid = child.id() as i32;
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(timeout).is_err() {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return true;
            }
            false
        });
        let out = child.wait_with_output().unwrap();
        let _ = done_tx.send(());
        let timed_out = watchdog.join().unwrap();
        assert!(
            !timed_out,
            "peapod {} did not finish within {timeout:?} (stdin {input:?})",
            args.join(" ")
        );
        out
    }

    /// The CLI with piped output and `input` already written to its stdin.
    fn spawn_cli_with_stdin(&self, args: &[&str], input: &str) -> Child {
        use std::io::Write;
        let mut child = Command::new(peapod_bin())
            .args(args)
            .env("PEAPOD_ROOT", self.root.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running the peapod CLI");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child
    }

    /// Runs the CLI and insists it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "peapod {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Applies a manifest given as text.
    pub fn apply(&self, manifest: &str) -> String {
        let out = self.cli_stdin(&["apply", "-f", "-"], manifest);
        assert!(out.status.success(), "apply failed: {}", text(&out.stderr));
        text(&out.stdout)
    }

    pub fn apply_file(&self, path: &Path) -> String {
        self.ok(&["apply", "-f", path.to_str().unwrap()])
    }

    /// Applies the example manifest `file`, which must create exactly `pod/POD`.
    pub fn apply_example(&self, file: &str, pod: &str) {
        assert_eq!(
            self.apply_file(&example(file)).trim(),
            format!("pod/{pod} created")
        );
    }

    /// `apply_example`, then waits until all of the pod's containers run.
    pub fn run_example(&self, file: &str, pod: &str) -> Value {
        self.apply_example(file, pod);
        self.wait_running(pod)
    }

    /// The pod as JSON, or None when it does not exist.
    pub fn pod(&self, name: &str) -> Option<Value> {
        let out = self.cli(&["get", "pod", name, "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("pod JSON"))
    }

    /// The pid the pod's shim wrote to its run directory.
    pub fn shim_pid(&self, uid: &str) -> i32 {
        let pid_file = self
            .path()
            .join("run/peapod/pods")
            .join(uid)
            .join("shim.pid");
        std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()))
            .trim()
            .parse()
            .expect("a pid in shim.pid")
    }

    /// SIGKILLs the pod's shim (its sandbox dies; the worker re-creates it).
    pub fn kill_shim(&self, uid: &str) {
        // SAFETY: kill(2) on a pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.shim_pid(uid), libc::SIGKILL) }, 0);
    }

    pub fn uid(&self, name: &str) -> String {
        self.pod(name).expect("pod exists")["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits until `check` holds for the pod's JSON.
    pub fn wait_pod(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let seen = |pod: &Option<Value>| pod.as_ref().is_some_and(&check);
        let last = poll(timeout, Duration::from_millis(100), || self.pod(name), seen);
        match last {
            Some(pod) if check(&pod) => pod,
            last => panic!(
                "pod {name}: timed out waiting for {what}; last seen:\n{}\n\
                 agent log (its end):\n{}",
                status_first(last.unwrap_or_default()),
                tail(&without_audit(&self.agent_log()), 80)
            ),
        }
    }

    /// Waits until the pod's `status.phase` is `phase`.
    pub fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> Value {
        self.wait_pod(name, phase, timeout, |p| p["status"]["phase"] == phase)
    }

    pub fn wait_running(&self, name: &str) -> Value {
        self.wait_pod(
            name,
            "all containers running",
            Duration::from_secs(30),
            all_running,
        )
    }

    /// `peapod exec POD -c C -- CMD...`: (exit code, stdout, stderr).
    pub fn exec(&self, pod: &str, container: &str, command: &[&str]) -> (i32, String, String) {
        let mut args = vec!["exec", pod, "-c", container, "--"];
        args.extend_from_slice(command);
        let out = self.cli(&args);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// The STATUS column of `get pod NAME` (kubectl's table: NAME READY STATUS RESTARTS AGE).
    pub fn get_status(&self, name: &str) -> String {
        let table = self.ok(&["get", "pod", name]);
        let header = columns(&table, 0);
        assert_eq!(header.get(2), Some(&"STATUS"), "kubectl's columns: {table}");
        columns(&table, 1)
            .get(2)
            .unwrap_or_else(|| panic!("no STATUS in {table}"))
            .to_string()
    }

    /// The agent's log (stdout and stderr of `peapod serve`).
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.logs.path().join("agent.log")
    }

    /// Deletes the pod (waiting until it is gone) and checks nothing of it is left: before
    /// the delete, that no container of it runs twice; after, that nothing of it remains.
    pub fn delete_and_check(&self, name: &str, grace: &str) {
        let uid = self.uid(name);
        self.assert_single_instances(&uid);
        self.ok(&["delete", "pod", name, "--grace-period", grace]);
        assert!(
            self.pod(name).is_none(),
            "pod {name} still exists after delete"
        );
        self.leak_check(&uid);
    }

    /// Nothing of pod `uid` remains: no process (shim or container), no mount, no cgroup,
    /// no run, data or log directory, no veth, no nftables rule, no address held.
    pub fn leak_check(&self, uid: &str) {
        let root = self.root.path().to_string_lossy().to_string();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut leaks = leaks(&root, uid);
            leaks.extend(self.network_leaks(uid));
            if leaks.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "pod {uid} leaked:\n{}\nagent log:\n{}",
                    leaks.join("\n"),
                    self.agent_log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Agent {
    /// What the pod's shim says it holds (`{"pid":..,"containers":[..]}`), None without one.
    pub fn shim_state(&self, uid: &str) -> Option<Value> {
        use std::io::{BufRead, Write};
        let socket = self
            .root
            .path()
            .join("run/peapod/pods")
            .join(uid)
            .join("shim.sock");
        let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(b"{\"op\":\"state\"}\n").ok()?;
        let mut line = String::new();
        std::io::BufReader::new(stream).read_line(&mut line).ok()?;
        serde_json::from_str(&line).ok()
    }

    /// No container of pod `uid` has two live instances, and none was left created but never
    /// started. A container caught between create and start (a restart in progress) is given
    /// a few seconds to start before it counts as left behind.
    pub fn assert_single_instances(&self, uid: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let state = loop {
            let Some(state) = self.shim_state(uid) else {
                return;
            };
            let created = containers_in(&state, "created");
            if created.is_empty() {
                break state;
            }
            assert!(
                Instant::now() < deadline,
                "pod {uid}: containers created but never started: {created:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut live: std::collections::HashMap<String, usize> = Default::default();
        for name in containers_in(&state, "running") {
            *live.entry(name).or_default() += 1;
        }
        for (name, count) in live {
            assert_eq!(
                count, 1,
                "pod {uid}: container {name} runs {count} times: {state:#}"
            );
        }
    }

    /// Sends `signal` to the agent and waits at most `within` for it to exit; how long it took.
    pub fn stop_agent(&mut self, signal: i32, within: Duration) -> Duration {
        let mut child = self.child.take().expect("agent running");
        let started = Instant::now();
        unsafe { libc::kill(child.id() as i32, signal) };
        while started.elapsed() < within {
            if child.try_wait().ok().flatten().is_some() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the agent did not exit within {within:?} of signal {signal}:\n{}",
            self.agent_log()
        );
    }

    pub fn nft_table(&self) -> String {
        format!("peapod-{}", self.bridge)
    }

    /// The agent's nftables table as `nft list` prints it.
    pub fn ruleset(&self) -> String {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &self.nft_table()])
            .output()
            .expect("running nft");
        text(&out.stdout)
    }

    /// Asserts that nothing of a deleted Service remains: no nft rule, set or map element
    /// naming its cluster IP or its NodePorts, no listening socket on those ports, and no
    /// conntrack entry towards its cluster IP but closed TCP connections, which the kernel
    /// keeps for their TIME_WAIT as it does on any cluster. The proxy follows the deletion
    /// a moment after the API answered it, as kube-proxy does: the check waits up to 5 s.
    pub fn service_leak_check(&self, cluster_ip: &str, node_ports: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (found, ruleset) = self.service_leaks(cluster_ip, node_ports);
            if found.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the deleted Service of {cluster_ip} left: {found:#?}\n{ruleset}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What remains of a deleted Service, and the ruleset it was looked for in.
    fn service_leaks(&self, cluster_ip: &str, node_ports: &[u16]) -> (Vec<String>, String) {
        let mut found = Vec::new();
        let ruleset = self.ruleset();
        let tokens: Vec<&str> = ruleset
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .collect();
        if tokens.contains(&cluster_ip) {
            found.push(format!("nft names {cluster_ip}"));
        }
        for port in node_ports {
            if tokens.contains(&port.to_string().as_str()) {
                found.push(format!("nft names NodePort {port}"));
            }
        }
        let sockets = Command::new("ss").args(["-Htuln"]).output().expect("ss");
        for line in text(&sockets.stdout).lines() {
            if node_ports.iter().any(|p| line.contains(&format!(":{p} "))) {
                found.push(format!("listening: {line}"));
            }
        }
        let conntrack = Command::new("conntrack")
            .args(["-L", "-d", cluster_ip])
            .stderr(Stdio::null())
            .output()
            .expect("conntrack (scripts/install-deps.sh installs it)");
        for line in text(&conntrack.stdout).lines() {
            if !line.contains("TIME_WAIT") && !line.contains(" CLOSE ") {
                found.push(format!("conntrack: {line}"));
            }
        }
        (found, ruleset)
    }

    fn network_leaks(&self, uid: &str) -> Vec<String> {
        let mut found = Vec::new();
        let veth = peapod_net::host_veth_name(uid);
        if Path::new("/sys/class/net").join(&veth).exists() {
            found.push(format!("veth: {veth}"));
        }
        if self.ruleset().contains(uid) {
            found.push(format!("nftables rule of pod {uid}:\n{}", self.ruleset()));
        }
        let ipam = self.root.path().join("var/lib/peapod/network/ipam");
        for entry in std::fs::read_dir(ipam).into_iter().flatten().flatten() {
            if std::fs::read_to_string(entry.path()).unwrap_or_default() == uid {
                found.push(format!("address held: {}", entry.path().display()));
            }
        }
        found
    }
}

fn leaks(root: &str, uid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            == Some("Z")
        {
            continue;
        }
        let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if (cmdline.contains(root) && cmdline.contains(uid))
            || cgroup.contains(&format!("pod{uid}"))
        {
            found.push(format!("process {pid}: {}", cmdline.replace('\0', " ")));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines().filter(|l| l.contains(uid)) {
        found.push(format!("mount: {line}"));
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        if let Ok(parents) = std::fs::read_dir(hierarchy.path()) {
            for parent in parents.flatten() {
                let dir = parent.path().join(format!("pod{uid}"));
                if dir.exists() {
                    found.push(format!("cgroup: {}", dir.display()));
                }
            }
        }
    }
    let root = Path::new(root);
    for dir in [
        root.join("run/peapod/pods").join(uid),
        root.join("var/lib/peapod/pods").join(uid),
    ] {
        if dir.exists() {
            found.push(format!("directory: {}", dir.display()));
        }
    }
    if let Ok(entries) = std::fs::read_dir(root.join("var/log/pods")) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(uid) {
                found.push(format!("log directory: {}", entry.path().display()));
            }
        }
    }
    found
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
        let _ = self.cli(&["delete", "pods", "--all", "--grace-period", "0"]);
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.nft_table()])
            .stderr(Stdio::null())
            .status();
        let parent = Path::new("/sys/fs/cgroup");
        let suffix = cgroup_parent_name(self.root.path());
        if let Ok(entries) = std::fs::read_dir(parent) {
            for hierarchy in entries.flatten() {
                let _ = std::fs::remove_dir(hierarchy.path().join(&suffix));
            }
        }
    }
}

/// The agent's per-root cgroup parent (see Paths::cgroup_parent).
fn cgroup_parent_name(root: &Path) -> String {
    peapod::paths::Paths::new(root.to_path_buf())
        .cgroup_parent()
        .trim_start_matches('/')
        .to_string()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `text` without its ANSI colour sequences (`ESC [ ... m`).
pub fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

pub fn wait_until(timeout: Duration, what: &str, check: impl FnMut() -> bool) {
    let done = poll(timeout, Duration::from_millis(50), check, |done| *done);
    assert!(done, "timed out waiting for {what}");
}

/// Calls `fetch` every `interval` until `done` holds for what it returns or `timeout` has
/// passed; returns the last value either way.
pub fn poll<T>(
    timeout: Duration,
    interval: Duration,
    mut fetch: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let value = fetch();
        if done(&value) || Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(interval);
    }
}

/// The whitespace-separated columns of line `index` of a table (0 is the header).
pub fn columns(table: &str, index: usize) -> Vec<&str> {
    table
        .lines()
        .nth(index)
        .unwrap_or_else(|| panic!("no line {index} in:\n{table}"))
        .split_whitespace()
        .collect()
}

pub fn all_running(pod: &Value) -> bool {
    let statuses = pod["status"]["containerStatuses"].as_array();
    pod["status"]["phase"] == "Running"
        && statuses
            .is_some_and(|s| !s.is_empty() && s.iter().all(|c| c["state"]["running"].is_object()))
}

pub fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            pod["status"]["initContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .find(|c| c["name"] == name)
        .unwrap_or(&Value::Null)
}

/// The container's `containerID`; panics when it has none yet.
pub fn container_id_of(pod: &Value, name: &str) -> String {
    container(pod, name)["containerID"]
        .as_str()
        .unwrap_or_else(|| panic!("container {name} has no containerID: {pod:#}"))
        .to_string()
}

/// The pod's condition of `type_` (Null when absent).
pub fn condition(pod: &Value, type_: &str) -> Value {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or(Value::Null)
}

/// An RFC 3339 timestamp field; panics when it is unset or malformed.
pub fn timestamp(value: &Value) -> jiff::Timestamp {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
        .parse()
        .unwrap_or_else(|e| panic!("bad timestamp {value}: {e}"))
}

pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

pub fn example_text(name: &str) -> String {
    std::fs::read_to_string(example(name)).expect("example manifest")
}

/// Pids in the container's cgroup (any v1 hierarchy that has one).
pub fn container_pids(uid: &str, container_id: &str) -> Vec<i32> {
    let id = container_id.trim_start_matches("peapod://");
    for hierarchy in ["pids", "memory", "cpu"] {
        let base = Path::new("/sys/fs/cgroup").join(hierarchy);
        let Ok(parents) = std::fs::read_dir(&base) else {
            continue;
        };
        for parent in parents.flatten() {
            let procs = parent
                .path()
                .join(format!("pod{uid}"))
                .join(id)
                .join("cgroup.procs");
            if let Ok(text) = std::fs::read_to_string(procs) {
                return text.lines().filter_map(|l| l.parse().ok()).collect();
            }
        }
    }
    Vec::new()
}

impl Agent {
    /// `start()` with extra environment variables for `peapod serve`.
    pub fn start_with_env(env: &[(&str, &str)]) -> Agent {
        let (bridge, cidr) = fresh_network();
        Agent::start_full("1s", &bridge, &cidr, None, env)
    }

    /// `start_with_env` with the agent's PEAPOD_ROOT and its log in new directories under
    /// `parent` (e.g. a small tmpfs the test mounted).
    pub fn start_in(parent: &Path, env: &[(&str, &str)]) -> Agent {
        let (bridge, cidr) = fresh_network();
        Agent::start_full("1s", &bridge, &cidr, Some(parent), env)
    }

    /// Sets an environment variable of `peapod serve` for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }
}

impl Agent {
    /// GET `path` from the agent's API (over its socket) as JSON, as kubectl would read it.
    pub fn api_get(&self, path: &str) -> Value {
        let out = Command::new("curl")
            .args(["-sf", "--unix-socket"])
            .arg(self.socket())
            .arg(format!("http://localhost{path}"))
            .output()
            .expect("running curl");
        assert!(out.status.success(), "GET {path}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("API JSON")
    }

    /// POSTs `body` (JSON) to `path` over the agent's socket; returns the answer.
    pub fn api_post(&self, path: &str, body: &Value) -> Value {
        let out = Command::new("curl")
            .args([
                "-sf",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--unix-socket",
            ])
            .arg(self.socket())
            .arg(format!("http://localhost{path}"))
            .args(["--data-binary", &body.to_string()])
            .output()
            .expect("running curl");
        assert!(out.status.success(), "POST {path}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("API JSON")
    }

    /// GET `path` as JSON; `None` when the API answers an error (404 and the like).
    pub fn api_try_get(&self, path: &str) -> Option<Value> {
        let out = Command::new("curl")
            .args(["-sf", "--unix-socket"])
            .arg(self.socket())
            .arg(format!("http://localhost{path}"))
            .output()
            .expect("running curl");
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("API JSON"))
    }

    /// DELETEs `path` with `options` (a DeleteOptions body) over the agent's socket; returns
    /// the HTTP code and the answer.
    pub fn api_delete(&self, path: &str, options: &Value) -> (u16, Value) {
        let out = Command::new("curl")
            .args(["-s", "-X", "DELETE", "-H", "Content-Type: application/json"])
            .args(["-w", "\n%{http_code}", "--unix-socket"])
            .arg(self.socket())
            .arg(format!("http://localhost{path}"))
            .args(["--data-binary", &options.to_string()])
            .output()
            .expect("running curl");
        let answer = text(&out.stdout);
        let (body, code) = answer.rsplit_once('\n').unwrap_or(("", answer.as_str()));
        let code = code.trim().parse().unwrap_or(0);
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Creates namespace `name`, as `kubectl create namespace` does.
    pub fn create_namespace(&self, name: &str) {
        let namespace = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
        });
        self.api_post("/api/v1/namespaces", &namespace);
    }

    /// The events (as JSON objects) whose involved object is the pod with `uid`.
    pub fn events_of(&self, uid: &str) -> Vec<Value> {
        let list = self.api_get("/api/v1/events");
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["involvedObject"]["uid"] == uid)
            .cloned()
            .collect()
    }

    /// Waits until an event of pod `uid` with `reason` and a message `check` accepts exists.
    pub fn wait_event(
        &self,
        uid: &str,
        reason: &str,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> Value {
        let matching = |events: &Vec<Value>| {
            events
                .iter()
                .find(|e| e["reason"] == reason && check(e["message"].as_str().unwrap_or("")))
                .cloned()
        };
        let events = poll(
            timeout,
            Duration::from_millis(200),
            || self.events_of(uid),
            |events| matching(events).is_some(),
        );
        matching(&events).unwrap_or_else(|| {
            panic!(
                "no {reason} event as expected for pod {uid}; events: {:#}\nagent log:\n{}",
                Value::Array(events),
                self.agent_log()
            )
        })
    }

    /// Starts watching pod `name` through the API (`?watch=true`), as `get -w` does.
    pub fn watch_pod(&self, name: &str) -> PodWatch {
        let mut child = Command::new("curl")
            .args(["-sN", "--unix-socket"])
            .arg(self.socket())
            .arg(format!(
                "http://localhost/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name={name}"
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running curl");
        let stdout = child.stdout.take().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(event);
                }
            }
        });
        let watch = PodWatch {
            child,
            seen,
            reader: Some(reader),
        };
        wait_until(Duration::from_secs(5), "the watch's first event", || {
            !watch.seen.lock().unwrap().is_empty()
        });
        watch
    }
}

/// A running `?watch=true` request on one pod; `stop` returns the watch events seen.
pub struct PodWatch {
    child: Child,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl PodWatch {
    /// Ends the watch; the events ({type, object}) it delivered, in order.
    pub fn stop(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// From a watch of a deleted pod: how many whole seconds after the delete request
/// (`deletionTimestamp` − `deletionGracePeriodSeconds`, as the API server sets them)
/// `container` finished, and its terminated state. The agent's own timing, unaffected by how
/// slowly the CLI starts on a loaded machine.
pub fn finished_after_delete(seen: &[Value], container_name: &str) -> (i64, Value) {
    let last = seen
        .iter()
        .rev()
        .find(|e| {
            container(&e["object"], container_name)["state"]["terminated"].is_object()
                && e["object"]["metadata"]["deletionTimestamp"].is_string()
        })
        .unwrap_or_else(|| {
            panic!(
                "the watch never showed {container_name} terminated during deletion: {:#}",
                Value::Array(seen.to_vec())
            )
        });
    let meta = &last["object"]["metadata"];
    let grace = meta["deletionGracePeriodSeconds"]
        .as_i64()
        .expect("a grace period");
    let requested = timestamp(&meta["deletionTimestamp"]).as_second() - grace;
    let terminated = container(&last["object"], container_name)["state"]["terminated"].clone();
    (
        timestamp(&terminated["finishedAt"]).as_second() - requested,
        terminated,
    )
}

/// The names of the containers of a shim's state in `status`, once per instance.
fn containers_in(state: &Value, status: &str) -> Vec<String> {
    state["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"].as_str() == Some(status))
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect()
}
