//! kube's `TestTrackJobStatusAndRemoveFinalizers` in its shape: which pods are recorded as
//! uncounted, whose finalizers go, and when the counters and terminal condition follow.

use k8s_openapi::api::batch::v1::Job;
use serde_json::json;

use super::*;
use crate::controllers::job::backoff::Record;
use crate::controllers::job::fixtures::{build_pod, indexed, job};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn state<'a>(job: Job, pods: &'a [Pod]) -> SyncState<'a> {
    let mut state = SyncState::new(job, pods.iter().collect(), Record::default(), at(0));
    state.judge(at(0));
    state
}

fn uids(pods: &[&Pod]) -> Vec<String> {
    pods.iter().map(|p| uid(p).to_owned()).collect()
}

fn uncounted(status: &JobStatus) -> (Vec<String>, Vec<String>) {
    let u = status.uncounted_terminated_pods.clone().unwrap_or_default();
    (
        u.succeeded.unwrap_or_default(),
        u.failed.unwrap_or_default(),
    )
}

#[test]
fn finished_pods_are_recorded_before_their_finalizers_go() {
    let pods = [
        build_pod()
            .uid("a")
            .phase("Succeeded")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("b")
            .phase("Failed")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("c")
            .phase("Running")
            .tracking_finalizer()
            .pod(),
        build_pod().uid("d").phase("Succeeded").pod(),
    ];
    let mut state = state(job(json!({"completions": 3, "parallelism": 3})), &pods);
    let tracking = plan(&mut state, false, at(0));
    assert!(tracking.needs_flush);
    assert!(!tracking.reached_max);
    assert_eq!(uids(&tracking.remove_finalizer), ["a", "b"]);
    assert_eq!(
        tracking.with_finalizer.iter().collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(
        uncounted(state.status()),
        (vec!["a".into()], vec!["b".into()])
    );

    let mut with_finalizer = tracking.with_finalizer;
    with_finalizer.remove("a");
    assert!(clean_uncounted(state.status_mut(), &with_finalizer));
    assert_eq!(state.status().succeeded, Some(1));
    assert_eq!(uncounted(state.status()), (vec![], vec!["b".into()]));
    with_finalizer.remove("b");
    assert!(clean_uncounted(state.status_mut(), &with_finalizer));
    assert_eq!(
        (state.status().succeeded, state.status().failed),
        (Some(1), Some(1))
    );
    assert!(!clean_uncounted(state.status_mut(), &with_finalizer));
}

#[test]
fn pods_already_uncounted_are_not_added_twice() {
    let pods = [build_pod()
        .uid("a")
        .phase("Succeeded")
        .tracking_finalizer()
        .pod()];
    let mut recorded = job(json!({"completions": 2}));
    recorded.status = Some(
        serde_json::from_value(json!({"uncountedTerminatedPods": {"succeeded": ["a"]}})).unwrap(),
    );
    let mut state = state(recorded, &pods);
    let tracking = plan(&mut state, false, at(0));
    assert!(!tracking.needs_flush);
    assert_eq!(uids(&tracking.remove_finalizer), ["a"]);
    assert_eq!(uncounted(state.status()).0, ["a"]);
}

#[test]
fn a_failing_job_counts_its_running_pods_as_failed() {
    let pods = [
        build_pod()
            .uid("a")
            .phase("Failed")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("b")
            .phase("Failed")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("c")
            .phase("Running")
            .tracking_finalizer()
            .pod(),
    ];
    let mut state = state(job(json!({"backoffLimit": 1, "parallelism": 2})), &pods);
    state.terminating = 1;
    let tracking = plan(&mut state, false, at(1));
    assert_eq!(uids(&tracking.remove_finalizer), ["a", "b", "c"]);
    assert_eq!(uncounted(state.status()).1, ["a", "b", "c"]);
    let conditions = state.status().conditions.clone().unwrap();
    assert_eq!(conditions[0].type_, FAILURE_TARGET);
    let finished = state.finished.clone().unwrap();
    assert_eq!(
        (finished.type_.as_str(), cond::reason(&finished)),
        ("Failed", "BackoffLimitExceeded")
    );

    assert!(clean_uncounted(state.status_mut(), &BTreeSet::new()));
    assert_eq!(state.status().failed, Some(3));
    assert!(!enact_finished(&mut state, at(2)), "a pod still terminates");
    state.terminating = 0;
    assert!(enact_finished(&mut state, at(2)));
    let failed = cond::true_of(&state.job, "Failed").unwrap();
    assert_eq!(
        cond::message(failed),
        "Job has reached the specified backoff limit"
    );
    assert_eq!(state.status().completion_time, None);
}

#[test]
fn completion_goes_through_success_criteria_met() {
    let pods = [build_pod()
        .uid("a")
        .phase("Succeeded")
        .tracking_finalizer()
        .pod()];
    let mut state = state(job(json!({"completions": 1})), &pods);
    state.finished = Some(cond::true_condition(SUCCESS_CRITERIA_MET, "", "", at(0)));
    let tracking = plan(&mut state, false, at(0));
    assert!(tracking.needs_flush);
    let conditions = state.status().conditions.clone().unwrap();
    assert_eq!(
        conditions
            .iter()
            .map(|c| c.type_.as_str())
            .collect::<Vec<_>>(),
        [SUCCESS_CRITERIA_MET]
    );
    assert!(
        !enact_finished(&mut state, at(1)),
        "the pod is still uncounted"
    );
    clean_uncounted(state.status_mut(), &BTreeSet::new());
    assert!(enact_finished(&mut state, at(1)));
    assert!(cond::true_of(&state.job, COMPLETE).is_some());
    assert_eq!(state.status().completion_time, Some(Time(at(0))));
    assert_eq!(state.status().succeeded, Some(1));
}

#[test]
fn indexed_jobs_record_completed_indexes() {
    let pods = [
        build_pod()
            .uid("b")
            .index("2")
            .phase("Succeeded")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("a")
            .index("0")
            .phase("Succeeded")
            .tracking_finalizer()
            .pod(),
        build_pod()
            .uid("c")
            .index("1")
            .phase("Running")
            .tracking_finalizer()
            .pod(),
    ];
    let mut state = state(indexed(4, json!({"parallelism": 4})), &pods);
    let tracking = plan(&mut state, false, at(0));
    assert!(tracking.needs_flush);
    assert_eq!(uids(&tracking.remove_finalizer), ["a", "b"]);
    assert_eq!(state.status().completed_indexes.as_deref(), Some("0,2"));
    assert_eq!(state.status().succeeded, Some(2));
    assert_eq!(uncounted(state.status()), (vec![], vec![]));
}

#[test]
fn a_deleted_jobs_pods_all_lose_their_finalizers() {
    let pods = [build_pod()
        .uid("r")
        .phase("Running")
        .tracking_finalizer()
        .pod()];
    let mut deleting = job(json!({}));
    deleting.metadata.deletion_timestamp = Some(Time(at(0)));
    let mut state = state(deleting, &pods);
    let tracking = plan(&mut state, false, at(0));
    assert_eq!(uids(&tracking.remove_finalizer), ["r"]);
    assert_eq!(uncounted(state.status()), (vec![], vec![]));
}

#[test]
fn the_uncounted_lists_are_capped() {
    let pods: Vec<Pod> = (0..MAX_UNCOUNTED_PODS + 3)
        .map(|i| {
            build_pod()
                .uid(&format!("p{i}"))
                .phase("Succeeded")
                .tracking_finalizer()
                .pod()
        })
        .collect();
    let mut state = state(job(json!({"completions": 1000, "parallelism": 1})), &pods);
    let tracking = plan(&mut state, false, at(0));
    assert!(tracking.reached_max);
    assert_eq!(tracking.remove_finalizer.len(), MAX_UNCOUNTED_PODS);
    assert_eq!(uncounted_len(state.status()), MAX_UNCOUNTED_PODS);
}
