//! The agent's own routes beside the generic API server: pods/log (the kubelet's logs),
//! pods/exec, attach and portforward ([`super::streaming`]), the metrics API (`kubectl top`)
//! and peapod's image verbs under /apis/images.peapod.io/v1 (list, load, import, pull with
//! NDJSON progress, prune, remove). Every other path goes to [`ApiServer`], which serves each registered kind.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use k8s_openapi::api::core::v1::Pod;
use peapod_apis::core::v1::persistentvolumeclaim::admission::StorageAdmission;
use peapod_apis::core::v1::persistentvolumeclaim::resize::ResizeAdmission;
use peapod_apis::core::v1::pod::default_tolerations::DefaultTolerationSeconds;
use peapod_apis::core::v1::serviceaccount::admission::ServiceAccountAdmission;
use peapod_apis::core::v1::serviceaccount::token::TokenSigner;
use peapod_apis::networking::v1::ingress::admission::DefaultIngressClass;
use peapod_apis::scheduling::v1::priorityclass::admission::PriorityAdmission;
use peapod_apiserver::rbac::RbacAuthorizer;
use peapod_apiserver::status::ApiError;
use peapod_apiserver::ApiServer;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::kubelet::flight::{FlightAborted, Step};
use crate::kubelet::image_gc::images_in_use;
use crate::kubelet::images::{ImageManager, PullFailure, Pulled};
use crate::paths::Paths;

/// What the agent's own routes reach: the store they read pods from, the node's files and its
/// images (the kubelet, an API client, holds no store).
pub struct NodeApi {
    pub store: peapod_store::Store,
    pub paths: Paths,
    pub images: peapod_image::ImageStore,
    pub image_manager: Arc<ImageManager>,
    pub node_name: String,
}

pub type Shared = Arc<NodeApi>;

/// The generic API server over the agent's store, with every kind peapod serves (Services
/// given addresses and node ports from `services`, service account tokens signed by `signer`),
/// kube-apiserver's ServiceAccount admission and its RBAC authorizer.
pub fn api_server(
    ctx: &NodeApi,
    services: peapod_apis::ServiceNetwork,
    signer: Arc<TokenSigner>,
) -> Arc<ApiServer> {
    let node = peapod_apis::NodeInfo {
        name: ctx.node_name.clone(),
        addresses: super::node_addresses,
    };
    let kinds = peapod_apis::builtin_signing(node, services, signer);
    let server = ApiServer::new(kinds, ctx.store.clone());
    let rbac = RbacAuthorizer::new(ctx.store.clone());
    Arc::new(
        server
            .with_admission(Arc::new(ServiceAccountAdmission))
            .with_admission(Arc::new(StorageAdmission))
            .with_admission(Arc::new(ResizeAdmission))
            .with_admission(Arc::new(PriorityAdmission))
            .with_admission(Arc::new(DefaultTolerationSeconds))
            .with_admission(Arc::new(DefaultIngressClass))
            .with_authorizer(Arc::new(rbac)),
    )
}

/// The agent's API: its own routes first, then the generic API server for every other path.
pub fn router(ctx: Shared, api: Arc<ApiServer>) -> Router {
    Router::new()
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
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
        .route(
            "/apis/metrics.k8s.io/v1beta1/nodes",
            get(super::metrics::list_node_metrics),
        )
        .route(
            "/apis/metrics.k8s.io/v1beta1/nodes/{name}",
            get(super::metrics::get_node_metrics),
        )
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
        .merge(super::streaming::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            peapod_apiserver::authorize,
        ))
        .with_state(ctx)
        .merge(api.router())
}

type ApiResult<T> = Result<T, ApiError>;

// ----- pods ------------------------------------------------------------------------------

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

pub(super) fn find_pod(ctx: &NodeApi, ns: &str, name: &str) -> ApiResult<Pod> {
    ctx.store
        .get::<Pod>(ns, name)?
        .ok_or_else(|| ApiError::not_found("", "pods", name))
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
    since_seconds: Option<i64>,
    since_time: Option<String>,
    limit_bytes: Option<i64>,
}

impl LogParams {
    /// `sinceSeconds` or `sinceTime` (kube-apiserver refuses both at once) as a timestamp.
    fn since(&self) -> ApiResult<Option<jiff::Timestamp>> {
        match (self.since_seconds, self.since_time.as_deref()) {
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                "PodLogOptions is invalid: sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
            )),
            (Some(seconds), None) if seconds < 1 => Err(ApiError::bad_request(
                "PodLogOptions is invalid: sinceSeconds: Invalid value: must be greater than 0",
            )),
            (Some(seconds), None) => {
                Ok(Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(seconds)))
            }
            (None, Some(time)) => time.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("sinceTime: Invalid value: \"{time}\": not an RFC 3339 time"))
            }),
            (None, None) => Ok(None),
        }
    }

    fn limit_bytes(&self) -> ApiResult<Option<u64>> {
        match self.limit_bytes {
            Some(limit) if limit < 1 => Err(ApiError::bad_request(
                "PodLogOptions is invalid: limitBytes: Invalid value: must be greater than 0",
            )),
            limit => Ok(limit.map(|l| l as u64)),
        }
    }
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

pub(super) fn container_status(
    pod: &Pod,
    name: &str,
) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
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
        since: params.since()?,
        limit_bytes: params.limit_bytes()?,
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
