//! The session's write queue and the task that drains it. Frames queue in the order they must
//! reach the wire (a SYN_REPLY before the stream's DATA, DATA before its FIN); DATA waits while
//! the queue holds [`OUTBOX_LIMIT`] bytes, so a slow connection holds writers back instead of
//! growing memory. One writer task encodes whole batches into one buffer and writes them with
//! few syscalls.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::frame::{Frame, FrameEncoder};
use super::SpdyError;

/// Bytes of DATA that may wait for the writer before writers are held back.
pub(crate) const OUTBOX_LIMIT: usize = 512 << 10;
/// The writer hands the connection batches of about this size.
const WRITE_BATCH: usize = 256 << 10;

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Frame>,
    queued_bytes: usize,
    writer: Option<Waker>,
    waiting_for_room: Vec<Waker>,
    /// No more frames are taken; the writer flushes what is queued and shuts the connection.
    closing: bool,
    /// The writer is gone: nothing queued is written any more.
    closed: bool,
}

/// What the writer takes from the queue.
pub(crate) enum Batch {
    Frames,
    /// Everything queued was written and the session is closing.
    Close,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a control frame (or a FIN) without waiting for room: these are small, and
    /// the callers that could send many of them wait with [`Outbox::poll_room`] first.
    pub(crate) fn push(&self, frame: Frame) -> Result<(), SpdyError> {
        let mut queue = self.lock();
        if queue.closing || queue.closed {
            return Err(SpdyError::SessionClosed);
        }
        queue.frames.push_back(frame);
        if let Some(writer) = queue.writer.take() {
            writer.wake();
        }
        Ok(())
    }

    /// Queues `frame` unless the queue is full or closed; whether it was queued.
    pub(crate) fn try_push(&self, frame: Frame) -> bool {
        {
            let queue = self.lock();
            if queue.queued_bytes >= OUTBOX_LIMIT {
                return false;
            }
        }
        self.push(frame).is_ok()
    }

    /// Ready once the queue has room (or is closed, which the following push reports).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut queue = self.lock();
        if queue.queued_bytes < OUTBOX_LIMIT || queue.closing || queue.closed {
            return Poll::Ready(());
        }
        queue.waiting_for_room.push(cx.waker().clone());
        Poll::Pending
    }

    pub(crate) async fn push_when_room(&self, frame: Frame) -> Result<(), SpdyError> {
        poll_fn(|cx| self.poll_room(cx)).await;
        self.push(frame)
    }

    /// Queues DATA of `length` bytes, made by `frame` once there is room.
    pub(crate) fn poll_push_data(
        &self,
        cx: &mut Context<'_>,
        length: usize,
        frame: impl FnOnce() -> Frame,
    ) -> Poll<Result<(), SpdyError>> {
        let mut queue = self.lock();
        if queue.closing || queue.closed {
            return Poll::Ready(Err(SpdyError::SessionClosed));
        }
        if queue.queued_bytes >= OUTBOX_LIMIT {
            queue.waiting_for_room.push(cx.waker().clone());
            return Poll::Pending;
        }
        queue.queued_bytes += length;
        queue.frames.push_back(frame());
        if let Some(writer) = queue.writer.take() {
            writer.wake();
        }
        Poll::Ready(Ok(()))
    }

    /// Stops taking frames; the writer writes what is queued, then shuts the connection.
    pub(crate) fn close(&self) {
        let mut queue = self.lock();
        queue.closing = true;
        wake_all(&mut queue);
    }

    /// The writer is gone.
    pub(crate) fn fail(&self) {
        let mut queue = self.lock();
        queue.closed = true;
        queue.frames.clear();
        wake_all(&mut queue);
    }

    fn poll_take(&self, cx: &mut Context<'_>, batch: &mut VecDeque<Frame>) -> Poll<Batch> {
        let mut queue = self.lock();
        if !queue.frames.is_empty() {
            std::mem::swap(batch, &mut queue.frames);
            queue.queued_bytes = 0;
            for waiter in queue.waiting_for_room.drain(..) {
                waiter.wake();
            }
            return Poll::Ready(Batch::Frames);
        }
        if queue.closing {
            return Poll::Ready(Batch::Close);
        }
        queue.writer = Some(cx.waker().clone());
        Poll::Pending
    }

    fn is_empty(&self) -> bool {
        self.lock().frames.is_empty()
    }
}

fn wake_all(queue: &mut Queue) {
    if let Some(writer) = queue.writer.take() {
        writer.wake();
    }
    for waiter in queue.waiting_for_room.drain(..) {
        waiter.wake();
    }
}

/// Writes queued frames until the session closes (then shuts the connection down) or the
/// connection fails.
pub(crate) async fn write_frames<W>(outbox: &Outbox, io: &mut W) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut encoder = FrameEncoder::new();
    let mut batch = VecDeque::new();
    let mut out = BytesMut::with_capacity(WRITE_BATCH + (64 << 10));
    loop {
        let taken = poll_fn(|cx| outbox.poll_take(cx, &mut batch)).await;
        if let Batch::Close = taken {
            io.flush().await?;
            return io.shutdown().await;
        }
        for frame in batch.drain(..) {
            encoder.encode(&frame, &mut out).map_err(io::Error::other)?;
            if out.len() >= WRITE_BATCH {
                io.write_all(&out).await?;
                out.clear();
            }
        }
        if !out.is_empty() {
            io.write_all(&out).await?;
            out.clear();
        }
        if outbox.is_empty() {
            io.flush().await?;
        }
    }
}
