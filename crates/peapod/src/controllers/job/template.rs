//! The pod a Job creates: its template with the tracking finalizer and the controller
//! reference, generateName `<job>-`; for an Indexed Job also JOB_COMPLETION_INDEX (a fieldRef
//! on the index label, as kube 1.32 injects it with PodIndexLabel on), the index annotation
//! and label, hostname `<job>-<index>`, generateName `<job>-<index>-`, and with
//! `backoffLimitPerIndex` the failure counts of the pod it replaces.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec,
};

use super::indexes::{
    generate_name_with_index, new_failure_counts, COMPLETION_INDEX, INDEX_FAILURE_COUNT,
    INDEX_IGNORED_FAILURE_COUNT,
};
use super::pods::TRACKING_FINALIZER;
use super::spec;
use crate::controllers::ownership::controller_ref;
use crate::controllers::replicaset::pod_template::{pod_from_template, TemplateError};

/// `completionIndexEnvName`.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The template every pod of one sync starts from: the index variable added to each
/// container of an Indexed Job, and the tracking finalizer.
pub fn sync_template(job: &Job) -> PodTemplateSpec {
    let mut template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    if spec::is_indexed(job) {
        if let Some(pod_spec) = template.spec.as_mut() {
            let containers = pod_spec.init_containers.iter_mut().flatten();
            for container in containers.chain(pod_spec.containers.iter_mut()) {
                add_index_env(container);
            }
        }
    }
    let metadata = template.metadata.get_or_insert_with(Default::default);
    let finalizers = metadata.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_owned());
    }
    template
}

/// The pod to create from `template`, for `index` of an Indexed Job (replacing `replaced`,
/// the index's last failed pod, when failures are limited per index).
pub fn pod_for(
    job: &Job,
    template: &PodTemplateSpec,
    index: Option<usize>,
    replaced: Option<&Pod>,
) -> Result<Pod, TemplateError> {
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let mut template = template.clone();
    if let Some(index) = index {
        index_template(job, &mut template, index, replaced);
    }
    let mut pod = pod_from_template(&template, name, Some(controller_ref(job)));
    if pod.metadata.labels.is_none() {
        return Err(TemplateError::NoLabels);
    }
    if let Some(index) = index {
        pod.metadata.generate_name = Some(generate_name_with_index(name, index));
    }
    Ok(pod)
}

fn index_template(job: &Job, template: &mut PodTemplateSpec, index: usize, replaced: Option<&Pod>) {
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let metadata = template.metadata.get_or_insert_with(Default::default);
    let annotations = metadata.annotations.get_or_insert_with(Default::default);
    annotations.insert(COMPLETION_INDEX.to_owned(), index.to_string());
    if spec::backoff_limit_per_index(job).is_some() {
        let (failures, ignored) = new_failure_counts(job, replaced);
        annotations.insert(INDEX_FAILURE_COUNT.to_owned(), failures.to_string());
        if ignored > 0 {
            annotations.insert(INDEX_IGNORED_FAILURE_COUNT.to_owned(), ignored.to_string());
        }
    }
    let labels = metadata.labels.get_or_insert_with(Default::default);
    labels.insert(COMPLETION_INDEX.to_owned(), index.to_string());
    if let Some(pod_spec) = template.spec.as_mut() {
        pod_spec.hostname = Some(format!("{name}-{index}"));
    }
}

/// `addCompletionIndexEnvVariable`: unless the container sets it already.
fn add_index_env(container: &mut Container) {
    let env = container.env.get_or_insert_with(Vec::new);
    if env.iter().any(|v| v.name == COMPLETION_INDEX_ENV) {
        return;
    }
    env.push(EnvVar {
        name: COMPLETION_INDEX_ENV.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
            }),
            ..EnvVarSource::default()
        }),
    });
}

#[cfg(test)]
mod tests;
