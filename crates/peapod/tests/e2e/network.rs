//! The pod network (issue 3) end to end: pod addresses reachable from the host and from other
//! pods, hostPorts (TCP, UDP, hostIP-specific, hairpin), the scheduler's hostPort conflicts,
//! hostNetwork, agents side by side, many pods at once, agent restarts and bad configuration.
//! Traffic only ever goes to loopback, this machine's own addresses or the pods' addresses.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const IO_TIMEOUT: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(15);

// Host ports of this file's tests: unusual, and distinct per test (tests run in parallel and
// the DNAT rules of every agent on the host see the same ports).
const S3_PORT: u16 = 28001;
const UDP_PORT: u16 = 28002;
const LOCAL_ONLY_PORT: u16 = 28003;
const CONFLICT_PORT: u16 = 28011;
const HOST_NETWORK_PORT: u16 = 28021;
const RESTART_PORT: u16 = 28031;
const SHIM_KILL_PORT: u16 = 28041;

// --- helpers -------------------------------------------------------------------------------

/// HTTP/1.0 GET of `path` from `addr` (ip:port): the response body.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: peapod\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return Err(std::io::Error::other(format!(
            "not an HTTP response: {response:?}"
        )));
    };
    if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
        return Err(std::io::Error::other(format!("HTTP error: {head:?}")));
    }
    Ok(body.to_string())
}

/// Connects to `addr` and reads until the server closes (for `nc -ll -e echo ...` servers).
fn tcp_read(addr: &str) -> std::io::Result<String> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

/// Polls `http_get` until the body satisfies `check`; panics with the last result otherwise.
fn wait_http(addr: &str, path: &str, check: impl Fn(&str) -> bool) -> String {
    let ok = |r: &std::io::Result<String>| r.as_ref().is_ok_and(|b| check(b));
    let last = poll(
        WAIT,
        Duration::from_millis(200),
        || http_get(addr, path),
        ok,
    );
    match last {
        Ok(body) if check(&body) => body,
        other => panic!("GET http://{addr}{path}: never as expected; last: {other:?}"),
    }
}

/// Polls `tcp_read` until it returns `expected`.
fn wait_tcp_read(addr: &str, expected: &str) {
    let last = poll(
        WAIT,
        Duration::from_millis(200),
        || tcp_read(addr),
        |r| r.as_ref().is_ok_and(|s| s == expected),
    );
    assert!(
        last.as_ref().is_ok_and(|s| s == expected),
        "{addr} should answer {expected:?}; last: {last:?}"
    );
}

/// Connecting to `addr` is refused (nothing listens there).
fn assert_refused(addr: &str) {
    let addr: SocketAddr = addr.parse().unwrap();
    match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => panic!("{addr} should refuse the connection: {other:?}"),
    }
}

/// A pod with one busybox container `main` running `script` in sh; `ports` is the YAML of
/// the container's port list (or empty).
fn pod_yaml(name: &str, script: &str, ports: &str) -> String {
    let script = serde_json::to_string(script).unwrap();
    let ports = if ports.is_empty() {
        String::new()
    } else {
        format!("    ports:\n{ports}")
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    \
         command: [\"sh\", \"-c\", {script}]\n{ports}"
    )
}

/// A pod that serves `content` as /index.html with httpd on `port`.
fn web_pod(name: &str, content: &str, port: u16, ports: &str) -> String {
    pod_yaml(
        name,
        &format!(
            "mkdir -p /www && echo {content} > /www/index.html && exec httpd -f -p {port} -h /www"
        ),
        ports,
    )
}

/// One TCP port entry of a container's port list.
fn port_entry(container_port: u16, host_port: u16) -> String {
    format!("    - containerPort: {container_port}\n      hostPort: {host_port}\n")
}

/// The busybox pod `name` other pods' traffic comes from.
fn client_pod(agent: &Agent, name: &str) {
    agent.apply(&pod_yaml(name, "exec sleep 3600", ""));
    agent.wait_running(name);
}

/// From pod `client`: an HTTP GET of http://ADDR:PORT/PATH with busybox nc (busybox wget
/// crashes on IP literals); retries until it answers with `expected` in the response.
fn wait_nc_get(agent: &Agent, client: &str, ip: &str, port: u16, path: &str, expected: &str) {
    let script = format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port}");
    let last = poll(
        WAIT,
        Duration::from_millis(300),
        || agent.exec(client, "main", &["sh", "-c", &script]),
        |(code, out, _)| *code == 0 && out.contains(expected),
    );
    assert!(
        last.0 == 0 && last.1.contains(expected),
        "from pod {client}, {ip}:{port}{path} should answer {expected:?}; last: {last:?}"
    );
}

fn pod_ip(pod: &Value) -> String {
    pod["status"]["podIP"]
        .as_str()
        .unwrap_or_else(|| panic!("no podIP: {pod:#}"))
        .to_string()
}

fn host_ip_of(pod: &Value) -> String {
    pod["status"]["hostIP"]
        .as_str()
        .unwrap_or_else(|| panic!("no hostIP: {pod:#}"))
        .to_string()
}

/// (network, prefix) of "a.b.c.d/n".
fn parse_cidr(cidr: &str) -> (u32, u32) {
    let (net, prefix) = cidr.split_once('/').unwrap();
    (
        u32::from(net.parse::<Ipv4Addr>().unwrap()),
        prefix.parse().unwrap(),
    )
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, prefix) = parse_cidr(cidr);
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    let ip = u32::from(ip.parse::<Ipv4Addr>().unwrap());
    ip & mask == net & mask
}

/// The bridge's address: the first of the range.
fn gateway(cidr: &str) -> String {
    Ipv4Addr::from(parse_cidr(cidr).0 + 1).to_string()
}

/// The names of the links enslaved to `bridge`.
fn bridge_ports(bridge: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-j", "link", "show", "master", bridge])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip link show master {bridge}: {out:?}"
    );
    let links: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(vec![]));
    links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .collect()
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// Whether the nftables table an agent on `bridge` would own exists.
fn nft_table_exists(bridge: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", &format!("peapod-{bridge}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The files of the agent's IPAM directory.
fn ipam_entries(agent: &Agent) -> Vec<String> {
    std::fs::read_dir(agent.path().join("var/lib/peapod/network/ipam"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The pod's view of its UDP counters (/proc/net/snmp in its network namespace).
fn udp_counter(agent: &Agent, pod: &str, field: &str) -> u64 {
    let (code, snmp, err) = agent.exec(pod, "main", &["cat", "/proc/net/snmp"]);
    assert_eq!(code, 0, "{err}");
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    assert_eq!(udp.len(), 2, "{snmp}");
    let names = udp[0].split_whitespace();
    let values = udp[1].split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == field)
        .unwrap_or_else(|| panic!("no Udp {field} in {snmp}"))
        .1
        .parse()
        .unwrap()
}

/// Events of the default namespace as `peapod events` prints them.
fn wait_event(agent: &Agent, what: &str, check: impl Fn(&str) -> bool) -> String {
    let last = poll(
        WAIT,
        Duration::from_millis(200),
        || agent.ok(&["events"]),
        |e| check(e),
    );
    assert!(
        check(&last),
        "timed out waiting for event {what}; events:\n{last}\nagent log:\n{}",
        agent.agent_log()
    );
    last
}

/// The pid of the pod's shim (`peapod shim --pod-uid UID ...`).
fn shim_pid(agent: &Agent, uid: &str) -> i32 {
    let root = agent.path().to_string_lossy().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&str> = cmdline.split('\0').collect();
        if args.get(1) == Some(&"shim") && args.contains(&uid) && cmdline.contains(&root) {
            found.push(pid);
        }
    }
    assert_eq!(found.len(), 1, "one shim for pod {uid}: {found:?}");
    found[0]
}

/// The hostname of the machine (the UTS namespace of this test process).
fn node_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// Runs `peapod serve` on a fresh root with the given network and expects it to exit on its
/// own within 10 s: (exit status, stderr).
fn serve_expecting_exit(bridge: &str, cidr: &str) -> (std::process::ExitStatus, String) {
    let root = tempfile::tempdir().unwrap();
    let mut child = Command::new(peapod_bin())
        .args(["serve"])
        .env("PEAPOD_ROOT", root.path())
        .env("PEAPOD_BRIDGE", bridge)
        .env("PEAPOD_POD_CIDR", cidr)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "peapod serve with PEAPOD_BRIDGE={bridge} PEAPOD_POD_CIDR={cidr} kept running; stderr: {}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

/// A bridge name and /24 unique to this process and `tag` (for agents started by hand).
fn own_network(tag: u32) -> (String, String) {
    let pid = std::process::id();
    (
        format!("pn{}y{tag}", pid % 100_000),
        // Outside the ranges of the harness's agents (10.100–10.163).
        format!("10.{}.{}.0/24", 180 + pid % 64, 200 + tag),
    )
}

// --- tests ---------------------------------------------------------------------------------

/// S1 over the pod network: the frontend answers on POD_IP:8080 from the host and from
/// another pod; the pod's addresses and /etc/hosts are as a cluster sets them.
#[test]
fn s1_pod_ip_serves_the_page_to_the_host_and_to_another_pod() {
    let agent = Agent::start();
    let pod = agent.run_example("s1-web-content-sidecar.yaml", "example-pod");
    let ip = pod_ip(&pod);
    assert!(in_cidr(&ip, &agent.cidr), "{ip} in {}", agent.cidr);
    assert_ne!(
        ip,
        gateway(&agent.cidr),
        "the bridge's address is not a pod's"
    );
    assert_eq!(
        pod["status"]["podIPs"],
        serde_json::json!([{ "ip": ip }]),
        "{pod:#}"
    );
    let host_ip = host_ip_of(&pod);
    assert!(host_ip.parse::<Ipv4Addr>().is_ok(), "{host_ip}");
    assert!(!in_cidr(&host_ip, &agent.cidr), "hostIP {host_ip}");

    // `get pod -o wide` shows the address.
    let wide = agent.ok(&["get", "pod", "example-pod", "-o", "wide"]);
    let header = columns(&wide, 0);
    let at = header
        .iter()
        .position(|c| *c == "IP")
        .expect("an IP column");
    assert_eq!(columns(&wide, 1)[at], ip, "{wide}");

    // From the host: the current date, and a second later a newer one.
    let year = jiff::Timestamp::now().to_string()[..4].to_string();
    let addr = format!("{ip}:8080");
    let first = wait_http(&addr, "/index.html", |b| b.contains(&year));
    let second = wait_http(&addr, "/index.html", |b| b.contains(&year) && b != first);
    assert_ne!(first, second);

    // From another pod.
    client_pod(&agent, "client");
    wait_nc_get(&agent, "client", &ip, 8080, "/index.html", &year);

    // /etc/hosts names the pod by its address.
    for c in ["frontend", "backend"] {
        let (code, hosts, _) = agent.exec("example-pod", c, &["cat", "/etc/hosts"]);
        assert_eq!(code, 0);
        assert!(
            hosts.lines().any(|l| l == format!("{ip}\texample-pod")),
            "{c}'s /etc/hosts lacks \"{ip}\\texample-pod\":\n{hosts}"
        );
    }
    // And eth0 inside carries it.
    let (code, addrs, _) = agent.exec(
        "example-pod",
        "frontend",
        &["ip", "-4", "addr", "show", "eth0"],
    );
    assert_eq!(code, 0, "{addrs}");
    assert!(addrs.contains(&format!("inet {ip}/")), "{addrs}");

    agent.delete_and_check("example-pod", "1");
    agent.delete_and_check("client", "0");
}

/// S3's hostPort (renumbered to a port of this test): answers on the node's address and on
/// 127.0.0.1, and from another pod by hairpin; a UDP hostPort reaches the pod; a hostPort
/// bound to hostIP 127.0.0.1 answers there only.
#[test]
fn host_ports_tcp_udp_hairpin_and_host_ip() {
    let agent = Agent::start();
    let manifest = example_text("s3-init-container-app.yaml");
    assert!(manifest.contains("hostPort: 8001\n"), "{manifest}");
    let manifest = manifest.replace("hostPort: 8001\n", &format!("hostPort: {S3_PORT}\n"));
    assert_eq!(agent.apply(&manifest).trim(), "pod/javaweb-2 created");
    let pod = agent.wait_running("javaweb-2");
    let host_ip = host_ip_of(&pod);
    let page = "<h1>sample app v2</h1>\n";

    // From the host, on the node's address and on loopback.
    let body = wait_http(&format!("{host_ip}:{S3_PORT}"), "/", |_| true);
    assert_eq!(body, page);
    let body = wait_http(&format!("127.0.0.1:{S3_PORT}"), "/", |_| true);
    assert_eq!(body, page);
    // Hairpin: another pod to HOST_IP:hostPort.
    client_pod(&agent, "client");
    wait_nc_get(&agent, "client", &host_ip, S3_PORT, "/", "sample app v2");
    // The rule is in the agent's table, naming the pod.
    let uid = agent.uid("javaweb-2");
    let rules = agent.ruleset();
    assert!(
        rules.contains(&format!(
            "tcp dport {S3_PORT} dnat to {}:8080",
            pod_ip(&pod)
        )) && rules.contains(&uid),
        "{rules}"
    );

    // UDP: datagrams to the hostPort arrive in the pod (nothing listens there, so its kernel
    // counts them as NoPorts; busybox nc has no UDP mode).
    let udp = format!(
        "{}    - containerPort: 5353\n      hostPort: {UDP_PORT}\n      protocol: UDP\n",
        ""
    );
    agent.apply(&pod_yaml("udp", "exec sleep 3600", &udp));
    agent.wait_running("udp");
    let before = udp_counter(&agent, "udp", "NoPorts");
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    for target in [
        format!("127.0.0.1:{UDP_PORT}"),
        format!("{host_ip}:{UDP_PORT}"),
    ] {
        for _ in 0..3 {
            socket.send_to(b"ping", &target).unwrap();
        }
    }
    let after = poll(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || udp_counter(&agent, "udp", "NoPorts"),
        |n| *n >= before + 6,
    );
    assert!(
        after >= before + 6,
        "6 datagrams to the UDP hostPort should reach the pod: NoPorts {before} -> {after}"
    );

    // hostIP 127.0.0.1: loopback only.
    let local = format!(
        "    - containerPort: 8080\n      hostPort: {LOCAL_ONLY_PORT}\n      hostIP: 127.0.0.1\n"
    );
    agent.apply(&web_pod("local-only", "local", 8080, &local));
    agent.wait_running("local-only");
    let body = wait_http(
        &format!("127.0.0.1:{LOCAL_ONLY_PORT}"),
        "/index.html",
        |_| true,
    );
    assert_eq!(body, "local\n");
    assert_refused(&format!("{host_ip}:{LOCAL_ONLY_PORT}"));

    agent.delete_and_check("javaweb-2", "1");
    assert_refused(&format!("127.0.0.1:{S3_PORT}"));
    agent.delete_and_check("udp", "0");
    agent.delete_and_check("local-only", "1");
    assert_refused(&format!("127.0.0.1:{LOCAL_ONLY_PORT}"));
    agent.delete_and_check("client", "0");
}

/// S5: the app bound to 127.0.0.1:8080 is refused on POD_IP:8080, from the host and from
/// another pod, while the proxy on POD_IP:80 answers with the app's page.
#[test]
fn s5_loopback_app_is_refused_on_the_pod_ip_but_the_proxy_answers() {
    let agent = Agent::start();
    let pod = agent.run_example("s5-reverse-proxy.yaml", "proxied-app");
    let ip = pod_ip(&pod);
    let body = wait_http(&format!("{ip}:80"), "/index.html", |_| true);
    assert_eq!(body, "hello from the app\n");
    assert_refused(&format!("{ip}:8080"));

    client_pod(&agent, "client");
    wait_nc_get(
        &agent,
        "client",
        &ip,
        80,
        "/index.html",
        "hello from the app",
    );
    let (code, out, err) = agent.exec(
        "client",
        "main",
        &["sh", "-c", &format!("echo | nc -w 3 {ip} 8080")],
    );
    assert_ne!(code, 0, "{ip}:8080 from another pod: {out:?}");
    assert!(err.contains("refused"), "{err}");

    agent.delete_and_check("proxied-app", "1");
    agent.delete_and_check("client", "0");
}

/// The second pod asking for a taken hostPort stays Pending and unbound with kube-scheduler's
/// condition and event; once the first is deleted it is bound, runs and answers on the port.
#[test]
fn host_port_conflict_keeps_the_second_pod_pending_until_the_port_is_free() {
    let agent = Agent::start();
    let port = port_entry(8080, CONFLICT_PORT);
    agent.apply(&web_pod("web", "first", 8080, &port));
    agent.wait_running("web");
    let addr = format!("127.0.0.1:{CONFLICT_PORT}");
    assert_eq!(wait_http(&addr, "/index.html", |_| true), "first\n");

    agent.apply(&web_pod("web2", "second", 8080, &port));
    let pending = agent.wait_pod("web2", "PodScheduled=False", WAIT, |p| {
        condition(p, "PodScheduled")["status"] == "False"
    });
    let scheduled = condition(&pending, "PodScheduled");
    assert_eq!(scheduled["reason"], "Unschedulable", "{pending:#}");
    assert_eq!(pending["status"]["phase"], "Pending", "{pending:#}");
    assert!(
        pending["spec"]["nodeName"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "an unschedulable pod is not bound: {pending:#}"
    );
    let claim = format!("TCP/0.0.0.0:{CONFLICT_PORT} is used by pod default/web");
    assert!(
        scheduled["message"].as_str().unwrap_or("").contains(&claim),
        "{scheduled:#}"
    );
    let events = wait_event(&agent, "FailedScheduling", |e| {
        e.lines().any(|l| {
            l.contains("Warning")
                && l.contains("FailedScheduling")
                && l.contains("pod/web2")
                && l.contains(&claim)
        })
    });
    let describe = agent.ok(&["describe", "pod", "web2"]);
    let section = describe.split("\nEvents:").nth(1).unwrap_or("");
    assert!(
        section.lines().any(|l| l.contains("FailedScheduling")
            && l.contains("default-scheduler")
            && l.contains(&claim)),
        "describe shows FailedScheduling from default-scheduler:\n{describe}\nevents:\n{events}"
    );
    assert_eq!(agent.get_status("web2"), "Pending");
    // It stays so, and the first keeps the port.
    std::thread::sleep(Duration::from_secs(2));
    let still = agent.pod("web2").unwrap();
    assert_eq!(still["status"]["phase"], "Pending", "{still:#}");
    assert!(still["status"]["podIP"].is_null(), "{still:#}");
    assert_eq!(http_get(&addr, "/index.html").unwrap(), "first\n");

    agent.delete_and_check("web", "1");
    let running = agent.wait_running("web2");
    assert!(
        !running["spec"]["nodeName"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{running:#}"
    );
    assert_eq!(condition(&running, "PodScheduled")["status"], "True");
    assert_eq!(
        wait_http(&addr, "/index.html", |b| b == "second\n"),
        "second\n"
    );

    agent.delete_and_check("web2", "1");
}

/// hostNetwork: the node's address and hostname, its ports are the node's, and no veth.
#[test]
fn host_network_pod_uses_the_nodes_network_and_name() {
    let agent = Agent::start();
    let mut manifest = web_pod("hostnet", "on-the-host", HOST_NETWORK_PORT, "");
    manifest = manifest.replace("spec:\n", "spec:\n  hostNetwork: true\n");
    agent.apply(&manifest);
    let pod = agent.wait_running("hostnet");
    let uid = agent.uid("hostnet");
    assert_eq!(pod_ip(&pod), host_ip_of(&pod), "{pod:#}");
    assert!(!in_cidr(&pod_ip(&pod), &agent.cidr));

    let (code, name, _) = agent.exec("hostnet", "main", &["hostname"]);
    assert_eq!((code, name.trim()), (0, node_hostname().as_str()));
    let addr = format!("127.0.0.1:{HOST_NETWORK_PORT}");
    assert_eq!(wait_http(&addr, "/index.html", |_| true), "on-the-host\n");
    let addr = format!("{}:{HOST_NETWORK_PORT}", host_ip_of(&pod));
    assert_eq!(wait_http(&addr, "/index.html", |_| true), "on-the-host\n");

    assert!(!link_exists(&peapod_net::host_veth_name(&uid)));
    assert_eq!(bridge_ports(&agent.bridge), Vec::<String>::new());
    assert!(
        ipam_entries(&agent).is_empty(),
        "{:?}",
        ipam_entries(&agent)
    );
    // The pod sees the host's interfaces.
    let ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let (_, inside, _) = agent.exec("hostnet", "main", &["readlink", "/proc/self/ns/net"]);
    assert_eq!(inside.trim(), ns.to_string_lossy());

    agent.delete_and_check("hostnet", "1");
    assert_refused(&format!("127.0.0.1:{HOST_NETWORK_PORT}"));
}

/// Two agents on their own bridges and ranges: each pod in its agent's range, both reachable;
/// deleting one agent's pod leaves the other's reachable.
#[test]
fn two_agents_side_by_side() {
    let first = Agent::start();
    let second = Agent::start();
    assert_ne!(first.bridge, second.bridge);
    assert_ne!(first.cidr, second.cidr);
    first.apply(&web_pod("web", "first", 8080, ""));
    second.apply(&web_pod("web", "second", 8080, ""));
    let ip1 = pod_ip(&first.wait_running("web"));
    let ip2 = pod_ip(&second.wait_running("web"));
    assert!(in_cidr(&ip1, &first.cidr), "{ip1} in {}", first.cidr);
    assert!(in_cidr(&ip2, &second.cidr), "{ip2} in {}", second.cidr);
    let uid1 = first.uid("web");
    assert_eq!(
        bridge_ports(&first.bridge),
        [peapod_net::host_veth_name(&uid1)]
    );
    assert_eq!(
        bridge_ports(&second.bridge),
        [peapod_net::host_veth_name(&second.uid("web"))]
    );
    assert_eq!(
        wait_http(&format!("{ip1}:8080"), "/index.html", |_| true),
        "first\n"
    );
    assert_eq!(
        wait_http(&format!("{ip2}:8080"), "/index.html", |_| true),
        "second\n"
    );

    first.delete_and_check("web", "1");
    assert!(
        second.ruleset().contains("masquerade"),
        "{}",
        second.ruleset()
    );
    assert_eq!(
        http_get(&format!("{ip2}:8080"), "/index.html").unwrap(),
        "second\n"
    );
    second.delete_and_check("web", "1");
}

/// 100 pods at once: all run, each with its own address, each reachable from the host; then
/// all are deleted and nothing of the network is left.
#[test]
fn a_hundred_pods_at_once_get_distinct_reachable_addresses() {
    let agent = Agent::start();
    let count = 100;
    let manifest: Vec<String> = (0..count)
        .map(|i| {
            pod_yaml(
                &format!("p{i:03}"),
                &format!("exec nc -ll -p 80 -e echo p{i:03}"),
                "",
            )
        })
        .collect();
    let applied = agent.cli_stdin_within(
        &["apply", "-f", "-"],
        &manifest.join("---\n"),
        Duration::from_secs(30),
    );
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    assert_eq!(text(&applied.stdout).lines().count(), count);

    let started = Instant::now();
    let list = |agent: &Agent| -> Vec<Value> {
        let out = agent.ok(&["get", "pods", "-o", "json"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        list["items"].as_array().cloned().unwrap_or_default()
    };
    let pods = poll(
        Duration::from_secs(90),
        Duration::from_secs(1),
        || list(&agent),
        |pods| pods.len() == count && pods.iter().all(all_running),
    );
    let running = pods.iter().filter(|p| all_running(p)).count();
    assert_eq!(
        running,
        count,
        "all running after {:?}; not: {:?}\nagent log tail:\n{}",
        started.elapsed(),
        pods.iter()
            .filter(|p| !all_running(p))
            .map(|p| (p["metadata"]["name"].clone(), p["status"]["phase"].clone()))
            .collect::<Vec<_>>(),
        agent
            .agent_log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{count} pods running after {:?}", started.elapsed());

    let mut ips = std::collections::HashSet::new();
    let mut uids = Vec::new();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let ip = pod_ip(pod);
        assert!(in_cidr(&ip, &agent.cidr), "{name}: {ip}");
        assert!(ips.insert(ip.clone()), "{ip} given twice");
        wait_tcp_read(&format!("{ip}:80"), &format!("{name}\n"));
        uids.push(pod["metadata"]["uid"].as_str().unwrap().to_string());
    }
    assert_eq!(ips.len(), count);
    assert_eq!(ipam_entries(&agent).len(), count);
    assert_eq!(bridge_ports(&agent.bridge).len(), count);

    agent.ok(&["delete", "pods", "--all", "--grace-period", "0"]);
    wait_until(Duration::from_secs(60), "all pods gone", || {
        list(&agent).is_empty()
    });
    for uid in &uids {
        agent.leak_check(uid);
    }
    assert!(
        ipam_entries(&agent).is_empty(),
        "{:?}",
        ipam_entries(&agent)
    );
    assert_eq!(bridge_ports(&agent.bridge), Vec::<String>::new());
}

/// kill -9 of the agent: pods keep their addresses and stay reachable, the hostPort still
/// works (one rule, not two), and a pod made afterwards gets a new address.
#[test]
fn agent_restart_keeps_pod_addresses_and_host_ports() {
    let mut agent = Agent::start();
    agent.apply(&pod_yaml(
        "a",
        "exec nc -ll -p 80 -e echo a",
        &port_entry(80, RESTART_PORT),
    ));
    agent.apply(&pod_yaml("b", "exec nc -ll -p 80 -e echo b", ""));
    let ip_a = pod_ip(&agent.wait_running("a"));
    let ip_b = pod_ip(&agent.wait_running("b"));
    assert_ne!(ip_a, ip_b);
    wait_tcp_read(&format!("127.0.0.1:{RESTART_PORT}"), "a\n");

    agent.kill_and_restart();
    for (name, ip) in [("a", &ip_a), ("b", &ip_b)] {
        let pod = agent.wait_pod(name, "running after the restart", WAIT, all_running);
        assert_eq!(&pod_ip(&pod), ip, "{name} keeps its address: {pod:#}");
        assert_eq!(container(&pod, "main")["restartCount"], 0, "{pod:#}");
        wait_tcp_read(&format!("{ip}:80"), &format!("{name}\n"));
    }
    wait_tcp_read(&format!("127.0.0.1:{RESTART_PORT}"), "a\n");
    let rules = agent.ruleset();
    assert_eq!(
        rules.matches(&format!("dport {RESTART_PORT} ")).count(),
        1,
        "{rules}"
    );
    assert_eq!(bridge_ports(&agent.bridge).len(), 2);

    agent.apply(&pod_yaml("c", "exec nc -ll -p 80 -e echo c", ""));
    let ip_c = pod_ip(&agent.wait_running("c"));
    assert!(ip_c != ip_a && ip_c != ip_b, "{ip_c} is new");
    wait_tcp_read(&format!("{ip_c}:80"), "c\n");

    for name in ["a", "b", "c"] {
        agent.delete_and_check(name, "0");
    }
    assert_refused(&format!("127.0.0.1:{RESTART_PORT}"));
}

/// kill -9 of the agent and of a pod's shim: the restarted agent re-creates the sandbox with
/// the same address and hostPort, and no stale veth remains.
#[test]
fn a_sandbox_lost_while_the_agent_was_down_is_recreated_with_its_address() {
    let mut agent = Agent::start();
    agent.apply(&pod_yaml(
        "a",
        "exec nc -ll -p 80 -e echo a",
        &port_entry(80, SHIM_KILL_PORT),
    ));
    let pod = agent.wait_running("a");
    let ip = pod_ip(&pod);
    let uid = agent.uid("a");
    let old_container = container_id_of(&pod, "main");
    wait_tcp_read(&format!("{ip}:80"), "a\n");

    agent.kill_agent();
    let shim = shim_pid(&agent, &uid);
    assert_eq!(unsafe { libc::kill(shim, libc::SIGKILL) }, 0);
    wait_until(Duration::from_secs(5), "the shim gone", || {
        let stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap_or_default();
        stat.is_empty()
            || stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
    });
    agent.restart();

    let pod = agent.wait_pod("a", "a new sandbox", Duration::from_secs(30), |p| {
        all_running(p) && container(p, "main")["containerID"] != old_container.as_str()
    });
    assert_eq!(pod_ip(&pod), ip, "the same address: {pod:#}");
    wait_tcp_read(&format!("{ip}:80"), "a\n");
    wait_tcp_read(&format!("127.0.0.1:{SHIM_KILL_PORT}"), "a\n");
    assert_eq!(
        bridge_ports(&agent.bridge),
        [peapod_net::host_veth_name(&uid)],
        "one veth, the pod's new one"
    );
    assert_eq!(ipam_entries(&agent), std::slice::from_ref(&ip));
    assert!(
        container_pids(&uid, &old_container).is_empty(),
        "the old container's processes are gone"
    );
    let rules = agent.ruleset();
    assert_eq!(
        rules.matches(&format!("dport {SHIM_KILL_PORT} ")).count(),
        1,
        "{rules}"
    );

    agent.delete_and_check("a", "0");
}

/// A pod range overlapping a host route and a bridge name that is not a bridge stop the agent
/// with a message, touching nothing.
#[test]
fn agent_refuses_an_overlapping_range_and_a_non_bridge_link() {
    // The subnet of the default route's interface (e.g. 192.0.2.0/24 on eth0).
    let out = Command::new("ip").args(["-j", "route"]).output().unwrap();
    let routes: Value = serde_json::from_slice(&out.stdout).unwrap();
    let routes = routes.as_array().unwrap();
    let dev = routes
        .iter()
        .find(|r| r["dst"] == "default")
        .and_then(|r| r["dev"].as_str())
        .expect("a default route");
    let subnet = routes
        .iter()
        .find(|r| {
            r["dev"] == dev
                && r["dst"] != "default"
                && r["dst"].as_str().is_some_and(|d| d.contains('/'))
        })
        .and_then(|r| r["dst"].as_str())
        .expect("the default interface's subnet")
        .to_string();
    let (bridge, _) = own_network(1);
    let (status, stderr) = serve_expecting_exit(&bridge, &subnet);
    assert!(!status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("overlaps") && stderr.contains(&subnet),
        "the error names the overlap with {subnet}: {stderr}"
    );
    assert!(!link_exists(&bridge), "no bridge was made");
    assert!(!nft_table_exists(&bridge), "no nftables table was made");

    // PEAPOD_BRIDGE names one end of a veth pair.
    let pid = std::process::id() % 100_000;
    let (veth, peer) = (format!("pv{pid}a"), format!("pv{pid}b"));
    let made = Command::new("ip")
        .args(["link", "add", &veth, "type", "veth", "peer", "name", &peer])
        .status()
        .unwrap();
    assert!(made.success());
    let show = |name: &str| {
        let out = Command::new("ip")
            .args(["-j", "addr", "show", "dev", name])
            .output()
            .unwrap();
        text(&out.stdout)
    };
    let before = show(&veth);
    let (_, cidr) = own_network(2);
    let (status, stderr) = serve_expecting_exit(&veth, &cidr);
    let after = show(&veth);
    let _ = Command::new("ip").args(["link", "del", &veth]).status();
    assert!(!status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains(&veth) && stderr.contains("not a bridge"),
        "the error names {veth}: {stderr}"
    );
    assert_eq!(before, after, "the veth is left as it was");
    assert!(!nft_table_exists(&veth), "no nftables table was made");
    assert!(!before.is_empty());
}

/// Admission and validation refuse a hostIP the node does not have and a hostPort out of
/// range, naming the field.
#[test]
fn bad_host_ip_and_host_port_are_refused() {
    let agent = Agent::start();
    let foreign = "    - containerPort: 80\n      hostPort: 28090\n      hostIP: 203.0.113.7\n";
    let out = agent.cli_stdin(
        &["apply", "-f", "-"],
        &pod_yaml("foreign", "exec sleep 3600", foreign),
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("spec.containers[0].ports[0].hostIP") && err.contains("203.0.113.7"),
        "{err}"
    );
    assert!(agent.pod("foreign").is_none());

    let out = agent.cli_stdin(
        &["apply", "-f", "-"],
        &pod_yaml(
            "big",
            "exec sleep 3600",
            &port_entry(80, 0).replace("hostPort: 0", "hostPort: 70000"),
        ),
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("spec.containers[0].ports[0].hostPort") && err.contains("70000"),
        "{err}"
    );
    assert!(agent.pod("big").is_none());
}

/// A /30 holds one pod address: the second pod waits in ContainerCreating with
/// FailedCreatePodSandBox, and runs once the first is deleted.
#[test]
fn an_exhausted_range_leaves_the_next_pod_waiting() {
    let (bridge, cidr) = own_network(3);
    let cidr = cidr.replace(".0/24", ".0/30");
    let agent = Agent::start_with("1s", &bridge, &cidr);
    agent.apply(&pod_yaml("one", "exec sleep 3600", ""));
    let pod = agent.wait_running("one");
    let (net, _) = parse_cidr(&cidr);
    assert_eq!(pod_ip(&pod), Ipv4Addr::from(net + 2).to_string());

    agent.apply(&pod_yaml("two", "exec sleep 3600", ""));
    wait_event(&agent, "FailedCreatePodSandBox", |e| {
        e.lines().any(|l| {
            l.contains("Warning")
                && l.contains("FailedCreatePodSandBox")
                && l.contains("pod/two")
                && l.contains(&format!("no free address left in the pod range {cidr}"))
        })
    });
    let two = agent.pod("two").unwrap();
    assert_eq!(two["status"]["phase"], "Pending", "{two:#}");
    assert!(two["status"]["podIP"].is_null(), "{two:#}");
    assert_eq!(agent.get_status("two"), "ContainerCreating");

    agent.delete_and_check("one", "0");
    let two = agent.wait_running("two");
    assert_eq!(pod_ip(&two), Ipv4Addr::from(net + 2).to_string());
    agent.delete_and_check("two", "0");
}

/// The downward API reads the pod's own addresses; /etc/hosts carries the pod IP line and the
/// hostAliases; dnsPolicy None with dnsConfig gives exactly the configured resolver.
#[test]
fn downward_api_host_aliases_and_dns_config() {
    let agent = Agent::start();
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: facts\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  hostname: web\n  subdomain: svc\n  \
         dnsPolicy: None\n  dnsConfig:\n    nameservers: [\"10.96.0.10\"]\n    \
         searches: [\"example.test\"]\n    options:\n    - name: ndots\n      value: \"2\"\n  \
         hostAliases:\n  - ip: \"10.1.2.3\"\n    hostnames: [\"foo.local\", \"bar.local\"]\n  \
         containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    \
         env:\n    - name: POD_IP\n      valueFrom:\n        fieldRef:\n          \
         fieldPath: status.podIP\n    - name: HOST_IP\n      valueFrom:\n        fieldRef:\n          \
         fieldPath: status.hostIP\n",
    );
    let pod = agent.wait_running("facts");
    let (ip, host_ip) = (pod_ip(&pod), host_ip_of(&pod));
    assert!(in_cidr(&ip, &agent.cidr), "{ip} not in {}", agent.cidr);

    let (code, env, err) = agent.exec("facts", "main", &["sh", "-c", "echo $POD_IP $HOST_IP"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.trim(), format!("{ip} {host_ip}"));

    let (_, hosts, _) = agent.exec("facts", "main", &["cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{ip}\tweb.svc.default.svc.cluster.local\tweb\n")),
        "{hosts}"
    );
    assert!(
        hosts.contains("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"),
        "{hosts}"
    );

    let (_, resolv, _) = agent.exec("facts", "main", &["cat", "/etc/resolv.conf"]);
    assert_eq!(
        resolv,
        "search example.test\nnameserver 10.96.0.10\noptions ndots:2\n"
    );
    agent.delete_and_check("facts", "0");
}

/// What a crash leaves of a pod that no longer exists — an address held, a veth on the bridge,
/// a DNAT rule — is removed when the agent starts; a live pod keeps all of its own.
#[test]
fn a_restarted_agent_removes_the_network_leftovers_of_deleted_pods() {
    const LIVE_PORT: u16 = 28051;
    const GHOST_PORT: u16 = 28052;
    let mut agent = Agent::start();
    agent.apply(&pod_yaml(
        "live",
        "exec nc -ll -p 80 -e echo live",
        &port_entry(80, LIVE_PORT),
    ));
    let pod = agent.wait_running("live");
    let (ip, uid) = (pod_ip(&pod), agent.uid("live"));
    agent.kill_agent();

    // The leftovers of a pod deleted while the agent was crashing.
    let ghost = "0badc0de-0000-4000-8000-000000000001";
    let ghost_veth = peapod_net::host_veth_name(ghost);
    let ghost_ip = Ipv4Addr::from(parse_cidr(&agent.cidr).0 + 200).to_string();
    let ipam = agent.path().join("var/lib/peapod/network/ipam");
    std::fs::write(ipam.join(&ghost_ip), ghost).unwrap();
    let ip_cmd = |args: &[&str]| {
        let status = Command::new("ip").args(args).status().unwrap();
        assert!(status.success(), "ip {args:?}");
    };
    ip_cmd(&[
        "link",
        "add",
        &ghost_veth,
        "type",
        "veth",
        "peer",
        "name",
        "ppghostpeer",
    ]);
    ip_cmd(&["link", "set", &ghost_veth, "master", &agent.bridge]);
    let rule = format!(
        "add rule ip {} hostports tcp dport {GHOST_PORT} dnat to {ghost_ip}:80 comment \"{ghost}\"",
        agent.nft_table()
    );
    let status = Command::new("nft").arg(&rule).status().unwrap();
    assert!(status.success(), "{rule}");

    agent.restart();
    wait_until(Duration::from_secs(10), "the leftovers removed", || {
        !link_exists(&ghost_veth)
            && !agent.ruleset().contains(ghost)
            && !ipam_entries(&agent).contains(&ghost_ip)
    });
    assert!(!link_exists("ppghostpeer"));
    assert_eq!(ipam_entries(&agent), std::slice::from_ref(&ip));
    assert_eq!(
        bridge_ports(&agent.bridge),
        [peapod_net::host_veth_name(&uid)]
    );
    assert!(agent.ruleset().contains(&format!("dport {LIVE_PORT} ")));
    wait_tcp_read(&format!("{ip}:80"), "live\n");
    wait_tcp_read(&format!("127.0.0.1:{LIVE_PORT}"), "live\n");
    agent.delete_and_check("live", "0");
}
