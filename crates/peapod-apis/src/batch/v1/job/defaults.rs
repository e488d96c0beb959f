//! batch/v1's SetDefaults_Job (pkg/apis/batch/v1/defaults.go) with the pod template's defaults,
//! and the strategy's generated selector (generateSelector in pkg/registry/batch/job).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};

/// SetDefaults_Job; Go's spec is a value, so a missing one is defaulted as an empty one.
pub fn default_job(job: &mut Job) {
    let spec = job.spec.get_or_insert_with(Default::default);
    default_job_spec(spec);
    copy_template_labels(job);
}

/// SetDefaults_Job's spec rules, then the pod template's (what a CronJob's job template gets
/// only the second of: [`default_template`]).
pub fn default_job_spec(spec: &mut JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        let limit = if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        };
        spec.backoff_limit = Some(limit);
    }
    spec.completion_mode
        .get_or_insert_with(|| "NonIndexed".into());
    spec.suspend.get_or_insert(false);
    if spec.pod_replacement_policy.is_none() {
        let policy = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy = Some(policy.into());
    }
    spec.manual_selector.get_or_insert(false);
    default_template(spec);
}

/// The defaults generated for what a job spec embeds: the pod template's spec, and a pod
/// failure policy pattern's status (True).
pub fn default_template(spec: &mut JobSpec) {
    let pod_spec = spec.template.spec.get_or_insert_with(Default::default);
    peapod_api::defaults::default_pod_spec(pod_spec);
    let rules = spec
        .pod_failure_policy
        .iter_mut()
        .flat_map(|p| &mut p.rules);
    for pattern in rules.flat_map(|r| r.on_pod_conditions.iter_mut().flatten()) {
        if pattern.status.is_empty() {
            pattern.status = "True".into();
        }
    }
}

/// A job with no labels takes its pod template's.
pub fn copy_template_labels(job: &mut Job) {
    let template_labels = job
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    let has_labels = job.metadata.labels.as_ref().is_some_and(|l| !l.is_empty());
    if let (Some(labels), false) = (template_labels, has_labels) {
        job.metadata.labels = Some(labels);
    }
}

/// generateSelectorIfNeeded: unless the client asked for a manual selector, the template is
/// labelled with the job's name and uid (labels the client set are kept, for validation to
/// judge) and the selector selects the uid.
pub fn generate_selector_if_needed(job: &mut Job) {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let spec = job.spec.get_or_insert_with(Default::default);
    if spec.manual_selector == Some(true) {
        return;
    }
    let metadata = spec.template.metadata.get_or_insert_with(Default::default);
    let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        labels.entry(key.into()).or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
        labels.entry(key.into()).or_insert_with(|| uid.clone());
    }
    let selector = spec.selector.get_or_insert_with(LabelSelector::default);
    let match_labels = selector.match_labels.get_or_insert_with(BTreeMap::new);
    match_labels
        .entry(CONTROLLER_UID_LABEL.into())
        .or_insert(uid);
}
