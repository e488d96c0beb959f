//! The session's reader task: decodes frames off the connection and acts on each, in order.
//! It waits (and so stops reading the connection) while a stream's receive buffer is full or
//! [`super::Incoming`] is not taken from, which is the session's back-pressure.

use std::future::poll_fn;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::frame::{Frame, FrameDecoder, GoAwayStatus, RstStatus};
use super::headers::Headers;
use super::session::{Inner, PendingStream, WeakOwner};
use super::stream::{Delivered, Reply, WINDOW_UPDATE_THRESHOLD};
use super::SpdyError;

/// Bytes asked of the connection per read.
const READ_CHUNK: usize = 256 << 10;

struct Reader<R> {
    inner: Arc<Inner>,
    io: R,
    decoder: FrameDecoder,
    buf: BytesMut,
    incoming: mpsc::Sender<PendingStream>,
    owner: WeakOwner,
    /// Bytes received since the last session-level WINDOW_UPDATE.
    unacknowledged: usize,
}

/// Reads until the connection ends, the session stops, or the peer breaks the protocol.
pub(crate) async fn run<R>(
    inner: Arc<Inner>,
    io: R,
    incoming: mpsc::Sender<PendingStream>,
    owner: WeakOwner,
) where
    R: AsyncRead + Unpin,
{
    let mut reader = Reader {
        inner: inner.clone(),
        io,
        decoder: FrameDecoder::new(),
        buf: BytesMut::with_capacity(READ_CHUNK),
        incoming,
        owner,
        unacknowledged: 0,
    };
    let result = tokio::select! {
        result = reader.read_frames() => result,
        () = inner.stop_reading() => Ok(()),
    };
    drop(reader);
    match result {
        Ok(()) => {}
        Err(SpdyError::Io(error)) => tracing::debug!(%error, "spdy: reading the connection failed"),
        Err(error) => {
            tracing::debug!(%error, "spdy: protocol error, closing the session");
            inner.begin_close(GoAwayStatus::PROTOCOL_ERROR);
        }
    }
    inner.reader_ended();
}

impl<R: AsyncRead + Unpin> Reader<R> {
    async fn read_frames(&mut self) -> Result<(), SpdyError> {
        loop {
            while let Some(frame) = self.decoder.decode(&mut self.buf)? {
                self.handle(frame).await;
            }
            self.buf.reserve(READ_CHUNK);
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Ok(());
            }
        }
    }

    async fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => self.on_data(stream_id, fin, data).await,
            Frame::SynStream {
                stream_id,
                fin,
                unidirectional,
                headers,
                ..
            } => {
                self.on_syn_stream(stream_id, fin, unidirectional, headers)
                    .await
            }
            Frame::SynReply { stream_id, fin, .. } => self.on_syn_reply(stream_id, fin).await,
            Frame::Headers { stream_id, fin, .. } => {
                self.on_data(stream_id, fin, Bytes::new()).await
            }
            Frame::RstStream { stream_id, status } => {
                if let Some(stream) = self.inner.stream(stream_id) {
                    self.inner.forget(stream_id);
                    stream.reset_by_peer(status);
                }
            }
            Frame::Ping { id } => {
                if self.inner.role.is_own_id(id) {
                    self.inner.pong(id);
                } else {
                    let _ = self.inner.outbox.push_when_room(Frame::Ping { id }).await;
                }
            }
            Frame::GoAway {
                last_good_stream_id,
                ..
            } => self.inner.peer_went_away(last_good_stream_id),
            Frame::Settings { .. } | Frame::WindowUpdate { .. } => {}
        }
    }

    /// DATA (or HEADERS, which only matter for their FIN).
    async fn on_data(&mut self, stream_id: u32, fin: bool, data: Bytes) {
        self.acknowledge(data.len());
        let Some(stream) = self.inner.stream(stream_id) else {
            return self.reset(stream_id, RstStatus::INVALID_STREAM).await;
        };
        if !data.is_empty() {
            poll_fn(|cx| stream.poll_room(cx)).await;
        }
        match stream.deliver(data, fin) {
            Delivered::Open => {}
            Delivered::Finished => self.inner.forget(stream_id),
            Delivered::AfterFin => {
                self.inner.forget(stream_id);
                stream.reset_for_protocol_error(RstStatus::STREAM_ALREADY_CLOSED);
                self.reset(stream_id, RstStatus::STREAM_ALREADY_CLOSED)
                    .await;
            }
        }
    }

    /// Credits the session window (SPDY/3.1) as data arrives.
    fn acknowledge(&mut self, length: usize) {
        self.unacknowledged += length;
        if self.unacknowledged >= WINDOW_UPDATE_THRESHOLD {
            let update = Frame::WindowUpdate {
                stream_id: 0,
                delta: self.unacknowledged as u32,
            };
            if self.inner.outbox.try_push(update) {
                self.unacknowledged = 0;
            }
        }
    }

    async fn on_syn_stream(
        &mut self,
        stream_id: u32,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    ) {
        let Some(registered) = self
            .inner
            .register_peer_stream(stream_id, fin, unidirectional)
        else {
            return self.reset(stream_id, RstStatus::PROTOCOL_ERROR).await;
        };
        let Some(shared) = registered else {
            return;
        };
        let Some(owner) = self.owner.upgrade() else {
            self.inner.forget(stream_id);
            return self.reset(stream_id, RstStatus::REFUSED_STREAM).await;
        };
        // A send error drops the pending stream, which resets it.
        let _ = self
            .incoming
            .send(PendingStream::new(shared, headers, owner))
            .await;
    }

    async fn on_syn_reply(&mut self, stream_id: u32, fin: bool) {
        let Some(stream) = self.inner.stream(stream_id) else {
            return self.reset(stream_id, RstStatus::INVALID_STREAM).await;
        };
        if stream.replied(fin) == Reply::Abandoned {
            self.inner.forget(stream_id);
            self.reset(stream_id, RstStatus::CANCEL).await;
        }
    }

    async fn reset(&mut self, stream_id: u32, status: RstStatus) {
        let _ = self
            .inner
            .outbox
            .push_when_room(Frame::RstStream { stream_id, status })
            .await;
    }
}
