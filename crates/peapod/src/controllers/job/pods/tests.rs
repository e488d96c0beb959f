use serde_json::json;

use super::*;
use crate::controllers::job::fixtures::{build_pod, job};

#[test]
fn failed_includes_deleted_unless_only_failed_pods_are_replaced() {
    let replacing = job(json!({}));
    let only_failed = job(json!({"podReplacementPolicy": "Failed"}));
    let deleted = build_pod()
        .phase("Running")
        .deleted_at("2026-01-01T00:00:00Z")
        .pod();
    assert!(is_failed(&deleted, &replacing));
    assert!(!is_failed(&deleted, &only_failed));
    assert!(is_terminating(&deleted));
    let succeeded = build_pod()
        .phase("Succeeded")
        .deleted_at("2026-01-01T00:00:00Z")
        .pod();
    assert!(!is_failed(&succeeded, &replacing));
    assert!(!is_terminating(&succeeded));
    assert!(is_failed(&build_pod().phase("Failed").pod(), &only_failed));
    let with_policy = job(json!({"podFailurePolicy": {"rules": []}}));
    assert!(only_replace_failed(&with_policy));
}

#[test]
fn finished_time_prefers_containers_then_readiness_then_deletion() {
    let at = |text: &str| text.parse::<Timestamp>().unwrap();
    let exited = build_pod()
        .exited("a", 0, "2026-01-01T00:00:05Z")
        .exited("b", 1, "2026-01-01T00:00:07Z")
        .condition("Ready", "False", Some("2026-01-01T00:00:09Z"))
        .pod();
    assert_eq!(finished_time(&exited), at("2026-01-01T00:00:07Z"));
    let not_ready = build_pod()
        .running_container("a", 0)
        .condition("Ready", "False", Some("2026-01-01T00:00:09Z"))
        .pod();
    assert_eq!(finished_time(&not_ready), at("2026-01-01T00:00:09Z"));
    let mut deleted = build_pod()
        .deleted_at("2026-01-01T00:00:30Z")
        .created_at("2026-01-01T00:00:00Z")
        .pod();
    deleted.metadata.deletion_grace_period_seconds = Some(30);
    assert_eq!(finished_time(&deleted), at("2026-01-01T00:00:00Z"));
    let created = build_pod().created_at("2026-01-01T00:00:01Z").pod();
    assert_eq!(finished_time(&created), at("2026-01-01T00:00:01Z"));
}

/// kube's `ActivePods` order (controller_utils_test.go's `TestSortingActivePods`).
#[test]
fn pods_in_earlier_stages_go_first() {
    let unscheduled = build_pod().uid("unscheduled").phase("Pending").pod();
    let pending = build_pod().uid("pending").node("n").phase("Pending").pod();
    let unknown = build_pod().uid("unknown").node("n").phase("Unknown").pod();
    let running = build_pod().uid("running").node("n").phase("Running").pod();
    let ready_late = build_pod()
        .uid("ready-late")
        .node("n")
        .phase("Running")
        .condition("Ready", "True", Some("2026-01-01T00:00:10Z"))
        .pod();
    let ready_early = build_pod()
        .uid("ready-early")
        .node("n")
        .phase("Running")
        .condition("Ready", "True", Some("2026-01-01T00:00:01Z"))
        .pod();
    let mut pods = [
        &ready_early,
        &running,
        &unknown,
        &ready_late,
        &pending,
        &unscheduled,
    ];
    pods.sort_by(|a, b| deletion_order(a, b));
    let names: Vec<&str> = pods
        .iter()
        .map(|p| p.metadata.uid.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "unscheduled",
            "pending",
            "unknown",
            "running",
            "ready-late",
            "ready-early"
        ]
    );

    let restarted = build_pod()
        .uid("restarted")
        .node("n")
        .phase("Running")
        .running_container("c", 3)
        .pod();
    let newer = build_pod()
        .uid("newer")
        .node("n")
        .phase("Running")
        .created_at("2026-01-01T00:00:09Z")
        .pod();
    let older = build_pod()
        .uid("older")
        .node("n")
        .phase("Running")
        .created_at("2026-01-01T00:00:01Z")
        .pod();
    let mut pods = [&older, &newer, &restarted];
    pods.sort_by(|a, b| deletion_order(a, b));
    let names: Vec<&str> = pods
        .iter()
        .map(|p| p.metadata.uid.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["restarted", "newer", "older"]);
}

/// kube's `TestPastBackoffLimitOnFailure`-style cases: restarts of running and pending pods.
#[test]
fn restarts_count_against_the_backoff_limit_with_on_failure() {
    let on_failure = |limit: i32| {
        let mut job = job(json!({"backoffLimit": limit}));
        let template = job.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        template.restart_policy = Some("OnFailure".into());
        job
    };
    let restarted = |n: i32| build_pod().phase("Running").running_container("c", n).pod();
    let (one, two) = (restarted(1), restarted(2));
    assert!(past_backoff_limit_on_failure(&on_failure(0), &[&one]));
    assert!(!past_backoff_limit_on_failure(
        &on_failure(0),
        &[&restarted(0)]
    ));
    assert!(past_backoff_limit_on_failure(&on_failure(3), &[&one, &two]));
    assert!(!past_backoff_limit_on_failure(
        &on_failure(4),
        &[&one, &two]
    ));
    let finished = build_pod().phase("Failed").running_container("c", 5).pod();
    assert!(!past_backoff_limit_on_failure(&on_failure(1), &[&finished]));
    assert!(!past_backoff_limit_on_failure(
        &job(json!({"backoffLimit": 0})),
        &[&one]
    ));
}

#[test]
fn the_finalizer_patch_drops_only_the_tracking_finalizer() {
    assert_eq!(remove_finalizer_patch(&build_pod().pod()), None);
    let tracked = build_pod().tracking_finalizer().pod();
    assert!(has_tracking_finalizer(&tracked));
    assert_eq!(
        remove_finalizer_patch(&tracked),
        Some(
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["batch.kubernetes.io/job-tracking"]}})
        )
    );
}
