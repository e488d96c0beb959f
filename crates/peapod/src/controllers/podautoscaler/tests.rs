//! The controller against the real API server over an in-memory store, with a fixed resource
//! metrics API beside it, as kube's horizontal_test.go drives it with fakes: a Deployment of
//! three ready pods, each pod's cpu usage given, and one `reconcileAutoscaler` at a time.

use std::sync::Arc;

use axum::routing::get;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::PostParams;
use kube::{Api, Client};
use peapod_apiserver::authn::User;
use peapod_apiserver::ApiServer;
use peapod_store::Store;
use serde_json::{json, Value};

use super::controller::{Context, DEFAULT_SYNC_PERIOD};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

/// An API server with namespace `default`, serving these cpu usages (millicores) of pods
/// web-0, web-1, ...
async fn cluster(usages: &[i64]) -> Client {
    let store = Store::open_in_memory().unwrap();
    let node = peapod_apis::NodeInfo {
        name: "hpa-node".into(),
        addresses: Vec::new,
    };
    let api = Arc::new(ApiServer::new(peapod_apis::builtin(node), store));
    let items: Vec<Value> = usages
        .iter()
        .enumerate()
        .map(|(i, usage)| {
            json!({
                "metadata": {"name": format!("web-{i}"), "namespace": "default"},
                "timestamp": Timestamp::now().to_string(), "window": "1m0s",
                "containers": [{"name": "app", "usage": {"cpu": format!("{usage}m"), "memory": "1Mi"}}],
            })
        })
        .collect();
    let list =
        json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "items": items});
    let metrics = axum::Router::new().route(
        "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
        get(move || async move { axum::Json(list) }),
    );
    let router = metrics.merge(api.router());
    let user = User::new("system:admin", &["system:masters"]);
    let client = crate::controllers::client::in_process(router, user, "hpa-test");
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    client
}

/// Deployment `web` of `replicas` and that many running, ready pods requesting 1 cpu,
/// started ten minutes ago.
async fn web(client: &Client, replicas: i32) {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        }},
    }))
    .unwrap();
    let params = PostParams::default();
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&params, &deployment)
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let started = (Timestamp::now() - SignedDuration::from_mins(10)).to_string();
    for i in 0..replicas {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("web-{i}"), "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "busybox",
                "resources": {"requests": {"cpu": "1"}}}]},
        }))
        .unwrap();
        let mut created = pods.create(&params, &pod).await.unwrap();
        created.status = Some(
            serde_json::from_value(json!({
                "phase": "Running", "startTime": started,
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started}],
            }))
            .unwrap(),
        );
        let name = format!("web-{i}");
        pods.replace_status(&name, &params, &created).await.unwrap();
    }
}

/// An HPA `web` on `kind` `web` at 30% cpu, within `min` and `max`.
async fn hpa(client: &Client, kind: &str, bounds: (i32, i32)) -> HorizontalPodAutoscaler {
    named_hpa(client, "web", kind, bounds).await
}

async fn named_hpa(
    client: &Client,
    name: &str,
    kind: &str,
    (min, max): (i32, i32),
) -> HorizontalPodAutoscaler {
    let api_version = if kind == "Deployment" {
        "apps/v1"
    } else {
        "v1"
    };
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": "web"},
            "minReplicas": min, "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 30}}}],
        },
    }))
    .unwrap();
    Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &hpa)
        .await
        .unwrap()
}

async fn fresh_hpa(client: &Client) -> HorizontalPodAutoscaler {
    let api = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default");
    api.get("web").await.unwrap()
}

async fn replicas(client: &Client) -> Option<i32> {
    let api = Api::<Deployment>::namespaced(client.clone(), "default");
    api.get("web").await.unwrap().spec.and_then(|s| s.replicas)
}

fn condition(hpa: &HorizontalPodAutoscaler, type_: &str) -> (String, String) {
    let conditions = hpa.status.as_ref().and_then(|s| s.conditions.clone());
    let found = conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == type_);
    let found = found.unwrap_or_else(|| panic!("no {type_} in {hpa:?}"));
    (found.status, found.reason.unwrap_or_default())
}

/// kube's `TestScaleUp`: 300, 500 and 700 millicores of 1 cpu each against 30% → 5.
#[tokio::test]
async fn a_busy_target_is_scaled_up_and_the_status_says_why() {
    let client = cluster(&[300, 500, 700]).await;
    web(&client, 3).await;
    let created = hpa(&client, "Deployment", (1, 10)).await;
    let ctx = Context::new(client.clone(), DEFAULT_SYNC_PERIOD);
    ctx.reconcile_autoscaler(created).await.unwrap();
    assert_eq!(replicas(&client).await, Some(5));
    let found = fresh_hpa(&client).await;
    let status = found.status.clone().unwrap();
    assert_eq!(
        (status.current_replicas, status.desired_replicas),
        (Some(3), 5)
    );
    assert!(status.last_scale_time.is_some());
    let current = &status.current_metrics.unwrap()[0];
    let resource = current.resource.as_ref().unwrap();
    assert_eq!(resource.current.average_utilization, Some(50));
    assert_eq!(resource.current.average_value.as_ref().unwrap().0, "500m");
    assert_eq!(
        condition(&found, "AbleToScale"),
        ("True".into(), "SucceededRescale".into())
    );
    assert_eq!(
        condition(&found, "ScalingActive"),
        ("True".into(), "ValidMetricFound".into())
    );
    let limited = condition(&found, "ScalingLimited");
    assert_eq!(limited, ("False".into(), "DesiredWithinRange".into()));
}

/// kube's `TestScaleDown` without a behavior: the first sync's recommendation (the current
/// count) holds the scale down for the stabilization window.
#[tokio::test]
async fn a_scale_down_waits_for_the_stabilization_window() {
    let client = cluster(&[100, 100, 100]).await;
    web(&client, 3).await;
    let created = hpa(&client, "Deployment", (1, 10)).await;
    let ctx = Context::new(client.clone(), DEFAULT_SYNC_PERIOD);
    ctx.reconcile_autoscaler(created).await.unwrap();
    assert_eq!(replicas(&client).await, Some(3));
    let found = fresh_hpa(&client).await;
    let able = condition(&found, "AbleToScale");
    assert_eq!(able, ("True".into(), "ScaleDownStabilized".into()));
    assert_eq!(found.status.unwrap().desired_replicas, 3);
}

/// kube's `TestToleranceCPU` and `TestMinReplicas`.
#[tokio::test]
async fn the_tolerance_keeps_the_count_and_the_bounds_move_it() {
    let client = cluster(&[290, 300, 310]).await;
    web(&client, 3).await;
    let created = hpa(&client, "Deployment", (1, 10)).await;
    let ctx = Context::new(client.clone(), DEFAULT_SYNC_PERIOD);
    ctx.reconcile_autoscaler(created).await.unwrap();
    assert_eq!(replicas(&client).await, Some(3));
    let found = fresh_hpa(&client).await;
    assert_eq!(condition(&found, "AbleToScale").1, "ReadyForNewScale");
    let mut bounded = found;
    bounded.spec.as_mut().unwrap().min_replicas = Some(4);
    let api = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default");
    let bounded = api
        .replace("web", &PostParams::default(), &bounded)
        .await
        .unwrap();
    ctx.reconcile_autoscaler(bounded).await.unwrap();
    assert_eq!(replicas(&client).await, Some(4));
}

/// A kind without a scale subresource: FailedGetScale, as kube's scale client fails.
#[tokio::test]
async fn a_target_without_a_scale_is_failed_get_scale() {
    let client = cluster(&[]).await;
    let settings: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "web"}})).unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &settings)
        .await
        .unwrap();
    let created = hpa(&client, "ConfigMap", (1, 10)).await;
    let ctx = Context::new(client.clone(), DEFAULT_SYNC_PERIOD);
    let err = ctx.reconcile_autoscaler(created).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to query scale subresource for ConfigMap/default/web: "),
        "{err}"
    );
    let found = fresh_hpa(&client).await;
    assert_eq!(
        condition(&found, "AbleToScale"),
        ("False".into(), "FailedGetScale".into())
    );
}

/// Two HPAs over the same pods (kube's `hpaSelectors` check): the second one synced says so.
#[tokio::test]
async fn two_hpas_over_the_same_pods_are_an_ambiguous_selector() {
    let client = cluster(&[300, 300, 300]).await;
    web(&client, 3).await;
    let first = named_hpa(&client, "web", "Deployment", (1, 10)).await;
    let second = named_hpa(&client, "web2", "Deployment", (1, 10)).await;
    let ctx = Context::new(client.clone(), DEFAULT_SYNC_PERIOD);
    ctx.reconcile_autoscaler(first).await.unwrap();
    let err = ctx.reconcile_autoscaler(second).await.unwrap_err();
    let ambiguous =
        "pods by selector app=web are controlled by multiple HPAs: [default/web default/web2]";
    assert_eq!(
        err.to_string(),
        format!("failed to compute desired number of replicas based on listed metrics for Deployment/default/web: {ambiguous}")
    );
    let api = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default");
    let found = api.get("web2").await.unwrap();
    assert_eq!(
        condition(&found, "ScalingActive"),
        ("False".into(), "AmbiguousSelector".into())
    );
    assert_eq!(replicas(&client).await, Some(3));
}
