//! Validating admission on updates, through the router: a test plugin that refuses to change a
//! ConfigMap labelled `locked`, reached by PUT, merge patch and server-side apply, and told the
//! subresource a write goes to.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use peapod_apis::NodeInfo;
use peapod_apiserver::admission::{Admission, NewObject, Update};
use peapod_apiserver::authn::User;
use peapod_apiserver::status::ApiError;
use peapod_apiserver::ApiServer;
use peapod_store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// Refuses updates of locked ConfigMaps; remembers the subresources it saw.
#[derive(Default)]
struct Lock {
    subresources: Mutex<Vec<Option<String>>>,
}

impl Admission for Lock {
    fn admit_create(&self, _new: NewObject<'_>, _store: &Store) -> Result<(), ApiError> {
        Ok(())
    }

    fn validate_update(&self, update: Update<'_>, _store: &Store) -> Result<(), ApiError> {
        let seen = update.subresource.map(str::to_owned);
        self.subresources.lock().unwrap().push(seen);
        let locked = update.old["metadata"]["labels"]["locked"] == "yes";
        if update.resource == "configmaps" && locked && update.object["data"] != update.old["data"]
        {
            return Err(update.forbidden("the map is locked"));
        }
        Ok(())
    }
}

async fn app(lock: Arc<Lock>) -> Router {
    let node = NodeInfo {
        name: "admission-node".into(),
        addresses: || vec![Ipv4Addr::LOCALHOST],
    };
    let store = Store::open_in_memory().expect("an in-memory store");
    let server = ApiServer::new(peapod_apis::builtin(node), store).with_admission(lock);
    let app = Arc::new(server).router();
    let namespace = json!({"metadata": {"name": "default"}});
    let (status, _) = send(&app, Method::POST, "/api/v1/namespaces", "", namespace).await;
    assert_eq!(status, 201);
    app
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    content_type: &str,
    body: Value,
) -> (u16, Value) {
    let content_type = match content_type {
        "" => "application/json",
        given => given,
    };
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(Body::from(body.to_string()))
        .expect("a request");
    request.extensions_mut().insert(User::admin());
    let Ok(response) = app.clone().oneshot(request).await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn config_map(name: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"locked": "yes"}},
        "data": {"key": value},
    })
}

#[tokio::test]
async fn every_update_path_is_admitted() {
    let lock = Arc::new(Lock::default());
    let app = app(lock.clone()).await;
    let (status, _) = send(&app, Method::POST, CONFIGMAPS, "", config_map("c", "a")).await;
    assert_eq!(status, 201);
    let uri = format!("{CONFIGMAPS}/c");
    let forbidden = r#"configmaps "c" is forbidden: the map is locked"#;

    let (status, body) = send(&app, Method::PUT, &uri, "", config_map("c", "b")).await;
    assert_eq!((status, body["message"].as_str()), (403, Some(forbidden)));
    assert_eq!(
        body["details"],
        json!({"name": "c", "group": "", "kind": "configmaps"})
    );

    let merge = "application/merge-patch+json";
    let patch = json!({"data": {"key": "b"}});
    let (status, body) = send(&app, Method::PATCH, &uri, merge, patch).await;
    assert_eq!((status, body["message"].as_str()), (403, Some(forbidden)));

    let apply = format!("{uri}?fieldManager=test&force=true");
    let yaml = "application/apply-patch+yaml";
    let (status, body) = send(&app, Method::PATCH, &apply, yaml, config_map("c", "b")).await;
    assert_eq!((status, body["message"].as_str()), (403, Some(forbidden)));

    let relabel = json!({"metadata": {"labels": {"locked": "no"}}});
    let (status, _) = send(&app, Method::PATCH, &uri, merge, relabel).await;
    assert_eq!(status, 200);
    let (status, body) = send(&app, Method::PUT, &uri, "", config_map("c", "b")).await;
    assert_eq!((status, &body["data"]["key"]), (200, &json!("b")));
    assert!(lock
        .subresources
        .lock()
        .unwrap()
        .iter()
        .all(Option::is_none));
}

#[tokio::test]
async fn status_writes_name_their_subresource() {
    let lock = Arc::new(Lock::default());
    let app = app(lock.clone()).await;
    let claim = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    });
    let claims = "/api/v1/namespaces/default/persistentvolumeclaims";
    let (status, _) = send(&app, Method::POST, claims, "", claim).await;
    assert_eq!(status, 201);
    let merge = "application/merge-patch+json";
    let status_uri = format!("{claims}/data/status");
    let phase = json!({"status": {"phase": "Bound"}});
    let (status, _) = send(&app, Method::PATCH, &status_uri, merge, phase).await;
    assert_eq!(status, 200);
    let seen = lock.subresources.lock().unwrap().clone();
    assert_eq!(seen, [Some("status".to_owned())]);
}
