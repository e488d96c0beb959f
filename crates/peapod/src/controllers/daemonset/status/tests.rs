//! kube's TestUpdateDaemonSetStatus-style counts and storeDaemonSetStatus' skip.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

use super::*;
use crate::controllers::replicaset::pods::fixtures::{pod, set_ready};

fn daemon_set() -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": "ds", "namespace": "default", "generation": 2},
        "spec": {"selector": {"matchLabels": {"app": "ds"}},
                 "template": {"metadata": {"labels": {"app": "ds"}},
                              "spec": {"nodeSelector": {"run": "yes"}, "containers": []}}},
    }))
    .unwrap()
}

fn node(name: &str, run: bool) -> Node {
    let labels = if run {
        json!({"run": "yes"})
    } else {
        json!({})
    };
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

fn daemon_pod(node: &str, hash: &str, ready: bool) -> Pod {
    let mut p = pod(&format!("{node}-pod"), node, "Running");
    p.metadata.labels = Some([("controller-revision-hash".to_owned(), hash.to_owned())].into());
    set_ready(&mut p, ready, Some(Timestamp::from_second(10).unwrap()));
    p
}

#[test]
fn counts_cover_every_node() {
    let ds = daemon_set();
    let nodes = [
        node("a", true),
        node("b", true),
        node("c", true),
        node("d", false),
    ];
    let pods = [
        daemon_pod("a", "new", true),
        daemon_pod("b", "old", false),
        daemon_pod("d", "new", true),
    ];
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in &pods {
        by_node
            .entry(p.spec.as_ref().unwrap().node_name.clone().unwrap())
            .or_default()
            .push(p);
    }
    let now = Timestamp::from_second(100).unwrap();
    let counts = counts(&ds, &nodes, &by_node, "new", now);
    assert_eq!(
        counts,
        Counts {
            desired: 3,
            current: 2,
            misscheduled: 1,
            ready: 1,
            updated: 1,
            available: 1
        }
    );
    let status = status_update(&ds, counts, true).unwrap();
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.number_unavailable, Some(2));
    let mut written = ds.clone();
    written.status = Some(status);
    assert_eq!(status_update(&written, counts, true), None);
    let unobserved = status_update(&ds, counts, false).unwrap();
    assert_eq!(unobserved.observed_generation, None);
}

#[test]
fn pods_turning_available_bring_the_daemon_set_back() {
    let mut ds = daemon_set();
    let now = Timestamp::from_second(100).unwrap();
    let fresh = daemon_pod("a", "new", true);
    let mut turning = fresh.clone();
    set_ready(
        &mut turning,
        true,
        Some(Timestamp::from_second(98).unwrap()),
    );
    let steady = Counts {
        desired: 1,
        current: 1,
        ready: 1,
        available: 1,
        ..Counts::default()
    };
    assert_eq!(availability_requeue(&ds, &[&turning], steady, now), None);
    ds.spec.as_mut().unwrap().min_ready_seconds = Some(5);
    assert_eq!(
        availability_requeue(&ds, &[&turning, &fresh], steady, now),
        Some(std::time::Duration::from_secs(4))
    );
    assert_eq!(availability_requeue(&ds, &[&fresh], steady, now), None);
    let waiting = Counts {
        available: 0,
        ..steady
    };
    assert_eq!(
        availability_requeue(&ds, &[&fresh], waiting, now),
        Some(std::time::Duration::from_secs(5))
    );
}
