//! `manageJob`'s arithmetic: how many pods should run, which active pods go first when there
//! are too many (or repeated indexes), and which indexes new pods take.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use super::indexes::{self, first_pending, indexes_of};
use super::pods::{deletion_order, is_terminating, only_replace_failed};
use super::spec;
use super::state::SyncState;

/// `MaxPodCreateDeletePerSync`.
pub const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;

/// The active pods wanted: with completions, the remaining ones up to parallelism; without,
/// parallelism until one pod succeeded, then whatever still runs.
pub fn want_active(state: &SyncState<'_>, active: i32) -> i32 {
    let parallelism = spec::parallelism(&state.job);
    match spec::completions(&state.job) {
        None if state.succeeded > 0 => active,
        None => parallelism,
        Some(completions) => (completions - state.succeeded).clamp(0, parallelism.max(0)),
    }
}

/// `activePodsForRemoval`: for an Indexed Job the pods of repeated or invalid indexes, then
/// (if that is not `at_least`) the first active pods in [`deletion_order`].
pub fn pods_for_removal<'a>(state: &SyncState<'a>, at_least: usize) -> Vec<&'a Pod> {
    let (mut remove, mut left) = match spec::is_indexed(&state.job) {
        true => indexes::split_duplicates(&state.active, spec::indexed_completions(&state.job)),
        false => (Vec::new(), state.active.clone()),
    };
    if remove.len() < at_least {
        left.sort_by(|a, b| deletion_order(a, b));
        let more = (at_least - remove.len()).min(left.len());
        remove.extend(left.drain(..more));
    }
    remove
}

/// The pods terminating that still hold a place, when only failed pods are replaced.
pub fn terminating_in_place(state: &SyncState<'_>) -> i32 {
    match only_replace_failed(&state.job) {
        true => state.terminating,
        false => 0,
    }
}

/// `firstPendingIndexes` for `count` new pods.
pub fn pending_indexes(state: &SyncState<'_>, count: usize) -> Vec<usize> {
    if count == 0 {
        return Vec::new();
    }
    let active = indexes_of(&state.active);
    let terminating: Option<BTreeSet<usize>> = only_replace_failed(&state.job).then(|| {
        let terminating: Vec<&Pod> = state
            .pods
            .iter()
            .copied()
            .filter(|p| is_terminating(p))
            .collect();
        indexes_of(&terminating)
    });
    first_pending(
        &active,
        terminating.as_ref(),
        &state.succeeded_indexes,
        state.failed_indexes.as_ref(),
        count,
        spec::indexed_completions(&state.job),
    )
}

#[cfg(test)]
mod tests;
