//! Which pods go first when a ReplicaSet scales down: kube's `getPodsToDelete` over the
//! `ActivePodsWithRanks` order, where a pod's rank is how many active related pods (those of
//! ReplicaSets sharing its owner) run on its node.

use std::collections::{BTreeSet, HashMap};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::pods;

/// `core.PodDeletionCost`: pods with a lower cost go first.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// A pod and its rank: the number of active related pods colocated with it.
#[derive(Debug, Clone, Copy)]
pub struct RankedPod<'a> {
    pub pod: &'a Pod,
    pub rank: usize,
}

/// `getPodsToDelete`: the `count` pods of `active` to delete, `related` ranking them. All of
/// them, unsorted, when `count` covers the list.
pub fn pods_to_delete<'a>(
    active: &[&'a Pod],
    related: &[&Pod],
    count: usize,
    now: Timestamp,
) -> Vec<&'a Pod> {
    if count >= active.len() {
        return active.to_vec();
    }
    let mut ranked = rank_by_colocation(active, related);
    sort_for_deletion(&mut ranked, now);
    ranked.into_iter().take(count).map(|r| r.pod).collect()
}

/// `getPodsRankedByRelatedPodsOnSameNode`.
pub fn rank_by_colocation<'a>(pods: &[&'a Pod], related: &[&Pod]) -> Vec<RankedPod<'a>> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| pods::is_active(p)) {
        *on_node.entry(pods::node_name(pod)).or_default() += 1;
    }
    pods.iter()
        .map(|pod| RankedPod {
            pod,
            rank: on_node.get(pods::node_name(pod)).copied().unwrap_or(0),
        })
        .collect()
}

/// Sorts the pods in deletion order. kube's `Less` is not always transitive (ready times in
/// one log bucket compare by uid, equal ones by restarts), so this merge sort asks only
/// `deleted_before`, and never the total order `slice::sort_by` insists on.
pub fn sort_for_deletion(pods: &mut Vec<RankedPod<'_>>, now: Timestamp) {
    if pods.len() < 2 {
        return;
    }
    let right = pods.split_off(pods.len() / 2);
    let mut left = std::mem::take(pods);
    let mut right = right;
    sort_for_deletion(&mut left, now);
    sort_for_deletion(&mut right, now);
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
        let next = if deleted_before(b, a, now) {
            r.next()
        } else {
            l.next()
        };
        pods.extend(next);
    }
    pods.extend(l.chain(r));
}

/// `ActivePodsWithRanks.Less`: whether `a` should be deleted before `b`.
pub fn deleted_before(a: &RankedPod<'_>, b: &RankedPod<'_>, now: Timestamp) -> bool {
    let (pa, pb) = (a.pod, b.pod);
    let (node_a, node_b) = (pods::node_name(pa), pods::node_name(pb));
    if node_a != node_b && (node_a.is_empty() || node_b.is_empty()) {
        return node_a.is_empty();
    }
    let (phase_a, phase_b) = (phase_ordinal(pa), phase_ordinal(pb));
    if phase_a != phase_b {
        return phase_a < phase_b;
    }
    let (ready_a, ready_b) = (pods::is_ready(pa), pods::is_ready(pb));
    if ready_a != ready_b {
        return !ready_a;
    }
    let (cost_a, cost_b) = (deletion_cost(pa), deletion_cost(pb));
    if cost_a != cost_b {
        return cost_a < cost_b;
    }
    if a.rank != b.rank {
        return a.rank > b.rank;
    }
    let (since_a, since_b) = (pods::ready_since(pa), pods::ready_since(pb));
    if ready_a && ready_b && since_a != since_b {
        return newer_first(since_a, since_b, (pa, pb), now);
    }
    if let Some(more) = more_restarts(pa, pb) {
        return more;
    }
    let created_a = pa.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let created_b = pb.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if created_a != created_b {
        return newer_first(created_a, created_b, (pa, pb), now);
    }
    false
}

/// `podPhaseToOrdinal`: Pending < Unknown < Running; any other phase counts as Pending.
fn phase_ordinal(pod: &Pod) -> u8 {
    match pods::phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// `GetDeletionCostFromPodAnnotations`: the annotation as an int32, 0 when absent or invalid
/// (a leading `+` or zero is invalid).
pub fn deletion_cost(pod: &Pod) -> i32 {
    let annotations = pod.metadata.annotations.as_ref();
    let Some(value) = annotations.and_then(|a| a.get(DELETION_COST)) else {
        return 0;
    };
    let valid_start = match value.as_bytes().first() {
        Some(b'-' | b'1'..=b'9') => true,
        Some(b'0') => value == "0",
        _ => false,
    };
    if !valid_start {
        return 0;
    }
    value.parse().unwrap_or(0)
}

/// Unset times first, then (LogarithmicScaleDown, GA) the lower base-2 bucket of the age
/// in nanoseconds, the lower uid breaking ties inside a bucket.
fn newer_first(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    (pa, pb): (&Pod, &Pod),
    now: Timestamp,
) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return a.is_none();
    };
    let difference = age_bucket(a, now) - age_bucket(b, now);
    if difference == 0 {
        return pods::uid(pa) < pods::uid(pb);
    }
    difference < 0
}

/// `int64(math.Log2(float64(now - t)))`, -1 for times not in the past.
fn age_bucket(time: Timestamp, now: Timestamp) -> i64 {
    let age = now.as_nanosecond() - time.as_nanosecond();
    if age <= 0 {
        return -1;
    }
    (age as f64).log2() as i64
}

/// `compareMaxContainerRestarts`: `Some(true)` when `a` restarted more (its containers, then
/// its sidecars), `None` when both restarted as often.
fn more_restarts(a: &Pod, b: &Pod) -> Option<bool> {
    let (containers_a, sidecars_a) = max_restarts(a);
    let (containers_b, sidecars_b) = max_restarts(b);
    if containers_a != containers_b {
        return Some(containers_a > containers_b);
    }
    (sidecars_a != sidecars_b).then_some(sidecars_a > sidecars_b)
}

/// The most restarts of a regular container, and of a restartable init container (sidecar).
fn max_restarts(pod: &Pod) -> (i32, i32) {
    let Some(status) = pod.status.as_ref() else {
        return (0, 0);
    };
    let containers = status.container_statuses.iter().flatten();
    let regular = containers
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
        .max(0);
    let init = pod.spec.as_ref().and_then(|s| s.init_containers.as_ref());
    let sidecar_names: BTreeSet<&str> = init
        .into_iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let init_statuses = status.init_container_statuses.iter().flatten();
    let sidecars = init_statuses
        .filter(|c| sidecar_names.contains(c.name.as_str()))
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
        .max(0);
    (regular, sidecars)
}

#[cfg(test)]
mod tests;
