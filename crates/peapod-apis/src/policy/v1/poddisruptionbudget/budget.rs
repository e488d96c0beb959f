//! How PodDisruptionBudgets judge pods, as kube's eviction REST, scheduler preemption and
//! disruption controller read them: which budgets cover a pod, which pods a budget may ignore,
//! whether evicting a pod violates a budget, and the DisruptionAllowed condition.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use peapod_api::label_selector;

/// The condition type the status carries.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// Reasons of the DisruptionAllowed condition.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const SYNC_FAILED: &str = "SyncFailed";

/// kube's IsPodReady: the Ready condition is True (what a budget counts as healthy).
pub fn is_pod_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Whether the pod is being deleted.
pub fn is_deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The eviction's canIgnorePDB: a pod that is Pending, finished or already being deleted is
/// evicted without asking its budgets.
pub fn can_ignore_budget(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Pending" | "Succeeded" | "Failed")) || is_deleting(pod)
}

/// The disruption controller's reading of a budget's selector over pod labels: a missing
/// selector selects nothing, an empty one everything (policy/v1), an invalid one nothing.
pub fn selects(pdb: &PodDisruptionBudget, labels: &BTreeMap<String, String>) -> bool {
    let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
    selector.is_some_and(|selector| label_selector::matches(selector, labels))
}

/// Whether the budget guards the pod against evictions and preemption: same namespace, a
/// valid non-empty selector matching the pod's labels (an empty one guards nothing there).
pub fn covers(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    pdb.metadata.namespace == pod.metadata.namespace
        && selector.is_some_and(|selector| {
            !label_selector::is_empty(selector) && label_selector::matches(selector, &labels)
        })
}

/// The disruptions each budget still allows while victims are chosen one after another (kube's
/// preemption `filterPodsWithPDBViolation`).
pub struct RemainingDisruptions<'a> {
    budgets: &'a [PodDisruptionBudget],
    allowed: Vec<i32>,
}

impl<'a> RemainingDisruptions<'a> {
    pub fn new(budgets: &'a [PodDisruptionBudget]) -> RemainingDisruptions<'a> {
        let allowed = budgets
            .iter()
            .map(|pdb| pdb.status.as_ref().map_or(0, |s| s.disruptions_allowed))
            .collect();
        RemainingDisruptions { budgets, allowed }
    }

    /// Takes one disruption from each budget covering `pod` (unless it already counts the
    /// pod as disrupted) and answers whether one of them goes below zero.
    pub fn take(&mut self, pod: &Pod) -> bool {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut violated = false;
        for (pdb, allowed) in self.budgets.iter().zip(self.allowed.iter_mut()) {
            let disrupted = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref());
            if !covers(pdb, pod) || disrupted.is_some_and(|d| d.contains_key(&name)) {
                continue;
            }
            *allowed -= 1;
            violated |= *allowed < 0;
        }
        violated
    }
}

/// Whether evicting `pod` alone would violate one of `budgets`.
pub fn eviction_violates_budget(pod: &Pod, budgets: &[PodDisruptionBudget]) -> bool {
    RemainingDisruptions::new(budgets).take(pod)
}

/// apimeta.SetStatusCondition: the condition of that type replaced, its transition time
/// kept unless its status changes.
pub fn set_condition(conditions: &mut Vec<Condition>, mut condition: Condition, now: Timestamp) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status != condition.status {
                existing.status = condition.status;
                existing.last_transition_time = Time(now);
            }
            existing.reason = condition.reason;
            existing.message = condition.message;
            existing.observed_generation = condition.observed_generation;
        }
        None => {
            condition.last_transition_time = Time(now);
            conditions.push(condition);
        }
    }
}

/// UpdateDisruptionAllowedCondition: DisruptionAllowed follows disruptionsAllowed.
pub fn update_disruption_allowed_condition(status: &mut PodDisruptionBudgetStatus, now: Timestamp) {
    let (state, reason) = match status.disruptions_allowed > 0 {
        true => ("True", SUFFICIENT_PODS),
        false => ("False", INSUFFICIENT_PODS),
    };
    let condition = disruption_allowed(status, state, reason, String::new(), now);
    set_condition(
        status.conditions.get_or_insert_with(Vec::new),
        condition,
        now,
    );
}

/// The DisruptionAllowed condition, at the status's observed generation.
pub fn disruption_allowed(
    status: &PodDisruptionBudgetStatus,
    state: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: DISRUPTION_ALLOWED.to_owned(),
        status: state.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    }
}
