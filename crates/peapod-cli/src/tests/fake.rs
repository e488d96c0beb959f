//! A scripted agent on a temporary Unix socket: records every request and answers with
//! whatever the test's handler returns (full bodies, streamed bodies, or an exec upgrade).

use std::convert::Infallible;
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
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::frame;

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

/// Exec frames the fake received from the client.
pub type Frames = Arc<Mutex<Vec<(u8, Vec<u8>)>>>;

/// How the fake answers one request.
pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    Stream(mpsc::Receiver<Bytes>),
    /// 101, then: read client frames (into `received`) until one on `wait_for` arrives,
    /// then write `frames`.
    Upgrade {
        wait_for: Option<u8>,
        frames: Vec<u8>,
        received: Frames,
    },
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply::Full {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string().into_bytes(),
        }
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
    log.lock().unwrap().push(recorded.clone());
    let response = match handler(&recorded) {
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
        Reply::Upgrade {
            wait_for,
            frames,
            received,
        } => {
            tokio::spawn(async move {
                let mut io = TokioIo::new(on_upgrade.await.unwrap());
                read_until(&mut io, wait_for, &received).await;
                io.write_all(&frames).await.unwrap();
                io.flush().await.unwrap();
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "Upgrade")
                .header("upgrade", crate::exec::EXEC_PROTOCOL)
                .body(Full::new(Bytes::new()).boxed())
                .unwrap()
        }
    };
    Ok(response)
}

async fn read_until<R: tokio::io::AsyncRead + Unpin>(
    io: &mut R,
    channel: Option<u8>,
    received: &Mutex<Vec<(u8, Vec<u8>)>>,
) {
    let Some(channel) = channel else { return };
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = io.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        pending.extend_from_slice(&buf[..n]);
        let frames = frame::decode(&mut pending);
        let done = frames.iter().any(|(c, _)| *c == channel);
        received.lock().unwrap().extend(frames);
        if done {
            return;
        }
    }
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
