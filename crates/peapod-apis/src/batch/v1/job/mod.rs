//! Job: served as kube-apiserver 1.32 serves batch/v1 jobs (pkg/registry/batch/job): batch/v1's
//! defaults, a selector generated from the uid unless `manualSelector`, validation with kube's
//! messages and update rules, a generation bumped by spec changes, the `status` subresource,
//! kubectl's columns, and dependents orphaned by default (batch/v1's compatibility rule). The
//! controller that runs the pods lives in the agent.

mod defaults;
mod status;
pub(crate) mod table;
pub(crate) mod validation;

#[cfg(test)]
mod tests;

use k8s_openapi::api::batch::v1::Job;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{GarbageCollectionPolicy, Kind, KindStrategy};
use peapod_apiserver::table::Column;
use serde_json::Value;

pub use defaults::{default_job_spec, default_template};

/// The labels a generated selector selects by, on the pod template (the legacy pair too).
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

pub fn kind() -> Kind {
    Kind::of(JobStrategy).categories(&["all"]).with_status()
}

pub struct JobStrategy;

impl KindStrategy for JobStrategy {
    type Object = Job;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, job: &mut Job) {
        defaults::default_job(job);
    }

    /// kube's PrepareForCreate: the selector and template labels generated from the uid the
    /// server has just assigned. Go decodes the stored Job again, with defaults, when it
    /// answers, so the job takes the template's labels when it has none.
    fn prepare_for_create(&self, job: &mut Job) {
        defaults::generate_selector_if_needed(job);
        defaults::copy_template_labels(job);
    }

    fn validate(&self, job: &Job) -> Vec<FieldError> {
        validation::validate(job)
    }

    fn validate_update(&self, new: &Job, old: &Job) -> Vec<FieldError> {
        let mut errors = validation::validate_update(new, old);
        errors.extend(status::validate_status_update(new, old));
        errors
    }

    fn warnings(&self, job: &Job) -> Vec<String> {
        let mut warnings = validation::name_warnings(job.metadata.name.as_deref());
        let template = job.spec.as_ref().map(|s| &s.template);
        warnings.extend(validation::template_warnings(template, "spec.template."));
        warnings
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, job: &Job) -> Vec<Value> {
        table::cells(job)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.successful"]
    }

    fn field(&self, job: &Job, label: &str) -> Option<String> {
        match label {
            "status.successful" => {
                let succeeded = job.status.as_ref().and_then(|s| s.succeeded);
                Some(succeeded.unwrap_or(0).to_string())
            }
            _ => None,
        }
    }

    fn default_garbage_collection_policy(&self) -> GarbageCollectionPolicy {
        GarbageCollectionPolicy::OrphanDependents
    }
}
