//! autoscaling/v1 HorizontalPodAutoscalers to and from the stored autoscaling/v2 ones, as
//! kube 1.32's `pkg/apis/autoscaling/v1/conversion.go`: `targetCPUUtilizationPercentage` is
//! the first CPU Resource metric's utilization target, `currentCPUUtilizationPercentage` the
//! CPU utilization observed; every other metric, the current metrics, the behavior and the
//! conditions travel in annotations ([`super::annotations`]), so a v2 object read and written
//! back through v1 loses nothing. Annotations that do not decode are ignored, as kube does.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use peapod_apiserver::registry::VersionConversion;
use serde::de::DeserializeOwned;

use super::annotations::{self as held, Behavior};
use crate::autoscaling::v2::horizontalpodautoscaler::defaults;

/// The conversion of autoscaling/v1 HorizontalPodAutoscalers to the v2 ones they are kept as.
pub struct HorizontalPodAutoscalerConversion;

impl VersionConversion for HorizontalPodAutoscalerConversion {
    type Served = v1::HorizontalPodAutoscaler;
    type Stored = v2::HorizontalPodAutoscaler;

    fn to_stored(&self, hpa: v1::HorizontalPodAutoscaler) -> v2::HorizontalPodAutoscaler {
        let mut stored = to_v2(hpa);
        // What kube's read of the stored v2 object would default.
        defaults::default(&mut stored);
        stored
    }

    fn to_served(&self, hpa: v2::HorizontalPodAutoscaler) -> v1::HorizontalPodAutoscaler {
        to_v1(hpa)
    }
}

/// Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler.
pub fn to_v1(hpa: v2::HorizontalPodAutoscaler) -> v1::HorizontalPodAutoscaler {
    let mut metadata = hpa.metadata;
    let mut annotations = without_round_trip(metadata.annotations.take());
    let spec = hpa.spec.unwrap_or_default();
    let status = hpa.status.unwrap_or_default();
    let metrics = spec.metrics.clone().unwrap_or_default();
    let other: Vec<held::MetricSpec> = metrics
        .iter()
        .filter(|m| cpu_utilization_target(m).is_none())
        .map(metric_to_v1)
        .collect();
    let current = status.current_metrics.clone().unwrap_or_default();
    let conditions = status.conditions.clone().unwrap_or_default();
    let mut hold = |key: &str, value: String| {
        annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value);
    };
    if !other.is_empty() {
        hold(held::METRIC_SPECS, json(&other));
    }
    if !current.is_empty() {
        let statuses: Vec<held::MetricStatus> = current.iter().map(metric_status_to_v1).collect();
        hold(held::METRIC_STATUSES, json(&statuses));
    }
    if !conditions.is_empty() {
        hold(held::CONDITIONS, json(&conditions));
    }
    if let Some(behavior) = &spec.behavior {
        hold(held::BEHAVIOR, json(&Behavior::from(behavior)));
    }
    metadata.annotations = annotations;
    v1::HorizontalPodAutoscaler {
        metadata,
        spec: Some(spec_to_v1(spec, &metrics)),
        status: Some(status_to_v1(&status, &current)),
    }
}

fn spec_to_v1(
    spec: v2::HorizontalPodAutoscalerSpec,
    metrics: &[v2::MetricSpec],
) -> v1::HorizontalPodAutoscalerSpec {
    let first_cpu = metrics
        .iter()
        .find(|m| m.type_ == "Resource" && m.resource.as_ref().is_some_and(|r| r.name == "cpu"));
    v1::HorizontalPodAutoscalerSpec {
        scale_target_ref: v1::CrossVersionObjectReference {
            api_version: spec.scale_target_ref.api_version,
            kind: spec.scale_target_ref.kind,
            name: spec.scale_target_ref.name,
        },
        min_replicas: spec.min_replicas,
        max_replicas: spec.max_replicas,
        target_cpu_utilization_percentage: first_cpu.and_then(cpu_utilization_target),
    }
}

fn status_to_v1(
    status: &v2::HorizontalPodAutoscalerStatus,
    current: &[v2::MetricStatus],
) -> v1::HorizontalPodAutoscalerStatus {
    // kube's loop has no break: the last CPU utilization seen wins.
    let cpu = current
        .iter()
        .rev()
        .filter(|m| m.type_ == "Resource")
        .filter_map(|m| m.resource.as_ref())
        .filter(|r| r.name == "cpu")
        .filter_map(|r| r.current.average_utilization)
        .next();
    v1::HorizontalPodAutoscalerStatus {
        observed_generation: status.observed_generation,
        last_scale_time: status.last_scale_time.clone(),
        current_replicas: status.current_replicas.unwrap_or(0),
        desired_replicas: status.desired_replicas,
        current_cpu_utilization_percentage: cpu,
    }
}

/// Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler.
pub fn to_v2(hpa: v1::HorizontalPodAutoscaler) -> v2::HorizontalPodAutoscaler {
    let mut metadata = hpa.metadata;
    let annotations = metadata.annotations.take().unwrap_or_default();
    let spec = hpa.spec.unwrap_or_default();
    let status = hpa.status.unwrap_or_default();
    let mut metrics: Vec<v2::MetricSpec> = spec
        .target_cpu_utilization_percentage
        .map(defaults::cpu_utilization)
        .into_iter()
        .collect();
    if let Some(other) = decoded::<Vec<held::MetricSpec>>(&annotations, held::METRIC_SPECS) {
        // The targetCPUUtilizationPercentage metric goes after the held ones.
        let mut all: Vec<v2::MetricSpec> = other.into_iter().map(metric_from_v1).collect();
        all.append(&mut metrics);
        metrics = all;
    }
    if metrics.is_empty() {
        metrics.push(defaults::cpu_utilization(defaults::DEFAULT_CPU_UTILIZATION));
    }
    let behavior = decoded::<Behavior>(&annotations, held::BEHAVIOR)
        .filter(|b| b.scale_up.is_some() || b.scale_down.is_some())
        .map(v2::HorizontalPodAutoscalerBehavior::from);
    let mut current_metrics: Vec<v2::MetricStatus> = status
        .current_cpu_utilization_percentage
        .map(cpu_utilization_status)
        .into_iter()
        .collect();
    if let Some(held) = decoded::<Vec<held::MetricStatus>>(&annotations, held::METRIC_STATUSES) {
        // "ignore any existing status values -- the ones here have more information"
        current_metrics = held.into_iter().map(metric_status_from_v1).collect();
    }
    let conditions =
        decoded::<Vec<v2::HorizontalPodAutoscalerCondition>>(&annotations, held::CONDITIONS);
    metadata.annotations = without_round_trip(Some(annotations));
    let reference = spec.scale_target_ref;
    v2::HorizontalPodAutoscaler {
        metadata,
        spec: Some(v2::HorizontalPodAutoscalerSpec {
            scale_target_ref: v2::CrossVersionObjectReference {
                api_version: reference.api_version,
                kind: reference.kind,
                name: reference.name,
            },
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
            metrics: Some(metrics),
            behavior,
        }),
        status: Some(v2::HorizontalPodAutoscalerStatus {
            observed_generation: status.observed_generation,
            last_scale_time: status.last_scale_time,
            current_replicas: Some(status.current_replicas).filter(|c| *c != 0),
            desired_replicas: status.desired_replicas,
            current_metrics: Some(current_metrics).filter(|m| !m.is_empty()),
            conditions,
        }),
    }
}

/// The utilization target of a CPU Resource metric that has one.
fn cpu_utilization_target(metric: &v2::MetricSpec) -> Option<i32> {
    let resource = metric.resource.as_ref().filter(|r| r.name == "cpu")?;
    if metric.type_ != "Resource" {
        return None;
    }
    resource.target.average_utilization
}

fn cpu_utilization_status(percent: i32) -> v2::MetricStatus {
    v2::MetricStatus {
        type_: "Resource".into(),
        resource: Some(v2::ResourceMetricStatus {
            name: "cpu".into(),
            current: v2::MetricValueStatus {
                average_utilization: Some(percent),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

/// DropRoundTripHorizontalPodAutoscalerAnnotations; no map is left empty.
fn without_round_trip(
    annotations: Option<BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let mut annotations = annotations?;
    for key in held::ROUND_TRIP {
        annotations.remove(key);
    }
    Some(annotations).filter(|a| !a.is_empty())
}

fn decoded<T: DeserializeOwned>(annotations: &BTreeMap<String, String>, key: &str) -> Option<T> {
    serde_json::from_str(annotations.get(key)?).ok()
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("annotation values always encode")
}

fn reference_to_v1(reference: &v2::CrossVersionObjectReference) -> held::Reference {
    held::Reference {
        kind: reference.kind.clone(),
        name: reference.name.clone(),
        api_version: reference.api_version.clone(),
    }
}

fn reference_from_v1(reference: held::Reference) -> v2::CrossVersionObjectReference {
    v2::CrossVersionObjectReference {
        kind: reference.kind,
        name: reference.name,
        api_version: reference.api_version,
    }
}

fn zero_or(quantity: Option<&Quantity>) -> Quantity {
    quantity.cloned().unwrap_or_else(|| Quantity("0".into()))
}

fn metric_to_v1(metric: &v2::MetricSpec) -> held::MetricSpec {
    let resource =
        |name: &str, target: &v2::MetricTarget, container: Option<&str>| held::ResourceSource {
            name: name.to_owned(),
            target_average_utilization: target.average_utilization,
            target_average_value: target.average_value.clone(),
            container: container.map(str::to_owned),
        };
    held::MetricSpec {
        type_: metric.type_.clone(),
        object: metric.object.as_ref().map(|o| held::ObjectSource {
            target: reference_to_v1(&o.described_object),
            metric_name: o.metric.name.clone(),
            target_value: zero_or(o.target.value.as_ref()),
            selector: o.metric.selector.clone(),
            average_value: o.target.average_value.clone(),
        }),
        pods: metric.pods.as_ref().map(|p| held::PodsSource {
            metric_name: p.metric.name.clone(),
            target_average_value: zero_or(p.target.average_value.as_ref()),
            selector: p.metric.selector.clone(),
        }),
        resource: metric
            .resource
            .as_ref()
            .map(|r| resource(&r.name, &r.target, None)),
        container_resource: metric
            .container_resource
            .as_ref()
            .map(|r| resource(&r.name, &r.target, Some(&r.container))),
        external: metric.external.as_ref().map(|e| held::ExternalSource {
            metric_name: e.metric.name.clone(),
            metric_selector: e.metric.selector.clone(),
            target_value: e.target.value.clone(),
            target_average_value: e.target.average_value.clone(),
        }),
    }
}

fn metric_from_v1(metric: held::MetricSpec) -> v2::MetricSpec {
    let identifier = |name: String, selector| v2::MetricIdentifier { name, selector };
    let resource_target = |r: &held::ResourceSource| v2::MetricTarget {
        type_: if r.target_average_utilization.is_some() {
            "Utilization"
        } else {
            "AverageValue"
        }
        .into(),
        average_utilization: r.target_average_utilization,
        average_value: r.target_average_value.clone(),
        value: None,
    };
    v2::MetricSpec {
        type_: metric.type_,
        object: metric.object.map(|o| v2::ObjectMetricSource {
            target: v2::MetricTarget {
                type_: if o.average_value.is_some() {
                    "AverageValue"
                } else {
                    "Value"
                }
                .into(),
                value: Some(o.target_value),
                average_value: o.average_value,
                average_utilization: None,
            },
            described_object: reference_from_v1(o.target),
            metric: identifier(o.metric_name, o.selector),
        }),
        pods: metric.pods.map(|p| v2::PodsMetricSource {
            metric: identifier(p.metric_name, p.selector),
            target: v2::MetricTarget {
                type_: "AverageValue".into(),
                average_value: Some(p.target_average_value),
                ..Default::default()
            },
        }),
        resource: metric.resource.map(|r| v2::ResourceMetricSource {
            target: resource_target(&r),
            name: r.name,
        }),
        container_resource: metric
            .container_resource
            .map(|r| v2::ContainerResourceMetricSource {
                target: resource_target(&r),
                name: r.name,
                container: r.container.unwrap_or_default(),
            }),
        external: metric.external.map(|e| v2::ExternalMetricSource {
            target: v2::MetricTarget {
                type_: if e.target_value.is_some() {
                    "Value"
                } else {
                    "AverageValue"
                }
                .into(),
                value: e.target_value,
                average_value: e.target_average_value,
                average_utilization: None,
            },
            metric: identifier(e.metric_name, e.metric_selector),
        }),
    }
}

fn metric_status_to_v1(metric: &v2::MetricStatus) -> held::MetricStatus {
    let resource = |name: &str, current: &v2::MetricValueStatus, container: Option<&str>| {
        held::ResourceStatus {
            name: name.to_owned(),
            current_average_utilization: current.average_utilization,
            current_average_value: zero_or(current.average_value.as_ref()),
            container: container.map(str::to_owned),
        }
    };
    held::MetricStatus {
        type_: metric.type_.clone(),
        object: metric.object.as_ref().map(|o| held::ObjectStatus {
            target: reference_to_v1(&o.described_object),
            metric_name: o.metric.name.clone(),
            current_value: zero_or(o.current.value.as_ref()),
            selector: o.metric.selector.clone(),
            average_value: o.current.average_value.clone(),
        }),
        pods: metric.pods.as_ref().map(|p| held::PodsStatus {
            metric_name: p.metric.name.clone(),
            current_average_value: zero_or(p.current.average_value.as_ref()),
            selector: p.metric.selector.clone(),
        }),
        resource: metric
            .resource
            .as_ref()
            .map(|r| resource(&r.name, &r.current, None)),
        container_resource: metric
            .container_resource
            .as_ref()
            .map(|r| resource(&r.name, &r.current, Some(&r.container))),
        external: metric.external.as_ref().map(|e| held::ExternalStatus {
            metric_name: e.metric.name.clone(),
            metric_selector: e.metric.selector.clone(),
            current_value: zero_or(e.current.value.as_ref()),
            current_average_value: e.current.average_value.clone(),
        }),
    }
}

fn metric_status_from_v1(metric: held::MetricStatus) -> v2::MetricStatus {
    let identifier = |name: String, selector| v2::MetricIdentifier { name, selector };
    let resource_current = |r: &held::ResourceStatus| v2::MetricValueStatus {
        average_value: Some(r.current_average_value.clone()),
        average_utilization: r.current_average_utilization,
        value: None,
    };
    v2::MetricStatus {
        type_: metric.type_,
        object: metric.object.map(|o| v2::ObjectMetricStatus {
            current: v2::MetricValueStatus {
                value: Some(o.current_value),
                average_value: o.average_value,
                average_utilization: None,
            },
            described_object: reference_from_v1(o.target),
            metric: identifier(o.metric_name, o.selector),
        }),
        pods: metric.pods.map(|p| v2::PodsMetricStatus {
            current: v2::MetricValueStatus {
                average_value: Some(p.current_average_value),
                ..Default::default()
            },
            metric: identifier(p.metric_name, p.selector),
        }),
        resource: metric.resource.map(|r| v2::ResourceMetricStatus {
            current: resource_current(&r),
            name: r.name,
        }),
        container_resource: metric
            .container_resource
            .map(|r| v2::ContainerResourceMetricStatus {
                current: resource_current(&r),
                name: r.name,
                container: r.container.unwrap_or_default(),
            }),
        external: metric.external.map(|e| v2::ExternalMetricStatus {
            current: v2::MetricValueStatus {
                value: Some(e.current_value),
                average_value: e.current_average_value,
                average_utilization: None,
            },
            metric: identifier(e.metric_name, e.metric_selector),
        }),
    }
}
