//! Streaming benchmarks (issue 13), on a fresh agent with one busybox pod that serves 1 GiB of
//! random data from a tmpfs emptyDir with busybox httpd on :8080:
//! - exec round trip of `true`: the server's share, through a minimal WebSocket
//!   `v5.channel.k8s.io` client over the agent's Unix socket (request -> 101, and request ->
//!   exit Status on channel 3 and the close), `peapod exec`, `kubectl exec` over HTTPS (its
//!   default WebSocket transport and SPDY) and `kubectl get pod` beside them (kubectl's own
//!   start, TLS handshake and one GET), 50 runs each, alternated; the agent's CPU per exec;
//! - port-forward throughput: the file downloaded from the pod IP directly, through
//!   `kubectl port-forward` (WebSocket-tunnelled SPDY, its default, and plain SPDY with
//!   `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`) and through `peapod port-forward`, a few runs
//!   each, alternated; the median in MiB/s, with the CPU the agent, the forwarding client,
//!   the pod and this reader spent per GiB, and the host's busy and stolen CPU.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::Message;

use super::{percentile, report, shim_pids, which, Agent, Options};

const POD: &str = "streams";
const PORT: u16 = 8080;
/// The size of the file served, in MiB.
const FILE_MIB: u64 = 1024;
const EXEC_RUNS: usize = 50;
const TRANSFER_RUNS: usize = 5;
/// Writing the file from /dev/urandom may take a while on a busy machine.
const SERVING_TIMEOUT: Duration = Duration::from_secs(300);
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const MIB: f64 = 1024.0 * 1024.0;

pub fn run(options: &Options) -> Result<()> {
    let root = tempfile::Builder::new()
        .prefix("peapod-bench-streams-")
        .tempdir()?;
    let mut agent = Agent::start(options, root.path())?;
    agent.start_pod(&pod())?;
    let ip = pod_ip(&agent)?;
    let server = SocketAddr::new(ip, PORT);
    wait_serving(server)?;
    println!(
        "peapod: streams, one busybox pod ({FILE_MIB} MiB of /dev/urandom in a tmpfs emptyDir, httpd on {server})"
    );
    let cache = tempfile::tempdir()?;
    let tools = Tools {
        peapod: options.peapod.clone(),
        root: root.path().to_path_buf(),
        kubeconfig: root.path().join("var/lib/peapod/kubeconfig.yaml"),
        cache: cache.path().to_path_buf(),
    };
    exec_bench(&agent, &tools)?;
    forward_bench(&agent, &tools, server)?;
    agent.delete_pod(POD)?;
    agent.stop_cleanly()
}

fn pod() -> Value {
    let script = format!(
        "head -c {} /dev/urandom > /data/big.tmp && mv /data/big.tmp /data/big && exec httpd -f -p {PORT} -h /data",
        FILE_MIB * 1024 * 1024
    );
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": "busybox",
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script],
                "ports": [{"containerPort": PORT}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }],
            "volumes": [{"name": "data", "emptyDir": {"medium": "Memory"}}],
        },
    })
}

fn pod_ip(agent: &Agent) -> Result<IpAddr> {
    let pods = agent.pods()?;
    let pod = pods
        .iter()
        .find(|p| p["metadata"]["name"] == POD)
        .context("the streams pod is not listed")?;
    let ip = pod["status"]["podIP"]
        .as_str()
        .context("the streams pod has no podIP")?;
    Ok(ip.parse()?)
}

/// Waits until httpd answers, which it does once the file is written.
fn wait_serving(server: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + SERVING_TIMEOUT;
    while TcpStream::connect_timeout(&server, Duration::from_secs(1)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "the pod did not serve on {server} within {} s",
                SERVING_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The clients run against the bench's agent.
#[derive(Clone)]
struct Tools {
    peapod: PathBuf,
    root: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Tools {
    fn peapod(&self) -> Command {
        let mut command = Command::new(&self.peapod);
        command.env("PEAPOD_ROOT", &self.root);
        command
    }

    fn kubectl(&self) -> Command {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("KUBECACHEDIR", &self.cache);
        command
    }
}

/// A whole command, timed: its wall time in milliseconds, or its stderr when it failed.
fn timed(mut command: Command) -> Result<std::result::Result<f64, String>> {
    let started = Instant::now();
    let out = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    Ok(if out.status.success() {
        Ok(elapsed)
    } else {
        Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })
}

/// One way of running `true` in the pod: a whole command, timed over the runs.
struct ExecWay {
    label: &'static str,
    command: Box<dyn Fn() -> Command>,
    samples: Vec<f64>,
    /// The agent's CPU over this way's runs, in milliseconds.
    agent_cpu_ms: f64,
    /// Why it was not measured (its warm-up failed).
    failed: Option<String>,
}

type Env = &'static [(&'static str, &'static str)];

fn exec_bench(agent: &Agent, tools: &Tools) -> Result<()> {
    let mut ways = Vec::new();
    let mut add = |label, make: fn(&Tools) -> Command, args: &'static [&'static str], env: Env| {
        let tools = tools.clone();
        let command = move || {
            let mut command = make(&tools);
            command.args(args).envs(env.iter().copied());
            command
        };
        ways.push(ExecWay {
            label,
            command: Box::new(command),
            samples: Vec::new(),
            agent_cpu_ms: 0.0,
            failed: None,
        })
    };
    let exec_true: &[&str] = &["exec", POD, "--", "true"];
    add(
        "peapod exec POD -- true (whole command, socket)",
        Tools::peapod,
        exec_true,
        &[],
    );
    if which("kubectl") {
        add(
            "kubectl exec POD -- true (whole command, HTTPS, WebSocket v5)",
            Tools::kubectl,
            exec_true,
            &[],
        );
        add(
            "kubectl exec POD -- true (whole command, HTTPS, SPDY)",
            Tools::kubectl,
            exec_true,
            &[("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")],
        );
        add(
            "kubectl get pod POD (whole command, HTTPS: kubectl's start, TLS, one GET)",
            Tools::kubectl,
            &["get", "pod", POD, "-o", "name"],
            &[],
        );
    } else {
        println!("  kubectl not installed: `kubectl exec` not timed");
    }
    // Warm-up (kubectl's cache, the agent's first TLS session, the shim's first exec).
    for _ in 0..2 {
        ws_exec(&agent.socket)?;
        for way in ways.iter_mut().filter(|w| w.failed.is_none()) {
            way.failed = timed((way.command)())?.err();
        }
    }
    let (mut upgrades, mut statuses, mut server) = (Vec::new(), Vec::new(), Vec::new());
    let mut server_cpu_ms = 0.0;
    let host = HostCpu::start();
    // Each round runs every way once, starting one further each time: none always follows
    // the same neighbour (a kubectl process just gone, a cold cache).
    let measured: Vec<usize> = (0..ways.len())
        .filter(|&i| ways[i].failed.is_none())
        .collect();
    for round in 0..EXEC_RUNS {
        for k in 0..=measured.len() {
            let before = agent.cpu_ms();
            match (round + k) % (measured.len() + 1) {
                0 => {
                    let (upgraded, status, closed) = ws_exec(&agent.socket)?;
                    server_cpu_ms += agent.cpu_ms() - before;
                    upgrades.push(upgraded);
                    statuses.push(status);
                    server.push(closed);
                }
                i => {
                    let way = &mut ways[measured[i - 1]];
                    match timed((way.command)())? {
                        Ok(ms) => way.samples.push(ms),
                        Err(why) => bail!("{}: {why}", way.label),
                    }
                    way.agent_cpu_ms += agent.cpu_ms() - before;
                }
            }
        }
    }
    let (steal, busy) = host.percent();
    println!("peapod: exec `true` in the running pod, {EXEC_RUNS} runs each, alternated");
    report(
        "server: WebSocket v5 exec over the socket, request -> 101 Switching Protocols",
        &mut upgrades,
    );
    report(
        "server: WebSocket v5 exec over the socket, request -> exit Status",
        &mut statuses,
    );
    report(
        "server: WebSocket v5 exec over the socket, request -> exit Status and close",
        &mut server,
    );
    let per_run = |ms: f64| ms / EXEC_RUNS as f64;
    println!(
        "    agent CPU (user + system) per run: {:.1} ms",
        per_run(server_cpu_ms)
    );
    for way in ways.iter_mut() {
        match &way.failed {
            Some(why) => println!("  {}: not measured: {why}", way.label),
            None => {
                report(way.label, &mut way.samples);
                println!(
                    "    agent CPU (user + system) per run: {:.1} ms",
                    per_run(way.agent_cpu_ms)
                );
            }
        }
    }
    println!(
        "  host CPU during these runs, of all {} CPUs: busy {busy:.0} %, stolen by the hypervisor {steal:.0} %",
        cpus()
    );
    let server = percentile(&mut server, 50.0);
    println!(
        "  target (issue 13) exec under 30 ms of server time: {} (p50 {server:.1} ms)",
        if server < 30.0 { "met" } else { "not met" }
    );
    Ok(())
}

/// `true` run through a WebSocket `v5.channel.k8s.io` exec on a new connection to the
/// agent's socket: milliseconds from the request to the 101, to the exit Status on channel 3,
/// and to the close that follows it.
fn ws_exec(socket: &Path) -> Result<(f64, f64, f64)> {
    let started = Instant::now();
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut request = format!(
        "ws://peapod/api/v1/namespaces/default/pods/{POD}/exec?command=true&stdout=true&stderr=true"
    )
    .into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("v5.channel.k8s.io"),
    );
    let (mut ws, _) =
        tungstenite::client::client(request, stream).map_err(|e| anyhow!("exec upgrade: {e}"))?;
    let upgraded = started.elapsed().as_secs_f64() * 1000.0;
    let mut status = None;
    loop {
        match ws.read() {
            Ok(Message::Binary(data)) if data.first() == Some(&3) => {
                let at = started.elapsed().as_secs_f64() * 1000.0;
                status = Some((String::from_utf8_lossy(&data[1..]).into_owned(), at));
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => bail!("exec session: {e}"),
        }
    }
    let total = started.elapsed().as_secs_f64() * 1000.0;
    let (status, status_ms) = status.context("the exec ended without a Status on channel 3")?;
    if !status.contains("\"Success\"") {
        bail!("the exec failed: {status}");
    }
    Ok((upgraded, status_ms, total))
}

/// A forwarding client left running: where it listens, and its process.
struct Forwarder {
    label: &'static str,
    child: Child,
    local: SocketAddr,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One way of downloading the file, and what each of its runs cost.
struct Transfer {
    label: &'static str,
    address: SocketAddr,
    forwarder: Option<u32>,
    rates: Vec<f64>,
    /// The time spent transferring, all runs together.
    seconds: f64,
    agent_cpu_ms: f64,
    forwarder_cpu_ms: f64,
    /// The pod's container (httpd and the children it forks per connection).
    pod_cpu_ms: f64,
    reader_cpu_ms: f64,
    steal: f64,
    busy: f64,
}

fn forward_bench(agent: &Agent, tools: &Tools, server: SocketAddr) -> Result<()> {
    let remote = format!(":{PORT}");
    let mut forwarders = Vec::new();
    let mut skipped = Vec::new();
    if which("kubectl") {
        let mut websocket = tools.kubectl();
        websocket.args(["port-forward", &format!("pod/{POD}"), &remote]);
        let mut spdy = tools.kubectl();
        spdy.args(["port-forward", &format!("pod/{POD}"), &remote])
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
        for (label, command) in [
            ("kubectl port-forward (WebSocket-tunnelled SPDY)", websocket),
            ("kubectl port-forward (SPDY)", spdy),
        ] {
            match forwarder(label, command, &tools.root)? {
                Ok(f) => forwarders.push(f),
                Err(why) => skipped.push((label, why)),
            }
        }
    } else {
        println!("  kubectl not installed: `kubectl port-forward` not timed");
    }
    let mut peapod = tools.peapod();
    peapod.args(["port-forward", &format!("pod/{POD}"), &remote]);
    let label = "peapod port-forward";
    match forwarder(label, peapod, &tools.root)? {
        Ok(f) => forwarders.push(f),
        Err(why) => skipped.push((label, why)),
    }

    let direct = std::iter::once(("direct to the pod IP", server, None));
    let forwarded = forwarders
        .iter()
        .map(|f| (f.label, f.local, Some(f.child.id())));
    let mut transfers: Vec<Transfer> = direct
        .chain(forwarded)
        .map(|(label, address, forwarder)| Transfer {
            label,
            address,
            forwarder,
            rates: Vec::new(),
            seconds: 0.0,
            agent_cpu_ms: 0.0,
            forwarder_cpu_ms: 0.0,
            pod_cpu_ms: 0.0,
            reader_cpu_ms: 0.0,
            steal: 0.0,
            busy: 0.0,
        })
        .collect();
    let container = container_cpu(&tools.root);
    let pod_cpu_ms = || container.as_deref().map_or(0.0, cgroup_cpu_ms);
    for _ in 0..TRANSFER_RUNS {
        for transfer in transfers.iter_mut() {
            let agent_before = agent.cpu_ms();
            let pod_before = pod_cpu_ms();
            let forwarder_before = transfer.forwarder.map_or(0.0, tree_cpu_ms);
            let reader_before = own_cpu_ms();
            let host = HostCpu::start();
            let started = Instant::now();
            let bytes = download(transfer.address)
                .with_context(|| format!("downloading through {}", transfer.label))?;
            let seconds = started.elapsed().as_secs_f64();
            let (steal, busy) = host.percent();
            transfer.steal += steal;
            transfer.busy += busy;
            transfer.rates.push(bytes as f64 / MIB / seconds);
            transfer.seconds += seconds;
            transfer.agent_cpu_ms += agent.cpu_ms() - agent_before;
            transfer.forwarder_cpu_ms +=
                transfer.forwarder.map_or(0.0, tree_cpu_ms) - forwarder_before;
            transfer.reader_cpu_ms += own_cpu_ms() - reader_before;
            transfer.pod_cpu_ms += pod_cpu_ms() - pod_before;
        }
    }
    println!(
        "peapod: port-forward, GET of {FILE_MIB} MiB from the pod's httpd, {TRANSFER_RUNS} runs each, alternated"
    );
    for transfer in transfers.iter_mut() {
        let runs = transfer.rates.len() as f64;
        let median = percentile(&mut transfer.rates, 50.0);
        let (min, max) = (transfer.rates[0], transfer.rates[transfer.rates.len() - 1]);
        // CPU per GiB moved, and in ms per second of transfer: percent of one core.
        let gib = FILE_MIB as f64 * runs / 1024.0;
        let costs = |unit: &str, scale: f64| {
            let mut parts = vec![format!("agent {:.0}{unit}", transfer.agent_cpu_ms / scale)];
            if transfer.forwarder.is_some() {
                parts.push(format!(
                    "forwarder {:.0}{unit}",
                    transfer.forwarder_cpu_ms / scale
                ));
            }
            if container.is_some() {
                parts.push(format!("pod {:.0}{unit}", transfer.pod_cpu_ms / scale));
            }
            parts.push(format!(
                "reader {:.0}{unit}",
                transfer.reader_cpu_ms / scale
            ));
            parts.join(", ")
        };
        println!(
            "  {}: median {median:.0} MiB/s, min {min:.0}, max {max:.0}",
            transfer.label
        );
        println!("    CPU per GiB: {}", costs(" ms", gib));
        println!(
            "    CPU while transferring: {}",
            costs(" % of a core", transfer.seconds * 10.0)
        );
        println!(
            "    host, of all {} CPUs: busy {:.0} %, stolen {:.0} %",
            cpus(),
            transfer.busy / runs,
            transfer.steal / runs
        );
    }
    for (label, why) in skipped {
        println!("  {label}: not measured: {why}");
    }
    for transfer in transfers.iter_mut() {
        if transfer.forwarder.is_some() && transfer.label.starts_with("kubectl") {
            let median = percentile(&mut transfer.rates, 50.0);
            println!(
                "  target (issue 13) port-forward at least 500 MiB/s, {}: {} (median {median:.0} MiB/s)",
                transfer.label,
                if median >= 500.0 { "met" } else { "not met" }
            );
        }
    }
    Ok(())
}

/// Starts a port-forwarding client and waits for its `Forwarding from 127.0.0.1:PORT`; its
/// stderr when it does not get there.
fn forwarder(
    label: &'static str,
    mut command: Command,
    dir: &Path,
) -> Result<std::result::Result<Forwarder, String>> {
    let name: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let log = dir.join(format!("{name}.log"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let stdout = child.stdout.take().context("the forwarder's stdout")?;
    let (sender, receiver) = mpsc::channel();
    // Reads the port, then drains ("Handling connection for ...") until the client exits.
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                let port = rest.split_whitespace().next().unwrap_or("").parse::<u16>();
                let _ = sender.send(port.ok());
            }
        }
    });
    match receiver.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(port)) => Ok(Ok(Forwarder {
            label,
            child,
            local: SocketAddr::from(([127, 0, 0, 1], port)),
        })),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            let why = std::fs::read_to_string(&log).unwrap_or_default();
            let why = why
                .lines()
                .next()
                .unwrap_or("no listener announced")
                .to_string();
            Ok(Err(why))
        }
    }
}

/// `GET /big` from `address`, read into a sink; the body's length.
fn download(address: SocketAddr) -> Result<u64> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.write_all(b"GET /big HTTP/1.0\r\nHost: bench\r\n\r\n")?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    let (length, mut body) = loop {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            bail!("the connection closed before the response's headers");
        }
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&head[..end]).to_string();
            if !headers.starts_with("HTTP/1.") || headers.split_whitespace().nth(1) != Some("200") {
                bail!(
                    "the server answered {}",
                    headers.lines().next().unwrap_or("")
                );
            }
            let length = headers
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<u64>().ok())?
                })
                .context("the response has no Content-Length")?;
            break (length, (head.len() - end - 4) as u64);
        }
        if head.len() > 64 * 1024 {
            bail!("the response's headers do not end");
        }
    };
    while body < length {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            bail!("the connection closed after {body} of {length} bytes");
        }
        body += n as u64;
    }
    Ok(body)
}

/// The CPU time (user and system) of `pid` and its descendants, in milliseconds: a forwarding
/// client may run its work in a child process.
fn tree_cpu_ms(pid: u32) -> f64 {
    let mut all = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Some((parent, ticks)) = stat_ticks(p) {
                all.push((p, parent, ticks));
            }
        }
    }
    let mut tree = vec![pid];
    let mut ticks = 0;
    while let Some(p) = tree.pop() {
        for &(child, parent, t) in &all {
            if child == p {
                ticks += t;
            }
            if parent == p {
                tree.push(child);
            }
        }
    }
    ticks as f64 * 1000.0 / clock_ticks()
}

/// The CPU accounting file of the cgroup of the pod's httpd, a descendant of this run's shim:
/// it counts the children httpd forks per connection, gone when a transfer ends.
fn container_cpu(root: &Path) -> Option<PathBuf> {
    let shims = shim_pids(root);
    let entries = std::fs::read_dir("/proc").ok()?;
    let httpd = entries.flatten().find_map(|entry| {
        let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        let mut ancestor = pid;
        while comm.trim() == "httpd" && ancestor > 1 {
            ancestor = stat_ticks(ancestor)?.0;
            if shims.contains(&ancestor) {
                return Some(pid);
            }
        }
        None
    })?;
    let cgroups = std::fs::read_to_string(format!("/proc/{httpd}/cgroup")).ok()?;
    let v1 = cgroups.lines().find_map(|l| {
        let (controllers, path) = l.split_once(':')?.1.split_once(':')?;
        controllers.split(',').any(|c| c == "cpuacct").then(|| {
            [
                format!("/sys/fs/cgroup/cpuacct{path}/cpuacct.usage"),
                format!("/sys/fs/cgroup/cpu,cpuacct{path}/cpuacct.usage"),
            ]
        })
    });
    let v2 = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|path| format!("/sys/fs/cgroup{path}/cpu.stat"));
    v1.into_iter()
        .flatten()
        .chain(v2)
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A cgroup's CPU time so far, in milliseconds: `cpuacct.usage` (v1, ns) or `cpu.stat`'s
/// `usage_usec` (v2).
fn cgroup_cpu_ms(file: &Path) -> f64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    match text.lines().find_map(|l| l.strip_prefix("usage_usec ")) {
        Some(us) => us.trim().parse::<f64>().unwrap_or(0.0) / 1000.0,
        None => text.trim().parse::<f64>().unwrap_or(0.0) / 1e6,
    }
}

/// The parent and utime+stime (in clock ticks) of a process.
fn stat_ticks(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((parent, ticks))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// This process's CPU time (user and system), in milliseconds.
fn own_cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// The host's CPU over a window: the share stolen by the hypervisor (`st` in top and vmstat)
/// and the share busy (neither idle nor waiting for I/O), in percent of all its CPUs.
struct HostCpu {
    at_start: [u64; 3],
}

impl HostCpu {
    fn start() -> HostCpu {
        HostCpu {
            at_start: Self::now(),
        }
    }

    /// Steal, idle + iowait, and total jiffies of all CPUs, from /proc/stat.
    fn now() -> [u64; 3] {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|f| f.parse().ok())
            .collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or(0);
        [field(7), field(3) + field(4), fields.iter().sum()]
    }

    /// (stolen, busy) since the start, in percent.
    fn percent(&self) -> (f64, f64) {
        let [steal, idle, total] = Self::now();
        let total = total.saturating_sub(self.at_start[2]).max(1) as f64;
        let steal = steal.saturating_sub(self.at_start[0]) as f64;
        let idle = idle.saturating_sub(self.at_start[1]) as f64;
        (
            steal * 100.0 / total,
            (total - idle - steal) * 100.0 / total,
        )
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
