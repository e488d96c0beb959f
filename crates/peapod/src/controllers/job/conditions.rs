//! A Job's conditions and events in kube's words: the terminal Complete and Failed, the
//! interim SuccessCriteriaMet and FailureTarget that precede them while pods terminate, and
//! Suspended; `ensureJobConditionStatus`, and the events each transition records.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::controllers::events::Event;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const SUSPENDED: &str = "Suspended";

pub const BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
pub const MAX_FAILED_INDEXES_EXCEEDED: &str = "MaxFailedIndexesExceeded";
pub const FAILED_INDEXES: &str = "FailedIndexes";
pub const POD_FAILURE_POLICY: &str = "PodFailurePolicy";
pub const SUCCESS_POLICY: &str = "SuccessPolicy";

pub const BACKOFF_LIMIT_MESSAGE: &str = "Job has reached the specified backoff limit";
pub const DEADLINE_MESSAGE: &str = "Job was active longer than specified deadline";
pub const MAX_FAILED_INDEXES_MESSAGE: &str =
    "Job has exceeded the specified maximal number of failed indexes";
pub const FAILED_INDEXES_MESSAGE: &str = "Job has failed indexes";

/// `newCondition`: probed and transitioned now; empty reason and message are left out, as
/// Go's omitempty leaves them.
pub fn new(type_: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    JobCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: text(reason),
        message: text(message),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// A true condition of `type_` with `reason` and `message`.
pub fn true_condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    new(type_, "True", reason, message, now)
}

pub fn reason(condition: &JobCondition) -> &str {
    condition.reason.as_deref().unwrap_or_default()
}

pub fn message(condition: &JobCondition) -> &str {
    condition.message.as_deref().unwrap_or_default()
}

/// `findConditionByType`.
pub fn find<'a>(conditions: &'a [JobCondition], type_: &str) -> Option<&'a JobCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The condition of `type_` if it is True.
pub fn true_of<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref());
    find(conditions.unwrap_or_default(), type_).filter(|c| c.status == "True")
}

/// `IsJobFinished`: Complete or Failed is True.
pub fn is_finished(job: &Job) -> bool {
    true_of(job, COMPLETE).is_some() || true_of(job, FAILED).is_some()
}

/// `ensureJobConditionStatus`: updates the condition of `type_` when its status, reason or
/// message differ, or adds it unless it would be False; answers whether anything changed.
pub fn ensure(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let wanted = new(type_, status, reason, message, now);
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        let same = existing.status == status
            && self::reason(existing) == reason
            && self::message(existing) == message;
        if !same {
            *existing = wanted;
        }
        return !same;
    }
    if status == "False" {
        return false;
    }
    conditions.push(wanted);
    true
}

/// `newFailedConditionForFailureTarget`.
pub fn failed_from_target(target: &JobCondition, now: Timestamp) -> JobCondition {
    true_condition(FAILED, reason(target), message(target), now)
}

/// The events of a finished Job (`recordJobFinished`).
pub fn finished_events(job: &Job, finished: &JobCondition) -> Vec<Event> {
    if finished.type_ != COMPLETE {
        return vec![Event::warning(
            leak(reason(finished)),
            message(finished).to_owned(),
        )];
    }
    let mut events = Vec::new();
    let completions = job.spec.as_ref().and_then(|s| s.completions);
    let succeeded = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
    if completions.is_some_and(|c| succeeded > c) {
        events.push(Event::warning(
            "TooManySucceededPods",
            "Too many succeeded pods running after completion count reached".to_owned(),
        ));
    }
    events.push(Event::normal("Completed", "Job completed".to_owned()));
    events
}

/// Event reasons are static words; a failure's reason is one of kube's few.
fn leak(reason: &str) -> &'static str {
    [
        BACKOFF_LIMIT_EXCEEDED,
        DEADLINE_EXCEEDED,
        MAX_FAILED_INDEXES_EXCEEDED,
        FAILED_INDEXES,
        POD_FAILURE_POLICY,
    ]
    .into_iter()
    .find(|known| *known == reason)
    .unwrap_or("Failed")
}

pub fn suspended_event() -> Event {
    Event::normal("Suspended", "Job suspended".to_owned())
}

pub fn resumed_event() -> Event {
    Event::normal("Resumed", "Job resumed".to_owned())
}

#[cfg(test)]
mod tests;
