use serde_json::json;

use super::*;
use crate::controllers::job::fixtures::job;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

/// kube's `TestEnsureJobConditions`.
#[test]
fn ensure_adds_updates_or_keeps() {
    let mut list = Vec::new();
    assert!(!ensure(
        &mut list,
        SUSPENDED,
        "False",
        "JobResumed",
        "Job resumed",
        at(0)
    ));
    assert!(list.is_empty());
    assert!(ensure(
        &mut list,
        SUSPENDED,
        "True",
        "JobSuspended",
        "Job suspended",
        at(1)
    ));
    assert_eq!(
        list,
        [new(
            SUSPENDED,
            "True",
            "JobSuspended",
            "Job suspended",
            at(1)
        )]
    );
    assert!(!ensure(
        &mut list,
        SUSPENDED,
        "True",
        "JobSuspended",
        "Job suspended",
        at(2)
    ));
    assert_eq!(list[0].last_transition_time, Some(Time(at(1))));
    assert!(ensure(
        &mut list,
        SUSPENDED,
        "False",
        "JobResumed",
        "Job resumed",
        at(3)
    ));
    assert_eq!(
        list,
        [new(SUSPENDED, "False", "JobResumed", "Job resumed", at(3))]
    );
}

#[test]
fn finished_is_complete_or_failed_true() {
    let mut done = job(json!({}));
    assert!(!is_finished(&done));
    done.status = Some(
        serde_json::from_value(json!({"conditions": [
        {"type": "FailureTarget", "status": "True"}]}))
        .unwrap(),
    );
    assert!(!is_finished(&done));
    done.status = Some(
        serde_json::from_value(json!({"conditions": [
        {"type": "Failed", "status": "True"}]}))
        .unwrap(),
    );
    assert!(is_finished(&done));
}

#[test]
fn events_of_a_finished_job() {
    let mut done = job(json!({"completions": 2}));
    let complete = true_condition(COMPLETE, "", "", at(0));
    assert_eq!(complete.reason, None);
    assert_eq!(
        finished_events(&done, &complete),
        [Event::normal("Completed", "Job completed".into())]
    );
    done.status = Some(serde_json::from_value(json!({"succeeded": 3})).unwrap());
    let events = finished_events(&done, &complete);
    assert_eq!(events[0].reason, "TooManySucceededPods");
    assert_eq!(
        events[0].message,
        "Too many succeeded pods running after completion count reached"
    );
    let failed = true_condition(FAILED, BACKOFF_LIMIT_EXCEEDED, BACKOFF_LIMIT_MESSAGE, at(0));
    assert_eq!(
        finished_events(&done, &failed),
        [Event::warning(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit".into()
        )]
    );
    let target = true_condition(FAILURE_TARGET, POD_FAILURE_POLICY, "m", at(0));
    assert_eq!(
        failed_from_target(&target, at(1)),
        true_condition(FAILED, POD_FAILURE_POLICY, "m", at(1))
    );
}
