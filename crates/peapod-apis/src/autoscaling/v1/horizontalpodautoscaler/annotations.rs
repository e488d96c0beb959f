//! What autoscaling/v1 keeps in annotations of what it cannot hold, as kube 1.32 writes them
//! (pkg/apis/autoscaling/annotations.go): the other metrics and the current ones in
//! autoscaling/v1's own MetricSpec and MetricStatus forms (the v2beta1 shapes, field for field
//! in Go's order), the conditions, and the behavior as Go marshals its internal type (no JSON
//! tags: Go's field names, nil as `null`).

use k8s_openapi::api::autoscaling::v2;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

/// `autoscaling.MetricSpecsAnnotation`.
pub const METRIC_SPECS: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `autoscaling.MetricStatusesAnnotation`.
pub const METRIC_STATUSES: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.HorizontalPodAutoscalerConditionsAnnotation`.
pub const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.BehaviorSpecsAnnotation`.
pub const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// Every annotation the conversion writes, dropped before writing and after reading
/// (DropRoundTripHorizontalPodAutoscalerAnnotations).
pub const ROUND_TRIP: [&str; 4] = [METRIC_SPECS, BEHAVIOR, METRIC_STATUSES, CONDITIONS];

/// The zero Quantity Go marshals for a value field left unset.
fn zero() -> Quantity {
    Quantity("0".into())
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSpec {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<ResourceSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSource>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSource {
    #[serde(default)]
    pub target: Reference,
    #[serde(default)]
    pub metric_name: String,
    #[serde(default = "zero")]
    pub target_value: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsSource {
    #[serde(default)]
    pub metric_name: String,
    #[serde(default = "zero")]
    pub target_average_value: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// ResourceMetricSource, and ContainerResourceMetricSource with its container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSource {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_average_utilization: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_average_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSource {
    #[serde(default)]
    pub metric_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_average_value: Option<Quantity>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<ResourceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    #[serde(default)]
    pub target: Reference,
    #[serde(default)]
    pub metric_name: String,
    #[serde(default = "zero")]
    pub current_value: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsStatus {
    #[serde(default)]
    pub metric_name: String,
    #[serde(default = "zero")]
    pub current_average_value: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// ResourceMetricStatus, and ContainerResourceMetricStatus with its container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_average_utilization: Option<i32>,
    #[serde(default = "zero")]
    pub current_average_value: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalStatus {
    #[serde(default)]
    pub metric_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_selector: Option<LabelSelector>,
    #[serde(default = "zero")]
    pub current_value: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_average_value: Option<Quantity>,
}

/// The internal `HorizontalPodAutoscalerBehavior` as `encoding/json` writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Behavior {
    #[serde(default)]
    pub scale_up: Option<Rules>,
    #[serde(default)]
    pub scale_down: Option<Rules>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rules {
    #[serde(default)]
    pub stabilization_window_seconds: Option<i32>,
    #[serde(default)]
    pub select_policy: Option<String>,
    #[serde(default)]
    pub policies: Option<Vec<Policy>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    #[serde(default, rename = "Type")]
    pub type_: String,
    #[serde(default)]
    pub value: i32,
    #[serde(default)]
    pub period_seconds: i32,
}

impl From<&v2::HorizontalPodAutoscalerBehavior> for Behavior {
    fn from(behavior: &v2::HorizontalPodAutoscalerBehavior) -> Behavior {
        let rules = |rules: &v2::HPAScalingRules| Rules {
            stabilization_window_seconds: rules.stabilization_window_seconds,
            select_policy: rules.select_policy.clone(),
            policies: rules.policies.as_ref().map(|policies| {
                policies
                    .iter()
                    .map(|p| Policy {
                        type_: p.type_.clone(),
                        value: p.value,
                        period_seconds: p.period_seconds,
                    })
                    .collect()
            }),
        };
        Behavior {
            scale_up: behavior.scale_up.as_ref().map(rules),
            scale_down: behavior.scale_down.as_ref().map(rules),
        }
    }
}

impl From<Behavior> for v2::HorizontalPodAutoscalerBehavior {
    fn from(behavior: Behavior) -> v2::HorizontalPodAutoscalerBehavior {
        let rules = |rules: Rules| v2::HPAScalingRules {
            stabilization_window_seconds: rules.stabilization_window_seconds,
            select_policy: rules.select_policy,
            policies: rules.policies.map(|policies| {
                policies
                    .into_iter()
                    .map(|p| v2::HPAScalingPolicy {
                        type_: p.type_,
                        value: p.value,
                        period_seconds: p.period_seconds,
                    })
                    .collect()
            }),
            tolerance: None,
        };
        v2::HorizontalPodAutoscalerBehavior {
            scale_up: behavior.scale_up.map(rules),
            scale_down: behavior.scale_down.map(rules),
        }
    }
}
