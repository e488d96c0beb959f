//! An in-process client of the API server: controllers (and, later, the kubelet) call the
//! same handlers a remote client reaches, as `system:admin`, with no socket in between, as
//! k3s' embedded components talk to their apiserver.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
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
}

impl LocalClient {
    pub fn new(router: Router) -> LocalClient {
        LocalClient { router }
    }

    /// Sends one request; a non-2xx answer becomes the `ApiError` its Status describes.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Value)>,
    ) -> Result<Value, ApiError> {
        let mut builder = Request::builder().method(method).uri(path);
        let body = match body {
            Some((content_type, value)) => {
                builder = builder.header("content-type", content_type);
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let mut request = builder
            .body(body)
            .map_err(|err| ApiError::internal(format!("building {path}: {err}")))?;
        request.extensions_mut().insert(User::admin());
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|err| ApiError::internal(format!("{path}: {err}")))?;
        let code = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|err| ApiError::internal(format!("{path}: {err}")))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if code.is_success() {
            Ok(value)
        } else {
            Err(error_of(code, &value))
        }
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
    use crate::registry::{Kind, ALL_VERBS};

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
