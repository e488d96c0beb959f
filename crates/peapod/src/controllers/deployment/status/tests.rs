//! sync.go's `calculateStatus`, `isScalingEvent`, `checkPausedConditions` and
//! `TestDeploymentController_cleanupDeployment` (sync_test.go).

use k8s_openapi::api::apps::v1::{DeploymentCondition, ReplicaSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int;

use super::*;
use crate::controllers::deployment::fixtures::{deployment, rs, rs_with_status, ts};
use crate::controllers::deployment::revision::{set_replicas_annotations, REVISION_ANNOTATION};

const NOW: &str = "2026-01-01T00:00:00Z";

#[test]
fn calculate_status_counts_and_availability() {
    let mut d = deployment("foo", 3, Some(Int(1)), Some(Int(1)), &[]);
    d.metadata.generation = Some(4);
    d.status = Some(DeploymentStatus {
        collision_count: Some(2),
        ..DeploymentStatus::default()
    });
    let mut new_rs = rs_with_status("new", 2, 2, 1);
    new_rs.status.as_mut().unwrap().ready_replicas = Some(2);
    let old = rs_with_status("old", 2, 2, 2);
    let status = calculate_status(&[&old, &new_rs], Some(&new_rs), &d, ts(NOW));
    assert_eq!(status.observed_generation, Some(4));
    assert_eq!(status.replicas, Some(4));
    assert_eq!(status.updated_replicas, Some(2));
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(3));
    assert_eq!(status.unavailable_replicas, Some(1));
    assert_eq!(status.collision_count, Some(2));
    // terminatingReplicas is kube 1.33 (alpha): a 1.32 controller leaves it unset.
    assert_eq!(status.terminating_replicas, None);
    let available = condition(&status, AVAILABLE).unwrap();
    assert_eq!(available.status, TRUE);
    assert_eq!(
        available.reason.as_deref(),
        Some(MINIMUM_REPLICAS_AVAILABLE)
    );
    assert_eq!(
        available.message.as_deref(),
        Some("Deployment has minimum availability.")
    );
    assert_eq!(available.last_update_time, Some(Time(ts(NOW))));
}

#[test]
fn calculate_status_without_minimum_availability() {
    let d = deployment("foo", 3, Some(Int(1)), Some(Int(0)), &[]);
    let new_rs = rs_with_status("new", 4, 4, 2);
    let status = calculate_status(&[&new_rs], Some(&new_rs), &d, ts(NOW));
    assert_eq!(status.unavailable_replicas, Some(2));
    let available = condition(&status, AVAILABLE).unwrap();
    assert_eq!(available.status, FALSE);
    assert_eq!(
        available.reason.as_deref(),
        Some(MINIMUM_REPLICAS_UNAVAILABLE)
    );
    assert_eq!(
        available.message.as_deref(),
        Some("Deployment does not have minimum availability.")
    );
    // More available than wanted is no unavailability; zero counts are left out.
    let scaled_down = deployment("foo", 1, None, None, &[]);
    let over = rs_with_status("over", 1, 3, 3);
    let status = calculate_status(&[&over], None, &scaled_down, ts(NOW));
    assert_eq!(
        (status.unavailable_replicas, status.updated_replicas),
        (None, None)
    );
    assert_eq!(status.observed_generation, None);
}

#[test]
fn calculate_status_keeps_the_other_conditions() {
    let mut d = deployment("foo", 1, None, None, &[]);
    let earlier = DeploymentCondition {
        type_: AVAILABLE.into(),
        status: TRUE.into(),
        reason: Some(MINIMUM_REPLICAS_AVAILABLE.into()),
        last_update_time: Some(Time(ts("2025-01-01T00:00:00Z"))),
        ..DeploymentCondition::default()
    };
    let progressing = new_condition(
        PROGRESSING,
        TRUE,
        "ReplicaSetUpdated",
        "m",
        ts("2025-01-01T00:00:00Z"),
    );
    d.status = Some(DeploymentStatus {
        conditions: Some(vec![progressing.clone(), earlier.clone()]),
        ..DeploymentStatus::default()
    });
    let set = rs_with_status("rs", 1, 1, 1);
    let status = calculate_status(&[&set], Some(&set), &d, ts(NOW));
    assert_eq!(status.conditions, Some(vec![progressing, earlier]));
}

#[test]
fn scaling_events_are_told_by_the_desired_replicas_annotation() {
    let d = deployment("foo", 5, None, None, &[]);
    let mut current = rs("current", 5, None);
    set_replicas_annotations(&mut current, 5, 5);
    let mut stale_empty = rs("empty", 0, None);
    set_replicas_annotations(&mut stale_empty, 3, 3);
    let unannotated = rs("plain", 2, None);
    assert!(!is_scaling_event(
        &d,
        &[&current, &stale_empty, &unannotated]
    ));
    let mut stale = rs("stale", 1, None);
    set_replicas_annotations(&mut stale, 3, 3);
    assert!(is_scaling_event(&d, &[&current, &stale]));
}

fn with_progressing(mut d: Deployment, reason: Option<&str>) -> Deployment {
    let conditions = reason.map(|r| {
        vec![new_condition(
            PROGRESSING,
            TRUE,
            r,
            "",
            ts("2025-01-01T00:00:00Z"),
        )]
    });
    d.status = Some(DeploymentStatus {
        conditions,
        ..DeploymentStatus::default()
    });
    d
}

#[test]
fn paused_conditions() {
    let base = || {
        let mut d = deployment("foo", 1, None, None, &[]);
        d.spec.as_mut().unwrap().progress_deadline_seconds = Some(600);
        d
    };
    let paused = |mut d: Deployment| {
        d.spec.as_mut().unwrap().paused = Some(true);
        d
    };
    let check = |d: &Deployment| paused_condition(d, &status(d), ts(NOW));

    let d = paused(with_progressing(base(), Some("ReplicaSetUpdated")));
    let updated = check(&d).expect("paused now");
    let c = condition(&updated, PROGRESSING).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
        (
            UNKNOWN,
            Some(DEPLOYMENT_PAUSED),
            Some("Deployment is paused")
        )
    );

    assert_eq!(
        check(&paused(with_progressing(base(), Some(DEPLOYMENT_PAUSED)))),
        None,
        "already reported"
    );
    assert_eq!(
        check(&paused(with_progressing(
            base(),
            Some(PROGRESS_DEADLINE_EXCEEDED)
        ))),
        None,
        "timed out"
    );
    assert_eq!(
        check(&with_progressing(base(), Some("ReplicaSetUpdated"))),
        None,
        "running"
    );

    let resumed = check(&with_progressing(base(), Some(DEPLOYMENT_PAUSED))).expect("resumed now");
    let c = condition(&resumed, PROGRESSING).unwrap();
    assert_eq!(
        (c.reason.as_deref(), c.message.as_deref()),
        (Some(DEPLOYMENT_RESUMED), Some("Deployment is resumed"))
    );

    let mut no_deadline = paused(with_progressing(base(), None));
    no_deadline.spec.as_mut().unwrap().progress_deadline_seconds = None;
    assert_eq!(check(&no_deadline), None, "no deadline");
    assert!(
        check(&paused(with_progressing(base(), None))).is_some(),
        "no condition yet"
    );
}

fn history(name: &str, spec: i32, replicas: i32) -> ReplicaSet {
    let mut set = rs_with_status(name, spec, replicas, 0);
    set.metadata.creation_timestamp = Some(Time(ts(&format!("2026-01-01T00:00:0{}Z", &name[4..]))));
    set
}

#[test]
fn cleanup_deployment_table() {
    let mut already_deleted = history("foo-1", 0, 0);
    already_deleted.metadata.deletion_timestamp = Some(Time(ts(NOW)));
    let cases = [
        (
            vec![
                history("foo-1", 0, 0),
                history("foo-2", 0, 0),
                history("foo-3", 0, 0),
            ],
            1,
            vec!["foo-1", "foo-2"],
        ),
        (
            vec![
                history("foo-1", 0, 0),
                history("foo-2", 0, 1),
                history("foo-3", 1, 0),
                history("foo-4", 1, 1),
            ],
            0,
            vec!["foo-1"],
        ),
        (
            vec![history("foo-1", 0, 0), history("foo-2", 0, 0)],
            0,
            vec!["foo-1", "foo-2"],
        ),
        (
            vec![history("foo-1", 1, 1), history("foo-2", 1, 1)],
            0,
            vec![],
        ),
        (vec![already_deleted], 0, vec![]),
        (
            vec![
                history("foo-1", 0, 0),
                history("foo-2", 0, 0),
                history("foo-3", 0, 0),
            ],
            i32::MAX,
            vec![],
        ),
    ];
    for (i, (old, limit, expected)) in cases.into_iter().enumerate() {
        let mut d = deployment("foo", 1, None, None, &[("foo", "bar")]);
        d.spec.as_mut().unwrap().revision_history_limit = Some(limit);
        let refs: Vec<&ReplicaSet> = old.iter().collect();
        let deleted: Vec<_> = history_to_delete(&d, &refs)
            .iter()
            .map(|rs| rs.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(deleted, expected, "scenario {i}");
    }
}

#[test]
fn history_goes_by_revision_and_waits_for_the_controller() {
    let mut d = deployment("foo", 1, None, None, &[]);
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    let revised = |name: &str, revision: &str| {
        let mut set = history(name, 0, 0);
        set.metadata.annotations =
            Some([(REVISION_ANNOTATION.to_string(), revision.to_string())].into());
        set
    };
    // Created first but rolled back to: revision 5 is kept, the lower revisions go.
    let rolled_back = revised("foo-1", "5");
    let second = revised("foo-2", "2");
    let mut unobserved = revised("foo-3", "3");
    unobserved.metadata.generation = Some(2);
    unobserved.status = Some(ReplicaSetStatus {
        observed_generation: Some(1),
        ..ReplicaSetStatus::default()
    });
    let deleted: Vec<_> = history_to_delete(&d, &[&rolled_back, &second, &unobserved])
        .iter()
        .map(|rs| rs.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(deleted, ["foo-2"]);
    d.spec.as_mut().unwrap().revision_history_limit = None;
    assert!(history_to_delete(&d, &[&rolled_back, &second]).is_empty());
}
