//! Cases after kube's podtopologyspread filtering_test.go (TestSingleConstraint), on one node.

use super::*;
use serde_json::{json, Value};

fn pod(name: &str, labels: Value, constraints: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "labels": labels},
        "spec": {"containers": [{"name": "c"}], "topologySpreadConstraints": constraints},
    }))
    .unwrap()
}

fn node(labels: Value) -> Node {
    serde_json::from_value(json!({"metadata": {"name": "node-a", "labels": labels}})).unwrap()
}

fn zone_node() -> Node {
    node(json!({"zone": "zone1", "node": "node-a"}))
}

fn constraint(max_skew: i32, key: &str, extra: Value) -> Value {
    let mut c = json!({"maxSkew": max_skew, "topologyKey": key,
                       "whenUnsatisfiable": "DoNotSchedule",
                       "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn run(incoming: &Pod, node: &Node, bound: &[Pod]) -> Result<(), (Code, String)> {
    let bound: Vec<&Pod> = bound.iter().collect();
    filter(incoming, node, &bound).map_err(|r| (r.code, r.reasons[0].clone()))
}

fn matching(n: usize) -> Vec<Pod> {
    (0..n)
        .map(|i| pod(&format!("m{i}"), json!({"foo": ""}), json!(null)))
        .collect()
}

#[test]
fn no_constraints_or_soft_ones_always_fit() {
    let soft = json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                       "labelSelector": {}}]);
    assert!(run(
        &pod("p", json!({"foo": ""}), soft),
        &node(json!({})),
        &matching(5)
    )
    .is_ok());
    assert!(run(&pod("p", json!({}), json!(null)), &node(json!({})), &[]).is_ok());
}

#[test]
fn a_node_without_the_topology_key_is_unresolvable() {
    let incoming = pod(
        "p",
        json!({"foo": ""}),
        json!([constraint(1, "rack", json!({}))]),
    );
    assert_eq!(
        run(&incoming, &zone_node(), &[]),
        Err((Code::UnschedulableAndUnresolvable, MISSING_LABEL.into()))
    );
}

#[test]
fn one_domain_is_always_balanced() {
    let incoming = pod(
        "p",
        json!({"foo": ""}),
        json!([constraint(1, "zone", json!({}))]),
    );
    assert!(run(&incoming, &zone_node(), &matching(4)).is_ok());
}

#[test]
fn min_domains_beyond_the_one_node_caps_the_domain_at_max_skew() {
    let spread = json!([constraint(2, "zone", json!({"minDomains": 2}))]);
    let incoming = pod("p", json!({"foo": ""}), spread);
    assert!(run(&incoming, &zone_node(), &matching(1)).is_ok());
    assert_eq!(
        run(&incoming, &zone_node(), &matching(2)),
        Err((Code::Unschedulable, NOT_MATCHED.into()))
    );
}

#[test]
fn a_pod_not_matching_its_own_selector_adds_nothing() {
    let spread = json!([constraint(2, "zone", json!({"minDomains": 3}))]);
    let incoming = pod("p", json!({"bar": ""}), spread);
    assert!(run(&incoming, &zone_node(), &matching(2)).is_ok());
    assert!(run(&incoming, &zone_node(), &matching(3)).is_err());
}

#[test]
fn terminating_and_other_namespaces_pods_do_not_count() {
    let spread = json!([constraint(1, "zone", json!({"minDomains": 2}))]);
    let incoming = pod("p", json!({"foo": ""}), spread);
    let mut going = matching(1);
    going[0].metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
    );
    assert!(run(&incoming, &zone_node(), &going).is_ok());
    let mut elsewhere = matching(1);
    elsewhere[0].metadata.namespace = Some("other".into());
    assert!(run(&incoming, &zone_node(), &elsewhere).is_ok());
    assert!(run(&incoming, &zone_node(), &matching(1)).is_err());
}

#[test]
fn match_label_keys_narrow_the_selector_to_the_pod_s_values() {
    let spread = json!([constraint(
        1,
        "zone",
        json!({"minDomains": 2, "matchLabelKeys": ["rev"]})
    )]);
    let incoming = pod("p", json!({"foo": "", "rev": "2"}), spread);
    let old = pod("old", json!({"foo": "", "rev": "1"}), json!(null));
    assert!(run(&incoming, &zone_node(), std::slice::from_ref(&old)).is_ok());
    let same = pod("same", json!({"foo": "", "rev": "2"}), json!(null));
    assert!(run(&incoming, &zone_node(), &[old, same]).is_err());
}

#[test]
fn a_node_outside_the_pod_s_node_affinity_is_not_counted() {
    let spread = json!([constraint(1, "zone", json!({"minDomains": 2}))]);
    let mut incoming = pod("p", json!({"foo": ""}), spread);
    incoming.spec.as_mut().unwrap().node_selector =
        Some([("disk".to_string(), "ssd".to_string())].into());
    // Not counted: no domain, the minimum stays at MaxInt32 and nothing is refused here
    // (the NodeAffinity filter refuses the node before this one runs).
    assert!(run(&incoming, &zone_node(), &matching(3)).is_ok());
}
