//! `kubectl port-forward` against an agent, over the transports kubectl speaks: SPDY/3.1
//! tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`, kubectl 1.32's default), plain SPDY
//! (`KUBECTL_PORT_FORWARD_WEBSOCKETS=false`, and Debian's kubectl 1.20). The pod's servers
//! listen on its loopback only (httpd on 127.0.0.1:8080): kubelet connects inside the pod's
//! network namespace, so they must be reachable all the same. Judged by the bytes that come
//! through the local ports, what kubectl prints, and what the agent holds afterwards.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::common::kubectl::{start_for, Client, Kubectl, Running};
use crate::common::websocket::{Next, WebSocket};
use crate::common::*;
use crate::per_client;
use sha2::{Digest, Sha256};

const BIG: usize = 100 << 20;

/// A pod serving /www with busybox httpd on 127.0.0.1:8080 only and an echo server (nc -e
/// cat) on 9090; with `big`, /www/big is 100 MiB of noise and /www/big.sha256 its hash. Ready
/// once all of it is there.
fn web(name: &str, big: bool) -> String {
    let big = if big {
        format!("head -c {BIG} /dev/urandom > /www/big && sha256sum /www/big > /www/big.sha256 && ")
    } else {
        String::new()
    };
    let script = format!(
        "mkdir -p /www && echo index-ok > /www/index.html && {big}(httpd -f -p 127.0.0.1:8080 -h /www &) && (nc -ll -p 9090 -e cat </dev/null >/dev/null 2>&1 &) && touch /ready && exec sleep 3600"
    );
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, '{script}']
    readinessProbe:
      exec:
        command: [sh, -c, 'test -e /ready && wget -q -O /dev/null http://127.0.0.1:8080/index.html']
      periodSeconds: 1
"
    )
}

fn wait_ready(agent: &Agent, name: &str) -> String {
    let pod = agent.wait_pod(name, "Ready", Duration::from_secs(90), |p| {
        condition(p, "Ready")["status"] == "True"
    });
    pod["metadata"]["uid"].as_str().unwrap().to_string()
}

/// A running `kubectl port-forward` and the local port of each remote port asked for.
struct Forward {
    running: Running,
    local: Vec<(u16, u16)>,
}

impl Forward {
    /// `kubectl port-forward pod/POD :R1 :R2...`, once it has printed
    /// `Forwarding from 127.0.0.1:L -> R` for every R.
    fn start(kubectl: &Kubectl, pod: &str, remotes: &[u16]) -> Forward {
        let target = format!("pod/{pod}");
        let specs: Vec<String> = remotes.iter().map(|r| format!(":{r}")).collect();
        let mut args = vec!["port-forward", target.as_str()];
        args.extend(specs.iter().map(String::as_str));
        let running = kubectl.start(&args);
        let out = running.wait_for("its forwarding lines", |out| {
            remotes.iter().all(|r| out.contains(&format!(" -> {r}\n")))
        });
        let mut local = Vec::new();
        for line in out.lines() {
            let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") else {
                continue;
            };
            let (l, r) = rest.split_once(" -> ").expect("L -> R");
            local.push((r.parse().unwrap(), l.parse().unwrap()));
        }
        Forward { running, local }
    }

    fn port(&self, remote: u16) -> u16 {
        self.local
            .iter()
            .find(|(r, _)| *r == remote)
            .map(|(_, l)| *l)
            .unwrap_or_else(|| panic!("no local port for {remote}: {:?}", self.local))
    }

    fn context(&self) -> String {
        format!(
            "kubectl's stdout:\n{}\nstderr:\n{}",
            self.running.stdout(),
            self.running.stderr()
        )
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    Ok(stream)
}

/// GET `path` over HTTP/1.0 through local `port`; the status code and the body, fed to `sink`.
fn http_get(port: u16, path: &str, sink: &mut dyn FnMut(&[u8])) -> Result<u16, String> {
    let mut stream = connect(port).map_err(|e| format!("connect: {e}"))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let status = loop {
        let n = stream.read(&mut buffer).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("no full answer: {:?}", text(&head)));
        }
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let status = text(&head[..end])
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            sink(&head[end + 4..]);
            break status;
        }
    };
    let mut body = head.len() - head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() - 4;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(status),
            Ok(n) => {
                body += n;
                sink(&buffer[..n])
            }
            Err(e) => {
                return Err(format!(
                    "{status} answer, then no end of the connection after {body} bytes of body: {e} (head: {:?})",
                    text(&head[..head.len().min(300)])
                ))
            }
        }
    }
}

fn http_body(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut body = Vec::new();
    let status = http_get(port, path, &mut |chunk| body.extend_from_slice(chunk))?;
    Ok((status, text(&body)))
}

/// CPU seconds (user + system) process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command: state is field 3, utime 14 and stime 15 (1-based, as in proc(5)).
    (ticks(11) + ticks(12)) / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
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

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Lines through the echo server, one at a time, each read back before the next.
fn echo_lines(port: u16, tag: &str) -> Result<(), String> {
    let mut stream = connect(port).map_err(|e| format!("connect: {e}"))?;
    for i in 0..5 {
        let line = format!("{tag}-{i}\n");
        stream
            .write_all(line.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut back = vec![0u8; line.len()];
        stream
            .read_exact(&mut back)
            .map_err(|e| format!("read: {e}"))?;
        if back != line.as_bytes() {
            return Err(format!("sent {line:?}, got {:?}", text(&back)));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

per_client!(many_connections_and_ports: port_forward_many_connections_and_ports_through_the_tunnel, port_forward_many_connections_and_ports_over_spdy, port_forward_many_connections_and_ports_with_kubectl_1_20);

/// One session forwarding 8080 (httpd on the pod's loopback) and 9090 (echo): 50 concurrent
/// GETs, echo sessions on the second port meanwhile; then a second session is refused
/// nothing, and killing kubectl leaves the agent holding nothing.
fn many_connections_and_ports(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&web("web", false));
    let uid = wait_ready(&agent, "web");
    let agent_fds = open_fds(agent.agent_pid());

    let forward = Forward::start(&kubectl, "web", &[8080, 9090]);
    let (http, echo) = (forward.port(8080), forward.port(9090));
    let (status, body) = http_body(http, "/index.html")
        .unwrap_or_else(|e| panic!("GET /index.html: {e}\n{}", forward.context()));
    assert_eq!(
        (status, body.as_str()),
        (200, "index-ok\n"),
        "{}",
        forward.context()
    );

    let barrier = std::sync::Arc::new(std::sync::Barrier::new(55));
    let mut workers = Vec::new();
    for i in 0..50 {
        let barrier = barrier.clone();
        workers.push(std::thread::spawn(move || {
            barrier.wait();
            http_body(http, "/index.html").map_err(|e| format!("GET {i}: {e}"))
        }));
    }
    let mut echoes = Vec::new();
    for i in 0..5 {
        let barrier = barrier.clone();
        echoes.push(std::thread::spawn(move || {
            barrier.wait();
            echo_lines(echo, &format!("echo{i}")).map_err(|e| format!("echo {i}: {e}"))
        }));
    }
    let started = Instant::now();
    let mut failures = Vec::new();
    for worker in workers {
        match worker.join().unwrap() {
            Ok((200, body)) if body == "index-ok\n" => {}
            other => failures.push(format!("{other:?}")),
        }
    }
    for echo in echoes {
        if let Err(e) = echo.join().unwrap() {
            failures.push(e);
        }
    }
    eprintln!("50 GETs and 5 echo sessions: {:?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} of 55 connections failed: {failures:#?}\n{}",
        failures.len(),
        forward.context()
    );
    let mut running = forward.running;
    assert!(
        running.exited().is_none(),
        "kubectl port-forward ended: {}",
        running.stderr()
    );
    assert!(
        !running.stderr().contains("error"),
        "kubectl complained: {}",
        running.stderr()
    );
    running.stop();

    // A killed client: the agent lets go of its session and the pod's connections.
    let fds = poll(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || open_fds(agent.agent_pid()),
        |n| *n <= agent_fds,
    );
    assert!(
        fds <= agent_fds,
        "the agent holds {fds} descriptors after port-forward was killed, {agent_fds} before"
    );
    let forward = Forward::start(&kubectl, "web", &[8080]);
    let (status, body) = http_body(forward.port(8080), "/index.html")
        .unwrap_or_else(|e| panic!("GET after a new start: {e}\n{}", forward.context()));
    assert_eq!((status, body.as_str()), (200, "index-ok\n"));
    forward.running.stop();

    agent.delete_and_check("web", "1");
    agent.leak_check(&uid);
}

per_client!(hundred_mib: port_forward_100_mib_through_the_tunnel, port_forward_100_mib_over_spdy, port_forward_100_mib_with_kubectl_1_20);

/// 100 MiB of noise from httpd, hashed as it arrives, against the hash the pod computed; a
/// reader pausing on the way holds up the transfer without the agent buffering it.
fn hundred_mib(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&web("big", true));
    let uid = wait_ready(&agent, "big");
    let forward = Forward::start(&kubectl, "big", &[8080]);
    let port = forward.port(8080);
    let (status, expected) = http_body(port, "/big.sha256")
        .unwrap_or_else(|e| panic!("GET /big.sha256: {e}\n{}", forward.context()));
    assert_eq!(status, 200, "{expected}");
    let expected = expected.split_whitespace().next().unwrap().to_string();

    // Kept whole and hashed afterwards: hashing as it comes (unoptimised test build) would
    // measure the test, not the forwarding.
    let mut body: Vec<u8> = Vec::with_capacity(BIG);
    let (agent_pid, kubectl_pid) = (agent.agent_pid(), forward.running.pid());
    let cpu = (cpu_seconds(agent_pid), cpu_seconds(kubectl_pid));
    // After the first MiB the reader pauses 4 s: what piles up meanwhile is bounded by the
    // buffers and windows on the way, not by the file.
    let rss_before = rss_kib(agent_pid);
    let mut rss_paused = None;
    let pause = Duration::from_secs(4);
    let started = Instant::now();
    let status = http_get(port, "/big", &mut |chunk| {
        body.extend_from_slice(chunk);
        if rss_paused.is_none() && body.len() >= 1 << 20 {
            std::thread::sleep(pause);
            rss_paused = Some(rss_kib(agent_pid));
        }
    })
    .unwrap_or_else(|e| panic!("GET /big: {e}\n{}", forward.context()));
    let elapsed = started.elapsed() - pause;
    eprintln!(
        "100 MiB through kubectl port-forward ({client:?}): {elapsed:?} (without the pause), {:.0} MiB/s; CPU: agent {:.2} s, kubectl {:.2} s",
        BIG as f64 / (1 << 20) as f64 / elapsed.as_secs_f64(),
        cpu_seconds(agent_pid) - cpu.0,
        cpu_seconds(kubectl_pid) - cpu.1,
    );
    let grew = rss_paused.unwrap_or(0).saturating_sub(rss_before);
    eprintln!("the agent grew by {grew} KiB while the reader paused");
    assert!(
        grew < 64 * 1024,
        "the agent grew by {grew} KiB while the reader paused"
    );
    assert_eq!(status, 200);
    assert_eq!(body.len(), BIG, "{}", forward.context());
    assert_eq!(
        hex::encode(Sha256::digest(&body)),
        expected,
        "the bytes changed"
    );
    forward.running.stop();
    agent.delete_and_check("big", "1");
    agent.leak_check(&uid);
}

per_client!(closed_port: port_forward_to_a_closed_port_through_the_tunnel, port_forward_to_a_closed_port_over_spdy, port_forward_to_a_closed_port_with_kubectl_1_20);

/// A port nobody listens on in the pod: the local connection is closed, kubelet's error
/// (containerd's words: `failed to connect to localhost:9999 inside namespace ...`) comes on the
/// error stream and kubectl prints it as `an error occurred forwarding L -> 9999: ...`. Newer
/// client-go then closes the whole session (kubectl exits `lost connection to pod`), older
/// kubectl keeps going; either way the other ports and the agent are unharmed.
fn closed_port(client: Client) {
    let Some((agent, kubectl)) = start_for(client) else {
        return;
    };
    kubectl.apply(&web("web", false));
    let uid = wait_ready(&agent, "web");
    let mut forward = Forward::start(&kubectl, "web", &[8080, 9999]);
    let (http, closed) = (forward.port(8080), forward.port(9999));
    let (status, _) = http_body(http, "/index.html")
        .unwrap_or_else(|e| panic!("GET /index.html: {e}\n{}", forward.context()));
    assert_eq!(status, 200);

    let mut stream = connect(closed).expect("kubectl accepts the local connection");
    let mut got = Vec::new();
    let read = stream.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "bytes from a closed port: {read:?} {got:?}\n{}",
        forward.context()
    );
    let _ = stream.shutdown(Shutdown::Both);
    let prefix = format!("an error occurred forwarding {closed} -> 9999: ");
    let stderr = forward
        .running
        .wait_for_stderr("kubelet's error", |err| err.contains(&prefix));
    eprintln!("kubectl printed:\n{stderr}");
    let message = stderr[stderr.find(&prefix).unwrap() + prefix.len()..]
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("error forwarding port 9999 to pod ")
            && message.contains("failed to connect to localhost:9999 inside namespace")
            && message.contains("dial tcp4 127.0.0.1:9999: connect: connection refused"),
        "not kubelet's (containerd's) words: {message}"
    );

    std::thread::sleep(Duration::from_millis(500));
    match forward.running.exited() {
        None => {
            let (status, _) = http_body(http, "/index.html").unwrap_or_else(|e| {
                panic!(
                    "the session lost 8080 after 9999 failed: {e}\n{}",
                    forward.context()
                )
            });
            assert_eq!(status, 200);
            eprintln!("kubectl kept forwarding after the error");
        }
        Some(status) => eprintln!(
            "kubectl ended after the error ({status}): {}",
            forward.running.stderr()
        ),
    }
    forward.running.stop();
    let forward = Forward::start(&kubectl, "web", &[8080]);
    let (status, body) = http_body(forward.port(8080), "/index.html")
        .unwrap_or_else(|e| panic!("GET in a new session: {e}\n{}", forward.context()));
    assert_eq!((status, body.as_str()), (200, "index-ok\n"));
    forward.running.stop();
    agent.delete_and_check("web", "1");
    agent.leak_check(&uid);
}

// ---------------------------------------------------------------------------------------------
// kubelet's WebSocket port-forward protocol, which kubectl does not speak (raw client)

/// The messages of a `v4.channel.k8s.io` port-forward session, by channel (data 2i, error
/// 2i+1 for the i-th port), the first of each channel kept apart (kubelet sends the port
/// there, little-endian).
#[derive(Default, Debug)]
struct Channels {
    first: std::collections::BTreeMap<u8, Vec<u8>>,
    data: std::collections::BTreeMap<u8, Vec<u8>>,
}

impl Channels {
    /// Reads messages until `done` holds or the connection ends; whether it ended.
    fn read_until(&mut self, socket: &mut WebSocket, done: impl Fn(&Channels) -> bool) -> bool {
        while !done(self) {
            match socket.next() {
                Next::Message(2, payload) if !payload.is_empty() => {
                    let channel = payload[0];
                    if let std::collections::btree_map::Entry::Vacant(e) = self.first.entry(channel)
                    {
                        e.insert(payload[1..].to_vec());
                    } else {
                        self.data
                            .entry(channel)
                            .or_default()
                            .extend_from_slice(&payload[1..]);
                    }
                }
                Next::Message(8, _) | Next::Closed => return true,
                Next::Message(..) => {}
                Next::TimedOut => panic!("nothing more from the session; so far: {self:?}"),
            }
        }
        false
    }

    fn text(&self, channel: u8) -> String {
        text(
            self.data
                .get(&channel)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
    }
}

/// `ports=8080&ports=9090` over `v4.channel.k8s.io`, as kubelet serves it: each channel opens
/// with its port, data goes both ways on the data channels (httpd on the pod's loopback, the
/// echo server); when the one connection of a session ends in the pod, the session ends (kubelet
/// closes the streams, containerd giving the other direction 1 s); a closed port's error comes
/// on its error channel.
#[test]
fn websocket_port_forward_reaches_the_pods_loopback() {
    let agent = Agent::start();
    agent.apply(&web("web", false));
    let uid = wait_ready(&agent, "web");
    let base = "/api/v1/namespaces/default/pods/web/portforward";

    let mut socket = WebSocket::connect(
        &agent.socket(),
        &format!("{base}?ports=8080&ports=9090"),
        "v4.channel.k8s.io",
    );
    let mut channels = Channels::default();
    channels.read_until(&mut socket, |c| c.first.len() == 4);
    let (http, echo) = (
        8080u16.to_le_bytes().to_vec(),
        9090u16.to_le_bytes().to_vec(),
    );
    let expected: std::collections::BTreeMap<u8, Vec<u8>> =
        [(0, http.clone()), (1, http), (2, echo.clone()), (3, echo)].into();
    assert_eq!(channels.first, expected, "not the ports, little-endian");
    socket.send(b"\x02ping-over-9090\n");
    channels.read_until(&mut socket, |c| c.text(2).contains('\n'));
    assert_eq!(channels.text(2), "ping-over-9090\n");
    socket.send(b"\x00GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n");
    channels.read_until(&mut socket, |c| c.text(0).ends_with("index-ok\n"));
    assert!(
        channels.text(0).starts_with("HTTP/1.1 200 OK\r\n"),
        "{channels:?}"
    );
    assert!(!channels.data.contains_key(&1), "errors: {channels:?}");
    drop(socket);

    // One port: httpd closing its connection ends the session.
    let mut socket = WebSocket::connect(
        &agent.socket(),
        &format!("{base}?ports=8080"),
        "v4.channel.k8s.io",
    );
    let mut channels = Channels::default();
    channels.read_until(&mut socket, |c| c.first.len() == 2);
    socket.send(b"\x00GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n");
    channels.read_until(&mut socket, |c| c.text(0).ends_with("index-ok\n"));
    let answered = Instant::now();
    socket.set_timeout(Duration::from_secs(5));
    let ended = match socket.next() {
        Next::Message(8, _) | Next::Closed => true,
        Next::TimedOut => false,
        other => panic!("after the answer: {other:?}"),
    };
    let lingered = (!ended).then_some(
        "the session outlived the pod's end of its only connection by 5 s (kube: within 1 s)",
    );
    eprintln!(
        "the session ended: {ended} {:?} after the answer",
        answered.elapsed()
    );
    drop(socket);

    // A closed port: kubelet's error on the error channel, then the end.
    let mut socket = WebSocket::connect(
        &agent.socket(),
        &format!("{base}?ports=9999"),
        "v4.channel.k8s.io",
    );
    let mut channels = Channels::default();
    let ended = channels.read_until(&mut socket, |c| c.text(1).contains("refused"));
    let error = channels.text(1);
    eprintln!("the error channel said: {error}");
    assert!(
        error.starts_with("error forwarding port 9999 to pod ")
            && error.contains("failed to connect to localhost:9999 inside namespace"),
        "{channels:?}"
    );
    assert!(!ended || channels.first.len() == 2, "{channels:?}");

    let (code, out, _) = agent.exec("web", "c", &["echo", "alive"]);
    assert_eq!((code, out.as_str()), (0, "alive\n"));
    agent.delete_and_check("web", "1");
    agent.leak_check(&uid);
    assert!(lingered.is_none(), "{}", lingered.unwrap_or_default());
}
