//! kube's disruption_test.go cases over the pure sync: the counts a budget gets for its pods
//! (TestNoSelector, TestUnavailable, TestIntegerMaxUnavailable, TestReplicaSet,
//! TestStatefulSetController's percentages), TestUpdateDisruptedPods, the write rules of
//! updatePdbStatus and failSafe.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{json, Value};

use super::*;

fn now() -> Timestamp {
    "2024-05-01T10:00:00Z".parse().unwrap()
}

fn pdb(spec: Value) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "demo", "generation": 1},
        "spec": spec,
        "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                   "expectedPods": 0},
    }))
    .unwrap()
}

fn pod(name: &str, ready: bool) -> Pod {
    let ready = if ready { "True" } else { "False" };
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "demo", "labels": {"app": "web"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": ready}]},
    }))
    .unwrap()
}

/// The status one sync writes for `pods`, with `expected` pods from the controllers' scale
/// when the spec needs it.
fn synced(pdb: &PodDisruptionBudget, pods: &[Pod], scale: i32) -> PodDisruptionBudgetStatus {
    let pods: Vec<&Pod> = pods.iter().collect();
    let spec = pdb.spec.clone().unwrap();
    let expected = match needs_scale(&spec) {
        true => scale,
        false => pods.len() as i32,
    };
    let disrupted_pods = pending_disruptions(&pods, pdb, now()).pending;
    let counts = Counts {
        current_healthy: count_healthy(&pods, &disrupted_pods, now()),
        desired_healthy: desired_healthy(&spec, expected).unwrap(),
        expected_pods: expected,
        disrupted_pods,
    };
    status_update(pdb, counts, now()).expect("a status to write")
}

fn counts(status: &PodDisruptionBudgetStatus) -> [i32; 4] {
    [
        status.disruptions_allowed,
        status.current_healthy,
        status.desired_healthy,
        status.expected_pods,
    ]
}

#[test]
fn an_integer_min_available_counts_the_pods_themselves() {
    let budget = pdb(json!({"minAvailable": 3, "selector": {}}));
    assert_eq!(counts(&synced(&budget, &[pod("a", true)], 0)), [0, 1, 3, 1]);
    let pods: Vec<Pod> = ["a", "b", "c", "d"].map(|n| pod(n, true)).to_vec();
    assert_eq!(counts(&synced(&budget, &pods, 0)), [1, 4, 3, 4]);
    let mut unready = pods.clone();
    unready[0] = pod("a", false);
    assert_eq!(counts(&synced(&budget, &unready, 0)), [0, 3, 3, 4]);
}

#[test]
fn max_unavailable_counts_against_the_controllers_scale() {
    let budget = pdb(json!({"maxUnavailable": 1, "selector": {}}));
    let pods: Vec<Pod> = ["a", "b", "c"].map(|n| pod(n, true)).to_vec();
    assert_eq!(counts(&synced(&budget, &pods, 3)), [1, 3, 2, 3]);
    assert_eq!(counts(&synced(&budget, &pods[..2], 3)), [0, 2, 2, 3]);
    let percent = pdb(json!({"maxUnavailable": "30%", "selector": {}}));
    // 30% of 3 rounds up to one unavailable pod.
    assert_eq!(counts(&synced(&percent, &pods, 3)), [1, 3, 2, 3]);
}

#[test]
fn a_percentage_min_available_rounds_up_against_the_scale() {
    let budget = pdb(json!({"minAvailable": "20%", "selector": {}}));
    assert_eq!(
        counts(&synced(&budget, &[pod("a", true)], 10)),
        [0, 1, 2, 10]
    );
    let sixty = pdb(json!({"minAvailable": "60%", "selector": {}}));
    let pods: Vec<Pod> = ["a", "b", "c"].map(|n| pod(n, true)).to_vec();
    assert_eq!(counts(&synced(&sixty, &pods, 3)), [1, 3, 2, 3]);
}

#[test]
fn no_expected_pods_allow_no_disruption() {
    let budget = pdb(json!({"minAvailable": 0, "selector": {}}));
    let status = synced(&budget, &[], 0);
    assert_eq!(counts(&status), [0, 0, 0, 0]);
    let condition = &status.conditions.unwrap()[0];
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "InsufficientPods")
    );
}

/// TestUpdateDisruptedPods: a pending eviction stops counting, one past the timeout and one
/// whose pod is being deleted leave the map.
#[test]
fn disrupted_pods_pend_until_deleted_or_timed_out() {
    let mut budget = pdb(json!({"minAvailable": 1, "selector": {}}));
    let at = |ago: i64| {
        let time = now() - SignedDuration::from_secs(ago);
        json!(time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    };
    budget.status.as_mut().unwrap().disrupted_pods = serde_json::from_value(json!({
        "p1": at(0), "p2": at(0), "p3": at(180), "gone": at(0),
    }))
    .unwrap();
    let mut deleting = pod("p2", true);
    deleting.metadata.deletion_timestamp = Some(Time(now()));
    let pods = [pod("p1", true), deleting, pod("p3", true), pod("p4", true)];
    let refs: Vec<&Pod> = pods.iter().collect();
    let found = pending_disruptions(&refs, &budget, now());
    assert_eq!(found.pending.keys().collect::<Vec<_>>(), ["p1"]);
    assert_eq!(found.recheck, Some(now() + DELETION_TIMEOUT));
    assert_eq!(found.overdue, ["p3"]);
    assert_eq!(count_healthy(&refs, &found.pending, now()), 2);
}

#[test]
fn an_up_to_date_status_is_not_written_again() {
    let budget = pdb(json!({"minAvailable": 1, "selector": {}}));
    let pods = [pod("a", true), pod("b", true)];
    let mut written = budget.clone();
    written.status = Some(synced(&budget, &pods, 0));
    assert_eq!(
        written.status.as_ref().unwrap().observed_generation,
        Some(1)
    );
    let refs: Vec<&Pod> = pods.iter().collect();
    let again = Counts {
        current_healthy: 2,
        desired_healthy: 1,
        expected_pods: 2,
        disrupted_pods: BTreeMap::new(),
    };
    assert_eq!(status_update(&written, again.clone(), now()), None);
    written.metadata.generation = Some(2);
    assert!(status_update(&written, again, now()).is_some());
    assert_eq!(count_healthy(&refs, &BTreeMap::new(), now()), 2);
}

#[test]
fn a_failed_sync_allows_nothing_and_says_why() {
    let mut budget = pdb(json!({"maxUnavailable": 1, "selector": {}}));
    budget.status.as_mut().unwrap().disruptions_allowed = 2;
    let status = fail_safe(&budget, "found no controllers for pod \"a\"", now());
    assert_eq!(status.disruptions_allowed, 0);
    let condition = &status.conditions.unwrap()[0];
    assert_eq!(
        (
            condition.type_.as_str(),
            condition.status.as_str(),
            condition.reason.as_str(),
            condition.message.as_str()
        ),
        (
            "DisruptionAllowed",
            "False",
            "SyncFailed",
            "found no controllers for pod \"a\""
        )
    );
}
