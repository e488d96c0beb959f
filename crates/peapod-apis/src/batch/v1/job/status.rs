//! kube's Job status validation (validateJobStatus and ValidateJobStatusUpdate) with the
//! options kube-apiserver 1.32 uses while JobManagedBy is on: most rules judge a field only
//! when the write changes it, so a controller can fix a status a user's spec change upset.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::{Job, JobStatus};
use peapod_api::validation::{FieldError, FieldPath};
use serde_json::json;

use super::validation::{parse_indexes, INDEXED};

const NEGATIVE: &str = "must be greater than or equal to 0";

/// The status of `new` valid, and its change from `old` allowed.
pub fn validate_status_update(new: &Job, old: &Job) -> Vec<FieldError> {
    let status = new.status.clone().unwrap_or_default();
    let old_status = old.status.clone().unwrap_or_default();
    let path = FieldPath::new("status");
    let mut errors = validate_counts(&status, &path);
    errors.extend(validate_conditions(new, &status, &old_status, &path));
    errors.extend(validate_finished(&status, &old_status, &path));
    errors.extend(validate_indexes(new, &status, &old_status, &path));
    errors.extend(validate_transition(new, &status, &old_status, &path));
    errors
}

fn validate_counts(status: &JobStatus, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, value) in [
        ("active", Some(status.active.unwrap_or(0))),
        ("succeeded", Some(status.succeeded.unwrap_or(0))),
        ("failed", Some(status.failed.unwrap_or(0))),
        ("ready", status.ready),
        ("terminating", status.terminating),
    ] {
        if let Some(value) = value.filter(|v| *v < 0) {
            errors.push(FieldError::invalid(&path.child(field), value, NEGATIVE));
        }
    }
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let uncounted_path = path.child("uncountedTerminatedPods");
    let mut seen = BTreeSet::new();
    for (field, uids) in [
        ("succeeded", uncounted.succeeded),
        ("failed", uncounted.failed),
    ] {
        for (i, uid) in uids.unwrap_or_default().into_iter().enumerate() {
            let uid_path = uncounted_path.child(field).index(i);
            if uid.is_empty() {
                errors.push(FieldError::invalid(&uid_path, "", "must not be empty"));
            } else if !seen.insert(uid.clone()) {
                errors.push(FieldError::duplicate(&uid_path, uid));
            }
        }
    }
    errors
}

fn is_true(status: &JobStatus, kind: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == kind && c.status == "True")
}

fn is_finished(status: &JobStatus) -> bool {
    is_true(status, "Complete") || is_true(status, "Failed")
}

/// The terminal conditions' consistency, each judged when the write touches what it relates.
fn validate_conditions(
    job: &Job,
    status: &JobStatus,
    old: &JobStatus,
    path: &FieldPath,
) -> Vec<FieldError> {
    let changed = |kind: &str| is_true(status, kind) != is_true(old, kind);
    let (complete, failed) = (is_true(status, "Complete"), is_true(status, "Failed"));
    let failure_target = is_true(status, "FailureTarget");
    let criteria_met = is_true(status, "SuccessCriteriaMet");
    let success_policy = job
        .spec
        .as_ref()
        .is_some_and(|s| s.success_policy.is_some());
    let rules = [
        (
            (changed("Complete") || changed("Failed")) && complete && failed,
            "cannot set Complete=True and Failed=true conditions",
        ),
        (
            (changed("Complete") || changed("FailureTarget")) && complete && failure_target,
            "cannot set Complete=True and FailureTarget=true conditions",
        ),
        (
            criteria_met && failed,
            "cannot set SuccessCriteriaMet=True and Failed=true conditions",
        ),
        (
            criteria_met && failure_target,
            "cannot set SuccessCriteriaMet=True and FailureTarget=true conditions",
        ),
        (
            success_policy && !criteria_met && complete,
            "cannot set Complete=True for Job with SuccessPolicy unless SuccessCriteriaMet=True",
        ),
    ];
    let conditions = path.child("conditions");
    rules
        .into_iter()
        .filter(|(rejected, _)| *rejected)
        .map(|(_, detail)| FieldError::invalid_omitting_value(&conditions, detail))
        .collect()
}

/// A completion time only with Complete, after the start; a finished job has a start time,
/// no active pods and no uncounted ones: each judged when the write touches it.
fn validate_finished(status: &JobStatus, old: &JobStatus, path: &FieldPath) -> Vec<FieldError> {
    let complete = is_true(status, "Complete");
    let complete_changed = complete != is_true(old, "Complete");
    let finished = is_finished(status);
    let finished_changed = finished != is_finished(old);
    let completion_changed = json!(status.completion_time) != json!(old.completion_time);
    let start_changed = json!(status.start_time) != json!(old.start_time);
    let mut errors = Vec::new();
    let completion_path = path.child("completionTime");
    if complete_changed || completion_changed {
        match (&status.completion_time, complete) {
            (Some(time), false) => errors.push(FieldError::invalid(
                &completion_path,
                json!(time),
                "cannot set completionTime when there is no Complete=True condition",
            )),
            (None, true) => errors.push(FieldError::required(
                &completion_path,
                "completionTime is required for Complete jobs",
            )),
            _ => {}
        }
    }
    if let (true, Some(start), Some(end)) = (
        start_changed || completion_changed,
        &status.start_time,
        &status.completion_time,
    ) {
        if end.0 < start.0 {
            errors.push(FieldError::invalid(
                &completion_path,
                json!(end),
                "completionTime cannot be set before startTime",
            ));
        }
    }
    if !finished {
        return errors;
    }
    let active = status.active.unwrap_or(0);
    if (finished_changed || active != old.active.unwrap_or(0)) && active > 0 {
        errors.push(FieldError::invalid(
            &path.child("active"),
            active,
            "active>0 is invalid for finished job",
        ));
    }
    if (finished_changed || start_changed) && status.start_time.is_none() {
        errors.push(FieldError::required(
            &path.child("startTime"),
            "startTime is required for finished job",
        ));
    }
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let uncounted_left = uncounted
        .succeeded
        .iter()
        .chain(&uncounted.failed)
        .any(|l| !l.is_empty());
    let uncounted_changed =
        json!(status.uncounted_terminated_pods) != json!(old.uncounted_terminated_pods);
    if (finished_changed || uncounted_changed) && uncounted_left {
        errors.push(FieldError::invalid(
            &path.child("uncountedTerminatedPods"),
            json!(uncounted),
            "uncountedTerminatedPods needs to be empty for finished job",
        ));
    }
    errors
}

/// completedIndexes and failedIndexes, when the write changes them.
fn validate_indexes(
    job: &Job,
    status: &JobStatus,
    old: &JobStatus,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let spec = job.spec.clone().unwrap_or_default();
    let indexed = spec.completion_mode.as_deref() == Some(INDEXED);
    let completed = status.completed_indexes.clone().unwrap_or_default();
    if completed != old.completed_indexes.clone().unwrap_or_default() {
        let completed_path = path.child("completedIndexes");
        if let Some(Err(err)) = spec.completions.map(|c| parse_indexes(&completed, c)) {
            errors.push(FieldError::invalid(
                &completed_path,
                completed.as_str(),
                &format!("error parsing completedIndexes: {err}"),
            ));
        }
        if !completed.is_empty() && !indexed {
            errors.push(FieldError::invalid(
                &completed_path,
                completed.as_str(),
                "cannot set non-empty completedIndexes when non-indexed completion mode",
            ));
        }
    }
    if status.failed_indexes != old.failed_indexes {
        if let Some(failed) = &status.failed_indexes {
            let failed_path = path.child("failedIndexes");
            let per_index = spec.backoff_limit_per_index.is_some();
            if let (true, Some(Err(err))) = (
                per_index,
                spec.completions.map(|c| parse_indexes(failed, c)),
            ) {
                errors.push(FieldError::invalid(
                    &failed_path,
                    failed.as_str(),
                    &format!("error parsing failedIndexes: {err}"),
                ));
            }
            if !per_index {
                errors.push(FieldError::invalid(
                    &failed_path,
                    failed.as_str(),
                    "cannot set non-null failedIndexes when backoffLimitPerIndex is null",
                ));
            }
        }
    }
    errors
}

/// ValidateJobStatusUpdate's transitions: terminal conditions and counters never go back, a
/// completion time never changes, an unsuspended job keeps its start time.
fn validate_transition(
    job: &Job,
    status: &JobStatus,
    old: &JobStatus,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let conditions = path.child("conditions");
    for kind in ["Failed", "Complete", "FailureTarget"] {
        if is_true(old, kind) && !is_true(status, kind) {
            errors.push(FieldError::invalid_omitting_value(
                &conditions,
                &format!("cannot disable the terminal {kind}=True condition"),
            ));
        }
    }
    let spec = job.spec.clone().unwrap_or_default();
    let failed = status.failed.unwrap_or(0);
    if failed < old.failed.unwrap_or(0) {
        errors.push(FieldError::invalid(
            &path.child("failed"),
            failed,
            "cannot decrease the failed counter",
        ));
    }
    let indexed = spec.completion_mode.as_deref() == Some(INDEXED);
    let succeeded = status.succeeded.unwrap_or(0);
    let may_scale_down = indexed && spec.completions == spec.parallelism;
    if !may_scale_down && succeeded < old.succeeded.unwrap_or(0) {
        errors.push(FieldError::invalid(
            &path.child("succeeded"),
            succeeded,
            "cannot decrease the succeeded counter",
        ));
    }
    if let (Some(new_time), Some(old_time)) = (&status.completion_time, &old.completion_time) {
        if new_time.0 != old_time.0 {
            errors.push(FieldError::invalid(
                &path.child("completionTime"),
                json!(new_time),
                "completionTime cannot be mutated",
            ));
        }
    }
    let start_changed = json!(status.start_time) != json!(old.start_time);
    // A resume restarts the clock (kube #134769, backported to 1.32 in #135128).
    let resuming = is_true(old, "Suspended") && !is_true(status, "Suspended");
    if old.start_time.is_some() && start_changed && spec.suspend != Some(true) && !resuming {
        errors.push(FieldError::required(
            &path.child("startTime"),
            "startTime cannot be removed for unsuspended job",
        ));
    }
    if is_true(old, "SuccessCriteriaMet") && !is_true(status, "SuccessCriteriaMet") {
        errors.push(FieldError::invalid_omitting_value(
            &conditions,
            "cannot disable the SuccessCriteriaMet=True condition",
        ));
    }
    if is_true(old, "Complete")
        && !is_true(old, "SuccessCriteriaMet")
        && is_true(status, "SuccessCriteriaMet")
    {
        errors.push(FieldError::invalid_omitting_value(
            &conditions,
            "cannot set SuccessCriteriaMet=True for Job already has Complete=true conditions",
        ));
    }
    errors
}
