//! kube's apps validation of a ReplicaSet (ValidateReplicaSet, ValidateReplicaSetUpdate, the
//! strategy's immutable selector, ValidateReplicaSetStatus) and its create warnings.

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec, ReplicaSetStatus};
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;

use crate::apps::v1::workload::{self, non_negative};

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
    let selector = |rs: &ReplicaSet| rs.spec.as_ref().map(|s| s.selector.clone());
    errors.extend(workload::immutable_selector(
        &selector(new).unwrap_or_default(),
        &selector(old).unwrap_or_default(),
    ));
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
    let template = spec.template.clone().unwrap_or_default();
    errors.extend(workload::validate_selector_and_template(
        &spec.selector,
        &template,
        path,
    ));
    errors
}

/// ValidateReplicaSetStatus.
fn validate_status(status: &ReplicaSetStatus, path: &FieldPath) -> Vec<FieldError> {
    let replicas = status.replicas;
    let fully_labeled = status.fully_labeled_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
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
    let bounded = [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ];
    let mut errors = workload::validate_status_counts(path, &counts, replicas, &bounded);
    if available > ready {
        errors.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            "cannot be greater than readyReplicas",
        ));
    }
    errors
}

/// kube's WarningsOnCreate.
pub fn warnings(rs: &ReplicaSet) -> Vec<String> {
    let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
    workload::warnings(&rs.metadata, template)
}
