//! Protobuf bodies through the router: the bodies kubectl 1.32 sent for `create namespace` and
//! `create configmap` (tests/fixtures/protobuf) create the objects a JSON body would, and a
//! malformed protobuf body is a 400.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use peapod_apis::NodeInfo;
use peapod_apiserver::authn::User;
use peapod_apiserver::ApiServer;
use peapod_store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const QUERY: &str = "fieldManager=kubectl-create&fieldValidation=Strict";

fn app() -> Router {
    let node = NodeInfo {
        name: "protobuf-node".into(),
        addresses: || vec![Ipv4Addr::LOCALHOST],
    };
    let store = Store::open_in_memory().expect("an in-memory store");
    Arc::new(ApiServer::new(peapod_apis::builtin(node), store)).router()
}

fn fixture(name: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protobuf");
    std::fs::read(format!("{dir}/{name}.pb")).expect("the fixture body")
}

/// Sends `body` as kubectl does (protobuf, JSON accepted) and returns the status and JSON reply.
async fn send(app: &Router, method: Method, uri: &str, body: Vec<u8>) -> (u16, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", PROTOBUF)
        .header("accept", "application/json")
        .body(Body::from(body))
        .expect("a request");
    request.extensions_mut().insert(User::admin());
    let Ok(response) = app.clone().oneshot(request).await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn kubectl_create_namespace_and_configmap_bodies_create_the_objects() {
    let app = app();
    let uri = format!("/api/v1/namespaces?{QUERY}");
    let (status, namespace) = send(&app, Method::POST, &uri, fixture("namespace")).await;
    assert_eq!(status, 201, "{namespace}");
    assert_eq!(namespace["metadata"]["name"], "ns1");

    let uri = format!("/api/v1/namespaces/ns1/configmaps?{QUERY}");
    let (status, created) = send(&app, Method::POST, &uri, fixture("configmap")).await;
    assert_eq!(status, 201, "{created}");
    let (status, stored) = send(
        &app,
        Method::GET,
        "/api/v1/namespaces/ns1/configmaps/x",
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["data"], json!({"a": "b", "c": "d"}));
    assert_eq!(stored["binaryData"], json!({"blob": "YmluAP8B"}));
}

#[tokio::test]
async fn a_malformed_protobuf_body_is_a_bad_request() {
    let mut body = fixture("configmap");
    body.truncate(body.len() - 3);
    let uri = "/api/v1/namespaces/default/configmaps";
    let (status, reply) = send(&app(), Method::POST, uri, body).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["reason"], "BadRequest");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(message.contains("protobuf"), "{message}");
}
