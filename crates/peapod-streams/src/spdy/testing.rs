//! Test helpers: a raw SPDY peer that speaks frames directly, and short-hands for the client
//! side of sessions (acting as kubectl does).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

use super::frame::{Frame, FrameDecoder, FrameEncoder};
use super::headers::Headers;

/// How long a test waits for something that should happen promptly.
pub(crate) const PROMPTLY: Duration = Duration::from_secs(10);

pub(crate) fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().copied().collect()
}

/// Two ends of an in-memory connection with room for a few frames in flight.
pub(crate) fn connection() -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(1 << 20)
}

pub(crate) async fn read_all<R: AsyncRead + Unpin>(reader: &mut R) -> Vec<u8> {
    let mut bytes = Vec::new();
    tokio::time::timeout(PROMPTLY, reader.read_to_end(&mut bytes))
        .await
        .expect("reading to EOF timed out")
        .expect("reading to EOF failed");
    bytes
}

/// A peer that writes and reads frames itself, to provoke what a well-behaved session never
/// sends.
pub(crate) struct RawPeer<T> {
    pub(crate) io: T,
    encoder: FrameEncoder,
    decoder: FrameDecoder,
    buf: BytesMut,
}

impl<T: AsyncRead + AsyncWrite + Unpin> RawPeer<T> {
    pub(crate) fn new(io: T) -> RawPeer<T> {
        RawPeer {
            io,
            encoder: FrameEncoder::new(),
            decoder: FrameDecoder::new(),
            buf: BytesMut::new(),
        }
    }

    pub(crate) async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        self.encoder.encode(&frame, &mut out).unwrap();
        self.io.write_all(&out).await.unwrap();
    }

    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// The next frame; `None` at EOF.
    pub(crate) async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(PROMPTLY, self.next_now())
            .await
            .expect("no frame came")
    }

    async fn next_now(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(frame);
            }
            self.buf.reserve(64 << 10);
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next frame that `wanted` accepts, skipping others (WINDOW_UPDATEs...).
    pub(crate) async fn next_matching(&mut self, wanted: impl Fn(&Frame) -> bool) -> Frame {
        loop {
            match self.next().await {
                Some(frame) if wanted(&frame) => return frame,
                Some(_) => {}
                None => panic!("the connection ended first"),
            }
        }
    }
}
