//! kube's apps validation of a StatefulSet (ValidateStatefulSet, ValidateStatefulSetSpec,
//! validateRollingUpdateStatefulSet, ValidatePersistentVolumeClaimRetentionPolicy,
//! ValidatePodTemplateSpecForStatefulSet, ValidateStatefulSetUpdate and the status rules).
//! The template's pod spec is not validated, as kube's is not: its mounts may name claim
//! templates that are no pod volumes yet.

use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec, StatefulSetStatus,
};
use peapod_api::label_selector;
use peapod_api::validation::meta::{
    validate_annotations, validate_labels, validate_object_meta_update,
};
use peapod_api::validation::names::dns1123_label;
use peapod_api::validation::{ErrorKind, FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;
use serde_json::json;

use super::{DELETE, ON_DELETE, ORDERED_READY, PARALLEL, RETAIN, ROLLING_UPDATE};
use crate::apps::v1::int_or_percent::{
    int_or_percent_value, not_more_than_100_percent, positive_int_or_percent, GoIntOrString,
};
use crate::apps::v1::workload::{self, non_negative};

pub const SPEC_FIELDS_FORBIDDEN: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

/// ValidateStatefulSet: metadata with a DNS label name (it names the pods' hostnames), then
/// the spec.
pub fn validate(sts: &StatefulSet) -> Vec<FieldError> {
    let name_path = FieldPath::new("metadata").child("name");
    let mut errors: Vec<FieldError> = validate_meta(sts, true)
        .into_iter()
        .filter(|e| e.path != "metadata.name" || e.kind != ErrorKind::Invalid)
        .collect();
    let name = sts.metadata.name.as_deref().unwrap_or_default();
    if !name.is_empty() {
        let problems = dns1123_label(name);
        errors.extend(
            problems
                .iter()
                .map(|msg| FieldError::invalid(&name_path, name, msg)),
        );
    }
    errors.extend(validate_spec(&spec_of(sts), &FieldPath::new("spec")));
    errors
}

/// ValidateStatefulSetUpdate and, as a status write keeps the spec, the status update's rules.
pub fn validate_update(new: &StatefulSet, old: &StatefulSet) -> Vec<FieldError> {
    let mut errors =
        validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
    let (new_spec, old_spec) = (spec_of(new), spec_of(old));
    errors.extend(validate_spec(&new_spec, &FieldPath::new("spec")));
    if !only_mutable_fields_changed(&new_spec, &old_spec) {
        errors.push(FieldError::forbidden(
            &FieldPath::new("spec"),
            SPEC_FIELDS_FORBIDDEN,
        ));
    }
    errors.extend(validate_status_update(new, old));
    errors
}

fn spec_of(sts: &StatefulSet) -> StatefulSetSpec {
    sts.spec.clone().unwrap_or_default()
}

/// The new spec with the mutable fields taken from the old one equals the old one.
fn only_mutable_fields_changed(new: &StatefulSetSpec, old: &StatefulSetSpec) -> bool {
    let mut clone = new.clone();
    clone.replicas = old.replicas;
    clone.template = old.template.clone();
    clone.update_strategy = old.update_strategy.clone();
    clone.min_ready_seconds = old.min_ready_seconds;
    clone.ordinals = old.ordinals.clone();
    clone.persistent_volume_claim_retention_policy =
        old.persistent_volume_claim_retention_policy.clone();
    semantic(&clone) == semantic(old)
}

/// Compared as kube's semantic equality: nil and empty alike (the stored JSON drops both).
fn semantic(spec: &StatefulSetSpec) -> serde_json::Value {
    fn prune(value: serde_json::Value) -> Option<serde_json::Value> {
        match value {
            serde_json::Value::Null => None,
            serde_json::Value::Object(map) => {
                let map: serde_json::Map<_, _> = map
                    .into_iter()
                    .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                    .collect();
                (!map.is_empty()).then_some(serde_json::Value::Object(map))
            }
            serde_json::Value::Array(items) if items.is_empty() => None,
            other => Some(other),
        }
    }
    prune(json!(spec)).unwrap_or_default()
}

/// ValidateStatefulSetSpec.
fn validate_spec(spec: &StatefulSetSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = validate_pod_management_policy(spec, path);
    errors.extend(validate_update_strategy(
        spec,
        &path.child("updateStrategy"),
    ));
    if let Some(policy) = &spec.persistent_volume_claim_retention_policy {
        errors.extend(validate_retention_policy(
            policy,
            &path.child("persistentVolumeClaimRetentionPolicy"),
        ));
    }
    errors.extend(non_negative(
        spec.replicas.unwrap_or(0),
        &path.child("replicas"),
    ));
    errors.extend(non_negative(
        spec.min_ready_seconds.unwrap_or(0),
        &path.child("minReadySeconds"),
    ));
    if let Some(ordinals) = &spec.ordinals {
        errors.extend(non_negative(
            ordinals.start.unwrap_or(0),
            &path.child("ordinals.start"),
        ));
    }
    errors.extend(validate_selector_and_template(spec, path));
    errors.extend(validate_template_spec(
        spec,
        &path.child("template").child("spec"),
    ));
    errors
}

fn validate_pod_management_policy(spec: &StatefulSetSpec, path: &FieldPath) -> Vec<FieldError> {
    let policy_path = path.child("podManagementPolicy");
    match spec.pod_management_policy.as_deref().unwrap_or_default() {
        "" => vec![FieldError::required(&policy_path, "")],
        ORDERED_READY | PARALLEL => Vec::new(),
        other => vec![FieldError::invalid(
            &policy_path,
            other,
            &format!("must be '{ORDERED_READY}' or '{PARALLEL}'"),
        )],
    }
}

fn validate_update_strategy(spec: &StatefulSetSpec, path: &FieldPath) -> Vec<FieldError> {
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let update_path = path.child("rollingUpdate");
    match strategy.type_.as_deref().unwrap_or_default() {
        "" => vec![FieldError::required(path, "")],
        ON_DELETE => match &strategy.rolling_update {
            Some(update) => vec![FieldError::invalid(
                &update_path,
                json!(update),
                &format!("only allowed for updateStrategy '{ROLLING_UPDATE}'"),
            )],
            None => Vec::new(),
        },
        ROLLING_UPDATE => strategy
            .rolling_update
            .as_ref()
            .map(|update| validate_rolling_update(update, &update_path))
            .unwrap_or_default(),
        _ => vec![FieldError::invalid(
            path,
            json!(strategy),
            &format!("must be '{ROLLING_UPDATE}' or '{ON_DELETE}'"),
        )],
    }
}

/// validateRollingUpdateStatefulSet.
fn validate_rolling_update(
    update: &RollingUpdateStatefulSetStrategy,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> =
        non_negative(update.partition.unwrap_or(0), &path.child("partition"))
            .into_iter()
            .collect();
    if let Some(max_unavailable) = &update.max_unavailable {
        let unavailable_path = path.child("maxUnavailable");
        errors.extend(positive_int_or_percent(max_unavailable, &unavailable_path));
        if int_or_percent_value(max_unavailable) == 0 {
            errors.push(FieldError::invalid(
                &unavailable_path,
                GoIntOrString(max_unavailable),
                "cannot be 0",
            ));
        }
        errors.extend(not_more_than_100_percent(
            max_unavailable,
            &unavailable_path,
        ));
    }
    errors
}

/// ValidatePersistentVolumeClaimRetentionPolicy.
fn validate_retention_policy(
    policy: &StatefulSetPersistentVolumeClaimRetentionPolicy,
    path: &FieldPath,
) -> Vec<FieldError> {
    let whens = [
        ("whenDeleted", &policy.when_deleted),
        ("whenScaled", &policy.when_scaled),
    ];
    whens
        .into_iter()
        .filter_map(|(field, when)| {
            let when = when.as_deref().unwrap_or_default();
            (when != RETAIN && when != DELETE)
                .then(|| FieldError::not_supported(&path.child(field), when, &[DELETE, RETAIN]))
        })
        .collect()
}

/// The selector's rules, then ValidatePodTemplateSpecForStatefulSet when it converts.
fn validate_selector_and_template(spec: &StatefulSetSpec, path: &FieldPath) -> Vec<FieldError> {
    let selector_path = path.child("selector");
    let template_path = path.child("template");
    let mut errors = Vec::new();
    let Some(selector) = workload::given_selector(&spec.selector) else {
        errors.push(FieldError::required(&selector_path, ""));
        return errors;
    };
    errors.extend(label_selector::validate_label_selector(
        selector,
        &selector_path,
    ));
    if label_selector::is_empty(selector) {
        errors.push(FieldError::invalid(
            &selector_path,
            json!(selector),
            "empty selector is invalid for statefulset",
        ));
    }
    let Ok(converted) = label_selector::as_selector(selector) else {
        errors.push(FieldError::invalid(&selector_path, json!(selector), ""));
        return errors;
    };
    let meta = spec.template.metadata.clone().unwrap_or_default();
    let labels = meta.labels.clone().unwrap_or_default();
    if !label_selector::is_empty(selector) && !converted.matches(&labels) {
        errors.push(FieldError::invalid(
            &template_path.child("metadata").child("labels"),
            json!(labels),
            "`selector` does not match template `labels`",
        ));
    }
    errors.extend(validate_labels(
        meta.labels.as_ref(),
        &template_path.child("labels"),
    ));
    errors.extend(validate_annotations(
        meta.annotations.as_ref(),
        &template_path.child("annotations"),
    ));
    errors
}

/// A StatefulSet's pods restart always and have no deadline.
fn validate_template_spec(spec: &StatefulSetSpec, path: &FieldPath) -> Vec<FieldError> {
    let pod_spec = spec.template.spec.clone().unwrap_or_default();
    workload::validate_always_restarting(&pod_spec, path, "StatefulSet")
}

/// ValidateStatefulSetStatusUpdate's status rules and IsDecremented on the collision count.
fn validate_status_update(new: &StatefulSet, old: &StatefulSet) -> Vec<FieldError> {
    let path = FieldPath::new("status");
    let status = new.status.clone().unwrap_or_default();
    let mut errors = validate_status(&status, &path);
    let collisions = |sts: &StatefulSet| sts.status.as_ref().and_then(|s| s.collision_count);
    let (new_count, old_count) = (collisions(new), collisions(old));
    let decremented = match (new_count, old_count) {
        (None, Some(_)) => true,
        (Some(new_count), Some(old_count)) => new_count < old_count,
        _ => false,
    };
    if decremented {
        errors.push(FieldError::invalid(
            &path.child("collisionCount"),
            new_count.unwrap_or(0),
            "cannot be decremented",
        ));
    }
    errors
}

/// ValidateStatefulSetStatus.
fn validate_status(status: &StatefulSetStatus, path: &FieldPath) -> Vec<FieldError> {
    let replicas = status.replicas;
    let ready = status.ready_replicas.unwrap_or(0);
    let current = status.current_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let counts = [
        ("replicas", i64::from(replicas)),
        ("readyReplicas", i64::from(ready)),
        ("currentReplicas", i64::from(current)),
        ("updatedReplicas", i64::from(updated)),
        ("availableReplicas", i64::from(available)),
        (
            "observedGeneration",
            status.observed_generation.unwrap_or(0),
        ),
        (
            "collisionCount",
            i64::from(status.collision_count.unwrap_or(0)),
        ),
    ];
    let bounded = [
        ("readyReplicas", ready),
        ("currentReplicas", current),
        ("updatedReplicas", updated),
        ("availableReplicas", available),
    ];
    let mut errors = workload::validate_status_counts(path, &counts, replicas, &bounded);
    if available > ready {
        errors.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            "cannot be greater than status.readyReplicas",
        ));
    }
    errors
}
