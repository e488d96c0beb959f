//! kube's apps validation of a DaemonSet (ValidateDaemonSet, ValidateDaemonSetSpec,
//! ValidateDaemonSetUpdateStrategy, ValidateRollingUpdateDaemonSet, ValidateDaemonSetUpdate,
//! ValidateDaemonSetStatus and the status update's collision count) and its create warnings.

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetStatus, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_api::label_selector;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{validate_pod_template_spec, FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;
use serde_json::json;

use super::{template_generation, ON_DELETE, ROLLING_UPDATE};
use crate::apps::v1::int_or_percent::{
    int_or_percent_value, not_more_than_100_percent, positive_int_or_percent, GoIntOrString,
};
use crate::apps::v1::workload::{self, non_negative};

/// ValidateDaemonSet: metadata, then the spec.
pub fn validate(ds: &DaemonSet) -> Vec<FieldError> {
    let mut errors = validate_meta(ds, true);
    let spec = ds.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, &FieldPath::new("spec")));
    errors
}

/// ValidateDaemonSetUpdate (the template generation never going back), the strategy's
/// immutable selector, and, as a status write keeps the spec, the status rules.
pub fn validate_update(new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
    let mut errors =
        validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
    let (new_generation, old_generation) = (template_generation(new), template_generation(old));
    if new_generation.unwrap_or(0) < old_generation.unwrap_or(0) {
        errors.push(FieldError::invalid(
            &FieldPath::new("spec").child("templateGeneration"),
            new_generation.unwrap_or(0),
            "must not be decremented",
        ));
    }
    let spec = new.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, &FieldPath::new("spec")));
    let selector = |ds: &DaemonSet| ds.spec.as_ref().map(|s| s.selector.clone());
    errors.extend(workload::immutable_selector(
        &selector(new).unwrap_or_default(),
        &selector(old).unwrap_or_default(),
    ));
    errors.extend(validate_status_update(new, old));
    errors
}

/// ValidateDaemonSetSpec.
fn validate_spec(spec: &DaemonSetSpec, path: &FieldPath) -> Vec<FieldError> {
    let selector_path = path.child("selector");
    let template_path = path.child("template");
    let selector = workload::given_selector(&spec.selector);
    let mut errors = Vec::new();
    if let Some(selector) = selector {
        errors.extend(label_selector::validate_label_selector(
            selector,
            &selector_path,
        ));
    }
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    // LabelSelectorAsSelector: nil selects nothing, one that does not convert is not judged.
    let mismatch = match selector {
        None => true,
        Some(selector) => label_selector::as_selector(selector).is_ok_and(|s| !s.matches(&labels)),
    };
    if mismatch {
        errors.push(FieldError::invalid(
            &template_path.child("metadata").child("labels"),
            json!(labels),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(selector) = selector.filter(|s| label_selector::is_empty(s)) {
        errors.push(FieldError::invalid(
            &selector_path,
            json!(selector),
            "empty selector is invalid for daemonset",
        ));
    }
    errors.extend(validate_pod_template_spec(&spec.template, &template_path));
    errors.extend(validate_template_spec(spec, &template_path.child("spec")));
    errors.extend(non_negative(
        spec.min_ready_seconds.unwrap_or(0),
        &path.child("minReadySeconds"),
    ));
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    errors.extend(validate_update_strategy(
        &strategy,
        &path.child("updateStrategy"),
    ));
    if let Some(limit) = spec.revision_history_limit {
        errors.extend(non_negative(limit, &path.child("revisionHistoryLimit")));
    }
    errors
}

/// A DaemonSet's pods restart always and have no deadline.
fn validate_template_spec(spec: &DaemonSetSpec, path: &FieldPath) -> Vec<FieldError> {
    let pod_spec = spec.template.spec.clone().unwrap_or_default();
    workload::validate_always_restarting(&pod_spec, path, "DaemonSet")
}

/// ValidateDaemonSetUpdateStrategy.
fn validate_update_strategy(
    strategy: &DaemonSetUpdateStrategy,
    path: &FieldPath,
) -> Vec<FieldError> {
    match strategy.type_.as_deref() {
        Some(ON_DELETE) => Vec::new(),
        Some(ROLLING_UPDATE) => match &strategy.rolling_update {
            None => vec![FieldError::required(&path.child("rollingUpdate"), "")],
            Some(update) => validate_rolling_update(update, &path.child("rollingUpdate")),
        },
        _ => vec![FieldError::not_supported(
            path,
            json!(strategy),
            &[ROLLING_UPDATE, ON_DELETE],
        )],
    }
}

/// ValidateRollingUpdateDaemonSet: both bounds valid, at most 100%, and exactly one non-zero.
fn validate_rolling_update(update: &RollingUpdateDaemonSet, path: &FieldPath) -> Vec<FieldError> {
    let zero = IntOrString::Int(0);
    let unavailable = update.max_unavailable.as_ref().unwrap_or(&zero);
    let surge = update.max_surge.as_ref().unwrap_or(&zero);
    let (unavailable_path, surge_path) = (path.child("maxUnavailable"), path.child("maxSurge"));
    let mut errors = positive_int_or_percent(unavailable, &unavailable_path);
    errors.extend(positive_int_or_percent(surge, &surge_path));
    errors.extend(not_more_than_100_percent(unavailable, &unavailable_path));
    errors.extend(not_more_than_100_percent(surge, &surge_path));
    let has_unavailable = int_or_percent_value(unavailable) != 0;
    let has_surge = int_or_percent_value(surge) != 0;
    match (has_unavailable, has_surge) {
        (true, true) => errors.push(FieldError::invalid(
            &surge_path,
            GoIntOrString(surge),
            "may not be set when maxUnavailable is non-zero",
        )),
        (false, false) => errors.push(FieldError::required(
            &unavailable_path,
            "cannot be 0 when maxSurge is 0",
        )),
        _ => {}
    }
    errors
}

/// ValidateDaemonSetStatus, and IsDecremented on the collision count.
fn validate_status_update(new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
    let path = FieldPath::new("status");
    let status = new.status.clone().unwrap_or_default();
    let mut errors = validate_status(&status, &path);
    let collisions = |ds: &DaemonSet| ds.status.as_ref().and_then(|s| s.collision_count);
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

fn validate_status(status: &DaemonSetStatus, path: &FieldPath) -> Vec<FieldError> {
    let optional = |value: Option<i32>| i64::from(value.unwrap_or(0));
    let counts = [
        (
            "currentNumberScheduled",
            i64::from(status.current_number_scheduled),
        ),
        ("numberMisscheduled", i64::from(status.number_misscheduled)),
        (
            "desiredNumberScheduled",
            i64::from(status.desired_number_scheduled),
        ),
        ("numberReady", i64::from(status.number_ready)),
        (
            "observedGeneration",
            status.observed_generation.unwrap_or(0),
        ),
        (
            "updatedNumberScheduled",
            optional(status.updated_number_scheduled),
        ),
        ("numberAvailable", optional(status.number_available)),
        ("numberUnavailable", optional(status.number_unavailable)),
    ];
    let mut errors: Vec<FieldError> = counts
        .into_iter()
        .filter_map(|(field, value)| non_negative(value, &path.child(field)))
        .collect();
    if let Some(collisions) = status.collision_count {
        errors.extend(non_negative(collisions, &path.child("collisionCount")));
    }
    errors
}

/// kube's WarningsOnCreate.
pub fn warnings(ds: &DaemonSet) -> Vec<String> {
    let template = ds.spec.as_ref().map(|s| &s.template);
    workload::warnings(&ds.metadata, template)
}
