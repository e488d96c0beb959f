//! The reverse proxy: HTTP/1.1 and HTTP/2 (h2c by prior knowledge, h2 by ALPN) from clients,
//! each request routed by [`crate::routes`] to a ready endpoint of its Service, bodies
//! streamed both ways, Upgrade (WebSocket) tunnelled, WebSockets over HTTP/2 (RFC 8441's
//! extended CONNECT) tunnelled to an HTTP/1.1 Upgrade, hop-by-hop headers dropped and
//! X-Forwarded-For/-Proto/-Host/-Port and X-Real-IP set as ingress-nginx sets them. Errors
//! answer with ingress-nginx's pages: 404 without a rule, 503 without a ready endpoint, 502
//! when no endpoint accepts the connection, 504 when the backend is too slow. A client gets
//! `header_read` to send its request head (slowloris cannot hold the agent).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::backends::{Backends, RoundRobin};
use crate::routes::{Route, RouteTable, Target};

mod pool;
mod upstream;

pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// How long the proxy waits on clients and backends.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// For a client's request head (and TLS handshake).
    pub header_read: Duration,
    /// For a backend's connection (nginx's proxy-connect-timeout).
    pub connect: Duration,
    /// For a backend's response head (nginx's proxy-read-timeout).
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(60),
            connect: Duration::from_secs(5),
            response: Duration::from_secs(60),
        }
    }
}

/// What the proxy routes with: the latest routing table and backends.
pub struct Snapshot {
    pub routes: RouteTable,
    pub backends: Backends,
}

/// The proxy's state, shared by every connection.
pub struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    round_robin: RoundRobin,
    connections: pool::Pool,
    timeouts: Timeouts,
    https_port: Option<u16>,
}

impl Shared {
    pub fn new(timeouts: Timeouts, https_port: Option<u16>) -> Shared {
        let empty = Snapshot {
            routes: RouteTable::default(),
            backends: Backends::default(),
        };
        Shared {
            snapshot: RwLock::new(Arc::new(empty)),
            round_robin: RoundRobin::default(),
            connections: pool::Pool::default(),
            timeouts,
            https_port,
        }
    }

    pub fn publish(&self, snapshot: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Who sent a request, and over what.
#[derive(Clone, Copy)]
struct Client {
    peer: SocketAddr,
    local: SocketAddr,
    tls: bool,
}

/// Serves connections from `listener` until the task is dropped, over TLS when `tls` is set.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(%err, "ingress accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let client = Client {
            peer,
            local,
            tls: tls.is_some(),
        };
        tokio::spawn(connection(stream, client, shared.clone(), tls.clone()));
    }
}

async fn connection(
    stream: TcpStream,
    client: Client,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) {
    let limit = shared.timeouts.header_read;
    let Some(acceptor) = tls else {
        let Ok(Ok(http2)) = tokio::time::timeout(limit, sniff_http2(&stream)).await else {
            return;
        };
        return serve_http(stream, http2, client, shared).await;
    };
    let Ok(Ok(stream)) = tokio::time::timeout(limit, acceptor.accept(stream)).await else {
        return;
    };
    let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    serve_http(stream, http2, client, shared).await;
}

/// Waits for the start of a request: HTTP/2's preface or an HTTP/1 request line.
async fn sniff_http2(stream: &TcpStream) -> std::io::Result<bool> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0";
    let mut buf = [0u8; 14];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if !PREFACE.starts_with(&buf[..n]) {
            return Ok(false);
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn serve_http<S>(stream: S, http2: bool, client: Client, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let header_read = shared.timeouts.header_read;
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(request, client, shared).await) }
    });
    let result = if http2 {
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .enable_connect_protocol()
            .serve_connection(io, service)
            .await
    } else {
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read)
            .serve_connection(io, service)
            .with_upgrades()
            .await
    };
    if let Err(err) = result {
        tracing::debug!(%err, peer = %client.peer, "ingress connection");
    }
}

async fn handle(
    request: Request<Incoming>,
    client: Client,
    shared: Arc<Shared>,
) -> Response<ProxyBody> {
    let host = request_host(&request);
    let snapshot = shared.current();
    let Some(route) = snapshot.routes.find(&host, request.uri().path()) else {
        return page(StatusCode::NOT_FOUND);
    };
    if !client.tls && route.options.ssl_redirect && snapshot.routes.has_tls(&host) {
        if let Some(port) = shared.https_port {
            return redirect_to_https(&host, port, request.uri());
        }
    }
    let Target::Service { name, port } = &route.target else {
        return page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let addresses = snapshot.backends.endpoints(&route.namespace, name, port);
    if addresses.is_empty() {
        return page(StatusCode::SERVICE_UNAVAILABLE);
    }
    let backend = format!("{}/{name}/{port:?}", route.namespace);
    let ordered = shared.round_robin.order(&backend, &addresses);
    let request = prepare(request, route, &host, client);
    let protocol = route.options.backend_protocol;
    let connections = &shared.connections;
    upstream::forward(request, &ordered, protocol, shared.timeouts, connections).await
}

/// The request's host, lowercase and without port: the Host header, else the URI's
/// authority (HTTP/2).
fn request_host<B>(request: &Request<B>) -> String {
    let from_header = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let authority = from_header.or_else(|| request.uri().authority().map(|a| a.as_str()));
    strip_port(authority.unwrap_or_default()).to_ascii_lowercase()
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Marks a request that came as an HTTP/2 extended CONNECT for a WebSocket (RFC 8441): the
/// backend gets an HTTP/1.1 Upgrade, the client a 200 once the backend switched.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExtendedConnect;

fn is_websocket_connect<B>(request: &Request<B>) -> bool {
    request.method() == Method::CONNECT
        && request
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
}

/// An extended CONNECT as the HTTP/1.1 handshake RFC 6455 asks for: GET, a fresh
/// Sec-WebSocket-Key, the version (13) when the client named none.
fn as_websocket_upgrade<B>(request: &mut Request<B>) {
    *request.method_mut() = Method::GET;
    let extensions = request.extensions_mut();
    extensions.remove::<hyper::ext::Protocol>();
    extensions.insert(ExtendedConnect);
    let headers = request.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_KEY, websocket_key());
    headers
        .entry(header::SEC_WEBSOCKET_VERSION)
        .or_insert(HeaderValue::from_static("13"));
}

/// A Sec-WebSocket-Key: 16 random bytes in base64, always a valid header value.
fn websocket_key() -> HeaderValue {
    use base64::Engine;
    let mut nonce = [0u8; 16];
    let random = rustls::crypto::aws_lc_rs::default_provider().secure_random;
    // aws-lc's generator does not fail; a fixed nonce would still make a valid handshake.
    let _ = random.fill(&mut nonce);
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    HeaderValue::from_str(&key).unwrap_or(HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA=="))
}

/// The request as the backend gets it: its path rewritten, hop-by-hop headers dropped (the
/// upgrade ones kept for an upgrade), the forwarding headers set, HTTP/1.1 with a Host.
fn prepare(
    mut request: Request<Incoming>,
    route: &Route,
    host: &str,
    client: Client,
) -> Request<Incoming> {
    let path = route.upstream_path(request.uri().path());
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let original_host = request.headers().get(header::HOST).cloned().or_else(|| {
        request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let upgrade = upgrade_protocol(request.headers());
    let websocket_connect = is_websocket_connect(&request);
    let headers = request.headers_mut();
    remove_hop_by_hop(headers);
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
    if websocket_connect {
        as_websocket_upgrade(&mut request);
    }
    let headers = request.headers_mut();
    if let Some(value) = original_host {
        headers.insert(header::HOST, value);
    }
    let peer_ip = client.peer.ip().to_string();
    let scheme = if client.tls { "https" } else { "http" };
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set(headers, "x-forwarded-for", &peer_ip);
    set(headers, "x-real-ip", &peer_ip);
    set(headers, "x-forwarded-proto", scheme);
    set(headers, "x-forwarded-host", host);
    set(
        headers,
        "x-forwarded-port",
        &client.local.port().to_string(),
    );
    set(headers, "x-forwarded-scheme", scheme);
    *request.uri_mut() = path_and_query
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/"));
    *request.version_mut() = Version::HTTP_11;
    request
}

/// The protocol an HTTP/1.1 request asks to upgrade to (`Connection: upgrade`).
pub(crate) fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// RFC 9110's hop-by-hop headers, and those the Connection header names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        headers.remove(name);
    }
}

fn redirect_to_https(host: &str, port: u16, uri: &Uri) -> Response<ProxyBody> {
    let authority = if port == 443 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut response = page(StatusCode::PERMANENT_REDIRECT);
    if let Ok(location) = HeaderValue::from_str(&format!("https://{authority}{path}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// ingress-nginx's error page for `status`.
pub fn page(status: StatusCode) -> Response<ProxyBody> {
    let title = match status {
        StatusCode::SERVICE_UNAVAILABLE => "503 Service Temporarily Unavailable".to_owned(),
        StatusCode::GATEWAY_TIMEOUT => "504 Gateway Time-out".to_owned(),
        other => format!(
            "{} {}",
            other.as_u16(),
            other.canonical_reason().unwrap_or_default()
        ),
    };
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n\
         <hr><center>peapod</center>\r\n</body>\r\n</html>\r\n"
    );
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

fn full(body: String) -> ProxyBody {
    Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
