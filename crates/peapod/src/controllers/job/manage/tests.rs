//! `manageJob`'s arithmetic, as kube's `TestControllerSyncJob` cases set it up.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;
use crate::controllers::job::backoff::Record;
use crate::controllers::job::fixtures::{build_pod, indexed, job};

fn state<'a>(job: k8s_openapi::api::batch::v1::Job, pods: &'a [Pod]) -> SyncState<'a> {
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let mut state = SyncState::new(job, pods.iter().collect(), Record::default(), now);
    state.judge(now);
    state
}

fn running(uid: &str) -> Pod {
    build_pod()
        .uid(uid)
        .node("n")
        .phase("Running")
        .tracking_finalizer()
        .pod()
}

#[test]
fn active_pods_wanted() {
    let none: [Pod; 0] = [];
    assert_eq!(
        want_active(
            &state(job(json!({"completions": 5, "parallelism": 2})), &none),
            0
        ),
        2
    );
    let done = [build_pod()
        .uid("s")
        .phase("Succeeded")
        .tracking_finalizer()
        .pod()];
    let remaining = state(job(json!({"completions": 2, "parallelism": 2})), &done);
    assert_eq!(want_active(&remaining, 0), 1);
    let unbounded = job(json!({"completions": null, "parallelism": 3}));
    assert_eq!(want_active(&state(unbounded.clone(), &none), 0), 3);
    assert_eq!(want_active(&state(unbounded, &done), 2), 2);
    let over = [
        done[0].clone(),
        build_pod()
            .uid("t")
            .phase("Succeeded")
            .tracking_finalizer()
            .pod(),
    ];
    assert_eq!(
        want_active(&state(job(json!({"completions": 1})), &over), 0),
        0
    );
}

#[test]
fn pending_pods_go_before_running_ones() {
    let pods = [
        running("a"),
        build_pod()
            .uid("b")
            .phase("Pending")
            .tracking_finalizer()
            .pod(),
        running("c"),
    ];
    let three = state(job(json!({"parallelism": 3})), &pods);
    let doomed: Vec<&str> = pods_for_removal(&three, 2)
        .iter()
        .map(|p| p.metadata.uid.as_deref().unwrap())
        .collect();
    assert_eq!(doomed.len(), 2);
    assert_eq!(doomed[0], "b");
    assert!(pods_for_removal(&three, 0).is_empty());
    assert_eq!(pods_for_removal(&three, 10).len(), 3);
}

#[test]
fn repeated_indexes_are_removed_and_pending_ones_created() {
    let pods = [
        build_pod()
            .uid("a")
            .index("0")
            .node("n")
            .phase("Running")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("b")
            .index("0")
            .phase("Pending")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("c")
            .index("2")
            .phase("Succeeded")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("d")
            .index("3")
            .phase("Running")
            .tracking_finalizer()
            .pod(),
    ];
    let indexed = state(indexed(5, json!({"parallelism": 3})), &pods);
    let doomed: Vec<&str> = pods_for_removal(&indexed, 0)
        .iter()
        .map(|p| p.metadata.uid.as_deref().unwrap())
        .collect();
    assert_eq!(doomed, ["b"]);
    assert_eq!(pending_indexes(&indexed, 5), [1, 4]);
    assert_eq!(pending_indexes(&indexed, 0), Vec::<usize>::new());
}

#[test]
fn terminating_pods_hold_places_only_when_failed_pods_alone_are_replaced() {
    let pods = [build_pod()
        .uid("t")
        .phase("Running")
        .deleted_at("2026-01-01T00:00:00Z")
        .tracking_finalizer()
        .pod()];
    assert_eq!(terminating_in_place(&state(job(json!({})), &pods)), 0);
    let only_failed = job(json!({"podReplacementPolicy": "Failed"}));
    assert_eq!(terminating_in_place(&state(only_failed, &pods)), 1);
}
