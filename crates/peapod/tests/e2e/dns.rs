//! The cluster DNS as pods see it (test/e2e/network/dns.go, single node): busybox's nslookup
//! against the DNS server on the bridge's gateway and through the kube-dns Service's .10,
//! kubelet's ClusterFirst resolv.conf, a headless Service's ready endpoints, a StatefulSet
//! pod's `web-0.nginx` name, an ExternalName's CNAME, NXDOMAIN for unknown names, and names
//! outside the cluster forwarded to the node's resolver (a tiny responder on loopback, named
//! by PEAPOD_DNS_RESOLV_CONF, as the machine has no internet).

use std::net::UdpSocket;
use std::time::Duration;

use crate::common::*;

/// What the fake upstream answers for every A question.
const UPSTREAM_ANSWER: [u8; 4] = [192, 0, 2, 7];

const OBJECTS: &str = "apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: web, port: 80}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www']
---
apiVersion: v1
kind: Service
metadata:
  name: ext
spec:
  type: ExternalName
  externalName: outside.example
---
apiVersion: v1
kind: Service
metadata:
  name: nobody
spec:
  clusterIP: None
  selector: {app: nobody}
  ports:
  - {port: 80}
";

/// A resolver on a loopback port answering every A question with [`UPSTREAM_ANSWER`] and
/// every other with no record, as the node's resolver would for a name it knows.
fn fake_upstream() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback port");
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1500];
        while let Ok((len, from)) = socket.recv_from(&mut buffer) {
            if let Some(response) = upstream_response(&buffer[..len]) {
                let _ = socket.send_to(&response, from);
            }
        }
    });
    port
}

/// The query's header and question with QR and RA set, its additional records dropped, and
/// one A record when it asks for A.
fn upstream_response(query: &[u8]) -> Option<Vec<u8>> {
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + usize::from(query[end]);
    }
    let question_end = end + 5;
    let qtype = u16::from_be_bytes([*query.get(end + 1)?, *query.get(end + 2)?]);
    let mut response = query.get(..question_end)?.to_vec();
    response[2] |= 0x80;
    response[3] = 0x80;
    let answers: u8 = u8::from(qtype == 1);
    response[6..12].copy_from_slice(&[0, answers, 0, 0, 0, 0]);
    if answers == 1 {
        response.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        response.extend_from_slice(&UPSTREAM_ANSWER);
    }
    Some(response)
}

/// The first address of the agent's pod range: the bridge's, where the DNS server listens.
fn gateway(agent: &Agent) -> String {
    let network = agent.cidr.split('/').next().unwrap();
    network
        .strip_suffix(".0")
        .map(|p| format!("{p}.1"))
        .unwrap()
}

/// The Service range's .10.
fn dns_service_ip(agent: &Agent) -> String {
    let range = agent.service_cidr();
    let network = range.split('/').next().unwrap();
    network
        .strip_suffix(".0")
        .map(|p| format!("{p}.10"))
        .unwrap()
}

/// `nslookup NAME SERVER` in the client pod: (exit code, output).
fn nslookup(agent: &Agent, name: &str, server: &str) -> (i32, String) {
    let (code, out, err) = agent.exec("client", "main", &["nslookup", name, server]);
    (code, format!("{out}{err}"))
}

/// Waits until `nslookup` of `name` prints `expected`.
fn wait_answer(agent: &Agent, name: &str, server: &str, expected: &str) -> String {
    let (_, out) = poll(
        Duration::from_secs(30),
        Duration::from_millis(300),
        || nslookup(agent, name, server),
        |(_, out)| out.contains(expected),
    );
    assert!(out.contains(expected), "{name} at {server}: {out}");
    out
}

fn setup() -> (Agent, tempfile::TempDir) {
    let upstream = fake_upstream();
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("search node.example\nnameserver 127.0.0.1:{upstream}\n"),
    )
    .unwrap();
    let agent = Agent::start_with_env(&[("PEAPOD_DNS_RESOLV_CONF", resolv.to_str().unwrap())]);
    agent.apply(OBJECTS);
    agent.apply(CLIENT_POD);
    agent.wait_running("client");
    agent.wait_running("web-0");
    (agent, dir)
}

fn tear_down(agent: &Agent) {
    let web = agent.uid("web-0");
    agent.ok(&["delete", "statefulset", "web"]);
    agent.ok(&["delete", "service", "nginx", "ext", "nobody"]);
    wait_until(Duration::from_secs(30), "web-0 gone", || {
        agent.pod("web-0").is_none()
    });
    agent.leak_check(&web);
    agent.delete_and_check("client", "0");
}

#[test]
fn pods_resolve_cluster_names_at_the_gateway() {
    let (agent, _resolv) = setup();
    let server = gateway(&agent);
    let web_ip = agent.pod("web-0").unwrap()["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();

    let (_, resolv, _) = agent.exec("client", "main", &["cat", "/etc/resolv.conf"]);
    let lines: Vec<&str> = resolv.lines().collect();
    assert!(
        lines[0].starts_with("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    assert_eq!(
        lines[1..],
        [
            format!("nameserver {}", dns_service_ip(&agent)).as_str(),
            "options ndots:5"
        ],
        "{resolv}"
    );
    let client = agent.uid("client");
    let events = agent.events_of(&client);
    assert!(
        events.iter().all(|e| e["reason"] != "MissingClusterDNS"),
        "{events:?}"
    );

    wait_answer(&agent, "nginx.default.svc.cluster.local", &server, &web_ip);
    let out = wait_answer(
        &agent,
        "web-0.nginx.default.svc.cluster.local",
        &server,
        &web_ip,
    );
    assert!(
        out.contains("Name:\tweb-0.nginx.default.svc.cluster.local"),
        "{out}"
    );
    let out = wait_answer(
        &agent,
        "ext.default.svc.cluster.local",
        &server,
        "canonical name",
    );
    assert!(out.contains("outside.example"), "{out}");

    let (code, out) = nslookup(&agent, "nope.default.svc.cluster.local", &server);
    assert!(code != 0 && out.contains("NXDOMAIN"), "{code} {out}");
    let (code, out) = nslookup(&agent, "nobody.default.svc.cluster.local", &server);
    assert!(
        code != 0 && out.contains("NXDOMAIN"),
        "a headless Service without endpoints: {out}"
    );
    let (code, out) = nslookup(&agent, "web.nowhere.svc.cluster.local", &server);
    assert!(code != 0 && out.contains("NXDOMAIN"), "{code} {out}");

    let out = nslookup(&agent, &web_ip, &server).1;
    assert!(
        out.contains("name = web-0.nginx.default.svc.cluster.local"),
        "{out}"
    );

    let (_, out) = nslookup(&agent, "outside.example", &server);
    assert!(out.contains("192.0.2.7"), "forwarded upstream: {out}");

    tear_down(&agent);
}

#[test]
fn the_dns_service_address_reaches_the_server() {
    let (mut agent, _resolv) = setup();
    let service = agent.ok(&[
        "get",
        "service",
        "kube-dns",
        "-n",
        "kube-system",
        "-o",
        "json",
    ]);
    let service: serde_json::Value = serde_json::from_str(&service).unwrap();
    let ip = dns_service_ip(&agent);
    assert_eq!(service["spec"]["clusterIP"], ip.as_str(), "{service}");
    assert_eq!(service["metadata"]["labels"]["k8s-app"], "kube-dns");

    let web_ip = agent.pod("web-0").unwrap()["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    wait_answer(
        &agent,
        "web-0.nginx.default.svc.cluster.local",
        &ip,
        &web_ip,
    );
    wait_answer(&agent, "kube-dns.kube-system.svc.cluster.local", &ip, &ip);
    // The pod's own resolver (glibc's, in busybox's nc; its wget crashes, see network.rs):
    // the search path of its resolv.conf completes the short name.
    let script = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 web-0.nginx 80";
    let (code, out, err) = agent.exec("client", "main", &["sh", "-c", script]);
    assert!(code == 0 && out.ends_with("web-0\n"), "{code} {out} {err}");

    // A new agent rewrites the kube-dns objects it finds and serves again.
    agent.kill_and_restart();
    wait_answer(
        &agent,
        "web-0.nginx.default.svc.cluster.local",
        &ip,
        &web_ip,
    );
    assert!(
        !agent.agent_log().contains("writing the kube-dns Service"),
        "{}",
        agent.agent_log()
    );
    tear_down(&agent);
}
