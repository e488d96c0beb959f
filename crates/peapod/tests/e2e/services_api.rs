//! The Service API through the real kubectl, as kube-apiserver serves it: the `kubernetes`
//! Service at the range's first address with its Endpoints and EndpointSlice; `kubectl create
//! service` in its four kinds, headless Services and `kubectl expose`, printed with kubectl's
//! columns; cluster IPs and node ports from the agent's own ranges, a requested address
//! honoured and one taken or out of range refused with kube's messages; type changes giving
//! and taking node ports and cluster IPs; and nothing of a deleted Service left behind.

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// The agent's Service range as `100.x.y.` and its node ports as a range.
fn ranges(agent: &Agent) -> (String, std::ops::RangeInclusive<u16>) {
    let cidr = agent.service_cidr();
    let prefix = cidr.trim_end_matches("0/24").to_string();
    let ports = agent.node_port_range();
    let (first, last) = ports.split_once('-').unwrap();
    (prefix, first.parse().unwrap()..=last.parse().unwrap())
}

/// The row of `name` in `kubectl get <args>` (the AGE column left out).
fn row(kubectl: &Kubectl, args: &[&str], name: &str) -> Vec<String> {
    let out = kubectl.ok(args);
    let line = out
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{out}"));
    line.split_whitespace()
        .enumerate()
        .filter(|(at, _)| *at != 5)
        .map(|(_, cell)| cell.to_string())
        .collect()
}

fn field(kubectl: &Kubectl, service: &str, path: &str) -> String {
    kubectl.ok(&["get", "svc", service, "-o", &format!("jsonpath={path}")])
}

#[test]
fn services_are_created_allocated_and_printed_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let (prefix, node_ports) = ranges(&agent);

    // The apiserver's own Service, and its endpoints at the node's HTTPS listener.
    let kubernetes = kubectl.json(&["get", "svc", "kubernetes"]);
    assert_eq!(kubernetes["spec"]["clusterIP"], format!("{prefix}1"));
    assert_eq!(kubernetes["metadata"]["labels"]["provider"], "kubernetes");
    assert_eq!(kubernetes["spec"]["ports"][0]["name"], "https");
    let target = kubernetes["spec"]["ports"][0]["targetPort"]
        .as_i64()
        .unwrap();
    let endpoints = kubectl.ok(&["get", "ep", "kubernetes", "--no-headers"]);
    assert!(endpoints.contains(&format!(":{target} ")), "{endpoints}");
    let slice = row(
        &kubectl,
        &["get", "endpointslices", "kubernetes"],
        "kubernetes",
    );
    assert_eq!(slice[1..3], ["IPv4".to_string(), target.to_string()]);

    kubectl.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    let requested = format!("{prefix}50");
    kubectl.ok(&[
        "create",
        "service",
        "clusterip",
        "fixed",
        "--tcp=80",
        &format!("--clusterip={requested}"),
    ]);
    kubectl.ok(&["create", "service", "clusterip", "db", "--clusterip=None"]);
    kubectl.ok(&["create", "service", "nodeport", "np", "--tcp=80:8080"]);
    kubectl.ok(&[
        "create",
        "service",
        "externalname",
        "ext",
        "--external-name=example.com",
    ]);

    let web = kubectl.json(&["get", "svc", "web"]);
    let web_ip = web["spec"]["clusterIP"].as_str().unwrap().to_string();
    let last: u8 = web_ip.strip_prefix(&prefix).unwrap().parse().unwrap();
    assert!(
        last > 16,
        "{web_ip}: dynamic addresses come from the upper band"
    );
    assert_eq!(web["spec"]["clusterIPs"], serde_json::json!([web_ip]));
    assert_eq!(web["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(web["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(web["spec"]["sessionAffinity"], "None");
    assert_eq!(web["spec"]["internalTrafficPolicy"], "Cluster");
    let node_port: u16 = field(&kubectl, "np", "{.spec.ports[0].nodePort}")
        .parse()
        .unwrap();
    assert!(
        node_ports.contains(&node_port),
        "{node_port} outside {node_ports:?}"
    );
    let np_ip = field(&kubectl, "np", "{.spec.clusterIP}");

    let wide = ["get", "svc", "-o", "wide"];
    assert_eq!(
        row(&kubectl, &wide, "web"),
        ["web", "ClusterIP", &web_ip, "<none>", "80/TCP", "app=web"]
    );
    assert_eq!(
        row(&kubectl, &wide, "fixed"),
        [
            "fixed",
            "ClusterIP",
            &requested,
            "<none>",
            "80/TCP",
            "app=fixed"
        ]
    );
    assert_eq!(
        row(&kubectl, &wide, "db"),
        ["db", "ClusterIP", "None", "<none>", "<none>", "app=db"]
    );
    assert_eq!(
        row(&kubectl, &wide, "np"),
        [
            "np",
            "NodePort",
            &np_ip,
            "<none>",
            &format!("80:{node_port}/TCP"),
            "app=np"
        ]
    );
    assert_eq!(
        row(&kubectl, &wide, "ext"),
        [
            "ext",
            "ExternalName",
            "<none>",
            "example.com",
            "<none>",
            "app=ext"
        ]
    );

    let taken = kubectl.fails(&[
        "create",
        "service",
        "clusterip",
        "again",
        "--tcp=80",
        &format!("--clusterip={requested}"),
    ]);
    assert!(taken.contains(&format!(
        r#"Service "again" is invalid: spec.clusterIPs: Invalid value: []string{{"{requested}"}}: failed to allocate IP {requested}: provided IP is already allocated"#
    )), "{taken}");
    let outside = kubectl.fails(&[
        "create",
        "service",
        "clusterip",
        "out",
        "--tcp=80",
        "--clusterip=1.2.3.4",
    ]);
    assert!(outside.contains(&format!(
        r#"spec.clusterIPs: Invalid value: []string{{"1.2.3.4"}}: failed to allocate IP 1.2.3.4: the provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is {}"#,
        agent.service_cidr()
    )), "{outside}");
    let port_taken = kubectl.fails(&[
        "create",
        "service",
        "nodeport",
        "np2",
        "--tcp=81:8080",
        &format!("--node-port={node_port}"),
    ]);
    assert!(
        port_taken.contains(&format!(
        "spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated"
    )),
        "{port_taken}"
    );
    let port_outside = kubectl.fails(&[
        "create",
        "service",
        "nodeport",
        "np2",
        "--tcp=81:8080",
        "--node-port=29999",
    ]);
    assert!(port_outside.contains(&format!(
        "spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is {}",
        agent.node_port_range()
    )), "{port_outside}");
    let ghost = kubectl.fails(&["get", "svc", "again"]);
    assert!(ghost.contains("NotFound"), "{ghost}");

    // `kubectl expose` of a Deployment: its selector and ports.
    kubectl.ok(&[
        "create",
        "deployment",
        "shop",
        "--image=busybox",
        "--replicas=0",
    ]);
    kubectl.ok(&[
        "expose",
        "deployment",
        "shop",
        "--port=80",
        "--target-port=8080",
    ]);
    let shop = kubectl.json(&["get", "svc", "shop"]);
    assert_eq!(shop["spec"]["selector"]["app"], "shop");
    assert_eq!(shop["spec"]["ports"][0]["targetPort"], 8080);

    for name in ["web", "fixed", "db", "np", "ext", "shop"] {
        kubectl.ok(&["delete", "svc", name]);
    }
    kubectl.ok(&["delete", "deployment", "shop"]);
    agent.service_leak_check(&np_ip, &[node_port]);
    agent.service_leak_check(&web_ip, &[]);
}

#[test]
fn type_changes_give_and_take_node_ports_and_cluster_ips() {
    let (agent, kubectl) = start_with_kubectl();
    let (prefix, node_ports) = ranges(&agent);
    kubectl.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    let ip = field(&kubectl, "web", "{.spec.clusterIP}");

    kubectl.ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"type":"NodePort"}}"#,
    ]);
    let node_port: u16 = field(&kubectl, "web", "{.spec.ports[0].nodePort}")
        .parse()
        .unwrap();
    assert!(node_ports.contains(&node_port));
    assert_eq!(
        field(&kubectl, "web", "{.spec.clusterIP}"),
        ip,
        "the address is kept"
    );
    assert_eq!(
        field(&kubectl, "web", "{.spec.externalTrafficPolicy}"),
        "Cluster"
    );

    kubectl.ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    assert_eq!(field(&kubectl, "web", "{.spec.ports[0].nodePort}"), "");
    assert_eq!(field(&kubectl, "web", "{.spec.externalTrafficPolicy}"), "");
    // The released port is free for another Service.
    kubectl.ok(&[
        "create",
        "service",
        "nodeport",
        "other",
        "--tcp=81:8080",
        &format!("--node-port={node_port}"),
    ]);

    let elsewhere = format!("{prefix}{}", if ip.ends_with(".60") { 61 } else { 60 });
    let moved = kubectl.fails(&[
        "patch",
        "svc",
        "web",
        "-p",
        &format!(r#"{{"spec":{{"clusterIP":"{elsewhere}"}}}}"#),
    ]);
    assert!(moved.contains(&format!(
        r#"spec.clusterIPs[0]: Invalid value: []string{{"{elsewhere}"}}: may not change once set"#
    )), "{moved}");

    kubectl.ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"type":"ExternalName","externalName":"example.com"}}"#,
    ]);
    let spec = kubectl.json(&["get", "svc", "web"])["spec"].clone();
    assert_eq!(spec.get("clusterIP"), None, "{spec}");
    assert_eq!(spec.get("ipFamilies"), None, "{spec}");
    kubectl.ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    let again = field(&kubectl, "web", "{.spec.clusterIP}");
    assert!(
        !again.is_empty() && again != "None",
        "a new address: {again}"
    );

    kubectl.ok(&["delete", "svc", "web", "other"]);
    agent.service_leak_check(&ip, &[node_port]);
    agent.service_leak_check(&again, &[]);
}
