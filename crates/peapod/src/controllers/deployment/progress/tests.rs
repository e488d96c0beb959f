//! kube's `TestDeploymentComplete`, `TestDeploymentProgressing`, `TestDeploymentTimedOut`
//! (deployment_util_test.go), `TestRequeueStuckDeployment` and `TestSyncRolloutStatus`
//! (progress_test.go).

use k8s_openapi::api::apps::v1::{DeploymentCondition, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int;

use super::*;
use crate::controllers::deployment::conditions::{AVAILABLE, UNKNOWN};
use crate::controllers::deployment::fixtures::{deployment, rs_with_status, ts};

fn status_of(replicas: i32, updated: i32, ready: i32, available: i32) -> DeploymentStatus {
    let some = |n: i32| (n != 0).then_some(n);
    DeploymentStatus {
        replicas: some(replicas),
        updated_replicas: some(updated),
        ready_replicas: some(ready),
        available_replicas: some(available),
        ..DeploymentStatus::default()
    }
}

#[test]
fn deployment_complete_table() {
    let cases = [
        (
            "not complete: min but not all pods become available",
            (5, 5, 5, 4, 1, 0),
            false,
        ),
        (
            "not complete: min availability is not honored",
            (5, 5, 5, 3, 1, 0),
            false,
        ),
        ("complete", (5, 5, 5, 5, 0, 0), true),
        (
            "not complete: all pods are available but not updated",
            (5, 5, 4, 5, 0, 0),
            false,
        ),
        (
            "not complete: still running old pods",
            (1, 2, 1, 1, 0, 1),
            false,
        ),
        (
            "not complete: one replica deployment never comes up",
            (1, 1, 1, 0, 1, 1),
            false,
        ),
    ];
    for (name, (desired, current, updated, available, unavailable, surge), expected) in cases {
        let mut d = deployment(
            "foo",
            desired,
            Some(Int(surge)),
            Some(Int(unavailable)),
            &[],
        );
        d.status = Some(status_of(current, updated, 0, available));
        assert_eq!(deployment_complete(&d, &status(&d)), expected, "{name}");
    }
    let mut d = deployment("foo", 1, None, None, &[]);
    d.metadata.generation = Some(2);
    let mut observed = status_of(1, 1, 1, 1);
    observed.observed_generation = Some(1);
    assert!(
        !deployment_complete(&d, &observed),
        "an older generation's status"
    );
}

#[test]
fn deployment_progressing_table() {
    let cases = [
        (
            "progressing: updated pods",
            (10, 4, 4, 4),
            (10, 6, 4, 4),
            true,
        ),
        ("not progressing", (10, 4, 4, 4), (10, 4, 4, 4), false),
        (
            "progressing: old pods removed",
            (10, 4, 6, 6),
            (8, 4, 6, 6),
            true,
        ),
        (
            "not progressing: less new pods",
            (10, 7, 3, 3),
            (10, 6, 3, 3),
            false,
        ),
        (
            "progressing: less overall but more new pods",
            (10, 4, 7, 7),
            (8, 8, 5, 5),
            true,
        ),
        (
            "progressing: more ready pods",
            (10, 10, 9, 8),
            (10, 10, 10, 8),
            true,
        ),
        (
            "progressing: more available pods",
            (10, 10, 10, 9),
            (10, 10, 10, 10),
            true,
        ),
    ];
    for (name, (c, u, r, a), (nc, nu, nr, na), expected) in cases {
        let mut d = deployment("foo", 10, None, None, &[]);
        d.status = Some(status_of(c, u, r, a));
        assert_eq!(
            deployment_progressing(&d, &status_of(nc, nu, nr, na)),
            expected,
            "{name}"
        );
    }
}

fn progressing(status: &str, reason: &str, updated: Option<&str>) -> DeploymentCondition {
    DeploymentCondition {
        type_: PROGRESSING.into(),
        status: status.into(),
        reason: (!reason.is_empty()).then(|| reason.into()),
        last_update_time: updated.map(|t| Time(ts(t))),
        last_transition_time: updated.map(|t| Time(ts(t))),
        ..DeploymentCondition::default()
    }
}

#[test]
fn deployment_timed_out_table() {
    let at = |min: u8, sec: u8| format!("2016-01-01T00:{min:02}:{sec:02}Z");
    let cases = [
        (
            "nil progressDeadlineSeconds specified - no timeout",
            None,
            "",
            at(1, 9),
            at(1, 20),
            false,
        ),
        (
            "infinite progressDeadlineSeconds specified - no timeout",
            Some(i32::MAX),
            "",
            at(1, 9),
            at(1, 20),
            false,
        ),
        (
            "progressDeadlineSeconds: 10s, 00:01:20 - 00:01:09 => 11s",
            Some(10),
            "",
            at(1, 9),
            at(1, 20),
            true,
        ),
        (
            "progressDeadlineSeconds: 10s, 00:01:20 - 00:01:11 => 9s",
            Some(10),
            "",
            at(1, 11),
            at(1, 20),
            false,
        ),
        (
            "previous status was a complete deployment",
            Some(10),
            NEW_RS_AVAILABLE,
            at(0, 0),
            at(9, 0),
            false,
        ),
        (
            "already timed out",
            Some(10),
            PROGRESS_DEADLINE_EXCEEDED,
            at(1, 19),
            at(1, 20),
            true,
        ),
    ];
    for (name, deadline, reason, from, now, expected) in cases {
        let mut d = deployment("foo", 1, None, None, &[]);
        d.spec.as_mut().unwrap().progress_deadline_seconds = deadline;
        let status = DeploymentStatus {
            conditions: Some(vec![progressing(TRUE, reason, Some(&from))]),
            ..DeploymentStatus::default()
        };
        assert_eq!(
            deployment_timed_out(&d, &status, ts(&now)),
            expected,
            "{name}"
        );
    }
}

/// kube's `currentDeployment`: Recreate, named progress-test.
fn current(
    deadline: Option<i32>,
    replicas: i32,
    (status_replicas, updated, available): (i32, i32, i32),
    conditions: Vec<DeploymentCondition>,
) -> Deployment {
    let mut d = deployment("progress-test", replicas, None, None, &[]);
    let spec = d.spec.as_mut().unwrap();
    spec.progress_deadline_seconds = deadline;
    spec.strategy.as_mut().unwrap().type_ = Some("Recreate".into());
    let mut status = status_of(status_replicas, updated, 0, available);
    status.conditions = (!conditions.is_empty()).then_some(conditions);
    d.status = Some(status);
    d
}

const STUCK_AT: &str = "2017-02-15T18:49:00Z";

#[test]
fn stuck_requeue_table() {
    let failed = || vec![progressing(FALSE, PROGRESS_DEADLINE_EXCEEDED, None)];
    let stuck = || vec![progressing(TRUE, "", Some(STUCK_AT))];
    let secs = Duration::from_secs;
    let cases = [
        (
            "nil progressDeadlineSeconds specified",
            current(None, 4, (3, 3, 2), vec![]),
            (3, 3, 2),
            STUCK_AT,
            None,
        ),
        (
            "infinite progressDeadlineSeconds specified",
            current(Some(i32::MAX), 4, (3, 3, 2), vec![]),
            (3, 3, 2),
            STUCK_AT,
            None,
        ),
        (
            "no progressing condition found",
            current(Some(60), 4, (3, 3, 2), vec![]),
            (3, 3, 2),
            STUCK_AT,
            None,
        ),
        (
            "complete deployment does not need to be requeued",
            current(Some(60), 3, (3, 3, 3), stuck()),
            (3, 3, 3),
            STUCK_AT,
            None,
        ),
        (
            "already failed deployment does not need to be requeued",
            current(Some(60), 3, (3, 3, 0), failed()),
            (3, 3, 0),
            STUCK_AT,
            None,
        ),
        (
            "stuck deployment - 30s",
            current(Some(60), 3, (3, 3, 1), stuck()),
            (3, 3, 1),
            "2017-02-15T18:49:30Z",
            Some(secs(31)),
        ),
        (
            "stuck deployment - 1s",
            current(Some(60), 3, (3, 3, 1), stuck()),
            (3, 3, 1),
            "2017-02-15T18:49:59Z",
            Some(secs(2)),
        ),
        (
            "failed deployment - less than a second => now",
            current(Some(60), 3, (3, 3, 1), stuck()),
            (3, 3, 1),
            "2017-02-15T18:49:59.000000001Z",
            Some(Duration::ZERO),
        ),
        (
            "failed deployment - now",
            current(Some(60), 3, (3, 3, 1), stuck()),
            (3, 3, 1),
            "2017-02-15T18:50:00Z",
            Some(Duration::ZERO),
        ),
        (
            "failed deployment - 1s after deadline",
            current(Some(60), 3, (3, 3, 1), stuck()),
            (3, 3, 1),
            "2017-02-15T18:50:01Z",
            Some(Duration::ZERO),
        ),
        (
            "failed deployment - 60s after deadline",
            current(Some(60), 3, (3, 3, 1), stuck()),
            (3, 3, 1),
            "2017-02-15T18:51:00Z",
            Some(Duration::ZERO),
        ),
    ];
    for (name, d, (r, u, a), now, expected) in cases {
        assert_eq!(
            stuck_requeue(&d, &status_of(r, u, 0, a), ts(now)),
            expected,
            "{name}"
        );
    }
}

const TEST_TIME: &str = "2017-02-15T18:49:00Z";
const NOW: &str = "2026-01-01T00:00:00Z";

#[derive(Clone, Copy)]
struct Expected {
    status: &'static str,
    reason: &'static str,
    update_kept: bool,
    transition_kept: bool,
}

fn expect(
    status: &'static str,
    reason: &'static str,
    update_kept: bool,
    transition_kept: bool,
) -> Option<Expected> {
    Some(Expected {
        status,
        reason,
        update_kept,
        transition_kept,
    })
}

#[test]
fn rollout_status_table() {
    let timed_out = || progressing(FALSE, PROGRESS_DEADLINE_EXCEEDED, None);
    let available = || progressing(TRUE, NEW_RS_AVAILABLE, Some(TEST_TIME));
    let updated = || progressing(TRUE, REPLICA_SET_UPDATED, Some(TEST_TIME));
    let pds = Some(60);
    let cases = [
        (
            "remove Progressing without a deadline",
            current(None, 3, (2, 2, 2), vec![updated()]),
            vec![rs_with_status("bar", 0, 1, 1)],
            Some(rs_with_status("foo", 3, 2, 2)),
            None,
        ),
        (
            "do not estimate progress with one active set",
            current(pds, 3, (3, 3, 3), vec![available()]),
            vec![rs_with_status("bar", 3, 3, 3)],
            None,
            expect(TRUE, NEW_RS_AVAILABLE, true, true),
        ),
        (
            "progressing: keep lastTransitionTime when already True",
            current(pds, 3, (2, 2, 2), vec![updated()]),
            vec![rs_with_status("bar", 0, 1, 1)],
            Some(rs_with_status("foo", 3, 2, 2)),
            expect(TRUE, REPLICA_SET_UPDATED, false, true),
        ),
        (
            "progressing: update everything after False",
            current(pds, 3, (2, 2, 2), vec![timed_out()]),
            vec![rs_with_status("bar", 0, 1, 1)],
            Some(rs_with_status("foo", 3, 2, 2)),
            expect(TRUE, REPLICA_SET_UPDATED, false, false),
        ),
        (
            "progressing: create the condition",
            current(pds, 3, (2, 2, 2), vec![]),
            vec![rs_with_status("bar", 0, 1, 1)],
            Some(rs_with_status("foo", 3, 2, 2)),
            expect(TRUE, REPLICA_SET_UPDATED, false, false),
        ),
        (
            "complete: keep lastTransitionTime when already True",
            current(pds, 3, (3, 3, 3), vec![updated()]),
            vec![],
            Some(rs_with_status("foo", 3, 3, 3)),
            expect(TRUE, NEW_RS_AVAILABLE, false, true),
        ),
        (
            "complete: update everything after False",
            current(pds, 3, (3, 3, 3), vec![timed_out()]),
            vec![],
            Some(rs_with_status("foo", 3, 3, 3)),
            expect(TRUE, NEW_RS_AVAILABLE, false, false),
        ),
        (
            "complete: create the condition",
            current(pds, 3, (3, 3, 3), vec![]),
            vec![],
            Some(rs_with_status("foo", 3, 3, 3)),
            expect(TRUE, NEW_RS_AVAILABLE, false, false),
        ),
        (
            "complete without a new set",
            current(pds, 0, (3, 3, 3), vec![updated()]),
            vec![rs_with_status("foo", 0, 0, 0)],
            None,
            expect(TRUE, NEW_RS_AVAILABLE, false, true),
        ),
        (
            "timed out past the deadline",
            current(pds, 3, (2, 2, 2), vec![updated()]),
            vec![],
            Some(rs_with_status("foo", 3, 2, 2)),
            expect(FALSE, PROGRESS_DEADLINE_EXCEEDED, false, false),
        ),
        (
            "an existing timeout stays",
            current(pds, 3, (2, 2, 2), vec![timed_out()]),
            vec![],
            Some(rs_with_status("foo", 3, 2, 2)),
            expect(FALSE, PROGRESS_DEADLINE_EXCEEDED, true, true),
        ),
    ];
    for (name, d, others, new_rs, expected) in cases {
        let mut all: Vec<&ReplicaSet> = others.iter().collect();
        all.extend(new_rs.as_ref());
        let calculated = crate::controllers::deployment::status::calculate_status(
            &all,
            new_rs.as_ref(),
            &d,
            ts(NOW),
        );
        let (judged, _) = rollout_status(&d, new_rs.as_ref(), &all, calculated, ts(NOW));
        check_progressing(name, &d, &judged, expected);
    }
}

/// The judged Progressing condition against `expected`: status, reason, and which times were
/// kept from the Deployment's (the others being now).
fn check_progressing(
    name: &str,
    d: &Deployment,
    judged: &DeploymentStatus,
    expected: Option<Expected>,
) {
    let got = condition(judged, PROGRESSING);
    let Some(expected) = expected else {
        assert!(got.is_none(), "{name}");
        return;
    };
    let got = got.unwrap_or_else(|| panic!("{name}: no Progressing condition"));
    assert_eq!(
        (got.status.as_str(), got.reason.as_deref()),
        (expected.status, Some(expected.reason)),
        "{name}"
    );
    let before = status(d);
    let old = condition(&before, PROGRESSING);
    let kept_or_now =
        |kept: bool, old_time: Option<Time>| if kept { old_time } else { Some(Time(ts(NOW))) };
    let old_update = old.and_then(|c| c.last_update_time.clone());
    let old_transition = old.and_then(|c| c.last_transition_time.clone());
    assert_eq!(
        got.last_update_time,
        kept_or_now(expected.update_kept, old_update),
        "{name}: lastUpdateTime"
    );
    assert_eq!(
        got.last_transition_time,
        kept_or_now(expected.transition_kept, old_transition),
        "{name}: lastTransitionTime"
    );
}

#[test]
fn rollout_messages_name_the_new_replica_set() {
    let d = current(Some(60), 3, (2, 2, 2), vec![]);
    let new_rs = rs_with_status("foo-6b4f", 3, 2, 2);
    let all = [&new_rs];
    let (judged, _) = rollout_status(&d, Some(&new_rs), &all, status_of(3, 3, 0, 2), ts(NOW));
    let message = condition(&judged, PROGRESSING).unwrap().message.clone();
    assert_eq!(
        message.as_deref(),
        Some("ReplicaSet \"foo-6b4f\" is progressing.")
    );
    let (judged, _) = rollout_status(&d, Some(&new_rs), &all, status_of(3, 3, 3, 3), ts(NOW));
    let message = condition(&judged, PROGRESSING).unwrap().message.clone();
    assert_eq!(
        message.as_deref(),
        Some("ReplicaSet \"foo-6b4f\" has successfully progressed.")
    );
    let stalled = current(
        Some(60),
        3,
        (2, 2, 2),
        vec![progressing(TRUE, REPLICA_SET_UPDATED, Some(TEST_TIME))],
    );
    let (judged, _) = rollout_status(&stalled, None, &[], status(&stalled), ts(NOW));
    let message = condition(&judged, PROGRESSING).unwrap().message.clone();
    assert_eq!(
        message.as_deref(),
        Some("Deployment \"progress-test\" has timed out progressing.")
    );
}

#[test]
fn replica_failures_are_copied_the_new_sets_first() {
    let failure = |message: &str| ReplicaSetCondition {
        type_: REPLICA_FAILURE.into(),
        status: TRUE.into(),
        reason: Some("FailedCreate".into()),
        message: Some(message.into()),
        last_transition_time: Some(Time(ts(TEST_TIME))),
    };
    let with_failure = |name: &str, message: &str| {
        let mut set = rs_with_status(name, 1, 0, 0);
        set.status = Some(ReplicaSetStatus {
            conditions: Some(vec![failure(message)]),
            ..ReplicaSetStatus::default()
        });
        set
    };
    let d = current(None, 1, (0, 0, 0), vec![]);
    let old = with_failure("old", "old quota");
    let new_rs = with_failure("new", "new quota");
    let (judged, _) = rollout_status(
        &d,
        Some(&new_rs),
        &[&old, &new_rs],
        DeploymentStatus::default(),
        ts(NOW),
    );
    let copied = condition(&judged, REPLICA_FAILURE).unwrap();
    assert_eq!(copied.message.as_deref(), Some("new quota"));
    let (judged, _) = rollout_status(&d, None, &[&old], DeploymentStatus::default(), ts(NOW));
    assert_eq!(
        condition(&judged, REPLICA_FAILURE)
            .unwrap()
            .message
            .as_deref(),
        Some("old quota")
    );
    let mut failing = d.clone();
    failing.status = Some(judged);
    let (judged, _) = rollout_status(&failing, None, &[], status(&failing), ts(NOW));
    assert!(condition(&judged, REPLICA_FAILURE).is_none());
    assert!(condition(&judged, AVAILABLE).is_none() && condition(&judged, UNKNOWN).is_none());
}

#[test]
fn an_unchanged_stuck_rollout_is_requeued_for_its_deadline() {
    let d = current(
        Some(60),
        3,
        (3, 3, 1),
        vec![progressing(TRUE, REPLICA_SET_UPDATED, Some(STUCK_AT))],
    );
    let (judged, requeue) = rollout_status(&d, None, &[], status(&d), ts("2017-02-15T18:49:30Z"));
    assert_eq!(judged, status(&d));
    assert_eq!(requeue, Some(Duration::from_secs(31)));
    let (_, requeue) = rollout_status(
        &d,
        None,
        &[],
        status_of(3, 3, 0, 2),
        ts("2017-02-15T18:49:30Z"),
    );
    assert_eq!(requeue, None, "a changed status is written, not requeued");
}
