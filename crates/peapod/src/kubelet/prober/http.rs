//! httpGet for probes and lifecycle hooks, as kubelet sends it: its headers, one connection per
//! request (no keep-alive, no compression), HTTPS without certificate verification, same-host
//! redirects followed up to Go's limit, at most 10 KiB of body, Go-shaped error texts.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, CONNECTION, HOST, REFERER, USER_AGENT,
};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, HTTPHeader};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{go_quote, tcp, ProbeOutcome, PROBE_USER_AGENT};

/// kubelet reads at most this much of a response body (maxRespBodyLength).
pub const MAX_BODY: usize = 10 * 1024;
/// Go's http.Client gives up on the 10th redirect.
const MAX_REDIRECTS: usize = 10;

const HEADERS_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
const BODY_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout or context cancellation while reading body)";

/// The answer to a GET: its status and the start of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    /// At most [`MAX_BODY`] bytes, lossily decoded.
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The port is neither a number nor the name of one of the container's ports.
    #[error("{0}")]
    Port(String),
    #[error("no host to probe: the pod has no IP address")]
    NoHost,
    /// Go's url.Error: `Get "http://10.1.2.3:81/": dial tcp 10.1.2.3:81: connect: connection
    /// refused`.
    #[error("Get {}: {cause}", go_quote(.url))]
    Request { url: String, cause: String },
    /// Reading the body failed (Go reports the bare cause).
    #[error("{0}")]
    Body(String),
}

impl HttpError {
    /// The request could not even be built: a probe reports this as errored, not failed.
    pub fn is_setup(&self) -> bool {
        matches!(self, HttpError::Port(_) | HttpError::NoHost)
    }
}

/// kubelet's http prober verdict: 2xx succeeds, 3xx (a redirect not followed) warns, anything
/// else fails without the body.
pub fn probe_outcome(answer: &HttpAnswer) -> ProbeOutcome {
    match answer.status {
        200..=299 => ProbeOutcome::Success,
        300..=399 => ProbeOutcome::Warning(format!(
            "Probe terminated redirects, Response body: {}",
            answer.body
        )),
        code => ProbeOutcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
    }
}

/// GET with kubelet's headers (User-Agent kube-probe/1.33 unless set, Accept */* unless set,
/// user headers added, Host header honoured), HTTPS without certificate verification, same-host
/// redirects followed up to 10, whole request bounded by `timeout` when Some.
pub async fn get(
    action: &HTTPGetAction,
    container: &Container,
    pod_ip: Option<&str>,
    timeout: Option<Duration>,
) -> Result<HttpAnswer, HttpError> {
    get_as(PROBE_USER_AGENT, action, container, pod_ip, timeout).await
}

/// [`get`] with another default User-Agent (lifecycle hooks send
/// [`super::LIFECYCLE_USER_AGENT`]).
pub async fn get_as(
    user_agent: &str,
    action: &HTTPGetAction,
    container: &Container,
    pod_ip: Option<&str>,
    timeout: Option<Duration>,
) -> Result<HttpAnswer, HttpError> {
    let port = resolve_port(&action.port, container).map_err(HttpError::Port)?;
    let host = action
        .host
        .as_deref()
        .filter(|h| !h.is_empty())
        .or(pod_ip)
        .ok_or(HttpError::NoHost)?;
    let scheme = action
        .scheme
        .as_deref()
        .unwrap_or("http")
        .to_ascii_lowercase();
    let url = Url::new(
        scheme,
        host,
        port,
        action.path.as_deref().unwrap_or_default(),
    );
    let (headers, host_override) = request_headers(
        action.http_headers.as_deref().unwrap_or_default(),
        user_agent,
    );
    let deadline = timeout.map(|t| Instant::now() + t);
    fetch(url, &headers, host_override, deadline).await
}

/// A port by number or by the name of one of the container's ports (ResolveContainerPort).
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()));
            match named {
                Some(p) => i64::from(p.container_port),
                None => go_atoi(name)?,
            }
        }
    };
    u16::try_from(number)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid port number: {number}"))
}

/// Go's strconv.Atoi with its error text.
fn go_atoi(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|err| {
        let why = match err.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {}: {why}", go_quote(s))
    })
}

/// kubelet's newHeader: user headers added, then User-Agent and `Accept: */*` unless the user
/// set them (an empty user Accept removes it). A user Host header becomes the request's Host.
fn request_headers(user: &[HTTPHeader], user_agent: &str) -> (HeaderMap, Option<String>) {
    let mut headers = HeaderMap::new();
    for header in user {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_str(&header.value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(user_agent).expect("ascii agent"),
        );
    } else if headers.get(USER_AGENT).is_some_and(|v| v.is_empty()) {
        // Go sends no User-Agent at all when it is set empty.
        headers.remove(USER_AGENT);
    }
    if !headers.contains_key(ACCEPT) {
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    } else if headers.get(ACCEPT).is_some_and(|v| v.is_empty()) {
        headers.remove(ACCEPT);
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    headers.remove(HOST);
    (headers, host)
}

/// An http(s) URL as Go's url.URL prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    scheme: String,
    /// Without brackets for IPv6.
    host: String,
    /// None when the URL names no port (a redirect to `http://host/`).
    port: Option<u16>,
    /// Path and query, as written.
    target: String,
}

impl Url {
    /// kubelet's formatURL: the path parsed as a reference, so `?query` works.
    fn new(scheme: String, host: &str, port: u16, path: &str) -> Url {
        let path = path.split('#').next().unwrap_or_default();
        let target = if path.is_empty() || path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Url {
            scheme,
            host: host.to_string(),
            port: Some(port),
            target,
        }
    }

    fn port(&self) -> u16 {
        self.port
            .unwrap_or(if self.scheme == "https" { 443 } else { 80 })
    }

    /// host[:port], IPv6 bracketed: the Host header's default.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }

    /// The request line's target: never empty.
    fn request_target(&self) -> &str {
        if self.target.is_empty() {
            "/"
        } else {
            &self.target
        }
    }

    /// A Location header resolved against this URL (RFC 3986 reference resolution, without
    /// dot-segment removal).
    fn resolve(&self, location: &str) -> Result<Url, String> {
        let location = location.split('#').next().unwrap_or_default();
        if let Some((scheme, rest)) = split_scheme(location) {
            let rest = rest
                .strip_prefix("//")
                .ok_or_else(|| format!("missing host in {}", go_quote(location)))?;
            return parse_authority(scheme.to_ascii_lowercase(), rest);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return parse_authority(self.scheme.clone(), rest);
        }
        let path = self.target.split('?').next().unwrap_or_default();
        let target = if location.starts_with('/') {
            location.to_string()
        } else if location.is_empty() {
            self.target.clone()
        } else if location.starts_with('?') {
            format!("{path}{location}")
        } else {
            let dir = path.rfind('/').map(|i| &path[..=i]).unwrap_or("/");
            format!("{dir}{location}")
        };
        Ok(Url {
            target,
            ..self.clone()
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority(), self.target)
    }
}

/// `scheme:rest` when `s` starts with a URL scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then(|| (scheme, &s[colon + 1..]))
}

/// `host[:port][/path][?query]` after `scheme://`.
fn parse_authority(scheme: String, rest: &str) -> Result<Url, String> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let target = if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_string()
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let close = bracketed
            .find(']')
            .ok_or_else(|| format!("missing ']' in host {}", go_quote(authority)))?;
        (&bracketed[..close], &bracketed[close + 1..])
    } else {
        match authority.rfind(':') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        }
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        Some("") => None,
        Some(digits) => Some(
            digits
                .parse::<u16>()
                .map_err(|_| format!("invalid port {} after host", go_quote(port)))?,
        ),
        None => return Err(format!("invalid port {} after host", go_quote(port))),
    };
    Ok(Url {
        scheme,
        host: host.to_string(),
        port,
        target,
    })
}

/// The request and its same-host redirects (Go's client with kubelet's CheckRedirect).
async fn fetch(
    first: Url,
    headers: &HeaderMap,
    host_override: Option<String>,
    deadline: Option<Instant>,
) -> Result<HttpAnswer, HttpError> {
    let mut url = first.clone();
    let mut host = host_override.clone().unwrap_or_else(|| url.authority());
    let mut referer: Option<String> = None;
    let mut hops = 0;
    loop {
        let mut headers = headers.clone();
        if let Some(referer) = referer
            .as_deref()
            .and_then(|r| HeaderValue::from_str(r).ok())
        {
            headers.insert(REFERER, referer);
        }
        let sent = bounded(deadline, send_one(&url, headers, &host)).await;
        let (response, connection) = sent
            .unwrap_or_else(|| Err(HEADERS_TIMEOUT.to_string()))
            .map_err(|cause| HttpError::Request {
                url: url.to_string(),
                cause,
            })?;
        let Some(location) = redirect_location(&response) else {
            return read_answer(response, connection, deadline).await;
        };
        let next = url.resolve(&location).map_err(|e| HttpError::Request {
            url: url.to_string(),
            cause: format!(
                "failed to parse Location header {}: {e}",
                go_quote(&location)
            ),
        })?;
        if next.host != first.host {
            return read_answer(response, connection, deadline).await;
        }
        hops += 1;
        if hops >= MAX_REDIRECTS {
            return Err(HttpError::Request {
                url: location,
                cause: format!("stopped after {MAX_REDIRECTS} redirects"),
            });
        }
        // Go keeps a caller's Host header only through relative redirects.
        host = match (&host_override, split_scheme(&location)) {
            (Some(custom), None) => custom.clone(),
            _ => next.authority(),
        };
        if !(url.scheme == "https" && next.scheme == "http") {
            referer = Some(url.to_string());
        }
        url = next;
    }
}

/// Runs `work` until `deadline`; None when it passed first.
async fn bounded<T>(
    deadline: Option<Instant>,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await.ok(),
        None => Some(work.await),
    }
}

/// The Location of a redirect Go's client follows (301, 302, 303, 307, 308 with a Location).
fn redirect_location(response: &Response<Incoming>) -> Option<String> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    response
        .headers()
        .get(hyper::header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|l| !l.is_empty())
}

async fn read_answer(
    response: Response<Incoming>,
    connection: Connection,
    deadline: Option<Instant>,
) -> Result<HttpAnswer, HttpError> {
    let status = response.status().as_u16();
    let body = bounded(deadline, read_body(response.into_body()))
        .await
        .unwrap_or_else(|| Err(BODY_TIMEOUT.to_string()))
        .map_err(HttpError::Body)?;
    drop(connection);
    Ok(HttpAnswer { status, body })
}

/// Up to [`MAX_BODY`] bytes of the body; the rest is never read.
async fn read_body(mut body: Incoming) -> Result<String, String> {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|e| hyper_cause(&e))?;
        if let Some(data) = frame.data_ref() {
            let room = MAX_BODY - bytes.len();
            bytes.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The task driving one HTTP/1 connection, stopped when dropped.
struct Connection(tokio::task::JoinHandle<()>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.abort();
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One request on a fresh connection; Err is the cause in Go's words.
async fn send_one(
    url: &Url,
    mut headers: HeaderMap,
    host: &str,
) -> Result<(Response<Incoming>, Connection), String> {
    let io: Box<dyn Io> = match url.scheme.as_str() {
        "http" => Box::new(connect(url).await?),
        "https" => Box::new(tls_connect(connect(url).await?, &url.host).await?),
        other => return Err(format!("unsupported protocol scheme {}", go_quote(other))),
    };
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| hyper_cause(&e))?;
    let connection = Connection(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let host = HeaderValue::from_str(host)
        .map_err(|_| format!("invalid Host header {}", go_quote(host)))?;
    headers.insert(HOST, host);
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    let mut request = Request::get(url.request_target())
        .body(Empty::<Bytes>::new())
        .map_err(|e| {
            format!(
                "invalid request target {}: {e}",
                go_quote(url.request_target())
            )
        })?;
    *request.headers_mut() = headers;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| hyper_cause(&e))?;
    Ok((response, connection))
}

async fn connect(url: &Url) -> Result<TcpStream, String> {
    tcp::dial(&url.host, url.port(), None)
        .await
        .map_err(|e| e.text)
}

/// Go's words for a failed exchange: a connection closed without an answer is `EOF`.
fn hyper_cause(err: &hyper::Error) -> String {
    if err.is_incomplete_message() {
        return "EOF".into();
    }
    let io = std::error::Error::source(err).and_then(|s| s.downcast_ref::<std::io::Error>());
    match io {
        Some(io) if io.raw_os_error().is_some() => format!("read: {}", tcp::go_errno_text(io)),
        _ => err.to_string(),
    }
}

async fn tls_connect(
    stream: TcpStream,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("tls: invalid server name {}", go_quote(host)))?;
    tokio_rustls::TlsConnector::from(tls_config())
        .connect(name, stream)
        .await
        .map_err(|err| tls_cause(&err))
}

fn tls_cause(err: &std::io::Error) -> String {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            "http: server gave HTTP response to HTTPS client".into()
        }
        Some(tls) => format!("tls: {tls}"),
        None if err.raw_os_error().is_some() => format!("read: {}", tcp::go_errno_text(err)),
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => "EOF".into(),
        None => err.to_string(),
    }
}

/// TLS as kubelet's probes use it: InsecureSkipVerify, no client certificate.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let config = peapod_tls::insecure_client_config()
                .expect("the default provider supports the default TLS versions");
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    /// A self-signed P-256 certificate (CN peapod-probe-test); probes never verify it.
    const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBjzCCATWgAwIBAgIUWVNq/QoSAmMil6C270RCX+UEhUgwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRcGVhcG9kLXByb2JlLXRlc3QwIBcNMjYxMTIyMTY1NzM1WhgP
MjEyNjEwMjkxNjU3MzVaMBwxGjAYBgNVBAMMEXBlYXBvZC1wcm9iZS10ZXN0MFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEVVkXxfxlrKPAxdfCCZxOJYgdll7BAG1t
xYFZYXoyY/blOGpUuyvWQqly+8p6cGfRnRQLXjjzafhg6jGNSg2IdKNTMFEwHQYD
VR0OBBYEFOdeou3uGCyovPQa7dYxoKuTfLMwMB8GA1UdIwQYMBaAFOdeou3uGCyo
vPQa7dYxoKuTfLMwMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIh
APXEFyPzE4Mnx2XOdHwd5jNkMvcKb4KkmXyNsiI47W9VAiBwIt8b5Zpl540wvDPJ
QDDjC46mjVKhd7L9fhMwR0cF2A==
-----END CERTIFICATE-----
";
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg44sl3xdPQswk7Fu2
9TzJBv7aEF6XZcay3Jujs+IBowWhRANCAARVWRfF/GWso8DF18IJnE4liB2WXsEA
bW3FgVlhejJj9uU4alS7K9ZCqXL7ynpwZ9GdFAteOPNp+GDqMY1KDYh0
-----END PRIVATE KEY-----
";

    /// Answers like agnhost's netexec: /healthz 200, /fail 500, /redirect?loc=<url> 302,
    /// /loop endless same-host redirects, /headers echoes the request head, /big 20 KiB,
    /// /slow answers after 5 s.
    async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let query = request.uri().query().unwrap_or_default().to_string();
        let answer = |status: u16, body: String| {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
            response
        };
        let response = match request.uri().path() {
            "/healthz" => answer(200, "ok".into()),
            "/fail" => answer(500, "secret details".into()),
            "/redirect" => {
                let loc = form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "loc")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let mut response = answer(302, format!("<a href=\"{loc}\">Found</a>.\n\n"));
                response.headers_mut().insert(
                    hyper::header::LOCATION,
                    HeaderValue::from_str(&loc).unwrap(),
                );
                response
            }
            "/loop" => {
                let mut response = answer(302, String::new());
                let next = query.parse::<u32>().unwrap_or(0) + 1;
                let loc = HeaderValue::from_str(&format!("/loop?{next}")).unwrap();
                response.headers_mut().insert(hyper::header::LOCATION, loc);
                response
            }
            "/headers" => {
                let mut lines: Vec<String> = request
                    .headers()
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
                    .collect();
                lines.sort();
                answer(200, lines.join("\n"))
            }
            "/big" => answer(200, "x".repeat(20 * 1024)),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                answer(200, String::new())
            }
            _ => answer(404, String::new()),
        };
        Ok(response)
    }

    async fn serve_http() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(route)),
                );
            }
        });
        addr
    }

    async fn serve_https() -> SocketAddr {
        let cert = CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service_fn(route))
                            .await;
                    }
                });
            }
        });
        addr
    }

    fn action(value: serde_json::Value) -> HTTPGetAction {
        serde_json::from_value(value).unwrap()
    }

    fn container() -> Container {
        serde_json::from_value(serde_json::json!({
            "name": "web",
            "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090}]
        }))
        .unwrap()
    }

    async fn probe(value: serde_json::Value) -> Result<HttpAnswer, HttpError> {
        get(
            &action(value),
            &container(),
            Some("127.0.0.1"),
            Some(Duration::from_secs(1)),
        )
        .await
    }

    #[test]
    fn ports_resolve_by_number_or_name() {
        let c = container();
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::String("81".into()), &c), Ok(81));
        assert_eq!(
            resolve_port(&IntOrString::String("web".into()), &c),
            Err("strconv.Atoi: parsing \"web\": invalid syntax".into())
        );
        assert_eq!(
            resolve_port(&IntOrString::Int(0), &c),
            Err("invalid port number: 0".into())
        );
        assert_eq!(
            resolve_port(&IntOrString::String("70000".into()), &c),
            Err("invalid port number: 70000".into())
        );
        assert_eq!(
            resolve_port(&IntOrString::String("99999999999999999999".into()), &c),
            Err("strconv.Atoi: parsing \"99999999999999999999\": value out of range".into())
        );
    }

    #[test]
    fn headers_follow_kubelets_defaults() {
        let header = |name: &str, value: &str| HTTPHeader {
            name: name.into(),
            value: value.into(),
        };
        let (headers, host) = request_headers(&[], PROBE_USER_AGENT);
        assert_eq!(headers[USER_AGENT], "kube-probe/1.33");
        assert_eq!(headers[ACCEPT], "*/*");
        assert_eq!(host, None);
        let user = [
            header("user-agent", "mine"),
            header("X-Custom", "a"),
            header("X-Custom", "b"),
            header("Accept", ""),
            header("Host", "example.com"),
        ];
        let (headers, host) = request_headers(&user, PROBE_USER_AGENT);
        assert_eq!(headers[USER_AGENT], "mine");
        assert_eq!(headers.get_all("x-custom").iter().count(), 2);
        assert!(!headers.contains_key(ACCEPT));
        assert!(!headers.contains_key(HOST));
        assert_eq!(host.as_deref(), Some("example.com"));
    }

    #[test]
    fn urls_print_and_resolve_like_go() {
        let url = Url::new("http".into(), "10.1.2.3", 81, "redirect?loc=%2Fhealthz");
        assert_eq!(
            url.to_string(),
            "http://10.1.2.3:81/redirect?loc=%2Fhealthz"
        );
        let v6 = Url::new("https".into(), "fd00::1", 443, "/");
        assert_eq!(v6.to_string(), "https://[fd00::1]:443/");
        let base = Url::new("http".into(), "10.1.2.3", 81, "/a/b?x=1");
        assert_eq!(
            base.resolve("/healthz").unwrap().to_string(),
            "http://10.1.2.3:81/healthz"
        );
        assert_eq!(
            base.resolve("c").unwrap().to_string(),
            "http://10.1.2.3:81/a/c"
        );
        assert_eq!(
            base.resolve("?y=2").unwrap().to_string(),
            "http://10.1.2.3:81/a/b?y=2"
        );
        let other = base.resolve("http://0.0.0.0/").unwrap();
        assert_eq!(
            (other.host.as_str(), other.port(), other.target.as_str()),
            ("0.0.0.0", 80, "/")
        );
        assert_eq!(other.to_string(), "http://0.0.0.0/");
        let relative = base.resolve("//10.1.2.3:90?q").unwrap();
        assert_eq!(relative.to_string(), "http://10.1.2.3:90/?q");
        assert!(base.resolve("http://host:port/").is_err());
    }

    #[test]
    fn status_codes_map_to_outcomes() {
        let answer = |status: u16| HttpAnswer {
            status,
            body: "body".into(),
        };
        assert_eq!(probe_outcome(&answer(200)), ProbeOutcome::Success);
        assert_eq!(probe_outcome(&answer(204)), ProbeOutcome::Success);
        assert_eq!(
            probe_outcome(&answer(302)),
            ProbeOutcome::Warning("Probe terminated redirects, Response body: body".into())
        );
        assert_eq!(
            probe_outcome(&answer(500)),
            ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        assert_eq!(
            probe_outcome(&answer(101)),
            ProbeOutcome::Failure("HTTP probe failed with statuscode: 101".into())
        );
    }

    #[tokio::test]
    async fn gets_status_and_body() {
        let addr = serve_http().await;
        let ok = probe(serde_json::json!({"path": "/healthz", "port": addr.port()}))
            .await
            .unwrap();
        assert_eq!(
            ok,
            HttpAnswer {
                status: 200,
                body: "ok".into()
            }
        );
        let fail = probe(serde_json::json!({"path": "/fail", "port": addr.port()}))
            .await
            .unwrap();
        assert_eq!(fail.status, 500);
        let big = probe(serde_json::json!({"path": "/big", "port": addr.port()}))
            .await
            .unwrap();
        assert_eq!(big.body.len(), MAX_BODY);
    }

    #[tokio::test]
    async fn sends_kubelets_headers() {
        let addr = serve_http().await;
        let port = addr.port();
        let answer = probe(serde_json::json!({"path": "/headers", "port": port,
            "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}))
        .await
        .unwrap();
        let expected = format!(
            "accept: */*\nconnection: close\nhost: 127.0.0.1:{port}\nuser-agent: kube-probe/1.33\nx-probe: yes"
        );
        assert_eq!(answer.body, expected);
        let hooked = get_as(
            crate::kubelet::prober::LIFECYCLE_USER_AGENT,
            &action(serde_json::json!({"path": "/headers", "port": port,
                "httpHeaders": [{"name": "Host", "value": "example.com"}]})),
            &container(),
            Some("127.0.0.1"),
            None,
        )
        .await
        .unwrap();
        assert!(
            hooked.body.contains("host: example.com\n"),
            "{}",
            hooked.body
        );
        assert!(
            hooked.body.contains("user-agent: kube-lifecycle/1.33"),
            "{}",
            hooked.body
        );
    }

    #[tokio::test]
    async fn follows_same_host_redirects_only() {
        let addr = serve_http().await;
        let local =
            probe(serde_json::json!({"path": "/redirect?loc=%2Fhealthz", "port": addr.port()}))
                .await
                .unwrap();
        assert_eq!(
            local,
            HttpAnswer {
                status: 200,
                body: "ok".into()
            }
        );
        let foreign = probe(serde_json::json!({
            "path": "/redirect?loc=http%3A%2F%2F0.0.0.0%2F", "port": addr.port()}))
        .await
        .unwrap();
        assert_eq!(foreign.status, 302);
        assert_eq!(
            probe_outcome(&foreign),
            ProbeOutcome::Warning(
                "Probe terminated redirects, Response body: <a href=\"http://0.0.0.0/\">Found</a>.\n\n"
                    .into()
            )
        );
    }

    #[tokio::test]
    async fn stops_after_ten_redirects() {
        let addr = serve_http().await;
        let err = probe(serde_json::json!({"path": "/loop", "port": addr.port()}))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Get \"/loop?10\": stopped after 10 redirects"
        );
        assert!(!err.is_setup());
    }

    #[tokio::test]
    async fn connection_refused_reads_like_go() {
        let port = crate::kubelet::prober::tests::closed_port();
        let err = probe(serde_json::json!({"port": port, "path": "/"}))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Get \"http://127.0.0.1:{port}/\": dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let err = probe(serde_json::json!({"port": port, "path": "/"}))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(
            err.to_string(),
            format!("Get \"http://127.0.0.1:{port}/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")
        );
        drop(listener);
        let addr = serve_http().await;
        let slow = probe(serde_json::json!({"port": addr.port(), "path": "/slow"}))
            .await
            .unwrap_err();
        assert!(
            slow.to_string().contains("Client.Timeout exceeded"),
            "{slow}"
        );
    }

    #[tokio::test]
    async fn https_skips_certificate_verification() {
        let addr = serve_https().await;
        let ok =
            probe(serde_json::json!({"scheme": "HTTPS", "path": "/healthz", "port": addr.port()}))
                .await
                .unwrap();
        assert_eq!(
            ok,
            HttpAnswer {
                status: 200,
                body: "ok".into()
            }
        );
        let plain = serve_http().await;
        let err = probe(serde_json::json!({"scheme": "HTTPS", "path": "/", "port": plain.port()}))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Get \"https://127.0.0.1:{}/\": http: server gave HTTP response to HTTPS client",
                plain.port()
            )
        );
    }

    #[tokio::test]
    async fn setup_errors_are_not_failures() {
        let err = probe(serde_json::json!({"port": "metrics"}))
            .await
            .unwrap_err();
        assert!(err.is_setup());
        let no_ip = get(
            &action(serde_json::json!({"port": 80})),
            &container(),
            None,
            None,
        )
        .await;
        assert!(matches!(no_ip, Err(HttpError::NoHost)));
    }
}
