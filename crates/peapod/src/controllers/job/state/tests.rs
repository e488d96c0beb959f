//! `syncJob`'s verdicts, from the cases of kube's job_controller_test.go
//! (`TestControllerSyncJob`, `TestPastDeadlineJobFinished`, `TestSyncJobWithJobPodFailurePolicy`,
//! `TestSyncJobWithJobSuccessPolicy`, `TestSyncJobWithJobBackoffLimitPerIndex`).

use serde_json::json;

use super::*;
use crate::controllers::job::fixtures::{build_pod, indexed, job};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn judged<'a>(job: Job, pods: &'a [Pod], now: Timestamp) -> (SyncState<'a>, Option<Duration>) {
    let mut state = SyncState::new(job, pods.iter().collect(), Record::default(), now);
    let requeue = state.judge(now);
    (state, requeue)
}

fn tracked(uid: &str, phase: &str) -> Pod {
    build_pod().uid(uid).phase(phase).tracking_finalizer().pod()
}

fn verdict(state: &SyncState<'_>) -> Option<(String, String, String)> {
    state.finished.as_ref().map(|c| {
        (
            c.type_.clone(),
            cond::reason(c).to_owned(),
            cond::message(c).to_owned(),
        )
    })
}

#[test]
fn counts_include_uncounted_and_new_finished_pods() {
    let mut counted = job(json!({"completions": 5, "parallelism": 2}));
    counted.status = Some(
        serde_json::from_value(json!({
            "succeeded": 1, "failed": 1,
            "uncountedTerminatedPods": {"succeeded": ["s0"], "failed": ["f0"]},
        }))
        .unwrap(),
    );
    let pods = [
        tracked("s0", "Succeeded"),
        tracked("s1", "Succeeded"),
        tracked("f0", "Failed"),
        tracked("f1", "Failed"),
        build_pod().uid("counted").phase("Succeeded").pod(),
        tracked("r", "Running"),
    ];
    let (state, _) = judged(counted, &pods, at(0));
    assert_eq!((state.succeeded, state.failed), (3, 3));
    assert_eq!(state.active.len(), 1);
    assert_eq!(state.backoff.failures_after_last_success, 0);
    assert_eq!(state.status().start_time, Some(Time(at(0))));
}

#[test]
fn failures_beyond_the_backoff_limit_fail_the_job() {
    let pods = [tracked("a", "Failed"), tracked("b", "Failed")];
    let (state, _) = judged(job(json!({"backoffLimit": 1})), &pods, at(0));
    let want = (
        FAILURE_TARGET.into(),
        "BackoffLimitExceeded".into(),
        "Job has reached the specified backoff limit".into(),
    );
    assert_eq!(verdict(&state), Some(want));
    let (state, _) = judged(job(json!({"backoffLimit": 2})), &pods, at(0));
    assert_eq!(verdict(&state), None);
    assert_eq!(state.backoff.failures_after_last_success, 2);
}

#[test]
fn an_existing_failure_target_becomes_failed() {
    let mut failing = job(json!({}));
    failing.status = Some(serde_json::from_value(json!({"conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded", "message": "m"}]})).unwrap());
    let (state, _) = judged(failing, &[], at(0));
    assert_eq!(
        verdict(&state),
        Some((cond::FAILED.into(), "DeadlineExceeded".into(), "m".into()))
    );
}

#[test]
fn the_active_deadline_fails_the_job_or_brings_it_back() {
    let mut started = job(json!({"activeDeadlineSeconds": 10}));
    started.status = Some(JobStatus {
        start_time: Some(Time(at(0))),
        ..JobStatus::default()
    });
    let (state, requeue) = judged(started.clone(), &[], at(4));
    assert_eq!(verdict(&state), None);
    assert_eq!(requeue, Some(Duration::from_secs(6)));
    let (state, requeue) = judged(started.clone(), &[], at(10));
    let want = (
        FAILURE_TARGET.into(),
        "DeadlineExceeded".into(),
        "Job was active longer than specified deadline".into(),
    );
    assert_eq!(verdict(&state), Some(want));
    assert_eq!(requeue, None);
    started.spec.as_mut().unwrap().suspend = Some(true);
    let (state, requeue) = judged(started, &[], at(20));
    assert_eq!((verdict(&state), requeue), (None, None));
}

#[test]
fn a_suspended_job_does_not_start() {
    let (state, _) = judged(job(json!({"suspend": true})), &[], at(0));
    assert_eq!(state.status().start_time, None);
}

#[test]
fn a_fail_job_rule_fails_the_job_with_its_message() {
    let policy = json!({"podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}});
    let pods = [build_pod()
        .uid("p")
        .phase("Failed")
        .exited("c", 42, "2026-01-01T00:00:00Z")
        .tracking_finalizer()
        .pod()];
    let (state, _) = judged(job(policy), &pods, at(0));
    let message =
        "Container c for pod default/p failed with exit code 42 matching FailJob rule at index 0";
    assert_eq!(
        verdict(&state),
        Some((
            FAILURE_TARGET.into(),
            "PodFailurePolicy".into(),
            message.into()
        ))
    );
}

#[test]
fn ignored_failures_do_not_count() {
    let policy = json!({"backoffLimit": 0, "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}});
    let pods = [build_pod()
        .uid("p")
        .phase("Failed")
        .condition("DisruptionTarget", "True", None)
        .tracking_finalizer()
        .pod()];
    let (state, _) = judged(job(policy), &pods, at(0));
    assert_eq!((state.failed, verdict(&state)), (0, None));
}

#[test]
fn on_failure_restarts_reach_the_backoff_limit() {
    let mut restarting = job(json!({"backoffLimit": 2}));
    let template = restarting
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap();
    template.restart_policy = Some("OnFailure".into());
    let pods = [build_pod()
        .phase("Running")
        .running_container("c", 2)
        .tracking_finalizer()
        .pod()];
    let (state, _) = judged(restarting, &pods, at(0));
    assert_eq!(
        verdict(&state).map(|v| v.1),
        Some("BackoffLimitExceeded".into())
    );
}

#[test]
fn indexed_jobs_count_succeeded_indexes_once() {
    let pods = [
        build_pod()
            .uid("a")
            .index("0")
            .phase("Succeeded")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("b")
            .index("0")
            .phase("Succeeded")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("c")
            .index("2")
            .phase("Succeeded")
            .tracking_finalizer()
            .pod(),
    ];
    let (state, _) = judged(indexed(3, json!({"parallelism": 3})), &pods, at(0));
    assert_eq!(state.succeeded, 2);
    assert_eq!(state.succeeded_indexes.to_string(), "0,2");
    assert!(!state.complete(0));
}

#[test]
fn a_success_policy_meets_the_success_criteria() {
    let policy = json!({"parallelism": 3, "successPolicy": {"rules": [{"succeededIndexes": "0", "succeededCount": 1}]}});
    let pods = [build_pod()
        .uid("a")
        .index("0")
        .phase("Succeeded")
        .tracking_finalizer()
        .pod()];
    let (state, _) = judged(indexed(3, policy), &pods, at(0));
    let want = (
        SUCCESS_CRITERIA_MET.into(),
        "SuccessPolicy".into(),
        "Matched rules at index 0".into(),
    );
    assert_eq!(verdict(&state), Some(want));
}

#[test]
fn failed_indexes_fail_the_job_once_every_index_is_done() {
    let limited = indexed(
        2,
        json!({"backoffLimitPerIndex": 0, "backoffLimit": i32::MAX}),
    );
    let pods = [
        build_pod()
            .uid("a")
            .index("0")
            .phase("Failed")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("b")
            .index("1")
            .phase("Running")
            .tracking_finalizer()
            .pod(),
    ];
    let (state, _) = judged(limited.clone(), &pods, at(0));
    assert_eq!(verdict(&state), None);
    assert_eq!(
        state.failed_indexes.as_ref().map(ToString::to_string),
        Some("0".into())
    );
    let pods = [
        build_pod()
            .uid("a")
            .index("0")
            .phase("Failed")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("b")
            .index("1")
            .phase("Succeeded")
            .tracking_finalizer()
            .pod(),
    ];
    let (state, _) = judged(limited, &pods, at(0));
    let want = (
        FAILURE_TARGET.into(),
        "FailedIndexes".into(),
        "Job has failed indexes".into(),
    );
    assert_eq!(verdict(&state), Some(want));

    let capped = indexed(4, json!({"backoffLimitPerIndex": 0, "maxFailedIndexes": 0}));
    let pods = [build_pod()
        .uid("a")
        .index("0")
        .phase("Failed")
        .tracking_finalizer()
        .pod()];
    let (state, _) = judged(capped, &pods, at(0));
    assert_eq!(
        verdict(&state).map(|v| v.1),
        Some("MaxFailedIndexesExceeded".into())
    );
}

#[test]
fn complete_when_enough_succeeded_and_none_active() {
    let pods = [tracked("a", "Succeeded")];
    let (state, _) = judged(job(json!({"completions": 1})), &pods, at(0));
    assert!(state.complete(0));
    assert!(!state.complete(1));
    let (state, _) = judged(
        job(json!({"completions": null, "parallelism": 2})),
        &pods,
        at(0),
    );
    assert!(state.complete(0));
}
