//! The client's side of port-forward over SPDY/3.1 (`portforward.k8s.io`), as client-go's
//! `PortForwarder` runs it: for each local connection an error stream and a data stream, both
//! opened with `streamType`, `port` and the `requestID` that pairs them. The error stream is
//! half-closed at once (the client never writes there) and read to its end; the data stream
//! carries the connection both ways, each direction half-closed at its end. Once the pod's
//! side is done the data stream is reset, so that nothing unsent holds up the session.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::spdy::{Headers, Session, Stream, MAX_WRITE_CHUNK};
use crate::StreamError;

/// How long a stream may wait for the server's SYN_REPLY (client-go's stream creation timeout).
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an error message kept; kubelet's are one line.
const MAX_ERROR_BYTES: u64 = 64 << 10;

const STREAM_TYPE: &str = "streamType";
const STREAM_TYPE_ERROR: &str = "error";
const STREAM_TYPE_DATA: &str = "data";
const PORT: &str = "port";
const REQUEST_ID: &str = "requestID";

/// A local port and the pod's port its connections go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedPort {
    pub local: u16,
    pub remote: u16,
}

/// Why one forwarded connection failed, in client-go's words.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("error creating error stream for port {} -> {}: {source}", port.local, port.remote)]
    ErrorStream {
        port: ForwardedPort,
        source: StreamError,
    },
    #[error("error creating forwarding stream for port {} -> {}: {source}", port.local, port.remote)]
    DataStream {
        port: ForwardedPort,
        source: StreamError,
    },
    #[error("error reading from error stream for port {} -> {}: {source}", port.local, port.remote)]
    ReadError {
        port: ForwardedPort,
        source: io::Error,
    },
    /// What the server wrote on the error stream (it could not reach the pod's port...).
    #[error("an error occurred forwarding {} -> {}: {message}", port.local, port.remote)]
    Remote {
        port: ForwardedPort,
        message: String,
    },
}

/// One port-forward session; connections are forwarded concurrently over it.
pub struct Forwarder {
    session: Session,
    request_ids: AtomicU64,
}

impl Forwarder {
    /// Starts the SPDY session (client role) on a connection upgraded for
    /// `portforward.k8s.io`. Streams the server would open are refused.
    pub fn start<T>(io: T) -> Forwarder
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (session, _incoming) = Session::client(io);
        Forwarder {
            session,
            request_ids: AtomicU64::new(0),
        }
    }

    /// Forwards `local` to the pod's `port.remote` until the pod's side is done, then reports
    /// what the server said on the error stream.
    pub async fn forward<C>(&self, local: C, port: ForwardedPort) -> Result<(), ForwardError>
    where
        C: AsyncRead + AsyncWrite,
    {
        let request_id = self.request_ids.fetch_add(1, Ordering::Relaxed);
        let mut headers: Headers = [
            (STREAM_TYPE, STREAM_TYPE_ERROR.to_string()),
            (PORT, port.remote.to_string()),
            (REQUEST_ID, request_id.to_string()),
        ]
        .into_iter()
        .collect();
        let mut error = self
            .open(headers.clone())
            .await
            .map_err(|source| ForwardError::ErrorStream { port, source })?;
        let _ = error.shutdown().await;
        headers.insert(STREAM_TYPE, STREAM_TYPE_DATA);
        let data = self
            .open(headers)
            .await
            .map_err(|source| ForwardError::DataStream { port, source })?;
        let ((), message) = tokio::join!(exchange(local, data), read_to_end(&mut error));
        let message = message.map_err(|source| ForwardError::ReadError { port, source })?;
        if message.is_empty() {
            return Ok(());
        }
        let message = String::from_utf8_lossy(&message).into_owned();
        Err(ForwardError::Remote { port, message })
    }

    async fn open(&self, headers: Headers) -> Result<Stream, StreamError> {
        match tokio::time::timeout(STREAM_CREATION_TIMEOUT, self.session.open(headers)).await {
            Ok(opened) => Ok(opened?),
            Err(_) => Err(StreamError::Timeout(
                "the server to accept the stream".into(),
            )),
        }
    }

    /// Resolves when the session is over: the connection closed or broke (the pod went away,
    /// the agent stopped).
    pub async fn closed(&self) {
        self.session.closed().await
    }

    /// Ends the session (GOAWAY, then the connection's write side).
    pub async fn close(&self) {
        self.session.close().await
    }
}

/// Copies both ways until the pod's side has finished (or sending to it failed), then resets
/// the data stream.
async fn exchange<C>(local: C, data: Stream)
where
    C: AsyncRead + AsyncWrite,
{
    let (local_in, mut local_out) = tokio::io::split(local);
    let (mut remote_in, mut remote_out) = tokio::io::split(data);
    {
        let to_local = async {
            let _ = tokio::io::copy(&mut remote_in, &mut local_out).await;
            let _ = local_out.shutdown().await;
        };
        let to_remote = async {
            let mut local_in = BufReader::with_capacity(MAX_WRITE_CHUNK, local_in);
            let copied = tokio::io::copy_buf(&mut local_in, &mut remote_out).await;
            let _ = remote_out.shutdown().await;
            copied
        };
        tokio::pin!(to_local, to_remote);
        let mut sending = true;
        loop {
            tokio::select! {
                () = &mut to_local => break,
                copied = &mut to_remote, if sending => {
                    sending = false;
                    if copied.is_err() {
                        break;
                    }
                }
            }
        }
    }
    remote_in.unsplit(remote_out).reset();
}

async fn read_to_end(stream: &mut Stream) -> io::Result<Vec<u8>> {
    let mut message = Vec::new();
    stream
        .take(MAX_ERROR_BYTES)
        .read_to_end(&mut message)
        .await?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portforward::{Connection, Connections};

    const PORT_WITH_ECHO: u16 = 80;

    /// kubelet's side, as the agent serves it: connections to port 80 are echoed, every other
    /// port is refused on the error stream.
    async fn serve(mut connections: Connections) {
        while let Some(connection) = connections.next().await {
            tokio::spawn(serve_connection(connection));
        }
    }

    async fn serve_connection(connection: Connection) {
        if connection.port != PORT_WITH_ECHO {
            let message = format!("failed to connect to localhost:{}", connection.port);
            return connection.fail(&message).await;
        }
        let Connection {
            mut data,
            mut error,
            ..
        } = connection;
        let mut received = Vec::new();
        data.read_to_end(&mut received).await.unwrap();
        data.write_all(&received).await.unwrap();
        let _ = error.shutdown().await;
        let _ = data.shutdown().await;
    }

    fn forwarder() -> Forwarder {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        tokio::spawn(serve(super::super::spdy::accept(server_io)));
        Forwarder::start(client_io)
    }

    #[tokio::test]
    async fn connections_are_forwarded_concurrently_and_both_ways() {
        let forwarder = forwarder();
        let port = ForwardedPort {
            local: 8080,
            remote: PORT_WITH_ECHO,
        };
        let connection = |text: String| {
            let forwarder = &forwarder;
            async move {
                let (local, mut user) = tokio::io::duplex(1 << 16);
                let (forwarded, echoed) = tokio::join!(forwarder.forward(local, port), async {
                    user.write_all(text.as_bytes()).await.unwrap();
                    user.shutdown().await.unwrap();
                    let mut echoed = String::new();
                    user.read_to_string(&mut echoed).await.unwrap();
                    echoed
                });
                forwarded.unwrap();
                assert_eq!(echoed, text);
            }
        };
        let big = "x".repeat(1 << 20);
        tokio::join!(
            connection("one".into()),
            connection("two".into()),
            connection(big)
        );
    }

    #[tokio::test]
    async fn the_servers_error_is_reported_with_both_ports() {
        let forwarder = forwarder();
        let (local, _user) = tokio::io::duplex(1024);
        let port = ForwardedPort {
            local: 9000,
            remote: 81,
        };
        let err = forwarder.forward(local, port).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "an error occurred forwarding 9000 -> 81: failed to connect to localhost:81"
        );
    }

    #[tokio::test]
    async fn a_closed_session_refuses_new_connections() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let forwarder = Forwarder::start(client_io);
        drop(server_io);
        forwarder.closed().await;
        let (local, _user) = tokio::io::duplex(1024);
        let port = ForwardedPort {
            local: 1,
            remote: 2,
        };
        let err = forwarder.forward(local, port).await.unwrap_err();
        assert!(matches!(err, ForwardError::ErrorStream { .. }), "{err}");
    }
}
