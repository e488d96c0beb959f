//! A scripted agent on a temporary Unix socket: records every request and answers with
//! whatever the test's handler returns (full bodies, streamed bodies, or an upgrade to a
//! streaming session negotiated and served by peapod-streams, as the agent's are).
//! As the API server would, it answers discovery itself (without recording or asking the
//! handler) and turns pod answers into Tables when the client asks for one.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use peapod_streams::negotiate::{negotiate, Negotiated, Service};
use peapod_streams::portforward::{self, Connections};
use peapod_streams::remotecommand::{self, Options};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// One request the fake agent saw.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

type Script<S> = Box<dyn FnOnce(S) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// How the fake answers one request.
pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    Stream(mpsc::Receiver<Bytes>),
    /// An exec or attach: the upgrade negotiated, then the script plays the server's side of
    /// the session, with the streams the request's query asks for.
    RemoteCommand(Script<remotecommand::Session>),
    /// A port-forward: the upgrade negotiated, then the script serves the connections the
    /// client opens.
    PortForward(Script<Connections>),
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply::Full {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn remote_command<F, Fut>(script: F) -> Self
    where
        F: FnOnce(remotecommand::Session) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Reply::RemoteCommand(Box::new(move |session| Box::pin(script(session))))
    }

    pub fn port_forward<F, Fut>(script: F) -> Self
    where
        F: FnOnce(Connections) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Reply::PortForward(Box::new(move |session| Box::pin(script(session))))
    }

    pub fn not_found(what: &str, name: &str) -> Self {
        Self::json(
            404,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": format!("{what} \"{name}\" not found"), "reason": "NotFound", "code": 404}),
        )
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

pub struct Fake {
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Fake {
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("peapod.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let log = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, log) = (handler.clone(), log.clone());
                let service = service_fn(move |req| answer(req, handler.clone(), log.clone()));
                tokio::spawn(
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades(),
                );
            }
        });
        Fake {
            _dir: dir,
            socket,
            requests,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn uris(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|r| format!("{} {}", r.method, r.uri))
            .collect()
    }
}

type ReplyBody = BoxBody<Bytes, Infallible>;

async fn answer(
    mut req: Request<Incoming>,
    handler: Handler,
    log: Arc<Mutex<Vec<Recorded>>>,
) -> Result<Response<ReplyBody>, Infallible> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body,
    };
    if let Some(document) = discovery(recorded.path()) {
        return Ok(Response::new(
            Full::new(Bytes::from(document.to_string())).boxed(),
        ));
    }
    log.lock().unwrap().push(recorded.clone());
    let response = match as_table(&recorded, handler(&recorded)) {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut builder = Response::builder().status(status);
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            builder.body(Full::new(Bytes::from(body)).boxed()).unwrap()
        }
        Reply::Stream(chunks) => Response::new(ChannelBody(chunks).boxed()),
        Reply::RemoteCommand(script) => {
            let options = stream_options(&recorded);
            switch(
                &recorded,
                on_upgrade,
                Service::RemoteCommand,
                move |io, negotiated| async move {
                    let session = remotecommand::accept(io, &negotiated, options).await;
                    script(session.expect("a remote-command session")).await
                },
            )
        }
        Reply::PortForward(script) => switch(
            &recorded,
            on_upgrade,
            Service::PortForward,
            move |io, negotiated| async move {
                let connections = portforward::accept(io, &negotiated, &[]).await;
                script(connections.expect("a port-forward session")).await
            },
        ),
    };
    Ok(response)
}

/// The streams a remote-command request's query asks for.
fn stream_options(request: &Recorded) -> Options {
    let query = request
        .uri
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    let flag = |name: &str| query.split('&').any(|pair| pair == format!("{name}=true"));
    Options {
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr") && !flag("tty"),
        tty: flag("tty"),
    }
}

/// Negotiates the upgrade as the agent does: refused as it refuses, or 101 and `session` on
/// the upgraded connection.
fn switch<F, Fut>(
    request: &Recorded,
    on_upgrade: OnUpgrade,
    service: Service,
    session: F,
) -> Response<ReplyBody>
where
    F: FnOnce(TokioIo<Upgraded>, Negotiated) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let method = request.method.parse().expect("an HTTP method");
    let negotiated = match negotiate(&method, &request.headers, service) {
        Ok(negotiated) => negotiated,
        Err(refused) => {
            let body = Full::new(Bytes::from(refused.message)).boxed();
            return Response::builder().status(refused.code).body(body).unwrap();
        }
    };
    let mut response = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (name, value) in negotiated.response_headers() {
        response = response.header(name, value);
    }
    tokio::spawn(async move {
        let io = TokioIo::new(on_upgrade.await.expect("the upgrade"));
        session(io, negotiated).await
    });
    response.body(Full::new(Bytes::new()).boxed()).unwrap()
}

/// The pod columns of the API server's Table (kubectl's printPod).
pub fn pod_columns() -> serde_json::Value {
    let column = |name: &str, priority: i32| {
        let format = if name == "Name" { "name" } else { "" };
        serde_json::json!({"name": name, "type": "string", "format": format,
                           "description": "", "priority": priority})
    };
    let mut columns: Vec<_> = ["Name", "Ready", "Status", "Restarts", "Age"]
        .map(|n| column(n, 0))
        .into();
    columns.extend(["IP", "Node", "Nominated Node", "Readiness Gates"].map(|n| column(n, 1)));
    columns.into()
}

/// Pods (a PodList or one pod) as the server's Table, rows with their partial metadata.
pub fn pod_table(answer: &serde_json::Value) -> serde_json::Value {
    let items = match answer.get("items").and_then(|i| i.as_array()) {
        Some(items) => items.clone(),
        None => vec![answer.clone()],
    };
    let rows: Vec<serde_json::Value> = items
        .iter()
        .map(|item| {
            let pod: k8s_openapi::api::core::v1::Pod =
                serde_json::from_value(item.clone()).unwrap();
            let cells = peapod_printers::pod_row(&pod, true, false, jiff::Timestamp::now());
            serde_json::json!({"cells": cells, "object": {"kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1", "metadata": item["metadata"]}})
        })
        .collect();
    serde_json::json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": answer["metadata"]["resourceVersion"]},
        "columnDefinitions": pod_columns(), "rows": rows})
}

/// A 2xx JSON pod answer to a request that asked for a Table, as a Table.
fn as_table(request: &Recorded, reply: Reply) -> Reply {
    let wants_table = request.header("accept").contains("as=Table");
    let Reply::Full {
        status,
        headers,
        body,
    } = reply
    else {
        return reply;
    };
    let answer = serde_json::from_slice::<serde_json::Value>(&body).ok();
    match answer {
        Some(answer)
            if wants_table
                && (200..300).contains(&status)
                && request.path().contains("/pods")
                && answer["kind"] != "Table" =>
        {
            Reply::json(status, pod_table(&answer))
        }
        _ => Reply::Full {
            status,
            headers,
            body,
        },
    }
}

/// One resource of aggregated discovery.
fn discovered(plural: &str, kind: &str, namespaced: bool, short: &[&str]) -> serde_json::Value {
    let scope = if namespaced { "Namespaced" } else { "Cluster" };
    let singular = kind.to_lowercase();
    serde_json::json!({"resource": plural, "responseKind": {"group": "", "version": "", "kind": kind},
        "scope": scope, "singularResource": singular, "shortNames": short,
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
}

/// The aggregated discovery of `/api` and `/apis`: what peapod serves.
fn discovery(path: &str) -> Option<serde_json::Value> {
    let group = |name: Option<&str>, version: &str, resources: Vec<serde_json::Value>| {
        let metadata = match name {
            Some(name) => serde_json::json!({"name": name}),
            None => serde_json::json!({}),
        };
        serde_json::json!({"metadata": metadata,
            "versions": [{"version": version, "resources": resources, "freshness": "Current"}]})
    };
    let groups = match path {
        "/api" => vec![group(
            None,
            "v1",
            vec![
                discovered("configmaps", "ConfigMap", true, &["cm"]),
                discovered("events", "Event", true, &["ev"]),
                discovered("namespaces", "Namespace", false, &["ns"]),
                discovered("nodes", "Node", false, &["no"]),
                discovered("pods", "Pod", true, &["po"]),
                discovered("secrets", "Secret", true, &[]),
                discovered("serviceaccounts", "ServiceAccount", true, &["sa"]),
            ],
        )],
        "/apis" => vec![group(
            Some("metrics.k8s.io"),
            "v1beta1",
            vec![discovered("pods", "PodMetrics", true, &[])],
        )],
        _ => return None,
    };
    Some(serde_json::json!({"kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": groups}))
}

/// A response body fed by the test, chunk by chunk.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// A writer tests can read back.
#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);

impl Buf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
