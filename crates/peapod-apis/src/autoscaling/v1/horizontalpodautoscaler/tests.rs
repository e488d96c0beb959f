//! kube's autoscaling/v1 conversion_test.go round trips: what v1 cannot hold survives a read
//! and write through v1, in kube's annotations; and v1's own fields map to v2's metrics.

use k8s_openapi::api::autoscaling::{v1, v2};
use peapod_apiserver::registry::{KindStrategy, VersionConversion};
use serde_json::{json, Value};

use super::annotations::{BEHAVIOR, CONDITIONS, METRIC_SPECS, METRIC_STATUSES};
use super::{HorizontalPodAutoscalerConversion as Conversion, HorizontalPodAutoscalerStrategy};
use crate::autoscaling::v2::horizontalpodautoscaler::HorizontalPodAutoscalerStrategy as V2Strategy;

fn v2_hpa(value: Value) -> v2::HorizontalPodAutoscaler {
    let mut hpa: v2::HorizontalPodAutoscaler = serde_json::from_value(value).unwrap();
    V2Strategy.default(&mut hpa);
    hpa
}

/// A v2 object with everything v1 cannot say.
fn rich_v2() -> v2::HorizontalPodAutoscaler {
    v2_hpa(json!({
        "metadata": {"name": "web", "namespace": "demo", "annotations": {"team": "a"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 5,
            "metrics": [
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}},
                 "target": {"type": "Value", "value": "30"}}},
                {"type": "Object", "object": {"describedObject": {"apiVersion": "v1", "kind": "Service", "name": "front"},
                 "metric": {"name": "rps"}, "target": {"type": "AverageValue", "value": "0", "averageValue": "2"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                 "target": {"type": "Utilization", "averageUtilization": 60}}},
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]}},
        },
        "status": {
            "observedGeneration": 3, "currentReplicas": 2, "desiredReplicas": 3,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "10Mi"}}},
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "120m"}}},
            ],
            "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale",
                            "lastTransitionTime": "2024-05-01T10:00:00Z"}],
        },
    }))
}

fn annotation(hpa: &v1::HorizontalPodAutoscaler, key: &str) -> Value {
    let raw = &hpa.metadata.annotations.as_ref().unwrap()[key];
    serde_json::from_str(raw).unwrap()
}

#[test]
fn a_v2_object_survives_a_trip_through_v1() {
    let original = rich_v2();
    let served = Conversion.to_served(original.clone());
    let spec = served.spec.as_ref().unwrap();
    assert_eq!(spec.target_cpu_utilization_percentage, Some(50));
    assert_eq!(
        served
            .status
            .as_ref()
            .unwrap()
            .current_cpu_utilization_percentage,
        Some(12)
    );
    assert_eq!(served.metadata.annotations.as_ref().unwrap()["team"], "a");
    let back = Conversion.to_stored(served);
    let spec = back.spec.as_ref().unwrap();
    // The CPU utilization metric comes back last, after those held in the annotation.
    let mut metrics = original.spec.as_ref().unwrap().metrics.clone().unwrap();
    let cpu = metrics.remove(1);
    metrics.push(cpu);
    assert_eq!(spec.metrics.as_ref().unwrap(), &metrics);
    assert_eq!(spec.behavior, original.spec.as_ref().unwrap().behavior);
    assert_eq!(back.status, original.status);
    assert_eq!(back.metadata, original.metadata);
}

#[test]
fn the_annotations_hold_kubes_v1_forms() {
    let served = Conversion.to_served(rich_v2());
    let metrics = annotation(&served, METRIC_SPECS);
    assert_eq!(
        metrics[0],
        json!({"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}})
    );
    assert_eq!(
        metrics[1],
        json!({"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}})
    );
    assert_eq!(
        metrics[2],
        json!({"type": "External", "external": {"metricName": "queue", "metricSelector": {"matchLabels": {"q": "jobs"}}, "targetValue": "30"}})
    );
    assert_eq!(
        metrics[3],
        json!({"type": "Object", "object": {"target": {"kind": "Service", "name": "front", "apiVersion": "v1"},
               "metricName": "rps", "targetValue": "0", "averageValue": "2"}})
    );
    assert_eq!(
        metrics[4],
        json!({"type": "ContainerResource", "containerResource": {"name": "cpu", "targetAverageUtilization": 60, "container": "app"}})
    );
    let statuses = annotation(&served, METRIC_STATUSES);
    assert_eq!(
        statuses[1],
        json!({"type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 12, "currentAverageValue": "120m"}})
    );
    assert_eq!(
        annotation(&served, CONDITIONS)[0]["reason"],
        "ReadyForNewScale"
    );
    // Go marshals the internal behavior without JSON tags.
    let raw = &served.metadata.annotations.as_ref().unwrap()[BEHAVIOR];
    assert_eq!(
        raw,
        r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15},{"Type":"Percent","Value":100,"PeriodSeconds":15}]},"ScaleDown":{"StabilizationWindowSeconds":60,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":1,"PeriodSeconds":30}]}}"#
    );
}

#[test]
fn a_v1_object_reads_as_v2_with_its_cpu_target() {
    let mut v1_hpa: v1::HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
        "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 40},
    }))
    .unwrap();
    HorizontalPodAutoscalerStrategy.default(&mut v1_hpa);
    let stored = serde_json::to_value(Conversion.to_stored(v1_hpa.clone())).unwrap();
    assert_eq!(stored["spec"]["minReplicas"], 1);
    assert_eq!(
        stored["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}])
    );
    assert_eq!(
        stored["status"]["currentMetrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}])
    );
    assert!(stored["metadata"].get("annotations").is_none());
    let back = Conversion.to_served(serde_json::from_value(stored).unwrap());
    assert_eq!(back.spec, v1_hpa.spec);
    assert_eq!(
        back.status.unwrap().current_cpu_utilization_percentage,
        Some(40)
    );
}

#[test]
fn no_cpu_target_reads_as_the_default_eighty_percent() {
    let v1_hpa: v1::HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5},
    }))
    .unwrap();
    let stored = Conversion.to_stored(v1_hpa);
    let metrics = stored.spec.unwrap().metrics.unwrap();
    assert_eq!(
        metrics[0]
            .resource
            .as_ref()
            .unwrap()
            .target
            .average_utilization,
        Some(80)
    );
}

#[test]
fn undecodable_annotations_are_dropped() {
    for value in ["", "abc", "[]"] {
        let annotations: serde_json::Map<String, Value> =
            [METRIC_SPECS, METRIC_STATUSES, CONDITIONS, BEHAVIOR]
                .iter()
                .map(|k| (k.to_string(), json!(value)))
                .collect();
        let v1_hpa: v1::HorizontalPodAutoscaler = serde_json::from_value(json!({
            "metadata": {"name": "web", "annotations": annotations},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5},
        }))
        .unwrap();
        let stored = Conversion.to_stored(v1_hpa);
        assert_eq!(stored.metadata.annotations, None, "{value:?}");
        assert!(stored.spec.unwrap().behavior.is_none(), "{value:?}");
    }
}

#[test]
fn a_spec_write_keeps_the_held_status() {
    let old = Conversion.to_served(rich_v2());
    let mut new = old.clone();
    let annotations = new.metadata.annotations.as_mut().unwrap();
    annotations.remove(CONDITIONS);
    annotations.insert(METRIC_STATUSES.into(), "[]".into());
    HorizontalPodAutoscalerStrategy.prepare_for_update(&mut new, &old);
    assert_eq!(new.metadata.annotations, old.metadata.annotations);
    HorizontalPodAutoscalerStrategy.prepare_for_create(&mut new);
    let annotations = new.metadata.annotations.unwrap();
    assert!(!annotations.contains_key(CONDITIONS) && !annotations.contains_key(METRIC_STATUSES));
}

#[test]
fn validation_names_the_v2_fields() {
    let v1_hpa: v1::HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 3, "maxReplicas": 1,
                 "targetCPUUtilizationPercentage": 0},
    }))
    .unwrap();
    let errors: Vec<String> = HorizontalPodAutoscalerStrategy
        .validate(&v1_hpa)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "spec.maxReplicas: Invalid value: 1: must be greater than or equal to `minReplicas`",
            "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
        ]
    );
}
