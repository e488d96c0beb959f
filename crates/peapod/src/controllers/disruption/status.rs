//! The pure part of the disruption controller's sync: the expected and desired counts from
//! the spec, the disrupted pods still pending, the healthy count, and the status to write
//! (`getExpectedPodCount`, `buildDisruptedPodMap`, `countHealthyPods`, `updatePdbStatus`,
//! `failSafe`).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{
    PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_apis::policy::v1::poddisruptionbudget::budget::{
    disruption_allowed, is_pod_ready, set_condition, update_disruption_allowed_condition,
    DISRUPTION_ALLOWED, INSUFFICIENT_PODS, SUFFICIENT_PODS, SYNC_FAILED,
};

use crate::controllers::deployment::replicas;

/// kube's DeletionTimeout: how long an approved eviction keeps its pod out of the healthy
/// count before the controller assumes it will not happen.
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

/// Whether the expected count comes from the pods' controllers' scale (maxUnavailable, or a
/// percentage minAvailable) rather than from the pods themselves.
pub fn needs_scale(spec: &PodDisruptionBudgetSpec) -> bool {
    spec.max_unavailable.is_some() || matches!(spec.min_available, Some(IntOrString::String(_)))
}

/// getExpectedPodCount's desired healthy count for `expected` pods (`scaled`: the sum of the
/// controllers' scale, asked for only when [`needs_scale`]).
pub fn desired_healthy(spec: &PodDisruptionBudgetSpec, expected: i32) -> Result<i32, String> {
    if let Some(max_unavailable) = &spec.max_unavailable {
        let unavailable = scaled_value(max_unavailable, expected)?;
        return Ok((expected - unavailable).max(0));
    }
    match &spec.min_available {
        Some(min_available) => scaled_value(min_available, expected),
        None => Ok(0),
    }
}

/// intstr.GetScaledValueFromIntOrPercent, rounding up.
fn scaled_value(value: &IntOrString, total: i32) -> Result<i32, String> {
    replicas::scaled_value(value, total, true).map_err(|err| err.to_string())
}

/// What buildDisruptedPodMap finds of a budget's recorded disruptions.
#[derive(Debug, Default)]
pub struct Disruptions {
    /// Those of live pods still within the timeout.
    pub pending: BTreeMap<String, Time>,
    /// When the earliest of them times out.
    pub recheck: Option<Timestamp>,
    /// The pods still there past the timeout, which kube warns about.
    pub overdue: Vec<String>,
}

/// buildDisruptedPodMap: the budget's disrupted pods still alive and within the timeout.
pub fn pending_disruptions(
    pods: &[&Pod],
    pdb: &PodDisruptionBudget,
    now: Timestamp,
) -> Disruptions {
    let recorded = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref());
    let mut found = Disruptions::default();
    let Some(recorded) = recorded else {
        return found;
    };
    for pod in pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
    {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(disrupted) = recorded.get(&name) else {
            continue;
        };
        let expected_deletion = disrupted.0 + DELETION_TIMEOUT;
        if expected_deletion < now {
            found.overdue.push(name);
            continue;
        }
        let recheck = found
            .recheck
            .map_or(expected_deletion, |at| at.min(expected_deletion));
        found.recheck = Some(recheck);
        found.pending.insert(name, disrupted.clone());
    }
    found
}

/// countHealthyPods: ready pods neither being deleted nor about to be.
pub fn count_healthy(pods: &[&Pod], pending: &BTreeMap<String, Time>, now: Timestamp) -> i32 {
    let healthy = pods.iter().filter(|pod| {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let expected_soon = pending
            .get(name)
            .is_some_and(|at| at.0 + DELETION_TIMEOUT > now);
        pod.metadata.deletion_timestamp.is_none() && !expected_soon && is_pod_ready(pod)
    });
    i32::try_from(healthy.count()).unwrap_or(i32::MAX)
}

/// The counts one sync found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub expected_pods: i32,
    pub disrupted_pods: BTreeMap<String, Time>,
}

/// updatePdbStatus: the status to write, or `None` when the stored one already says it.
pub fn status_update(
    pdb: &PodDisruptionBudget,
    counts: Counts,
    now: Timestamp,
) -> Option<PodDisruptionBudgetStatus> {
    let allowed = counts.current_healthy - counts.desired_healthy;
    let allowed = match counts.expected_pods <= 0 || allowed <= 0 {
        true => 0,
        false => allowed,
    };
    let old = pdb.status.clone().unwrap_or_default();
    let generation = pdb.metadata.generation;
    let old_disrupted = old.disrupted_pods.clone().unwrap_or_default();
    let unchanged = old.current_healthy == counts.current_healthy
        && old.desired_healthy == counts.desired_healthy
        && old.expected_pods == counts.expected_pods
        && old.disruptions_allowed == allowed
        && old_disrupted == counts.disrupted_pods
        && old.observed_generation == generation
        && conditions_are_up_to_date(&old, generation);
    if unchanged {
        return None;
    }
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: counts.current_healthy,
        desired_healthy: counts.desired_healthy,
        expected_pods: counts.expected_pods,
        disruptions_allowed: allowed,
        disrupted_pods: Some(counts.disrupted_pods).filter(|pods| !pods.is_empty()),
        observed_generation: generation,
        conditions: old.conditions,
    };
    update_disruption_allowed_condition(&mut status, now);
    Some(status)
}

/// ConditionsAreUpToDate: DisruptionAllowed says what disruptionsAllowed does, at the
/// budget's generation.
fn conditions_are_up_to_date(status: &PodDisruptionBudgetStatus, generation: Option<i64>) -> bool {
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_ALLOWED);
    let Some(condition) = condition else {
        return false;
    };
    let expected = match status.disruptions_allowed > 0 {
        true => ("True", SUFFICIENT_PODS),
        false => ("False", INSUFFICIENT_PODS),
    };
    status.observed_generation == generation
        && (condition.status.as_str(), condition.reason.as_str()) == expected
}

/// failSafe: a budget whose sync failed allows no disruption and says why.
pub fn fail_safe(
    pdb: &PodDisruptionBudget,
    error: &str,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let condition = disruption_allowed(&status, "False", SYNC_FAILED, error.to_owned(), now);
    set_condition(
        status.conditions.get_or_insert_with(Vec::new),
        condition,
        now,
    );
    status
}

#[cfg(test)]
mod tests;
