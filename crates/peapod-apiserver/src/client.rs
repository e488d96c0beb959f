//! An in-process client of the API server: controllers and the kubelet call the same handlers
//! a remote client reaches, as `system:admin` or as a user of their own, with no socket in
//! between, as k3s' embedded components talk to their apiserver. Watches stream their events.

use axum::body::{Body, BodyDataStream};
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::authn::User;
use crate::registry::Kind;
use crate::status::ApiError;

/// A client calling a router in memory.
#[derive(Clone)]
pub struct LocalClient {
    router: Router,
    user: User,
    user_agent: Option<HeaderValue>,
}

impl LocalClient {
    pub fn new(router: Router) -> LocalClient {
        LocalClient {
            router,
            user: User::admin(),
            user_agent: None,
        }
    }

    /// The same router called as `user`, with `user_agent` (which names the field manager of
    /// its writes, as client-go's User-Agent does).
    pub fn with_identity(mut self, user: User, user_agent: &'static str) -> LocalClient {
        self.user = user;
        self.user_agent = Some(HeaderValue::from_static(user_agent));
        self
    }

    /// Sends one request; a non-2xx answer becomes the `ApiError` its Status describes.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Value)>,
    ) -> Result<Value, ApiError> {
        let response = self.call(method, path, body).await?;
        let code = response.status();
        let value = body_value(response, path).await?;
        if code.is_success() {
            Ok(value)
        } else {
            Err(error_of(code, &value))
        }
    }

    /// Opens a watch (`path` carries `watch=true` and its other parameters); its events come
    /// as the server streams them.
    pub async fn watch(&self, path: &str) -> Result<Watch, ApiError> {
        let response = self.call(Method::GET, path, None).await?;
        let code = response.status();
        if !code.is_success() {
            return Err(error_of(code, &body_value(response, path).await?));
        }
        Ok(Watch {
            path: path.to_owned(),
            body: response.into_body().into_data_stream(),
            buffer: Vec::new(),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Value)>,
    ) -> Result<axum::response::Response, ApiError> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(agent) = &self.user_agent {
            builder = builder.header(header::USER_AGENT, agent.clone());
        }
        let body = match body {
            Some((content_type, value)) => {
                builder = builder.header(header::CONTENT_TYPE, content_type);
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let mut request = builder
            .body(body)
            .map_err(|err| ApiError::internal(format!("building {path}: {err}")))?;
        request.extensions_mut().insert(self.user.clone());
        self.router
            .clone()
            .oneshot(request)
            .await
            .map_err(|err| ApiError::internal(format!("{path}: {err}")))
    }

    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.send(Method::GET, path, None).await
    }

    /// The items of a list.
    pub async fn list(&self, path: &str) -> Result<Vec<Value>, ApiError> {
        let list = self.get(path).await?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    pub async fn delete(&self, path: &str, options: Value) -> Result<Value, ApiError> {
        self.send(Method::DELETE, path, Some(("application/json", options)))
            .await
    }

    pub async fn merge_patch(&self, path: &str, patch: Value) -> Result<Value, ApiError> {
        self.send(
            Method::PATCH,
            path,
            Some(("application/merge-patch+json", patch)),
        )
        .await
    }
}

/// The whole body of `response` as JSON (Null when it is not).
async fn body_value(response: axum::response::Response, path: &str) -> Result<Value, ApiError> {
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|err| ApiError::internal(format!("{path}: {err}")))?
        .to_bytes();
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// One event of a watch: its type (ADDED, MODIFIED, DELETED, BOOKMARK or ERROR) and object.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub object: Value,
}

impl WatchEvent {
    /// The error an ERROR event carries (a `410 Expired` when the watch started too far back).
    pub fn error(&self) -> Option<ApiError> {
        if self.kind != "ERROR" {
            return None;
        }
        let code = self.object["code"]
            .as_u64()
            .and_then(|code| u16::try_from(code).ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Some(error_of(code, &self.object))
    }
}

/// What reading a watch can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("reading the watch of {path}: {message}")]
    Body { path: String, message: String },
    #[error("decoding an event of the watch of {path}: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An open watch: one JSON event a line.
pub struct Watch {
    path: String,
    body: BodyDataStream,
    buffer: Vec<u8>,
}

impl Watch {
    /// The next event; None once the server ended the watch.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, WatchError>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(
                    serde_json::from_slice(&line).map_err(|source| WatchError::Decode {
                        path: self.path.clone(),
                        source,
                    }),
                );
            }
            match self.body.next().await? {
                Ok(chunk) => self.buffer.extend_from_slice(&chunk),
                Err(err) => {
                    return Some(Err(WatchError::Body {
                        path: self.path.clone(),
                        message: err.to_string(),
                    }))
                }
            }
        }
    }
}

/// The `ApiError` a Status answer describes.
fn error_of(code: StatusCode, status: &Value) -> ApiError {
    let message = status["message"].as_str().unwrap_or_default().to_owned();
    let reason = match status["reason"].as_str().unwrap_or_default() {
        "NotFound" => "NotFound",
        "AlreadyExists" => "AlreadyExists",
        "Conflict" => "Conflict",
        "Invalid" => "Invalid",
        "BadRequest" => "BadRequest",
        "Forbidden" => "Forbidden",
        "Expired" => "Expired",
        "MethodNotAllowed" => "MethodNotAllowed",
        _ => "InternalError",
    };
    ApiError::new(code, reason, message)
}

impl Kind {
    /// The URL of the kind's collection (in `namespace` for namespaced kinds) or of one object.
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut path = if self.gvk.group.is_empty() {
            format!("/api/{}", self.gvk.version)
        } else {
            format!("/apis/{}/{}", self.gvk.group, self.gvk.version)
        };
        if let (true, Some(namespace)) = (self.namespaced, namespace) {
            path.push_str(&format!("/namespaces/{namespace}"));
        }
        path.push('/');
        path.push_str(self.plural);
        if let Some(name) = name {
            path.push('/');
            path.push_str(name);
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use axum::Router;
    use serde_json::json;

    use super::LocalClient;
    use crate::authn::User;
    use crate::registry::{Kind, ALL_VERBS};

    /// A watch whose lines arrive cut across chunks, then an ERROR event, as the identity the
    /// client was given.
    fn watch_router() -> Router {
        Router::new().route(
            "/w",
            get(|request: axum::extract::Request| async move {
                let user = request.extensions().get::<User>().cloned();
                let agent = request.headers().get("user-agent").cloned();
                assert_eq!(user.map(|u| u.name).as_deref(), Some("system:node:n1"));
                assert_eq!(agent.unwrap(), "kubelet");
                let chunks = [
                    "{\"type\":\"ADDED\",\"obj",
                    "ect\":{\"a\":1}}\n\n{\"type\":\"ERROR\",\"object\":",
                    "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\",\"message\":\"too old\"}}\n",
                ];
                let stream = futures::stream::iter(
                    chunks.map(|c| Ok::<_, std::convert::Infallible>(c.to_owned())),
                );
                Body::from_stream(stream).into_response()
            }),
        )
    }

    #[tokio::test]
    async fn a_watch_yields_its_lines_whatever_the_chunks() {
        let user = User::new("system:node:n1", &["system:nodes"]);
        let client = LocalClient::new(watch_router()).with_identity(user, "kubelet");
        let mut watch = client.watch("/w").await.unwrap();
        let added = watch.next().await.unwrap().unwrap();
        assert_eq!(
            (added.kind.as_str(), &added.object),
            ("ADDED", &json!({"a": 1}))
        );
        assert!(added.error().is_none());
        let expired = watch.next().await.unwrap().unwrap().error().unwrap();
        assert_eq!(
            (expired.code, expired.reason),
            (StatusCode::GONE, "Expired")
        );
        assert!(watch.next().await.is_none());
    }

    #[tokio::test]
    async fn a_refused_watch_is_its_status() {
        let router = Router::new().route(
            "/w",
            get(|| async {
                let status = json!({"kind": "Status", "reason": "BadRequest", "message": "no"});
                (StatusCode::BAD_REQUEST, axum::Json(status))
            }),
        );
        let err = LocalClient::new(router).watch("/w").await.err().unwrap();
        assert_eq!(
            (err.code, err.reason, err.message.as_str()),
            (StatusCode::BAD_REQUEST, "BadRequest", "no")
        );
    }

    #[test]
    fn paths_follow_the_kind() {
        let pods = Kind::external::<k8s_openapi::api::core::v1::Pod>(ALL_VERBS);
        assert_eq!(pods.path(Some("dev"), None), "/api/v1/namespaces/dev/pods");
        assert_eq!(pods.path(None, None), "/api/v1/pods");
        let nodes = Kind::external::<k8s_openapi::api::core::v1::Node>(ALL_VERBS);
        assert_eq!(nodes.path(Some("dev"), Some("n1")), "/api/v1/nodes/n1");
        let deployments = Kind::external::<k8s_openapi::api::apps::v1::Deployment>(ALL_VERBS);
        assert_eq!(
            deployments.path(Some("a"), Some("d")),
            "/apis/apps/v1/namespaces/a/deployments/d"
        );
    }
}
