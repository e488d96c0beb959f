//! kube's TestNodeShouldRunDaemonPod (the single-node cases), util's
//! TestReplaceDaemonSetPodNodeNameNodeAffinity and TestGetTargetNodeName, ported.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Affinity, Node, Pod};
use serde_json::{json, Value};

use super::*;

fn daemon_set(pod_spec: Value) -> DaemonSet {
    let mut spec = json!({"containers": [{"name": "c", "image": "i"}]});
    for (key, value) in pod_spec.as_object().unwrap() {
        spec[key] = value.clone();
    }
    serde_json::from_value(json!({
        "metadata": {"name": "ds", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}},
    }))
    .unwrap()
}

fn node(labels: Value, taints: Value) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": "node1", "labels": labels},
        "spec": {"taints": taints},
    }))
    .unwrap()
}

fn placement(ds_spec: Value, node: &Node) -> (bool, bool) {
    let placed = node_should_run(node, &daemon_set(ds_spec));
    (placed.should_run, placed.should_continue_running)
}

#[test]
fn node_should_run_daemon_pod() {
    let plain = node(json!({}), json!([]));
    assert_eq!(placement(json!({}), &plain), (true, true));
    assert_eq!(
        placement(json!({"nodeName": "node1"}), &plain),
        (true, true)
    );
    assert_eq!(
        placement(json!({"nodeName": "other"}), &plain),
        (false, false)
    );
    let labelled = node(json!({"disk": "ssd"}), json!([]));
    assert_eq!(
        placement(json!({"nodeSelector": {"disk": "ssd"}}), &labelled),
        (true, true)
    );
    assert_eq!(
        placement(json!({"nodeSelector": {"disk": "ssd"}}), &plain),
        (false, false)
    );
    let affinity = |operator: &str, values: Value| {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": operator, "values": values}]}]}}}})
    };
    assert_eq!(
        placement(affinity("In", json!(["ssd"])), &labelled),
        (true, true)
    );
    assert_eq!(
        placement(affinity("In", json!(["hdd"])), &labelled),
        (false, false)
    );
    assert_eq!(
        placement(affinity("NotIn", json!(["hdd"])), &labelled),
        (true, true)
    );
    assert_eq!(
        placement(affinity("Exists", json!([])), &plain),
        (false, false)
    );
    assert_eq!(
        placement(affinity("DoesNotExist", json!([])), &plain),
        (true, true)
    );
    let numbered = node(json!({"disk": "5"}), json!([]));
    assert_eq!(
        placement(affinity("Gt", json!(["4"])), &numbered),
        (true, true)
    );
    assert_eq!(
        placement(affinity("Lt", json!(["4"])), &numbered),
        (false, false)
    );
    let empty_terms = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{}]}}}});
    assert_eq!(placement(empty_terms, &plain), (false, false));
    let by_name = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node1"]}]}]}}}});
    assert_eq!(placement(by_name, &plain), (true, true));
}

#[test]
fn taints_keep_new_pods_off_and_no_execute_ones_evict() {
    let no_schedule = node(
        json!({}),
        json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]),
    );
    assert_eq!(placement(json!({}), &no_schedule), (false, true));
    let tolerated = json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}]});
    assert_eq!(placement(tolerated, &no_schedule), (true, true));
    let wrong_value =
        json!({"tolerations": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}]});
    assert_eq!(placement(wrong_value, &no_schedule), (false, true));
    let no_execute = node(
        json!({}),
        json!([{"key": "dedicated", "value": "infra", "effect": "NoExecute"}]),
    );
    assert_eq!(placement(json!({}), &no_execute), (false, false));
    let everything = json!({"tolerations": [{"operator": "Exists"}]});
    assert_eq!(placement(everything, &no_execute), (true, true));
    let prefer = node(
        json!({}),
        json!([{"key": "dedicated", "effect": "PreferNoSchedule"}]),
    );
    assert_eq!(placement(json!({}), &prefer), (true, true));
    // The controller's own tolerations: cordons, pressure and node problems.
    let cordoned = node(
        json!({}),
        json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
    );
    assert_eq!(placement(json!({}), &cordoned), (true, true));
    let not_ready = node(
        json!({}),
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
    );
    assert_eq!(placement(json!({}), &not_ready), (true, true));
    let network = node(
        json!({}),
        json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
    );
    assert_eq!(placement(json!({}), &network), (false, true));
    assert_eq!(
        placement(json!({"hostNetwork": true}), &network),
        (true, true)
    );
}

#[test]
fn default_tolerations_are_added_once_and_replace_equal_ones() {
    let mut spec: PodSpec = serde_json::from_value(json!({"containers": [], "tolerations": [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "mine", "operator": "Exists"}]}))
    .unwrap();
    add_default_tolerations(&mut spec);
    add_default_tolerations(&mut spec);
    let keys: Vec<String> = spec
        .tolerations
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}{}",
                t.key.clone().unwrap_or_default(),
                t.toleration_seconds
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            "node.kubernetes.io/not-ready",
            "mine",
            "node.kubernetes.io/unreachable",
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/memory-pressure",
            "node.kubernetes.io/pid-pressure",
            "node.kubernetes.io/unschedulable",
        ]
    );
}

fn affinity(value: Value) -> Option<Affinity> {
    serde_json::from_value(value).unwrap()
}

#[test]
fn replace_daemon_set_pod_node_name_node_affinity() {
    let pinned = |node: &str| {
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}})
    };
    assert_eq!(json!(pin_to_node(None, "host_1")), pinned("host_1"));
    let preferred = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}});
    let mut expected = pinned("host_1");
    expected["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] =
        preferred["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"].clone();
    assert_eq!(json!(pin_to_node(affinity(preferred), "host_1")), expected);
    let other_node = pinned("host_2");
    assert_eq!(
        json!(pin_to_node(affinity(other_node), "host_1")),
        pinned("host_1")
    );
    let expressions = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["host_2"]}]}]}}});
    assert_eq!(
        json!(pin_to_node(affinity(expressions), "host_1")),
        pinned("host_1")
    );
    let pod_affinity = json!({"podAffinity": {}});
    let mut expected = pinned("host_1");
    expected["podAffinity"] = json!({});
    assert_eq!(
        json!(pin_to_node(affinity(pod_affinity), "host_1")),
        expected
    );
}

#[test]
fn get_target_node_name() {
    let pod = |spec: Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    };
    assert_eq!(
        target_node(&pod(json!({"containers": [], "nodeName": "node-1"}))),
        Some("node-1".into())
    );
    let pinned = |values: Value| {
        json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": values}]}]}}}})
    };
    assert_eq!(
        target_node(&pod(pinned(json!(["node-1"])))),
        Some("node-1".into())
    );
    assert_eq!(target_node(&pod(pinned(json!(["node-1", "node-2"])))), None);
    assert_eq!(target_node(&pod(json!({"containers": []}))), None);
}
