//! A ReplicaSet's status from its active pods: kube's `calculateStatus` (counts and the
//! ReplicaFailure condition), `updateReplicaSetStatus`' rule for when to write it, and when a
//! sync must come back for pods that turn available after minReadySeconds.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::pods;
use crate::controllers::conditions;

/// `apps.ReplicaSetReplicaFailure`.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
/// `controller.FailedCreatePodReason`.
pub const FAILED_CREATE: &str = "FailedCreate";
/// `controller.FailedDeletePodReason`.
pub const FAILED_DELETE: &str = "FailedDelete";

/// `spec.replicas`, which the API server defaults to 1.
pub fn desired_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// `calculateStatus`: the counts over `active` (the claimed active pods) and the
/// ReplicaFailure condition, added with `manage_error` as its message when there is none yet,
/// removed once a sync manages without error. Zero counts are left out, as Go omits them.
pub fn calculate_status(
    rs: &ReplicaSet,
    active: &[&Pod],
    manage_error: Option<&str>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = active
        .iter()
        .filter(|p| {
            let labels = pods::labels(p);
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|p| pods::is_ready(p)).count();
    let min_ready = min_ready_seconds(rs);
    let available = active
        .iter()
        .filter(|p| pods::is_available(p, min_ready, now))
        .count();
    let has_failure = condition(&status, REPLICA_FAILURE).is_some();
    match manage_error {
        Some(message) if !has_failure => {
            let reason = failure_reason(active.len(), desired_replicas(rs));
            set_condition(&mut status, failure_condition(reason, message, now));
        }
        None if has_failure => remove_condition(&mut status, REPLICA_FAILURE),
        _ => {}
    }
    status.replicas = count(active.len());
    status.fully_labeled_replicas = nonzero(fully_labeled);
    status.ready_replicas = nonzero(ready);
    status.available_replicas = nonzero(available);
    status.terminating_replicas = None;
    status
}

/// FailedCreate when short of pods, FailedDelete when over, none when even.
fn failure_reason(active: usize, desired: i32) -> Option<&'static str> {
    match i64::try_from(active).unwrap_or(i64::MAX) - i64::from(desired) {
        diff if diff < 0 => Some(FAILED_CREATE),
        diff if diff > 0 => Some(FAILED_DELETE),
        _ => None,
    }
}

fn failure_condition(reason: Option<&str>, message: &str, now: Timestamp) -> ReplicaSetCondition {
    ReplicaSetCondition {
        type_: REPLICA_FAILURE.into(),
        status: "True".into(),
        reason: reason.map(str::to_owned),
        message: (!message.is_empty()).then(|| message.to_owned()),
        last_transition_time: Some(Time(now)),
    }
}

/// `GetCondition`.
pub fn condition<'a>(status: &'a ReplicaSetStatus, type_: &str) -> Option<&'a ReplicaSetCondition> {
    conditions::find(&status.conditions, type_)
}

/// `SetCondition`: replaces the condition of that type unless status and reason are unchanged.
pub fn set_condition(status: &mut ReplicaSetStatus, new: ReplicaSetCondition) {
    conditions::set(&mut status.conditions, new);
}

/// `RemoveCondition`; no conditions left is no list at all.
pub fn remove_condition(status: &mut ReplicaSetStatus, type_: &str) {
    conditions::remove(&mut status.conditions, type_);
}

/// `updateReplicaSetStatus`: `None` when kube skips the write (counts and conditions
/// unchanged and the generation already observed), else the status to write, stamped with
/// the generation acted on.
pub fn status_update(rs: &ReplicaSet, mut new: ReplicaSetStatus) -> Option<ReplicaSetStatus> {
    let old = rs.status.clone().unwrap_or_default();
    let generation = rs.metadata.generation.unwrap_or(0);
    let zero = |n: Option<i32>| n.unwrap_or(0);
    let unchanged = old.replicas == new.replicas
        && zero(old.fully_labeled_replicas) == zero(new.fully_labeled_replicas)
        && zero(old.ready_replicas) == zero(new.ready_replicas)
        && zero(old.available_replicas) == zero(new.available_replicas)
        && old.terminating_replicas == new.terminating_replicas
        && old.observed_generation.unwrap_or(0) == generation
        && old.conditions.unwrap_or_default() == new.conditions.clone().unwrap_or_default();
    if unchanged {
        return None;
    }
    new.observed_generation = (generation != 0).then_some(generation);
    Some(new)
}

/// When the sync must run again for pods that are ready but not yet available (kube 1.34's
/// rule): without a manage error, with minReadySeconds, and ready ≠ available in the written
/// status, at the moment the first such pod becomes available, or after minReadySeconds when
/// none can be named.
pub fn availability_requeue(
    rs: &ReplicaSet,
    active: &[&Pod],
    manage_failed: bool,
    now: Timestamp,
) -> Option<Duration> {
    let min_ready = min_ready_seconds(rs);
    let status = rs.status.clone().unwrap_or_default();
    let pending = status.ready_replicas.unwrap_or(0) != status.available_replicas.unwrap_or(0);
    if manage_failed || min_ready <= 0 || !pending {
        return None;
    }
    let first = active
        .iter()
        .filter_map(|p| pods::available_at(p, min_ready, now))
        .min();
    let fallback = Duration::from_secs(u64::from(min_ready.unsigned_abs()));
    Some(first.map_or(fallback, |at| {
        Duration::try_from(at.duration_since(now)).unwrap_or_default()
    }))
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn nonzero(n: usize) -> Option<i32> {
    (n != 0).then(|| count(n))
}

#[cfg(test)]
mod tests;
