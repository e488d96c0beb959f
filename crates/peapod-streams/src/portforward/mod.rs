//! The connections of one port-forward session (kubelet's portforward), the same over every
//! transport: per forwarded connection, the remote port, a data stream both ways and an error
//! stream on which the caller reports why it could not connect.

pub mod client;
mod spdy;
mod websocket;

use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::negotiate::{Negotiated, Transport};
use crate::StreamError;

/// A byte stream both ways.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// One connection the client wants forwarded to `port` in the pod.
pub struct Connection {
    pub port: u16,
    pub data: Pin<Box<dyn Duplex>>,
    pub error: Pin<Box<dyn AsyncWrite + Send>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("port", &self.port)
            .finish()
    }
}

impl Connection {
    /// Reports a failure to the client (kubectl prints `an error occurred forwarding L -> R:
    /// MESSAGE`) and ends the connection.
    pub async fn fail(mut self, message: &str) {
        let _ = self.error.write_all(message.as_bytes()).await;
        let _ = self.error.shutdown().await;
        let _ = self.data.shutdown().await;
    }
}

/// The connections of a session, as the client opens them; `None` once the session is over.
#[derive(Debug)]
pub struct Connections {
    rx: mpsc::Receiver<Connection>,
}

impl Connections {
    pub fn channel(buffer: usize) -> (mpsc::Sender<Connection>, Connections) {
        let (tx, rx) = mpsc::channel(buffer);
        (tx, Connections { rx })
    }

    pub async fn next(&mut self) -> Option<Connection> {
        self.rx.recv().await
    }
}

/// Turns an upgraded connection into a port-forward session. `ports` are the request's
/// `ports` query values, which the WebSocket protocol needs (SPDY names the port per stream).
pub async fn accept<T>(
    io: T,
    negotiated: &Negotiated,
    ports: &[u16],
) -> Result<Connections, StreamError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    match negotiated.transport {
        Transport::Spdy => Ok(spdy::accept(io)),
        Transport::SpdyOverWebSocket => {
            Ok(spdy::accept(crate::websocket::tunnel::server(io).await))
        }
        Transport::WebSocket => websocket::accept(io, ports).await,
    }
}
