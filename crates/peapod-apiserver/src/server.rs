//! The front of the API server: every request is parsed into a [`RequestInfo`], checked
//! against the authenticated user, and answered by discovery, the health and version
//! endpoints, or the generic handlers for the kind it names.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use peapod_store::Store;

use crate::authn::{AllowAuthenticated, Authorizer, User};
use crate::discovery;
use crate::handlers::{self, Scope};
use crate::negotiate::{self, Output};
use crate::openapi;
use crate::registry::{Backend, Registry};
use crate::request_info::RequestInfo;
use crate::status::{qualified, ApiError};

/// The API server: the registry of kinds, the store, and who may do what.
pub struct ApiServer {
    registry: Arc<Registry>,
    store: Store,
    authorizer: Arc<dyn Authorizer>,
}

impl ApiServer {
    pub fn new(registry: Registry, store: Store) -> ApiServer {
        ApiServer {
            registry: Arc::new(registry),
            store,
            authorizer: Arc::new(AllowAuthenticated),
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A router answering every path; mount routes of your own before it (they take
    /// precedence) for what the generic handlers do not serve.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self)
    }
}

async fn handle(State(server): State<Arc<ApiServer>>, request: Request) -> Response {
    let info = RequestInfo::parse(
        request.method(),
        request.uri().path(),
        request.uri().query(),
    );
    let Some(user) = request.extensions().get::<User>().cloned() else {
        return ApiError::unauthorized().into_response();
    };
    if !server.authorizer.allows(&user, &info) {
        return forbidden(&user, &info).into_response();
    }
    // Before negotiation: OpenAPI is JSON whatever is accepted, and kubectl's protobuf-only
    // request for /openapi/v2 must get its 404, not a 406.
    if let Some(answer) = openapi::respond(&server.registry, &info.path, request.uri().query()) {
        return answer.into_response();
    }
    let accept = request
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Protobuf answers are not encoded yet: clients that prefer them also accept JSON.
    let output = match negotiate::output_where(accept.as_deref(), |o| *o != Output::Protobuf) {
        Ok(output) => output,
        Err(err) => return err.into_response(),
    };
    if !info.is_resource_request {
        return non_resource(&server, &info, &output);
    }
    match scope(&server, info, output, request.uri().query()) {
        Ok(scope) => handlers::serve(scope, request).await,
        Err(err) => err.into_response(),
    }
}

fn non_resource(server: &ApiServer, info: &RequestInfo, output: &Output) -> Response {
    match info.path.trim_end_matches('/') {
        "/healthz" | "/livez" | "/readyz" => return text(StatusCode::OK, "ok"),
        "/version" => {
            return handlers::object_response(
                StatusCode::OK,
                &discovery::version_info(),
                &Output::Json,
            )
        }
        _ => {}
    }
    match discovery::respond(&server.registry, &info.path, output) {
        Some(Ok((body, content_type))) => {
            let mut response = handlers::object_response(StatusCode::OK, &body, &Output::Json);
            if let Ok(value) = HeaderValue::from_str(content_type) {
                response.headers_mut().insert("content-type", value);
            }
            response
        }
        Some(Err(err)) => err.into_response(),
        None => ApiError::no_route().into_response(),
    }
}

fn text(code: StatusCode, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Resolves a resource request against the registry.
fn scope(
    server: &ApiServer,
    info: RequestInfo,
    output: Output,
    query: Option<&str>,
) -> Result<Scope, ApiError> {
    let kind = server
        .registry
        .lookup(&info.api_group, &info.api_version, &info.resource)
        .cloned()
        .ok_or_else(ApiError::no_route)?;
    let Backend::Store(strategy) = kind.backend.clone() else {
        return Err(ApiError::no_route());
    };
    let has_namespace = info.namespace.as_deref().is_some_and(|n| !n.is_empty());
    if kind.namespaced && info.name.is_some() && !has_namespace {
        return Err(ApiError::no_route());
    }
    if !kind.namespaced && has_namespace && info.resource != "namespaces" {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = &info.subresource {
        if !kind.has_subresource(sub) {
            return Err(ApiError::no_route());
        }
    }
    let verb = info.verb.as_str();
    let base_verb = if verb == "deletecollection" {
        "deletecollection"
    } else {
        verb
    };
    if info.subresource.is_none() && !kind.allows(base_verb) {
        return Err(ApiError::method_not_supported(verb, &info.resource));
    }
    Ok(Scope {
        info,
        kind,
        strategy,
        store: server.store.clone(),
        output,
        query: query.map(str::to_owned),
    })
}

/// kube-apiserver's RBAC denial wording.
fn forbidden(user: &User, info: &RequestInfo) -> ApiError {
    if !info.is_resource_request {
        return ApiError::forbidden(format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.name,
            info.verb.to_lowercase(),
            info.path
        ));
    }
    let resource = qualified(&info.api_group, &info.resource);
    let place = match &info.namespace {
        Some(namespace) => format!(" in the namespace \"{namespace}\""),
        None => " at the cluster scope".to_owned(),
    };
    ApiError::forbidden(format!(
        "{resource} is forbidden: User \"{}\" cannot {} resource \"{}\" in API group \"{}\"{place}",
        user.name, info.verb, info.resource, info.api_group
    ))
}
