//! A fresh API server over an in-memory store with `builtin()`'s kinds, called through its
//! router in-process as a chosen user, for the integration tests of single kinds.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use peapod_apis::NodeInfo;
use peapod_apiserver::authn::{AllowAuthenticated, Authorizer, User};
use peapod_apiserver::ApiServer;
use peapod_store::{Store, StoreOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

/// The namespace every server starts with.
pub const NAMESPACE: &str = "demo";
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
pub const DISCOVERY_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// A response read whole.
pub struct Reply {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// The JSON answer, failing the test unless the status is `code`.
    pub fn expect(self, code: u16) -> Value {
        assert_eq!(self.status, code, "{}", self.text);
        self.json
    }

    pub fn message(&self) -> &str {
        self.json["message"].as_str().unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct Api {
    app: Router,
}

impl Api {
    /// A server with the [`NAMESPACE`] namespace.
    pub async fn start() -> Api {
        Api::start_with(Arc::new(AllowAuthenticated)).await
    }

    /// A server deciding with `authorizer`, with the [`NAMESPACE`] namespace.
    pub async fn start_with(authorizer: Arc<dyn Authorizer>) -> Api {
        let store = Store::open_with(None, StoreOptions::default()).expect("an in-memory store");
        let node = NodeInfo {
            name: "node".into(),
            addresses: || vec![Ipv4Addr::LOCALHOST],
        };
        let server = ApiServer::new(peapod_apis::builtin(node), store).with_authorizer(authorizer);
        let server = Arc::new(server);
        let api = Api {
            app: server.router(),
        };
        let namespace = json!({"metadata": {"name": NAMESPACE}});
        api.post("/api/v1/namespaces", &namespace).await.expect(201);
        api
    }

    /// One request as `user` (none: unauthenticated).
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
        user: Option<User>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        if bytes.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let mut request = builder.body(Body::from(bytes.unwrap_or_default())).unwrap();
        if let Some(user) = user {
            request.extensions_mut().insert(user);
        }
        let Ok(response) = self.app.clone().oneshot(request).await;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, &[], None, Some(User::admin()))
            .await
    }

    pub async fn get_as(&self, uri: &str, accept: &str) -> Reply {
        let headers = [("accept", accept)];
        self.send(Method::GET, uri, &headers, None, Some(User::admin()))
            .await
    }

    pub async fn post(&self, uri: &str, body: &Value) -> Reply {
        self.post_as(uri, body, User::admin()).await
    }

    pub async fn post_as(&self, uri: &str, body: &Value, user: User) -> Reply {
        self.send(Method::POST, uri, &[], Some(body), Some(user))
            .await
    }

    pub async fn put(&self, uri: &str, body: &Value) -> Reply {
        self.send(Method::PUT, uri, &[], Some(body), Some(User::admin()))
            .await
    }

    /// The first `count` events of a watch (ending after two seconds at most).
    pub async fn watch(&self, uri: &str, count: usize) -> Vec<Value> {
        let join = if uri.contains('?') { '&' } else { '?' };
        let mut request = Request::builder()
            .uri(format!("{uri}{join}watch=true&timeoutSeconds=2"))
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(User::admin());
        let Ok(response) = self.app.clone().oneshot(request).await;
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let (mut events, mut pending) = (Vec::new(), Vec::new());
        while events.len() < count {
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame()).await;
            let Ok(Some(Ok(frame))) = frame else { break };
            pending.extend_from_slice(&frame.into_data().unwrap_or_default());
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                events.push(serde_json::from_slice(&line).unwrap());
            }
        }
        events
    }
}
