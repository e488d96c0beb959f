//! The real API server over an in-memory store, for the kubelet's API tests.

use std::sync::Arc;

use axum::http::Method;
use k8s_openapi::api::core::v1::Pod;
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::ApiServer;
use peapod_store::Store;
use serde_json::{json, Value};

pub const NODE: &str = "test-node";

/// A client of a fresh API server whose `default` namespace exists.
pub async fn api() -> LocalClient {
    let store = Store::open_in_memory().unwrap();
    let node = peapod_apis::NodeInfo {
        name: NODE.into(),
        addresses: Vec::new,
    };
    let api = Arc::new(ApiServer::new(peapod_apis::builtin(node), store));
    let client = LocalClient::new(api.router());
    let namespace = json!({"metadata": {"name": "default"}});
    client
        .send(
            Method::POST,
            "/api/v1/namespaces",
            Some(("application/json", namespace)),
        )
        .await
        .unwrap();
    client
}

/// Creates a one-container pod bound to [`NODE`].
pub async fn create_pod(client: &LocalClient, name: &str) -> Pod {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "busybox"}]},
    });
    let path = "/api/v1/namespaces/default/pods";
    let created = client
        .send(Method::POST, path, Some(("application/json", pod)))
        .await
        .unwrap();
    serde_json::from_value(created).unwrap()
}

pub async fn get_pod(client: &LocalClient, name: &str) -> Option<Value> {
    client
        .get(&format!("/api/v1/namespaces/default/pods/{name}"))
        .await
        .ok()
}
