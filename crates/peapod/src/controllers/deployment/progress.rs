//! Whether a rollout completed, moves, or ran past its deadline (deployment_util.go), and the
//! Progressing and ReplicaFailure conditions progress.go `syncRolloutStatus` writes from that,
//! with the requeue of `requeueStuckDeployment`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};

use super::conditions::{
    condition, new_condition, remove_condition, replica_set_to_deployment_condition, set_condition,
    FALSE, NEW_RS_AVAILABLE, PROGRESSING, PROGRESS_DEADLINE_EXCEEDED, REPLICA_FAILURE,
    REPLICA_SET_UPDATED, TRUE,
};
use super::spec::{
    deployment_replicas, name, progress_deadline_seconds, revision_history_limit, status,
};

fn counts(status: &DeploymentStatus) -> (i32, i32, i32, i32) {
    (
        status.replicas.unwrap_or(0),
        status.updated_replicas.unwrap_or(0),
        status.ready_replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
    )
}

/// `HasProgressDeadline`: set, and not the "never" of `i32::MAX`.
pub fn has_progress_deadline(d: &Deployment) -> bool {
    progress_deadline_seconds(d).is_some_and(|s| s != i32::MAX)
}

/// `HasRevisionHistoryLimit`: set, and not the "keep all" of `i32::MAX`.
pub fn has_revision_history_limit(d: &Deployment) -> bool {
    revision_history_limit(d).is_some_and(|l| l != i32::MAX)
}

/// `DeploymentComplete`: every replica updated and available, no old pod left, and the
/// status of the current generation.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = deployment_replicas(d);
    let (current, updated, _, available) = counts(status);
    updated == replicas
        && current == replicas
        && available == replicas
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: against the Deployment's status, more updated, ready or available
/// replicas, or fewer old ones.
pub fn deployment_progressing(d: &Deployment, new_status: &DeploymentStatus) -> bool {
    let (old_current, old_updated, old_ready, old_available) = counts(&status(d));
    let (current, updated, ready, available) = counts(new_status);
    updated > old_updated
        || current - updated < old_current - old_updated
        || ready > old_ready
        || available > old_available
}

/// `DeploymentTimedOut`: the Progressing condition was last updated more than
/// progressDeadlineSeconds before `now`, or already says so; never after a completed rollout.
pub fn deployment_timed_out(d: &Deployment, new_status: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline_seconds(d).filter(|_| has_progress_deadline(d)) else {
        return false;
    };
    let Some(progressing) = condition(new_status, PROGRESSING) else {
        return false;
    };
    match progressing.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(PROGRESS_DEADLINE_EXCEEDED) => true,
        _ => {
            let from = progressing
                .last_update_time
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
            from + SignedDuration::from_secs(i64::from(deadline)) < now
        }
    }
}

fn rollout_message(d: &Deployment, new_rs: Option<&ReplicaSet>, outcome: &str) -> String {
    match new_rs {
        Some(rs) => format!("ReplicaSet {:?} {outcome}.", name(&rs.metadata)),
        None => format!("Deployment {:?} {outcome}.", name(&d.metadata)),
    }
}

/// `syncRolloutStatus`, pure: `new_status` (from [`super::status::calculate_status`]) with
/// the Progressing condition for a rollout that completed, moves or timed out (none without a
/// deadline) and the ReplicaFailure of the sets (the new set's first). Write the status when
/// it differs from the Deployment's; when it does not, the duration is when to look again
/// for a stuck rollout: zero for now (rate-limited), else the delay to enqueue it after.
pub fn rollout_status(
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    all: &[&ReplicaSet],
    mut new_status: DeploymentStatus,
    now: Timestamp,
) -> (DeploymentStatus, Option<Duration>) {
    if !has_progress_deadline(d) {
        remove_condition(&mut new_status, PROGRESSING);
    }
    let current = status(d);
    let current_cond = condition(&current, PROGRESSING);
    let completed_before = new_status.replicas == new_status.updated_replicas
        && current_cond.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    if has_progress_deadline(d) && !completed_before {
        if deployment_complete(d, &new_status) {
            let message = rollout_message(d, new_rs, "has successfully progressed");
            set_condition(
                &mut new_status,
                new_condition(PROGRESSING, TRUE, NEW_RS_AVAILABLE, &message, now),
            );
        } else if deployment_progressing(d, &new_status) {
            let message = rollout_message(d, new_rs, "is progressing");
            let mut progressing =
                new_condition(PROGRESSING, TRUE, REPLICA_SET_UPDATED, &message, now);
            // Progress refreshes lastUpdateTime even with the same reason, so replace outright.
            if let Some(current) = current_cond {
                if current.status == TRUE {
                    progressing.last_transition_time = current.last_transition_time.clone();
                }
                remove_condition(&mut new_status, PROGRESSING);
            }
            set_condition(&mut new_status, progressing);
        } else if deployment_timed_out(d, &new_status, now) {
            let message = rollout_message(d, new_rs, "has timed out progressing");
            set_condition(
                &mut new_status,
                new_condition(
                    PROGRESSING,
                    FALSE,
                    PROGRESS_DEADLINE_EXCEEDED,
                    &message,
                    now,
                ),
            );
        }
    }
    match replica_failure(all, new_rs) {
        Some(failure) => set_condition(&mut new_status, failure),
        None => remove_condition(&mut new_status, REPLICA_FAILURE),
    }
    let requeue = (current == new_status)
        .then(|| stuck_requeue(d, &new_status, now))
        .flatten();
    (new_status, requeue)
}

/// `getReplicaFailures`' first condition: the new set's failure over the others'.
fn replica_failure(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<k8s_openapi::api::apps::v1::DeploymentCondition> {
    let failure_of = |rs: &ReplicaSet| {
        let conditions = rs.status.as_ref()?.conditions.as_ref()?;
        conditions
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .cloned()
    };
    new_rs
        .and_then(failure_of)
        .or_else(|| all.iter().find_map(|rs| failure_of(rs)))
        .map(|c| replica_set_to_deployment_condition(&c))
}

/// `requeueStuckDeployment`: for a rollout with a deadline that is neither complete nor timed
/// out, when its deadline passes (plus a second against clock skew, as kube's AddAfter); zero
/// when less than a second is left.
pub fn stuck_requeue(
    d: &Deployment,
    new_status: &DeploymentStatus,
    now: Timestamp,
) -> Option<Duration> {
    let current = status(d);
    let progressing = condition(&current, PROGRESSING)?;
    let deadline = progress_deadline_seconds(d).filter(|_| has_progress_deadline(d))?;
    if deployment_complete(d, new_status)
        || progressing.reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED)
    {
        return None;
    }
    let from = progressing
        .last_update_time
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    let after = (from + SignedDuration::from_secs(i64::from(deadline))).duration_since(now);
    if after < SignedDuration::from_secs(1) {
        return Some(Duration::ZERO);
    }
    Duration::try_from(after + SignedDuration::from_secs(1)).ok()
}

#[cfg(test)]
mod tests;
