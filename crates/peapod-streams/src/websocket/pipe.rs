//! Byte streams over a session's channels: a reader of the chunks the session's reader task
//! delivers, a writer framing its bytes as messages for the session's writer loop. Both hold
//! bounded queues, so a slow side holds back the other instead of buffering.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::PollSender;

use super::channel::Framing;

/// The most bytes one written message carries.
pub const MAX_WRITE: usize = 64 * 1024;

/// Copies as much of `pending` as fits into `buf`.
pub fn fill(pending: &mut Bytes, buf: &mut ReadBuf<'_>) {
    let n = pending.len().min(buf.remaining());
    buf.put_slice(&pending[..n]);
    pending.advance(n);
}

/// Reads the chunks of one channel; end of input when the channel's sender is dropped.
pub struct ChannelReader {
    chunks: mpsc::Receiver<Bytes>,
    pending: Bytes,
}

impl ChannelReader {
    pub fn new(chunks: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            chunks,
            pending: Bytes::new(),
        }
    }
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match ready!(self.chunks.poll_recv(cx)) {
                Some(chunk) => self.pending = chunk,
                None => return Poll::Ready(Ok(())),
            }
        }
        fill(&mut self.pending, buf);
        Poll::Ready(Ok(()))
    }
}

/// Writes to one channel; shutting it down (or dropping it) tells the session this channel is
/// done.
pub struct ChannelWriter {
    framing: Framing,
    channel: u8,
    messages: PollSender<Message>,
}

impl ChannelWriter {
    pub fn new(framing: Framing, channel: u8, messages: mpsc::Sender<Message>) -> ChannelWriter {
        ChannelWriter {
            framing,
            channel,
            messages: PollSender::new(messages),
        }
    }
}

fn session_over() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the stream session is over")
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.messages.poll_reserve(cx)).map_err(|_| session_over())?;
        let n = buf.len().min(MAX_WRITE);
        let message = self.framing.encode(self.channel, &buf[..n]);
        self.messages
            .send_item(message)
            .map_err(|_| session_over())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.messages.close();
        Poll::Ready(Ok(()))
    }
}

/// A channel both ways (a port-forward data channel).
pub struct ChannelStream {
    pub reader: ChannelReader,
    pub writer: ChannelWriter,
}

impl AsyncRead for ChannelStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for ChannelStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}
