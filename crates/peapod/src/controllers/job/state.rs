//! One sync's view of a Job, as kube's `syncJobCtx`: its pods, the counts they add to the
//! status, and [`SyncState::judge`], which decides whether the Job has failed (backoff limit,
//! deadline, pod failure policy, failed indexes) or met its success policy.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::backoff::Record;
use super::conditions::{self as cond, FAILURE_TARGET, SUCCESS_CRITERIA_MET};
use super::indexes::{self, Intervals};
use super::pods::{self, has_tracking_finalizer, is_failed, is_succeeded};
use super::{failure_policy, spec, success_policy};

/// The uids already in `status.uncountedTerminatedPods`.
#[derive(Debug, Clone, Default)]
pub struct Uncounted {
    pub succeeded: BTreeSet<String>,
    pub failed: BTreeSet<String>,
}

impl Uncounted {
    fn of(status: &UncountedTerminatedPods) -> Uncounted {
        let set = |uids: &Option<Vec<String>>| uids.iter().flatten().cloned().collect();
        Uncounted {
            succeeded: set(&status.succeeded),
            failed: set(&status.failed),
        }
    }
}

/// `syncJobCtx`.
#[derive(Debug)]
pub struct SyncState<'a> {
    pub job: Job,
    pub pods: Vec<&'a Pod>,
    pub active: Vec<&'a Pod>,
    pub finished: Option<JobCondition>,
    pub succeeded: i32,
    pub failed: i32,
    pub prev_succeeded_indexes: Intervals,
    pub succeeded_indexes: Intervals,
    pub failed_indexes: Option<Intervals>,
    pub backoff: Record,
    pub uncounted: Uncounted,
    pub delayed_deletion: HashMap<usize, &'a Pod>,
    pub terminating: i32,
    pub ready: i32,
}

impl<'a> SyncState<'a> {
    /// The counts of `job`'s claimed `pods`, its start time set if it runs, and its backoff
    /// `record` moved on by the pods that finished since.
    pub fn new(mut job: Job, pods: Vec<&'a Pod>, record: Record, now: Timestamp) -> Self {
        let status = job.status.get_or_insert_with(JobStatus::default);
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        let uncounted = Uncounted::of(uncounted);
        let active = pods::active(&pods);
        let mut state = SyncState {
            ready: pods::count_ready(&active),
            terminating: pods::count_terminating(&pods),
            active,
            pods,
            finished: None,
            succeeded: 0,
            failed: 0,
            prev_succeeded_indexes: Intervals::default(),
            succeeded_indexes: Intervals::default(),
            failed_indexes: None,
            backoff: record,
            uncounted,
            delayed_deletion: HashMap::new(),
            job,
        };
        let (new_succeeded, new_failed) = state.new_finished_pods();
        let status = state.status().clone();
        state.succeeded = status.succeeded.unwrap_or(0)
            + pods::count(new_succeeded.iter())
            + pods::count(state.uncounted.succeeded.iter());
        let counted_failures = new_failed.iter().filter(|p| state.failure_counts(p));
        state.failed = status.failed.unwrap_or(0)
            + pods::count(counted_failures)
            + pods::count(state.uncounted.failed.iter());
        if status.start_time.is_none() && !spec::suspended(&state.job) {
            state.status_mut().start_time = Some(Time(now));
        }
        state.backoff = record.advanced(&new_succeeded, &new_failed);
        state
    }

    pub fn status(&self) -> &JobStatus {
        static EMPTY: std::sync::OnceLock<JobStatus> = std::sync::OnceLock::new();
        self.job
            .status
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(JobStatus::default))
    }

    pub fn status_mut(&mut self) -> &mut JobStatus {
        self.job.status.get_or_insert_with(JobStatus::default)
    }

    /// `getNewFinishedPods`: succeeded and failed pods not counted yet.
    fn new_finished_pods(&self) -> (Vec<&'a Pod>, Vec<&'a Pod>) {
        let succeeded = self.uncounted_valid(&self.uncounted.succeeded, is_succeeded);
        let failed = self.uncounted_valid(&self.uncounted.failed, |p| is_failed(p, &self.job));
        (succeeded, failed)
    }

    /// `getValidPodsWithFilter`: pods holding the finalizer, not in `uncounted`, with a valid
    /// index for an Indexed Job, that pass `filter`.
    pub fn uncounted_valid(
        &self,
        uncounted: &BTreeSet<String>,
        filter: impl Fn(&Pod) -> bool,
    ) -> Vec<&'a Pod> {
        let indexed = spec::is_indexed(&self.job);
        let completions = spec::indexed_completions(&self.job);
        self.pods
            .iter()
            .copied()
            .filter(|p| has_tracking_finalizer(p) && !uncounted.contains(uid(p)))
            .filter(|p| !indexed || indexes::valid_index(p, completions).is_some())
            .filter(|p| filter(p))
            .collect()
    }

    /// Whether a failed pod counts toward the backoff limit (an Ignore rule says not).
    pub fn failure_counts(&self, pod: &Pod) -> bool {
        let policy = self
            .job
            .spec
            .as_ref()
            .and_then(|s| s.pod_failure_policy.as_ref());
        failure_policy::match_policy(policy, pod).counts
    }

    /// The decisions of `syncJob` before pods are managed: the finished condition (if any) and
    /// when to come back for the active deadline.
    pub fn judge(&mut self, now: Timestamp) -> Option<Duration> {
        self.finished = cond::true_of(&self.job, SUCCESS_CRITERIA_MET).cloned();
        if self.finished.is_none() {
            self.finished = match cond::true_of(&self.job, FAILURE_TARGET) {
                Some(target) => Some(cond::failed_from_target(target, now)),
                None => self.fail_job_message().map(|message| {
                    cond::true_condition(FAILURE_TARGET, cond::POD_FAILURE_POLICY, &message, now)
                }),
            };
        }
        let mut requeue = None;
        if self.finished.is_none() {
            requeue = self.judge_limits(now);
        }
        if spec::is_indexed(&self.job) {
            self.judge_indexes(now);
        }
        requeue
    }

    /// The backoff limits and the active deadline.
    fn judge_limits(&mut self, now: Timestamp) -> Option<Duration> {
        let failure =
            |reason, message| Some(cond::true_condition(FAILURE_TARGET, reason, message, now));
        let exceeds = self.failed > spec::backoff_limit(&self.job);
        if exceeds || pods::past_backoff_limit_on_failure(&self.job, &self.pods) {
            self.finished = failure(cond::BACKOFF_LIMIT_EXCEEDED, cond::BACKOFF_LIMIT_MESSAGE);
            return None;
        }
        let deadline = self.deadline_left(now)?;
        if deadline.is_zero() {
            self.finished = failure(cond::DEADLINE_EXCEEDED, cond::DEADLINE_MESSAGE);
            return None;
        }
        Some(deadline)
    }

    /// What is left of `activeDeadlineSeconds` since the start (none while suspended).
    pub fn deadline_left(&self, now: Timestamp) -> Option<Duration> {
        let seconds = spec::active_deadline_seconds(&self.job)?;
        let start = self.status().start_time.as_ref()?.0;
        if spec::suspended(&self.job) {
            return None;
        }
        let end = start + SignedDuration::from_secs(seconds);
        Some(Duration::try_from(end.duration_since(now)).unwrap_or(Duration::ZERO))
    }

    /// `getFailJobMessage`: a failed pod matching a FailJob rule.
    fn fail_job_message(&self) -> Option<String> {
        let policy = self.job.spec.as_ref()?.pod_failure_policy.as_ref()?;
        let failed = self.pods.iter().filter(|p| is_failed(p, &self.job));
        failed
            .filter_map(|p| failure_policy::match_policy(Some(policy), p).fail_job_message)
            .next()
    }

    /// Completed and failed indexes, the per-index limits and the success policy.
    fn judge_indexes(&mut self, now: Timestamp) {
        let completions = spec::indexed_completions(&self.job);
        (self.prev_succeeded_indexes, self.succeeded_indexes) =
            indexes::succeeded(self.status(), &self.pods, completions);
        self.succeeded = pods::count(0..self.succeeded_indexes.total());
        if let Some(limit) = spec::backoff_limit_per_index(&self.job) {
            let failed = indexes::failed(&self.job, &self.pods, limit);
            if self.finished.is_none() {
                self.finished = self.judge_failed_indexes(&failed, completions, now);
            }
            self.failed_indexes = Some(failed);
            self.delayed_deletion = indexes::delayed_deletions(self);
        }
        if self.finished.is_none() {
            let policy = self
                .job
                .spec
                .as_ref()
                .and_then(|s| s.success_policy.as_ref());
            if let Some(message) =
                success_policy::match_policy(policy, completions, &self.succeeded_indexes)
            {
                self.finished = Some(cond::true_condition(
                    SUCCESS_CRITERIA_MET,
                    cond::SUCCESS_POLICY,
                    &message,
                    now,
                ));
            }
        }
    }

    fn judge_failed_indexes(
        &self,
        failed: &Intervals,
        completions: i32,
        now: Timestamp,
    ) -> Option<JobCondition> {
        let max = self.job.spec.as_ref().and_then(|s| s.max_failed_indexes);
        let failed_total = failed.total();
        let total = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let (reason, message) = if max.is_some_and(|m| total(failed_total) > i64::from(m)) {
            (
                cond::MAX_FAILED_INDEXES_EXCEEDED,
                cond::MAX_FAILED_INDEXES_MESSAGE,
            )
        } else if failed_total > 0
            && total(failed_total + self.succeeded_indexes.total()) >= i64::from(completions)
        {
            (cond::FAILED_INDEXES, cond::FAILED_INDEXES_MESSAGE)
        } else {
            return None;
        };
        Some(cond::true_condition(FAILURE_TARGET, reason, message, now))
    }

    /// Whether the Job is done: with completions, that many succeeded; without, any pod
    /// succeeded; and no pod is active.
    pub fn complete(&self, active: i32) -> bool {
        let enough = match spec::completions(&self.job) {
            Some(completions) => self.succeeded >= completions,
            None => self.succeeded > 0,
        };
        enough && active == 0
    }
}

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests;
