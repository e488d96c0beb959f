//! Cases from kube's interpodaffinity filtering_test.go (TestRequiredAffinitySingleNode),
//! on a node labelled `region: r1, zone: z11` as there.

use super::*;
use serde_json::{json, Value};

fn pod(name: &str, namespace: &str, labels: Value, affinity: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                     "labels": labels},
        "spec": {"containers": [{"name": "c"}], "affinity": affinity},
    }))
    .unwrap()
}

fn node() -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": "machine1", "labels": {"region": "r1", "zone": "z11"}},
    }))
    .unwrap()
}

fn term(selector: Value, topology: &str) -> Value {
    json!({"labelSelector": selector, "topologyKey": topology})
}

fn required(kind: &str, terms: Value) -> Value {
    json!({kind: {"requiredDuringSchedulingIgnoredDuringExecution": terms}})
}

fn check(incoming: &Pod, bound: &[Pod]) -> Result<(), (Code, String)> {
    let bound: Vec<&Pod> = bound.iter().collect();
    let mut namespaces = NamespaceLabels::new();
    namespaces.insert(
        "team1".into(),
        [("team".to_string(), "team1".to_string())].into(),
    );
    namespaces.insert(
        "team2".into(),
        [("team".to_string(), "team2".to_string())].into(),
    );
    filter(incoming, &node(), &bound, &namespaces).map_err(|r| (r.code, r.reasons[0].clone()))
}

fn in_values(key: &str, values: &[&str]) -> Value {
    json!({"matchExpressions": [{"key": key, "operator": "In", "values": values}]})
}

#[test]
fn a_pod_without_affinity_fits() {
    let existing = pod(
        "e",
        "default",
        json!({"service": "securityscan"}),
        json!(null),
    );
    assert!(check(&pod("p", "default", json!({}), json!(null)), &[existing]).is_ok());
}

#[test]
fn affinity_is_satisfied_by_a_matching_pod_in_the_domain() {
    let existing = pod(
        "e",
        "default",
        json!({"service": "securityscan"}),
        json!(null),
    );
    let affinity = required(
        "podAffinity",
        json!([term(
            in_values("service", &["securityscan", "value2"]),
            "region"
        )]),
    );
    let incoming = pod("p", "default", json!({}), affinity);
    assert!(check(&incoming, &[existing]).is_ok());
}

#[test]
fn affinity_in_another_namespace_does_not_count() {
    let existing = pod("e", "ns", json!({"service": "securityscan"}), json!(null));
    let affinity = required(
        "podAffinity",
        json!([term(in_values("service", &["securityscan"]), "region")]),
    );
    let incoming = pod("p", "default", json!({}), affinity);
    assert_eq!(
        check(&incoming, &[existing]),
        Err((Code::UnschedulableAndUnresolvable, AFFINITY.into()))
    );
}

#[test]
fn namespaces_and_namespace_selectors_widen_the_term() {
    let existing = pod(
        "e",
        "team2",
        json!({"service": "securityscan"}),
        json!(null),
    );
    let listed = json!([{"labelSelector": in_values("service", &["securityscan"]),
                         "topologyKey": "region", "namespaces": ["team2"]}]);
    let incoming = pod("p", "default", json!({}), required("podAffinity", listed));
    assert!(check(&incoming, std::slice::from_ref(&existing)).is_ok());
    let selected = json!([{"labelSelector": in_values("service", &["securityscan"]),
                           "topologyKey": "region",
                           "namespaceSelector": {"matchLabels": {"team": "team2"}}}]);
    let incoming = pod("p", "default", json!({}), required("podAffinity", selected));
    assert!(check(&incoming, std::slice::from_ref(&existing)).is_ok());
    let everywhere = json!([{"labelSelector": in_values("service", &["securityscan"]),
                             "topologyKey": "region", "namespaceSelector": {}}]);
    let incoming = pod(
        "p",
        "default",
        json!({}),
        required("podAffinity", everywhere),
    );
    assert!(check(&incoming, std::slice::from_ref(&existing)).is_ok());
    let elsewhere = json!([{"labelSelector": in_values("service", &["securityscan"]),
                            "topologyKey": "region",
                            "namespaceSelector": {"matchLabels": {"team": "team1"}}}]);
    let incoming = pod(
        "p",
        "default",
        json!({}),
        required("podAffinity", elsewhere),
    );
    assert!(check(&incoming, &[existing]).is_err());
}

#[test]
fn a_term_without_a_label_selector_matches_nothing() {
    let existing = pod(
        "e",
        "default",
        json!({"service": "securityscan"}),
        json!(null),
    );
    let affinity = required("podAffinity", json!([{"topologyKey": "region"}]));
    let incoming = pod("p", "default", json!({}), affinity);
    assert!(check(&incoming, &[existing]).is_err());
}

#[test]
fn affinity_needs_the_topology_label_on_the_node() {
    let existing = pod(
        "e",
        "default",
        json!({"service": "securityscan"}),
        json!(null),
    );
    let affinity = required(
        "podAffinity",
        json!([term(in_values("service", &["securityscan"]), "rack")]),
    );
    let incoming = pod("p", "default", json!({"service": "securityscan"}), affinity);
    assert_eq!(
        check(&incoming, &[existing]),
        Err((Code::UnschedulableAndUnresolvable, AFFINITY.into()))
    );
}

#[test]
fn every_affinity_term_must_be_matched_by_one_pod() {
    let a = pod(
        "a",
        "default",
        json!({"service": "securityscan"}),
        json!(null),
    );
    let b = pod("b", "default", json!({"tier": "db"}), json!(null));
    let affinity = required(
        "podAffinity",
        json!([
            term(in_values("service", &["securityscan"]), "region"),
            term(in_values("tier", &["db"]), "zone"),
        ]),
    );
    let incoming = pod("p", "default", json!({}), affinity);
    assert!(check(&incoming, &[a, b]).is_err());
    let both = pod(
        "c",
        "default",
        json!({"service": "securityscan", "tier": "db"}),
        json!(null),
    );
    assert!(check(&incoming, &[both]).is_ok());
}

#[test]
fn the_first_pod_of_a_self_affine_group_fits_alone() {
    let affinity = required(
        "podAffinity",
        json!([term(in_values("service", &["securityscan"]), "region")]),
    );
    let first = pod(
        "p",
        "default",
        json!({"service": "securityscan"}),
        affinity.clone(),
    );
    assert!(check(&first, &[]).is_ok());
    let not_self = pod("p", "default", json!({"service": "other"}), affinity);
    assert!(check(&not_self, &[]).is_err());
}

#[test]
fn anti_affinity_refuses_a_matching_pod_in_the_domain() {
    let existing = pod(
        "e",
        "default",
        json!({"service": "securityscan"}),
        json!(null),
    );
    let anti = required(
        "podAntiAffinity",
        json!([term(in_values("service", &["securityscan"]), "zone")]),
    );
    let incoming = pod("p", "default", json!({}), anti.clone());
    assert_eq!(
        check(&incoming, std::slice::from_ref(&existing)),
        Err((Code::Unschedulable, ANTI_AFFINITY.into()))
    );
    let other_topology = required(
        "podAntiAffinity",
        json!([term(in_values("service", &["securityscan"]), "rack")]),
    );
    let incoming = pod("p", "default", json!({}), other_topology);
    assert!(check(&incoming, &[existing]).is_ok());
    let alone = pod("p", "default", json!({"service": "securityscan"}), anti);
    assert!(check(&alone, &[]).is_ok());
}

#[test]
fn a_bound_pod_s_anti_affinity_keeps_matching_pods_away() {
    let anti = required(
        "podAntiAffinity",
        json!([term(in_values("service", &["securityscan"]), "zone")]),
    );
    let existing = pod("e", "default", json!({"app": "guard"}), anti);
    let incoming = pod(
        "p",
        "default",
        json!({"service": "securityscan"}),
        json!(null),
    );
    assert_eq!(
        check(&incoming, std::slice::from_ref(&existing)),
        Err((Code::Unschedulable, EXISTING_ANTI_AFFINITY.into()))
    );
    let other = pod("p", "default", json!({"service": "web"}), json!(null));
    assert!(check(&other, &[existing]).is_ok());
}

#[test]
fn the_pod_itself_is_not_its_own_neighbour() {
    let anti = required(
        "podAntiAffinity",
        json!([term(in_values("service", &["securityscan"]), "zone")]),
    );
    let me = pod("p", "default", json!({"service": "securityscan"}), anti);
    assert!(check(&me, std::slice::from_ref(&me)).is_ok());
}
