//! Protobuf bodies through the router: the bodies kubectl 1.32 sent for `create namespace` and
//! `create configmap` (tests/fixtures/protobuf) create the objects a JSON body would, and a
//! malformed protobuf body is a 400; clients that prefer protobuf answers get them for objects
//! and lists, JSON for watches and for kinds with no protobuf form.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use peapod_apis::NodeInfo;
use peapod_apiserver::authn::User;
use peapod_apiserver::protobuf::decode;
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

/// A GET with `accept`: status, content type and body bytes.
async fn get_as(app: &Router, uri: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let mut request = Request::builder()
        .uri(uri)
        .header("accept", accept)
        .body(Body::empty())
        .expect("a request");
    request.extensions_mut().insert(User::admin());
    let Ok(response) = app.clone().oneshot(request).await;
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, bytes.to_vec())
}

#[tokio::test]
async fn typed_clients_get_protobuf_answers_for_objects_and_lists() {
    let app = app();
    let uri = format!("/api/v1/namespaces?{QUERY}");
    assert_eq!(
        send(&app, Method::POST, &uri, fixture("namespace")).await.0,
        201
    );
    let uri = format!("/api/v1/namespaces/ns1/configmaps?{QUERY}");
    assert_eq!(
        send(&app, Method::POST, &uri, fixture("configmap")).await.0,
        201
    );
    let typed_client = "application/vnd.kubernetes.protobuf, */*";

    let (status, content_type, body) =
        get_as(&app, "/api/v1/namespaces/ns1/configmaps/x", typed_client).await;
    assert_eq!((status, content_type.as_str()), (200, PROTOBUF));
    let object = decode(&body).expect("a protobuf ConfigMap");
    assert_eq!(object["kind"], "ConfigMap");
    assert_eq!(object["data"], json!({"a": "b", "c": "d"}));
    assert_eq!(object["binaryData"], json!({"blob": "YmluAP8B"}));

    let (status, content_type, body) =
        get_as(&app, "/api/v1/namespaces/ns1/configmaps", typed_client).await;
    assert_eq!((status, content_type.as_str()), (200, PROTOBUF));
    let list = decode(&body).expect("a protobuf ConfigMapList");
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"][0]["metadata"]["name"], "x");
    assert!(list["metadata"]["resourceVersion"].is_string(), "{list}");
}

#[tokio::test]
async fn watches_and_kinds_without_protobuf_are_answered_in_json() {
    let app = app();
    let typed_client = "application/vnd.kubernetes.protobuf, application/json";
    let uri = "/apis/metrics.k8s.io/v1beta1/nodes";
    let (status, content_type, body) = get_as(&app, uri, typed_client).await;
    assert_eq!(content_type, "application/json", "{status}");
    assert!(serde_json::from_slice::<Value>(&body).is_ok());
    let uri = "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1";
    let (status, content_type, _) = get_as(&app, uri, typed_client).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
}
