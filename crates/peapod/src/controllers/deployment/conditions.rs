//! A Deployment's conditions, as deployment_util.go sets them: the types, kube's reasons, and
//! the rule that a condition is replaced only when its status or reason changes, keeping its
//! lastTransitionTime while the status stays.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus, ReplicaSetCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::controllers::conditions;

/// `apps.DeploymentAvailable`: at least the minimum replicas are available.
pub const AVAILABLE: &str = "Available";
/// `apps.DeploymentProgressing`: the rollout moves, completed, or ran out of time.
pub const PROGRESSING: &str = "Progressing";
/// `apps.DeploymentReplicaFailure`: a ReplicaSet could not create or delete pods.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

/// `ReplicaSetUpdatedReason`: one of the ReplicaSets was scaled as part of the rollout.
pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
/// `FailedRSCreateReason`: the new ReplicaSet could not be created.
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
/// `NewReplicaSetReason`: the new ReplicaSet was created.
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
/// `FoundNewRSReason`: an existing ReplicaSet runs the template.
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
/// `NewRSAvailableReason`: the rollout completed.
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// `TimedOutReason`: no progress within progressDeadlineSeconds.
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
/// `PausedDeployReason`.
pub const DEPLOYMENT_PAUSED: &str = "DeploymentPaused";
/// `ResumedDeployReason`.
pub const DEPLOYMENT_RESUMED: &str = "DeploymentResumed";
/// `MinimumReplicasAvailable`.
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
/// `MinimumReplicasUnavailable`.
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// `NewDeploymentCondition`: updated and transitioned `now`.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: (!reason.is_empty()).then(|| reason.into()),
        message: (!message.is_empty()).then(|| message.into()),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// `GetDeploymentCondition`.
pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    conditions::find(&status.conditions, type_)
}

/// `SetDeploymentCondition`: the shared [`conditions::set`], keeping the lastTransitionTime
/// when only the reason changed.
pub fn set_condition(status: &mut DeploymentStatus, mut new: DeploymentCondition) {
    if let Some(current) = condition(status, &new.type_).filter(|c| c.status == new.status) {
        new.last_transition_time = current.last_transition_time.clone();
    }
    conditions::set(&mut status.conditions, new);
}

/// `RemoveDeploymentCondition`.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    conditions::remove(&mut status.conditions, type_);
}

/// `ReplicaSetToDeploymentCondition`: a ReplicaSet's failure promoted to its Deployment.
pub fn replica_set_to_deployment_condition(c: &ReplicaSetCondition) -> DeploymentCondition {
    DeploymentCondition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        last_update_time: c.last_transition_time.clone(),
        last_transition_time: c.last_transition_time.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(type_: &str, status: &str, reason: &str) -> DeploymentCondition {
        DeploymentCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            ..DeploymentCondition::default()
        }
    }

    fn progressing() -> DeploymentCondition {
        plain(PROGRESSING, FALSE, "ForSomeReason")
    }

    fn progressing2() -> DeploymentCondition {
        plain(PROGRESSING, TRUE, "BecauseItIs")
    }

    fn available() -> DeploymentCondition {
        plain(AVAILABLE, TRUE, "AwesomeController")
    }

    fn with(conditions: Vec<DeploymentCondition>) -> DeploymentStatus {
        DeploymentStatus {
            conditions: Some(conditions),
            ..DeploymentStatus::default()
        }
    }

    #[test]
    fn get_condition() {
        let status = with(vec![progressing(), available()]);
        assert!(condition(&status, AVAILABLE).is_some());
        assert!(condition(&status, REPLICA_FAILURE).is_none());
    }

    #[test]
    fn set_condition_table() {
        let cases = [
            (
                "set for the first time",
                DeploymentStatus::default(),
                available(),
                with(vec![available()]),
            ),
            (
                "simple set",
                with(vec![progressing()]),
                available(),
                with(vec![progressing(), available()]),
            ),
            (
                "overwrite",
                with(vec![progressing()]),
                progressing2(),
                with(vec![progressing2()]),
            ),
        ];
        for (name, mut status, new, expected) in cases {
            set_condition(&mut status, new);
            assert_eq!(status, expected, "{name}");
        }
    }

    #[test]
    fn remove_condition_table() {
        let cases = [
            (
                "remove from empty status",
                DeploymentStatus::default(),
                PROGRESSING,
                DeploymentStatus::default(),
            ),
            (
                "simple remove",
                with(vec![progressing()]),
                PROGRESSING,
                DeploymentStatus::default(),
            ),
            (
                "doesn't remove anything",
                with(vec![progressing(), available()]),
                REPLICA_FAILURE,
                with(vec![progressing(), available()]),
            ),
        ];
        for (name, mut status, type_, expected) in cases {
            remove_condition(&mut status, type_);
            assert_eq!(status, expected, "{name}");
        }
    }

    #[test]
    fn a_new_reason_with_the_same_status_keeps_the_transition_time() {
        let then: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let mut status = DeploymentStatus::default();
        set_condition(
            &mut status,
            new_condition(PROGRESSING, TRUE, REPLICA_SET_UPDATED, "a", then),
        );
        set_condition(
            &mut status,
            new_condition(PROGRESSING, TRUE, REPLICA_SET_UPDATED, "b", now),
        );
        assert_eq!(
            condition(&status, PROGRESSING).unwrap().message.as_deref(),
            Some("a")
        );
        set_condition(
            &mut status,
            new_condition(PROGRESSING, TRUE, NEW_RS_AVAILABLE, "c", now),
        );
        let c = condition(&status, PROGRESSING).unwrap();
        assert_eq!(
            (c.last_transition_time.clone(), c.last_update_time.clone()),
            (Some(Time(then)), Some(Time(now)))
        );
        set_condition(
            &mut status,
            new_condition(PROGRESSING, FALSE, PROGRESS_DEADLINE_EXCEEDED, "d", now),
        );
        let c = condition(&status, PROGRESSING).unwrap();
        assert_eq!(c.last_transition_time, Some(Time(now)));
    }

    #[test]
    fn replica_set_failures_become_deployment_conditions() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let failure = ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: TRUE.into(),
            reason: Some("FailedCreate".into()),
            message: Some("quota".into()),
            last_transition_time: Some(Time(at)),
        };
        let promoted = replica_set_to_deployment_condition(&failure);
        assert_eq!(promoted.last_update_time, Some(Time(at)));
        assert_eq!(promoted.reason.as_deref(), Some("FailedCreate"));
        assert_eq!(promoted.type_, REPLICA_FAILURE);
    }
}
