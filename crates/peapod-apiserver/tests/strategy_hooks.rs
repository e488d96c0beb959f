//! The strategy hooks a kind opts into, through the router with test-only kinds: a generation
//! (apps/v1 Deployment, as kube's workload strategies keep one) and a default garbage
//! collection policy that orphans dependents (batch/v1 Job, kept for compatibility in kube).

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use peapod_apis::NodeInfo;
use peapod_apiserver::authn::User;
use peapod_apiserver::registry::{GarbageCollectionPolicy, Kind, KindStrategy, Registry};
use peapod_apiserver::ApiServer;
use peapod_store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";

struct TrackedDeployments;

impl KindStrategy for TrackedDeployments {
    type Object = Deployment;

    fn tracks_generation(&self) -> bool {
        true
    }
}

struct OrphaningJobs;

impl KindStrategy for OrphaningJobs {
    type Object = Job;

    fn default_garbage_collection_policy(&self) -> GarbageCollectionPolicy {
        GarbageCollectionPolicy::OrphanDependents
    }
}

/// The builtin kinds and the two test kinds, with the `default` namespace.
async fn app() -> Router {
    let node = NodeInfo {
        name: "hooks-node".into(),
        addresses: || vec![Ipv4Addr::LOCALHOST],
    };
    let builtin = peapod_apis::builtin(node);
    let kinds = builtin.kinds().iter().map(|kind| Kind::clone(kind)).chain([
        Kind::of(TrackedDeployments).with_status(),
        Kind::of(OrphaningJobs).with_status(),
    ]);
    let store = Store::open_in_memory().expect("an in-memory store");
    let app = Arc::new(ApiServer::new(Registry::new(kinds), store)).router();
    let namespace = json!({"metadata": {"name": "default"}});
    let (status, _) = send(
        &app,
        Method::POST,
        "/api/v1/namespaces",
        "",
        Some(namespace),
    )
    .await;
    assert_eq!(status, 201);
    app
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    content_type: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let content_type = if content_type.is_empty() {
        "application/json"
    } else {
        content_type
    };
    let body = body.map_or_else(Vec::new, |body| body.to_string().into_bytes());
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("a request");
    request.extensions_mut().insert(User::admin());
    let Ok(response) = app.clone().oneshot(request).await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn merge_patch(app: &Router, uri: &str, patch: Value) -> Value {
    let merge = "application/merge-patch+json";
    let (status, object) = send(app, Method::PATCH, uri, merge, Some(patch)).await;
    assert_eq!(status, 200, "{object}");
    object
}

fn generation(object: &Value) -> &Value {
    &object["metadata"]["generation"]
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "generation": 5},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            },
        },
    })
}

fn job(name: &str) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": "busybox"}],
            "restartPolicy": "Never",
        }}},
    })
}

#[tokio::test]
async fn a_kind_that_tracks_generation_starts_at_one_and_moves_with_spec_and_deletion() {
    let app = app().await;
    let (status, created) =
        send(&app, Method::POST, DEPLOYMENTS, "", Some(deployment("web"))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(generation(&created), 1, "a client's generation is ignored");

    let path = format!("{DEPLOYMENTS}/web");
    let mut relabelled = created.clone();
    relabelled["metadata"]["labels"] = json!({"tier": "front"});
    relabelled["metadata"]["generation"] = json!(9);
    let (status, updated) = send(&app, Method::PUT, &path, "", Some(relabelled)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(generation(&updated), 1, "metadata changes keep it");

    let scaled = merge_patch(&app, &path, json!({"spec": {"replicas": 3}})).await;
    assert_eq!(generation(&scaled), 2, "a spec change bumps it");
    let status_path = format!("{path}/status");
    let observed = json!({"status": {"observedGeneration": 2}});
    let reported = merge_patch(&app, &status_path, observed).await;
    assert_eq!(generation(&reported), 2, "status changes keep it");

    let held = json!({"metadata": {"finalizers": ["example.com/hold"]}});
    merge_patch(&app, &path, held).await;
    let (status, deleting) = send(&app, Method::DELETE, &path, "", None).await;
    assert_eq!(status, 200, "{deleting}");
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(generation(&deleting), 3, "the start of deletion bumps it");
}

#[tokio::test]
async fn kinds_without_a_generation_keep_none() {
    let app = app().await;
    let mut config = json!({"metadata": {"name": "settings", "generation": 4}, "data": {"a": "b"}});
    let configmaps = "/api/v1/namespaces/default/configmaps";
    let (status, created) = send(&app, Method::POST, configmaps, "", Some(config.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert!(generation(&created).is_null(), "{created}");
    config["data"]["a"] = json!("c");
    let updated = merge_patch(&app, &format!("{configmaps}/settings"), config).await;
    assert!(generation(&updated).is_null(), "{updated}");
}

#[tokio::test]
async fn an_orphaning_kind_orphans_dependents_unless_the_delete_says_otherwise() {
    let app = app().await;
    for name in ["kept", "background", "foreground"] {
        let (status, created) = send(&app, Method::POST, JOBS, "", Some(job(name))).await;
        assert_eq!(status, 201, "{created}");
    }

    let (status, orphaning) = send(&app, Method::DELETE, &format!("{JOBS}/kept"), "", None).await;
    assert_eq!(status, 200, "{orphaning}");
    assert_eq!(orphaning["metadata"]["finalizers"], json!(["orphan"]));
    assert!(orphaning["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(orphaning["metadata"]["deletionGracePeriodSeconds"], 0);

    // kubectl delete --cascade=background
    let background = json!({"propagationPolicy": "Background"});
    let path = format!("{JOBS}/background");
    let (status, gone) = send(&app, Method::DELETE, &path, "", Some(background)).await;
    assert_eq!(
        (status, &gone["status"]),
        (200, &json!("Success")),
        "{gone}"
    );
    let (status, _) = send(&app, Method::GET, &path, "", None).await;
    assert_eq!(status, 404);

    let foreground = json!({"propagationPolicy": "Foreground"});
    let path = format!("{JOBS}/foreground");
    let (status, waiting) = send(&app, Method::DELETE, &path, "", Some(foreground)).await;
    assert_eq!(status, 200, "{waiting}");
    assert_eq!(
        waiting["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
}
