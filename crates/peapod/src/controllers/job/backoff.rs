//! The pod failure backoff, as kube's backoff_utils.go keeps it: per Job, the failures since
//! the last success and when the last one happened, so a replacement pod waits 10 s doubled
//! per consecutive failure, at most 10 minutes. With `backoffLimitPerIndex` each index waits
//! after its own failures, counted in its last failed pod's annotations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::indexes;
use super::pods::finished_time;

/// `DefaultJobPodFailureBackOff`.
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// `MaxJobPodFailureBackOff`.
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

/// `backoffRecord`: consecutive failures after the last success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    pub failures_after_last_success: i32,
    pub last_failure_time: Option<Timestamp>,
}

impl Record {
    /// `newBackoffRecord`: this record moved on by the pods that finished since the last sync.
    pub fn advanced(self, succeeded: &[&Pod], failed: &[&Pod]) -> Record {
        let finished = |pods: &[&Pod]| {
            let mut times: Vec<Timestamp> = pods.iter().map(|p| finished_time(p)).collect();
            times.sort();
            times
        };
        let (succeeded, failed) = (finished(succeeded), finished(failed));
        let Some(&last_success) = succeeded.last() else {
            return match failed.last() {
                None => self,
                Some(&last) => Record {
                    failures_after_last_success: self
                        .failures_after_last_success
                        .saturating_add(super::pods::count(failed.iter())),
                    last_failure_time: Some(last),
                },
            };
        };
        let after: Vec<Timestamp> = failed.into_iter().filter(|t| *t > last_success).collect();
        Record {
            failures_after_last_success: super::pods::count(after.iter()),
            last_failure_time: after.last().copied(),
        }
    }

    /// `getRemainingTime`: how long until a replacement may be created.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        remaining_for_failures(
            self.failures_after_last_success,
            self.last_failure_time,
            now,
        )
    }
}

/// `getRemainingTimePerIndex`: the wait of the index whose last failed pod is `last_failed`.
pub fn remaining_for_index(last_failed: Option<&Pod>, now: Timestamp) -> Duration {
    let Some(pod) = last_failed else {
        return Duration::ZERO;
    };
    let failures = indexes::absolute_failure_count(pod).saturating_add(1);
    remaining_for_failures(failures, Some(finished_time(pod)), now)
}

/// `getRemainingTimeForFailuresCount`: the backoff for `failures` less the time since the
/// last one.
pub fn remaining_for_failures(failures: i32, last: Option<Timestamp>, now: Timestamp) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let mut backoff = POD_FAILURE_BACKOFF;
    for _ in 1..failures {
        backoff = backoff.saturating_mul(2);
        if backoff >= MAX_POD_FAILURE_BACKOFF {
            backoff = MAX_POD_FAILURE_BACKOFF;
            break;
        }
    }
    let elapsed = last.map_or(Duration::MAX, |last| {
        let since = now.duration_since(last);
        Duration::try_from(since).unwrap_or(Duration::ZERO)
    });
    backoff.saturating_sub(elapsed)
}

/// `backoffStore`: each Job's record, by key; a finished or deleted Job's is dropped.
#[derive(Debug, Default)]
pub struct Records {
    records: Mutex<HashMap<String, Record>>,
}

impl Records {
    pub fn get(&self, key: &str) -> Record {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.get(key).copied().unwrap_or_default()
    }

    pub fn set(&self, key: &str, record: Record) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.insert(key.to_owned(), record);
    }

    pub fn remove(&self, key: &str) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.remove(key);
    }
}

#[cfg(test)]
mod tests;
