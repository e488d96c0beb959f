//! kube's update_test.go (TestDaemonSetUpdatesPods, ...NoTemplateChanged, ...AllOldPodsNotReady,
//! the surge cases) and util's TestGetUnavailableNumbers / IsPodUpdated, over one step each.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::*;
use crate::controllers::replicaset::pods::fixtures::{pod, set_ready};

fn daemon_set(strategy: Value) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": "ds", "namespace": "default",
                     "annotations": {"deprecated.daemonset.template.generation": "3"}},
        "spec": {"selector": {"matchLabels": {"app": "ds"}}, "updateStrategy": strategy,
                 "template": {"metadata": {"labels": {"app": "ds"}}, "spec": {"containers": []}}},
    }))
    .unwrap()
}

fn rolling(unavailable: Value, surge: Value) -> DaemonSet {
    daemon_set(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": unavailable, "maxSurge": surge}}),
    )
}

fn now() -> Timestamp {
    Timestamp::from_second(1_000).unwrap()
}

/// A pod on `node` of revision `hash`, ready (so available) or not.
fn daemon_pod(node: &str, hash: &str, ready: bool) -> Pod {
    let mut p = pod(&format!("{node}-{hash}"), node, "Running");
    p.metadata.labels = Some([("controller-revision-hash".to_owned(), hash.to_owned())].into());
    set_ready(&mut p, ready, Some(Timestamp::from_second(10).unwrap()));
    p
}

fn step(ds: &DaemonSet, pods: &[Pod], nodes: &[&str], should_run: &dyn Fn(&str) -> bool) -> Step {
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for node in nodes {
        by_node.entry((*node).to_owned()).or_default();
    }
    for pod in pods {
        let node = pod.spec.as_ref().unwrap().node_name.clone().unwrap();
        by_node.entry(node).or_default().push(pod);
    }
    let desired = i32::try_from(nodes.len()).unwrap();
    let bounds = bounds(ds, desired).unwrap();
    rolling_update(ds, &by_node, "new", bounds, should_run, now())
}

#[test]
fn without_surge_old_pods_go_within_max_unavailable() {
    let ds = rolling(json!(1), json!(0));
    let nodes = ["n1", "n2", "n3"];
    let old: Vec<Pod> = nodes.iter().map(|n| daemon_pod(n, "old", true)).collect();
    let everywhere = |_: &str| true;
    assert_eq!(step(&ds, &old, &nodes, &everywhere).delete, ["n1-old"]);
    let two = rolling(json!("50%"), json!(0));
    assert_eq!(
        step(&two, &old, &nodes, &everywhere).delete,
        ["n1-old", "n2-old"]
    );
    // A node whose new pod is not available yet uses the budget up.
    let mut rolling_pods = old.clone();
    rolling_pods[0] = daemon_pod("n1", "new", false);
    assert!(step(&ds, &rolling_pods, &nodes, &everywhere)
        .delete
        .is_empty());
    // A node without a pod counts as unavailable, as the manage loop creates it.
    assert!(step(&ds, &old[1..], &nodes, &everywhere).delete.is_empty());
    // Old pods that are unavailable anyway are all replaced.
    let unready: Vec<Pod> = nodes.iter().map(|n| daemon_pod(n, "old", false)).collect();
    assert_eq!(step(&ds, &unready, &nodes, &everywhere).delete.len(), 3);
    let done: Vec<Pod> = nodes.iter().map(|n| daemon_pod(n, "new", true)).collect();
    assert_eq!(step(&ds, &done, &nodes, &everywhere), Step::default());
}

#[test]
fn with_surge_new_pods_start_beside_old_ones() {
    let ds = rolling(json!(0), json!(1));
    let nodes = ["n1", "n2"];
    let everywhere = |_: &str| true;
    let old: Vec<Pod> = nodes.iter().map(|n| daemon_pod(n, "old", true)).collect();
    let first = step(&ds, &old, &nodes, &everywhere);
    assert_eq!(
        (first.create_on, first.delete),
        (vec!["n1".to_owned()], vec![])
    );
    let mut surging = old.clone();
    surging.push(daemon_pod("n1", "new", false));
    assert_eq!(step(&ds, &surging, &nodes, &everywhere), Step::default());
    surging.pop();
    surging.push(daemon_pod("n1", "new", true));
    let next = step(&ds, &surging, &nodes, &everywhere);
    assert_eq!(next.delete, ["n1-old"]);
    assert_eq!(next.create_on, ["n2"]);
    let unready_old = vec![daemon_pod("n1", "old", false)];
    assert_eq!(
        step(&ds, &unready_old, &["n1"], &everywhere).create_on,
        ["n1"]
    );
    let nowhere = |_: &str| false;
    assert_eq!(
        step(&ds, &unready_old, &["n1"], &nowhere).delete,
        ["n1-old"]
    );
}

#[test]
fn bounds_scale_percentages_up_and_never_stall() {
    let ds = rolling(json!("25%"), json!(0));
    assert_eq!(
        bounds(&ds, 10).unwrap(),
        Bounds {
            max_surge: 0,
            max_unavailable: 3,
            desired: 10
        }
    );
    let surge = rolling(json!(0), json!("50%"));
    assert_eq!(
        bounds(&surge, 3).unwrap(),
        Bounds {
            max_surge: 2,
            max_unavailable: 0,
            desired: 3
        }
    );
    let stuck = rolling(json!("0%"), json!(0));
    assert_eq!(bounds(&stuck, 2).unwrap().max_unavailable, 1);
    assert_eq!(bounds(&stuck, 0).unwrap().max_unavailable, 0);
    let on_delete = daemon_set(json!({"type": "OnDelete"}));
    assert_eq!(
        bounds(&on_delete, 5).unwrap(),
        Bounds {
            max_surge: 0,
            max_unavailable: 1,
            desired: 5
        }
    );
    assert!(!allows_surge(&on_delete) && !allows_surge(&ds) && allows_surge(&surge));
    let bad = rolling(json!("x%"), json!(0));
    assert!(bounds(&bad, 2)
        .unwrap_err()
        .to_string()
        .starts_with("couldn't get unavailable numbers: invalid value for MaxUnavailable"));
}

#[test]
fn a_pod_is_updated_by_hash_or_template_generation() {
    let ds = rolling(json!(1), json!(0));
    let mut p = daemon_pod("n1", "new", true);
    assert!(is_pod_updated(&p, "new", &ds));
    assert!(!is_pod_updated(&p, "other", &ds));
    p.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("pod-template-generation".into(), "3".into());
    assert!(is_pod_updated(&p, "other", &ds));
    assert!(!is_pod_updated(&daemon_pod("n1", "", true), "", &ds));
}
