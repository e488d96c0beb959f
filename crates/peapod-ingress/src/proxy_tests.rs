//! The proxy against local hyper backends on 127.0.0.1.

use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::Method;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A backend that echoes POST bodies as they stream, answers `/slow` never, accepts
/// upgrades (but to `/no-upgrade`) by echoing the tunnel, naming the handshake it got in
/// `x-seen-*` headers, and otherwise describes the request it got.
async fn backend() -> SocketAddr {
    serve_backend(false).await
}

/// [`backend`] speaking HTTP/2 by prior knowledge (h2c), as gRPC servers do.
async fn backend_http2() -> SocketAddr {
    serve_backend(true).await
}

async fn serve_backend(http2: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                Ok::<_, Infallible>(answer(request).await)
            });
            let io = TokioIo::new(stream);
            if http2 {
                let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                tokio::spawn(builder.serve_connection(io, service));
            } else {
                let builder = hyper::server::conn::http1::Builder::new();
                tokio::spawn(builder.serve_connection(io, service).with_upgrades());
            }
        }
    });
    address
}

async fn answer(mut request: Request<Incoming>) -> Response<ProxyBody> {
    if request.uri().path() == "/slow" {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    if request.method() == Method::POST {
        return Response::new(request.into_body().boxed());
    }
    let upgrade = upgrade_protocol(request.headers());
    if let Some(protocol) = upgrade.filter(|_| request.uri().path() != "/no-upgrade") {
        let upgraded = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            let mut io = TokioIo::new(upgraded.await.unwrap());
            let mut buf = [0u8; 4];
            io.read_exact(&mut buf).await.unwrap();
            io.write_all(&buf).await.unwrap();
        });
        let mut response = Response::new(full(String::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, protocol);
        let seen = [
            ("x-seen-method", request.method().as_str().to_owned()),
            ("x-seen-version", format!("{:?}", request.version())),
            (
                "x-seen-key",
                seen_header(&request, header::SEC_WEBSOCKET_KEY),
            ),
            (
                "x-seen-ws-version",
                seen_header(&request, header::SEC_WEBSOCKET_VERSION),
            ),
        ];
        for (name, value) in seen {
            headers.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        headers.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("accepted"),
        );
        return response;
    }
    let headers: serde_json::Map<String, Value> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
        .collect();
    let version = format!("{:?}", request.version());
    let seen = json!({"path": request.uri().to_string(), "headers": headers, "version": version});
    Response::new(full(seen.to_string()))
}

fn seen_header<B>(request: &Request<B>, name: HeaderName) -> String {
    let value = request.headers().get(name);
    value.map_or("", |v| v.to_str().unwrap()).to_owned()
}

fn ingress(annotations: Value) -> Arc<Ingress> {
    let rules: Vec<Value> = ["web.io", "secure.io"]
        .iter()
        .map(|host| {
            json!({"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"name": "http"}}}},
                {"path": "/empty", "pathType": "Prefix",
                 "backend": {"service": {"name": "empty", "port": {"number": 80}}}},
                {"path": "/down", "pathType": "Prefix",
                 "backend": {"service": {"name": "down", "port": {"number": 80}}}},
            ]}})
        })
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "annotations": annotations},
            "spec": {
                "tls": [{"hosts": ["secure.io"], "secretName": "tls"}],
                "rules": rules,
            },
        }))
        .unwrap(),
    )
}

fn service(name: &str) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        }))
        .unwrap(),
    )
}

fn slice(service: &str, address: SocketAddr) -> Arc<EndpointSlice> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": service, "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": address.port()}],
            "endpoints": [{"addresses": [address.ip().to_string()], "conditions": {"ready": true}}],
        }))
        .unwrap(),
    )
}

/// A proxy in front of a fresh backend, the Ingress annotated with `annotations`.
async fn proxy(annotations: Value, timeouts: Timeouts) -> SocketAddr {
    proxy_to(backend().await, annotations, timeouts).await
}

async fn proxy_to(web: SocketAddr, annotations: Value, timeouts: Timeouts) -> SocketAddr {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let shared = Arc::new(Shared::new(timeouts, Some(8443)));
    shared.publish(Snapshot {
        routes: RouteTable::build(&[ingress(annotations)]),
        backends: Backends::new(
            &[service("web"), service("empty"), service("down")],
            &[slice("web", web), slice("down", closed)],
        ),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, shared, None));
    address
}

async fn sender<B>(proxy: SocketAddr) -> hyper::client::conn::http1::SendRequest<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection.with_upgrades());
    sender
}

async fn get(proxy: SocketAddr, host: &str, path: &str) -> (StatusCode, HeaderMap, String) {
    let request = Request::get(path)
        .header(header::HOST, host)
        .header(header::CONNECTION, "keep-alive, x-hop")
        .header("x-hop", "dropped")
        .header("x-kept", "kept")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender(proxy).await.send_request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn quick() -> Timeouts {
    Timeouts {
        header_read: Duration::from_millis(500),
        connect: Duration::from_millis(500),
        response: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn requests_reach_the_backend_with_forwarding_headers() {
    let proxy = proxy(json!({}), quick()).await;
    let (status, _, body) = get(proxy, "web.io:8080", "/a/b?x=1").await;
    assert_eq!(status, StatusCode::OK);
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/a/b?x=1");
    let headers = &seen["headers"];
    assert_eq!(headers["host"], "web.io:8080");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "web.io");
    assert_eq!(headers["x-kept"], "kept");
    assert!(headers.get("x-hop").is_none(), "{headers}");
    assert!(headers.get("keep-alive").is_none());
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let proxy = proxy(json!({}), quick()).await;
    let (mut chunks, receiver) = mpsc::channel::<Bytes>(1);
    let body = StreamBody::new(receiver.map(|b| Ok::<_, Infallible>(Frame::data(b))));
    let request = Request::post("/echo")
        .header(header::HOST, "web.io")
        .body(body)
        .unwrap();
    let mut sender = sender(proxy).await;
    let sending = tokio::spawn(async move { sender.send_request(request).await.unwrap() });
    chunks.send(Bytes::from_static(b"first")).await.unwrap();
    let mut response = sending.await.unwrap();
    let first = response
        .body_mut()
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(
        first, "first",
        "the first chunk came back before the body ended"
    );
    chunks.send(Bytes::from_static(b"second")).await.unwrap();
    drop(chunks);
    let rest = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second");
}

/// The upgraded connection reaches the backend's echo.
async fn assert_tunnel_echoes(upgrade: hyper::upgrade::OnUpgrade) {
    let mut tunnel = TokioIo::new(upgrade.await.unwrap());
    tunnel.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tunnel.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");
}

#[tokio::test]
async fn upgrades_are_tunnelled() {
    let proxy = proxy(json!({}), quick()).await;
    let request = Request::get("/ws")
        .header(header::HOST, "web.io")
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "echo")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut response = sender(proxy).await.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()[header::UPGRADE], "echo");
    assert_tunnel_echoes(hyper::upgrade::on(&mut response)).await;
}

#[tokio::test]
async fn failures_answer_with_ingress_nginx_pages() {
    let proxy = proxy(json!({}), quick()).await;
    let (status, headers, body) = get(proxy, "web.io", "/empty").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html");
    assert!(
        body.starts_with(
            "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>"
        ),
        "{body}"
    );
    assert_eq!(
        get(proxy, "web.io", "/down").await.0,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        get(proxy, "web.io", "/slow").await.0,
        StatusCode::GATEWAY_TIMEOUT
    );
    let (status, _, body) = get(proxy, "nobody.io", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("<title>404 Not Found</title>"));
}

#[tokio::test]
async fn tls_hosts_redirect_to_https_unless_told_not_to() {
    let proxy_address = proxy(json!({}), quick()).await;
    let (status, headers, _) = get(proxy_address, "secure.io", "/p?q=1").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "https://secure.io:8443/p?q=1");
    let off = json!({"nginx.ingress.kubernetes.io/ssl-redirect": "false"});
    let proxy_address = proxy(off, quick()).await;
    assert_eq!(
        get(proxy_address, "secure.io", "/p").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rewrite_target_changes_the_upstream_path() {
    let annotations = json!({"nginx.ingress.kubernetes.io/rewrite-target": "/v2/$1"});
    let proxy = proxy(annotations, quick()).await;
    let (status, _, body) = get(proxy, "web.io", "/x?y=1").await;
    assert_eq!(status, StatusCode::OK);
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/v2/?y=1");
}

#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    let proxy = proxy(json!({}), quick()).await;
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web.io\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the proxy closed the connection");
    let mut idle = TcpStream::connect(proxy).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a silent client is dropped too");
}

#[tokio::test]
async fn http2_clients_reach_http1_backends() {
    let proxy = proxy(json!({}), quick()).await;
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::get("http://web.io/h2")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let seen: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["path"], "/h2");
    assert_eq!(seen["headers"]["host"], "web.io");
    assert_eq!(seen["headers"]["x-forwarded-host"], "web.io");
}

/// An HTTP/2 connection to `proxy` once the proxy's SETTINGS allowed extended CONNECT.
async fn extended_connect_sender(
    proxy: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (sender, mut connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    for _ in 0..200 {
        if connection.is_extended_connect_protocol_enabled() {
            tokio::spawn(connection);
            return sender;
        }
        let driven = tokio::time::timeout(Duration::from_millis(5), &mut connection).await;
        assert!(
            driven.is_err(),
            "the proxy closed the connection: {driven:?}"
        );
    }
    panic!("the proxy's SETTINGS never enabled extended CONNECT");
}

fn websocket_connect(uri: &str) -> Request<Empty<Bytes>> {
    let mut request = Request::connect(uri)
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let protocol = hyper::ext::Protocol::from_static("websocket");
    request.extensions_mut().insert(protocol);
    request
}

#[tokio::test]
async fn websockets_over_http2_reach_http1_backends_as_upgrades() {
    let proxy = proxy(json!({}), quick()).await;
    let mut sender = extended_connect_sender(proxy).await;
    let mut response = sender
        .send_request(websocket_connect("http://web.io/ws"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["x-seen-method"], "GET");
    assert_eq!(headers["x-seen-version"], "HTTP/1.1");
    assert_eq!(headers["x-seen-ws-version"], "13");
    assert_eq!(headers["x-seen-key"].len(), 24, "16 random bytes in base64");
    assert!(!headers.contains_key(header::SEC_WEBSOCKET_ACCEPT));
    assert!(!headers.contains_key(header::UPGRADE));
    assert_tunnel_echoes(hyper::upgrade::on(&mut response)).await;
}

#[tokio::test]
async fn an_extended_connect_the_backend_does_not_switch_is_refused() {
    let proxy = proxy(json!({}), quick()).await;
    let mut sender = extended_connect_sender(proxy).await;
    let refused = websocket_connect("http://web.io/no-upgrade");
    let response = sender.send_request(refused).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let missing = websocket_connect("http://nowhere.io/ws");
    let response = sender.send_request(missing).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn grpc_backends_are_spoken_to_over_http2() {
    let annotations = json!({"nginx.ingress.kubernetes.io/backend-protocol": "GRPC"});
    let proxy = proxy_to(backend_http2().await, annotations, quick()).await;
    let (status, _, body) = get(proxy, "web.io", "/pkg.Service/Method").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["version"], "HTTP/2.0");
    assert_eq!(seen["path"], "http://web.io/pkg.Service/Method");
    assert_eq!(seen["headers"]["x-forwarded-host"], "web.io");
}

/// A backend counting its connections, closing each after one exchange unless `keep_alive`.
async fn counting_backend(keep_alive: bool) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                Ok::<_, Infallible>(answer(request).await)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.keep_alive(keep_alive);
            tokio::spawn(builder.serve_connection(TokioIo::new(stream), service));
        }
    });
    (address, accepted)
}

#[tokio::test]
async fn backend_connections_are_kept_and_closed_ones_replaced() {
    for keep_alive in [true, false] {
        let (backend, accepted) = counting_backend(keep_alive).await;
        let proxy = proxy_to(backend, json!({}), quick()).await;
        for _ in 0..5 {
            assert_eq!(get(proxy, "web.io", "/").await.0, StatusCode::OK);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let connections = accepted.load(std::sync::atomic::Ordering::SeqCst);
        let expected = if keep_alive { 1 } else { 5 };
        assert_eq!(connections, expected, "keep-alive: {keep_alive}");
    }
}

/// [`backend`] behind TLS, with the fake certificate.
async fn tls_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = crate::tls::acceptor(Arc::new(crate::tls::CertResolver::new()));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let Ok(stream) = acceptor.accept(stream).await else {
                continue;
            };
            let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                Ok::<_, Infallible>(answer(request).await)
            });
            let builder = hyper::server::conn::http1::Builder::new();
            tokio::spawn(builder.serve_connection(TokioIo::new(stream), service));
        }
    });
    address
}

#[tokio::test]
async fn https_backends_are_reached_over_tls() {
    let annotations = json!({"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"});
    let proxy = proxy_to(tls_backend().await, annotations, quick()).await;
    let (status, _, body) = get(proxy, "web.io", "/tls").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/tls");
}
