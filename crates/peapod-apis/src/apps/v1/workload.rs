//! What apps/v1's workloads share: the pod template's defaults, kube's checks
//! of the selector against the template (ValidateReplicaSetSpec and ValidateDeploymentSpec
//! have the same, ending in ValidatePodTemplateSpecForReplicaSet), the immutable selector,
//! the create warnings, and the wide table's container cells.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use peapod_api::label_selector;
use peapod_api::validation::{validate_pod_template_spec, FieldError, FieldPath};
use serde_json::{json, Value};

const NEGATIVE: &str = "must be greater than or equal to 0";
/// The status counts' bound (ValidateReplicaSetStatus, ValidateDeploymentStatus).
const GREATER_THAN_REPLICAS: &str = "cannot be greater than status.replicas";

/// A workload status's counts as kube checks them: each of `counts` non-negative, then each of
/// `bounded` no greater than `replicas`, in the order given.
pub fn validate_status_counts(
    path: &FieldPath,
    counts: &[(&str, i64)],
    replicas: i32,
    bounded: &[(&str, i32)],
) -> Vec<FieldError> {
    let negative = counts
        .iter()
        .filter_map(|(field, value)| non_negative(*value, &path.child(field)));
    let above = bounded
        .iter()
        .filter(|(_, value)| *value > replicas)
        .map(|(field, value)| {
            FieldError::invalid(&path.child(field), *value, GREATER_THAN_REPLICAS)
        });
    negative.chain(above).collect()
}

/// SetDefaults_PodSpec on the template's spec; Go's template spec is a value, so a missing
/// one is defaulted as an empty one.
pub fn default_template(template: &mut PodTemplateSpec) {
    let pod_spec = template.spec.get_or_insert_with(Default::default);
    peapod_api::defaults::default_pod_spec(pod_spec);
}

/// The selector rules then, when the selector converts, the template's (kube's
/// ValidatePodTemplateSpecForReplicaSet); `path` is the spec's.
pub fn validate_selector_and_template(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let selector_path = path.child("selector");
    let selector = given_selector(selector);
    match selector {
        None => errors.push(FieldError::required(&selector_path, "")),
        Some(selector) => {
            errors.extend(label_selector::validate_label_selector(
                selector,
                &selector_path,
            ));
            if label_selector::is_empty(selector) {
                errors.push(FieldError::invalid(
                    &selector_path,
                    json!(selector),
                    "empty selector is invalid for deployment",
                ));
            }
        }
    }
    if let Some(selector) = selector {
        if label_selector::to_selector_string(selector).is_err() {
            errors.push(FieldError::invalid(
                &selector_path,
                json!(selector),
                "invalid label selector",
            ));
            return errors;
        }
    }
    errors.extend(validate_template(
        template,
        selector,
        &path.child("template"),
    ));
    errors
}

/// The selector as kube's `*LabelSelector` sees it: k8s-openapi decodes a missing selector as
/// an empty one, and the stored JSON drops empty maps, so only a selector with a field left is
/// one the client gave.
pub fn given_selector(selector: &LabelSelector) -> Option<&LabelSelector> {
    let given = selector.match_labels.is_some() || selector.match_expressions.is_some();
    given.then_some(selector)
}

/// ValidatePodTemplateSpecForReplicaSet; `selector` is `None` for a missing one, which (as
/// kube's `labels.Nothing()`) matches no labels.
fn validate_template(
    template: &PodTemplateSpec,
    selector: Option<&LabelSelector>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mismatch = match selector {
        None => true,
        Some(selector) => {
            !label_selector::is_empty(selector) && !label_selector::matches(selector, &labels)
        }
    };
    if mismatch {
        errors.push(FieldError::invalid(
            &path.child("metadata").child("labels"),
            labels_value(&labels),
            "`selector` does not match template `labels`",
        ));
    }
    errors.extend(validate_pod_template_spec(template, path));
    let spec = template.spec.clone().unwrap_or_default();
    errors.extend(validate_always_restarting(
        &spec,
        &path.child("spec"),
        "ReplicaSet",
    ));
    errors
}

/// The pods of a workload that keeps them running restart always and have no deadline;
/// `kind` names the workload in kube's message.
pub fn validate_always_restarting(spec: &PodSpec, path: &FieldPath, kind: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let restart_policy = spec.restart_policy.as_deref().unwrap_or_default();
    if restart_policy != "Always" {
        errors.push(FieldError::not_supported(
            &path.child("restartPolicy"),
            restart_policy,
            &["Always"],
        ));
    }
    if spec.active_deadline_seconds.is_some() {
        errors.push(FieldError::forbidden(
            &path.child("activeDeadlineSeconds"),
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errors
}

fn labels_value(labels: &BTreeMap<String, String>) -> Value {
    json!(labels)
}

/// The strategies' ValidateImmutableField on `spec.selector`, compared as kube's semantic
/// equality does.
pub fn immutable_selector(new: &LabelSelector, old: &LabelSelector) -> Option<FieldError> {
    (normalized(new) != normalized(old)).then(|| {
        let path = FieldPath::new("spec").child("selector");
        FieldError::invalid(&path, json!(new), "field is immutable")
    })
}

/// A selector with nil and empty lists and maps alike.
fn normalized(selector: &LabelSelector) -> Value {
    let expressions: Vec<Value> = selector
        .match_expressions
        .iter()
        .flatten()
        .map(|e| json!([e.key, e.operator, e.values.clone().unwrap_or_default()]))
        .collect();
    json!({
        "matchLabels": selector.match_labels.clone().unwrap_or_default(),
        "matchExpressions": expressions,
    })
}

/// ValidateNonnegativeField.
pub fn non_negative(value: impl Into<i64>, path: &FieldPath) -> Option<FieldError> {
    let value = value.into();
    (value < 0).then(|| FieldError::invalid(path, value, NEGATIVE))
}

/// kube's WarningsOnCreate of the workloads: a name that is no DNS label, then the pod
/// template's warnings, each under `spec.template`.
pub fn warnings(meta: &ObjectMeta, template: Option<&PodTemplateSpec>) -> Vec<String> {
    let mut warnings = Vec::new();
    let name = meta.name.as_deref().unwrap_or_default();
    let problems = peapod_api::validation::names::dns1123_label(name);
    if !name.is_empty() && !problems.is_empty() {
        warnings.push(format!(
            "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [{}]",
            problems.join(" ")
        ));
    }
    let Some(template) = template else {
        return warnings;
    };
    let pod = Pod {
        metadata: template.metadata.clone().unwrap_or_default(),
        spec: template.spec.clone(),
        status: None,
    };
    let value = serde_json::to_value(&pod).unwrap_or(Value::Null);
    let template_warnings = peapod_api::support::unsupported_pod_fields(&value)
        .into_iter()
        .chain(peapod_api::warnings::pod_warnings(&pod));
    warnings.extend(template_warnings.map(|warning| under_template(&warning)));
    warnings
}

/// A pod's warning (`spec.affinity: ...`) as the template's (`spec.template.spec.affinity`).
fn under_template(warning: &str) -> String {
    if warning.starts_with("spec") || warning.starts_with("metadata") {
        format!("spec.template.{warning}")
    } else {
        warning.to_owned()
    }
}

/// The Containers and Images cells of the wide table (kube's layoutContainerCells).
pub fn container_cells(template: Option<&PodTemplateSpec>) -> [Value; 2] {
    let containers = template
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or_default())
        .collect();
    [json!(names.join(",")), json!(images.join(","))]
}
