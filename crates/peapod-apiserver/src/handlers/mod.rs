//! The generic handlers: one per verb, the same for every kind in the registry (kube-apiserver's
//! `endpoints/handlers` over `registry/generic/registry.Store`). Each request arrives here as a
//! [`Scope`]: the parsed request, its kind, who asks and how to answer.

mod action;
mod body;
mod delete;
mod read;
mod watch;
mod write;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use peapod_store::Store;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::negotiate::Output;
use crate::registry::{Kind, Strategy};
use crate::request_info::RequestInfo;
use crate::status::ApiError;

pub use body::MAX_REQUEST_BYTES;

pub type ApiResult<T> = Result<T, ApiError>;

/// One resource request, resolved against the registry.
pub struct Scope {
    pub info: RequestInfo,
    pub kind: Arc<Kind>,
    pub strategy: Arc<dyn Strategy>,
    pub store: Store,
    pub output: Output,
    pub query: Option<String>,
}

impl Scope {
    /// The namespace the request works in: `None` for cluster-scoped kinds and for lists across
    /// all namespaces.
    pub fn namespace(&self) -> Option<&str> {
        if self.kind.namespaced {
            self.info.namespace.as_deref()
        } else {
            None
        }
    }

    /// The stored namespace of the named object ("" for cluster-scoped kinds).
    pub fn object_namespace(&self) -> &str {
        self.namespace().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.info.name.as_deref().unwrap_or_default()
    }

    pub fn group(&self) -> &str {
        &self.kind.gvk.group
    }

    /// The query parameters as `T` (unknown parameters ignored, as kube-apiserver does).
    pub fn params<T: DeserializeOwned + Default>(&self) -> ApiResult<T> {
        let Some(query) = self.query.as_deref().filter(|q| !q.is_empty()) else {
            return Ok(T::default());
        };
        serde_urlencoded::from_str(query)
            .map_err(|err| ApiError::bad_request(format!("invalid query parameters: {err}")))
    }

    pub fn not_found(&self) -> ApiError {
        ApiError::not_found(self.group(), self.kind.plural, self.name())
    }

    pub fn store_error(&self, err: peapod_store::StoreError) -> ApiError {
        ApiError::from_store(err, self.group(), self.kind.plural)
    }

    /// Sets kind and apiVersion on a stored object (they are not trusted from storage).
    pub fn typed(&self, mut object: Value) -> Value {
        if let Some(fields) = object.as_object_mut() {
            fields.insert("kind".into(), Value::from(self.kind.gvk.kind.clone()));
            fields.insert("apiVersion".into(), Value::from(self.kind.api_version()));
        }
        object
    }
}

/// Serves one resource request.
pub async fn serve(scope: Scope, request: axum::extract::Request) -> Response {
    let result = match (scope.info.verb.as_str(), scope.info.subresource.as_deref()) {
        ("get", None | Some("status")) => read::get(&scope).await,
        ("list", None) => read::list(&scope).await,
        ("watch", None) => watch::watch(scope).await,
        ("create", None) => write::create(&scope, request).await,
        ("update", None | Some("status")) => write::update(&scope, request).await,
        ("patch", None | Some("status")) => write::patch(&scope, request).await,
        ("delete", None) => delete::delete(&scope, request).await,
        ("deletecollection", None) => delete::delete_collection(&scope, request).await,
        ("create", Some(sub)) if scope.kind.action_of(sub).is_some() => {
            let action = scope.kind.action_of(sub).cloned().expect("checked above");
            action::create(&scope, request, action).await
        }
        (verb, _) => Err(ApiError::method_not_supported(
            verb,
            &resource_path(&scope.info),
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn resource_path(info: &RequestInfo) -> String {
    match &info.subresource {
        Some(sub) => format!("{}/{sub}", info.resource),
        None => info.resource.clone(),
    }
}

/// Runs store work on the blocking pool: SQLite never runs on the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::internal(format!("store task failed: {err}")))?
}

/// An object answer in the negotiated encoding (JSON unless YAML was asked).
pub fn object_response(code: StatusCode, object: &Value, output: &Output) -> Response {
    let (bytes, content_type) = match output {
        Output::Yaml => match serde_yaml_ng::to_string(object) {
            Ok(text) => (text.into_bytes(), "application/yaml"),
            Err(err) => return ApiError::internal(err.to_string()).into_response(),
        },
        _ => (
            serde_json::to_vec(object).unwrap_or_default(),
            "application/json",
        ),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

/// Adds each warning as a `Warning: 299 - "..."` header, as kube-apiserver does.
pub fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = format!(
            "299 - {}",
            serde_json::to_string(warning).unwrap_or_default()
        );
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", value);
        }
    }
    response
}

/// A boolean query parameter as Go's `strconv.ParseBool` reads it (`true`, `True`, `TRUE`,
/// `t`, `1` and their negatives; Python clients send `True`), or a JSON boolean in a body.
pub fn go_bool<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Given {
        Bool(bool),
        Text(String),
    }
    match <Option<Given> as serde::Deserialize>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Given::Bool(value)) => Ok(Some(value)),
        Some(Given::Text(text)) => match text.as_str() {
            "1" | "t" | "T" | "true" | "True" | "TRUE" => Ok(Some(true)),
            "0" | "f" | "F" | "false" | "False" | "FALSE" => Ok(Some(false)),
            other => Err(serde::de::Error::custom(format!(
                "strconv.ParseBool: parsing {other:?}: invalid syntax"
            ))),
        },
    }
}
