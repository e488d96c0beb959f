//! A gRPC health server for tests: grpc.health.v1.Health/Check over plaintext HTTP/2, answering
//! with the status a test holds in an `AtomicI32` and may flip at any time ([`SERVING`],
//! [`NOT_SERVING`]; [`UNIMPLEMENTED`] answers as a server without the health service).

use std::convert::Infallible;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

pub const SERVING: i32 = 1;
pub const NOT_SERVING: i32 = 2;
/// Any negative status: every call fails with grpc-status 12 (UNIMPLEMENTED).
pub const UNIMPLEMENTED: i32 = -1;

type Body = StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// Serves health checks on `listener` (bound by the test, e.g. inside a pod's network
/// namespace) until the task is dropped.
pub async fn serve(listener: std::net::TcpListener, status: Arc<AtomicI32>) {
    listener
        .set_nonblocking(true)
        .expect("grpc health listener: non-blocking");
    let listener =
        tokio::net::TcpListener::from_std(listener).expect("grpc health listener: tokio");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let status = status.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let status = status.load(Ordering::SeqCst);
                async move { Ok::<_, Infallible>(answer(request, status).await) }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>, status: i32) -> Response<Body> {
    let check = request.uri().path() == "/grpc.health.v1.Health/Check";
    let _ = request.into_body().collect().await;
    if !check || status < 0 {
        // A trailers-only answer, as grpc-go gives for an unregistered service.
        return grpc_response(
            Vec::new(),
            &[
                ("grpc-status", "12"),
                ("grpc-message", "unknown service grpc.health.v1.Health"),
            ],
        );
    }
    let mut message = BytesMut::new();
    if status != 0 {
        message.put_u8(0x08);
        message.put_u8(status as u8);
    }
    let mut frame = BytesMut::new();
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().expect("header value"));
    grpc_response(
        vec![
            Ok(Frame::data(frame.freeze())),
            Ok(Frame::trailers(trailers)),
        ],
        &[],
    )
}

fn grpc_response(
    frames: Vec<Result<Frame<Bytes>, Infallible>>,
    headers: &[(&'static str, &'static str)],
) -> Response<Body> {
    let mut response = Response::new(StreamBody::new(futures::stream::iter(frames)));
    let map = response.headers_mut();
    map.insert(
        "content-type",
        "application/grpc".parse().expect("header value"),
    );
    for (name, value) in headers {
        map.insert(*name, value.parse().expect("header value"));
    }
    response
}
