//! The real kubectl against an agent on a temporary root, with nothing but the kubeconfig the
//! agent wrote: discovery and api-resources, server-side tables, the seed's S1 pod applied,
//! read, labelled, patched (all three types), logged and deleted, ConfigMaps created and
//! edited, namespaces created and deleted with their content, and errors worded as a cluster
//! words them.

use std::time::Duration;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;
use serde_json::Value;

#[test]
fn discovery_tables_and_errors_read_as_a_cluster_s() {
    let (agent, kubectl) = start_with_kubectl();
    let version = kubectl.ok(&["version"]);
    assert!(version.contains("Server Version: v1.32"), "{version}");

    let resources = kubectl.ok(&["api-resources"]);
    let row = |name: &str| {
        resources
            .lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in api-resources:\n{resources}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("pods"), ["pods", "po", "v1", "true", "Pod"]);
    assert_eq!(
        row("namespaces"),
        ["namespaces", "ns", "v1", "false", "Namespace"]
    );
    assert_eq!(
        row("configmaps"),
        ["configmaps", "cm", "v1", "true", "ConfigMap"]
    );

    let namespaces = kubectl.ok(&["get", "namespaces"]);
    assert_eq!(
        namespaces.lines().next().map(columns_of),
        Some(vec!["NAME", "STATUS", "AGE"])
    );
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            namespaces
                .lines()
                .any(|l| l.starts_with(name) && l.contains("Active")),
            "{namespaces}"
        );
    }

    let missing = kubectl.fails(&["get", "pod", "nosuch"]);
    assert_eq!(
        missing.trim(),
        r#"Error from server (NotFound): pods "nosuch" not found"#
    );
    let unknown = kubectl.fails(&["get", "widgets"]);
    assert!(
        unknown.contains(r#"the server doesn't have a resource type "widgets""#),
        "{unknown}"
    );
    let no_pods = kubectl.run(&["get", "pods"], None);
    assert!(no_pods.status.success());
    assert_eq!(
        text(&no_pods.stderr).trim(),
        "No resources found in default namespace."
    );
    drop(agent);
}

fn columns_of(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn the_s1_pod_through_kubectl() {
    let (agent, kubectl) = start_with_kubectl();
    let manifest = example_text("s1-web-content-sidecar.yaml");
    let applied = kubectl.apply(&manifest);
    assert!(applied.contains("created"), "{applied}");
    let name = serde_yaml_ng::from_str::<Value>(&manifest).unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    agent.wait_running(&name);
    kubectl.ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{name}"),
        "--timeout=60s",
    ]);

    let table = kubectl.ok(&["get", "pods"]);
    let header = table.lines().next().map(columns_of);
    assert_eq!(
        header,
        Some(vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"])
    );
    let row = table.lines().nth(1).map(columns_of).unwrap();
    assert_eq!(&row[..4], [name.as_str(), "2/2", "Running", "0"], "{table}");

    let wide = kubectl.ok(&["get", "pods", "-o", "wide"]);
    let pod = kubectl.json(&["get", "pod", &name]);
    let ip = pod["status"]["podIP"].as_str().unwrap();
    assert!(
        wide.contains(ip) && wide.contains("NOMINATED NODE"),
        "{wide}"
    );
    assert_eq!(pod["status"]["phase"], "Running");
    let jsonpath = kubectl.ok(&["get", "pod", &name, "-o", "jsonpath={.status.podIP}"]);
    assert_eq!(jsonpath, ip);
    assert_eq!(
        kubectl.ok(&["get", "pods", "-o", "name"]).trim(),
        format!("pod/{name}")
    );
    let all = kubectl.ok(&["get", "pods", "-A"]);
    assert!(
        all.lines().nth(1).is_some_and(|l| l.starts_with("default")),
        "{all}"
    );

    // Applying the same manifest again changes nothing. kubectl still says "configured", as
    // against a cluster: the pod's own volumes now sit beside the admitted kube-api-access
    // volume, so its patch carries a `$setElementOrder/volumes` directive.
    let version = |kubectl: &Kubectl| {
        kubectl.json(&["get", "pod", &name])["metadata"]["resourceVersion"].clone()
    };
    let before = version(&kubectl);
    assert!(kubectl.apply(&manifest).contains("configured"));
    assert_eq!(version(&kubectl), before);

    kubectl.ok(&["label", "pod", &name, "tier=web"]);
    kubectl.ok(&["annotate", "pod", &name, "note=hello"]);
    kubectl.ok(&[
        "patch",
        "pod",
        &name,
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"merge":"yes"}}}"#,
    ]);
    kubectl.ok(&[
        "patch",
        "pod",
        &name,
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/json","value":"yes"}]"#,
    ]);
    kubectl.ok(&[
        "patch",
        "pod",
        &name,
        "-p",
        r#"{"metadata":{"labels":{"strategic":"yes"}}}"#,
    ]);
    let labelled = kubectl.ok(&[
        "get",
        "pods",
        "-l",
        "tier=web,merge=yes,json=yes,strategic=yes",
        "-o",
        "name",
    ]);
    assert_eq!(labelled.trim(), format!("pod/{name}"));
    let pod = kubectl.json(&["get", "pod", &name]);
    assert_eq!(pod["metadata"]["annotations"]["note"], "hello");
    let forbidden = kubectl.fails(&[
        "patch",
        "pod",
        &name,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"containers":[{"name":"x","image":"y"}]}}"#,
    ]);
    assert!(forbidden.contains("is invalid"), "{forbidden}");

    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    let deleted = kubectl.ok(&["delete", "pod", &name, "--timeout=60s"]);
    assert_eq!(deleted.trim(), format!("pod \"{name}\" deleted"));
    assert!(kubectl.fails(&["get", "pod", &name]).contains("NotFound"));
    agent.leak_check(&uid);
}

#[test]
fn configmaps_and_namespaces_with_their_content() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n");
    kubectl.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team\ndata:\n  colour: blue\n",
    );
    let table = kubectl.ok(&["get", "cm", "-n", "team"]);
    assert!(
        table
            .lines()
            .any(|l| columns_of(l)[..2] == ["settings", "1"]),
        "{table}"
    );
    let changed = kubectl.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team\ndata:\n  colour: green\n  size: large\n",
    );
    assert!(changed.contains("configured"), "{changed}");
    let cm = kubectl.json(&["get", "cm", "settings", "-n", "team"]);
    assert_eq!(cm["data"]["colour"], "green");
    assert_eq!(cm["data"]["size"], "large");
    let bad = kubectl.run(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: team\ndata:\n  'no/slash': x\n"),
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("is invalid"),
        "{}",
        text(&bad.stderr)
    );

    let deleted = kubectl.ok(&["delete", "namespace", "team", "--timeout=60s"]);
    assert_eq!(deleted.trim(), "namespace \"team\" deleted");
    assert!(kubectl
        .fails(&["get", "namespace", "team"])
        .contains("NotFound"));
    let refused = kubectl.fails(&["get", "cm", "settings", "-n", "team"]);
    assert!(refused.contains("NotFound"), "{refused}");
    drop(agent);
}

#[test]
fn logs_through_kubectl() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: talker\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'for i in 1 2 3; do echo line $i; done; sleep 3600']\n",
    );
    agent.wait_running("talker");
    let uid = agent.uid("talker");
    wait_until(Duration::from_secs(10), "three log lines", || {
        kubectl.ok(&["logs", "talker"]) == "line 1\nline 2\nline 3\n"
    });
    assert_eq!(kubectl.ok(&["logs", "talker", "--tail=1"]), "line 3\n");
    assert_eq!(kubectl.ok(&["logs", "talker", "--limit-bytes=6"]), "line 1");
    assert_eq!(
        kubectl
            .ok(&["logs", "talker", "--since=1h"])
            .lines()
            .count(),
        3
    );
    let stamped = kubectl.ok(&["logs", "talker", "--timestamps", "-c", "c"]);
    let first = stamped.lines().next().unwrap();
    let (stamp, line) = first.split_once(' ').unwrap();
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{first}");
    assert_eq!(line, "line 1");
    let missing = kubectl.fails(&["logs", "talker", "-c", "nope"]);
    assert!(
        missing.contains("container nope is not valid for pod talker"),
        "{missing}"
    );
    kubectl.ok(&["delete", "pod", "talker", "--timeout=60s"]);
    agent.leak_check(&uid);
}

/// The cells of a table row cut at its header's column starts: a cell may hold spaces
/// (OS-IMAGE does).
fn cells_by_header(header: &str, row: &str) -> std::collections::HashMap<String, String> {
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut at = 0;
    for name in header.split_whitespace() {
        let start = at + header[at..].find(name).unwrap();
        starts.push((start, name));
        at = start + name.len();
    }
    let cell = |from: usize, to: usize| row.get(from..to.min(row.len())).unwrap_or("").trim();
    starts
        .iter()
        .enumerate()
        .map(|(i, (start, name))| {
            let end = starts.get(i + 1).map_or(row.len(), |(next, _)| *next);
            (name.to_string(), cell(*start, end).to_owned())
        })
        .collect()
}

fn host_file(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A quantity of bytes (`123`, `120Ki`) as a number.
fn bytes_of(quantity: &Value) -> u64 {
    let text = quantity.as_str().unwrap();
    let (number, scale) = match text.strip_suffix("Ki") {
        Some(kib) => (kib, 1024),
        None => (text, 1),
    };
    number.parse::<u64>().unwrap() * scale
}

#[test]
fn the_node_and_its_lease_through_kubectl() {
    let (agent, kubectl) = start_with_kubectl();
    let name = host_file("/proc/sys/kernel/hostname").to_lowercase();
    let ready = "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}";
    wait_until(Duration::from_secs(30), "a Ready node", || {
        text(
            &kubectl
                .run(&["get", "node", &name, "-o", ready], None)
                .stdout,
        ) == "True"
    });

    let wide = kubectl.ok(&["get", "nodes", "-o", "wide"]);
    let header = wide.lines().next().unwrap();
    assert_eq!(
        columns_of(header),
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ]
    );
    assert_eq!(wide.lines().count(), 2, "{wide}");
    let row = cells_by_header(header, wide.lines().nth(1).unwrap());
    let server = kubectl.json(&["version"])["serverVersion"]["gitVersion"].clone();
    assert_eq!(row["NAME"], name, "{wide}");
    assert_eq!(row["STATUS"], "Ready", "{wide}");
    assert_eq!(row["ROLES"], "control-plane", "{wide}");
    assert_eq!(row["VERSION"], server.as_str().unwrap(), "{wide}");
    assert!(row["VERSION"].starts_with("v1.32.0+peapod."), "{wide}");
    let internal: std::net::Ipv4Addr = row["INTERNAL-IP"].parse().expect("an IPv4 address");
    assert_eq!(row["EXTERNAL-IP"], "<none>");
    let os_release = host_file("/etc/os-release");
    let pretty = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map_or("Linux".to_owned(), |v| v.trim_matches('"').to_owned());
    assert_eq!(row["OS-IMAGE"], pretty, "{wide}");
    assert_eq!(
        row["KERNEL-VERSION"],
        host_file("/proc/sys/kernel/osrelease")
    );
    assert!(row["CONTAINER-RUNTIME"].starts_with("peapod://"), "{wide}");

    let node = kubectl.json(&["get", "node", &name]);
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/hostname"], name.as_str());
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert!(labels["kubernetes.io/arch"].is_string(), "{labels}");
    assert_eq!(labels["node-role.kubernetes.io/control-plane"], "true");
    let status = &node["status"];
    assert_eq!(status["addresses"][0]["type"], "InternalIP");
    assert_eq!(status["addresses"][0]["address"], internal.to_string());
    assert_eq!(
        status["addresses"][1],
        serde_json::json!({"type": "Hostname", "address": name})
    );
    assert_eq!(status["capacity"]["pods"], "110");
    let cpus = status["capacity"]["cpu"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert!(cpus >= 1);
    assert!(bytes_of(&status["capacity"]["memory"]) > 0);
    let storage = bytes_of(&status["capacity"]["ephemeral-storage"]);
    let usable = bytes_of(&status["allocatable"]["ephemeral-storage"]);
    assert!(usable < storage && usable > storage / 2, "{status:#}");
    let info = &status["nodeInfo"];
    assert_eq!(info["bootID"], host_file("/proc/sys/kernel/random/boot_id"));
    assert_eq!(info["operatingSystem"], "linux");
    if !host_file("/etc/machine-id").is_empty() {
        assert_eq!(info["machineID"], host_file("/etc/machine-id"));
    }
    let conditions: Vec<(&str, &str, &str)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |f: &str| c[f].as_str().unwrap_or_default();
            (field("type"), field("status"), field("reason"))
        })
        .collect();
    assert_eq!(
        conditions,
        [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            ("Ready", "True", "KubeletReady"),
        ]
    );

    let leases = kubectl.ok(&["get", "leases", "-n", "kube-node-lease"]);
    assert_eq!(
        leases.lines().next().map(columns_of),
        Some(vec!["NAME", "HOLDER", "AGE"])
    );
    assert_eq!(
        columns_of(leases.lines().nth(1).unwrap())[..2],
        [name.as_str(), name.as_str()]
    );
    let lease = kubectl.json(&["get", "lease", &name, "-n", "kube-node-lease"]);
    assert_eq!(lease["spec"]["holderIdentity"], name.as_str());
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    let owner = &lease["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str()),
        (Some("Node"), Some(name.as_str()))
    );
    assert_eq!(owner["uid"], node["metadata"]["uid"]);
    let renewed = lease["spec"]["renewTime"].as_str().unwrap().to_owned();
    wait_until(Duration::from_secs(25), "the lease renewed", || {
        let lease = kubectl.json(&["get", "lease", &name, "-n", "kube-node-lease"]);
        lease["spec"]["renewTime"].as_str() != Some(renewed.as_str())
    });

    let described = kubectl.ok(&["describe", "node", &name]);
    for expected in [
        format!("Name:               {name}"),
        "Roles:              control-plane".to_owned(),
        format!("HolderIdentity:  {name}"),
        "kubelet is posting ready status".to_owned(),
        format!("InternalIP:  {internal}"),
        "Container Runtime Version:  peapod://".to_owned(),
        format!("Kubelet Version:            {}", server.as_str().unwrap()),
        "Allocatable:".to_owned(),
        "Non-terminated Pods:".to_owned(),
        "Starting kubelet.".to_owned(),
        "NodeHasNoDiskPressure".to_owned(),
    ] {
        assert!(
            described.contains(&expected),
            "no {expected:?} in:\n{described}"
        );
    }

    // A Node deleted under the agent comes back at its next status pass.
    kubectl.ok(&["delete", "node", &name]);
    wait_until(Duration::from_secs(30), "the node registered again", || {
        kubectl.run(&["get", "node", &name], None).status.success()
    });
    drop(agent);
}

/// `kubectl create <kind>` sends protobuf bodies (client-go 1.32's typed clients), with no JSON
/// fallback: the agent decodes them.
#[test]
fn kubectl_create_sends_protobuf_and_it_is_understood() {
    let (agent, kubectl) = start_with_kubectl();
    assert_eq!(
        kubectl.ok(&["create", "namespace", "team"]).trim(),
        "namespace/team created"
    );
    kubectl.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team",
        "--from-literal=colour=blue",
    ]);
    kubectl.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "team",
        "--from-literal=password=q",
    ]);
    kubectl.ok(&["create", "serviceaccount", "robot", "-n", "team"]);
    let cm = kubectl.json(&["get", "cm", "settings", "-n", "team"]);
    assert_eq!(cm["data"]["colour"], "blue");
    let secret = kubectl.ok(&[
        "get",
        "secret",
        "creds",
        "-n",
        "team",
        "-o",
        "jsonpath={.type} {.data.password}",
    ]);
    assert_eq!(secret, "Opaque cQ==");
    let table = kubectl.ok(&["get", "secrets,sa", "-n", "team"]);
    assert!(
        table.contains("secret/creds") && table.contains("serviceaccount/robot"),
        "{table}"
    );
    // The typed client asks for a protobuf answer and prints the object it decoded.
    let out = kubectl.run(
        &[
            "create",
            "cm",
            "answered",
            "-n",
            "team",
            "--from-literal=a=b",
            "-o",
            "json",
            "-v=8",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = text(&out.stderr);
    assert!(
        log.contains("Content-Type: application/vnd.kubernetes.protobuf\n"),
        "no protobuf answer: {log}"
    );
    let answered: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answered["data"]["a"], "b");
    assert!(answered["metadata"]["uid"].is_string(), "{answered}");
    let exists = kubectl.fails(&["create", "configmap", "settings", "-n", "team"]);
    assert_eq!(
        exists.trim(),
        r#"error: failed to create configmap: configmaps "settings" already exists"#
    );
    drop(agent);
}
