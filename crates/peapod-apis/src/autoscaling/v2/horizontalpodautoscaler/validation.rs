//! kube 1.32's HorizontalPodAutoscaler validation (pkg/apis/autoscaling/validation): the
//! target reference, the replica bounds, each metric's one source and its target, and the
//! scaling behavior, with kube's field paths and messages.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec,
    MetricTarget,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use peapod_api::quantity::Quantity;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{container_resource_name_errors, names, FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;

use crate::rbac::v1::path_segment_name;

/// `MaxPeriodSeconds`: the longest period of a scaling policy.
const MAX_PERIOD_SECONDS: i32 = 1800;
/// `MaxStabilizationWindowSeconds`.
const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;
/// kube's sorted `validMetricSourceTypesList`.
const METRIC_SOURCE_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];
const SELECT_POLICIES: &[&str] = &["Disabled", "Max", "Min"];
const POLICY_TYPES: &[&str] = &["Percent", "Pods"];

/// ValidateHorizontalPodAutoscaler: minReplicas may not go below 1 (HPAScaleToZero is off).
pub fn validate(hpa: &HorizontalPodAutoscaler) -> Vec<FieldError> {
    let mut errors = validate_meta(hpa, true);
    let spec = hpa.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, 1, &FieldPath::new("spec")));
    errors
}

/// ValidateHorizontalPodAutoscalerUpdate, and the status strategy's non-negative counts (a
/// spec update keeps the stored status, so they only ever judge a status write).
pub fn validate_update(
    new: &HorizontalPodAutoscaler,
    old: &HorizontalPodAutoscaler,
) -> Vec<FieldError> {
    let mut errors = validate_meta(new, true);
    errors.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &FieldPath::new("metadata"),
    ));
    let old_min = old.spec.as_ref().and_then(|s| s.min_replicas);
    let lower_bound = if old_min == Some(0) { 0 } else { 1 };
    let spec = new.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, lower_bound, &FieldPath::new("spec")));
    let status = new.status.clone().unwrap_or_default();
    let path = FieldPath::new("status");
    for (field, count) in [
        ("currentReplicas", status.current_replicas.unwrap_or(0)),
        ("desiredReplicas", status.desired_replicas),
    ] {
        if count < 0 {
            errors.push(FieldError::invalid(
                &path.child(field),
                i64::from(count),
                "must be greater than or equal to 0",
            ));
        }
    }
    errors
}

fn validate_spec(
    spec: &HorizontalPodAutoscalerSpec,
    min_replicas_lower_bound: i32,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(min) = spec.min_replicas.filter(|m| *m < min_replicas_lower_bound) {
        errors.push(FieldError::invalid(
            &path.child("minReplicas"),
            min,
            &format!("must be greater than or equal to {min_replicas_lower_bound}"),
        ));
    }
    let max_path = path.child("maxReplicas");
    if spec.max_replicas < 1 {
        errors.push(FieldError::invalid(
            &max_path,
            spec.max_replicas,
            "must be greater than 0",
        ));
    }
    if spec.min_replicas.is_some_and(|min| spec.max_replicas < min) {
        errors.push(FieldError::invalid(
            &max_path,
            spec.max_replicas,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errors.extend(validate_reference(
        &spec.scale_target_ref,
        &path.child("scaleTargetRef"),
    ));
    errors.extend(validate_metrics(
        spec.metrics.as_deref().unwrap_or_default(),
        spec.min_replicas,
        &path.child("metrics"),
    ));
    if let Some(behavior) = &spec.behavior {
        errors.extend(validate_behavior(behavior, &path.child("behavior")));
    }
    errors
}

/// ValidateCrossVersionObjectReference: a kind and a name, each usable in a URL.
fn validate_reference(
    reference: &CrossVersionObjectReference,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, value) in [("kind", &reference.kind), ("name", &reference.name)] {
        errors.extend(path_segment(value, "", &path.child(field)));
    }
    errors
}

/// A required path segment name: `required` is the Required error's detail.
fn path_segment(value: &str, required: &str, path: &FieldPath) -> Vec<FieldError> {
    if value.is_empty() {
        return vec![FieldError::required(path, required)];
    }
    path_segment_name(value)
        .into_iter()
        .map(|message| FieldError::invalid(path, value, message))
        .collect()
}

fn validate_metrics(
    metrics: &[MetricSpec],
    min_replicas: Option<i32>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (index, metric) in metrics.iter().enumerate() {
        errors.extend(validate_metric(metric, &path.index(index)));
    }
    let scales_on_objects = metrics
        .iter()
        .any(|m| m.type_ == "Object" || m.type_ == "External");
    if min_replicas == Some(0) && !scales_on_objects {
        errors.push(FieldError::forbidden(
            path,
            "must specify at least one Object or External metric to support scaling to zero replicas",
        ));
    }
    errors
}

/// validateMetricSpec: a known type, and exactly the one source it names; only the first
/// source given is checked further.
fn validate_metric(metric: &MetricSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let type_path = path.child("type");
    if metric.type_.is_empty() {
        errors.push(FieldError::required(
            &type_path,
            "must specify a metric source type",
        ));
    }
    let known = METRIC_SOURCE_TYPES.contains(&metric.type_.as_str());
    if !known {
        errors.push(FieldError::not_supported(
            &type_path,
            metric.type_.as_str(),
            METRIC_SOURCE_TYPES,
        ));
    }
    let present = present_sources(metric);
    if let Some((field, errors_of)) = present.first() {
        errors.extend(errors_of(metric, &path.child(field)));
    }
    let expected = source_field(&metric.type_);
    match expected {
        Some(field) if !present.iter().any(|(f, _)| *f == field) => {
            errors.push(FieldError::required(
                &path.child(field),
                "must populate information for the given metric source",
            ));
        }
        Some(_) => {}
        None => errors.push(FieldError::not_supported(
            &type_path,
            metric.type_.as_str(),
            METRIC_SOURCE_TYPES,
        )),
    }
    if present.len() != 1 {
        let mut others: Vec<&str> = present
            .iter()
            .map(|(field, _)| *field)
            .filter(|field| Some(*field) != expected)
            .collect();
        others.sort_unstable();
        for field in others {
            errors.push(FieldError::forbidden(
                &path.child(field),
                "must populate the given metric source only",
            ));
        }
    }
    errors
}

type SourceCheck = fn(&MetricSpec, &FieldPath) -> Vec<FieldError>;

/// The sources given, in kube's order, each with its checks.
fn present_sources(metric: &MetricSpec) -> Vec<(&'static str, SourceCheck)> {
    let sources: [(&str, bool, SourceCheck); 5] = [
        ("object", metric.object.is_some(), object_errors),
        ("external", metric.external.is_some(), external_errors),
        ("pods", metric.pods.is_some(), pods_errors),
        ("resource", metric.resource.is_some(), resource_errors),
        (
            "containerResource",
            metric.container_resource.is_some(),
            container_resource_errors,
        ),
    ];
    sources
        .into_iter()
        .filter(|(_, given, _)| *given)
        .map(|(field, _, check)| (field, check))
        .collect()
}

fn source_field(type_: &str) -> Option<&'static str> {
    match type_ {
        "Object" => Some("object"),
        "Pods" => Some("pods"),
        "Resource" => Some("resource"),
        "External" => Some("external"),
        "ContainerResource" => Some("containerResource"),
        _ => None,
    }
}

fn object_errors(metric: &MetricSpec, path: &FieldPath) -> Vec<FieldError> {
    let source = metric.object.as_ref().expect("checked present");
    let mut errors = validate_reference(&source.described_object, &path.child("describedObject"));
    errors.extend(validate_identifier(&source.metric, &path.child("metric")));
    errors.extend(validate_target(&source.target, &path.child("target")));
    if source.target.value.is_none() && source.target.average_value.is_none() {
        errors.push(FieldError::required(
            &path.child("target").child("averageValue"),
            "must set either a target value or averageValue",
        ));
    }
    errors
}

fn external_errors(metric: &MetricSpec, path: &FieldPath) -> Vec<FieldError> {
    let source = metric.external.as_ref().expect("checked present");
    let mut errors = validate_identifier(&source.metric, &path.child("metric"));
    let target_path = path.child("target");
    errors.extend(validate_target(&source.target, &target_path));
    match (&source.target.value, &source.target.average_value) {
        (None, None) => errors.push(FieldError::required(
            &target_path.child("averageValue"),
            "must set either a target value for metric or a per-pod target",
        )),
        (Some(_), Some(_)) => errors.push(FieldError::forbidden(
            &target_path.child("value"),
            "may not set both a target value for metric and a per-pod target",
        )),
        _ => {}
    }
    errors
}

fn pods_errors(metric: &MetricSpec, path: &FieldPath) -> Vec<FieldError> {
    let source = metric.pods.as_ref().expect("checked present");
    let mut errors = validate_identifier(&source.metric, &path.child("metric"));
    errors.extend(validate_target(&source.target, &path.child("target")));
    if source.target.average_value.is_none() {
        errors.push(FieldError::required(
            &path.child("target").child("averageValue"),
            "must specify a positive target averageValue",
        ));
    }
    errors
}

fn resource_errors(metric: &MetricSpec, path: &FieldPath) -> Vec<FieldError> {
    let source = metric.resource.as_ref().expect("checked present");
    let mut errors = Vec::new();
    if source.name.is_empty() {
        errors.push(FieldError::required(
            &path.child("name"),
            "must specify a resource name",
        ));
    }
    errors.extend(resource_target_errors(
        &source.target,
        &path.child("target"),
    ));
    errors
}

fn container_resource_errors(metric: &MetricSpec, path: &FieldPath) -> Vec<FieldError> {
    let source = metric.container_resource.as_ref().expect("checked present");
    let mut errors = Vec::new();
    let name_path = path.child("name");
    if source.name.is_empty() {
        errors.push(FieldError::required(
            &name_path,
            "must specify a resource name",
        ));
    } else {
        errors.extend(container_resource_name_errors(&source.name, &name_path));
    }
    let container_path = path.child("container");
    if source.container.is_empty() {
        errors.push(FieldError::required(
            &container_path,
            "must specify a container",
        ));
    } else {
        errors.extend(
            names::dns1123_label(&source.container)
                .iter()
                .map(|message| {
                    FieldError::invalid(&container_path, source.container.as_str(), message)
                }),
        );
    }
    errors.extend(resource_target_errors(
        &source.target,
        &path.child("target"),
    ));
    errors
}

/// A resource's target: a utilization or an average value, not both.
fn resource_target_errors(target: &MetricTarget, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = validate_target(target, path);
    match (target.average_utilization, &target.average_value) {
        (None, None) => errors.push(FieldError::required(
            &path.child("averageUtilization"),
            "must set either a target raw value or a target utilization",
        )),
        (Some(_), Some(_)) => errors.push(FieldError::forbidden(
            &path.child("averageValue"),
            "may not set both a target raw value and a target utilization",
        )),
        _ => {}
    }
    errors
}

/// validateMetricTarget.
fn validate_target(target: &MetricTarget, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let type_path = path.child("type");
    if target.type_.is_empty() {
        errors.push(FieldError::required(
            &type_path,
            "must specify a metric target type",
        ));
    }
    if !["Utilization", "Value", "AverageValue"].contains(&target.type_.as_str()) {
        errors.push(FieldError::invalid(
            &type_path,
            target.type_.as_str(),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for (field, quantity) in [
        ("value", &target.value),
        ("averageValue", &target.average_value),
    ] {
        if quantity.as_ref().is_some_and(|q| !is_positive(q)) {
            let value = quantity.as_ref().map(|q| q.0.as_str());
            errors.push(FieldError::invalid(
                &path.child(field),
                value,
                "must be positive",
            ));
        }
    }
    if let Some(utilization) = target.average_utilization.filter(|u| *u < 1) {
        errors.push(FieldError::invalid(
            &path.child("averageUtilization"),
            utilization,
            "must be greater than 0",
        ));
    }
    errors
}

fn is_positive(quantity: &K8sQuantity) -> bool {
    quantity
        .0
        .parse::<Quantity>()
        .is_ok_and(|q| !q.is_negative() && !q.is_zero())
}

fn validate_identifier(identifier: &MetricIdentifier, path: &FieldPath) -> Vec<FieldError> {
    path_segment(
        &identifier.name,
        "must specify a metric name",
        &path.child("name"),
    )
}

fn validate_behavior(
    behavior: &HorizontalPodAutoscalerBehavior,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, rules) in [
        ("scaleUp", &behavior.scale_up),
        ("scaleDown", &behavior.scale_down),
    ] {
        if let Some(rules) = rules {
            errors.extend(validate_rules(rules, &path.child(field)));
        }
    }
    errors
}

fn validate_rules(rules: &HPAScalingRules, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let window_path = path.child("stabilizationWindowSeconds");
    match rules.stabilization_window_seconds {
        Some(window) if window < 0 => errors.push(FieldError::invalid(
            &window_path,
            window,
            "must be greater than or equal to zero",
        )),
        Some(window) if window > MAX_STABILIZATION_WINDOW_SECONDS => {
            errors.push(FieldError::invalid(
                &window_path,
                window,
                &format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ))
        }
        _ => {}
    }
    if let Some(select) = rules
        .select_policy
        .as_deref()
        .filter(|s| !SELECT_POLICIES.contains(s))
    {
        errors.push(FieldError::not_supported(
            &path.child("selectPolicy"),
            select,
            SELECT_POLICIES,
        ));
    }
    let policies_path = path.child("policies");
    let policies = rules.policies.as_deref().unwrap_or_default();
    if policies.is_empty() {
        errors.push(FieldError::required(
            &policies_path,
            "must specify at least one Policy",
        ));
    }
    for (index, policy) in policies.iter().enumerate() {
        errors.extend(validate_policy(policy, &policies_path.index(index)));
    }
    errors
}

fn validate_policy(policy: &HPAScalingPolicy, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !POLICY_TYPES.contains(&policy.type_.as_str()) {
        errors.push(FieldError::not_supported(
            &path.child("type"),
            policy.type_.as_str(),
            POLICY_TYPES,
        ));
    }
    if policy.value <= 0 {
        errors.push(FieldError::invalid(
            &path.child("value"),
            policy.value,
            "must be greater than zero",
        ));
    }
    let period_path = path.child("periodSeconds");
    if policy.period_seconds <= 0 {
        errors.push(FieldError::invalid(
            &period_path,
            policy.period_seconds,
            "must be greater than zero",
        ));
    }
    if policy.period_seconds > MAX_PERIOD_SECONDS {
        errors.push(FieldError::invalid(
            &period_path,
            policy.period_seconds,
            &format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
        ));
    }
    errors
}
