//! Completion indexes of Indexed Jobs, as kube's indexed_job_utils.go keeps them: the
//! compressed interval lists of `status.completedIndexes` and `status.failedIndexes`
//! ("0-2,4"), a pod's index and its per-index failure counts from its annotations, the indexes
//! still to start, and the pod names an index gets.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Pod;

use super::failure_policy::{self, Action};
use super::pods::{deletion_order, finished_time, has_tracking_finalizer, is_failed};
use super::state::SyncState;

/// `batch.JobCompletionIndexAnnotation`, also the label's key.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// `batch.JobIndexFailureCountAnnotation`.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// `batch.JobIndexIgnoredFailureCountAnnotation`.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";
/// `names.MaxGeneratedNameLength`: what a generateName may be before the random suffix.
const MAX_GENERATED_NAME_LENGTH: usize = 58;

/// Indexes `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub first: usize,
    pub last: usize,
}

/// kube's `orderedIntervals`: sorted, disjoint and non-adjacent intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(pub Vec<Interval>);

impl Intervals {
    /// `parseIndexesFromString`: corrupt intervals are skipped, those from `completions` on
    /// dropped, and the last one cut at `completions - 1`.
    pub fn parse(text: &str, completions: i32) -> Intervals {
        let completions = usize::try_from(completions).unwrap_or(0);
        let mut result: Vec<Interval> = Vec::new();
        if text.is_empty() {
            return Intervals(result);
        }
        for part in text.split(',') {
            let mut limits = part.split('-');
            let Some(Ok(first)) = limits.next().map(str::parse::<usize>) else {
                continue;
            };
            if first >= completions {
                break;
            }
            let last = match limits.next().map(str::parse::<usize>) {
                None => first,
                Some(Ok(last)) => last.min(completions - 1),
                Some(Err(_)) => continue,
            };
            match result.last_mut() {
                Some(previous) if previous.last + 1 == first => previous.last = last,
                _ => result.push(Interval { first, last }),
            }
        }
        Intervals(result)
    }

    /// `withOrderedIndexes`: these intervals and `indexes` (increasing).
    pub fn with_indexes(&self, indexes: &[usize]) -> Intervals {
        let singles = indexes.iter().map(|&i| Interval { first: i, last: i });
        self.merge(&Intervals(singles.collect()))
    }

    /// `merge`: the union of two interval lists.
    pub fn merge(&self, other: &Intervals) -> Intervals {
        let mut all: Vec<Interval> = self.0.iter().chain(&other.0).copied().collect();
        all.sort_by_key(|i| i.first);
        let mut result: Vec<Interval> = Vec::new();
        for interval in all {
            match result.last_mut() {
                Some(last) if interval.first <= last.last + 1 => {
                    last.last = last.last.max(interval.last);
                }
                _ => result.push(interval),
            }
        }
        Intervals(result)
    }

    /// How many indexes the intervals hold.
    pub fn total(&self) -> usize {
        self.0.iter().map(|i| i.last - i.first + 1).sum()
    }

    pub fn has(&self, index: usize) -> bool {
        self.0.iter().any(|i| i.first <= index && index <= i.last)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Go's `orderedIntervals.String`: "1-3,5,7,8" (two adjacent indexes listed, not ranged).
impl fmt::Display for Intervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, interval) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", interval.first)?;
            if interval.last == interval.first + 1 {
                write!(f, ",{}", interval.last)?;
            } else if interval.last > interval.first {
                write!(f, "-{}", interval.last)?;
            }
        }
        Ok(())
    }
}

/// `getCompletionIndex`: the pod's index annotation, `None` when missing or not a
/// non-negative integer.
pub fn completion_index(pod: &Pod) -> Option<usize> {
    let annotations = pod.metadata.annotations.as_ref()?;
    annotations.get(COMPLETION_INDEX)?.parse::<usize>().ok()
}

/// The index of a pod, if valid and below `completions`.
pub fn valid_index(pod: &Pod, completions: i32) -> Option<usize> {
    let completions = usize::try_from(completions).unwrap_or(0);
    completion_index(pod).filter(|&i| i < completions)
}

/// `getIndexes`: the indexes the pods hold.
pub fn indexes_of(pods: &[&Pod]) -> BTreeSet<usize> {
    pods.iter().filter_map(|p| completion_index(p)).collect()
}

/// `firstPendingIndexes`: the first `count` indexes below `completions` that no active pod
/// (nor, with `terminating`, a terminating one) holds and that neither succeeded nor failed.
pub fn first_pending(
    active: &BTreeSet<usize>,
    terminating: Option<&BTreeSet<usize>>,
    succeeded: &Intervals,
    failed: Option<&Intervals>,
    count: usize,
    completions: i32,
) -> Vec<usize> {
    let completions = usize::try_from(completions).unwrap_or(0);
    let mut busy: Vec<usize> = active.iter().copied().collect();
    busy.extend(terminating.into_iter().flatten());
    busy.sort_unstable();
    busy.dedup();
    let mut not_pending = succeeded.with_indexes(&busy);
    if let Some(failed) = failed {
        not_pending = not_pending.merge(failed);
    }
    (0..completions)
        .filter(|&i| !not_pending.has(i))
        .take(count)
        .collect()
}

/// `podGenerateNameWithIndex`: `<job>-<index>-`, the job's name cut to fit.
pub fn generate_name_with_index(job_name: &str, index: usize) -> String {
    let suffix = format!("-{index}-");
    let prefix = format!("{job_name}{suffix}");
    if prefix.len() <= MAX_GENERATED_NAME_LENGTH {
        return prefix;
    }
    let keep = MAX_GENERATED_NAME_LENGTH.saturating_sub(suffix.len());
    format!("{}{suffix}", &job_name[..keep.min(job_name.len())])
}

/// `parseIndexFailureCountAnnotation`: 0 when missing, unparsable or out of int32's range.
pub fn failure_count(pod: &Pod) -> i32 {
    annotation_count(pod, INDEX_FAILURE_COUNT)
}

pub fn ignored_failure_count(pod: &Pod) -> i32 {
    annotation_count(pod, INDEX_IGNORED_FAILURE_COUNT)
}

/// `getIndexAbsoluteFailureCount`: counted and ignored failures of the index.
pub fn absolute_failure_count(pod: &Pod) -> i32 {
    failure_count(pod).saturating_add(ignored_failure_count(pod))
}

fn annotation_count(pod: &Pod, key: &str) -> i32 {
    let annotations = pod.metadata.annotations.as_ref();
    let value = annotations.and_then(|a| a.get(key));
    value
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|v| i32::try_from(v).ok())
        .filter(|v| *v >= 0)
        .unwrap_or(0)
}

/// `calculateSucceededIndexes`: the indexes `status.completedIndexes` lists, and those with
/// the succeeded pods not counted yet (holding the finalizer) added.
pub fn succeeded(status: &JobStatus, pods: &[&Pod], completions: i32) -> (Intervals, Intervals) {
    let listed = status.completed_indexes.as_deref().unwrap_or_default();
    let previous = Intervals::parse(listed, completions);
    let new: BTreeSet<usize> = pods
        .iter()
        .filter(|p| super::pods::is_succeeded(p) && has_tracking_finalizer(p))
        .filter_map(|p| valid_index(p, completions))
        .collect();
    let all = previous.with_indexes(&new.into_iter().collect::<Vec<_>>());
    (previous, all)
}

/// `calculateFailedIndexes`: `status.failedIndexes` with the indexes whose uncounted failed
/// pod used up `backoffLimitPerIndex` (or matched a FailIndex rule) added.
pub fn failed(job: &Job, pods: &[&Pod], limit_per_index: i32) -> Intervals {
    let completions = super::spec::indexed_completions(job);
    let listed = job
        .status
        .as_ref()
        .and_then(|s| s.failed_indexes.as_deref());
    let previous = Intervals::parse(listed.unwrap_or_default(), completions);
    let new: BTreeSet<usize> = pods
        .iter()
        .filter(|p| has_tracking_finalizer(p) && is_index_failed(job, p, limit_per_index))
        .filter_map(|p| valid_index(p, completions))
        .collect();
    previous.with_indexes(&new.into_iter().collect::<Vec<_>>())
}

/// `isIndexFailed`: the pod failed and either matched a FailIndex rule or its failure counts
/// and its index has used up its backoff limit.
pub fn is_index_failed(job: &Job, pod: &Pod, limit_per_index: i32) -> bool {
    if !is_failed(pod, job) {
        return false;
    }
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref());
    let matched = failure_policy::match_policy(policy, pod);
    if matched.action == Some(Action::FailIndex) {
        return true;
    }
    matched.counts && failure_count(pod) >= limit_per_index
}

/// `getPodsWithDelayedDeletionPerIndex`: per index not yet succeeded, failed or active, its
/// last failed pod, whose finalizer stays until a replacement carries its failure count.
pub fn delayed_deletions<'a>(state: &SyncState<'a>) -> HashMap<usize, &'a Pod> {
    let completions = super::spec::indexed_completions(&state.job);
    let active = indexes_of(&state.active);
    let no_failed = Intervals::default();
    let failed_indexes = state.failed_indexes.as_ref().unwrap_or(&no_failed);
    let mut delayed: HashMap<usize, &'a Pod> = HashMap::new();
    let failed = state.uncounted_valid(&BTreeSet::new(), |p| is_failed(p, &state.job));
    for pod in failed {
        let Some(index) = valid_index(pod, completions) else {
            continue;
        };
        if state.succeeded_indexes.has(index)
            || failed_indexes.has(index)
            || active.contains(&index)
        {
            continue;
        }
        let replace = delayed.get(&index).is_none_or(|last| {
            absolute_failure_count(last) <= absolute_failure_count(pod)
                && finished_time(pod) >= finished_time(last)
        });
        if replace {
            delayed.insert(index, pod);
        }
    }
    delayed
}

/// `getNewIndexFailureCounts`: the failure counts a replacement of `replaced` carries.
pub fn new_failure_counts(job: &Job, replaced: Option<&Pod>) -> (i32, i32) {
    let Some(pod) = replaced else {
        return (0, 0);
    };
    let (failures, ignored) = (failure_count(pod), ignored_failure_count(pod));
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref());
    match failure_policy::match_policy(policy, pod).counts {
        true => (failures.saturating_add(1), ignored),
        false => (failures, ignored.saturating_add(1)),
    }
}

/// `appendDuplicatedIndexPodsForRemoval`: pods without a valid index, beyond `completions`,
/// and all but the most advanced of each repeated index are removed; the rest are kept.
pub fn split_duplicates<'a>(pods: &[&'a Pod], completions: i32) -> (Vec<&'a Pod>, Vec<&'a Pod>) {
    let completions = usize::try_from(completions).unwrap_or(0);
    let mut sorted = pods.to_vec();
    sorted.sort_by_key(|p| completion_index(p));
    let (mut remove, mut keep) = (Vec::new(), Vec::new());
    let mut groups: Vec<Vec<&'a Pod>> = Vec::new();
    for pod in sorted {
        match completion_index(pod) {
            None => remove.push(pod),
            Some(index) if index >= completions => remove.push(pod),
            Some(index) => match groups.last_mut() {
                Some(group) if completion_index(group[0]) == Some(index) => group.push(pod),
                _ => groups.push(vec![pod]),
            },
        }
    }
    let beyond: Vec<&'a Pod> = remove
        .iter()
        .copied()
        .filter(|p| completion_index(p).is_some())
        .collect();
    remove.retain(|p| completion_index(p).is_none());
    for mut group in groups {
        group.sort_by(|a, b| deletion_order(a, b));
        keep.push(group.pop().expect("groups are never empty"));
        remove.extend(group);
    }
    remove.extend(beyond);
    (remove, keep)
}

/// `byCompletionIndex`: pods without an index first.
pub fn by_index(a: &&Pod, b: &&Pod) -> Ordering {
    completion_index(a).cmp(&completion_index(b))
}

#[cfg(test)]
mod tests;
