//! kube's apps validation of a Deployment (ValidateDeployment, ValidateDeploymentSpec, the
//! strategy's immutable selector, ValidateDeploymentStatusUpdate) and its create warnings.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;

use super::rollout::validate_strategy;
use crate::apps::v1::workload::{self, non_negative};

/// ValidateDeployment: metadata, then the spec.
pub fn validate(deployment: &Deployment) -> Vec<FieldError> {
    let mut errors = validate_meta(deployment, true);
    let spec = deployment.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, &FieldPath::new("spec")));
    errors
}

/// kube's update rules for apps/v1: the new object valid, metadata identity kept, the selector
/// unchanged, and the status valid (a status write keeps the spec, so only that can fail).
pub fn validate_update(new: &Deployment, old: &Deployment) -> Vec<FieldError> {
    let mut errors = validate(new);
    errors.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &FieldPath::new("metadata"),
    ));
    let selector = |d: &Deployment| d.spec.as_ref().map(|s| s.selector.clone());
    errors.extend(workload::immutable_selector(
        &selector(new).unwrap_or_default(),
        &selector(old).unwrap_or_default(),
    ));
    let status = new.status.clone().unwrap_or_default();
    let path = FieldPath::new("status");
    errors.extend(validate_status(&status, &path));
    let collisions = |d: &Deployment| d.status.as_ref().and_then(|s| s.collision_count);
    let (new_count, old_count) = (collisions(new), collisions(old));
    // IsDecremented: a count that was set may neither go down nor away.
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

/// ValidateDeploymentSpec.
fn validate_spec(spec: &DeploymentSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(non_negative(
        spec.replicas.unwrap_or(0),
        &path.child("replicas"),
    ));
    errors.extend(workload::validate_selector_and_template(
        &spec.selector,
        &spec.template,
        path,
    ));
    let strategy = spec.strategy.clone().unwrap_or_default();
    errors.extend(validate_strategy(&strategy, &path.child("strategy")));
    let min_ready_seconds = spec.min_ready_seconds.unwrap_or(0);
    errors.extend(non_negative(
        min_ready_seconds,
        &path.child("minReadySeconds"),
    ));
    if let Some(limit) = spec.revision_history_limit {
        errors.extend(non_negative(limit, &path.child("revisionHistoryLimit")));
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        let deadline_path = path.child("progressDeadlineSeconds");
        errors.extend(non_negative(deadline, &deadline_path));
        if deadline <= min_ready_seconds {
            errors.push(FieldError::invalid(
                &deadline_path,
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errors
}

/// ValidateDeploymentStatus.
fn validate_status(status: &DeploymentStatus, path: &FieldPath) -> Vec<FieldError> {
    let count = |value: Option<i32>| value.unwrap_or(0);
    let replicas = count(status.replicas);
    let updated = count(status.updated_replicas);
    let ready = count(status.ready_replicas);
    let available = count(status.available_replicas);
    let counts = [
        (
            "observedGeneration",
            status.observed_generation.unwrap_or(0),
        ),
        ("replicas", i64::from(replicas)),
        ("updatedReplicas", i64::from(updated)),
        ("readyReplicas", i64::from(ready)),
        ("availableReplicas", i64::from(available)),
        (
            "unavailableReplicas",
            i64::from(count(status.unavailable_replicas)),
        ),
        ("collisionCount", i64::from(count(status.collision_count))),
    ];
    let bounded = [
        ("updatedReplicas", updated),
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
pub fn warnings(deployment: &Deployment) -> Vec<String> {
    let template = deployment.spec.as_ref().map(|s| &s.template);
    workload::warnings(&deployment.metadata, template)
}
