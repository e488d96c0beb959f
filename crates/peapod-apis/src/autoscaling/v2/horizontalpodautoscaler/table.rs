//! `kubectl get hpa` columns (kube 1.32's printHorizontalPodAutoscaler): Name, Reference,
//! Targets (formatHPAMetrics: `cpu: 12%/50%`, the first two metrics and `+ N more...`),
//! MinPods, MaxPods, Replicas, Age.

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricSpec, MetricStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

/// How many metrics the Targets cell shows before `+ N more...`.
const SHOWN_METRICS: usize = 2;
const UNKNOWN: &str = "<unknown>";

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Reference", "string", "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count."),
        Column::new("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond. If not set, the default metric will be set to 80% average CPU utilization."),
        Column::new("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available."),
        Column::new("MaxPods", "string", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
        Column::new("Replicas", "string", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
        AGE,
    ]
}

pub fn cells(hpa: &HorizontalPodAutoscaler) -> Vec<Value> {
    let spec = hpa.spec.clone().unwrap_or_default();
    let status = hpa.status.clone().unwrap_or_default();
    let reference = format!(
        "{}/{}",
        spec.scale_target_ref.kind, spec.scale_target_ref.name
    );
    let min_pods = spec
        .min_replicas
        .map_or("<unset>".to_owned(), |min| min.to_string());
    let metrics = format_metrics(
        spec.metrics.as_deref().unwrap_or_default(),
        status.current_metrics.as_deref().unwrap_or_default(),
    );
    vec![
        name_cell(&hpa.metadata),
        json!(reference),
        json!(metrics),
        json!(min_pods),
        json!(spec.max_replicas),
        json!(status.current_replicas.unwrap_or(0)),
        age_cell(&hpa.metadata),
    ]
}

/// formatHPAMetrics: each metric's current value over its target, the status found at the
/// metric's own index.
pub fn format_metrics(specs: &[MetricSpec], statuses: &[MetricStatus]) -> String {
    if specs.is_empty() {
        return "<none>".to_owned();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(index, spec)| format_metric(spec, statuses.get(index)))
        .collect();
    let shown = list[..list.len().min(SHOWN_METRICS)].join(", ");
    match list.len().checked_sub(SHOWN_METRICS) {
        Some(more) if more > 0 => format!("{shown} + {more} more..."),
        _ => shown,
    }
}

fn format_metric(spec: &MetricSpec, status: Option<&MetricStatus>) -> String {
    match spec.type_.as_str() {
        "External" => {
            let target = &spec
                .external
                .as_ref()
                .map(|e| e.target.clone())
                .unwrap_or_default();
            let current = status.and_then(|s| s.external.as_ref()).map(|e| &e.current);
            over(
                target.average_value.as_ref(),
                target.value.as_ref(),
                current.map(|c| (c.average_value.as_ref(), c.value.as_ref())),
            )
        }
        "Object" => {
            let target = &spec
                .object
                .as_ref()
                .map(|o| o.target.clone())
                .unwrap_or_default();
            let current = status.and_then(|s| s.object.as_ref()).map(|o| &o.current);
            over(
                target.average_value.as_ref(),
                target.value.as_ref(),
                current.map(|c| (c.average_value.as_ref(), c.value.as_ref())),
            )
        }
        "Pods" => {
            let target = spec
                .pods
                .as_ref()
                .and_then(|p| p.target.average_value.as_ref());
            let current = status
                .and_then(|s| s.pods.as_ref())
                .map(|p| quantity(p.current.average_value.as_ref()));
            format!(
                "{}/{}",
                current.as_deref().unwrap_or(UNKNOWN),
                quantity(target)
            )
        }
        "Resource" => {
            let Some(resource) = &spec.resource else {
                return "<unknown type>".to_owned();
            };
            let current = status.and_then(|s| s.resource.as_ref()).map(|r| &r.current);
            resource_over(&resource.name, &resource.target, current)
        }
        "ContainerResource" => {
            let Some(resource) = &spec.container_resource else {
                return "<unknown type>".to_owned();
            };
            let current = status
                .and_then(|s| s.container_resource.as_ref())
                .map(|r| &r.current);
            resource_over(&resource.name, &resource.target, current)
        }
        _ => "<unknown type>".to_owned(),
    }
}

/// An Object or External metric: `current/target (avg)` for an average value target, else
/// `current/target`.
fn over(
    target_average: Option<&Quantity>,
    target_value: Option<&Quantity>,
    current: Option<(Option<&Quantity>, Option<&Quantity>)>,
) -> String {
    match target_average {
        Some(average) => {
            let current = current
                .and_then(|(average, _)| average)
                .map(|q| q.0.clone());
            format!(
                "{}/{} (avg)",
                current.as_deref().unwrap_or(UNKNOWN),
                average.0
            )
        }
        None => {
            let current = current.map(|(_, value)| quantity(value));
            format!(
                "{}/{}",
                current.as_deref().unwrap_or(UNKNOWN),
                quantity(target_value)
            )
        }
    }
}

fn resource_over(
    name: &str,
    target: &k8s_openapi::api::autoscaling::v2::MetricTarget,
    current: Option<&k8s_openapi::api::autoscaling::v2::MetricValueStatus>,
) -> String {
    if let Some(average) = &target.average_value {
        let current = current.map(|c| quantity(c.average_value.as_ref()));
        return format!(
            "{name}: {}/{}",
            current.as_deref().unwrap_or(UNKNOWN),
            average.0
        );
    }
    let current = current
        .and_then(|c| c.average_utilization)
        .map_or(UNKNOWN.to_owned(), |u| format!("{u}%"));
    let target = target
        .average_utilization
        .map_or("<auto>".to_owned(), |u| format!("{u}%"));
    format!("{name}: {current}/{target}")
}

/// A quantity as Go's `(*Quantity).String` prints it, `<nil>` when unset.
fn quantity(quantity: Option<&Quantity>) -> String {
    quantity.map_or("<nil>".to_owned(), |q| q.0.clone())
}
