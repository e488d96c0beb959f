//! SPDY/3.1 as Kubernetes speaks it (moby/spdystream under client-go and kubelet): [`frame`]
//! encodes and incrementally decodes frames, [`headers`] holds the name/value blocks and their
//! session-wide zlib contexts, and [`Session`] multiplexes [`Stream`]s over one connection in
//! either role. [`fuzzing`] is the entry point the fuzz target and its stable test share.

pub mod frame;
pub mod fuzzing;
pub mod headers;
mod outbox;
mod reader;
mod session;
#[cfg(test)]
mod session_tests;
mod stream;
#[cfg(test)]
pub(crate) mod testing;

pub use frame::{Frame, FrameDecoder, FrameEncoder, GoAwayStatus, RstStatus};
pub use headers::Headers;
pub use session::{Incoming, PendingStream, Session};
pub use stream::{Stream, MAX_WRITE_CHUNK};

/// Why a frame, a stream or a session failed.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A control frame of a SPDY version other than 3.
    #[error("unsupported SPDY version {0}")]
    UnsupportedVersion(u16),
    /// A control frame longer than [`frame::MAX_CONTROL_FRAME_LENGTH`].
    #[error("{kind} frame of {length} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        kind: &'static str,
        length: usize,
        max: usize,
    },
    /// A frame whose fields contradict the format (bad length, stream id 0...).
    #[error("invalid {kind} frame: {reason}")]
    InvalidFrame {
        kind: &'static str,
        reason: &'static str,
    },
    /// The zlib stream of header blocks is broken (wrong dictionary, corrupt data).
    #[error("header block compression: {0}")]
    Compression(String),
    /// A decompressed name/value block that does not parse.
    #[error("malformed header block: {0}")]
    HeaderBlock(&'static str),
    #[error("header block exceeds {max} bytes once decompressed")]
    HeaderBlockTooLarge { max: usize },
    /// The connection is over (closed, broken, or a protocol error ended it).
    #[error("the SPDY session is closed")]
    SessionClosed,
    /// The peer sent GOAWAY: it takes no new streams.
    #[error("the peer sent GOAWAY")]
    GoneAway,
    /// The peer reset the stream.
    #[error("stream reset by the peer ({0})")]
    StreamReset(RstStatus),
    /// Every stream id of this side's parity is used up.
    #[error("no stream ids left")]
    StreamIdsExhausted,
}
