//! Relays a remote-command session (exec, attach) to the shim's framed stream: stdin and
//! terminal sizes in, stdout and stderr out as the client reads them (the shim stops reading
//! the process when we do), and the shim's final status as the session's outcome. A client
//! that goes away takes the shim connection with it, which ends an exec's process.

use std::future::Future;

use bytes::Bytes;
use peapod_streams::negotiate::Negotiated;
use peapod_streams::remotecommand::{self, Options, Outcome, Session, TerminalSize};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::Upgraded;
use crate::shim::client::ShimClientError;
use crate::shim::protocol::frame;

/// The shim's last frame: an exit code, or why the session could not run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShimStatus {
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

/// Serves one exec or attach upgrade: accepts the client's session, then connects to the shim
/// (which starts an exec's process, so only once the client is there) and relays; `failed`
/// prefixes why the shim could not be reached, as kubelet words it.
pub async fn serve<C, Fut>(
    io: Upgraded,
    negotiated: Negotiated,
    options: Options,
    failed: &'static str,
    connect: C,
    outcome: impl FnOnce(ShimStatus) -> Outcome,
) where
    C: FnOnce() -> Fut,
    Fut: Future<Output = Result<UnixStream, ShimClientError>>,
{
    let session = match remotecommand::accept(io, &negotiated, options).await {
        Ok(session) => session,
        Err(err) => return tracing::debug!(%err, "{failed}: no session"),
    };
    match connect().await {
        Ok(shim) => relay(session, shim, outcome).await,
        Err(err) => {
            let message = format!("{failed}: {err}");
            session.output.finish(Outcome::Internal(message)).await
        }
    }
}

/// Runs the session to its end; `outcome` words the shim's status for the client.
async fn relay(session: Session, shim: UnixStream, outcome: impl FnOnce(ShimStatus) -> Outcome) {
    let (shim_out, shim_in) = shim.into_split();
    let input = tokio::spawn(forward_input(session.stdin, session.resize, shim_in));
    let output = session.output;
    let status = tokio::select! {
        status = forward_output(shim_out, &output) => status,
        () = output.closed() => None,
    };
    // Dropping the shim connection (both halves) is what ends an exec whose client is gone.
    input.abort();
    if let Some(status) = status {
        output.finish(outcome(status)).await;
    }
}

/// Copies shim frames to the client until the status frame; `None` if the client went away
/// first, or the shim's stream broke (then a status saying so).
async fn forward_output(
    mut shim: OwnedReadHalf,
    output: &peapod_streams::remotecommand::Output,
) -> Option<ShimStatus> {
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        for (channel, payload) in frame::decode(&mut buffer) {
            let sent = match channel {
                frame::STDOUT => output.stdout(Bytes::from(payload)).await,
                frame::STDERR => output.stderr(Bytes::from(payload)).await,
                frame::STATUS => return Some(parse_status(&payload)),
                _ => Ok(()),
            };
            sent.ok()?;
        }
        match shim.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                return Some(ShimStatus {
                    exit_code: None,
                    error: Some("the container runtime closed the stream".into()),
                })
            }
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

fn parse_status(payload: &[u8]) -> ShimStatus {
    serde_json::from_slice(payload).unwrap_or_else(|err| ShimStatus {
        exit_code: None,
        error: Some(format!("invalid status from the container runtime: {err}")),
    })
}

/// Writes the client's stdin (then its end) and terminal sizes to the shim.
async fn forward_input(
    stdin: Option<mpsc::Receiver<Bytes>>,
    resize: Option<mpsc::Receiver<TerminalSize>>,
    mut shim: OwnedWriteHalf,
) {
    let mut stdin = stdin;
    let mut resize = resize;
    loop {
        let next = tokio::select! {
            chunk = recv(&mut stdin), if stdin.is_some() => match chunk {
                Some(data) => frame::encode(frame::STDIN, &data),
                None => {
                    stdin = None;
                    frame::encode(frame::STDIN_EOF, b"")
                }
            },
            size = recv(&mut resize), if resize.is_some() => match size {
                Some(size) => frame::encode(frame::RESIZE, &resize_json(size)),
                None => {
                    resize = None;
                    continue;
                }
            },
            else => return,
        };
        if shim.write_all(&next).await.is_err() {
            return;
        }
    }
}

async fn recv<T>(channel: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match channel {
        Some(rx) => rx.recv().await,
        None => None,
    }
}

fn resize_json(size: TerminalSize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"width": size.width, "height": size.height}))
        .expect("sizes serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_statuses_parse_and_garbage_is_an_error() {
        assert_eq!(
            parse_status(br#"{"exitCode":3}"#),
            ShimStatus {
                exit_code: Some(3),
                error: None
            }
        );
        assert!(parse_status(b"nope").error.is_some());
    }

    #[test]
    fn resizes_use_the_shims_lowercase_fields() {
        let json = resize_json(TerminalSize {
            width: 80,
            height: 24,
        });
        assert_eq!(json, br#"{"height":24,"width":80}"#.to_vec());
    }
}
