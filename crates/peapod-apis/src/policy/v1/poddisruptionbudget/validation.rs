//! kube's policy validation of a PodDisruptionBudget (ValidatePodDisruptionBudgetSpec,
//! ValidatePodDisruptionBudgetStatusUpdate with metav1's ValidateConditions).

use std::collections::HashSet;

use k8s_openapi::api::policy::v1::{
    PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use peapod_api::label_selector::validate_label_selector;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::names::{qualified_name, regex_error};
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;

use crate::apps::v1::int_or_percent::{not_more_than_100_percent, positive_int_or_percent};
use crate::apps::v1::workload::non_negative;

/// What spec.unhealthyPodEvictionPolicy may say, as kube lists them.
const UNHEALTHY_POD_EVICTION_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];
const CONDITION_STATUSES: &[&str] = &["False", "True", "Unknown"];
const MAX_REASON_BYTES: usize = 1024;
const MAX_MESSAGE_BYTES: usize = 32768;

/// ValidatePodDisruptionBudget: metadata, then the spec.
pub fn validate(pdb: &PodDisruptionBudget) -> Vec<FieldError> {
    let mut errors = validate_meta(pdb, true);
    let spec = pdb.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, &FieldPath::new("spec")));
    errors
}

/// An update: the new object valid (its spec may change), metadata identity kept, and the
/// status valid (a status write keeps the spec, so only that can fail).
pub fn validate_update(new: &PodDisruptionBudget, old: &PodDisruptionBudget) -> Vec<FieldError> {
    let mut errors = validate(new);
    let path = FieldPath::new("metadata");
    errors.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &path,
    ));
    let status = new.status.clone().unwrap_or_default();
    errors.extend(validate_status(&status, &FieldPath::new("status")));
    errors
}

/// ValidatePodDisruptionBudgetSpec.
fn validate_spec(spec: &PodDisruptionBudgetSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errors.push(FieldError::invalid_omitting_value(
            path,
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    let bounds = [
        ("minAvailable", &spec.min_available),
        ("maxUnavailable", &spec.max_unavailable),
    ];
    for (field, value) in bounds {
        if let Some(value) = value {
            let path = path.child(field);
            errors.extend(positive_int_or_percent(value, &path));
            errors.extend(not_more_than_100_percent(value, &path));
        }
    }
    if let Some(selector) = &spec.selector {
        errors.extend(validate_label_selector(selector, &path.child("selector")));
    }
    if let Some(policy) = spec.unhealthy_pod_eviction_policy.as_deref() {
        if !UNHEALTHY_POD_EVICTION_POLICIES.contains(&policy) {
            errors.push(FieldError::not_supported(
                &path.child("unhealthyPodEvictionPolicy"),
                policy,
                UNHEALTHY_POD_EVICTION_POLICIES,
            ));
        }
    }
    errors
}

/// ValidatePodDisruptionBudgetStatusUpdate for policy/v1.
fn validate_status(status: &PodDisruptionBudgetStatus, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = validate_conditions(
        status.conditions.as_deref().unwrap_or_default(),
        &path.child("conditions"),
    );
    let counts = [
        ("disruptionsAllowed", status.disruptions_allowed),
        ("currentHealthy", status.current_healthy),
        ("desiredHealthy", status.desired_healthy),
        ("expectedPods", status.expected_pods),
    ];
    for (field, value) in counts {
        errors.extend(non_negative(value, &path.child(field)));
    }
    errors
}

/// metav1's ValidateConditions: each type once, each condition valid.
fn validate_conditions(conditions: &[Condition], path: &FieldPath) -> Vec<FieldError> {
    let mut seen = HashSet::new();
    let mut errors = Vec::new();
    for (i, condition) in conditions.iter().enumerate() {
        let path = path.index(i);
        if !seen.insert(condition.type_.as_str()) {
            errors.push(FieldError::duplicate(
                &path.child("type"),
                condition.type_.as_str(),
            ));
        }
        errors.extend(validate_condition(condition, &path));
    }
    errors
}

/// metav1's ValidateCondition (a zero lastTransitionTime does not decode here).
fn validate_condition(condition: &Condition, path: &FieldPath) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = qualified_name(&condition.type_)
        .iter()
        .map(|msg| FieldError::invalid(&path.child("type"), condition.type_.as_str(), msg))
        .collect();
    if !CONDITION_STATUSES.contains(&condition.status.as_str()) {
        errors.push(FieldError::not_supported(
            &path.child("status"),
            condition.status.as_str(),
            CONDITION_STATUSES,
        ));
    }
    if let Some(generation) = condition.observed_generation.filter(|g| *g < 0) {
        errors.push(FieldError::invalid(
            &path.child("observedGeneration"),
            generation,
            "must be greater than or equal to zero",
        ));
    }
    let reason = &condition.reason;
    if reason.is_empty() {
        errors.push(FieldError::required(&path.child("reason"), "must be set"));
    } else {
        if !is_condition_reason(reason) {
            let detail = regex_error(
                "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'",
                "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?",
                &["my_name", "MY_NAME", "MyName", "ReasonA,ReasonB", "ReasonA:ReasonB"],
            );
            errors.push(FieldError::invalid(
                &path.child("reason"),
                reason.as_str(),
                &detail,
            ));
        }
        if reason.len() > MAX_REASON_BYTES {
            errors.push(FieldError::too_long(
                &path.child("reason"),
                MAX_REASON_BYTES,
            ));
        }
    }
    if condition.message.len() > MAX_MESSAGE_BYTES {
        errors.push(FieldError::too_long(
            &path.child("message"),
            MAX_MESSAGE_BYTES,
        ));
    }
    errors
}

/// `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`.
fn is_condition_reason(reason: &str) -> bool {
    let bytes = reason.as_bytes();
    let inner = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':');
    let last = bytes
        .last()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    bytes.first().is_some_and(u8::is_ascii_alphabetic) && bytes.iter().all(inner) && last
}
