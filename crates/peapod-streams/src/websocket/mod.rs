//! The WebSocket side of Kubernetes' streaming protocols, over tokio-tungstenite on an already
//! upgraded connection: the channel framing of the `*.channel.k8s.io` subprotocols
//! ([`channel`]), the SPDY tunnel of `SPDY/3.1+portforward.k8s.io` ([`tunnel`]), and the
//! reader task / writer loop a channel session runs as.

pub mod channel;
pub(crate) mod pipe;
#[cfg(test)]
pub(crate) mod testing;
pub mod tunnel;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The largest frame, and message, taken from a peer: golang.org/x/net/websocket's
/// `DefaultMaxPayloadBytes`, with which kube-apiserver and kubelet read. A larger frame ends
/// the session as soon as its header arrives.
pub const MAX_MESSAGE_BYTES: usize = 32 << 20;

/// How long a finished session waits for the client's close frame. Until then the connection
/// stays open, so that output still in flight is not lost to a reset.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The configuration sessions run with: kube's size limit, and messages written out as they
/// are sent rather than batched.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
        .write_buffer_size(0)
}

/// The server end of a WebSocket on a connection the HTTP upgrade already answered.
pub async fn server<T>(io: T) -> WebSocketStream<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await
}

/// The client's side of the connection ended or broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended;

/// Splits a session's WebSocket: `read` runs as its own task on the client's messages, the
/// returned [`Outbound`] writes to the client.
pub(crate) fn link<T, F, Fut>(ws: WebSocketStream<T>, read: F) -> Outbound<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    F: FnOnce(Inbound<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (sink, stream) = ws.split();
    let (closing, closing_seen) = watch::channel(false);
    let inbound = Inbound {
        stream,
        closing: closing_seen,
    };
    Outbound {
        sink,
        reader: ReaderTask {
            handle: tokio::spawn(read(inbound)),
            ended: false,
        },
        closing,
    }
}

/// The reading half of a session.
pub(crate) struct Inbound<T> {
    stream: SplitStream<WebSocketStream<T>>,
    closing: watch::Receiver<bool>,
}

impl<T> Inbound<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    /// The payload of the client's next data message; `None` once the connection is over.
    /// Pings are answered on the way, and a close frame is answered before the end.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            match self.stream.next().await? {
                Ok(message) => {
                    if let Some(payload) = channel::payload(message) {
                        return Some(payload);
                    }
                }
                Err(err) => {
                    tracing::debug!(%err, "websocket session read failed");
                    return None;
                }
            }
        }
    }

    /// Hands `item` to its consumer, unless the session closes first. `false` when it was not
    /// delivered (the consumer is gone, or the session is closing): stop delivering there.
    pub async fn deliver<I>(&mut self, consumer: &mpsc::Sender<I>, item: I) -> bool {
        if *self.closing.borrow() {
            return false;
        }
        tokio::select! {
            sent = consumer.send(item) => sent.is_ok(),
            _ = self.closing.wait_for(|closing| *closing) => false,
        }
    }
}

/// The writing half of a session; the reader task ends with it.
pub(crate) struct Outbound<T> {
    sink: SplitSink<WebSocketStream<T>, Message>,
    reader: ReaderTask,
    closing: watch::Sender<bool>,
}

struct ReaderTask {
    handle: JoinHandle<()>,
    ended: bool,
}

impl ReaderTask {
    async fn ended(&mut self) {
        if !self.ended {
            let _ = (&mut self.handle).await;
            self.ended = true;
        }
    }
}

impl<T> Outbound<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    /// The next item for the client, unless the client is gone first.
    pub async fn next<I>(&mut self, items: &mut mpsc::Receiver<I>) -> Result<Option<I>, Ended> {
        tokio::select! {
            biased;
            _ = self.reader.ended() => Err(Ended),
            item = items.recv() => Ok(item),
        }
    }

    /// Sends (and flushes) a message, unless the client is gone first.
    pub async fn send(&mut self, message: Message) -> Result<(), Ended> {
        tokio::select! {
            sent = self.sink.send(message) => sent.map_err(|_| Ended),
            _ = self.reader.ended() => Err(Ended),
        }
    }

    /// Starts the close handshake; the reader delivers nothing more from then on.
    pub async fn close(&mut self, code: CloseCode, reason: &'static str) -> Result<(), Ended> {
        self.closing.send_replace(true);
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        self.send(Message::Close(Some(frame))).await
    }

    /// Waits for the client to answer the close frame, [`CLOSE_TIMEOUT`] at most.
    pub async fn linger(mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.reader.ended()).await;
    }
}

impl<T> Drop for Outbound<T> {
    fn drop(&mut self) {
        self.reader.handle.abort();
    }
}
