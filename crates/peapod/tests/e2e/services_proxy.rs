//! The service proxy (issue 16) end to end: busybox httpd pods behind Services, reached by
//! cluster IP from the host and from pods, by hairpin, by NodePort on 127.0.0.1 and the
//! node's address; a Service without endpoints refusing at once, following its Deployment to
//! zero and back; ClientIP session affinity; a LoadBalancer's status and port; and no rule
//! left once a Service is deleted. Cluster IPs and ports come from the agent's own ranges.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const IO_TIMEOUT: Duration = Duration::from_secs(3);
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// The `n`th address of the agent's Service range: explicit cluster IPs from the low band,
/// which dynamic allocation leaves alone.
pub(crate) fn cluster_ip(agent: &Agent, n: u32) -> String {
    let network: Ipv4Addr = agent
        .service_cidr()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    Ipv4Addr::from(u32::from(network) + n).to_string()
}

/// The `n`th port of the agent's NodePort range (no other agent's tests use it).
pub(crate) fn agent_port(agent: &Agent, n: u16) -> u16 {
    let range = agent.node_port_range();
    let first: u16 = range.split('-').next().unwrap().parse().unwrap();
    first + n
}

/// A pod labelled `labels` (YAML flow map) answering its own name on 8080.
pub(crate) fn web_pod(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {labels}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    \
         command: [sh, -c, 'mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 8080 -h /www']\n"
    )
}

pub(crate) fn client_pod(agent: &Agent) {
    agent.apply(CLIENT_POD);
    agent.wait_running("client");
}

/// A Service `name` selecting `selector` (YAML flow map), port 80 to 8080; `extra` goes into
/// its spec (indented two spaces).
pub(crate) fn service(name: &str, ip: &str, selector: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  clusterIP: {ip}\n  \
         selector: {selector}\n{extra}  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"
    )
}

/// HTTP/1.0 GET / of `addr`: the body, trimmed.
pub(crate) fn http_get(addr: &str) -> std::io::Result<String> {
    let addr: SocketAddr = addr.parse().expect("ip:port");
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    write!(stream, "GET / HTTP/1.0\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.contains(" 200 ") => Ok(body.trim().to_string()),
        _ => Err(std::io::Error::other(format!("not a 200: {response:?}"))),
    }
}

/// Polls `addr` until it answers one of `names`; returns the answer.
pub(crate) fn wait_answer(agent: &Agent, addr: &str, names: &[&str]) -> String {
    let last = poll(
        WAIT,
        Duration::from_millis(100),
        || http_get(addr),
        |r| r.as_ref().is_ok_and(|b| names.contains(&b.as_str())),
    );
    match last {
        Ok(body) if names.contains(&body.as_str()) => body,
        other => panic!(
            "{addr} never answered one of {names:?}; last: {other:?}\n{}",
            agent.ruleset()
        ),
    }
}

/// From pod `from`, GET / of ip:port with busybox nc until it answers `expected`.
pub(crate) fn wait_answer_in_pod(agent: &Agent, from: &str, ip: &str, port: u16, expected: &str) {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port}");
    let last = poll(
        WAIT,
        Duration::from_millis(200),
        || agent.exec(from, "main", &["sh", "-c", &script]),
        |(code, out, _)| *code == 0 && out.contains(expected),
    );
    assert!(
        last.0 == 0 && last.1.contains(expected),
        "from pod {from}, {ip}:{port} should answer {expected:?}; last: {last:?}\n{}",
        agent.ruleset()
    );
}

/// Connecting to `addr` is refused, and at once: never a timeout.
pub(crate) fn assert_refused_at_once(agent: &Agent, addr: &str) {
    let socket: SocketAddr = addr.parse().unwrap();
    let started = Instant::now();
    let result = TcpStream::connect_timeout(&socket, IO_TIMEOUT);
    let took = started.elapsed();
    assert!(
        matches!(&result, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{addr} should refuse: {result:?}\n{}",
        agent.ruleset()
    );
    assert!(
        took < Duration::from_millis(500),
        "{addr} refused after {took:?}"
    );
}

/// Waits for the proxy to withdraw the TCP port's endpoints, then checks it refuses. No
/// connection is tried before: one sent to a pod being torn down would stay in conntrack.
pub(crate) fn wait_refused(agent: &Agent, addr: &str) {
    let socket: SocketAddr = addr.parse().unwrap();
    let rejected = format!(
        "{} . tcp . {} : goto proxy-reject",
        socket.ip(),
        socket.port()
    );
    wait_until(WAIT, &format!("{addr} to be rejected"), || {
        agent.ruleset().contains(&rejected)
    });
    assert_refused_at_once(agent, addr);
}

pub(crate) fn host_ip(agent: &Agent, pod: &str) -> String {
    let pod: Value = agent.pod(pod).expect("the pod");
    pod["status"]["hostIP"]
        .as_str()
        .expect("hostIP")
        .to_string()
}

/// Deletes the Service and checks that nothing of it is left in the table.
pub(crate) fn delete_service(agent: &Agent, name: &str, ip: &str, node_ports: &[u16]) {
    agent.ok(&["delete", "service", name]);
    let chains = format!("-default/{name}/");
    wait_until(WAIT, "the Service's rules to go", || {
        !agent.ruleset().contains(&chains)
    });
    agent.service_leak_check(ip, node_ports);
}

pub(crate) fn delete_pods(agent: &Agent, names: &[&str]) {
    for name in names {
        agent.delete_and_check(name, "0");
    }
}

#[test]
fn cluster_ip_node_port_and_hairpin_reach_the_pods() {
    let agent = Agent::start();
    agent.apply(&web_pod("web-a", "{app: web, name: web-a}"));
    agent.apply(&web_pod("web-b", "{app: web, name: web-b}"));
    client_pod(&agent);
    agent.wait_running("web-a");
    agent.wait_running("web-b");
    let (ip, own_ip) = (cluster_ip(&agent, 11), cluster_ip(&agent, 12));
    let node_port = agent_port(&agent, 0);
    let node_port_spec = "  type: NodePort\n";
    let manifest = service("web", &ip, "{app: web}", node_port_spec).replace(
        "targetPort: 8080\n",
        &format!("targetPort: 8080\n    nodePort: {node_port}\n"),
    );
    agent.apply(&manifest);
    agent.apply(&service("own", &own_ip, "{name: web-a}", ""));

    // From the host: both pods answer in turn.
    let both = ["web-a", "web-b"];
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < 2 && Instant::now() < deadline {
        seen.insert(wait_answer(&agent, &format!("{ip}:80"), &both));
    }
    assert_eq!(seen.len(), 2, "random endpoint choice reaches both pods");
    // From another pod, and from a pod to itself through its own Service (hairpin).
    wait_answer_in_pod(&agent, "client", &ip, 80, "web-");
    wait_answer_in_pod(&agent, "web-a", &own_ip, 80, "web-a");
    // The NodePort on loopback and on the node's address.
    wait_answer(&agent, &format!("127.0.0.1:{node_port}"), &both);
    let node = host_ip(&agent, "web-a");
    wait_answer(&agent, &format!("{node}:{node_port}"), &both);
    wait_answer_in_pod(&agent, "client", &node, node_port, "web-");

    delete_service(&agent, "web", &ip, &[node_port]);
    delete_service(&agent, "own", &own_ip, &[]);
    assert_refused_at_once(&agent, &format!("127.0.0.1:{node_port}"));
    delete_pods(&agent, &["web-a", "web-b", "client"]);
}

/// A Deployment of `replicas` pods labelled app=`name` answering "up" on 8080.
fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  \
         replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    \
         metadata:\n      labels: {{app: {name}}}\n    spec:\n      \
         terminationGracePeriodSeconds: 1\n      containers:\n      - name: main\n        \
         image: busybox\n        command: [sh, -c, 'mkdir -p /www && echo up > /www/index.html \
         && exec httpd -f -p 8080 -h /www']\n"
    )
}

/// The uids of the pods labelled app=`app`.
fn labelled_pod_uids(agent: &Agent, app: &str) -> Vec<String> {
    let pods: Value = serde_json::from_str(&agent.ok(&["get", "pods", "-o", "json"])).unwrap();
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter(|pod| pod["metadata"]["labels"]["app"] == app)
        .filter_map(|pod| pod["metadata"]["uid"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_service_without_endpoints_refuses_and_follows_its_deployment_to_zero_and_back() {
    let agent = Agent::start();
    let ip = cluster_ip(&agent, 11);
    agent.apply(&service("lonely", &ip, "{app: lonely}", ""));
    let addr = format!("{ip}:80");
    wait_refused(&agent, &addr);
    client_pod(&agent);
    let script = format!("nc -w 3 {ip} 80 </dev/null; echo exit=$?");
    let (_, out, err) = agent.exec("client", "main", &["sh", "-c", &script]);
    assert!(
        out.contains("exit=1") && err.contains("refused"),
        "{out} {err}"
    );

    agent.apply(&deployment("lonely", 1));
    wait_answer(&agent, &addr, &["up"]);
    agent.apply(&deployment("lonely", 0));
    wait_refused(&agent, &addr);
    agent.apply(&deployment("lonely", 1));
    wait_answer(&agent, &addr, &["up"]);

    let uids = labelled_pod_uids(&agent, "lonely");
    agent.ok(&["delete", "deployment", "lonely"]);
    wait_refused(&agent, &addr);
    delete_service(&agent, "lonely", &ip, &[]);
    delete_pods(&agent, &["client"]);
    wait_until(WAIT, "the Deployment's pods to go", || {
        labelled_pod_uids(&agent, "lonely").is_empty()
    });
    for uid in uids {
        agent.leak_check(&uid);
    }
}

#[test]
fn client_ip_affinity_sticks_and_a_load_balancer_answers_on_the_node() {
    let agent = Agent::start();
    agent.apply(&web_pod("web-a", "{app: web}"));
    agent.apply(&web_pod("web-b", "{app: web}"));
    agent.wait_running("web-a");
    agent.wait_running("web-b");
    let ip = cluster_ip(&agent, 13);
    let (lb_port, node_port) = (agent_port(&agent, 20), agent_port(&agent, 21));
    let spec = "  type: LoadBalancer\n  sessionAffinity: ClientIP\n  \
                sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n";
    let manifest = service("sticky", &ip, "{app: web}", spec)
        .replace("port: 80\n", &format!("port: {lb_port}\n"))
        .replace(
            "targetPort: 8080\n",
            &format!("targetPort: 8080\n    nodePort: {node_port}\n"),
        );
    agent.apply(&manifest);

    let node = host_ip(&agent, "web-a");
    let status = poll(
        WAIT,
        Duration::from_millis(100),
        || -> Value {
            serde_json::from_str(&agent.ok(&["get", "service", "sticky", "-o", "json"])).unwrap()
        },
        |svc| svc["status"]["loadBalancer"]["ingress"][0]["ip"] == node.as_str(),
    );
    assert_eq!(
        status["status"]["loadBalancer"]["ingress"],
        serde_json::json!([{"ip": node, "ipMode": "VIP"}]),
        "{status:#}"
    );
    let both = ["web-a", "web-b"];
    let first = wait_answer(&agent, &format!("{ip}:{lb_port}"), &both);
    for _ in 0..10 {
        let again = http_get(&format!("{ip}:{lb_port}")).expect("the Service answers");
        assert_eq!(
            again, first,
            "ClientIP affinity keeps the client on one pod"
        );
    }
    assert_eq!(
        wait_answer(&agent, &format!("{node}:{lb_port}"), &both),
        first
    );
    let rules = agent.ruleset();
    assert!(rules.contains("timeout 1m"), "{rules}");

    delete_service(&agent, "sticky", &ip, &[node_port, lb_port]);
    let rules = agent.ruleset();
    assert!(!rules.contains("set aff-"), "{rules}");
    delete_pods(&agent, &["web-a", "web-b"]);
}

/// A pod labelled app=udp with no UDP socket: what reaches it counts as Udp NoPorts.
fn udp_pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: udp}}\nspec:\n  \
         terminationGracePeriodSeconds: 0\n  containers:\n  - name: main\n    image: busybox\n    \
         command: [sleep, '3600']\n"
    )
}

/// The pod's `Udp: NoPorts` counter: datagrams that reached it for a closed port.
fn udp_no_ports(agent: &Agent, pod: &str) -> u64 {
    let (code, snmp, err) = agent.exec(pod, "main", &["cat", "/proc/net/snmp"]);
    assert_eq!(code, 0, "{err}");
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let field = udp[0]
        .split_whitespace()
        .position(|n| n == "NoPorts")
        .unwrap();
    udp[1]
        .split_whitespace()
        .nth(field)
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends from `socket` (always the same source port) until datagrams reach `pod`.
fn wait_udp_reaches(agent: &Agent, socket: &std::net::UdpSocket, pod: &str) {
    let before = udp_no_ports(agent, pod);
    let reached = poll(
        WAIT,
        Duration::from_millis(100),
        || {
            // Errors are the ICMP answers of earlier datagrams: keep sending.
            let _ = socket.send(b"ping");
            udp_no_ports(agent, pod)
        },
        |now| *now > before,
    );
    assert!(
        reached > before,
        "no datagram reached {pod}\n{}",
        agent.ruleset()
    );
}

#[test]
fn a_udp_flow_follows_its_service_to_a_new_pod() {
    let agent = Agent::start();
    let ip = cluster_ip(&agent, 14);
    agent.apply(&udp_pod("udp-a"));
    agent.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: udp\nspec:\n  clusterIP: {ip}\n  \
         selector: {{app: udp}}\n  ports:\n  - {{name: dns, port: 53, targetPort: 5353, protocol: UDP}}\n"
    ));
    agent.wait_running("udp-a");
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.connect(format!("{ip}:53")).unwrap();
    wait_udp_reaches(&agent, &socket, "udp-a");

    // The same flow (same source port) must not stick to the deleted pod's conntrack entry.
    agent.delete_and_check("udp-a", "0");
    agent.apply(&udp_pod("udp-b"));
    agent.wait_running("udp-b");
    wait_udp_reaches(&agent, &socket, "udp-b");

    agent.delete_and_check("udp-b", "0");
    delete_service(&agent, "udp", &ip, &[]);
}

#[test]
fn a_restarted_agent_keeps_service_traffic_and_drops_what_no_service_wants() {
    let mut agent = Agent::start();
    agent.apply(&web_pod("web-a", "{app: web}"));
    agent.wait_running("web-a");
    let ip = cluster_ip(&agent, 11);
    agent.apply(&service("web", &ip, "{app: web}", ""));
    let addr = format!("{ip}:80");
    wait_answer(&agent, &addr, &["web-a"]);

    // While the agent is down, traffic still flows; a stale chain and map entry appear, as
    // a Service deleted by an agent that died before syncing would leave them.
    agent.kill_agent();
    assert_eq!(
        http_get(&addr).expect("the rules outlive the agent"),
        "web-a"
    );
    let (table, stale) = (agent.nft_table(), "svc-DEADBEEF-default/gone/tcp/http");
    let script = format!(
        "add chain ip {table} {stale}\nadd rule ip {table} {stale} counter\n\
         add element ip {table} proxy-service-ips {{ 192.0.2.99 . tcp . 80 : goto {stale} }}\n"
    );
    let mut nft = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    nft.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success());

    agent.restart();
    wait_until(WAIT, "the stale chain to go", || {
        !agent.ruleset().contains(stale)
    });
    assert!(
        !agent.ruleset().contains("192.0.2.99"),
        "{}",
        agent.ruleset()
    );
    wait_answer(&agent, &addr, &["web-a"]);

    delete_service(&agent, "web", &ip, &[]);
    delete_pods(&agent, &["web-a"]);
}
