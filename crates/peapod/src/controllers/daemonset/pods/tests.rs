//! kube's podsShouldBeOnNode cases (TestDaemonKillFailedPods, TestSufficientCapacity...,
//! TestDeleteNoDaemonPod, the surge cases of TestDaemonSetUpdatesAllOldPodsNotReady),
//! TestGetNodesToDaemonPods and the pod a create sends, ported.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::*;
use crate::controllers::replicaset::pods::fixtures::{pod, set_ready};

fn daemon_set(surge: bool) -> DaemonSet {
    let strategy = match surge {
        true => {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
        }
        false => {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        }
    };
    serde_json::from_value(json!({
        "metadata": {"name": "ds", "namespace": "default", "uid": "ds-uid",
                     "annotations": {"deprecated.daemonset.template.generation": "2"}},
        "spec": {"selector": {"matchLabels": {"app": "ds"}}, "updateStrategy": strategy,
                 "template": {"metadata": {"labels": {"app": "ds"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }))
    .unwrap()
}

fn node(name: &str) -> Node {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn daemon_pod(name: &str, phase: &str, hash: &str, created: i64) -> Pod {
    let mut p = pod(name, "node1", phase);
    p.metadata.labels = Some([(REVISION_HASH_LABEL.to_owned(), hash.to_owned())].into());
    p.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
    p
}

const RUN: Placement = Placement {
    should_run: true,
    should_continue_running: true,
};

fn work(
    placement: Placement,
    pods: &[&Pod],
    ds: &DaemonSet,
    backoff: &FailedPodsBackoff,
    at: Instant,
) -> NodeWork {
    let now = Timestamp::from_second(1_000).unwrap();
    pods_should_be_on_node(
        &node("node1"),
        placement,
        pods,
        ds,
        "new",
        (backoff, at),
        now,
    )
}

#[test]
fn a_node_without_its_pod_needs_one_and_extra_pods_go_oldest_kept() {
    let (ds, backoff, at) = (
        daemon_set(false),
        FailedPodsBackoff::default(),
        Instant::now(),
    );
    assert!(work(RUN, &[], &ds, &backoff, at).needs_pod);
    let (older, newer) = (
        daemon_pod("a", "Running", "new", 10),
        daemon_pod("b", "Running", "new", 20),
    );
    let extra = work(RUN, &[&newer, &older], &ds, &backoff, at);
    assert_eq!(
        (extra.needs_pod, extra.to_delete),
        (false, vec!["b".to_owned()])
    );
    let mut deleting = daemon_pod("c", "Running", "new", 5);
    deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    let waiting = work(RUN, &[&deleting], &ds, &backoff, at);
    assert_eq!(
        waiting,
        NodeWork::default(),
        "a terminating pod is waited for"
    );
    let gone = Placement {
        should_run: false,
        should_continue_running: false,
    };
    assert_eq!(
        work(gone, &[&older, &deleting], &ds, &backoff, at).to_delete,
        ["a"]
    );
    let tainted = Placement {
        should_run: false,
        should_continue_running: true,
    };
    assert_eq!(
        work(tainted, &[&older], &ds, &backoff, at),
        NodeWork::default()
    );
    assert_eq!(
        work(
            RUN,
            &[&daemon_pod("s", "Succeeded", "new", 1)],
            &ds,
            &backoff,
            at
        )
        .to_delete,
        ["s"]
    );
}

#[test]
fn failed_pods_are_killed_with_an_event_then_backed_off() {
    let (ds, backoff, at) = (
        daemon_set(false),
        FailedPodsBackoff::default(),
        Instant::now(),
    );
    let failed = daemon_pod("f", "Failed", "new", 1);
    let first = work(RUN, &[&failed], &ds, &backoff, at);
    assert_eq!(first.to_delete, ["f"]);
    assert_eq!(first.events[0].reason, "FailedDaemonPod");
    assert_eq!(
        first.events[0].message,
        "Found failed daemon pod default/f on node node1, will try to kill it"
    );
    let held = work(
        RUN,
        &[&failed],
        &ds,
        &backoff,
        at + Duration::from_millis(500),
    );
    assert!(held.to_delete.is_empty() && held.events.is_empty());
    assert_eq!(held.retry_after, Some(Duration::from_secs(1)));
    let again = work(RUN, &[&failed], &ds, &backoff, at + Duration::from_secs(2));
    assert_eq!(again.to_delete, ["f"]);
}

#[test]
fn while_surging_an_old_pod_goes_once_the_new_one_is_available() {
    let (ds, backoff, at) = (
        daemon_set(true),
        FailedPodsBackoff::default(),
        Instant::now(),
    );
    let mut old = daemon_pod("old", "Running", "old", 10);
    let mut new = daemon_pod("new", "Running", "new", 20);
    set_ready(&mut old, true, Some(Timestamp::from_second(15).unwrap()));
    assert!(work(RUN, &[&old, &new], &ds, &backoff, at)
        .to_delete
        .is_empty());
    set_ready(&mut new, true, Some(Timestamp::from_second(25).unwrap()));
    assert_eq!(
        work(RUN, &[&old, &new], &ds, &backoff, at).to_delete,
        ["old"]
    );
    let unready_old = daemon_pod("old", "Running", "old", 10);
    let fresh = daemon_pod("new", "Running", "new", 20);
    assert_eq!(
        work(RUN, &[&unready_old, &fresh], &ds, &backoff, at).to_delete,
        ["old"]
    );
    let second_new = daemon_pod("new2", "Running", "new", 30);
    assert_eq!(
        work(RUN, &[&old, &fresh, &second_new], &ds, &backoff, at).to_delete,
        ["new2"]
    );
    assert!(work(RUN, &[], &ds, &backoff, at).needs_pod);
}

#[test]
fn pods_group_by_node_bound_or_pinned() {
    let bound = daemon_pod("bound", "Running", "h", 1);
    let mut pinned = pod("pinned", "", "Pending");
    pinned.spec.as_mut().unwrap().affinity = Some(placement::pin_to_node(None, "node2"));
    let mut finished = daemon_pod("finished", "Failed", "h", 1);
    finished.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    let lost = pod("lost", "", "Pending");
    let all = [&bound, &pinned, &finished, &lost];
    let by_node = nodes_to_daemon_pods(&all, false);
    let names = |node: &str| -> Vec<String> {
        by_node[node]
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    };
    assert_eq!(names("node1"), ["bound"]);
    assert_eq!(names("node2"), ["pinned"]);
    assert_eq!(nodes_to_daemon_pods(&all, true)["node1"].len(), 2);
    assert_eq!(
        unscheduled_pods_without_node(&[node("node1")], &by_node),
        ["pinned"]
    );
    assert!(unscheduled_pods_without_node(&[node("node1"), node("node2")], &by_node).is_empty());
}

#[test]
fn bound_pods_sort_first_then_the_oldest() {
    let unbound = pod("a", "", "Pending");
    let (old, young) = (
        daemon_pod("z", "Running", "h", 1),
        daemon_pod("b", "Running", "h", 2),
    );
    let twin = daemon_pod("c", "Running", "h", 2);
    let mut pods = [&unbound, &twin, &young, &old];
    pods.sort_by(by_creation_and_phase);
    let names: Vec<&str> = pods
        .iter()
        .map(|p| p.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["z", "b", "c", "a"]);
}

#[test]
fn the_created_pod_is_labelled_tolerant_pinned_and_owned() {
    let pod = pod_for_node(&daemon_set(false), "abc", "node1");
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(labels["app"], "ds");
    assert_eq!(labels["controller-revision-hash"], "abc");
    assert_eq!(labels["pod-template-generation"], "2");
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("ds-"));
    let spec = pod.spec.unwrap();
    assert_eq!(
        placement::target_node(&Pod {
            spec: Some(spec.clone()),
            ..Pod::default()
        }),
        Some("node1".into())
    );
    assert_eq!(spec.tolerations.unwrap().len(), 6);
    let owner = &pod.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("DaemonSet", "ds")
    );
}
