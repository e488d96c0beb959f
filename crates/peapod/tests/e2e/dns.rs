//! The cluster DNS as pods see it (test/e2e/network/dns.go, single node): busybox's nslookup
//! against the DNS server on the bridge's gateway and through the kube-dns Service's .10,
//! kubelet's ClusterFirst resolv.conf, a headless Service's ready endpoints, a StatefulSet
//! pod's `web-0.nginx` name, an ExternalName's CNAME, NXDOMAIN for unknown names, and names
//! outside the cluster forwarded to the node's resolver (a tiny responder on loopback, named
//! by PEAPOD_DNS_RESOLV_CONF, as the machine has no internet), and another one once that file
//! names another. dns.go's conformance cases ask from a pod through its own resolv.conf: the
//! cluster's, Services', pods' and partially qualified names, ExternalName CNAMEs as the
//! Service changes.

use std::net::UdpSocket;
use std::time::Duration;

use crate::common::kubectl::{free_port, start_with_kubectl, Kubectl};
use crate::common::*;

/// What the fake upstream answers for every A question.
const UPSTREAM_ANSWER: [u8; 4] = [192, 0, 2, 7];
/// What the upstream a rewritten resolv.conf names answers instead.
const NEW_UPSTREAM_ANSWER: [u8; 4] = [192, 0, 2, 8];

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

/// A resolver on a loopback port answering every A question with `answer` and every other
/// with no record, as the node's resolver would for a name it knows.
fn fake_upstream(answer: [u8; 4]) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback port");
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1500];
        while let Ok((len, from)) = socket.recv_from(&mut buffer) {
            if let Some(response) = upstream_response(&buffer[..len], answer) {
                let _ = socket.send_to(&response, from);
            }
        }
    });
    port
}

/// The query's header and question with QR and RA set, its additional records dropped, and
/// one A record when it asks for A.
fn upstream_response(query: &[u8], answer: [u8; 4]) -> Option<Vec<u8>> {
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
        response.extend_from_slice(&answer);
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

/// A node resolv.conf naming a fake upstream answering `answer`.
fn write_resolv_conf(path: &std::path::Path, answer: [u8; 4]) {
    let upstream = fake_upstream(answer);
    let text = format!("search node.example\nnameserver 127.0.0.1:{upstream}\n");
    std::fs::write(path, text).unwrap();
}

/// An agent (with `env`) whose cluster DNS forwards to a fake upstream, the client pod
/// running.
fn start_with_fake_upstream(env: &[(&str, &str)]) -> (Agent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    write_resolv_conf(&resolv, UPSTREAM_ANSWER);
    let mut env = env.to_vec();
    env.push(("PEAPOD_DNS_RESOLV_CONF", resolv.to_str().unwrap()));
    let agent = Agent::start_with_env(&env);
    agent.apply(CLIENT_POD);
    agent.wait_running("client");
    (agent, dir)
}

fn setup() -> (Agent, tempfile::TempDir) {
    let (agent, dir) = start_with_fake_upstream(&[]);
    agent.apply(OBJECTS);
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

/// dns.go's objects: a headless and a regular Service of the querier pod, and the headless
/// Service its hostname and subdomain name it under.
const CONFORMANCE_OBJECTS: &str = "\
{apiVersion: v1, kind: Service, metadata: {name: dns-test-service}, spec: {clusterIP: None, \
 selector: {dns-test: 'true'}, ports: [{name: http, port: 80}]}}
---
{apiVersion: v1, kind: Service, metadata: {name: test-service-2}, spec: { \
 selector: {dns-test: 'true'}, ports: [{name: http, port: 80}]}}
---
{apiVersion: v1, kind: Service, metadata: {name: dns-test-service-2}, spec: {clusterIP: None, \
 selector: {dns-test-hostname-attribute: 'true'}, ports: [{name: http, port: 80}]}}
---
apiVersion: v1
kind: Pod
metadata:
  name: dns-querier
  labels: {dns-test: 'true', dns-test-hostname-attribute: 'true'}
spec:
  hostname: dns-querier-2
  subdomain: dns-test-service-2
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sleep, '3600']
";

/// `nslookup ARGS` in `pod` through its own resolv.conf (search path and the kube-dns
/// Service), retried until the output holds every one of `expected`.
fn resolves(agent: &Agent, pod: &str, args: &[&str], expected: &[&str]) -> String {
    let mut command = vec!["nslookup"];
    command.extend_from_slice(args);
    let (_, out) = poll(
        Duration::from_secs(30),
        Duration::from_millis(300),
        || {
            let (code, out, err) = agent.exec(pod, "main", &command);
            (code, format!("{out}{err}"))
        },
        |(_, out)| expected.iter().all(|e| out.contains(e)),
    );
    assert!(
        expected.iter().all(|e| out.contains(e)),
        "nslookup {args:?} in {pod}: want {expected:?}, got {out}"
    );
    out
}

/// An answer line of busybox's nslookup (the server's own line has a tab and a port).
fn answer(ip: &str) -> String {
    format!("Address: {ip}\n")
}

/// Waits until `name` resolves to `ip` in `pod` through glibc's resolver, which walks the
/// search path as dig +search does (busybox's nslookup only completes names without a dot).
/// busybox's ping prints the address it resolved before any reply.
fn libc_resolves(agent: &Agent, pod: &str, name: &str, ip: &str) {
    let expected = format!("PING {name} ({ip})");
    let (_, out) = poll(
        Duration::from_secs(30),
        Duration::from_millis(300),
        || {
            let (code, out, err) = agent.exec(pod, "main", &["ping", "-c", "1", "-W", "1", name]);
            (code, format!("{out}{err}"))
        },
        |(_, out)| out.contains(&expected),
    );
    assert!(
        out.contains(&expected),
        "{name} in {pod}: want {ip}, got {out}"
    );
}

fn service_ip(kubectl: &Kubectl, name: &str) -> String {
    kubectl.ok(&["get", "service", name, "-o", "jsonpath={.spec.clusterIP}"])
}

/// dns.go's "should provide DNS for the cluster", "... for services", "... for pods for
/// Hostname", "... for pods for Subdomain", "should provide /etc/hosts entries for the
/// cluster" and "should resolve DNS of partial qualified names" for the cluster and for
/// services (A records; busybox has no `dig +search` for the SRV ones), asked from the
/// querier pod through its own resolv.conf.
#[test]
fn dns_go_names_of_the_cluster_services_and_pods() {
    let (agent, kubectl) = start_with_kubectl();
    agent.apply(CONFORMANCE_OBJECTS);
    let pod = agent.wait_running("dns-querier");
    let pod_ip = pod["status"]["podIP"].as_str().unwrap().to_owned();
    let (kubernetes_ip, regular_ip) = (
        service_ip(&kubectl, "kubernetes"),
        service_ip(&kubectl, "test-service-2"),
    );
    let ask = |args: &[&str], expected: &[&str]| resolves(&agent, "dns-querier", args, expected);

    // The cluster, by full and partial names, and the pod's own A record.
    ask(
        &["kubernetes.default.svc.cluster.local"],
        &[&answer(&kubernetes_ip)],
    );
    for name in ["kubernetes.default", "kubernetes.default.svc"] {
        libc_resolves(&agent, "dns-querier", name, &kubernetes_ip);
    }
    let pod_record = format!("{}.default.pod.cluster.local", pod_ip.replace('.', "-"));
    ask(&[&pod_record], &[&answer(&pod_ip)]);

    // Services: the headless one's endpoint by full and partial names, both ones' SRV, the
    // regular one's cluster IP and PTR.
    for name in [
        "dns-test-service.default.svc.cluster.local",
        "dns-test-service",
    ] {
        ask(&[name], &[&answer(&pod_ip)]);
    }
    for name in ["dns-test-service.default", "dns-test-service.default.svc"] {
        libc_resolves(&agent, "dns-querier", name, &pod_ip);
    }
    libc_resolves(&agent, "dns-querier", "test-service-2.default", &regular_ip);
    let headless = "_http._tcp.dns-test-service.default.svc.cluster.local";
    let target = format!(
        "{}.dns-test-service.default.svc.cluster.local",
        pod_ip.replace('.', "-")
    );
    ask(&["-type=SRV", headless], &[&format!(" 80 {target}")]);
    let regular = "_http._tcp.test-service-2.default.svc.cluster.local";
    ask(
        &["-type=SRV", regular],
        &[" 80 test-service-2.default.svc.cluster.local"],
    );
    ask(
        &[&regular_ip],
        &["name = test-service-2.default.svc.cluster.local"],
    );

    // The pod by its hostname and subdomain, and the subdomain itself.
    let fqdn = "dns-querier-2.dns-test-service-2.default.svc.cluster.local";
    ask(&[fqdn], &[&answer(&pod_ip)]);
    ask(
        &["dns-test-service-2.default.svc.cluster.local"],
        &[&answer(&pod_ip)],
    );
    libc_resolves(&agent, "dns-querier", "dns-querier-2", &pod_ip);
    let (_, hosts, _) = agent.exec("dns-querier", "main", &["cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{pod_ip}\t{fqdn}\tdns-querier-2\n")),
        "{hosts}"
    );
    let (_, hostname, _) = agent.exec("dns-querier", "main", &["hostname"]);
    assert_eq!(hostname.trim(), "dns-querier-2");

    agent.ok(&[
        "delete",
        "service",
        "dns-test-service",
        "test-service-2",
        "dns-test-service-2",
    ]);
    agent.service_leak_check(&regular_ip, &[]);
    agent.delete_and_check("dns-querier", "0");
}

/// dns.go's "should provide DNS for ExternalName services": the CNAME follows the
/// externalName, then the cluster IP once the Service turns ClusterIP. And the node's
/// resolv.conf rewritten to name another resolver is followed (as CoreDNS's forward).
#[test]
fn external_names_follow_the_service_and_forwarding_the_node_resolv_conf() {
    let listen = format!("127.0.0.1:{}", free_port());
    let (agent, dir) = start_with_fake_upstream(&[("PEAPOD_API_LISTEN", &listen)]);
    let kubectl = Kubectl::for_agent(&agent);
    agent.apply(
        "apiVersion: v1
kind: Service
metadata:
  name: dns-test-service-3
spec:
  type: ExternalName
  externalName: foo.example.com
",
    );
    let name = "dns-test-service-3.default.svc.cluster.local";
    let ask = |args: &[&str], expected: &[&str]| resolves(&agent, "client", args, expected);
    ask(
        &["-type=CNAME", name],
        &["canonical name = foo.example.com"],
    );

    let patch = |merge: &str| {
        let args = [
            "patch",
            "service",
            "dns-test-service-3",
            "--type",
            "merge",
            "-p",
            merge,
        ];
        kubectl.ok(&args)
    };
    patch(r#"{"spec":{"externalName":"bar.example.com"}}"#);
    ask(
        &["-type=CNAME", name],
        &["canonical name = bar.example.com"],
    );

    // As kube, the externalName left in place does not matter once the type is ClusterIP.
    patch(r#"{"spec":{"type":"ClusterIP","ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#);
    let ip = service_ip(&kubectl, "dns-test-service-3");
    assert!(!ip.is_empty() && ip != "None", "{ip}");
    let out = ask(&[name], &[&answer(&ip)]);
    assert!(!out.contains("canonical name"), "{out}");

    ask(&["outside.example"], &[&answer("192.0.2.7")]);
    let resolv = dir.path().join("resolv.conf");
    let rewritten = dir.path().join("resolv.conf.new");
    write_resolv_conf(&rewritten, NEW_UPSTREAM_ANSWER);
    std::fs::rename(&rewritten, &resolv).unwrap();
    ask(&["outside.example"], &[&answer("192.0.2.8")]);

    agent.ok(&["delete", "service", "dns-test-service-3"]);
    agent.service_leak_check(&ip, &[]);
    agent.delete_and_check("client", "0");
}
