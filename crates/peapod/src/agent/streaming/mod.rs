//! The streaming subresources kubelet serves and kube-apiserver proxies: pods/exec,
//! pods/attach and pods/portforward. A request is checked first (pod, container, node) and
//! refused as kube-apiserver and kubelet refuse it; then the connection is upgraded to the
//! protocol negotiated by peapod-streams and bridged to the pod's shim (exec, attach) or to
//! the pod's network namespace (port-forward).

mod attach;
mod bridge;
mod exec;
mod portforward;

use std::future::Future;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, Pod};
use peapod_apiserver::status::ApiError;
use peapod_streams::negotiate::{negotiate, Negotiated, RefusedBy, Service};

use super::api::{container_status, find_pod, Shared};
use crate::shim::client::ShimClient;

type Result<T, E = Refusal> = std::result::Result<T, E>;

/// A stream request refused before its upgrade: by the apiserver (a `Status`), or by kubelet,
/// whose plain-text answer the apiserver's proxy passes through and kubectl prints as
/// `unable to upgrade connection: MESSAGE`.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{message}")]
    Kubelet { code: StatusCode, message: String },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api(err) => err.into_response(),
            Refusal::Kubelet { code, message } => (
                code,
                [("content-type", "text/plain; charset=utf-8")],
                message,
            )
                .into_response(),
        }
    }
}

/// The upgraded connection a session runs on.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            get(exec::serve).post(exec::serve),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/attach",
            get(attach::serve).post(attach::serve),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/portforward",
            get(portforward::serve).post(portforward::serve),
        )
}

/// The query of a connect request: repeated keys kept in order (`command`, `ports`).
struct ConnectQuery(Vec<(String, String)>);

impl ConnectQuery {
    fn parse(raw: Option<String>) -> ConnectQuery {
        ConnectQuery(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn values(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean parameter, parsed as Go's strconv.ParseBool (the apiserver's query codec).
    fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.value(key) {
            None => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False" | "") => Ok(false),
            Some(other) => Err(ApiError::bad_request(format!(
                "strconv.ParseBool: parsing \"{other}\": invalid syntax"
            ))),
        }
    }
}

/// A running container a stream reaches: its spec and the shim that holds it.
struct Target {
    container: Container,
    /// The runtime's id of the running container.
    id: String,
    shim: ShimClient,
}

/// kube-apiserver's `streamLocation`: the pod, the container named (or the pod's only one)
/// and the node it runs on; then kubelet's lookup of the running container.
fn target(ctx: &Shared, ns: &str, name: &str, container: Option<&str>) -> Result<Target> {
    let pod = find_pod(ctx, ns, name)?;
    let spec = pod.spec.clone().unwrap_or_default();
    let chosen = choose_container(&spec, name, container)?;
    assigned_host(&pod)?;
    let Some(id) = running_container_id(&pod, &chosen.name) else {
        return Err(Refusal::Kubelet {
            code: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("container not found (\"{}\")", chosen.name),
        });
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let shim = ShimClient::new(&ctx.paths.pod_run_dir(&uid));
    Ok(Target {
        container: chosen,
        id,
        shim,
    })
}

/// kube-apiserver refuses streams to a pod no node runs yet.
fn assigned_host(pod: &Pod) -> Result<(), ApiError> {
    let spec = pod.spec.as_ref();
    if spec
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
        .is_empty()
    {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    Ok(())
}

fn choose_container(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    pod: &str,
    requested: Option<&str>,
) -> Result<Container, ApiError> {
    let all = || {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
    };
    match requested.filter(|r| !r.is_empty()) {
        Some(name) => all().find(|c| c.name == name).cloned().ok_or_else(|| {
            ApiError::bad_request(format!("container {name} is not valid for pod {pod}"))
        }),
        None if spec.containers.len() == 1 => Ok(spec.containers[0].clone()),
        None if spec.containers.is_empty() => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod}"
        ))),
        None => Err(ApiError::bad_request(must_choose(spec, pod))),
    }
}

fn must_choose(spec: &k8s_openapi::api::core::v1::PodSpec, pod: &str) -> String {
    let names = |containers: &[Container]| {
        containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut message = format!(
        "a container name must be specified for pod {pod}, choose one of: [{}]",
        names(&spec.containers)
    );
    if let Some(init) = spec.init_containers.as_deref().filter(|c| !c.is_empty()) {
        message += &format!(" or one of the init containers: [{}]", names(init));
    }
    message
}

fn running_container_id(pod: &Pod, container: &str) -> Option<String> {
    let found = container_status(pod, container)?;
    found.state.as_ref()?.running.as_ref()?;
    found
        .container_id
        .as_deref()?
        .strip_prefix("peapod://")
        .map(str::to_string)
}

/// The transport and protocol the request upgrades to, or kube's refusal.
fn negotiated(request: &Request, service: Service) -> Result<Negotiated> {
    negotiate(request.method(), request.headers(), service).map_err(|err| match err.refused_by {
        RefusedBy::ApiServer => Refusal::Api(ApiError::bad_request(err.message)),
        RefusedBy::Kubelet => Refusal::Kubelet {
            code: err.code,
            message: err.message,
        },
    })
}

/// Answers 101 and runs `session` on the upgraded connection.
fn upgrade<F, Fut>(request: Request, negotiated: Negotiated, session: F) -> Response
where
    F: FnOnce(Upgraded, Negotiated) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    for (name, value) in negotiated.response_headers() {
        response.headers_mut().append(name, value);
    }
    let pending = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match pending.await {
            Ok(upgraded) => session(TokioIo::new(upgraded), negotiated).await,
            Err(err) => tracing::warn!(%err, "stream upgrade failed"),
        }
    });
    response
}
