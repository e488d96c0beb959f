//! kube's TestValidateHorizontalPodAutoscaler* cases, the v2 defaults (defaults_test.go) and
//! the printer's Targets cell (printers_test.go), ported.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use peapod_apiserver::registry::KindStrategy;
use serde_json::{json, Value};

use super::table::{cells, format_metrics};
use super::HorizontalPodAutoscalerStrategy;

/// A valid HPA with `spec` merged over a valid spec, defaulted.
fn hpa(spec: Value) -> HorizontalPodAutoscaler {
    let mut base = json!({"scaleTargetRef": {"kind": "ReplicationController", "name": "myrc"},
                          "minReplicas": 1, "maxReplicas": 5});
    for (key, value) in spec.as_object().unwrap() {
        base[key] = value.clone();
    }
    let mut hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "myautoscaler", "namespace": "default"},
        "spec": base,
    }))
    .unwrap();
    HorizontalPodAutoscalerStrategy.default(&mut hpa);
    hpa
}

fn errors(hpa: &HorizontalPodAutoscaler) -> Vec<String> {
    HorizontalPodAutoscalerStrategy
        .validate(hpa)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn resource(name: &str, target: Value) -> Value {
    json!({"type": "Resource", "resource": {"name": name, "target": target}})
}

fn rules(value: Value) -> Value {
    json!({"behavior": {"scaleUp": value}})
}

#[test]
fn valid_autoscalers_pass() {
    for spec in [
        json!({}),
        json!({"metrics": [resource("cpu", json!({"type": "Utilization", "averageUtilization": 70}))]}),
        json!({"metrics": [resource("memory", json!({"type": "AverageValue", "averageValue": "100Mi"}))]}),
        json!({"metrics": [{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
               "target": {"type": "Utilization", "averageUtilization": 70}}}]}),
        json!({"metrics": [{"type": "Pods", "pods": {"metric": {"name": "somemetric"},
               "target": {"type": "AverageValue", "averageValue": "100m"}}}]}),
        json!({"metrics": [{"type": "Object", "object": {"describedObject": {"kind": "ReplicationController", "name": "myrc"},
               "metric": {"name": "somemetric"}, "target": {"type": "Value", "value": "100m"}}}]}),
        json!({"metrics": [{"type": "External", "external": {"metric": {"name": "somemetric"},
               "target": {"type": "AverageValue", "averageValue": "100m"}}}]}),
        json!({"behavior": {"scaleUp": {"stabilizationWindowSeconds": 3600, "selectPolicy": "Disabled",
               "policies": [{"type": "Pods", "value": 1, "periodSeconds": 1800}]}}}),
    ] {
        assert_eq!(errors(&hpa(spec.clone())), Vec::<String>::new(), "{spec}");
    }
}

#[test]
fn invalid_autoscalers_fail_with_kubes_messages() {
    let cases = [
        (json!({"scaleTargetRef": {"name": "myrc"}}), "spec.scaleTargetRef.kind: Required value"),
        (json!({"scaleTargetRef": {"kind": "..", "name": "myrc"}}), r#"spec.scaleTargetRef.kind: Invalid value: "..": may not be '..'"#),
        (json!({"scaleTargetRef": {"kind": "ReplicationController"}}), "spec.scaleTargetRef.name: Required value"),
        (json!({"scaleTargetRef": {"kind": "ReplicationController", "name": "my%rc"}}), r#"spec.scaleTargetRef.name: Invalid value: "my%rc": may not contain '%'"#),
        (json!({"minReplicas": -1}), "spec.minReplicas: Invalid value: -1: must be greater than or equal to 1"),
        (json!({"minReplicas": 0}), "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"),
        (json!({"minReplicas": 7}), "spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"),
        (json!({"maxReplicas": 0}), "spec.maxReplicas: Invalid value: 0: must be greater than 0"),
        (json!({"metrics": [resource("cpu", json!({"type": "Utilization", "averageUtilization": -70}))]}),
         "spec.metrics[0].resource.target.averageUtilization: Invalid value: -70: must be greater than 0"),
        (json!({"metrics": [resource("cpu", json!({"type": "Utilization", "averageUtilization": 70, "averageValue": "100"}))]}),
         "spec.metrics[0].resource.target.averageValue: Forbidden: may not set both a target raw value and a target utilization"),
        (json!({"metrics": [resource("", json!({"type": "Utilization", "averageUtilization": 70}))]}),
         "spec.metrics[0].resource.name: Required value: must specify a resource name"),
        (json!({"metrics": [resource("cpu", json!({"type": "AverageValue"}))]}),
         "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization"),
        (json!({"metrics": [resource("cpu", json!({"type": "Percent", "averageUtilization": 70}))]}),
         r#"spec.metrics[0].resource.target.type: Invalid value: "Percent": must be either Utilization, Value, or AverageValue"#),
        (json!({"metrics": [resource("memory", json!({"type": "AverageValue", "averageValue": "-1"}))]}),
         r#"spec.metrics[0].resource.target.averageValue: Invalid value: "-1": must be positive"#),
        (json!({"metrics": [{"type": "Pods", "pods": {"metric": {"name": ""}, "target": {"type": "AverageValue", "averageValue": "100m"}}}]}),
         "spec.metrics[0].pods.metric.name: Required value: must specify a metric name"),
        (json!({"metrics": [{"type": "Pods", "pods": {"metric": {"name": "somemetric"}, "target": {"type": "Value", "value": "100m"}}}]}),
         "spec.metrics[0].pods.target.averageValue: Required value: must specify a positive target averageValue"),
        (json!({"metrics": [{"type": "Object", "object": {"describedObject": {"kind": "ReplicationController", "name": "myrc"},
                "metric": {"name": "somemetric"}, "target": {"type": "Value"}}}]}),
         "spec.metrics[0].object.target.averageValue: Required value: must set either a target value or averageValue"),
        (json!({"metrics": [{"type": "External", "external": {"metric": {"name": "somemetric"},
                "target": {"type": "Value", "value": "1", "averageValue": "1"}}}]}),
         "spec.metrics[0].external.target.value: Forbidden: may not set both a target value for metric and a per-pod target"),
        (json!({"metrics": [{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "",
                "target": {"type": "Utilization", "averageUtilization": 70}}}]}),
         "spec.metrics[0].containerResource.container: Required value: must specify a container"),
        (json!({"metrics": [{"type": "Resource"}]}),
         "spec.metrics[0].resource: Required value: must populate information for the given metric source"),
        (json!({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                "pods": {"metric": {"name": "somemetric"}, "target": {"type": "AverageValue", "averageValue": "1"}}}]}),
         "spec.metrics[0].pods: Forbidden: must populate the given metric source only"),
        (json!({"metrics": [{"type": "NotAType", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}),
         r#"spec.metrics[0].type: Unsupported value: "NotAType": supported values: "ContainerResource", "External", "Object", "Pods", "Resource""#),
        (json!({"metrics": [{"type": "ContainerResource", "containerResource": {"name": "InvalidResource", "container": "app",
                "target": {"type": "Utilization", "averageUtilization": 70}}}]}),
         r#"spec.metrics[0].containerResource.name: Invalid value: "InvalidResource": must be a standard resource for containers"#),
        (json!({"metrics": [{"type": "Object", "object": {"describedObject": {"name": "myrc"},
                "metric": {"name": "somemetric"}, "target": {"type": "Value", "value": "100m"}}}]}),
         "spec.metrics[0].object.describedObject.kind: Required value"),
        (json!({"metrics": [{"type": "External", "external": {"metric": {"name": "foo/bar"}, "target": {"type": "Value", "value": "1"}}}]}),
         r#"spec.metrics[0].external.metric.name: Invalid value: "foo/bar": may not contain '/'"#),
        (rules(json!({"stabilizationWindowSeconds": -1})),
         "spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: -1: must be greater than or equal to zero"),
        (rules(json!({"stabilizationWindowSeconds": 3601})),
         "spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 3601: must be less than or equal to 3600"),
        (rules(json!({"selectPolicy": "Sum"})),
         r#"spec.behavior.scaleUp.selectPolicy: Unsupported value: "Sum": supported values: "Disabled", "Max", "Min""#),
        (rules(json!({"policies": []})), "spec.behavior.scaleUp.policies: Required value: must specify at least one Policy"),
        (rules(json!({"policies": [{"type": "Replicas", "value": 1, "periodSeconds": 60}]})),
         r#"spec.behavior.scaleUp.policies[0].type: Unsupported value: "Replicas": supported values: "Percent", "Pods""#),
        (rules(json!({"policies": [{"type": "Pods", "value": 0, "periodSeconds": 60}]})),
         "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero"),
        (rules(json!({"policies": [{"type": "Pods", "value": 1, "periodSeconds": 0}]})),
         "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 0: must be greater than zero"),
        (rules(json!({"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]})),
         "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800"),
    ];
    for (spec, expected) in cases {
        let errors = errors(&hpa(spec.clone()));
        assert!(errors.iter().any(|e| e == expected), "{spec}: {errors:?}");
    }
}

#[test]
fn an_unknown_type_is_refused_as_kube_refuses_it() {
    let hpa = hpa(json!({"metrics": [{"type": ""}]}));
    let errors = errors(&hpa);
    assert_eq!(
        errors[0],
        "spec.metrics[0].type: Required value: must specify a metric source type"
    );
    assert!(
        errors[1].starts_with(r#"spec.metrics[0].type: Unsupported value: """#),
        "{errors:?}"
    );
}

#[test]
fn an_update_keeps_a_stored_zero_min_replicas_valid() {
    let old = hpa(
        json!({"minReplicas": 0, "metrics": [{"type": "External", "external": {
        "metric": {"name": "queue"}, "target": {"type": "Value", "value": "10"}}}]}),
    );
    let mut new = old.clone();
    new.spec.as_mut().unwrap().max_replicas = 6;
    assert!(HorizontalPodAutoscalerStrategy
        .validate_update(&new, &old)
        .is_empty());
    let mut negative = old.clone();
    negative
        .status
        .get_or_insert_with(Default::default)
        .desired_replicas = -1;
    let errors: Vec<String> = HorizontalPodAutoscalerStrategy
        .validate_update(&negative, &old)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        ["status.desiredReplicas: Invalid value: -1: must be greater than or equal to 0"]
    );
}

#[test]
fn defaults_fill_min_replicas_the_cpu_metric_and_the_behavior() {
    let mut hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
    }))
    .unwrap();
    HorizontalPodAutoscalerStrategy.default(&mut hpa);
    let spec = serde_json::to_value(hpa.spec.unwrap()).unwrap();
    assert_eq!(spec["minReplicas"], 1);
    assert_eq!(
        spec["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        spec["behavior"],
        json!({
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15}]},
        })
    );
}

#[test]
fn no_behavior_stays_none() {
    let hpa = hpa(json!({}));
    assert!(hpa.spec.unwrap().behavior.is_none());
}

#[test]
fn the_targets_cell_shows_current_over_target() {
    let spec = |metrics: Value| -> Vec<_> { serde_json::from_value(metrics).unwrap() };
    let cpu = resource(
        "cpu",
        json!({"type": "Utilization", "averageUtilization": 50}),
    );
    let memory = resource(
        "memory",
        json!({"type": "AverageValue", "averageValue": "100Mi"}),
    );
    let pods = json!({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}});
    assert_eq!(format_metrics(&[], &[]), "<none>");
    assert_eq!(
        format_metrics(&spec(json!([cpu])), &[]),
        "cpu: <unknown>/50%"
    );
    let statuses = serde_json::from_value::<Vec<_>>(json!([
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}},
        {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "10Mi"}}},
    ]))
    .unwrap();
    assert_eq!(
        format_metrics(&spec(json!([cpu, memory])), &statuses),
        "cpu: 12%/50%, memory: 10Mi/100Mi"
    );
    assert_eq!(
        format_metrics(&spec(json!([cpu, memory, pods, pods])), &statuses),
        "cpu: 12%/50%, memory: 10Mi/100Mi + 2 more..."
    );
    assert_eq!(format_metrics(&spec(json!([pods])), &[]), "<unknown>/10");
}

#[test]
fn the_row_names_the_reference_and_the_bounds() {
    let mut hpa = hpa(
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}}),
    );
    hpa.status =
        Some(serde_json::from_value(json!({"currentReplicas": 2, "desiredReplicas": 2})).unwrap());
    let row = cells(&hpa);
    assert_eq!(
        row[1..6],
        [
            json!("Deployment/web"),
            json!("cpu: <unknown>/80%"),
            json!("1"),
            json!(5),
            json!(2)
        ]
    );
}
