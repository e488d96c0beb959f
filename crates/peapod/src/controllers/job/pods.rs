//! What the Job controller reads off its pods, as kube's job_controller.go and controller
//! utilities say it: the tracking finalizer, failed (a deleted unfinished pod counts, unless
//! only failed pods are replaced), terminating, ready, when a pod finished, the `ActivePods`
//! order that picks which pods to delete first, and the container restarts that
//! `restartPolicy: OnFailure` counts against the backoff limit.

use std::cmp::Ordering;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use crate::controllers::replicaset::pods::{is_active, is_ready, node_name, phase, ready_since};

/// `batch.JobTrackingFinalizer`: held on each pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    let finalizers = pod.metadata.finalizers.iter().flatten();
    finalizers.into_iter().any(|f| f == TRACKING_FINALIZER)
}

/// `removeTrackingFinalizerPatch`: the strategic-merge patch that drops the finalizer, if held.
pub fn remove_finalizer_patch(pod: &Pod) -> Option<Value> {
    has_tracking_finalizer(pod)
        .then(|| json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}))
}

/// `onlyReplaceFailedPods`: podReplacementPolicy Failed, or any pod failure policy.
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.is_some_and(|s| {
        s.pod_replacement_policy.as_deref() == Some("Failed") || s.pod_failure_policy.is_some()
    })
}

/// `isPodFailed`: Failed, or deleted before it succeeded (unless only failed pods are
/// replaced), as orphans never reach a terminal phase.
pub fn is_failed(pod: &Pod, job: &Job) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && phase(pod) != "Succeeded"
}

pub fn is_succeeded(pod: &Pod) -> bool {
    phase(pod) == "Succeeded"
}

/// `FilterTerminatingPods`' test: being deleted and not finished yet.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !matches!(phase(pod), "Succeeded" | "Failed")
}

pub fn count_terminating(pods: &[&Pod]) -> i32 {
    count(pods.iter().filter(|p| is_terminating(p)))
}

pub fn count_ready(pods: &[&Pod]) -> i32 {
    count(pods.iter().filter(|p| is_ready(p)))
}

pub fn active<'a>(pods: &[&'a Pod]) -> Vec<&'a Pod> {
    pods.iter().copied().filter(|p| is_active(p)).collect()
}

pub fn count<I: Iterator>(items: I) -> i32 {
    i32::try_from(items.count()).unwrap_or(i32::MAX)
}

/// `getFinishedTime`: the last container's finish, else when Ready turned False, else the
/// deletion (minus its grace period), else the creation.
pub fn finished_time(pod: &Pod) -> Timestamp {
    containers_finished(pod)
        .or_else(|| not_ready_since(pod))
        .or_else(|| deleted_at(pod))
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn containers_finished(pod: &Pod) -> Option<Timestamp> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let mut latest: Option<Timestamp> = None;
    for status in statuses {
        let terminated = status.state.as_ref()?.terminated.as_ref()?;
        let finished = terminated.finished_at.as_ref()?.0;
        latest = Some(latest.map_or(finished, |l| l.max(finished)));
    }
    latest
}

fn not_ready_since(pod: &Pod) -> Option<Timestamp> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    (ready.status == "False")
        .then(|| ready.last_transition_time.as_ref().map(|t| t.0))
        .flatten()
}

fn deleted_at(pod: &Pod) -> Option<Timestamp> {
    let at = pod.metadata.deletion_timestamp.as_ref()?.0;
    let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
    Some(at - SignedDuration::from_secs(grace))
}

/// `controller.ActivePods`' Less as an order: unassigned, pending (then unknown, then
/// running), not ready, ready more recently, restarted more, and newer pods go first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let assigned = |p: &Pod| !node_name(p).is_empty();
    let phase_rank = |p: &Pod| match phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    };
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| match is_ready(a) && is_ready(b) {
            true => later_first(ready_since(a), ready_since(b)),
            false => Ordering::Equal,
        })
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            later_first(created(a), created(b))
        })
}

/// `afterOrZero`: a missing time first, then the later one.
fn later_first(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

fn max_restarts(pod: &Pod) -> i32 {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    let restarts = statuses.into_iter().flatten().map(|c| c.restart_count);
    restarts.max().unwrap_or(0)
}

/// `pastBackoffLimitOnFailure`: with `restartPolicy: OnFailure`, the container restarts of
/// running and pending pods reach the backoff limit (any restart when it is 0).
pub fn past_backoff_limit_on_failure(job: &Job, pods: &[&Pod]) -> bool {
    let Some(spec) = job.spec.as_ref() else {
        return false;
    };
    let restart_policy = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref());
    if restart_policy != Some("OnFailure") {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            let init = s.init_container_statuses.iter().flatten();
            init.chain(s.container_statuses.iter().flatten())
        })
        .map(|c| i64::from(c.restart_count))
        .sum();
    let limit = i64::from(spec.backoff_limit.unwrap_or(6));
    match limit {
        0 => restarts > 0,
        limit => restarts >= limit,
    }
}

#[cfg(test)]
mod tests;
