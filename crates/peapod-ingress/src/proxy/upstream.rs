//! One request to a backend: a connection to the first of its endpoints (in round-robin
//! order) that accepts within the connect timeout, trying up to three as nginx's
//! proxy_next_upstream does; HTTP/1.1, or HTTP/2 for gRPC; TLS without verification for
//! HTTPS/GRPCS as ingress-nginx's proxy_ssl_verify off; an accepted Upgrade tunnelled (to
//! an HTTP/2 client's extended CONNECT too). A
//! kept connection ([`Pool`]) is tried first; one the backend closed meanwhile gives the
//! request back and a new connection takes it.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::pool::{Pool, Sender};
use super::{page, remove_hop_by_hop, upgrade_protocol, ExtendedConnect, ProxyBody, Timeouts};
use crate::annotations::BackendProtocol;

const ATTEMPTS: usize = 3;

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// What became of a request on one connection.
enum Outcome {
    Answered(Response<Incoming>),
    /// The connection took none of it (a kept connection the backend had closed).
    Unsent(Request<Incoming>),
    Failed(StatusCode),
}

pub async fn forward(
    mut request: Request<Incoming>,
    addresses: &[SocketAddr],
    protocol: BackendProtocol,
    timeouts: Timeouts,
    pool: &Pool,
) -> Response<ProxyBody> {
    let client_upgrade = upgrade_protocol(request.headers()).map(|_| ClientUpgrade {
        extended_connect: request.extensions().get::<ExtendedConnect>().is_some(),
        on: hyper::upgrade::on(&mut request),
    });
    let keep = client_upgrade.is_none();
    if let Some(sender) = addresses
        .first()
        .filter(|_| keep)
        .and_then(|a| pool.take(*a, protocol))
    {
        let exchange = Exchange {
            address: addresses[0],
            protocol,
            timeouts,
            pool,
            keep,
        };
        match exchange.send(sender, request).await {
            Outcome::Answered(response) => return respond(response, client_upgrade),
            Outcome::Failed(status) => return page(status),
            Outcome::Unsent(unsent) => request = unsent,
        }
    }
    let (stream, address) = match connect(addresses, timeouts).await {
        Ok(connected) => connected,
        Err(status) => return page(status),
    };
    let Some(sender) = open(stream, address, protocol).await else {
        return page(StatusCode::BAD_GATEWAY);
    };
    let exchange = Exchange {
        address,
        protocol,
        timeouts,
        pool,
        keep,
    };
    match exchange.send(sender, request).await {
        Outcome::Answered(response) => respond(response, client_upgrade),
        Outcome::Failed(status) => page(status),
        Outcome::Unsent(_) => page(StatusCode::BAD_GATEWAY),
    }
}

/// A client's upgrade: HTTP/1.1's, or HTTP/2's extended CONNECT.
struct ClientUpgrade {
    on: hyper::upgrade::OnUpgrade,
    extended_connect: bool,
}

/// The backend's response for the client: an accepted upgrade tunnelled (confirmed with 200
/// to an extended CONNECT, RFC 8441), hop-by-hop headers dropped otherwise.
fn respond(
    mut response: Response<Incoming>,
    client_upgrade: Option<ClientUpgrade>,
) -> Response<ProxyBody> {
    let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    match client_upgrade {
        Some(client) if switched => {
            tunnel(client.on, hyper::upgrade::on(&mut response));
            if client.extended_connect {
                return connect_established(response);
            }
        }
        // A 2xx to a CONNECT opens a tunnel the backend never agreed to.
        Some(client) if client.extended_connect && response.status().is_success() => {
            return page(StatusCode::BAD_GATEWAY);
        }
        _ => remove_hop_by_hop(response.headers_mut()),
    }
    response.map(|body| body.boxed())
}

/// The backend's 101 as the 200 that opens an extended CONNECT's stream: its headers but the
/// handshake's own (Sec-WebSocket-Accept answers a key the client never sent).
fn connect_established(response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, _) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    parts.headers.remove(hyper::header::SEC_WEBSOCKET_ACCEPT);
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    parts.status = StatusCode::OK;
    parts.version = Version::HTTP_2;
    let empty = http_body_util::Empty::new().map_err(|never| match never {});
    Response::from_parts(parts, empty.boxed())
}

/// One request on one connection to `address`.
struct Exchange<'a> {
    address: SocketAddr,
    protocol: BackendProtocol,
    timeouts: Timeouts,
    pool: &'a Pool,
    /// Whether the connection goes back to the pool once answered.
    keep: bool,
}

impl Exchange<'_> {
    async fn send(&self, mut sender: Sender, mut request: Request<Incoming>) -> Outcome {
        let limit = self.timeouts.response;
        let sent = match &mut sender {
            Sender::Http1(http1) => {
                tokio::time::timeout(limit, http1.try_send_request(request)).await
            }
            Sender::Http2(http2) => {
                let scheme = if self.protocol.is_tls() {
                    "https"
                } else {
                    "http"
                };
                absolute_uri(&mut request, scheme, self.address);
                tokio::time::timeout(limit, http2.try_send_request(request)).await
            }
        };
        match sent {
            Err(_) => Outcome::Failed(StatusCode::GATEWAY_TIMEOUT),
            Ok(Err(mut err)) => match err.take_message() {
                Some(request) => Outcome::Unsent(request),
                None => {
                    tracing::debug!(err = %err.into_error(), address = %self.address, "ingress backend request");
                    Outcome::Failed(StatusCode::BAD_GATEWAY)
                }
            },
            Ok(Ok(response)) => {
                if self.keep && response.status() != StatusCode::SWITCHING_PROTOCOLS {
                    self.pool.put(self.address, self.protocol, sender);
                }
                Outcome::Answered(response)
            }
        }
    }
}

/// A new connection's sender, over TLS for HTTPS and GRPCS.
async fn open(stream: TcpStream, address: SocketAddr, protocol: BackendProtocol) -> Option<Sender> {
    let stream: Box<dyn Io> = if protocol.is_tls() {
        match tls_connect(stream, address, protocol).await {
            Ok(stream) => stream,
            Err(err) => {
                tracing::debug!(%err, %address, "ingress backend TLS");
                return None;
            }
        }
    } else {
        Box::new(stream)
    };
    handshake(stream, protocol)
        .await
        .inspect_err(|err| tracing::debug!(%err, %address, "ingress backend handshake"))
        .ok()
}

/// The first endpoint that accepts, or the status of the last failure: 504 on a timeout,
/// 502 otherwise.
async fn connect(
    addresses: &[SocketAddr],
    timeouts: Timeouts,
) -> Result<(TcpStream, SocketAddr), StatusCode> {
    let mut status = StatusCode::BAD_GATEWAY;
    for address in addresses.iter().take(ATTEMPTS) {
        match tokio::time::timeout(timeouts.connect, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, *address));
            }
            Ok(Err(err)) => {
                tracing::debug!(%err, %address, "ingress backend connect");
                status = StatusCode::BAD_GATEWAY;
            }
            Err(_) => status = StatusCode::GATEWAY_TIMEOUT,
        }
    }
    Err(status)
}

async fn handshake(stream: Box<dyn Io>, protocol: BackendProtocol) -> Result<Sender, hyper::Error> {
    let io = TokioIo::new(stream);
    if protocol.is_http2() {
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await?;
        tokio::spawn(connection);
        return Ok(Sender::Http2(sender));
    }
    let (sender, connection) = http1::handshake(io).await?;
    tokio::spawn(connection.with_upgrades());
    Ok(Sender::Http1(sender))
}

/// HTTP/2 requests carry scheme and authority: the client's host, else the endpoint.
fn absolute_uri<B>(request: &mut Request<B>, scheme: &str, address: SocketAddr) {
    let host = request.headers().get(hyper::header::HOST);
    let authority = host
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| address.to_string(), str::to_owned);
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    if let Ok(uri) = format!("{scheme}://{authority}{path}").parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    *request.version_mut() = Version::HTTP_2;
}

fn tunnel(client: hyper::upgrade::OnUpgrade, backend: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (Ok(client), Ok(backend)) = tokio::join!(client, backend) else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut backend = TokioIo::new(backend);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    });
}

async fn tls_connect(
    stream: TcpStream,
    address: SocketAddr,
    protocol: BackendProtocol,
) -> std::io::Result<Box<dyn Io>> {
    // ingress-nginx's default `proxy_ssl_verify off`: backends' certificates are not checked.
    let mut config = peapod_tls::insecure_client_config().map_err(std::io::Error::other)?;
    let alpn: &[u8] = if protocol.is_http2() {
        b"h2"
    } else {
        b"http/1.1"
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::IpAddress(address.ip().into());
    Ok(Box::new(connector.connect(name, stream).await?))
}
