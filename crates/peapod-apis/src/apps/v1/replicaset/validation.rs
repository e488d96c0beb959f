//! kube's apps validation of a ReplicaSet (ValidateReplicaSet, ValidateReplicaSetUpdate, the
//! strategy's immutable selector, ValidateReplicaSetStatus) and its create warnings.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use peapod_api::label_selector;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{validate_pod_template_spec, FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;
use serde_json::{json, Value};

const NEGATIVE: &str = "must be greater than or equal to 0";
const GREATER_THAN_REPLICAS: &str = "cannot be greater than status.replicas";

/// ValidateReplicaSet: metadata, then the spec.
pub fn validate(rs: &ReplicaSet) -> Vec<FieldError> {
    let mut errors = validate_meta(rs, true);
    let spec = rs.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, &FieldPath::new("spec")));
    errors
}

/// kube's update rules for apps/v1: the new object valid, metadata identity kept, the selector
/// unchanged, and the status valid (a status write keeps the spec, so only that can fail).
pub fn validate_update(new: &ReplicaSet, old: &ReplicaSet) -> Vec<FieldError> {
    let mut errors = validate(new);
    let path = FieldPath::new("metadata");
    errors.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &path,
    ));
    let selector = |rs: &ReplicaSet| normalized(rs.spec.as_ref().map(|s| &s.selector));
    if selector(new) != selector(old) {
        let value = json!(new.spec.as_ref().map(|s| &s.selector));
        let path = FieldPath::new("spec").child("selector");
        errors.push(FieldError::invalid(&path, value, "field is immutable"));
    }
    let status = new.status.clone().unwrap_or_default();
    errors.extend(validate_status(&status, &FieldPath::new("status")));
    errors
}

/// ValidateReplicaSetSpec.
fn validate_spec(spec: &ReplicaSetSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(non_negative(
        spec.replicas.unwrap_or(0),
        &path.child("replicas"),
    ));
    errors.extend(non_negative(
        spec.min_ready_seconds.unwrap_or(0),
        &path.child("minReadySeconds"),
    ));
    let selector_path = path.child("selector");
    let selector = given_selector(&spec.selector);
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
    let template = spec.template.clone().unwrap_or_default();
    errors.extend(validate_template(
        &template,
        selector,
        &path.child("template"),
    ));
    errors
}

/// The selector as kube's `*LabelSelector` sees it: k8s-openapi decodes a missing selector as
/// an empty one, and the stored JSON drops empty maps, so only a selector with a field left is
/// one the client gave.
fn given_selector(selector: &LabelSelector) -> Option<&LabelSelector> {
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
    let spec_path = path.child("spec");
    let restart_policy = spec.restart_policy.as_deref().unwrap_or_default();
    if restart_policy != "Always" {
        errors.push(FieldError::not_supported(
            &spec_path.child("restartPolicy"),
            restart_policy,
            &["Always"],
        ));
    }
    if spec.active_deadline_seconds.is_some() {
        errors.push(FieldError::forbidden(
            &spec_path.child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    errors
}

/// ValidateReplicaSetStatus.
fn validate_status(status: &ReplicaSetStatus, path: &FieldPath) -> Vec<FieldError> {
    let replicas = status.replicas;
    let fully_labeled = status.fully_labeled_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let mut errors = Vec::new();
    let counts = [
        ("replicas", i64::from(replicas)),
        ("fullyLabeledReplicas", i64::from(fully_labeled)),
        ("readyReplicas", i64::from(ready)),
        ("availableReplicas", i64::from(available)),
        (
            "observedGeneration",
            status.observed_generation.unwrap_or(0),
        ),
    ];
    for (field, count) in counts {
        errors.extend(non_negative(count, &path.child(field)));
    }
    let above = [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ];
    for (field, count) in above {
        if count > replicas {
            errors.push(FieldError::invalid(
                &path.child(field),
                count,
                GREATER_THAN_REPLICAS,
            ));
        }
    }
    if available > ready {
        errors.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            "cannot be greater than readyReplicas",
        ));
    }
    errors
}

/// kube's WarningsOnCreate: a name that is no DNS label, then the pod template's warnings,
/// each under `spec.template`.
pub fn warnings(rs: &ReplicaSet) -> Vec<String> {
    let mut warnings = Vec::new();
    let name = rs.metadata.name.as_deref().unwrap_or_default();
    let problems = peapod_api::validation::names::dns1123_label(name);
    if !name.is_empty() && !problems.is_empty() {
        warnings.push(format!(
            "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [{}]",
            problems.join(" ")
        ));
    }
    let Some(template) = rs.spec.as_ref().and_then(|s| s.template.as_ref()) else {
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

fn non_negative(value: impl Into<i64>, path: &FieldPath) -> Option<FieldError> {
    let value = value.into();
    (value < 0).then(|| FieldError::invalid(path, value, NEGATIVE))
}

fn labels_value(labels: &BTreeMap<String, String>) -> Value {
    json!(labels)
}

/// A selector compared as kube's semantic equality does: nil and empty lists and maps alike.
fn normalized(selector: Option<&LabelSelector>) -> Value {
    let Some(selector) = selector else {
        return json!({});
    };
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
