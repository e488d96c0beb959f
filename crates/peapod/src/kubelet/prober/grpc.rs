//! grpc probes: one grpc.health.v1.Health/Check call over plaintext HTTP/2 (h2c), the tiny
//! protobuf messages encoded by hand, with the texts of kubelet's grpc prober.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

use super::{go_quote, tcp, ProbeOutcome, PROBE_USER_AGENT};
use crate::kubelet::format_go_duration;

const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// HealthCheckResponse.ServingStatus.SERVING.
const SERVING: u64 = 1;
/// grpc-go's first reconnect backoff, its multiplier and cap.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(120);
/// A health answer is a few bytes; anything this large is not one.
const MAX_RESPONSE: usize = 64 * 1024;

const UNIMPLEMENTED: u32 = 12;
const DEADLINE_EXCEEDED: u32 = 4;

/// A gRPC status other than OK.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RpcError {
    code: u32,
    message: String,
}

impl RpcError {
    fn new(code: u32, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

/// kubelet's grpc prober: every problem is a Failure, never an error.
pub(crate) async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> ProbeOutcome {
    let addr = tcp::join_host_port(host, port);
    let limit = format_go_duration(timeout);
    let deadline = Instant::now() + timeout;
    let Some((sender, connection)) = connect(host, port, deadline).await else {
        return ProbeOutcome::Failure(format!(
            "timeout: failed to connect service {} within {limit}: context deadline exceeded",
            go_quote(&addr)
        ));
    };
    let answer = tokio::time::timeout_at(deadline, check(sender, &addr, service)).await;
    drop(connection);
    match answer {
        Ok(Ok(SERVING)) => ProbeOutcome::Success,
        Ok(Ok(status)) => ProbeOutcome::Failure(format!(
            "service unhealthy (responded with {})",
            go_quote(&status_name(status))
        )),
        Ok(Err(err)) if err.code == UNIMPLEMENTED => ProbeOutcome::Failure(format!(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
            err.message
        )),
        Err(_) => rpc_timeout(&limit),
        Ok(Err(err)) if err.code == DEADLINE_EXCEEDED => rpc_timeout(&limit),
        Ok(Err(err)) => ProbeOutcome::Failure(format!(
            "error: health rpc probe failed: rpc error: code = {} desc = {}",
            code_name(err.code),
            err.message
        )),
    }
}

fn rpc_timeout(limit: &str) -> ProbeOutcome {
    ProbeOutcome::Failure(format!(
        "timeout: health rpc did not complete within {limit}"
    ))
}

/// The task driving the HTTP/2 connection, stopped when dropped.
struct Connection(tokio::task::JoinHandle<()>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Dials until connected or `deadline` (grpc-go's blocking dial retries with backoff).
async fn connect(
    host: &str,
    port: u16,
    deadline: Instant,
) -> Option<(SendRequest<Full<Bytes>>, Connection)> {
    let mut backoff = BACKOFF_START;
    loop {
        let attempt = async {
            let stream = tcp::dial(host, port, None).await.ok()?;
            let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .ok()?;
            let task = tokio::spawn(async move {
                let _ = conn.await;
            });
            Some((sender, Connection(task)))
        };
        match tokio::time::timeout_at(deadline, attempt).await {
            Err(_) => return None,
            Ok(Some(connected)) => return Some(connected),
            Ok(None) => {
                let retry = Instant::now() + backoff;
                if retry >= deadline {
                    tokio::time::sleep_until(deadline).await;
                    return None;
                }
                tokio::time::sleep_until(retry).await;
                backoff = backoff.mul_f64(1.6).min(BACKOFF_MAX);
            }
        }
    }
}

/// One Check call; Ok is the response's status enum.
async fn check(
    mut sender: SendRequest<Full<Bytes>>,
    addr: &str,
    service: &str,
) -> Result<u64, RpcError> {
    let request = Request::post(format!("http://{addr}{CHECK_PATH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", PROBE_USER_AGENT)
        .body(Full::new(grpc_frame(&encode_request(service))))
        .map_err(|e| RpcError::new(13, e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| RpcError::new(14, format!("connection error: {e}")))?;
    let http_status = response.status();
    // A trailers-only answer carries grpc-status in the headers.
    if let Some(status) = grpc_status(response.headers()) {
        status?;
    }
    if http_status != hyper::StatusCode::OK {
        return Err(RpcError::new(
            code_for_http_status(http_status.as_u16()),
            format!(
                "unexpected HTTP status code received from server: {} ({})",
                http_status.as_u16(),
                http_status.canonical_reason().unwrap_or("unknown")
            ),
        ));
    }
    let collected = Limited::new(response.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| RpcError::new(14, e.to_string()))?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    grpc_status(&trailers).unwrap_or_else(|| {
        Err(RpcError::new(
            13,
            "server closed the stream without sending trailers",
        ))
    })?;
    let message = unframe(&collected.to_bytes())?;
    decode_status(&message).map_err(|e| {
        RpcError::new(
            13,
            format!("grpc: failed to unmarshal the received message: {e}"),
        )
    })
}

/// grpc-status (and grpc-message) of `headers`: None when absent, Ok(()) for OK.
fn grpc_status(headers: &HeaderMap) -> Option<Result<(), RpcError>> {
    let code = headers.get("grpc-status")?;
    let code = code
        .to_str()
        .ok()
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(2);
    if code == 0 {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .map(HeaderValue::as_bytes)
        .map(percent_decode)
        .unwrap_or_default();
    Some(Err(RpcError::new(code, message)))
}

/// grpc-go's mapping of a non-200 HTTP status to a gRPC code.
fn code_for_http_status(status: u16) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// HealthCheckRequest{service = 1: string}; an empty service is the empty message.
fn encode_request(service: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !service.is_empty() {
        out.push(0x0a);
        put_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// gRPC's length-prefixed message: an uncompressed flag, the length, the message.
fn grpc_frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

/// The single message of a unary response.
fn unframe(body: &[u8]) -> Result<Vec<u8>, RpcError> {
    let internal = |m: &str| RpcError::new(13, m);
    let header = body
        .get(..5)
        .ok_or_else(|| internal("server sent no response message"))?;
    if header[0] != 0 {
        return Err(internal(
            "grpc: compressed response without a negotiated encoding",
        ));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    body.get(5..5 + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| internal("server sent a truncated response message"))
}

/// HealthCheckResponse{status = 1: enum}; absent means UNKNOWN (0).
fn decode_status(mut buf: &[u8]) -> Result<u64, String> {
    let mut status = 0;
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = read_varint(&mut buf)?,
            (_, 0) => {
                read_varint(&mut buf)?;
            }
            (_, 1) => skip(&mut buf, 8)?,
            (_, 2) => {
                let len = read_varint(&mut buf)? as usize;
                skip(&mut buf, len)?;
            }
            (_, 5) => skip(&mut buf, 4)?,
            (_, wire) => return Err(format!("unknown wire type {wire}")),
        }
    }
    Ok(status)
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn skip(buf: &mut &[u8], n: usize) -> Result<(), String> {
    if buf.len() < n {
        return Err("truncated field".into());
    }
    *buf = &buf[n..];
    Ok(())
}

/// The enum's Go String(): its name, or the number when unknown.
fn status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// grpc-go's codes.Code String().
fn code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(code as usize)
        .map(|n| n.to_string())
        .unwrap_or_else(|| format!("Code({code})"))
}

#[cfg(test)]
#[path = "../../../tests/e2e/common/grpc_health.rs"]
mod health_server;

#[cfg(test)]
mod tests {
    use super::health_server::{self, NOT_SERVING, SERVING, UNIMPLEMENTED};
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::Arc;

    async fn server(status: i32) -> (u16, Arc<AtomicI32>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicI32::new(status));
        tokio::spawn(health_server::serve(listener, status.clone()));
        (port, status)
    }

    #[tokio::test]
    async fn serving_succeeds_and_not_serving_fails() {
        let (port, status) = server(SERVING).await;
        let timeout = Duration::from_secs(1);
        assert_eq!(
            probe("127.0.0.1", port, "", timeout).await,
            ProbeOutcome::Success
        );
        status.store(NOT_SERVING, Ordering::SeqCst);
        assert_eq!(
            probe("127.0.0.1", port, "svc", timeout).await,
            ProbeOutcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        status.store(0, Ordering::SeqCst);
        assert_eq!(
            probe("127.0.0.1", port, "", timeout).await,
            ProbeOutcome::Failure("service unhealthy (responded with \"UNKNOWN\")".into())
        );
    }

    #[tokio::test]
    async fn a_server_without_health_is_unimplemented() {
        let (port, _) = server(UNIMPLEMENTED).await;
        assert_eq!(
            probe("127.0.0.1", port, "", Duration::from_secs(1)).await,
            ProbeOutcome::Failure(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health".into()
            )
        );
    }

    #[tokio::test]
    async fn a_closed_port_times_out_connecting() {
        let port = crate::kubelet::prober::tests::closed_port();
        let started = std::time::Instant::now();
        let outcome = probe("127.0.0.1", port, "", Duration::from_millis(1500)).await;
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(3));
        assert_eq!(
            outcome,
            ProbeOutcome::Failure(format!(
                "timeout: failed to connect service \"127.0.0.1:{port}\" within 1.5s: context deadline exceeded"
            ))
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_the_rpc() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let outcome = probe("127.0.0.1", port, "", Duration::from_millis(500)).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Failure("timeout: health rpc did not complete within 500ms".into())
        );
    }

    #[test]
    fn messages_encode_and_decode() {
        assert!(encode_request("").is_empty());
        assert_eq!(encode_request("ab"), vec![0x0a, 2, b'a', b'b']);
        assert_eq!(&grpc_frame(&[7])[..], &[0, 0, 0, 0, 1, 7]);
        assert_eq!(decode_status(&[0x08, 0x02]), Ok(2));
        assert_eq!(decode_status(&[]), Ok(0));
        // An unknown string field before the status is skipped.
        assert_eq!(decode_status(&[0x12, 1, b'x', 0x08, 0x01]), Ok(1));
        assert!(decode_status(&[0x08]).is_err());
        assert_eq!(unframe(&[0, 0, 0, 0, 2, 0x08, 0x01]), Ok(vec![0x08, 0x01]));
        assert!(unframe(&[0, 0, 0, 0, 9]).is_err());
        assert_eq!(percent_decode(b"a%20b%"), "a b%");
        assert_eq!(status_name(7), "7");
        assert_eq!(code_name(14), "Unavailable");
        assert_eq!(code_name(99), "Code(99)");
    }
}
