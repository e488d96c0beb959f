//! The Jobs of a CronJob, as kube's cronjob controller sees them: the Job a start time makes
//! (`getJobFromTemplate2`), whether one finished and how, the references kept in
//! `status.active`, and which finished Jobs the history limits let go.

use std::cmp::Ordering;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use peapod_apis::batch::v1::cronjob::schedule::load_location;

use super::times::job_name;
use crate::controllers::ownership;

/// The annotation carrying a Job's scheduled time, in the CronJob's zone.
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// How a Job finished: kube's first true `Complete` or `Failed` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Complete,
    Failed,
}

impl Finished {
    pub fn as_str(self) -> &'static str {
        match self {
            Finished::Complete => "Complete",
            Finished::Failed => "Failed",
        }
    }
}

/// `FinishedCondition`: the first true Complete or Failed condition.
pub fn finished(job: &Job) -> Option<Finished> {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref());
    conditions
        .unwrap_or_default()
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(Finished::Complete),
            "Failed" => Some(Finished::Failed),
            _ => None,
        })
}

/// `IsJobSucceeded`: a true Complete condition, wherever it stands.
pub fn succeeded(job: &Job) -> bool {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref());
    conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Complete" && c.status == "True")
}

/// `getJobFromTemplate2`: the Job for `scheduled`, named after it, with the template's labels
/// and annotations, the scheduled time annotated in the CronJob's zone (UTC without one) and
/// the CronJob as controller.
pub fn job_from_template(cron_job: &CronJob, scheduled: Timestamp) -> Result<Job, UnknownZone> {
    let spec = cron_job.spec.clone().unwrap_or_default();
    let template = spec.job_template;
    let zone_name = spec.time_zone.unwrap_or_default();
    let zone = load_location(&zone_name).ok_or_else(|| UnknownZone(zone_name.clone()))?;
    let template_meta = template.metadata.unwrap_or_default();
    let mut annotations = template_meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.to_owned(),
        go_rfc3339(&scheduled.to_zoned(zone)),
    );
    let name = cron_job.metadata.name.as_deref().unwrap_or_default();
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(name, scheduled)),
            labels: template_meta.labels.filter(|labels| !labels.is_empty()),
            annotations: Some(annotations),
            owner_references: Some(vec![ownership::controller_ref(cron_job)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    })
}

/// A `spec.timeZone` Go's `time.LoadLocation` cannot load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0}")]
pub struct UnknownZone(pub String);

/// Go's `time.RFC3339` layout: `Z` for UTC, else the offset as `±hh:mm`.
fn go_rfc3339(time: &jiff::Zoned) -> String {
    match time.offset().seconds() {
        0 => time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        _ => time.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
    }
}

/// `getRef`: the reference `status.active` keeps of a Job.
pub fn reference_of(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some(Job::api_version(&()).into_owned()),
        kind: Some(Job::kind(&()).into_owned()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

pub fn active(cron_job: &CronJob) -> &[ObjectReference] {
    let status = cron_job.status.as_ref();
    status.and_then(|s| s.active.as_deref()).unwrap_or_default()
}

/// `inActiveList`.
pub fn in_active_list(cron_job: &CronJob, uid: &str) -> bool {
    active(cron_job)
        .iter()
        .any(|r| r.uid.as_deref() == Some(uid))
}

/// `inActiveListByName`.
pub fn in_active_list_by_name(cron_job: &CronJob, namespace: &str, name: &str) -> bool {
    active(cron_job)
        .iter()
        .any(|r| r.name.as_deref() == Some(name) && r.namespace.as_deref() == Some(namespace))
}

/// `deleteFromActiveList`.
pub fn delete_from_active_list(cron_job: &mut CronJob, uid: &str) {
    let status = cron_job.status.get_or_insert_with(Default::default);
    let remaining = status
        .active
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.uid.as_deref() != Some(uid))
        .collect();
    status.active = Some(remaining);
}

/// `byJobStartTime`: started Jobs first, oldest first, then by name.
pub fn by_start_time(a: &Job, b: &Job) -> Ordering {
    let start = |job: &Job| {
        job.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
    };
    match (start(a), start(b)) {
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (a_start, b_start) if a_start == b_start => a.metadata.name.cmp(&b.metadata.name),
        (a_start, b_start) => a_start.cmp(&b_start),
    }
}

/// `cleanupFinishedJobs` and `removeOldestJobs`: the finished Jobs past the history limits,
/// oldest first, successful ones before failed ones. No limit at all keeps every Job.
pub fn past_history_limits<'a>(cron_job: &CronJob, jobs: &[&'a Job]) -> Vec<&'a Job> {
    let spec = cron_job.spec.as_ref();
    let successful_limit = spec.and_then(|s| s.successful_jobs_history_limit);
    let failed_limit = spec.and_then(|s| s.failed_jobs_history_limit);
    let oldest = |how: Finished, limit: Option<i32>| -> Vec<&'a Job> {
        let Some(limit) = limit else {
            return Vec::new();
        };
        let mut finished: Vec<&'a Job> = jobs
            .iter()
            .copied()
            .filter(|job| finished(job) == Some(how))
            .collect();
        let excess = finished
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        finished.sort_by(|a, b| by_start_time(a, b));
        finished.truncate(excess);
        finished
    };
    let mut doomed = oldest(Finished::Complete, successful_limit);
    doomed.extend(oldest(Finished::Failed, failed_limit));
    doomed
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(name: &str, start: Option<&str>, condition: Option<(&str, &str)>) -> Job {
        let conditions: Vec<_> = condition
            .into_iter()
            .map(|(type_, status)| json!({"type": type_, "status": status}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("{name}-uid")},
            "status": {"startTime": start, "conditions": conditions},
        }))
        .expect("a job")
    }

    fn cron_job(time_zone: Option<&str>, annotations: serde_json::Value) -> CronJob {
        serde_json::from_value(json!({
            "metadata": {"name": "mycronjob", "namespace": "snazzycats", "uid": "1a2b3c"},
            "spec": {
                "schedule": "* * * * ?", "concurrencyPolicy": "Allow", "timeZone": time_zone,
                "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 2,
                "jobTemplate": {
                    "metadata": {"labels": {"a": "b"}, "annotations": annotations},
                    "spec": {"activeDeadlineSeconds": 1, "manualSelector": false,
                             "template": {"metadata": {"labels": {"foo": "bar"}},
                                          "spec": {"containers": [{"image": "foo/bar", "name": "c"}]}}},
                },
            },
        }))
        .expect("a cron job")
    }

    /// kube's TestGetJobFromTemplate2.
    #[test]
    fn jobs_copy_the_template_and_annotate_the_scheduled_time_in_the_zone() {
        let scheduled: Timestamp = "2016-05-19T10:00:00Z".parse().expect("a timestamp");
        let cases = [
            (Some("UTC"), json!({"x": "y"}), "2016-05-19T10:00:00Z", 2),
            (None, json!({"x": "y"}), "2016-05-19T10:00:00Z", 2),
            (
                Some("Europe/Rome"),
                json!({"x": "y", "z": "x"}),
                "2016-05-19T12:00:00+02:00",
                3,
            ),
        ];
        for (zone, annotations, expected, count) in cases {
            let cron_job = cron_job(zone, annotations);
            let job = job_from_template(&cron_job, scheduled).expect("a job");
            assert_eq!(job.metadata.name.as_deref(), Some("mycronjob-24394200"));
            assert_eq!(job.metadata.labels.as_ref().map(|l| l.len()), Some(1));
            let annotations = job.metadata.annotations.expect("annotations");
            assert_eq!(annotations.len(), count, "{zone:?}");
            assert_eq!(annotations[SCHEDULED_TIMESTAMP_ANNOTATION], expected);
            let owner = &job.metadata.owner_references.expect("an owner")[0];
            assert_eq!(
                (
                    owner.kind.as_str(),
                    owner.api_version.as_str(),
                    owner.uid.as_str()
                ),
                ("CronJob", "batch/v1", "1a2b3c")
            );
            assert_eq!(owner.controller, Some(true));
            let spec = job.spec.expect("the template's spec");
            assert_eq!(spec.active_deadline_seconds, Some(1));
        }
        let mut unknown = cron_job(Some("Mars/Olympus"), json!({}));
        assert_eq!(
            job_from_template(&unknown, scheduled).map(|_| ()),
            Err(UnknownZone("Mars/Olympus".into()))
        );
        if let Some(spec) = unknown.spec.as_mut() {
            spec.time_zone = None;
        }
        assert!(job_from_template(&unknown, scheduled).is_ok());
    }

    /// kube's TestByJobStartTime.
    #[test]
    fn jobs_sort_by_start_time_then_name() {
        let now = Some("2018-01-01T02:03:04Z");
        let later = Some("2019-01-01T02:03:04Z");
        let names = |mut jobs: Vec<Job>| -> Vec<(String, bool)> {
            jobs.sort_by(by_start_time);
            jobs.iter()
                .map(|j| {
                    let started = j.status.as_ref().and_then(|s| s.start_time.as_ref());
                    (
                        j.metadata.name.clone().unwrap_or_default(),
                        started.is_some(),
                    )
                })
                .collect()
        };
        let named = |n: &str, s: bool| (n.to_owned(), s);
        assert_eq!(
            names(vec![job("b", None, None), job("a", None, None)]),
            [named("a", false), named("b", false)]
        );
        assert_eq!(
            names(vec![job("a", None, None), job("b", now, None)]),
            [named("b", true), named("a", false)]
        );
        assert_eq!(
            names(vec![job("a", now, None), job("b", None, None)]),
            [named("a", true), named("b", false)]
        );
        assert_eq!(
            names(vec![job("b", now, None), job("a", now, None)]),
            [named("a", true), named("b", true)]
        );
        assert_eq!(
            names(vec![job("a", later, None), job("b", now, None)]),
            [named("b", true), named("a", true)]
        );
    }

    #[test]
    fn history_limits_let_the_oldest_finished_jobs_go() {
        let cron_job = cron_job(None, json!({}));
        let jobs = [
            job(
                "s1",
                Some("2018-01-01T00:00:00Z"),
                Some(("Complete", "True")),
            ),
            job(
                "s2",
                Some("2018-01-02T00:00:00Z"),
                Some(("Complete", "True")),
            ),
            job(
                "s3",
                Some("2018-01-03T00:00:00Z"),
                Some(("Complete", "True")),
            ),
            job("f1", Some("2018-01-01T00:00:00Z"), Some(("Failed", "True"))),
            job("f2", Some("2018-01-02T00:00:00Z"), Some(("Failed", "True"))),
            job("f3", None, Some(("Failed", "True"))),
            job(
                "running",
                Some("2017-01-01T00:00:00Z"),
                Some(("Complete", "False")),
            ),
        ];
        let refs: Vec<&Job> = jobs.iter().collect();
        let doomed: Vec<&str> = past_history_limits(&cron_job, &refs)
            .iter()
            .filter_map(|j| j.metadata.name.as_deref())
            .collect();
        assert_eq!(doomed, ["s1", "s2", "f1"]);
        let mut unlimited = cron_job.clone();
        if let Some(spec) = unlimited.spec.as_mut() {
            spec.successful_jobs_history_limit = None;
            spec.failed_jobs_history_limit = None;
        }
        assert!(past_history_limits(&unlimited, &refs).is_empty());
    }

    #[test]
    fn finished_is_the_first_true_complete_or_failed_condition() {
        assert_eq!(
            finished(&job("a", None, Some(("Failed", "True")))),
            Some(Finished::Failed)
        );
        assert_eq!(finished(&job("a", None, Some(("Complete", "False")))), None);
        assert_eq!(finished(&job("a", None, Some(("Suspended", "True")))), None);
        assert!(succeeded(&job("a", None, Some(("Complete", "True")))));
        assert!(!succeeded(&job("a", None, Some(("Failed", "True")))));
    }

    #[test]
    fn the_active_list_is_kept_by_uid_and_searched_by_name() {
        let mut cron_job = cron_job(None, json!({}));
        let mut running = job("running", None, None);
        running.metadata.resource_version = Some("7".into());
        cron_job.status = Some(Default::default());
        if let Some(status) = cron_job.status.as_mut() {
            status.active = Some(vec![reference_of(&running)]);
        }
        let reference = &active(&cron_job)[0];
        assert_eq!(reference.kind.as_deref(), Some("Job"));
        assert_eq!(reference.api_version.as_deref(), Some("batch/v1"));
        assert_eq!(reference.resource_version.as_deref(), Some("7"));
        assert!(in_active_list(&cron_job, "running-uid"));
        assert!(in_active_list_by_name(&cron_job, "default", "running"));
        assert!(!in_active_list_by_name(&cron_job, "other", "running"));
        delete_from_active_list(&mut cron_job, "running-uid");
        assert!(active(&cron_job).is_empty());
    }
}
