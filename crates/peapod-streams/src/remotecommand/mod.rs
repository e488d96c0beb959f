//! The streams of one exec or attach session (kubelet's remotecommand), the same over every
//! transport: the client's stdin and terminal sizes in, stdout and stderr out, and the outcome
//! on the error channel at the end, written as the negotiated protocol version wants it
//! (`metav1.Status` JSON from v4, plain text before).

pub mod client;
mod spdy;
mod websocket;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use crate::negotiate::{Negotiated, Transport};
use crate::StreamError;

/// What the client asked for (PodExecOptions, PodAttachOptions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A terminal size on the resize channel, with client-go's Go field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// How the session ended, as kubelet's ServeExec reports it on the error channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The process exited non-zero; `message` is the runtime's wording of the exit
    /// (`error executing command [sh -c exit 3], exit code 3`).
    ExitCode {
        code: i32,
        message: String,
    },
    /// The session failed (the command could not start...): an InternalError.
    Internal(String),
}

impl Outcome {
    /// The `metav1.Status` v4 and v5 write on the error channel (apiserver's
    /// `codeExitToStatusError`, apimachinery's `NewInternalError`).
    pub fn status(&self) -> Value {
        serde_json::to_value(self.go_status()).expect("a Status serializes")
    }

    /// That Status as Go's encoding/json writes it: fields in declaration order, HTML
    /// characters escaped.
    pub fn status_json(&self) -> Vec<u8> {
        let json = serde_json::to_string(&self.go_status()).expect("a Status serializes");
        go_html_escape(&json).into_bytes()
    }

    /// What v1 to v3 write on the error channel: the Status message, nothing on success.
    pub fn text(&self) -> Option<String> {
        self.go_status().message
    }

    fn go_status(&self) -> GoStatus<'_> {
        match self {
            Outcome::Success => GoStatus {
                status: "Success",
                ..GoStatus::default()
            },
            Outcome::ExitCode { code, message } => GoStatus {
                status: "Failure",
                message: Some(format!(
                    "command terminated with non-zero exit code: {message}"
                )),
                reason: Some("NonZeroExitCode"),
                details: Some(GoDetails {
                    causes: vec![GoCause {
                        reason: Some("ExitCode"),
                        message: code.to_string().into(),
                    }],
                }),
                ..GoStatus::default()
            },
            Outcome::Internal(message) => GoStatus {
                status: "Failure",
                message: Some(format!("Internal error occurred: {message}")),
                reason: Some("InternalError"),
                details: Some(GoDetails {
                    causes: vec![GoCause {
                        reason: None,
                        message: message.as_str().into(),
                    }],
                }),
                code: Some(500),
                ..GoStatus::default()
            },
        }
    }
}

/// `metav1.Status` with its fields in Go's declaration order.
#[derive(Debug, Default, Serialize)]
struct GoStatus<'a> {
    metadata: GoMetadata,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<GoDetails<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

/// `metav1.ListMeta`, always empty here (`{}`).
#[derive(Debug, Default, Serialize)]
struct GoMetadata {}

#[derive(Debug, Serialize)]
struct GoDetails<'a> {
    causes: Vec<GoCause<'a>>,
}

/// A `StatusCause`; its `type` is serialised as `reason`.
#[derive(Debug, Serialize)]
struct GoCause<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: std::borrow::Cow<'a, str>,
}

/// Go's encoder writes `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes; outside strings JSON
/// has none of them.
fn go_html_escape(json: &str) -> String {
    let mut escaped = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The remote-command channel numbers (apimachinery's `remotecommand` constants), shared by
/// the WebSocket server and client.
pub(crate) mod channel {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const ERROR: u8 = 3;
    pub const RESIZE: u8 = 4;
    /// How many there are: channels from here on are unknown.
    pub const CHANNELS: u8 = 5;
}

/// What the caller writes back; the transport's writer task encodes it.
#[derive(Debug)]
pub enum OutputFrame {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The last frame: the outcome, then the close handshake; `done` fires once flushed.
    Finish {
        outcome: Outcome,
        done: oneshot::Sender<()>,
    },
}

/// The client went away (or the session's writer ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client closed the stream")]
pub struct Gone;

/// The writing half of a session. Sends wait while the transport is behind (bounded buffers):
/// a client that does not read holds back the process, not the agent's memory.
#[derive(Debug, Clone)]
pub struct Output {
    tx: mpsc::Sender<OutputFrame>,
}

/// How many output frames may wait for the transport.
pub const OUTPUT_FRAMES: usize = 16;

impl Output {
    /// An output and the receiving end its transport's writer task drains.
    pub fn channel() -> (Output, mpsc::Receiver<OutputFrame>) {
        let (tx, rx) = mpsc::channel(OUTPUT_FRAMES);
        (Output { tx }, rx)
    }

    pub async fn stdout(&self, data: Bytes) -> Result<(), Gone> {
        self.tx
            .send(OutputFrame::Stdout(data))
            .await
            .map_err(|_| Gone)
    }

    pub async fn stderr(&self, data: Bytes) -> Result<(), Gone> {
        self.tx
            .send(OutputFrame::Stderr(data))
            .await
            .map_err(|_| Gone)
    }

    /// Writes the outcome, closes the session and waits until that is on the wire.
    pub async fn finish(self, outcome: Outcome) {
        let (done, flushed) = oneshot::channel();
        if self
            .tx
            .send(OutputFrame::Finish { outcome, done })
            .await
            .is_ok()
        {
            let _ = flushed.await;
        }
    }

    /// Resolves when the client is gone: its connection closed or broke (not a mere end of
    /// stdin), so the caller can end the process it started.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// One accepted exec or attach session.
#[derive(Debug)]
pub struct Session {
    /// The negotiated protocol (`v5.channel.k8s.io`...).
    pub protocol: &'static str,
    /// The client's stdin when asked for: chunks, then the channel closes at the client's end
    /// of input (v5's close message, the SPDY stream's FIN).
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Terminal sizes when a TTY was asked for and the protocol has a resize channel.
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
    pub output: Output,
}

/// Turns an upgraded connection into a session: for SPDY, waits for the streams `options`
/// call for (kubelet's stream creation timeout); for WebSocket, sends the ready message.
pub async fn accept<T>(
    io: T,
    negotiated: &Negotiated,
    options: Options,
) -> Result<Session, StreamError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    match negotiated.transport {
        Transport::WebSocket => websocket::accept(io, negotiated.protocol, options).await,
        Transport::Spdy => spdy::accept(io, negotiated.protocol, options).await,
        Transport::SpdyOverWebSocket => Err(StreamError::Protocol(format!(
            "{} is a port-forward protocol",
            negotiated.protocol
        ))),
    }
}
