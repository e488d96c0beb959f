//! S20 (../shared/SCENARIOS.md) as a user lives it with the real kubectl: a Deployment
//! exposed with `kubectl expose`, reached from another pod by its cluster IP, its
//! environment variables and its DNS names, spread over the ready pods, from the host
//! through a NodePort and `kubectl port-forward svc/...`, headless and ExternalName
//! Services answering in DNS; each judged by what comes back, then nothing of it left.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// Three busybox httpd pods answering their own name on 8080, ready once they serve.
const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 1
";

fn in_client(kubectl: &Kubectl, script: &str) -> String {
    kubectl.ok(&["exec", "client", "--", "sh", "-c", script])
}

/// The pod names that answered `host`:`port` over `times` requests from the client pod
/// (busybox `nc`: Debian's static busybox `wget` crashes on IP-literal URLs).
fn answers(kubectl: &Kubectl, host: &str, port: &str, times: usize) -> BTreeSet<String> {
    let request = r"printf 'GET / HTTP/1.0\r\n\r\n'";
    let script =
        format!("for i in $(seq {times}); do {request} | nc -w 5 {host} {port} | tail -n 1; done");
    in_client(kubectl, &script)
        .lines()
        .map(str::to_owned)
        .filter(|line| !line.is_empty())
        .collect()
}

fn web_pods(kubectl: &Kubectl) -> BTreeSet<String> {
    kubectl
        .ok(&["get", "pods", "-l", "app=web", "-o", "name"])
        .lines()
        .map(|line| line.trim_start_matches("pod/").to_owned())
        .collect()
}

fn service(kubectl: &Kubectl, name: &str) -> Value {
    kubectl.json(&["get", "service", name])
}

fn pod_uids(kubectl: &Kubectl, selector: &str) -> BTreeSet<String> {
    let pods = kubectl.json(&["get", "pods", "-l", selector]);
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|pod| pod["metadata"]["uid"].as_str().map(str::to_owned))
        .collect()
}

/// Deletes the Services, the client and the Deployment, then checks that none of them
/// left anything behind.
fn tear_down(agent: &Agent, kubectl: &Kubectl, services: &[&str]) {
    let mut uids = pod_uids(kubectl, "app=web");
    uids.extend(pod_uids(kubectl, "role=client"));
    let mut gone = Vec::new();
    for name in services {
        let svc = service(kubectl, name);
        let ip = svc["spec"]["clusterIP"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
        let node_ports: Vec<u16> = ports
            .iter()
            .filter_map(|p| p["nodePort"].as_u64().and_then(|n| u16::try_from(n).ok()))
            .collect();
        kubectl.ok(&["delete", "service", name]);
        gone.push((ip, node_ports));
    }
    kubectl.ok(&["delete", "deployment", "web"]);
    kubectl.ok(&["delete", "pods", "-l", "role=client", "--wait=true"]);
    wait_until(Duration::from_secs(30), "the pods to go", || {
        pod_uids(kubectl, "app=web").is_empty()
    });
    for (ip, node_ports) in gone.iter().filter(|(ip, _)| ip.contains('.')) {
        wait_until(Duration::from_secs(10), "the Service's rules to go", || {
            !agent.ruleset().contains(ip.as_str())
        });
        agent.service_leak_check(ip, node_ports);
    }
    for uid in &uids {
        agent.leak_check(uid);
    }
}

#[test]
fn s20_a_deployment_behind_a_service_is_reached_by_ip_env_and_names() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(WEB);
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert_eq!(
        kubectl.ok(&[
            "expose",
            "deployment",
            "web",
            "--port=80",
            "--target-port=http"
        ]),
        "service/web exposed\n"
    );
    let web = service(&kubectl, "web");
    let ip = web["spec"]["clusterIP"].as_str().unwrap().to_owned();
    kubectl.apply(CLIENT_POD);
    kubectl.ok(&[
        "wait",
        "pod/client",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);

    let env = in_client(&kubectl, "env");
    assert!(env.contains(&format!("WEB_SERVICE_HOST={ip}\n")), "{env}");
    assert!(env.contains("WEB_SERVICE_PORT=80\n"), "{env}");
    assert!(
        env.contains(&format!("WEB_PORT_80_TCP=tcp://{ip}:80\n")),
        "{env}"
    );
    assert!(env.contains("KUBERNETES_SERVICE_HOST="), "{env}");

    let pods = web_pods(&kubectl);
    let spread = answers(&kubectl, &ip, "80", 30);
    assert!(
        spread.len() >= 2 && spread.is_subset(&pods),
        "{spread:?} of {pods:?}"
    );
    let by_env = answers(&kubectl, "$WEB_SERVICE_HOST", "$WEB_SERVICE_PORT", 3);
    assert!(by_env.is_subset(&pods), "{by_env:?}");
    for name in ["web", "web.default", "web.default.svc.cluster.local"] {
        let answered = answers(&kubectl, name, "80", 3);
        assert!(
            !answered.is_empty() && answered.is_subset(&pods),
            "{name}: {answered:?}"
        );
    }
    let resolv = in_client(&kubectl, "cat /etc/resolv.conf");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local")
            && resolv.contains("options ndots:5"),
        "{resolv}"
    );

    tear_down(&agent, &kubectl, &["web"]);
}

#[test]
fn s20_session_affinity_keeps_a_client_on_one_pod() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(WEB);
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    kubectl.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ]);
    kubectl.ok(&[
        "patch",
        "service",
        "web",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    let web = service(&kubectl, "web");
    assert_eq!(
        web["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800,
        "{web:#}"
    );
    kubectl.apply(CLIENT_POD);
    kubectl.ok(&[
        "wait",
        "pod/client",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);
    let answered = answers(&kubectl, "web", "80", 20);
    assert_eq!(answered.len(), 1, "{answered:?}");
    tear_down(&agent, &kubectl, &["web"]);
}

#[test]
fn s20_node_ports_and_port_forward_reach_the_pods_from_the_host() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(WEB);
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    kubectl.ok(&[
        "expose",
        "deployment",
        "web",
        "--type=NodePort",
        "--port=80",
        "--target-port=8080",
    ]);
    let web = service(&kubectl, "web");
    let node_port = web["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    let range = agent.node_port_range();
    let (low, high) = range.split_once('-').unwrap();
    assert!(
        (low.parse().unwrap()..=high.parse().unwrap()).contains(&node_port),
        "{node_port} outside {range}"
    );
    let pods = web_pods(&kubectl);
    let url = format!("http://127.0.0.1:{node_port}/");
    let body = poll(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || host_get(&url),
        Option::is_some,
    )
    .expect("the NodePort answers on 127.0.0.1");
    assert!(pods.contains(body.trim()), "{body} of {pods:?}");

    let forward = kubectl.start(&["port-forward", "service/web", ":80"]);
    let out = forward.wait_for("its forwarding line", |out| out.contains(" -> 8080"));
    let local = out
        .lines()
        .find_map(|l| l.strip_prefix("Forwarding from 127.0.0.1:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let body = host_get(&format!("http://127.0.0.1:{local}/")).unwrap();
    assert!(pods.contains(body.trim()), "{body}");
    forward.stop();
    tear_down(&agent, &kubectl, &["web"]);
    assert_eq!(host_get(&url), None, "the NodePort closed");
}

#[test]
fn s20_headless_and_external_name_services_answer_in_dns() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(WEB);
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    kubectl.apply(
        "apiVersion: v1
kind: Service
metadata:
  name: web-direct
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: http, port: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: docs
spec:
  type: ExternalName
  externalName: docs.example.com
",
    );
    kubectl.apply(CLIENT_POD);
    kubectl.ok(&[
        "wait",
        "pod/client",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);
    let ips: BTreeSet<String> = kubectl
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.status.podIP}{\"\\n\"}{end}",
        ])
        .lines()
        .map(str::to_owned)
        .collect();
    let headless = in_client(&kubectl, "nslookup web-direct.default.svc.cluster.local");
    for ip in &ips {
        assert!(headless.contains(ip.as_str()), "{ip} in {headless}");
    }
    let external = in_client(
        &kubectl,
        "nslookup -type=CNAME docs.default.svc.cluster.local",
    );
    assert!(external.contains("docs.example.com"), "{external}");
    tear_down(&agent, &kubectl, &["web-direct", "docs"]);
}

/// A GET from the host with curl: the body, or None when nothing answered.
fn host_get(url: &str) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "3", url])
        .output()
        .ok()?;
    out.status.success().then(|| text(&out.stdout))
}
