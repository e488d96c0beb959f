//! CronJob: served as kube-apiserver 1.32 serves batch/v1 cronjobs (pkg/registry/batch/cronjob):
//! batch/v1's defaults (and the pod template's in the job template), the schedule and time zone
//! validated as kube does, a generation bumped by spec changes, the `status` subresource and
//! kubectl's columns. The controller that creates the jobs lives in the agent.

pub mod schedule;
mod table;
mod validation;

#[cfg(test)]
mod tests;

use k8s_openapi::api::batch::v1::CronJob;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::Column;
use serde_json::Value;

use crate::batch::v1::job::{default_template, validation as job_validation};

pub fn kind() -> Kind {
    Kind::of(CronJobStrategy)
        .short_names(&["cj"])
        .categories(&["all"])
        .with_status()
}

pub struct CronJobStrategy;

impl KindStrategy for CronJobStrategy {
    type Object = CronJob;

    fn tracks_generation(&self) -> bool {
        true
    }

    /// SetDefaults_CronJob, then the defaults generated for the job template's pod template
    /// (the template's job spec itself gets none: those are the Job's, at its creation).
    fn default(&self, cron_job: &mut CronJob) {
        let spec = cron_job.spec.get_or_insert_with(Default::default);
        spec.concurrency_policy
            .get_or_insert_with(|| "Allow".into());
        spec.suspend.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        let job_spec = spec.job_template.spec.get_or_insert_with(Default::default);
        default_template(job_spec);
    }

    fn validate(&self, cron_job: &CronJob) -> Vec<FieldError> {
        validation::validate(cron_job)
    }

    fn validate_update(&self, new: &CronJob, old: &CronJob) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    /// WarningsOnCreate: the name, the pod template's warnings, and a `TZ` in the schedule.
    fn warnings(&self, cron_job: &CronJob) -> Vec<String> {
        let mut warnings = job_validation::name_warnings(cron_job.metadata.name.as_deref());
        let spec = cron_job.spec.as_ref();
        let job_spec = spec.and_then(|s| s.job_template.spec.as_ref());
        let template = job_spec.map(|s| &s.template);
        warnings.extend(job_validation::template_warnings(
            template,
            "spec.jobTemplate.spec.template.",
        ));
        if spec.is_some_and(|s| s.schedule.contains("TZ")) {
            warnings
                .push("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
        }
        warnings
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, cron_job: &CronJob) -> Vec<Value> {
        table::cells(cron_job)
    }
}
