//! What one sync of a StatefulSet does, as kube's `updateStatefulSet`
//! (stateful_set_control.go) decides it over the pods it owns: replace failed pods and create
//! missing ones in ordinal order, remove the ones beyond the replicas from the highest
//! ordinal, then roll the pods at or above the partition from the highest ordinal down, one
//! at a time (or, given `maxUnavailable`, as many as the unavailable pods leave room for). With
//! OrderedReady (kube's monotonic mode) each step waits for every earlier pod to be Running,
//! Ready and available; with Parallel nothing waits.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use peapod_apis::apps::v1::statefulset::{ON_DELETE, PARALLEL};

use super::identity::{ordinal_of, ordinal_range};
use crate::controllers::daemonset::history::REVISION_HASH_LABEL;
use crate::controllers::deployment::replicas::scaled_value;

/// Which revision's template a new pod is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    Current,
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create(i32, Revision),
    Delete(String),
}

/// The steps to send, and when to come back for a pod not yet available.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub requeue: Option<Duration>,
    /// Ordinals of Pending pods whose claims are made again if missing (kube's
    /// `createMissingPersistentVolumeClaims`: a claim deleted before its pod started).
    pub missing_claims: Vec<i32>,
}

/// The revisions by name, as the pods' `controller-revision-hash` holds them.
pub struct Revisions<'a> {
    pub current: &'a str,
    pub update: &'a str,
}

/// How a pod stands (`isRunningAndReady`, `isRunningAndAvailable`, `isTerminating`,
/// `isFailed`/`isSucceeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Finished,
    Terminating,
    NotReady,
    /// Ready, available after the given wait.
    ReadyFor(Duration),
    Available,
}

pub fn health(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Health {
    if pod.metadata.deletion_timestamp.is_some() {
        return Health::Terminating;
    }
    readiness(pod, min_ready_seconds, now)
}

/// A pod's health whether it is terminating or not (the status counts those ready too).
pub fn readiness(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Health {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();
    if phase == "Failed" || phase == "Succeeded" {
        return Health::Finished;
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == "True");
    let Some(ready) = ready.filter(|_| phase == "Running") else {
        return Health::NotReady;
    };
    let min_ready = Duration::from_secs(u64::try_from(min_ready_seconds).unwrap_or(0));
    if min_ready.is_zero() {
        return Health::Available;
    }
    let since = ready.last_transition_time.as_ref().map_or(now, |t| {
        Timestamp::from_second(t.0.as_second()).unwrap_or(now)
    });
    let elapsed = now.duration_since(since).unsigned_abs();
    match min_ready.checked_sub(elapsed) {
        Some(left) if !left.is_zero() => Health::ReadyFor(left),
        _ => Health::Available,
    }
}

/// `updateStatefulSet`'s decisions over the set's pods.
pub fn plan(set: &StatefulSet, pods: &[&Pod], revisions: &Revisions, now: Timestamp) -> Plan {
    let spec = set.spec.clone().unwrap_or_default();
    let monotonic = spec.pod_management_policy.as_deref() != Some(PARALLEL);
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let range = ordinal_range(set);
    let has_claim_templates = spec
        .volume_claim_templates
        .as_ref()
        .is_some_and(|t| !t.is_empty());
    let mut replicas: BTreeMap<i32, &Pod> = BTreeMap::new();
    let mut condemned: Vec<(i32, &Pod)> = Vec::new();
    for pod in pods {
        match ordinal_of(set, pod) {
            Some(ordinal) if range.contains(&ordinal) => {
                replicas.insert(ordinal, pod);
            }
            Some(ordinal) => condemned.push((ordinal, pod)),
            None => {}
        }
    }
    condemned.sort_by_key(|(ordinal, _)| *ordinal);
    let mut plan = Plan::default();
    let partition_ordinal = range.start + partition(set);
    for ordinal in range.clone() {
        let Some(pod) = replicas.get(&ordinal) else {
            let revision = match ordinal < partition_ordinal {
                true => Revision::Current,
                false => Revision::Update,
            };
            plan.steps.push(Step::Create(ordinal, revision));
            if monotonic {
                return plan;
            }
            continue;
        };
        let state = health(pod, min_ready, now);
        if state == Health::Finished {
            plan.steps.push(Step::Delete(name_of(pod)));
        }
        if has_claim_templates && is_pending(pod) {
            plan.missing_claims.push(ordinal);
        }
        if let Health::ReadyFor(left) = state {
            plan.requeue = Some(plan.requeue.map_or(left, |r| r.min(left)));
        }
        if monotonic && state != Health::Available {
            return plan;
        }
    }
    for (_, pod) in condemned.iter().rev() {
        let state = health(pod, min_ready, now);
        if state == Health::Terminating {
            if monotonic {
                return plan;
            }
            continue;
        }
        plan.steps.push(Step::Delete(name_of(pod)));
        if monotonic {
            return plan;
        }
    }
    if !plan.steps.is_empty()
        || spec.update_strategy.and_then(|s| s.type_).as_deref() == Some(ON_DELETE)
    {
        return plan;
    }
    let rolling = Rolling {
        replicas: &replicas,
        partition_ordinal,
        revisions,
        min_ready,
        now,
    };
    match max_unavailable(set) {
        Some(max) => rolling.several(&mut plan, max),
        None => rolling.one_at_a_time(&mut plan),
    }
    plan
}

/// The RollingUpdate over the pods in the ordinal range.
struct Rolling<'a> {
    replicas: &'a BTreeMap<i32, &'a Pod>,
    partition_ordinal: i32,
    revisions: &'a Revisions<'a>,
    min_ready: i32,
    now: Timestamp,
}

impl Rolling<'_> {
    /// kube's default: the highest ordinal at or above the partition not at the update
    /// revision is deleted (recreated at it on the next sync); an unavailable one waits.
    fn one_at_a_time(&self, plan: &mut Plan) {
        for (_, pod) in self.replicas.range(self.partition_ordinal..).rev() {
            let state = health(pod, self.min_ready, self.now);
            if revision_of(pod) != self.revisions.update && state != Health::Terminating {
                plan.steps.push(Step::Delete(name_of(pod)));
                return;
            }
            if state != Health::Available {
                return;
            }
        }
    }

    /// With `maxUnavailable` (kube's MaxUnavailableStatefulSet): as many outdated pods from
    /// the highest ordinal down to the partition as the unavailable pods of the whole range
    /// leave room for.
    fn several(&self, plan: &mut Plan, max_unavailable: usize) {
        let unavailable = self
            .replicas
            .values()
            .filter(|pod| health(pod, self.min_ready, self.now) != Health::Available)
            .count();
        let room = max_unavailable.saturating_sub(unavailable);
        let outdated = self
            .replicas
            .range(self.partition_ordinal..)
            .rev()
            .map(|(_, pod)| pod)
            .filter(|pod| revision_of(pod) != self.revisions.update)
            .filter(|pod| health(pod, self.min_ready, self.now) != Health::Terminating);
        for pod in outdated.take(room) {
            plan.steps.push(Step::Delete(name_of(pod)));
        }
    }
}

/// `getStatefulSetMaxUnavailable` when the set gives one: a percentage of the replicas rounded
/// down, at least 1.
fn max_unavailable(set: &StatefulSet) -> Option<usize> {
    let spec = set.spec.as_ref()?;
    let update = spec.update_strategy.as_ref()?.rolling_update.as_ref()?;
    let given = update.max_unavailable.as_ref()?;
    let replicas = spec.replicas.unwrap_or(1);
    let scaled = scaled_value(given, replicas, false).unwrap_or(1);
    Some(usize::try_from(scaled).unwrap_or(0).max(1))
}

fn is_pending(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && phase == Some("Pending")
}

fn partition(set: &StatefulSet) -> i32 {
    let strategy = set.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    let update = strategy.and_then(|s| s.rolling_update.as_ref());
    update.and_then(|u| u.partition).unwrap_or(0).max(0)
}

pub fn revision_of(pod: &Pod) -> &str {
    let labels = pod.metadata.labels.as_ref();
    labels
        .and_then(|l| l.get(REVISION_HASH_LABEL))
        .map_or("", String::as_str)
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests;
