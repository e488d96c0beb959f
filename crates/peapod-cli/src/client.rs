//! HTTP/1.1 over the agent's Unix socket: one connection per request, Kubernetes `Status`
//! error bodies decoded into [`ApiError`], streamed bodies, and connection upgrades (the
//! streaming verbs' WebSocket and SPDY sessions).

use std::fmt;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::upgrade::Upgraded;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::net::UnixStream;

/// A failed API call as the server described it (a Kubernetes `Status`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    /// kubectl's `Error from server (REASON): MESSAGE`; an invalid object reads
    /// `The Pod "x" is invalid: ...` as kubectl prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason == "Invalid" {
            write!(f, "The {}", self.message)
        } else if self.reason.is_empty() {
            write!(f, "Error from server: {}", self.message)
        } else {
            write!(f, "Error from server ({}): {}", self.reason, self.message)
        }
    }
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }

    /// From an error response: its `Status` body, else the body text and the code's reason.
    pub fn from_response(status: StatusCode, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body).trim().to_string();
        let (reason, message, code) = match parse_status(body) {
            Some(s) => (s.reason, s.message, s.code),
            None => (None, Some(text).filter(|t| !t.is_empty()), None),
        };
        Self::new(status, code, reason, message)
    }

    /// From a `Status` body only (how client-go reads a refused upgrade).
    pub fn from_status_body(status: StatusCode, body: &[u8]) -> Option<Self> {
        let parsed = parse_status(body)?;
        Some(Self::new(
            status,
            parsed.code,
            parsed.reason,
            parsed.message,
        ))
    }

    fn new(
        status: StatusCode,
        code: Option<u16>,
        reason: Option<String>,
        message: Option<String>,
    ) -> Self {
        let code = code.filter(|c| *c != 0).unwrap_or(status.as_u16());
        Self {
            code,
            reason: reason
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| default_reason(code).to_string()),
            message: message.unwrap_or_else(|| default_message(status)),
        }
    }
}

#[derive(Deserialize)]
struct Status {
    kind: Option<String>,
    message: Option<String>,
    reason: Option<String>,
    code: Option<u16>,
}

fn parse_status(body: &[u8]) -> Option<Status> {
    serde_json::from_slice::<Status>(body)
        .ok()
        .filter(|s| s.kind.as_deref() == Some("Status"))
}

/// The `StatusReason` Kubernetes gives a bare HTTP code.
fn default_reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "the server could not find the requested resource".to_string(),
        other => format!(
            "an error on the server ({}) has prevented the request from succeeding",
            other.canonical_reason().unwrap_or("unknown")
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the peapod agent at {}: {source} (is \"peapod serve\" running?)", socket.display())]
    Unreachable {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("{method} {path}: {source}")]
    Http {
        method: Method,
        path: String,
        source: hyper::Error,
    },
    #[error("{path}: invalid request: {source}")]
    Request {
        path: String,
        source: hyper::http::Error,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{path}: decoding the agent's answer: {source}")]
    Decode {
        path: String,
        source: serde_json::Error,
    },
    /// An upgrade refused with something other than a `Status` (kubelet's plain-text
    /// answers), worded as client-go's SPDY upgrader words it.
    #[error("unable to upgrade connection: {0}")]
    UpgradeRefused(String),
}

impl ClientError {
    /// The server's error when this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(api) => Some(api),
            _ => None,
        }
    }
}

/// One request to the agent.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// A body with its content type.
    pub fn body(mut self, content_type: &'static str, body: Vec<u8>) -> Self {
        self.headers
            .push((CONTENT_TYPE.as_str(), content_type.into()));
        self.body = body;
        self
    }

    pub fn json(self, value: &serde_json::Value) -> Self {
        self.body("application/json", value.to_string().into_bytes())
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn into_request(self) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut builder = Request::builder()
            .method(self.method)
            .uri(&self.path)
            .header(HOST, "localhost");
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(Bytes::from(self.body)))
            .map_err(|source| ClientError::Request {
                path: self.path,
                source,
            })
    }
}

/// An answer whose body has not been read yet.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    method: Method,
    path: String,
    body: Incoming,
}

impl Reply {
    /// Itself when 2xx; else the error the body describes.
    pub async fn success(self) -> Result<Reply, ClientError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let status = self.status;
        let body = self.bytes().await?;
        Err(ApiError::from_response(status, &body).into())
    }

    pub async fn bytes(self) -> Result<Bytes, ClientError> {
        let (method, path) = (self.method, self.path);
        self.body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|source| ClientError::Http {
                method,
                path,
                source,
            })
    }

    /// A 2xx body decoded as JSON.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let reply = self.success().await?;
        let path = reply.path.clone();
        let body = reply.bytes().await?;
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode { path, source })
    }

    /// The next piece of a streamed body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        while let Some(frame) = self.body.frame().await {
            let frame = frame.map_err(|source| ClientError::Http {
                method: self.method.clone(),
                path: self.path.clone(),
                source,
            })?;
            if let Ok(data) = frame.into_data() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }
}

/// The agent at a Unix socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: PathBuf) -> Self {
        Self { socket }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn connect(&self, call: &Call) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Unreachable {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| http_error(call, source))?;
        // Connection errors also fail the pending request, which reports them.
        tokio::spawn(async move {
            let _ = connection.with_upgrades().await;
        });
        Ok(sender)
    }

    async fn exchange(&self, call: Call) -> Result<Response<Incoming>, ClientError> {
        let mut sender = self.connect(&call).await?;
        let (method, path) = (call.method.clone(), call.path.clone());
        let request = call.into_request()?;
        sender
            .send_request(request)
            .await
            .map_err(|source| ClientError::Http {
                method,
                path,
                source,
            })
    }

    /// Sends `call`; any status is returned.
    pub async fn send(&self, call: Call) -> Result<Reply, ClientError> {
        let (method, path) = (call.method.clone(), call.path.clone());
        let response = self.exchange(call).await?;
        let (parts, body) = response.into_parts();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            method,
            path,
            body,
        })
    }

    /// GET `path` and decode the 2xx JSON body.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Call::get(path)).await?.json().await
    }

    /// Sends `call`, an upgrade request (its headers say to what); on 101 returns the
    /// answer's headers and the raw connection. A refusal is the server's `Status`, else its
    /// text.
    pub async fn upgrade(&self, call: Call) -> Result<Upgrade, ClientError> {
        let (method, path) = (call.method.clone(), call.path.clone());
        let response = self.exchange(call).await?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(refused_upgrade(method, path, response).await);
        }
        let headers = response.headers().clone();
        let io = hyper::upgrade::on(response)
            .await
            .map_err(|source| ClientError::Http {
                method,
                path,
                source,
            })?;
        Ok(Upgrade {
            headers,
            io: TokioIo::new(io),
        })
    }
}

/// A connection the agent switched to another protocol.
#[derive(Debug)]
pub struct Upgrade {
    /// The headers of the `101 Switching Protocols` answer.
    pub headers: HeaderMap,
    pub io: TokioIo<Upgraded>,
}

async fn refused_upgrade(
    method: Method,
    path: String,
    response: Response<Incoming>,
) -> ClientError {
    let status = response.status();
    let reply = Reply {
        status,
        headers: HeaderMap::new(),
        method,
        path,
        body: response.into_body(),
    };
    let body = match reply.bytes().await {
        Ok(body) => body,
        Err(error) => return error,
    };
    match ApiError::from_status_body(status, &body) {
        Some(api) => api.into(),
        None => ClientError::UpgradeRefused(String::from_utf8_lossy(&body).trim().to_string()),
    }
}

fn http_error(call: &Call, source: hyper::Error) -> ClientError {
    ClientError::Http {
        method: call.method.clone(),
        path: call.path.clone(),
        source,
    }
}

/// The texts of `Warning` headers (`299 - "text"`), as kubectl prints them after `Warning: `.
pub fn warnings(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(hyper::header::WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(warning_text)
        .collect()
}

/// `299 - "text"` (RFC 7234 warn-code, agent, quoted text) → `text`; anything else verbatim.
fn warning_text(value: &str) -> String {
    let mut parts = value.splitn(3, ' ');
    let (Some(_code), Some(_agent), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return value.to_string();
    };
    let Some(quoted) = rest.strip_prefix('"') else {
        return value.to_string();
    };
    let mut text = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.extend(chars.next()),
            '"' => return text,
            c => text.push(c),
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_body_gives_reason_and_message() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"x\" not found","reason":"NotFound","code":404}"#;
        let e = ApiError::from_response(StatusCode::NOT_FOUND, body);
        assert_eq!(
            e.to_string(),
            r#"Error from server (NotFound): pods "x" not found"#
        );
        assert!(e.is_not_found());
    }

    #[test]
    fn plain_body_uses_the_code_reason() {
        let e = ApiError::from_response(
            StatusCode::BAD_REQUEST,
            b"a container name must be specified\n",
        );
        assert_eq!(
            e.to_string(),
            "Error from server (BadRequest): a container name must be specified"
        );
        let e = ApiError::from_response(StatusCode::NOT_FOUND, b"");
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): the server could not find the requested resource"
        );
        let e = ApiError::from_response(StatusCode::IM_A_TEAPOT, b"short and stout");
        assert_eq!(e.to_string(), "Error from server: short and stout");
    }

    #[test]
    fn warning_header_text_is_unquoted() {
        assert_eq!(
            warning_text(r#"299 - "unknown field \"spec.x\"""#),
            r#"unknown field "spec.x""#
        );
        assert_eq!(
            warning_text(r#"299 peapod "a b" "Mon, 01 Jan 2024 00:00:00 GMT""#),
            "a b"
        );
        assert_eq!(warning_text("garbage"), "garbage");
    }
}
