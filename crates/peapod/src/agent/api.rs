//! The agent's HTTP API on its Unix socket, along Kubernetes REST paths: pods (create, apply,
//! get, list, watch, replace, delete), pods/log, pods/exec, events; plus peapod's image verbs
//! under /apis/images.peapod.io/v1 (list, load, import, pull with NDJSON progress, prune,
//! remove). Errors are Kubernetes `Status` objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use k8s_openapi::api::core::v1::{Event, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use peapod_api::decode::{Document, Tracked};
use peapod_api::field_validation::FieldValidation;
use peapod_api::object::{parse_object, Object};
use peapod_api::selector::LabelSelector;
use peapod_store::{StoreError, WatchEventType};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::kubelet::flight::{FlightAborted, Step};
use crate::kubelet::image_gc::images_in_use;
use crate::kubelet::images::{PullFailure, Pulled};
use crate::kubelet::Context;
use crate::shim::client::ShimClient;
use crate::shim::protocol::ExecRequest;

pub type Shared = Arc<Context>;

pub fn router(ctx: Shared) -> Router {
    Router::new()
        .route("/api/v1/pods", get(list_all_pods))
        .route(
            "/api/v1/namespaces/{ns}/pods",
            get(list_pods).post(create_pod),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            get(get_pod)
                .put(replace_pod)
                .patch(apply_pod)
                .delete(delete_pod),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            post(pod_exec).get(pod_exec),
        )
        .route(
            "/apis/metrics.k8s.io/v1beta1/pods",
            get(super::metrics::list_all_pod_metrics),
        )
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
            get(super::metrics::list_pod_metrics),
        )
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{name}",
            get(super::metrics::get_pod_metrics),
        )
        .route("/api/v1/events", get(list_all_events))
        .route("/api/v1/namespaces/{ns}/events", get(list_events))
        .route("/apis/images.peapod.io/v1/images", get(list_images))
        .route("/apis/images.peapod.io/v1/images/load", post(load_images))
        .route(
            "/apis/images.peapod.io/v1/images/import",
            post(import_image),
        )
        .route("/apis/images.peapod.io/v1/images/pull", post(pull_image))
        .route("/apis/images.peapod.io/v1/images/prune", post(prune_images))
        .route(
            "/apis/images.peapod.io/v1/images/{reference}",
            axum::routing::delete(remove_image),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(ctx)
}

// ----- errors ----------------------------------------------------------------------------

/// A Kubernetes `Status` failure.
#[derive(Debug)]
pub struct ApiError {
    code: StatusCode,
    reason: &'static str,
    message: String,
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message)
    }

    fn pod_not_found(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("pods \"{name}\" not found"),
        )
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        let code = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(code, err.reason(), err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        (self.code, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

// ----- pods ------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    label_selector: Option<String>,
    watch: Option<bool>,
    resource_version: Option<String>,
}

async fn list_all_pods(
    State(ctx): State<Shared>,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    pods_response(ctx, None, params).await
}

async fn list_pods(
    State(ctx): State<Shared>,
    Path(ns): Path<String>,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    pods_response(ctx, Some(ns), params).await
}

fn selector(params: &ListParams) -> ApiResult<Option<LabelSelector>> {
    params
        .label_selector
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<LabelSelector>()
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))
        })
        .transpose()
}

fn selected(selector: &Option<LabelSelector>, pod: &Pod) -> bool {
    let empty = BTreeMap::new();
    selector
        .as_ref()
        .is_none_or(|s| s.matches(pod.metadata.labels.as_ref().unwrap_or(&empty)))
}

async fn pods_response(ctx: Shared, ns: Option<String>, params: ListParams) -> ApiResult<Response> {
    let selector = selector(&params)?;
    if params.watch == Some(true) {
        return watch_pods(ctx, ns, selector, params.resource_version);
    }
    let pods: Vec<Pod> = ctx.store.list(ns.as_deref())?;
    let items: Vec<Pod> = pods
        .into_iter()
        .filter(|p| selected(&selector, p))
        .collect();
    let revision = ctx.store.revision()?;
    Ok(Json(json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": revision.to_string()},
        "items": items,
    }))
    .into_response())
}

/// Newline-delimited watch events (`{"type": "ADDED", "object": {...}}`), as the API server
/// streams them.
fn watch_pods(
    ctx: Shared,
    ns: Option<String>,
    selector: Option<LabelSelector>,
    since: Option<String>,
) -> ApiResult<Response> {
    let (pods, _, mut watch) = ctx.store.list_watch::<Pod>(ns.as_deref())?;
    let since: u64 = since.and_then(|s| s.parse().ok()).unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for pod in pods {
            let rv: u64 = pod
                .metadata
                .resource_version
                .as_deref()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            if rv > since && selected(&selector, &pod) {
                let kind = if since == 0 { "ADDED" } else { "MODIFIED" };
                if tx.send(watch_line(kind, &pod)).await.is_err() {
                    return;
                }
            }
        }
        while let Some(Ok(event)) = watch.next().await {
            let Ok(pod) = serde_json::from_value::<Pod>(event.object) else {
                continue;
            };
            if !selected(&selector, &pod) {
                continue;
            }
            let kind = match event.kind {
                WatchEventType::Added => "ADDED",
                WatchEventType::Modified => "MODIFIED",
                WatchEventType::Deleted => "DELETED",
            };
            if tx.send(watch_line(kind, &pod)).await.is_err() {
                return;
            }
        }
    });
    Ok(stream_response(rx, "application/json"))
}

fn watch_line(kind: &str, pod: &Pod) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": pod})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Bytes>, content_type: &'static str) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

async fn get_pod(
    State(ctx): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Pod>> {
    Ok(Json(find_pod(&ctx, &ns, &name)?))
}

fn find_pod(ctx: &Context, ns: &str, name: &str) -> ApiResult<Pod> {
    ctx.store
        .get::<Pod>(ns, name)?
        .ok_or_else(|| ApiError::pod_not_found(name))
}

/// Decodes, defaults and validates a pod from a request body for namespace `ns`.
fn admit(
    ctx: &Context,
    ns: &str,
    path_name: Option<&str>,
    body: Tracked,
) -> ApiResult<(Pod, Vec<String>)> {
    let decoded = parse_object(&Document {
        index: 0,
        value: body.value,
        duplicates: body.duplicates,
    })
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // kube-apiserver refuses keys given twice under fieldValidation=Strict, which kubectl
    // sends by default (it warns without one); unknown fields stay warnings until the
    // agent reads fieldValidation.
    let warnings = decoded
        .field_validation(FieldValidation::Warn, FieldValidation::Strict)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let Object::Pod(pod) = decoded.object;
    let mut pod = *pod;
    match pod.metadata.namespace.as_deref() {
        None | Some("") => pod.metadata.namespace = Some(ns.to_string()),
        Some(given) if given != ns => {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({given}) does not match the namespace sent on the request ({ns})"
            )))
        }
        Some(_) => {}
    }
    if let Some(expected) = path_name {
        if pod.metadata.name.as_deref() != Some(expected) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({expected})",
                pod.metadata.name.clone().unwrap_or_default()
            )));
        }
    }
    peapod_api::defaults::default_pod(&mut pod);
    peapod_api::validation::validate_pod(&pod).map_err(|e| ApiError::invalid(e.to_string()))?;
    let spec = pod.spec.get_or_insert_with(Default::default);
    match spec.node_name.as_deref() {
        // Unbound: the kubelet's scheduler binds it once its host ports are free.
        None | Some("") => spec.node_name = None,
        Some(node) if node != ctx.node_name => {
            return Err(ApiError::invalid(format!(
                "Pod \"{}\" is invalid: spec.nodeName: Invalid value: \"{node}\": this peapod node is \"{}\"",
                pod.metadata.name.clone().unwrap_or_default(),
                ctx.node_name
            )))
        }
        Some(_) => {}
    }
    check_host_ips(&pod, &super::node_addresses())?;
    Ok((pod, warnings))
}

/// A hostPort can only be published on an address the node has.
fn check_host_ips(pod: &Pod, node_addresses: &[std::net::Ipv4Addr]) -> ApiResult<()> {
    let Some(spec) = &pod.spec else {
        return Ok(());
    };
    let lists = [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", spec.containers.as_slice()),
    ];
    for (list, containers) in lists {
        for (i, container) in containers.iter().enumerate() {
            for (j, port) in container.ports.iter().flatten().enumerate() {
                let Some(host_ip) = port.host_ip.as_deref().filter(|ip| !ip.is_empty()) else {
                    continue;
                };
                let known = host_ip
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_unspecified() || node_addresses.contains(&ip));
                if !known {
                    let addresses: Vec<String> =
                        node_addresses.iter().map(ToString::to_string).collect();
                    return Err(ApiError::invalid(format!(
                        "Pod \"{}\" is invalid: spec.{list}[{i}].ports[{j}].hostIP: Invalid value: \"{host_ip}\": must be 0.0.0.0 or an IPv4 address of this node ({})",
                        pod.metadata.name.clone().unwrap_or_default(),
                        addresses.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
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

/// Stores a new pod as the API server does: Pending, not yet scheduled.
fn create(ctx: &Context, mut pod: Pod) -> ApiResult<Pod> {
    pod.metadata.resource_version = None;
    pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        qos_class: pod
            .spec
            .as_ref()
            .map(|s| crate::kubelet::qos_class(s).to_string()),
        ..Default::default()
    });
    Ok(ctx.store.create(pod)?)
}

async fn create_pod(
    State(ctx): State<Shared>,
    Path(ns): Path<String>,
    Json(body): Json<Tracked>,
) -> ApiResult<Response> {
    let (pod, warnings) = admit(&ctx, &ns, None, body)?;
    let created = create(&ctx, pod)?;
    Ok(with_warnings(
        (StatusCode::CREATED, Json(created)).into_response(),
        &warnings,
    ))
}

/// Server-side apply of a whole pod: create it, or change what Kubernetes lets change.
async fn apply_pod(
    State(ctx): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Json(body): Json<Tracked>,
) -> ApiResult<Response> {
    let (pod, warnings) = admit(&ctx, &ns, Some(&name), body)?;
    let Some(old) = ctx.store.get::<Pod>(&ns, &name)? else {
        let created = create(&ctx, pod)?;
        let response = (
            StatusCode::CREATED,
            [("x-peapod-apply", "created")],
            Json(created),
        );
        return Ok(with_warnings(response.into_response(), &warnings));
    };
    let (outcome, result) = update(&ctx, old, pod)?;
    let response = (StatusCode::OK, [("x-peapod-apply", outcome)], Json(result));
    Ok(with_warnings(response.into_response(), &warnings))
}

async fn replace_pod(
    State(ctx): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Json(body): Json<Tracked>,
) -> ApiResult<Response> {
    let (pod, warnings) = admit(&ctx, &ns, Some(&name), body)?;
    let old = find_pod(&ctx, &ns, &name)?;
    let (_, result) = update(&ctx, old, pod)?;
    Ok(with_warnings(Json(result).into_response(), &warnings))
}

fn update(ctx: &Context, old: Pod, new: Pod) -> ApiResult<(&'static str, Pod)> {
    let name = old.metadata.name.clone().unwrap_or_default();
    if old.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on pods \"{name}\": the pod is being deleted"),
        ));
    }
    let mut candidate = old.clone();
    candidate.metadata.labels = new.metadata.labels.clone();
    candidate.metadata.annotations = new.metadata.annotations.clone();
    candidate.spec = new.spec.clone();
    if let (Some(spec), Some(bound)) = (candidate.spec.as_mut(), old.spec.as_ref()) {
        // The scheduler owns spec.nodeName once it bound the pod; a manifest without one
        // leaves it as it is, as server-side apply would.
        if spec.node_name.is_none() {
            spec.node_name = bound.node_name.clone();
        }
    }
    peapod_api::validation::validate_pod_update(&candidate, &old)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    if candidate.metadata == old.metadata && candidate.spec == old.spec {
        return Ok(("unchanged", old));
    }
    let updated = ctx.store.update(candidate)?;
    Ok(("configured", updated))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DeleteParams {
    grace_period_seconds: Option<i64>,
}

async fn delete_pod(
    State(ctx): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(params): Query<DeleteParams>,
) -> ApiResult<Json<Pod>> {
    let pod = find_pod(&ctx, &ns, &name)?;
    let grace = params
        .grace_period_seconds
        .or(pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
        .max(0);
    let updated = ctx.store.modify::<Pod>(&ns, &name, |pod| {
        if pod.metadata.deletion_timestamp.is_some()
            && pod
                .metadata
                .deletion_grace_period_seconds
                .is_some_and(|g| g <= grace)
        {
            return false;
        }
        let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
        pod.metadata.deletion_timestamp = Some(Time(at));
        pod.metadata.deletion_grace_period_seconds = Some(grace);
        true
    })?;
    Ok(Json(updated.unwrap_or(pod)))
}

// ----- logs ------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LogParams {
    container: Option<String>,
    follow: Option<bool>,
    previous: Option<bool>,
    tail_lines: Option<i64>,
    timestamps: Option<bool>,
}

/// Which container a request means: the one named, or the pod's only container.
fn pick_container(pod: &Pod, requested: Option<&str>) -> ApiResult<String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let names: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.name.clone())
        .collect();
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    match requested {
        Some(name) if names.iter().any(|n| n == name) => Ok(name.to_string()),
        Some(name) => Err(ApiError::bad_request(format!(
            "container {name} is not valid for pod {pod_name}"
        ))),
        None if spec.containers.len() == 1 => Ok(spec.containers[0].name.clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            spec.containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

fn container_status(pod: &Pod, name: &str) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    let status = pod.status.as_ref()?;
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find(|s| s.name == name)
        .cloned()
}

async fn pod_log(
    State(ctx): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(params): Query<LogParams>,
) -> ApiResult<Response> {
    let pod = find_pod(&ctx, &ns, &name)?;
    let container = pick_container(&pod, params.container.as_deref())?;
    let status = container_status(&pod, &container);
    let started = status.as_ref().is_some_and(|s| s.container_id.is_some());
    let restart_count = status.as_ref().map_or(0, |s| s.restart_count);
    let attempt = if params.previous == Some(true) {
        if restart_count == 0 {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        restart_count - 1
    } else {
        if !started {
            let reason = status
                .and_then(|s| s.state)
                .and_then(|s| s.waiting)
                .and_then(|w| w.reason)
                .unwrap_or_else(|| "ContainerCreating".into());
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        }
        restart_count
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let path = ctx
        .paths
        .container_log(&ns, &name, &uid, &container, attempt);
    let follow = params.follow == Some(true) && params.previous != Some(true);
    let options = peapod_logs::ReadOptions {
        tail: params.tail_lines.filter(|n| *n >= 0).map(|n| n as usize),
        timestamps: params.timestamps == Some(true),
        follow,
        since: None,
        limit_bytes: None,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let store = ctx.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter { tx: tx.clone() };
        let attempt_id = status_id(&pod, &container);
        let stop = || {
            if tx.is_closed() {
                return true;
            }
            let current: Option<Pod> = store.get(&ns, &name).ok().flatten();
            match current {
                None => true,
                Some(p) => {
                    let s = container_status(&p, &container);
                    s.is_none_or(|s| {
                        s.container_id != attempt_id
                            || s.state.as_ref().is_none_or(|st| st.running.is_none())
                    })
                }
            }
        };
        if let Err(err) = peapod_logs::read_log(&path, &options, &mut out, &stop) {
            let _ = tx.blocking_send(Bytes::from(format!("error reading log: {err}\n")));
        }
    });
    Ok(stream_response(rx, "text/plain"))
}

fn status_id(pod: &Pod, container: &str) -> Option<String> {
    container_status(pod, container).and_then(|s| s.container_id)
}

struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ----- exec ------------------------------------------------------------------------------

async fn pod_exec(
    State(ctx): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> ApiResult<Response> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let flag = |key: &str| value(key).is_some_and(|v| v == "true" || v == "1");
    let command: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let pod = find_pod(&ctx, &ns, &name)?;
    let container = pick_container(&pod, value("container").as_deref())?;
    let status = container_status(&pod, &container);
    let running = status
        .as_ref()
        .and_then(|s| s.state.as_ref())
        .is_some_and(|s| s.running.is_some());
    let id = status
        .and_then(|s| s.container_id)
        .and_then(|id| id.strip_prefix("peapod://").map(str::to_string));
    let (true, Some(id)) = (running, id) else {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: container not found (\"{container}\")"
        )));
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let client = ShimClient::new(&ctx.paths.pod_run_dir(&uid));
    let exec = ExecRequest {
        id,
        command,
        tty: flag("tty"),
        stdin: flag("stdin"),
    };
    if !wants_upgrade(request.headers()) {
        return Err(ApiError::bad_request(
            "exec needs a connection upgrade to peapod-exec/v1",
        ));
    }
    let mut shim = client
        .exec(exec)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let mut io = hyper_util::rt::TokioIo::new(upgraded);
                let _ = tokio::io::copy_bidirectional(&mut io, &mut shim).await;
            }
            Err(err) => tracing::warn!(%err, "exec upgrade failed"),
        }
    });
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [("connection", "Upgrade"), ("upgrade", "peapod-exec/v1")],
    )
        .into_response())
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("peapod-exec/v1"))
}

// ----- events ----------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EventParams {
    field_selector: Option<String>,
}

async fn list_all_events(
    State(ctx): State<Shared>,
    Query(params): Query<EventParams>,
) -> ApiResult<Response> {
    events_response(&ctx, None, params)
}

async fn list_events(
    State(ctx): State<Shared>,
    Path(ns): Path<String>,
    Query(params): Query<EventParams>,
) -> ApiResult<Response> {
    events_response(&ctx, Some(ns), params)
}

fn events_response(ctx: &Context, ns: Option<String>, params: EventParams) -> ApiResult<Response> {
    let uid = params
        .field_selector
        .as_deref()
        .and_then(|s| {
            s.split(',')
                .find_map(|term| term.strip_prefix("involvedObject.uid="))
        })
        .map(str::to_string);
    let events: Vec<Event> = ctx.store.list_events(ns.as_deref(), uid.as_deref())?;
    Ok(Json(json!({
        "apiVersion": "v1",
        "kind": "EventList",
        "metadata": {"resourceVersion": ctx.store.revision()?.to_string()},
        "items": events,
    }))
    .into_response())
}

// ----- images ----------------------------------------------------------------------------

fn image_json(image: &peapod_image::Image) -> Value {
    json!({
        "id": image.id,
        "names": image.names,
        "size": image.size,
        "layers": image.layers,
        "manifestDigest": image.manifest_digest,
        "repoDigest": image.repo_digest,
    })
}

fn image_error(err: peapod_image::ImageError) -> ApiError {
    let message = err.to_string();
    if matches!(err, peapod_image::ImageError::NotFound { .. }) {
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", message)
    } else {
        ApiError::bad_request(message)
    }
}

async fn list_images(State(ctx): State<Shared>) -> ApiResult<Json<Value>> {
    let images = ctx.images.list().map_err(image_error)?;
    Ok(Json(Value::Array(images.iter().map(image_json).collect())))
}

#[derive(Deserialize)]
struct LoadBody {
    path: std::path::PathBuf,
}

async fn load_images(
    State(ctx): State<Shared>,
    Json(body): Json<LoadBody>,
) -> ApiResult<Json<Value>> {
    let images = ctx.images.clone();
    let loaded = tokio::task::spawn_blocking(move || images.load(&body.path))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(image_error)?;
    Ok(Json(Value::Array(loaded.iter().map(image_json).collect())))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportBody {
    path: std::path::PathBuf,
    name: String,
    #[serde(default)]
    config: ImportConfig,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ImportConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Vec<String>,
    working_dir: Option<String>,
    user: Option<String>,
    stop_signal: Option<String>,
}

async fn import_image(
    State(ctx): State<Shared>,
    Json(body): Json<ImportBody>,
) -> ApiResult<Json<Value>> {
    let images = ctx.images.clone();
    let imported = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&body.path)
            .map_err(|e| ApiError::bad_request(format!("opening {}: {e}", body.path.display())))?;
        let config = peapod_image::ImageConfig {
            entrypoint: body.config.entrypoint,
            cmd: body.config.cmd,
            env: body.config.env,
            working_dir: body.config.working_dir,
            user: body.config.user,
            stop_signal: body.config.stop_signal,
        };
        images
            .import(&mut file, &body.name, config)
            .map_err(image_error)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(image_json(&imported)))
}

async fn remove_image(
    State(ctx): State<Shared>,
    Path(reference): Path<String>,
) -> ApiResult<Json<Value>> {
    let image = ctx.images.get(&reference).map_err(image_error)?;
    let pods: Vec<Pod> = ctx.store.list(None)?;
    let user = pods
        .iter()
        .find(|pod| images_in_use(std::slice::from_ref(pod), &ctx.images).contains(&image.id));
    if let Some(pod) = user {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "image {reference} is used by pod {}/{}",
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default()
            ),
        ));
    }
    let removed = ctx.images.remove(&reference).map_err(image_error)?;
    Ok(Json(image_json(&removed)))
}

#[derive(Deserialize)]
struct PullBody {
    reference: String,
}

/// Streams the pull's progress events, one JSON object a line, then one `done` line with the
/// image or one `error` line. A client that goes away leaves the pull running.
async fn pull_image(State(ctx): State<Shared>, Json(body): Json<PullBody>) -> ApiResult<Response> {
    let mut pull = ctx
        .image_manager
        .subscribe(&body.reference)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let reference = body.reference;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(step) = pull.next().await {
            let value = match step {
                Step::Event(event) => serde_json::to_value(&event).unwrap_or(Value::Null),
                Step::Done(outcome) => final_line(&reference, outcome),
            };
            let mut line = serde_json::to_vec(&value).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
    });
    Ok(stream_response(rx, "application/x-ndjson"))
}

fn final_line(reference: &str, outcome: Result<Pulled, FlightAborted>) -> Value {
    let failure = match outcome {
        Ok(Pulled {
            result: Ok(image), ..
        }) => return json!({"type": "done", "image": image_json(&image)}),
        Ok(Pulled {
            result: Err(failure),
            ..
        }) => failure,
        Err(source) => PullFailure::Aborted {
            reference: reference.to_string(),
            source,
        },
    };
    json!({"type": "error", "message": failure.to_string()})
}

/// Removes every image no pod in the store uses (crictl rmi --prune); returns them.
async fn prune_images(State(ctx): State<Shared>) -> ApiResult<Json<Value>> {
    let pods: Vec<Pod> = ctx.store.list(None)?;
    let images = ctx.images.clone();
    let removed = tokio::task::spawn_blocking(move || -> ApiResult<Vec<peapod_image::Image>> {
        let in_use = images_in_use(&pods, &images);
        let mut removed = Vec::new();
        for image in images.list().map_err(image_error)? {
            if in_use.contains(&image.id) {
                continue;
            }
            match images.remove(&image.id) {
                Ok(_) => removed.push(image),
                // Removed meanwhile (rmi, image GC): nothing left to prune.
                Err(peapod_image::ImageError::NotFound { .. }) => {}
                Err(err) => return Err(image_error(err)),
            }
        }
        Ok(removed)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(Value::Array(removed.iter().map(image_json).collect())))
}
