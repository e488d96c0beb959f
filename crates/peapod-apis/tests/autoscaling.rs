//! HorizontalPodAutoscaler as kube-apiserver serves it: one object kept at autoscaling/v2 and
//! served at v1 too. An HPA written through either version reads through the other, what v1
//! cannot hold surviving a v1 read and write; v1 and v2 defaults, kube's validation words,
//! the status subresource, kubectl's columns and discovery preferring v2.

mod common;

use common::{Api, TABLE};
use serde_json::{json, Value};

const V1: &str = "/apis/autoscaling/v1/namespaces/demo/horizontalpodautoscalers";
const V2: &str = "/apis/autoscaling/v2/namespaces/demo/horizontalpodautoscalers";

fn v1_hpa(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": name}, "spec": spec})
}

fn v2_hpa(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": name}, "spec": spec})
}

fn web_ref() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
}

/// A v2 spec with what v1 has no field for: a memory metric and a behavior.
fn rich_spec() -> Value {
    json!({
        "scaleTargetRef": web_ref(), "minReplicas": 2, "maxReplicas": 5,
        "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
    })
}

/// The object as read at `uri` with its status set to `status` through `/status`.
async fn put_status(api: &Api, uri: &str, status: Value) -> Value {
    let mut object = api.get(uri).await.expect(200);
    object["status"] = status;
    api.put(&format!("{uri}/status"), &object).await.expect(200)
}

#[tokio::test]
async fn an_hpa_created_through_v1_reads_through_v2() {
    let api = Api::start().await;
    let spec = json!({"scaleTargetRef": web_ref(), "maxReplicas": 5, "targetCPUUtilizationPercentage": 50});
    let created = api.post(V1, &v1_hpa("web", spec)).await.expect(201);
    assert_eq!(created["apiVersion"], "autoscaling/v1");
    assert_eq!(created["spec"]["minReplicas"], 1, "v1's default");
    assert_eq!(created["spec"]["targetCPUUtilizationPercentage"], 50);
    assert_eq!(
        created["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    assert!(
        created["metadata"]["generation"].is_null(),
        "kube's HPAs have none"
    );

    let read = api.get(&format!("{V2}/web")).await.expect(200);
    assert_eq!(read["apiVersion"], "autoscaling/v2");
    assert_eq!(read["kind"], "HorizontalPodAutoscaler");
    assert_eq!(
        read["spec"],
        json!({"scaleTargetRef": web_ref(), "minReplicas": 1, "maxReplicas": 5, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]})
    );
    assert_eq!(read["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(
        read["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    let listed = api.get(V2).await.expect(200);
    assert_eq!(listed["kind"], "HorizontalPodAutoscalerList");
    assert_eq!(listed["items"][0]["metadata"]["name"], "web");
}

#[tokio::test]
async fn an_hpa_created_through_v2_reads_through_v1_with_kubes_annotations() {
    let api = Api::start().await;
    api.post(V2, &v2_hpa("web", rich_spec())).await.expect(201);
    let read = api.get(&format!("{V1}/web")).await.expect(200);
    assert_eq!(read["apiVersion"], "autoscaling/v1");
    assert_eq!(
        read["spec"],
        json!({"scaleTargetRef": web_ref(), "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50})
    );
    let annotations = &read["metadata"]["annotations"];
    assert_eq!(
        annotations["autoscaling.alpha.kubernetes.io/metrics"],
        r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]"#
    );
    let behavior: Value = serde_json::from_str(
        annotations["autoscaling.alpha.kubernetes.io/behavior"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(behavior["ScaleDown"]["StabilizationWindowSeconds"], 60);
    assert_eq!(behavior["ScaleUp"]["SelectPolicy"], "Max");
}

#[tokio::test]
async fn a_v2_only_field_survives_a_v1_update() {
    let api = Api::start().await;
    let created = api.post(V2, &v2_hpa("web", rich_spec())).await.expect(201);
    let mut through_v1 = api.get(&format!("{V1}/web")).await.expect(200);
    through_v1["spec"]["maxReplicas"] = json!(8);
    through_v1["spec"]["targetCPUUtilizationPercentage"] = json!(60);
    api.put(&format!("{V1}/web"), &through_v1).await.expect(200);

    let read = api.get(&format!("{V2}/web")).await.expect(200);
    assert_eq!(read["spec"]["maxReplicas"], 8);
    assert_eq!(read["spec"]["behavior"], created["spec"]["behavior"]);
    assert_eq!(
        read["spec"]["metrics"],
        json!([
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
        ])
    );
    assert!(read["metadata"].get("annotations").is_none(), "{read}");
}

#[tokio::test]
async fn the_status_written_through_v2_reads_through_v1() {
    let api = Api::start().await;
    api.post(V2, &v2_hpa("web", rich_spec())).await.expect(201);
    let status = json!({
        "currentReplicas": 2, "desiredReplicas": 3,
        "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 75, "averageValue": "150m"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                        "message": "the HPA controller was able to update the target scale to 3",
                        "lastTransitionTime": "2024-05-01T10:00:00Z"}],
    });
    let written = put_status(&api, &format!("{V2}/web"), status.clone()).await;
    assert_eq!(written["status"], status);

    let read = api.get(&format!("{V1}/web")).await.expect(200);
    assert_eq!(
        read["status"],
        json!({"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 75})
    );
    let annotations = &read["metadata"]["annotations"];
    assert_eq!(
        annotations["autoscaling.alpha.kubernetes.io/current-metrics"],
        r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":75,"currentAverageValue":"150m"}}]"#
    );
    let conditions = annotations["autoscaling.alpha.kubernetes.io/conditions"]
        .as_str()
        .unwrap();
    assert!(conditions.contains("SucceededRescale"), "{conditions}");

    // A v1 spec write sends the annotations back and keeps the whole status.
    let mut through_v1 = read.clone();
    through_v1["spec"]["maxReplicas"] = json!(6);
    api.put(&format!("{V1}/web"), &through_v1).await.expect(200);
    let again = api.get(&format!("{V2}/web")).await.expect(200);
    assert_eq!(again["status"], status);
}

#[tokio::test]
async fn a_spec_write_keeps_the_status_and_a_status_write_the_spec() {
    let api = Api::start().await;
    api.post(V2, &v2_hpa("web", rich_spec())).await.expect(201);
    let mut spec_write = api.get(&format!("{V2}/web")).await.expect(200);
    spec_write["status"] = json!({"desiredReplicas": 9});
    spec_write["spec"]["minReplicas"] = json!(3);
    let written = api.put(&format!("{V2}/web"), &spec_write).await.expect(200);
    assert_eq!(written["status"], json!({"desiredReplicas": 0}));
    assert_eq!(written["spec"]["minReplicas"], 3);

    let mut status_write = written.clone();
    status_write["spec"]["minReplicas"] = json!(4);
    status_write["status"] = json!({"currentReplicas": 3, "desiredReplicas": 3});
    let written = api
        .put(&format!("{V2}/web/status"), &status_write)
        .await
        .expect(200);
    assert_eq!(written["spec"]["minReplicas"], 3);
    assert_eq!(written["status"]["desiredReplicas"], 3);
}

#[tokio::test]
async fn v2_defaults_a_cpu_metric_and_the_scaling_rules() {
    let api = Api::start().await;
    let spec = json!({"scaleTargetRef": web_ref(), "maxReplicas": 3, "behavior": {"scaleUp": {"stabilizationWindowSeconds": 30}}});
    let created = api.post(V2, &v2_hpa("web", spec)).await.expect(201);
    assert_eq!(created["spec"]["minReplicas"], 1);
    assert_eq!(
        created["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        created["spec"]["behavior"],
        json!({
            "scaleUp": {"stabilizationWindowSeconds": 30, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
        })
    );
    assert_eq!(created["status"], json!({"desiredReplicas": 0}));
}

#[tokio::test]
async fn invalid_hpas_are_refused_with_kubes_words() {
    let api = Api::start().await;
    let spec = json!({"scaleTargetRef": web_ref(), "minReplicas": 3, "maxReplicas": 1});
    let refused = api.post(V1, &v1_hpa("web", spec)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(
        refused.message(),
        "HorizontalPodAutoscaler.autoscaling \"web\" is invalid: spec.maxReplicas: Invalid value: 1: must be greater than or equal to `minReplicas`"
    );
    assert_eq!(refused.json["details"]["group"], "autoscaling");
    assert_eq!(refused.json["details"]["kind"], "HorizontalPodAutoscaler");

    let spec = json!({"scaleTargetRef": {"name": "web"}, "minReplicas": 0, "maxReplicas": 2,
                      "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}});
    let refused = api.post(V2, &v2_hpa("web", spec)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let causes: Vec<&str> = refused.json["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        causes,
        [
            "spec.minReplicas",
            "spec.scaleTargetRef.kind",
            "spec.metrics",
            "spec.behavior.scaleUp.policies[0].value"
        ]
    );
}

#[tokio::test]
async fn the_table_has_kubectls_hpa_columns() {
    let api = Api::start().await;
    api.post(V2, &v2_hpa("web", rich_spec())).await.expect(201);
    // Through v1 the row is made from the object v1 converts back, the CPU target last.
    for (uri, targets) in [
        (V2, "cpu: <unknown>/50%, memory: <unknown>/100Mi"),
        (V1, "memory: <unknown>/100Mi, cpu: <unknown>/50%"),
    ] {
        let table = api.get_as(uri, TABLE).await.expect(200);
        let columns: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            columns,
            [
                "Name",
                "Reference",
                "Targets",
                "MinPods",
                "MaxPods",
                "Replicas",
                "Age"
            ]
        );
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "Deployment/web");
        assert_eq!(cells[2], targets, "{uri}");
        assert_eq!(cells[3], "2");
        assert_eq!(cells[4], 5);
        assert_eq!(cells[5], 0);
    }
}

#[tokio::test]
async fn discovery_prefers_v2_and_names_hpa() {
    let api = Api::start().await;
    let groups = api.get("/apis").await.expect(200);
    let group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "autoscaling")
        .cloned()
        .expect("autoscaling in /apis");
    assert_eq!(
        group["preferredVersion"],
        json!({"groupVersion": "autoscaling/v2", "version": "v2"})
    );
    let versions: Vec<&str> = group["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v2", "v1"]);
    for version in ["v2", "v1"] {
        let resources = api
            .get(&format!("/apis/autoscaling/{version}"))
            .await
            .expect(200);
        let hpa = &resources["resources"][0];
        assert_eq!(hpa["name"], "horizontalpodautoscalers");
        assert_eq!(hpa["shortNames"], json!(["hpa"]));
        assert_eq!(hpa["categories"], json!(["all"]));
        assert_eq!(
            resources["resources"][1]["name"],
            "horizontalpodautoscalers/status"
        );
    }
}

#[tokio::test]
async fn deletes_through_one_version_remove_the_hpa_of_both() {
    let api = Api::start().await;
    let spec = json!({"scaleTargetRef": web_ref(), "maxReplicas": 2});
    api.post(V1, &v1_hpa("web", spec)).await.expect(201);
    let deleted = api
        .send(
            axum::http::Method::DELETE,
            &format!("{V2}/web"),
            &[],
            None,
            Some(peapod_apiserver::authn::User::admin()),
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let gone = api.get(&format!("{V1}/web")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        gone.message(),
        r#"horizontalpodautoscalers.autoscaling "web" not found"#
    );
}
