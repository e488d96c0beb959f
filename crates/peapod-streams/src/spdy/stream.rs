//! One SPDY stream: a byte stream both ways with independent half-close. Reads come from a
//! bounded receive buffer that the session's reader fills (it pauses the whole connection while
//! a stream's buffer is full, as spdystream does); writes become DATA frames of at most
//! [`MAX_WRITE_CHUNK`] bytes in the session's write queue; shutdown sends FIN; dropping a stream
//! that was not shut down or reset sends FIN too and discards whatever still arrives for it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use super::frame::{Frame, RstStatus};
use super::headers::Headers;
use super::session::{Inner, Owner};
use super::SpdyError;

/// Bytes a stream may hold unread before the session stops reading the connection.
pub(crate) const RECEIVE_BUFFER: usize = 256 << 10;
/// The largest DATA payload a write produces.
pub const MAX_WRITE_CHUNK: usize = 64 << 10;
/// Consumed bytes acknowledged per WINDOW_UPDATE. Go's spdystream ignores flow control (never
/// sends WINDOW_UPDATE, ignores those it gets), so nothing here waits on windows; the updates
/// only keep a flow-controlling peer (64 KiB initial window) from stalling.
pub(crate) const WINDOW_UPDATE_THRESHOLD: usize = 32 << 10;

/// How a stream ended before both sides finished.
#[derive(Debug, Clone, Copy)]
enum Ended {
    ResetByPeer(RstStatus),
    ResetLocally,
    SessionClosed,
}

impl Ended {
    fn error(self) -> io::Error {
        match self {
            Ended::ResetByPeer(status) => io::Error::new(
                io::ErrorKind::ConnectionReset,
                SpdyError::StreamReset(status),
            ),
            Ended::ResetLocally => io::Error::new(io::ErrorKind::ConnectionAborted, "stream reset"),
            Ended::SessionClosed => {
                io::Error::new(io::ErrorKind::ConnectionAborted, SpdyError::SessionClosed)
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    received: VecDeque<Bytes>,
    buffered: usize,
    remote_fin: bool,
    local_fin: bool,
    ended: Option<Ended>,
    /// The handle is gone: arriving data is dropped.
    detached: bool,
    read_waker: Option<Waker>,
    /// The session reader, waiting for room in `received`.
    room_waker: Option<Waker>,
    unacknowledged: usize,
    /// The opener, waiting for SYN_REPLY.
    reply: Option<oneshot::Sender<Result<(), SpdyError>>>,
}

/// A stream's state shared by its handle and the session.
#[derive(Debug)]
pub(crate) struct StreamShared {
    pub(crate) id: u32,
    state: Mutex<State>,
}

/// What became of a SYN_REPLY.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Delivered,
    /// A second reply, or one for a stream the peer opened: ignored, as spdystream does.
    Unexpected,
    /// The opener stopped waiting: the stream is to be reset.
    Abandoned,
}

/// What the session reader should do after handing a stream data.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    Open,
    /// Both sides are done: the session can forget the stream.
    Finished,
    /// Data after the peer's FIN.
    AfterFin,
}

impl StreamShared {
    /// A stream the peer opened.
    pub(crate) fn accepted(id: u32, remote_fin: bool, unidirectional: bool) -> Arc<StreamShared> {
        Arc::new(StreamShared {
            id,
            state: Mutex::new(State {
                remote_fin,
                local_fin: unidirectional,
                ..State::default()
            }),
        })
    }

    /// A stream this side opens; `reply` fires on SYN_REPLY.
    pub(crate) fn opened(
        id: u32,
        reply: oneshot::Sender<Result<(), SpdyError>>,
    ) -> Arc<StreamShared> {
        Arc::new(StreamShared {
            id,
            state: Mutex::new(State {
                reply: Some(reply),
                ..State::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ready when the reader may hand this stream more data.
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.buffered < RECEIVE_BUFFER || state.detached || state.ended.is_some() {
            return Poll::Ready(());
        }
        state.room_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    pub(crate) fn deliver(&self, data: Bytes, fin: bool) -> Delivered {
        let mut state = self.lock();
        if state.remote_fin {
            return Delivered::AfterFin;
        }
        if !data.is_empty() && !state.detached && state.ended.is_none() {
            state.buffered += data.len();
            state.received.push_back(data);
        }
        state.remote_fin = fin;
        wake(&mut state.read_waker);
        if fin && (state.local_fin || state.ended.is_some()) {
            Delivered::Finished
        } else {
            Delivered::Open
        }
    }

    /// SYN_REPLY arrived.
    pub(crate) fn replied(&self, fin: bool) -> Reply {
        let mut state = self.lock();
        let Some(reply) = state.reply.take() else {
            return Reply::Unexpected;
        };
        state.remote_fin |= fin;
        match reply.send(Ok(())) {
            Ok(()) => Reply::Delivered,
            Err(_) => Reply::Abandoned,
        }
    }

    pub(crate) fn reset_by_peer(&self, status: RstStatus) {
        self.end(Ended::ResetByPeer(status), SpdyError::StreamReset(status));
    }

    /// The session reset the stream for breaking the protocol.
    pub(crate) fn reset_for_protocol_error(&self, status: RstStatus) {
        self.end(Ended::ResetLocally, SpdyError::StreamReset(status));
    }

    pub(crate) fn session_closed(&self) {
        self.end(Ended::SessionClosed, SpdyError::SessionClosed);
    }

    /// The peer went away before replying to this stream.
    pub(crate) fn refused(&self) {
        self.end(Ended::SessionClosed, SpdyError::GoneAway);
    }

    fn end(&self, ended: Ended, opener_error: SpdyError) {
        let mut state = self.lock();
        state.ended.get_or_insert(ended);
        if let Some(reply) = state.reply.take() {
            let _ = reply.send(Err(opener_error));
        }
        wake(&mut state.read_waker);
        wake(&mut state.room_waker);
    }

    pub(crate) fn awaiting_reply(&self) -> bool {
        self.lock().reply.is_some()
    }
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(waker) = waker.take() {
        waker.wake();
    }
}

/// A stream of a [`super::Session`]: `AsyncRead` + `AsyncWrite`, `shutdown` half-closes
/// (FIN). `flush` is immediate: written bytes are already queued for the session's writer.
#[derive(Debug)]
pub struct Stream {
    shared: Arc<StreamShared>,
    inner: Arc<Inner>,
    headers: Headers,
    _owner: Arc<Owner>,
}

impl Stream {
    pub(crate) fn new(
        shared: Arc<StreamShared>,
        inner: Arc<Inner>,
        headers: Headers,
        owner: Arc<Owner>,
    ) -> Stream {
        Stream {
            shared,
            inner,
            headers,
            _owner: owner,
        }
    }

    pub fn id(&self) -> u32 {
        self.shared.id
    }

    /// The headers of the SYN_STREAM that opened the stream (the peer's, or the ones given to
    /// [`super::Session::open`]).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The next chunk of received data as it arrived, without copying; `None` at the peer's
    /// FIN.
    pub async fn recv(&mut self) -> io::Result<Option<Bytes>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        let mut state = self.shared.lock();
        if let Some(chunk) = state.received.pop_front() {
            self.consumed(&mut state, chunk.len());
            return Poll::Ready(Ok(Some(chunk)));
        }
        if state.remote_fin {
            return Poll::Ready(Ok(None));
        }
        if let Some(ended) = state.ended {
            return Poll::Ready(Err(ended.error()));
        }
        state.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Bookkeeping after the consumer took `length` bytes: room for the session reader, and
    /// a WINDOW_UPDATE every [`WINDOW_UPDATE_THRESHOLD`] bytes.
    fn consumed(&self, state: &mut State, length: usize) {
        state.buffered -= length;
        if state.buffered < RECEIVE_BUFFER {
            wake(&mut state.room_waker);
        }
        state.unacknowledged += length;
        if state.unacknowledged >= WINDOW_UPDATE_THRESHOLD && !state.remote_fin {
            let update = Frame::WindowUpdate {
                stream_id: self.shared.id,
                delta: state.unacknowledged as u32,
            };
            if self.inner.outbox.try_push(update) {
                state.unacknowledged = 0;
            }
        }
    }

    /// Sends RST_STREAM (CANCEL): both directions end at once, unread data is dropped.
    pub fn reset(&mut self) {
        let send = {
            let mut state = self.shared.lock();
            let send = state.ended.is_none() && !(state.local_fin && state.remote_fin);
            state.ended.get_or_insert(Ended::ResetLocally);
            state.received.clear();
            state.buffered = 0;
            wake(&mut state.room_waker);
            send
        };
        if send {
            let _ = self.inner.outbox.push(Frame::RstStream {
                stream_id: self.shared.id,
                status: RstStatus::CANCEL,
            });
        }
        self.inner.forget(self.shared.id);
    }

    /// How many received bytes wait to be read.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.shared.lock().buffered
    }

    fn write_error(&self) -> Option<io::Error> {
        let state = self.shared.lock();
        if let Some(ended) = state.ended {
            return Some(ended.error());
        }
        state
            .local_fin
            .then(|| io::Error::new(io::ErrorKind::BrokenPipe, "write after shutdown"))
    }

    /// Queues FIN once; true when the peer had finished too.
    fn send_fin(&self) -> Result<bool, SpdyError> {
        let peer_done = {
            let mut state = self.shared.lock();
            if state.local_fin || state.ended.is_some() {
                return Ok(false);
            }
            state.local_fin = true;
            state.remote_fin
        };
        self.inner.outbox.push(Frame::Data {
            stream_id: self.shared.id,
            fin: true,
            data: Bytes::new(),
        })?;
        Ok(peer_done)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mut state = this.shared.lock();
        let Some(chunk) = state.received.front_mut() else {
            if state.remote_fin {
                return Poll::Ready(Ok(()));
            }
            if let Some(ended) = state.ended {
                return Poll::Ready(Err(ended.error()));
            }
            state.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        let length = chunk.len().min(buf.remaining());
        buf.put_slice(&chunk[..length]);
        chunk.advance(length);
        if chunk.is_empty() {
            state.received.pop_front();
        }
        this.consumed(&mut state, length);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.write_error() {
            return Poll::Ready(Err(error));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let length = buf.len().min(MAX_WRITE_CHUNK);
        let stream_id = self.shared.id;
        let queued = self
            .inner
            .outbox
            .poll_push_data(cx, length, || Frame::Data {
                stream_id,
                fin: false,
                data: Bytes::copy_from_slice(&buf[..length]),
            });
        queued.map(|result| {
            result
                .map(|()| length)
                .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e))
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let peer_done = self
            .send_fin()
            .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e))?;
        if peer_done {
            self.inner.forget(self.shared.id);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.detached = true;
            state.received.clear();
            state.buffered = 0;
            wake(&mut state.room_waker);
        }
        // A session that can no longer send the FIN has nothing left to track either.
        let peer_done = self.send_fin().unwrap_or(true);
        let done = {
            let state = self.shared.lock();
            peer_done || state.ended.is_some() || (state.local_fin && state.remote_fin)
        };
        if done {
            self.inner.forget(self.shared.id);
        }
    }
}
