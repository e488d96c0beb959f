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
use serde_json::json;

use crate::admission::Admission;
use crate::authn::{AllowAuthenticated, Authorizer, User};
use crate::discovery;
use crate::handlers::{self, Scope};
use crate::impersonation;
use crate::negotiate::{self, Output};
use crate::openapi;
use crate::registry::{Backend, Kind, Registry, Requester, Strategy};
use crate::request_info::RequestInfo;
use crate::status::{qualified, ApiError};

/// The API server: the registry of kinds, the store, and who may do what.
pub struct ApiServer {
    registry: Arc<Registry>,
    store: Store,
    authorizer: Arc<dyn Authorizer>,
    admission: Vec<Arc<dyn Admission>>,
}

impl ApiServer {
    pub fn new(registry: Registry, store: Store) -> ApiServer {
        ApiServer {
            registry: Arc::new(registry),
            store,
            authorizer: Arc::new(AllowAuthenticated),
            admission: Vec::new(),
        }
    }

    /// Runs `plugin` on every create, after the plugins already given.
    pub fn with_admission(mut self, plugin: Arc<dyn Admission>) -> ApiServer {
        self.admission.push(plugin);
        self
    }

    /// The server deciding who may do what with `authorizer` (everyone authenticated may do
    /// everything by default).
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> ApiServer {
        self.authorizer = authorizer;
        self
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

/// Authorizes a request for the routes mounted beside the server's own (pods/log, exec,
/// metrics, ...) as the server authorizes its own: a layer for those routes.
pub async fn authorize(
    State(server): State<Arc<ApiServer>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    match server.authorized(&request) {
        Ok((_, user)) => {
            let mut request = request;
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

impl ApiServer {
    /// The request's parsed form and user, if the authorizer lets the user do it.
    fn authorized(&self, request: &Request) -> Result<(RequestInfo, User), ApiError> {
        let info = RequestInfo::parse(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        );
        let Some(requester) = request.extensions().get::<User>().cloned() else {
            return Err(ApiError::unauthorized());
        };
        let acting_as =
            impersonation::impersonated(request.headers(), &requester, self.authorizer.as_ref())?;
        let user = acting_as.unwrap_or(requester);
        if !self.authorizer.allows(&user, &info) {
            return Err(forbidden(&user, &info));
        }
        Ok((info, user))
    }
}

async fn handle(State(server): State<Arc<ApiServer>>, mut request: Request) -> Response {
    let (info, user) = match server.authorized(&request) {
        Ok(allowed) => allowed,
        Err(refused) => return refused.into_response(),
    };
    // The user acted as (impersonation), for whatever reads it from the request.
    request.extensions_mut().insert(user.clone());
    // Before negotiation: OpenAPI negotiates its own formats (v2's gnostic protobuf is none of
    // the object encodings).
    let query = request.uri().query();
    if let Some(answer) = openapi::respond(&server.registry, &info.path, query, request.headers()) {
        return answer.into_response();
    }
    let accept = request
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Protobuf answers are for objects and lists; watch streams and discovery are JSON, which
    // every client that prefers protobuf also accepts.
    let protobuf = info.is_resource_request && info.verb != "watch";
    let allowed = |o: &Output| protobuf || *o != Output::Protobuf;
    let output = match negotiate::output_where(accept.as_deref(), allowed) {
        Ok(output) => output,
        Err(err) => return err.into_response(),
    };
    if !info.is_resource_request {
        return non_resource(&server, &info, &output);
    }
    let kind = match resolve(&server, &info) {
        Ok(kind) => kind,
        Err(err) => return err.into_response(),
    };
    match kind.backend.clone() {
        Backend::Store(strategy) => {
            let query = request.uri().query().map(str::to_owned);
            let asking = (user, server.authorizer.clone());
            match scope(&server, info, kind, strategy, output, query, asking) {
                Ok(scope) => handlers::serve(scope, request).await,
                Err(err) => err.into_response(),
            }
        }
        Backend::Review(review) => {
            let requester = Requester {
                user: &user,
                authorizer: server.authorizer.as_ref(),
                namespace: info.namespace.as_deref(),
            };
            handlers::serve_review(&info, &kind, review.as_ref(), &requester, &output, request)
                .await
        }
        Backend::External => ApiError::no_route().into_response(),
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

/// The kind a resource request names, if the registry serves it at that path.
fn resolve(server: &ApiServer, info: &RequestInfo) -> Result<Arc<Kind>, ApiError> {
    let kind = server
        .registry
        .lookup(&info.api_group, &info.api_version, &info.resource)
        .cloned()
        .ok_or_else(ApiError::no_route)?;
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
    Ok(kind)
}

/// A resource request on a stored kind, ready for the generic handlers.
fn scope(
    server: &ApiServer,
    info: RequestInfo,
    kind: Arc<Kind>,
    strategy: Arc<dyn Strategy>,
    output: Output,
    query: Option<String>,
    (user, authorizer): (User, Arc<dyn Authorizer>),
) -> Result<Scope, ApiError> {
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
        admission: server.admission.clone(),
        output,
        query,
        user,
        authorizer,
    })
}

/// kube-apiserver's RBAC denial wording.
pub(crate) fn forbidden(user: &User, info: &RequestInfo) -> ApiError {
    if !info.is_resource_request {
        return ApiError::forbidden(format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.name,
            info.verb.to_lowercase(),
            info.path
        ));
    }
    let qualified_resource = qualified(&info.api_group, &info.resource);
    let subject = match info.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => format!(
            "{qualified_resource} {}",
            peapod_api::validation::go_quote(name)
        ),
        None => qualified_resource,
    };
    let resource = match &info.subresource {
        Some(sub) => format!("{}/{sub}", info.resource),
        None => info.resource.clone(),
    };
    let place = match info.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(namespace) => format!(" in the namespace \"{namespace}\""),
        None => " at the cluster scope".to_owned(),
    };
    ApiError::forbidden(format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\"{place}",
        user.name, info.verb, info.api_group
    ))
    .with_details(json!({
        "name": info.name.clone().unwrap_or_default(),
        "group": info.api_group,
        "kind": info.resource,
    }))
}
