//! A Deployment's status from its ReplicaSets (sync.go `calculateStatus`), whether a sync is
//! a scaling event, the paused/resumed Progressing condition (`checkPausedConditions`) and
//! the old ReplicaSets past the revision history limit (`cleanupDeployment`).

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};

use super::conditions::{
    condition, new_condition, set_condition, AVAILABLE, DEPLOYMENT_PAUSED, DEPLOYMENT_RESUMED,
    FALSE, MINIMUM_REPLICAS_AVAILABLE, MINIMUM_REPLICAS_UNAVAILABLE, PROGRESSING,
    PROGRESS_DEADLINE_EXCEEDED, TRUE, UNKNOWN,
};
use super::order::{by_revision, sorted};
use super::progress::{has_progress_deadline, has_revision_history_limit};
use super::replicas::{
    actual_replica_count, available_replica_count, filter_active, max_unavailable,
    ready_replica_count, replica_count,
};
use super::revision::desired_replicas_annotation;
use super::spec::{
    deployment_replicas, paused, revision_history_limit, rs_replicas, rs_status_replicas, status,
};

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// `calculateStatus`: the counts over `all` (the new set included), updated replicas from
/// `new_rs`, the Deployment's conditions with Available set from the minimum availability.
/// Zero counts are left out, as Go omits them.
pub fn calculate_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let available = available_replica_count(all);
    let unavailable = (replica_count(all) - available).max(0);
    let updated: Vec<&ReplicaSet> = new_rs.into_iter().collect();
    let current = status(d);
    let generation = d.metadata.generation.unwrap_or(0);
    let mut new_status = DeploymentStatus {
        observed_generation: (generation != 0).then_some(generation),
        replicas: nonzero(actual_replica_count(all)),
        updated_replicas: nonzero(actual_replica_count(&updated)),
        ready_replicas: nonzero(ready_replica_count(all)),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero(unavailable),
        collision_count: current.collision_count,
        conditions: current.conditions,
        // kube 1.33's alpha field: a 1.32 controller leaves it unset.
        terminating_replicas: None,
    };
    let availability = if available >= deployment_replicas(d) - max_unavailable(d) {
        let message = "Deployment has minimum availability.";
        new_condition(AVAILABLE, TRUE, MINIMUM_REPLICAS_AVAILABLE, message, now)
    } else {
        let message = "Deployment does not have minimum availability.";
        new_condition(AVAILABLE, FALSE, MINIMUM_REPLICAS_UNAVAILABLE, message, now)
    };
    set_condition(&mut new_status, availability);
    new_status
}

/// `isScalingEvent`: an active set was last sized for other replicas than the Deployment's.
pub fn is_scaling_event(d: &Deployment, active_sets: &[&ReplicaSet]) -> bool {
    let replicas = deployment_replicas(d);
    filter_active(active_sets)
        .iter()
        .filter_map(|rs| desired_replicas_annotation(rs))
        .any(|desired| desired != replicas)
}

/// `checkPausedConditions`: `status` with Progressing Unknown/DeploymentPaused when the
/// Deployment was just paused or DeploymentResumed when just resumed; `None` when nothing
/// changes (no deadline, an unchanged pause, or a timeout already reported).
pub fn paused_condition(
    d: &Deployment,
    status: &DeploymentStatus,
    now: Timestamp,
) -> Option<DeploymentStatus> {
    if !has_progress_deadline(d) {
        return None;
    }
    let reason = condition(status, PROGRESSING).and_then(|c| c.reason.as_deref());
    if reason == Some(PROGRESS_DEADLINE_EXCEEDED) {
        return None;
    }
    let paused_reported = reason == Some(DEPLOYMENT_PAUSED);
    let (reason, message) = match (paused(d), paused_reported) {
        (true, false) => (DEPLOYMENT_PAUSED, "Deployment is paused"),
        (false, true) => (DEPLOYMENT_RESUMED, "Deployment is resumed"),
        _ => return None,
    };
    let mut updated = status.clone();
    set_condition(
        &mut updated,
        new_condition(PROGRESSING, UNKNOWN, reason, message, now),
    );
    Some(updated)
}

/// `cleanupDeployment`: with a revision history limit, the old sets beyond it (lowest
/// revisions first) that are scaled to and at 0, observed at their generation and not already
/// being deleted: the ones to delete, in order.
pub fn history_to_delete<'a>(d: &Deployment, old: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    if !has_revision_history_limit(d) {
        return Vec::new();
    }
    let limit = revision_history_limit(d).unwrap_or(0);
    let alive: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let excess = i64::try_from(alive.len()).unwrap_or(i64::MAX) - i64::from(limit);
    let Ok(excess) = usize::try_from(excess) else {
        return Vec::new();
    };
    sorted(&alive, by_revision)
        .into_iter()
        .take(excess)
        .filter(|rs| rs_status_replicas(rs) == 0 && rs_replicas(rs) == 0 && observed(rs))
        .collect()
}

/// The ReplicaSet controller has seen the set's latest spec.
fn observed(rs: &ReplicaSet) -> bool {
    let observed = rs
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    rs.metadata.generation.unwrap_or(0) <= observed
}

#[cfg(test)]
mod tests;
