//! kube's CronJob validation (ValidateCronJobCreate, ValidateCronJobUpdate): the schedule as
//! robfig/cron parses it, the time zone against the system's tz database, the job template as
//! a job spec whose selector is generated, and the name short enough for its jobs' names.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec};
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;
use serde_json::json;

use super::schedule;
use crate::batch::v1::job::validation::validate_spec;

const NEGATIVE: &str = "must be greater than or equal to 0";
/// 63 less the 11 characters of the `-<minutes>` suffix the controller names jobs with.
const MAX_NAME_LENGTH: usize = 52;
const CONCURRENCY_POLICIES: [&str; 3] = ["Allow", "Forbid", "Replace"];

pub fn validate(cron_job: &CronJob) -> Vec<FieldError> {
    let mut errors = validate_meta(cron_job, true);
    let spec = cron_job.spec.clone().unwrap_or_default();
    errors.extend(validate_spec_against(&spec, None, &FieldPath::new("spec")));
    let name = cron_job.metadata.name.as_deref().unwrap_or_default();
    if name.len() > MAX_NAME_LENGTH {
        errors.push(FieldError::invalid(
            &FieldPath::new("metadata").child("name"),
            name,
            "must be no more than 52 characters",
        ));
    }
    errors
}

/// The 52-character limit is not checked on update, so older, longer names stay editable.
pub fn validate_update(new: &CronJob, old: &CronJob) -> Vec<FieldError> {
    let mut errors = validate_meta(new, true);
    let path = FieldPath::new("metadata");
    errors.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &path,
    ));
    let spec = new.spec.clone().unwrap_or_default();
    let old_spec = old.spec.clone().unwrap_or_default();
    errors.extend(validate_spec_against(
        &spec,
        Some(&old_spec),
        &FieldPath::new("spec"),
    ));
    errors
}

/// validateCronJobSpec; `old` is the stored spec on update.
fn validate_spec_against(
    spec: &CronJobSpec,
    old: Option<&CronJobSpec>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let schedule_path = path.child("schedule");
    if spec.schedule.is_empty() {
        errors.push(FieldError::required(&schedule_path, ""));
    } else {
        let tz_allowed = old.is_some_and(|o| o.schedule.contains("TZ"));
        errors.extend(validate_schedule(
            &spec.schedule,
            tz_allowed,
            spec.time_zone.is_some(),
            &schedule_path,
        ));
    }
    if let Some(deadline) = spec.starting_deadline_seconds.filter(|d| *d < 0) {
        errors.push(FieldError::invalid(
            &path.child("startingDeadlineSeconds"),
            deadline,
            NEGATIVE,
        ));
    }
    if old.is_none_or(|o| o.time_zone != spec.time_zone) {
        errors.extend(validate_time_zone(
            spec.time_zone.as_deref(),
            &path.child("timeZone"),
        ));
    }
    let policy_path = path.child("concurrencyPolicy");
    match spec.concurrency_policy.as_deref().unwrap_or_default() {
        "" => errors.push(FieldError::required(&policy_path, "")),
        policy if !CONCURRENCY_POLICIES.contains(&policy) => errors.push(
            FieldError::not_supported(&policy_path, policy, &CONCURRENCY_POLICIES),
        ),
        _ => {}
    }
    errors.extend(validate_job_template(spec, &path.child("jobTemplate")));
    for (field, limit) in [
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if let Some(limit) = limit.filter(|l| *l < 0) {
            errors.push(FieldError::invalid(&path.child(field), limit, NEGATIVE));
        }
    }
    errors
}

/// validateScheduleFormat: robfig's parse, and no `TZ` in the schedule unless it had one.
fn validate_schedule(
    schedule: &str,
    tz_allowed: bool,
    has_time_zone: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(err) = schedule::parse_standard(schedule, zone_exists) {
        errors.push(FieldError::invalid(path, schedule, &err));
    }
    let has_tz = schedule.contains("TZ");
    if tz_allowed && has_tz && has_time_zone {
        errors.push(FieldError::invalid(
            path,
            schedule,
            "cannot use both timeZone field and TZ or CRON_TZ in schedule",
        ));
    } else if !tz_allowed && has_tz {
        errors.push(FieldError::invalid(
            path,
            schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    }
    errors
}

/// validateTimeZone: an IANA name of the system's tz database, not `Local`.
fn validate_time_zone(time_zone: Option<&str>, path: &FieldPath) -> Vec<FieldError> {
    let Some(zone) = time_zone else {
        return Vec::new();
    };
    if zone.is_empty() {
        return vec![FieldError::invalid(
            path,
            zone,
            "timeZone must be nil or non-empty string",
        )];
    }
    let valid_part = |part: &str| {
        let chars_ok = part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_+".contains(c));
        part != "."
            && part != ".."
            && !part.starts_with('-')
            && chars_ok
            && (1..=14).contains(&part.len())
    };
    let unknown = format!("unknown time zone {zone}");
    if !zone.split('/').all(valid_part) {
        return vec![FieldError::invalid(path, zone, &unknown)];
    }
    let mut errors = Vec::new();
    if zone.eq_ignore_ascii_case("Local") {
        errors.push(FieldError::invalid(
            path,
            zone,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if !zone_exists(zone) {
        errors.push(FieldError::invalid(path, zone, &unknown));
    }
    errors
}

/// Go's time.LoadLocation: "" and "UTC" are UTC, "Local" the host's zone, anything else a file
/// of the tz database, named exactly (the database is case-sensitive on Linux).
pub(crate) fn zone_exists(zone: &str) -> bool {
    if zone.is_empty() || zone == "UTC" || zone == "Local" {
        return true;
    }
    let found = jiff::tz::db().get(zone);
    found.is_ok_and(|tz| tz.iana_name() == Some(zone))
}

/// ValidateJobTemplateSpec: a job spec whose selector the Job will get generated.
fn validate_job_template(spec: &CronJobSpec, path: &FieldPath) -> Vec<FieldError> {
    let job_spec = spec.job_template.spec.clone().unwrap_or_default();
    let spec_path = path.child("spec");
    let mut errors = validate_spec(&job_spec, &spec_path);
    if let Some(selector) = &job_spec.selector {
        errors.push(FieldError::invalid(
            &spec_path.child("selector"),
            json!(selector),
            "`selector` will be auto-generated",
        ));
    }
    if job_spec.manual_selector == Some(true) {
        errors.push(FieldError::not_supported(
            &spec_path.child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    errors
}
