//! The status a sync writes (kube's `updateDaemonSetStatus` and `storeDaemonSetStatus`):
//! per node that should run the daemon, whether its oldest daemon pod is scheduled, ready,
//! available and up to date; pods on nodes that should not run it are misscheduled.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};

use super::placement::node_should_run;
use super::pods::by_creation_and_phase;
use super::update::{is_pod_updated, min_ready_seconds};
use crate::controllers::replicaset::pods::{available_at, is_available, is_ready};

/// The counts of a status, before they are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
}

/// `updateDaemonSetStatus`' tally over the nodes.
pub fn counts(
    ds: &DaemonSet,
    nodes: &[Node],
    by_node: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    now: Timestamp,
) -> Counts {
    let mut counts = Counts::default();
    for node in nodes {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let mut pods = by_node.get(name).cloned().unwrap_or_default();
        let scheduled = !pods.is_empty();
        if !node_should_run(node, ds).should_run {
            counts.misscheduled += i32::from(scheduled);
            continue;
        }
        counts.desired += 1;
        if !scheduled {
            continue;
        }
        counts.current += 1;
        pods.sort_by(by_creation_and_phase);
        let oldest = pods[0];
        if is_ready(oldest) {
            counts.ready += 1;
            counts.available += i32::from(is_available(oldest, min_ready_seconds(ds), now));
        }
        counts.updated += i32::from(is_pod_updated(oldest, hash, ds));
    }
    counts
}

/// `storeDaemonSetStatus`: the status to write, or `None` when the counts are written and
/// the generation observed already. `observe` is false while the sync did not act on this
/// generation.
pub fn status_update(ds: &DaemonSet, counts: Counts, observe: bool) -> Option<DaemonSetStatus> {
    let current = ds.status.clone().unwrap_or_default();
    let generation = ds.metadata.generation.unwrap_or(0);
    let unavailable = counts.desired - counts.available;
    let unchanged = current.desired_number_scheduled == counts.desired
        && current.current_number_scheduled == counts.current
        && current.number_misscheduled == counts.misscheduled
        && current.number_ready == counts.ready
        && current.updated_number_scheduled.unwrap_or(0) == counts.updated
        && current.number_available.unwrap_or(0) == counts.available
        && current.number_unavailable.unwrap_or(0) == unavailable
        && current.observed_generation.unwrap_or(0) >= generation;
    if unchanged {
        return None;
    }
    let mut status = current;
    if observe {
        status.observed_generation = Some(generation);
    }
    status.desired_number_scheduled = counts.desired;
    status.current_number_scheduled = counts.current;
    status.number_misscheduled = counts.misscheduled;
    status.number_ready = counts.ready;
    status.updated_number_scheduled = Some(counts.updated);
    status.number_available = Some(counts.available);
    status.number_unavailable = Some(unavailable);
    Some(status)
}

/// When to sync again for pods turning available: kube's `updatePod` enqueues the DaemonSet
/// minReadySeconds and a second (for clock skew) after one of its pods turns ready, and its
/// status sync minReadySeconds later while ready and available counts differ.
pub fn availability_requeue(
    ds: &DaemonSet,
    claimed: &[&Pod],
    counts: Counts,
    now: Timestamp,
) -> Option<Duration> {
    let min_ready = min_ready_seconds(ds);
    if min_ready <= 0 {
        return None;
    }
    let skew = Duration::from_secs(1);
    let turning = claimed
        .iter()
        .filter_map(|pod| available_at(pod, min_ready, now))
        .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or_default() + skew)
        .min();
    let min_ready = Duration::from_secs(u64::try_from(min_ready).unwrap_or(0));
    let recount = (counts.ready != counts.available).then_some(min_ready);
    [turning, recount].into_iter().flatten().min()
}

#[cfg(test)]
mod tests;
