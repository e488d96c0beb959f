//! The generic handlers: one per verb, the same for every kind in the registry (kube-apiserver's
//! `endpoints/handlers` over `registry/generic/registry.Store`). Each request arrives here as a
//! [`Scope`]: the parsed request, its kind, who asks and how to answer. The handlers work in
//! the served version; a [`Codec`] converts at the store's edge for kinds kept in another
//! version's storage. Create-only kinds that store nothing are answered by [`serve_review`].

mod action;
mod body;
mod delete;
mod propagation;
mod read;
mod review;
mod scale;
mod watch;
mod write;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use peapod_api::validation::FieldError;
use peapod_store::{Predicate, Store};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::negotiate::Output;
use crate::registry::{Kind, Strategy};
use crate::request_info::RequestInfo;
use crate::selectors::Selection;
use crate::status::ApiError;

pub use body::MAX_REQUEST_BYTES;
pub use review::serve as serve_review;

pub type ApiResult<T> = Result<T, ApiError>;

/// One resource request, resolved against the registry.
pub struct Scope {
    pub info: RequestInfo,
    pub kind: Arc<Kind>,
    pub strategy: Arc<dyn Strategy>,
    pub store: Store,
    /// The admission plugins a create or an update runs.
    pub admission: Vec<Arc<dyn crate::admission::Admission>>,
    pub output: Output,
    pub query: Option<String>,
    /// Who asks, and the authorizer that let them: RBAC writes are checked for escalation.
    pub user: crate::authn::User,
    pub authorizer: Arc<dyn crate::authn::Authorizer>,
}

impl Scope {
    /// kube's escalation check of an RBAC write, run where the write is stored.
    fn escalation_check(
        &self,
    ) -> impl Fn(&Value, Option<&Value>) -> Result<(), ApiError> + Send + 'static {
        let (user, authorizer, store) = (
            self.user.clone(),
            self.authorizer.clone(),
            self.store.clone(),
        );
        let (group, resource) = (self.kind.gvk.group.clone(), self.kind.plural);
        let namespace = self.object_namespace().to_owned();
        move |new, old| {
            crate::rbac::escalation::RbacWrite {
                user: &user,
                authorizer: authorizer.as_ref(),
                store: &store,
                resource,
                namespace: &namespace,
            }
            .check(&group, new, old)
        }
    }

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

    pub fn codec(&self) -> Codec {
        Codec {
            kind: self.kind.clone(),
        }
    }

    /// A stored object as this endpoint serves it (see [`Codec::served`]).
    pub fn served(&self, stored: Value) -> ApiResult<Value> {
        self.codec().served(stored)
    }

    /// The store predicate of `selection`: stored objects judged as this endpoint serves them.
    pub fn predicate(&self, selection: &Selection) -> Option<Predicate> {
        let matches = selection.predicate(self.strategy.clone())?;
        if self.kind.conversion.is_none() {
            return Some(matches);
        }
        let codec = self.codec();
        Some(Arc::new(move |stored: &Value| {
            codec
                .served(stored.clone())
                .is_ok_and(|served| matches(&served))
        }))
    }
}

/// Converts a kind's objects between the version served and the version stored (the same for
/// most kinds), as kube-apiserver's codecs do at the storage layer.
#[derive(Clone)]
pub struct Codec {
    kind: Arc<Kind>,
}

impl Codec {
    /// A stored object in the served version, with its kind and apiVersion set (they are not
    /// trusted from storage).
    pub fn served(&self, stored: Value) -> ApiResult<Value> {
        let mut object = match &self.kind.conversion {
            Some(conversion) => conversion.to_served(stored)?,
            None => stored,
        };
        if let Some(fields) = object.as_object_mut() {
            fields.insert("kind".into(), Value::from(self.kind.gvk.kind.clone()));
            fields.insert("apiVersion".into(), Value::from(self.kind.api_version()));
        }
        Ok(object)
    }

    /// A served object in the stored version.
    pub fn stored(&self, served: Value) -> ApiResult<Value> {
        match &self.kind.conversion {
            Some(conversion) => conversion.to_stored(served),
            None => Ok(served),
        }
    }

    /// Validation errors naming the kind as kube-apiserver's internal version does, by the
    /// stored kind: an events.k8s.io/v1 Event is an invalid `Event`.
    pub fn invalid(&self, name: &str, errors: Vec<FieldError>) -> ApiError {
        let stored = &self.kind.storage;
        ApiError::invalid(stored.group(), stored.kind(), name, errors)
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
        ("get", Some("scale")) => scale::get(&scope).await,
        ("update", Some("scale")) => scale::update(&scope, request).await,
        ("patch", Some("scale")) => scale::patch(&scope, request).await,
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

/// An object answer in the negotiated encoding: YAML or protobuf when asked, else JSON. An
/// object with no protobuf form (say, metrics) is answered in JSON, which every client that
/// asks for protobuf also accepts, as kube-apiserver does for custom resources.
pub fn object_response(code: StatusCode, object: &Value, output: &Output) -> Response {
    let protobuf = match output {
        Output::Protobuf => crate::protobuf::encode(object).ok(),
        _ => None,
    };
    let (bytes, content_type) = match (output, protobuf) {
        (_, Some(bytes)) => (bytes, output.content_type()),
        (Output::Yaml, _) => match peapod_api::yaml_output::to_yaml(object) {
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
