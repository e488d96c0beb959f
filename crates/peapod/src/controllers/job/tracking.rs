//! Counting finished pods exactly once, as kube's `trackJobStatusAndRemoveFinalizers` does:
//! a finished pod's uid goes to `status.uncountedTerminatedPods` (an Indexed Job's succeeded
//! index to `completedIndexes`) and the status is written before its tracking finalizer is
//! removed; once the finalizer is gone the uid moves into the `succeeded`/`failed` counters.
//! Whatever the controller was doing when it stopped, a restart neither counts a pod twice nor
//! loses one. The terminal condition is set only when nothing is uncounted or terminating.

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions::{self as cond, COMPLETE, FAILURE_TARGET, SUCCESS_CRITERIA_MET};
use super::indexes::{self, by_index};
use super::pods::{has_tracking_finalizer, is_failed, is_succeeded};
use super::spec;
use super::state::{uid, SyncState};

/// `MaxUncountedPods`: the most uids `uncountedTerminatedPods` takes in one sync.
pub const MAX_UNCOUNTED_PODS: usize = 500;

/// What one sync does about finished pods.
#[derive(Debug, Default)]
pub struct Tracking<'a> {
    /// The pods whose tracking finalizer comes off once the status recorded them.
    pub remove_finalizer: Vec<&'a Pod>,
    /// The uids of the pods still holding the finalizer.
    pub with_finalizer: BTreeSet<String>,
    /// Whether the uncounted lists filled up, so the Job cannot finish in this sync.
    pub reached_max: bool,
    /// Whether the status changed and must be written before finalizers are removed.
    pub needs_flush: bool,
}

/// The first half of `trackJobStatusAndRemoveFinalizers`: records the finished pods in the
/// status and picks the finalizers to remove; an interim FailureTarget or SuccessCriteriaMet
/// condition is added, and `state.finished` becomes the terminal condition it leads to.
pub fn plan<'a>(state: &mut SyncState<'a>, needs_flush: bool, now: Timestamp) -> Tracking<'a> {
    let indexed = spec::is_indexed(&state.job);
    if indexed {
        state.pods.sort_by(by_index);
    }
    let with_finalizer: BTreeSet<String> = state
        .pods
        .iter()
        .filter(|p| has_tracking_finalizer(p))
        .map(|p| uid(p).to_owned())
        .collect();
    let mut tracking = Tracking {
        needs_flush: clean_uncounted(state.status_mut(), &with_finalizer) || needs_flush,
        with_finalizer,
        ..Tracking::default()
    };
    let new_indexes = record_finished(state, &mut tracking);
    if indexed {
        record_indexes(state, &new_indexes, &mut tracking);
    }
    interim_conditions(state, &mut tracking, now);
    tracking
}

/// The loop over the pods: which finished ones to record, and whose finalizer to remove.
fn record_finished<'a>(state: &mut SyncState<'a>, tracking: &mut Tracking<'a>) -> Vec<usize> {
    let indexed = spec::is_indexed(&state.job);
    let completions = spec::indexed_completions(&state.job);
    let failing_all = state
        .finished
        .as_ref()
        .is_some_and(|c| c.type_ != SUCCESS_CRITERIA_MET);
    let mut new_indexes = Vec::new();
    let pods: Vec<&'a Pod> = state
        .pods
        .iter()
        .copied()
        .filter(|p| has_tracking_finalizer(p))
        .collect();
    for pod in pods {
        let failed = is_failed(pod, &state.job);
        if !can_remove_finalizer(state, pod, failed) {
            continue;
        }
        tracking.remove_finalizer.push(pod);
        let id = uid(pod).to_owned();
        if is_succeeded(pod) && !state.uncounted.failed.contains(&id) {
            if indexed {
                let index = indexes::valid_index(pod, completions);
                if let Some(index) = index.filter(|i| !state.prev_succeeded_indexes.has(*i)) {
                    new_indexes.push(index);
                    tracking.needs_flush = true;
                }
            } else if !state.uncounted.succeeded.contains(&id) {
                tracking.needs_flush = true;
                uncounted_mut(state.status_mut())
                    .succeeded
                    .get_or_insert_with(Vec::new)
                    .push(id);
            }
        } else if failed || failing_all {
            let valid = !indexed || indexes::valid_index(pod, completions).is_some();
            if !state.uncounted.failed.contains(&id) && valid && state.failure_counts(pod) {
                tracking.needs_flush = true;
                uncounted_mut(state.status_mut())
                    .failed
                    .get_or_insert_with(Vec::new)
                    .push(id);
            }
        }
        if new_indexes.len() + uncounted_len(state.status()) >= MAX_UNCOUNTED_PODS {
            tracking.reached_max = true;
            break;
        }
    }
    new_indexes
}

/// `canRemoveFinalizer`: when the Job is being deleted or is finishing, the pod succeeded, or
/// it failed and is not the last failure its index's replacement is waiting to count.
fn can_remove_finalizer(state: &SyncState<'_>, pod: &Pod, failed: bool) -> bool {
    if state.job.metadata.deletion_timestamp.is_some()
        || state.finished.is_some()
        || is_succeeded(pod)
    {
        return true;
    }
    if !failed {
        return false;
    }
    if spec::backoff_limit_per_index(&state.job).is_some() {
        let delayed = indexes::completion_index(pod).and_then(|i| state.delayed_deletion.get(&i));
        if delayed.is_some_and(|d| uid(d) == uid(pod)) {
            return false;
        }
    }
    true
}

/// `completedIndexes`, `succeeded` and `failedIndexes` of an Indexed Job.
fn record_indexes(state: &mut SyncState<'_>, new_indexes: &[usize], tracking: &mut Tracking<'_>) {
    let mut sorted = new_indexes.to_vec();
    sorted.sort_unstable();
    state.succeeded_indexes = state.succeeded_indexes.with_indexes(&sorted);
    let completed = state.succeeded_indexes.to_string();
    let succeeded = i32::try_from(state.succeeded_indexes.total()).unwrap_or(i32::MAX);
    let failed = state.failed_indexes.as_ref().map(ToString::to_string);
    let status = state.status_mut();
    if status.completed_indexes.as_deref().unwrap_or_default() != completed {
        tracking.needs_flush = true;
    }
    status.succeeded = (succeeded != 0).then_some(succeeded);
    status.completed_indexes = (!completed.is_empty()).then_some(completed);
    if status.failed_indexes != failed {
        status.failed_indexes = failed;
        tracking.needs_flush = true;
    }
}

/// The interim FailureTarget or SuccessCriteriaMet condition, written before the finalizers
/// are removed; `state.finished` becomes the Failed or Complete condition that follows.
fn interim_conditions(state: &mut SyncState<'_>, tracking: &mut Tracking<'_>, now: Timestamp) {
    let Some(finished) = state.finished.clone() else {
        return;
    };
    let conditions = |state: &mut SyncState<'_>| {
        state
            .status_mut()
            .conditions
            .get_or_insert_with(Vec::new)
            .push(finished.clone());
    };
    if finished.type_ == FAILURE_TARGET {
        conditions(state);
        tracking.needs_flush = true;
        state.finished = Some(cond::failed_from_target(&finished, now));
    } else if finished.type_ == SUCCESS_CRITERIA_MET && finished.status == "True" {
        if cond::true_of(&state.job, SUCCESS_CRITERIA_MET).is_none() {
            conditions(state);
            tracking.needs_flush = true;
        }
        let (reason, message) = (cond::reason(&finished), cond::message(&finished));
        state.finished = Some(cond::true_condition(COMPLETE, reason, message, now));
    }
}

/// `cleanUncountedPodsWithoutFinalizers`: the uncounted uids whose pods no longer hold the
/// finalizer move into the counters; answers whether the status changed.
pub fn clean_uncounted(status: &mut JobStatus, with_finalizer: &BTreeSet<String>) -> bool {
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    let moved = |uids: &mut Option<Vec<String>>| -> i32 {
        let before = uids.as_ref().map_or(0, Vec::len);
        let kept: Vec<String> = uids
            .take()
            .into_iter()
            .flatten()
            .filter(|u| with_finalizer.contains(u))
            .collect();
        let gone = before - kept.len();
        *uids = (!kept.is_empty()).then_some(kept);
        i32::try_from(gone).unwrap_or(i32::MAX)
    };
    let succeeded = moved(&mut uncounted.succeeded);
    let failed = moved(&mut uncounted.failed);
    let add = |counter: &mut Option<i32>, n: i32| {
        let total = counter.unwrap_or(0) + n;
        *counter = (total != 0).then_some(total);
    };
    add(&mut status.succeeded, succeeded);
    add(&mut status.failed, failed);
    succeeded > 0 || failed > 0
}

/// `enactJobFinished`: the terminal condition (and completionTime) once no pod is uncounted
/// or terminating; answers whether the Job finished.
pub fn enact_finished(state: &mut SyncState<'_>, now: Timestamp) -> bool {
    let Some(finished) = state.finished.clone() else {
        return false;
    };
    if uncounted_len(state.status()) > 0 || state.terminating > 0 {
        return false;
    }
    let status = state.status_mut();
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let (reason, message) = (cond::reason(&finished), cond::message(&finished));
    cond::ensure(
        conditions,
        &finished.type_,
        &finished.status,
        reason,
        message,
        now,
    );
    if finished.type_ == COMPLETE {
        status.completion_time = finished.last_transition_time.clone().or(Some(Time(now)));
    }
    true
}

fn uncounted_mut(status: &mut JobStatus) -> &mut UncountedTerminatedPods {
    status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default)
}

pub fn uncounted_len(status: &JobStatus) -> usize {
    let uncounted = status.uncounted_terminated_pods.as_ref();
    let len = |uids: Option<&Vec<String>>| uids.map_or(0, Vec::len);
    uncounted.map_or(0, |u| len(u.succeeded.as_ref()) + len(u.failed.as_ref()))
}

#[cfg(test)]
mod tests;
