//! Single-node cases of kube's test/e2e/network/service.go (and sctp.go) not covered by
//! services_api, services_proxy, scenarios_services and endpoints: multiport endpoints,
//! type changes from and back to ExternalName with traffic, the client's pod IP kept through
//! a ClusterIP, ClientIP affinity timing out, a NodePort Service gaining a UDP port of the
//! same number, the status lifecycle, Services labelled for another proxy or as headless,
//! loadBalancerSourceRanges, the Service range refusing or dropping what no Service port
//! takes, and SCTP ports.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::start_with_kubectl;
use crate::common::*;
use crate::services_proxy::{
    agent_port, assert_refused_at_once, client_pod, cluster_ip, delete_pods, delete_service,
    host_ip, http_get, service, wait_answer, wait_answer_in_pod, wait_refused, web_pod, WAIT,
};

/// A pod labelled `labels` answering its name on `port`, whose container port is named
/// `port_name`.
fn named_port_pod(name: &str, labels: &str, port: u16, port_name: &str) -> String {
    web_pod(name, labels)
        .replace("-p 8080", &format!("-p {port}"))
        .replace(
            "-h /www']\n",
            &format!("-h /www']\n    ports: [{{name: {port_name}, containerPort: {port}}}]\n"),
        )
}

/// A second client pod, `name`.
fn other_client(agent: &Agent, name: &str) {
    agent.apply(&CLIENT_POD.replace("name: client", &format!("name: {name}")));
    agent.wait_running(name);
}

fn pod_ip(agent: &Agent, pod: &str) -> String {
    let pod = agent.pod(pod).expect("the pod");
    pod["status"]["podIP"].as_str().expect("podIP").to_string()
}

fn service_json(agent: &Agent, name: &str) -> Value {
    serde_json::from_str(&agent.ok(&["get", "service", name, "-o", "json"])).unwrap()
}

/// From pod `from`, GET `path` of host:port with nc: the body, or None when it fails.
fn get_in_pod(agent: &Agent, from: &str, host: &str, port: u16, path: &str) -> Option<String> {
    let script = format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} {port}");
    let (code, out, _) = agent.exec(from, "main", &["sh", "-c", &script]);
    // CGI scripts may end their headers with a bare newline.
    let (head, body) = out
        .split_once("\r\n\r\n")
        .or_else(|| out.split_once("\n\n"))?;
    (code == 0 && head.contains(" 200 ")).then(|| body.trim().to_string())
}

/// The (address, port name, port) triples of the Endpoints object `name`.
fn endpoint_ports(agent: &Agent, name: &str) -> BTreeSet<(String, String, u64)> {
    let out = agent.cli(&["get", "endpoints", name, "-o", "json"]);
    let endpoints: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut found = BTreeSet::new();
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        for address in subset["addresses"].as_array().into_iter().flatten() {
            for port in subset["ports"].as_array().into_iter().flatten() {
                found.insert((
                    address["ip"].as_str().unwrap_or_default().to_string(),
                    port["name"].as_str().unwrap_or_default().to_string(),
                    port["port"].as_u64().unwrap_or_default(),
                ));
            }
        }
    }
    found
}

fn wait_endpoint_ports(agent: &Agent, name: &str, expected: &BTreeSet<(String, String, u64)>) {
    let last = poll(
        WAIT,
        Duration::from_millis(200),
        || endpoint_ports(agent, name),
        |found| found == expected,
    );
    assert_eq!(&last, expected, "the endpoints of {name}");
}

/// "should serve multiport endpoints from pods": each named target port reaches the pod
/// that has it, and the Endpoints follow the pods.
#[test]
fn multiport_endpoints_are_served_from_the_pods_that_have_each_port() {
    let agent = Agent::start();
    let ip = cluster_ip(&agent, 31);
    let manifest = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: multi\nspec:\n  clusterIP: {ip}\n  \
         selector: {{app: multi}}\n  ports:\n  - {{name: portname1, port: 80, targetPort: svc1}}\n  \
         - {{name: portname2, port: 81, targetPort: svc2}}\n"
    );
    agent.apply(&manifest);
    wait_endpoint_ports(&agent, "multi", &BTreeSet::new());
    agent.apply(&named_port_pod("multi-1", "{app: multi}", 8081, "svc1"));
    agent.apply(&named_port_pod("multi-2", "{app: multi}", 8082, "svc2"));
    client_pod(&agent);
    agent.wait_running("multi-1");
    agent.wait_running("multi-2");
    let (first, second) = (pod_ip(&agent, "multi-1"), pod_ip(&agent, "multi-2"));
    let both: BTreeSet<_> = [
        (first.clone(), "portname1".to_string(), 8081),
        (second.clone(), "portname2".to_string(), 8082),
    ]
    .into();
    wait_endpoint_ports(&agent, "multi", &both);
    wait_answer_in_pod(&agent, "client", &ip, 80, "multi-1");
    wait_answer_in_pod(&agent, "client", &ip, 81, "multi-2");

    delete_pods(&agent, &["multi-1"]);
    let only_second: BTreeSet<_> = [(second, "portname2".to_string(), 8082)].into();
    wait_endpoint_ports(&agent, "multi", &only_second);
    wait_refused(&agent, &format!("{ip}:80"));
    wait_answer_in_pod(&agent, "client", &ip, 81, "multi-2");
    delete_pods(&agent, &["multi-2"]);
    wait_endpoint_ports(&agent, "multi", &BTreeSet::new());

    delete_service(&agent, "multi", &ip, &[]);
    delete_pods(&agent, &["client"]);
}

fn external_name(name: &str, target: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: ExternalName\n  \
         externalName: {target}\n"
    )
}

/// "should be able to change the type from ExternalName to ClusterIP", "... to NodePort",
/// and "from NodePort to ExternalName": traffic follows each type, and what the Service held
/// is released.
#[test]
fn external_name_becomes_cluster_ip_then_node_port_and_back() {
    let agent = Agent::start();
    agent.apply(&web_pod("web-a", "{app: ext}"));
    client_pod(&agent);
    agent.wait_running("web-a");
    agent.apply(&external_name("ext", "example.com"));
    let spec = &service_json(&agent, "ext")["spec"];
    assert_eq!(spec.get("clusterIP"), None, "{spec}");

    let cluster = service("ext", "", "{app: ext}", "").replace("  clusterIP: \n", "");
    agent.apply(&cluster);
    let ip = service_json(&agent, "ext")["spec"]["clusterIP"]
        .as_str()
        .expect("a cluster IP")
        .to_string();
    wait_answer_in_pod(&agent, "client", &ip, 80, "web-a");
    wait_answer_in_pod(&agent, "client", "ext", 80, "web-a");

    agent.apply(&cluster.replace("spec:\n", "spec:\n  type: NodePort\n"));
    let svc = service_json(&agent, "ext");
    assert_eq!(svc["spec"]["clusterIP"], ip.as_str(), "the address is kept");
    let node_port = svc["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("a NodePort") as u16;
    let node = host_ip(&agent, "web-a");
    wait_answer(&agent, &format!("{node}:{node_port}"), &["web-a"]);
    wait_answer_in_pod(&agent, "client", &ip, 80, "web-a");

    let target_ip = cluster_ip(&agent, 32);
    agent.apply(&service("target", &target_ip, "{app: ext}", ""));
    agent.apply(&external_name("ext", "target.default.svc.cluster.local"));
    let spec = &service_json(&agent, "ext")["spec"];
    assert_eq!(spec.get("clusterIP"), None, "{spec}");
    assert_eq!(spec["ports"][0].get("nodePort"), None, "{spec}");
    wait_answer_in_pod(&agent, "client", "ext", 80, "web-a");
    wait_until(WAIT, "the old address to leave the rules", || {
        !agent.ruleset().contains(&format!("{ip} "))
    });
    agent.service_leak_check(&ip, &[node_port]);

    agent.ok(&["delete", "service", "ext"]);
    delete_service(&agent, "target", &target_ip, &[]);
    delete_pods(&agent, &["web-a", "client"]);
}

/// A pod labelled app=echo whose /cgi-bin/ip answers the address the request came from.
const ECHO_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: echo
  labels: {app: echo}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command:
    - sh
    - -c
    - |
      mkdir -p /www/cgi-bin
      { echo '#!/bin/sh'; echo 'echo Content-Type: text/plain'; echo 'echo'; echo 'echo $REMOTE_ADDR'; } > /www/cgi-bin/ip
      chmod +x /www/cgi-bin/ip
      exec httpd -f -p 8080 -h /www
"#;

/// "should preserve source pod IP for traffic thru service cluster IP".
#[test]
fn the_client_pod_ip_is_preserved_through_the_cluster_ip() {
    let agent = Agent::start();
    agent.apply(ECHO_POD);
    client_pod(&agent);
    agent.wait_running("echo");
    let ip = cluster_ip(&agent, 33);
    agent.apply(&service("echo", &ip, "{app: echo}", ""));
    let client = pod_ip(&agent, "client");
    let seen = poll(
        WAIT,
        Duration::from_millis(200),
        || get_in_pod(&agent, "client", &ip, 80, "/cgi-bin/ip"),
        |answer| answer.is_some(),
    );
    // httpd listens on both families: an IPv4 client is written as a mapped IPv6 address.
    let seen = seen.map(|s| {
        let bare = s.trim_matches(['[', ']']);
        bare.trim_start_matches("::ffff:").to_string()
    });
    assert_eq!(
        seen.as_deref(),
        Some(client.as_str()),
        "{}",
        agent.ruleset()
    );

    delete_service(&agent, "echo", &ip, &[]);
    delete_pods(&agent, &["echo", "client"]);
}

/// "should have session affinity timeout work for service with type clusterIP": a client
/// sticks to one pod while it keeps coming, and is balanced again once it stayed away
/// longer than the timeout.
#[test]
fn client_ip_affinity_ends_after_its_timeout() {
    const TIMEOUT: u64 = 2;
    let agent = Agent::start();
    let names = ["aff-a", "aff-b", "aff-c"];
    for name in names {
        agent.apply(&web_pod(name, "{app: aff}"));
    }
    for name in names {
        agent.wait_running(name);
    }
    let ip = cluster_ip(&agent, 34);
    let spec = format!(
        "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {{clientIP: {{timeoutSeconds: {TIMEOUT}}}}}\n"
    );
    agent.apply(&service("aff", &ip, "{app: aff}", &spec));
    let addr = format!("{ip}:80");
    let first = wait_answer(&agent, &addr, &names);
    for _ in 0..10 {
        assert_eq!(http_get(&addr).expect("the Service answers"), first);
    }
    let mut hosts = BTreeSet::from([first]);
    for _ in 0..15 {
        std::thread::sleep(Duration::from_secs(TIMEOUT + 1));
        hosts.insert(http_get(&addr).expect("the Service answers"));
        if hosts.len() > 1 {
            break;
        }
    }
    assert!(hosts.len() > 1, "still sticky after the timeout: {hosts:?}");

    delete_service(&agent, "aff", &ip, &[]);
    delete_pods(&agent, &names);
}

/// "should be able to update service type to NodePort listening on same port number but
/// different protocols": a TCP ClusterIP Service becomes a NodePort, then gains a UDP port
/// of the same number; each gets a NodePort of its own and the rules for it.
#[test]
fn a_node_port_service_gains_a_udp_port_of_the_same_number() {
    let agent = Agent::start();
    agent.apply(&web_pod("web-a", "{app: proto}"));
    agent.wait_running("web-a");
    let ip = cluster_ip(&agent, 35);
    let tcp = service("proto", &ip, "{app: proto}", "");
    agent.apply(&tcp);
    wait_answer(&agent, &format!("{ip}:80"), &["web-a"]);

    let node_port = tcp
        .replace("spec:\n", "spec:\n  type: NodePort\n")
        .replace("name: http\n", "name: tcp-port\n");
    agent.apply(&node_port);
    let node = host_ip(&agent, "web-a");
    let tcp_node_port = service_json(&agent, "proto")["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("a NodePort") as u16;
    wait_answer(&agent, &format!("{node}:{tcp_node_port}"), &["web-a"]);

    let udp_port = "  - name: udp-port\n    port: 80\n    protocol: UDP\n    targetPort: 8080\n";
    agent.apply(&format!("{node_port}{udp_port}"));
    let ports = service_json(&agent, "proto")["spec"]["ports"].clone();
    assert_eq!(ports.as_array().map(Vec::len), Some(2), "{ports}");
    assert_eq!(
        ports[0]["nodePort"], tcp_node_port,
        "the TCP NodePort is kept"
    );
    let udp_node_port = ports[1]["nodePort"].as_u64().expect("a UDP NodePort") as u16;
    assert_eq!(ports[1]["protocol"], "UDP");
    let udp_rule = format!("udp . {udp_node_port} : goto ext-");
    wait_until(WAIT, "the UDP NodePort's rules", || {
        agent.ruleset().contains(&udp_rule)
    });
    assert!(agent
        .ruleset()
        .contains(&format!("{ip} . udp . 80 : goto svc-")));
    wait_answer(&agent, &format!("{node}:{tcp_node_port}"), &["web-a"]);

    delete_service(&agent, "proto", &ip, &[tcp_node_port, udp_node_port]);
    delete_pods(&agent, &["web-a"]);
}

/// "should complete a service status lifecycle": /status read, patched (metadata with
/// it) and updated with a condition, the Service patched and deleted by label.
#[test]
fn a_service_status_goes_through_its_lifecycle() {
    let (agent, kubectl) = start_with_kubectl();
    let labels = "test-service-static=true";
    kubectl.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: test-service\n  labels: {test-service-static: 'true'}\n\
         spec:\n  type: LoadBalancer\n  ports:\n  - {name: http, protocol: TCP, port: 80, targetPort: 80}\n",
    );
    let listed = kubectl.json(&["get", "services", "-A", "-l", labels]);
    assert_eq!(listed["items"][0]["metadata"]["name"], "test-service");
    let path = "/api/v1/namespaces/default/services/test-service/status";
    let status: Value = serde_json::from_str(&kubectl.ok(&["get", "--raw", path])).unwrap();
    assert_eq!(status["kind"], "Service", "{status}");
    let ip = status["spec"]["clusterIP"].as_str().unwrap().to_string();
    let node_port = status["spec"]["ports"][0]["nodePort"].as_u64().unwrap() as u16;

    let patch = r#"{"metadata":{"annotations":{"patchedstatus":"true"}},"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.1"}]}}}"#;
    kubectl.ok(&[
        "patch",
        "service",
        "test-service",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ]);
    let patched = kubectl.json(&["get", "service", "test-service"]);
    assert_eq!(
        patched["metadata"]["annotations"]["patchedstatus"], "true",
        "{patched}"
    );

    let mut current = kubectl.json(&["get", "service", "test-service"]);
    // kube's test leaves lastTransitionTime zero (null in JSON), which peapod's typed
    // decoding refuses; a time is given instead.
    current["status"]["conditions"] = serde_json::json!([{
        "type": "StatusUpdate", "status": "True", "reason": "E2E",
        "message": "Set from e2e test", "lastTransitionTime": "2026-01-01T00:00:00Z",
    }]);
    kubectl.with_manifest(&["replace", "--subresource=status"], &current.to_string());
    let updated = kubectl.json(&["get", "service", "test-service"]);
    let condition = &updated["status"]["conditions"][0];
    assert_eq!(
        (
            &condition["type"],
            &condition["reason"],
            &condition["message"]
        ),
        (
            &"StatusUpdate".into(),
            &"E2E".into(),
            &"Set from e2e test".into()
        ),
        "{updated}"
    );

    kubectl.ok(&[
        "patch",
        "service",
        "test-service",
        "-p",
        r#"{"metadata":{"labels":{"test-service":"patched"}}}"#,
    ]);
    let patched = kubectl.json(&["get", "service", "test-service"]);
    assert_eq!(patched["metadata"]["labels"]["test-service"], "patched");
    kubectl.ok(&["delete", "services", "-l", labels]);
    let left = kubectl.json(&["get", "services", "-A", "-l", labels]);
    assert_eq!(left["items"], serde_json::json!([]));
    wait_until(WAIT, "the Service's rules to go", || {
        !agent.ruleset().contains("-default/test-service/")
    });
    agent.service_leak_check(&ip, &[node_port]);
}

/// `service` with `labels` (YAML flow map) on its metadata.
fn labelled(service: &str, labels: &str) -> String {
    service.replacen("spec:\n", &format!("  labels: {labels}\nspec:\n"), 1)
}

/// Whether a connection to `addr` from the host times out (dropped, not refused).
fn dropped(addr: &str) -> bool {
    let socket: SocketAddr = addr.parse().unwrap();
    let result = TcpStream::connect_timeout(&socket, Duration::from_secs(2));
    matches!(&result, Err(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// "should implement service.kubernetes.io/service-proxy-name" and "should implement
/// service.kubernetes.io/headless": the proxy leaves a Service so labelled alone until the
/// label goes, and again once it is back.
#[test]
fn services_labelled_for_another_proxy_or_headless_are_left_alone() {
    let agent = Agent::start();
    agent.apply(&web_pod("web-a", "{app: skip}"));
    agent.wait_running("web-a");
    let cases = [
        (
            "elsewhere",
            cluster_ip(&agent, 39),
            "{service.kubernetes.io/service-proxy-name: foo-bar}",
        ),
        (
            "hidden",
            cluster_ip(&agent, 40),
            "{service.kubernetes.io/headless: ''}",
        ),
    ];
    for (name, ip, label) in &cases {
        agent.apply(&labelled(&service(name, ip, "{app: skip}", ""), label));
    }
    let plain = cluster_ip(&agent, 41);
    agent.apply(&service("plain", &plain, "{app: skip}", ""));
    wait_answer(&agent, &format!("{plain}:80"), &["web-a"]);
    for (name, ip, label) in &cases {
        let addr = format!("{ip}:80");
        assert!(
            !agent.ruleset().contains(ip.as_str()),
            "{name}: {}",
            agent.ruleset()
        );
        assert!(dropped(&addr), "{name} should not be served");
        agent.apply(&service(name, ip, "{app: skip}", ""));
        wait_answer(&agent, &addr, &["web-a"]);
        agent.apply(&labelled(&service(name, ip, "{app: skip}", ""), label));
        wait_until(WAIT, "the labelled Service's rules to go", || {
            !agent.ruleset().contains(ip.as_str())
        });
        assert!(dropped(&addr), "{name} should not be served again");
        delete_service(&agent, name, ip, &[]);
    }
    delete_service(&agent, "plain", &plain, &[]);
    delete_pods(&agent, &["web-a"]);
}

/// Whether `from` gets an answer from host:port within two seconds.
fn answers_in_pod(agent: &Agent, from: &str, host: &str, port: u16) -> bool {
    get_in_pod(agent, from, host, port, "/").is_some()
}

/// Waits until exactly the clients `allowed` of `clients` reach host:port.
fn wait_admitted(agent: &Agent, clients: &[&str], allowed: &[&str], host: &str, port: u16) {
    let expected: Vec<bool> = clients.iter().map(|c| allowed.contains(c)).collect();
    let last = poll(
        WAIT,
        Duration::from_millis(200),
        || -> Vec<bool> {
            clients
                .iter()
                .map(|c| answers_in_pod(agent, c, host, port))
                .collect()
        },
        |reached| *reached == expected,
    );
    assert_eq!(
        last,
        expected,
        "of {clients:?} only {allowed:?} should reach {host}:{port}\n{}",
        agent.ruleset()
    );
}

/// loadBalancerSourceRanges ("should only allow access from service loadbalancer source
/// ranges"): the LoadBalancer address answers only the clients of the ranges, which can
/// change; the NodePort stays open to all, as in kube.
#[test]
fn load_balancer_source_ranges_admit_only_their_clients() {
    let agent = Agent::start();
    agent.apply(&web_pod("web-a", "{app: fw}"));
    client_pod(&agent);
    other_client(&agent, "client-b");
    agent.wait_running("web-a");
    let (a, b) = (pod_ip(&agent, "client"), pod_ip(&agent, "client-b"));
    let ip = cluster_ip(&agent, 36);
    let (lb_port, node_port) = (agent_port(&agent, 24), agent_port(&agent, 25));
    let manifest = |ranges: &str| {
        service(
            "fw",
            &ip,
            "{app: fw}",
            &format!("  type: LoadBalancer\n{ranges}"),
        )
        .replace("port: 80\n", &format!("port: {lb_port}\n"))
        .replace(
            "targetPort: 8080\n",
            &format!("targetPort: 8080\n    nodePort: {node_port}\n"),
        )
    };
    agent.apply(&manifest(&format!(
        "  loadBalancerSourceRanges: [{a}/32]\n"
    )));
    let node = host_ip(&agent, "web-a");
    wait_until(WAIT, "the LoadBalancer address", || {
        service_json(&agent, "fw")["status"]["loadBalancer"]["ingress"][0]["ip"] == node.as_str()
    });
    let clients = ["client", "client-b"];
    wait_admitted(&agent, &clients, &["client"], &node, lb_port);
    wait_admitted(&agent, &clients, &clients, &node, node_port);

    agent.apply(&manifest(&format!(
        "  loadBalancerSourceRanges: [' {b}/32 ']\n"
    )));
    wait_admitted(&agent, &clients, &["client-b"], &node, lb_port);
    agent.apply(&manifest(""));
    wait_admitted(&agent, &clients, &clients, &node, lb_port);
    assert!(
        !agent.ruleset().contains("chain fw-"),
        "{}",
        agent.ruleset()
    );

    delete_service(&agent, "fw", &ip, &[node_port, lb_port]);
    delete_pods(&agent, &["web-a", "client", "client-b"]);
}

/// kube-proxy's `cluster-ips-check`: a ClusterIP refuses the ports its Service does not
/// have, and an address of the range no Service holds drops what is sent to it.
#[test]
fn the_service_range_refuses_unknown_ports_and_drops_unallocated_addresses() {
    let agent = Agent::start();
    agent.apply(&web_pod("web-a", "{app: range}"));
    client_pod(&agent);
    agent.wait_running("web-a");
    let ip = cluster_ip(&agent, 37);
    agent.apply(&service("range", &ip, "{app: range}", ""));
    wait_answer(&agent, &format!("{ip}:80"), &["web-a"]);
    wait_until(WAIT, "the ClusterIP to be in use", || {
        agent
            .ruleset()
            .contains(&format!("{ip} : goto proxy-reject"))
    });

    assert_refused_at_once(&agent, &format!("{ip}:81"));
    let script = format!("nc -w 2 {ip} 81 </dev/null; echo exit=$?");
    let (_, out, err) = agent.exec("client", "main", &["sh", "-c", &script]);
    assert!(
        out.contains("exit=1") && err.contains("refused"),
        "{out} {err}"
    );

    let unallocated = cluster_ip(&agent, 200);
    let socket: SocketAddr = format!("{unallocated}:80").parse().unwrap();
    let result = TcpStream::connect_timeout(&socket, Duration::from_secs(2));
    assert!(
        matches!(&result, Err(e) if e.kind() == std::io::ErrorKind::TimedOut),
        "{unallocated} should drop: {result:?}"
    );
    let script = format!("nc -w 2 {unallocated} 80 </dev/null; echo exit=$?");
    let (_, out, err) = agent.exec("client", "main", &["sh", "-c", &script]);
    assert!(
        out.contains("exit=1") && !err.contains("refused"),
        "{out} {err}"
    );

    delete_service(&agent, "range", &ip, &[]);
    let script = format!("nc -w 2 {ip} 80 </dev/null; echo exit=$?");
    let (_, out, err) = agent.exec("client", "main", &["sh", "-c", &script]);
    assert!(
        out.contains("exit=1") && !err.contains("refused"),
        "a deleted Service's address drops: {out} {err}"
    );
    delete_pods(&agent, &["web-a", "client"]);
}

/// sctp.go's "should create a ClusterIP Service with SCTP ports": SCTP ports get rules as
/// TCP and UDP ones where netfilter tracks SCTP; elsewhere the agent says why they get none.
#[test]
fn sctp_ports_get_rules_where_the_kernel_tracks_sctp() {
    let agent = Agent::start();
    let ip = cluster_ip(&agent, 38);
    let sctp_port = "  - name: sctp\n    port: 80\n    protocol: SCTP\n    targetPort: 8080\n";
    agent.apply(&format!(
        "{}{sctp_port}",
        service("sctp", &ip, "{app: sctp}", "")
    ));
    wait_refused(&agent, &format!("{ip}:80"));
    let tracked =
        std::path::Path::new("/proc/sys/net/netfilter/nf_conntrack_sctp_timeout_established")
            .exists();
    let rule = format!("{ip} . sctp . 80 : goto proxy-reject");
    if tracked {
        wait_until(WAIT, "the SCTP port's rules", || {
            agent.ruleset().contains(&rule)
        });
    } else {
        wait_until(WAIT, "the agent to say SCTP is unavailable", || {
            agent
                .agent_log()
                .contains("SCTP is unavailable on this host")
        });
        assert!(!agent.ruleset().contains(&rule), "{}", agent.ruleset());
    }
    delete_service(&agent, "sctp", &ip, &[]);
}
