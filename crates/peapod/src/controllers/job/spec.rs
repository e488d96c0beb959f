//! What the controller reads off a Job's spec, with batch/v1's defaults for what is unset.

use k8s_openapi::api::batch::v1::{Job, JobSpec};

/// `spec.managedBy` of Jobs this controller runs (unset means the same).
pub const JOB_CONTROLLER_NAME: &str = "kubernetes.io/job-controller";

fn spec(job: &Job) -> Option<&JobSpec> {
    job.spec.as_ref()
}

pub fn completions(job: &Job) -> Option<i32> {
    spec(job).and_then(|s| s.completions)
}

/// Indexed Jobs always have completions; 0 stands for a missing one.
pub fn indexed_completions(job: &Job) -> i32 {
    completions(job).unwrap_or(0)
}

pub fn parallelism(job: &Job) -> i32 {
    spec(job).and_then(|s| s.parallelism).unwrap_or(1)
}

pub fn backoff_limit(job: &Job) -> i32 {
    spec(job).and_then(|s| s.backoff_limit).unwrap_or(6)
}

pub fn backoff_limit_per_index(job: &Job) -> Option<i32> {
    spec(job).and_then(|s| s.backoff_limit_per_index)
}

pub fn is_indexed(job: &Job) -> bool {
    completion_mode(job) == "Indexed"
}

pub fn completion_mode(job: &Job) -> &str {
    spec(job)
        .and_then(|s| s.completion_mode.as_deref())
        .unwrap_or("NonIndexed")
}

pub fn suspended(job: &Job) -> bool {
    spec(job).and_then(|s| s.suspend).unwrap_or(false)
}

pub fn active_deadline_seconds(job: &Job) -> Option<i64> {
    spec(job).and_then(|s| s.active_deadline_seconds)
}

/// `managedByExternalController`: the other controller's name, if another runs this Job.
pub fn managed_elsewhere(job: &Job) -> Option<&str> {
    let managed_by = spec(job).and_then(|s| s.managed_by.as_deref())?;
    (managed_by != JOB_CONTROLLER_NAME).then_some(managed_by)
}
