//! exec and attach over WebSocket: wsstream's channels 0 stdin, 1 stdout, 2 stderr, 3 error and
//! 4 resize, served as kube-apiserver's stream translator serves v5 and kubelet serves v4 and
//! older: an empty message on the lowest writable channel first, the outcome on the error
//! channel last, then the close frame 1000.

use bytes::Bytes;
use futures::SinkExt;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use super::channel::{CHANNELS, ERROR, RESIZE, STDERR, STDIN, STDOUT};
use super::{Options, Outcome, Output, OutputFrame, Session, TerminalSize};
use crate::negotiate::{V4_BASE64_CHANNEL, V4_CHANNEL, V5_CHANNEL};
use crate::websocket::channel::{ChannelMessage, Framing};
use crate::websocket::{self, Inbound, Outbound};
use crate::StreamError;

/// How many stdin messages wait for the caller before the client is no longer read. kube
/// blocks the same way; meanwhile pings go unanswered, so this is roomy.
const STDIN_CHUNKS: usize = 64;
const RESIZES: usize = 4;
/// The most bytes of an unfinished terminal size kept waiting for the rest.
const MAX_PARTIAL_RESIZE: usize = 4096;

pub async fn accept<T>(
    io: T,
    protocol: &'static str,
    options: Options,
) -> Result<Session, StreamError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let dialect = Dialect::of(protocol)?;
    let mut ws = websocket::server(io).await;
    ws.send(dialect.framing.encode(ready_channel(options), &[]))
        .await?;
    let (stdin_input, stdin) = input_channel(options.stdin, STDIN_CHUNKS);
    let (resize_input, resize) = input_channel(options.tty, RESIZES);
    let inputs = Inputs {
        stdin: stdin_input,
        resize: resize_input,
        sizes: SizeDecoder::default(),
    };
    let framing = dialect.framing;
    let outbound = websocket::link(ws, move |inbound| read_input(inbound, framing, inputs));
    let (output, frames) = Output::channel();
    tokio::spawn(write_output(outbound, frames, dialect, options));
    Ok(Session {
        protocol,
        stdin,
        resize,
        output,
    })
}

/// createWebSocketStreams' ready signal goes to the lowest writable channel.
fn ready_channel(options: Options) -> u8 {
    match options {
        Options { stdout: true, .. } => STDOUT,
        Options { stderr: true, .. } => STDERR,
        _ => ERROR,
    }
}

fn input_channel<I>(
    wanted: bool,
    capacity: usize,
) -> (Option<mpsc::Sender<I>>, Option<mpsc::Receiver<I>>) {
    if !wanted {
        return (None, None);
    }
    let (sender, receiver) = mpsc::channel(capacity);
    (Some(sender), Some(receiver))
}

/// What a negotiated protocol changes: the framing, and how the outcome is written.
#[derive(Debug, Clone, Copy)]
struct Dialect {
    framing: Framing,
    status_as_json: bool,
}

impl Dialect {
    fn of(protocol: &str) -> Result<Dialect, StreamError> {
        let framing = Framing::for_protocol(protocol, CHANNELS).ok_or_else(|| {
            StreamError::Protocol(format!(
                "{protocol:?} is not a WebSocket remote-command protocol"
            ))
        })?;
        let status_as_json = matches!(protocol, V5_CHANNEL | V4_CHANNEL | V4_BASE64_CHANNEL);
        Ok(Dialect {
            framing,
            status_as_json,
        })
    }

    /// The error channel's last message: `metav1.Status` JSON from v4; before, the failure's
    /// message, and nothing for a success.
    fn outcome_message(&self, outcome: &Outcome) -> Option<Message> {
        let body = if self.status_as_json {
            outcome.status_json()
        } else {
            outcome.text()?.into_bytes()
        };
        Some(self.framing.encode(ERROR, &body))
    }
}

/// Where the client's messages go.
struct Inputs {
    stdin: Option<mpsc::Sender<Bytes>>,
    resize: Option<mpsc::Sender<TerminalSize>>,
    sizes: SizeDecoder,
}

async fn read_input<T>(mut inbound: Inbound<T>, framing: Framing, mut inputs: Inputs)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(payload) = inbound.next().await {
        match framing.decode(payload) {
            Ok(Some(ChannelMessage::Data { channel, data })) => {
                inputs.deliver(&mut inbound, channel, data).await
            }
            Ok(Some(ChannelMessage::Close { channel })) => inputs.close(channel),
            Ok(None) => {}
            Err(err) if err.is_fatal() => {
                tracing::debug!(%err, "remote-command client broke the protocol");
                return;
            }
            Err(err) => tracing::debug!(%err, "dropped a remote-command message"),
        }
    }
}

impl Inputs {
    async fn deliver<T>(&mut self, inbound: &mut Inbound<T>, channel: u8, data: Bytes)
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        match channel {
            STDIN if !data.is_empty() => {
                if let Some(stdin) = &self.stdin {
                    if !inbound.deliver(stdin, data).await {
                        self.stdin = None;
                    }
                }
            }
            RESIZE => self.resize(inbound, &data).await,
            _ => {}
        }
    }

    async fn resize<T>(&mut self, inbound: &mut Inbound<T>, data: &[u8])
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(resize) = &self.resize else {
            return;
        };
        self.sizes.push(data);
        while let Some(size) = self.sizes.next_size() {
            let delivered = match size {
                Ok(size) => inbound.deliver(resize, size).await,
                Err(err) => {
                    tracing::debug!(%err, "resize stream ended");
                    false
                }
            };
            if !delivered {
                self.resize = None;
                return;
            }
        }
    }

    /// v5's CLOSE signal: the client's end of input on a channel.
    fn close(&mut self, channel: u8) {
        match channel {
            STDIN => self.stdin = None,
            RESIZE => self.resize = None,
            _ => {}
        }
    }
}

/// The resize channel: JSON terminal sizes one after another, split across messages anyhow, as
/// kube's `json.Decoder` reads them.
#[derive(Debug, Default)]
struct SizeDecoder {
    pending: Vec<u8>,
}

impl SizeDecoder {
    fn push(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
    }

    /// The next size, `None` until one is complete. An error ends the resize stream, as it
    /// ends kube's loop.
    fn next_size(&mut self) -> Option<Result<TerminalSize, String>> {
        let mut values = serde_json::Deserializer::from_slice(&self.pending).into_iter::<Value>();
        let size = match values.next() {
            None => {
                self.pending.clear();
                return None;
            }
            Some(Ok(value)) => terminal_size(&value),
            Some(Err(err)) if err.is_eof() && self.pending.len() <= MAX_PARTIAL_RESIZE => {
                return None;
            }
            Some(Err(err)) => {
                self.pending.clear();
                return Some(Err(err.to_string()));
            }
        };
        let consumed = values.byte_offset();
        self.pending.drain(..consumed);
        Some(size)
    }
}

/// A size as Go decodes `{"Width":W,"Height":H}`: keys in any case, missing ones zero.
fn terminal_size(value: &Value) -> Result<TerminalSize, String> {
    let mut size = TerminalSize {
        width: 0,
        height: 0,
    };
    let fields = match value {
        Value::Null => return Ok(size),
        Value::Object(fields) => fields,
        other => return Err(format!("cannot unmarshal {other} into a terminal size")),
    };
    for (key, value) in fields {
        let dimension = if key.eq_ignore_ascii_case("width") {
            &mut size.width
        } else if key.eq_ignore_ascii_case("height") {
            &mut size.height
        } else {
            continue;
        };
        if !value.is_null() {
            *dimension = value
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| format!("cannot unmarshal {value} into a terminal dimension"))?;
        }
    }
    Ok(size)
}

async fn write_output<T>(
    mut outbound: Outbound<T>,
    mut frames: mpsc::Receiver<OutputFrame>,
    dialect: Dialect,
    options: Options,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let Ok(frame) = outbound.next(&mut frames).await else {
            return;
        };
        let message = match frame {
            Some(OutputFrame::Stdout(data)) if options.stdout => {
                dialect.framing.encode(STDOUT, &data)
            }
            Some(OutputFrame::Stderr(data)) if options.stderr => {
                dialect.framing.encode(STDERR, &data)
            }
            Some(OutputFrame::Stdout(_) | OutputFrame::Stderr(_)) => continue,
            Some(OutputFrame::Finish { outcome, done }) => {
                drop(frames);
                return finish(outbound, dialect.outcome_message(&outcome), done).await;
            }
            None => {
                let reason = "the session ended without an outcome";
                if outbound.close(CloseCode::Error, reason).await.is_ok() {
                    outbound.linger().await;
                }
                return;
            }
        };
        if outbound.send(message).await.is_err() {
            return;
        }
    }
}

async fn finish<T>(mut outbound: Outbound<T>, status: Option<Message>, done: oneshot::Sender<()>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(status) = status {
        if outbound.send(status).await.is_err() {
            return;
        }
    }
    if outbound.close(CloseCode::Normal, "").await.is_ok() {
        let _ = done.send(());
        outbound.linger().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine;
    use futures::{SinkExt, StreamExt};
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::negotiate::{BASE64_CHANNEL, CHANNEL};
    use crate::remotecommand::{Gone, OUTPUT_FRAMES};
    use crate::websocket::testing::{
        binary, client, connection, normal_close, receive, send_binary, Client,
    };

    const EXIT_3: &str = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;

    fn exit_3() -> Outcome {
        Outcome::ExitCode {
            code: 3,
            message: "error executing command [sh -c exit 3], exit code 3".into(),
        }
    }

    const EXEC: Options = Options {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    };

    async fn open(protocol: &'static str, options: Options) -> (Session, Client) {
        let (server_io, client_io) = connection(1 << 16);
        let (session, client) =
            tokio::join!(accept(server_io, protocol, options), client(client_io));
        (session.unwrap(), client)
    }

    async fn gone(output: &Output) -> bool {
        tokio::time::timeout(Duration::from_secs(5), output.closed())
            .await
            .is_ok()
    }

    fn text(data: &str) -> Message {
        Message::Text(data.into())
    }

    #[tokio::test]
    async fn kubectl_v5_exec_end_to_end() {
        let (mut session, mut client) = open(V5_CHANNEL, EXEC).await;
        assert_eq!(receive(&mut client).await, binary(b"\x01"));
        send_binary(&mut client, b"\x00abc\n").await;
        send_binary(&mut client, &[255, 0]).await;
        let stdin = session.stdin.as_mut().unwrap();
        assert_eq!(stdin.recv().await.unwrap(), "abc\n");
        assert_eq!(stdin.recv().await, None);
        assert!(session.resize.is_none());
        session
            .output
            .stdout(Bytes::from_static(b"out"))
            .await
            .unwrap();
        session
            .output
            .stderr(Bytes::from_static(b"err"))
            .await
            .unwrap();
        assert_eq!(receive(&mut client).await, binary(b"\x01out"));
        assert_eq!(receive(&mut client).await, binary(b"\x02err"));
        let finished = tokio::spawn(session.output.finish(exit_3()));
        let status = [&[ERROR][..], EXIT_3.as_bytes()].concat();
        assert_eq!(receive(&mut client).await, binary(&status));
        assert_eq!(receive(&mut client).await, normal_close());
        finished.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_v5_end_of_stdin_is_not_the_client_going_away() {
        let (session, mut client) = open(V5_CHANNEL, EXEC).await;
        send_binary(&mut client, &[255, 0]).await;
        let mut stdin = session.stdin.unwrap();
        assert_eq!(stdin.recv().await, None);
        assert!(!gone(&session.output).await);
        session
            .output
            .stdout(Bytes::from_static(b"still"))
            .await
            .unwrap();
        receive(&mut client).await;
        assert_eq!(receive(&mut client).await, binary(b"\x01still"));
    }

    #[tokio::test]
    async fn terminal_sizes_arrive_however_the_json_is_split() {
        let tty = Options {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        };
        let (mut session, mut client) = open(V5_CHANNEL, tty).await;
        send_binary(&mut client, b"\x04{\"Width\":80,\"Height\":24}").await;
        send_binary(&mut client, b"\x04{\"width\":100,").await;
        send_binary(&mut client, b"\x04\"HEIGHT\":50}{\"Width\":1,\"Height\":2}").await;
        let resize = session.resize.as_mut().unwrap();
        let size = |width, height| TerminalSize { width, height };
        assert_eq!(resize.recv().await, Some(size(80, 24)));
        assert_eq!(resize.recv().await, Some(size(100, 50)));
        assert_eq!(resize.recv().await, Some(size(1, 2)));
        send_binary(&mut client, b"\x04{\"Width\":70000}").await;
        assert_eq!(resize.recv().await, None);
        // stderr was not asked for: what is written there is dropped.
        session
            .output
            .stderr(Bytes::from_static(b"x"))
            .await
            .unwrap();
        session
            .output
            .stdout(Bytes::from_static(b"y"))
            .await
            .unwrap();
        assert_eq!(receive(&mut client).await, binary(b"\x01"));
        assert_eq!(receive(&mut client).await, binary(b"\x01y"));
    }

    #[tokio::test]
    async fn v4_reports_the_outcome_as_status_json() {
        let stdout_only = Options {
            stdout: true,
            ..Options::default()
        };
        let (session, mut client) = open(V4_CHANNEL, stdout_only).await;
        assert!(session.stdin.is_none());
        assert_eq!(receive(&mut client).await, binary(b"\x01"));
        tokio::spawn(session.output.finish(Outcome::Success));
        let success = br#"{"metadata":{},"status":"Success"}"#;
        assert_eq!(
            receive(&mut client).await,
            binary(&[&[ERROR][..], success].concat())
        );
        assert_eq!(receive(&mut client).await, normal_close());
    }

    #[tokio::test]
    async fn base64_channels_are_text_and_v1_reports_the_failure_as_text() {
        let (mut session, mut client) = open(BASE64_CHANNEL, EXEC).await;
        assert_eq!(receive(&mut client).await, text("1"));
        client.send(text("0aGk=")).await.unwrap();
        assert_eq!(session.stdin.as_mut().unwrap().recv().await.unwrap(), "hi");
        session
            .output
            .stdout(Bytes::from_static(b"out"))
            .await
            .unwrap();
        assert_eq!(receive(&mut client).await, text("1b3V0"));
        tokio::spawn(session.output.finish(exit_3()));
        let message = "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3";
        let encoded = base64::engine::general_purpose::STANDARD.encode(message);
        assert_eq!(receive(&mut client).await, text(&format!("3{encoded}")));
        assert_eq!(receive(&mut client).await, normal_close());
    }

    #[tokio::test]
    async fn v1_reports_nothing_for_a_success() {
        let (session, mut client) = open(CHANNEL, EXEC).await;
        assert_eq!(receive(&mut client).await, binary(b"\x01"));
        tokio::spawn(session.output.finish(Outcome::Success));
        assert_eq!(receive(&mut client).await, normal_close());
    }

    #[tokio::test]
    async fn the_ready_message_goes_to_the_lowest_writable_channel() {
        let stderr_only = Options {
            stderr: true,
            ..Options::default()
        };
        let (_session, mut client) = open(V5_CHANNEL, stderr_only).await;
        assert_eq!(receive(&mut client).await, binary(b"\x02"));
        let stdin_only = Options {
            stdin: true,
            ..Options::default()
        };
        let (_session, mut client) = open(V5_CHANNEL, stdin_only).await;
        assert_eq!(receive(&mut client).await, binary(b"\x03"));
    }

    #[tokio::test]
    async fn a_vanished_client_closes_the_output() {
        let (mut session, client) = open(V5_CHANNEL, EXEC).await;
        drop(client);
        assert!(gone(&session.output).await);
        assert_eq!(session.stdin.as_mut().unwrap().recv().await, None);
        let late = session.output.stdout(Bytes::from_static(b"late")).await;
        assert_eq!(late, Err(Gone));
    }

    #[tokio::test]
    async fn a_client_closing_the_websocket_is_gone() {
        let (session, mut client) = open(V5_CHANNEL, EXEC).await;
        client.send(normal_close()).await.unwrap();
        assert!(gone(&session.output).await);
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_at_its_header() {
        let (server_io, mut client_io) = connection(1 << 16);
        let session = accept(server_io, V5_CHANNEL, EXEC).await.unwrap();
        // A masked binary frame claiming 64 MiB, and none of its payload.
        let header = [0x82, 0xff, 0, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4];
        client_io.write_all(&header).await.unwrap();
        assert!(gone(&session.output).await);
    }

    #[tokio::test]
    async fn a_malformed_close_signal_ends_the_session() {
        let (session, mut client) = open(V5_CHANNEL, EXEC).await;
        send_binary(&mut client, &[255]).await;
        assert!(gone(&session.output).await);
    }

    #[tokio::test]
    async fn unknown_channels_are_dropped_and_text_frames_read_as_binary() {
        let (mut session, mut client) = open(V5_CHANNEL, EXEC).await;
        send_binary(&mut client, b"\x07ignored").await;
        send_binary(&mut client, b"\x01not stdin").await;
        client.send(text("\u{0}typed")).await.unwrap();
        assert_eq!(
            session.stdin.as_mut().unwrap().recv().await.unwrap(),
            "typed"
        );
    }

    #[tokio::test]
    async fn pings_are_answered() {
        let (_session, mut client) = open(V5_CHANNEL, EXEC).await;
        assert_eq!(receive(&mut client).await, binary(b"\x01"));
        client
            .send(Message::Ping(Bytes::from_static(b"hb")))
            .await
            .unwrap();
        let pong = tokio::time::timeout(Duration::from_secs(5), client.next()).await;
        assert_eq!(
            pong.unwrap().unwrap().unwrap(),
            Message::Pong(Bytes::from_static(b"hb"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_does_not_read_holds_back_the_output() {
        let (server_io, client_io) = connection(16 * 1024);
        let (session, _client) =
            tokio::join!(accept(server_io, V5_CHANNEL, EXEC), client(client_io));
        let output = session.unwrap().output;
        let mut sent = 0;
        let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
        let flood = async {
            loop {
                output.stdout(chunk.clone()).await.unwrap();
                sent += 1;
            }
        };
        let held = tokio::time::timeout(Duration::from_secs(60), flood).await;
        assert!(held.is_err());
        assert!(sent <= OUTPUT_FRAMES + 3, "{sent} chunks taken");
    }

    #[tokio::test]
    async fn dropping_the_output_without_an_outcome_closes_with_an_error() {
        let (session, mut client) = open(V5_CHANNEL, EXEC).await;
        receive(&mut client).await;
        drop(session);
        match receive(&mut client).await {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Error),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn statuses_are_written_as_go_writes_them() {
        let internal = Outcome::Internal("runc <said> no & more".into());
        let written = String::from_utf8(internal.status_json()).unwrap();
        let expected = r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: runc \u003csaid\u003e no \u0026 more","reason":"InternalError","details":{"causes":[{"message":"runc \u003csaid\u003e no \u0026 more"}]},"code":500}"#;
        assert_eq!(written, expected);
        assert_eq!(exit_3().status_json(), EXIT_3.as_bytes());
    }

    #[test]
    fn sizes_decode_as_go_decodes_them() {
        fn decode(decoder: &mut SizeDecoder, data: &[u8]) -> Vec<Result<TerminalSize, String>> {
            decoder.push(data);
            std::iter::from_fn(|| decoder.next_size()).collect()
        }
        let size = |width, height| Ok(TerminalSize { width, height });
        let mut decoder = SizeDecoder::default();
        let sizes = decode(
            &mut decoder,
            br#" {"Width":3} null {"height":4,"Other":true} {"Wid"#,
        );
        assert_eq!(sizes, [size(3, 0), size(0, 0), size(0, 4)]);
        let sizes = decode(&mut decoder, br#"th":5,"Height":6} [1]"#);
        assert_eq!(sizes[0], size(5, 6));
        assert!(sizes[1].is_err());
        for invalid in [&br#"{"Width":-1}"#[..], br#"{"Width":80.5}"#, b"{oops"] {
            assert!(decode(&mut SizeDecoder::default(), invalid)[0].is_err());
        }
        let endless = [&br#"{"Width":""#[..], &[b'a'; MAX_PARTIAL_RESIZE]].concat();
        assert!(decode(&mut SizeDecoder::default(), &endless)[0].is_err());
    }
}
