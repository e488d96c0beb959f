//! `/openapi/v3` over the whole router with the builtin kinds: the index lists the group
//! versions, each document is served under its hash, and what kubectl looks for is there.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use peapod_apis::NodeInfo;
use peapod_apiserver::authn::User;
use peapod_apiserver::ApiServer;
use peapod_store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

fn server() -> Arc<ApiServer> {
    let node = NodeInfo {
        name: "node".into(),
        addresses: Vec::new,
    };
    let store = Store::open_in_memory().expect("an in-memory store");
    Arc::new(ApiServer::new(peapod_apis::builtin(node), store))
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    cache_control: Option<String>,
    body: Vec<u8>,
}

async fn get(server: &Arc<ApiServer>, uri: &str, accept: &str) -> Answer {
    let mut request = Request::get(uri)
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    request.extensions_mut().insert(User::admin());
    let response = server.clone().router().oneshot(request).await.unwrap();
    let header = |name| {
        let value = response.headers().get(name)?;
        value.to_str().ok().map(str::to_owned)
    };
    let (status, content_type) = (response.status(), header("content-type"));
    let cache_control = header("cache-control");
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        cache_control,
        body,
    }
}

fn json(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).expect("a JSON body")
}

#[tokio::test]
async fn kubectl_finds_the_core_document_and_server_side_validation() {
    let server = server();
    let started = Instant::now();
    let index = get(&server, "/openapi/v3?timeout=32s", "application/json").await;
    let built = started.elapsed();
    assert_eq!(index.status, StatusCode::OK);
    let index = json(&index);
    let url = index["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let doc = get(&server, &format!("{url}&timeout=32s"), "application/json").await;
    eprintln!(
        "index built in {built:?}; api/v1 is {} bytes",
        doc.body.len()
    );
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.content_type.as_deref(), Some("application/json"));
    assert_eq!(doc.cache_control.as_deref(), Some("public, immutable"));
    let doc = json(&doc);
    let item = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"];
    let gvk = json!({"group": "", "kind": "ConfigMap", "version": "v1"});
    assert_eq!(item["patch"]["x-kubernetes-group-version-kind"], gvk);
    let params = item["patch"]["parameters"].as_array().unwrap();
    assert!(params
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
    let pod_gvk = json!([{"group": "", "kind": "Pod", "version": "v1"}]);
    assert_eq!(pod["x-kubernetes-group-version-kind"], pod_gvk);
    assert!(doc["paths"]["/api/v1/nodes/{name}/status"]["patch"].is_object());
}

#[tokio::test]
async fn v2_and_unknown_group_versions_are_not_found() {
    let server = server();
    let protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let v2 = get(&server, "/openapi/v2", protobuf).await;
    assert_eq!(v2.status, StatusCode::NOT_FOUND);
    assert_eq!(json(&v2)["kind"], "Status");
    let unknown = get(&server, "/openapi/v3/apis/batch/v1", "application/json").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let metrics = get(&server, "/openapi/v3", "application/json").await;
    assert!(json(&metrics)["paths"]["apis/metrics.k8s.io/v1beta1"].is_null());
}
