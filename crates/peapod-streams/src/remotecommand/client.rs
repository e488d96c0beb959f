//! The client's side of exec and attach over WebSocket `v5.channel.k8s.io`, as client-go's
//! WebSocket executor runs it: stdin on channel 0 ended by the CLOSE signal `[255, 0]`,
//! terminal sizes as JSON on channel 4, stdout and stderr from channels 1 and 2, and the
//! `metav1.Status` gathered from channel 3 until the connection closes, then decoded as
//! client-go's v4 error decoder decodes it. The caller does the HTTP upgrade; [`Client::start`]
//! takes the upgraded connection.

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::channel::{CHANNELS, ERROR, RESIZE, STDERR, STDIN, STDOUT};
use super::TerminalSize;
use crate::negotiate::V5_CHANNEL;
use crate::websocket::channel::{ChannelError, ChannelMessage, Framing};

/// The most Status bytes kept from the error channel; kube's are a few hundred.
const MAX_STATUS_BYTES: usize = 1 << 20;

/// What the client sends.
#[derive(Debug, Default)]
pub struct Input {
    /// Stdin in chunks, when the session has stdin; the channel's end is the end of input.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Terminal sizes, when the session has a terminal.
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// What the session delivers, in order; [`Event::Exited`] is the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Stdout(Bytes),
    Stderr(Bytes),
    Exited(Exit),
}

/// How the remote command ended, as client-go reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// `NonZeroExitCode`: the process's exit code (kubectl exits with it).
    Code(i32),
    /// Any other failure: the Status message, which kubectl prints.
    Failure(String),
}

/// A session that broke down rather than reporting an outcome.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading the stream: {0}")]
    WebSocket(#[from] WsError),
    #[error("the stream broke the channel protocol: {0}")]
    Channel(#[from] ChannelError),
    /// client-go's wording for a Status it cannot use.
    #[error("error stream protocol error: {0}")]
    Status(String),
    #[error("the stream was closed ({code}) without an exit status: {reason}")]
    ClosedWithoutStatus { code: CloseCode, reason: String },
}

/// A running session: read it with [`Client::next`] until [`Event::Exited`]. Input is sent by
/// a task of its own, so a process that does not read its stdin holds back nothing else.
pub struct Client<T> {
    messages: SplitStream<WebSocketStream<T>>,
    framing: Framing,
    status: Vec<u8>,
    close: Option<CloseFrame>,
    sender: JoinHandle<()>,
}

impl<T> Client<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    /// Opens the WebSocket on a connection upgraded for `v5.channel.k8s.io`.
    pub async fn start(io: T, input: Input) -> Client<T> {
        let config = crate::websocket::config();
        let ws = WebSocketStream::from_raw_socket(io, Role::Client, Some(config)).await;
        let (sink, messages) = ws.split();
        let framing = Framing::for_protocol(V5_CHANNEL, CHANNELS).expect("v5 frames channels");
        Client {
            messages,
            framing,
            status: Vec::new(),
            close: None,
            sender: tokio::spawn(send_input(sink, framing, input)),
        }
    }

    /// The next output, or the outcome once the server closed the connection.
    pub async fn next(&mut self) -> Result<Event, ClientError> {
        loop {
            let message = match self.messages.next().await {
                Some(Ok(message)) => message,
                None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return self.outcome().map(Event::Exited)
                }
                Some(Err(err)) => return Err(err.into()),
            };
            if let Message::Close(frame) = &message {
                self.close = frame.clone();
            }
            let Some(payload) = crate::websocket::channel::payload(message) else {
                continue;
            };
            match self.framing.decode(payload) {
                Ok(Some(ChannelMessage::Data { channel, data })) => {
                    if let Some(event) = self.deliver(channel, data) {
                        return Ok(event);
                    }
                }
                Ok(_) => {}
                Err(err) if err.is_fatal() => return Err(err.into()),
                Err(err) => tracing::debug!(%err, "dropped a remote-command message"),
            }
        }
    }

    fn deliver(&mut self, channel: u8, data: Bytes) -> Option<Event> {
        match channel {
            _ if data.is_empty() => None,
            STDOUT => Some(Event::Stdout(data)),
            STDERR => Some(Event::Stderr(data)),
            ERROR => {
                let room = MAX_STATUS_BYTES.saturating_sub(self.status.len());
                self.status.extend_from_slice(&data[..data.len().min(room)]);
                None
            }
            _ => None,
        }
    }

    /// client-go's `watchErrorStream`: a normal close without a Status is a success.
    fn outcome(&mut self) -> Result<Exit, ClientError> {
        if !self.status.is_empty() {
            return decode_status(&self.status);
        }
        match self.close.take() {
            Some(frame) if frame.code != CloseCode::Normal => {
                Err(ClientError::ClosedWithoutStatus {
                    code: frame.code,
                    reason: frame.reason.to_string(),
                })
            }
            _ => Ok(Exit::Success),
        }
    }
}

impl<T> Drop for Client<T> {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

async fn send_input<T>(
    mut sink: SplitSink<WebSocketStream<T>, Message>,
    framing: Framing,
    input: Input,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let Input {
        mut stdin,
        mut resize,
    } = input;
    loop {
        let message = tokio::select! {
            chunk = recv(&mut stdin), if stdin.is_some() => match chunk {
                Some(data) if data.is_empty() => continue,
                Some(data) => framing.encode(STDIN, &data),
                None => {
                    stdin = None;
                    framing.encode_close(STDIN).expect("v5 has the close signal")
                }
            },
            size = recv(&mut resize), if resize.is_some() => match size {
                Some(size) => framing.encode(RESIZE, &terminal_size_json(size)),
                None => {
                    resize = None;
                    continue;
                }
            },
            else => return,
        };
        if sink.send(message).await.is_err() {
            return;
        }
    }
}

async fn recv<I>(channel: &mut Option<mpsc::Receiver<I>>) -> Option<I> {
    match channel {
        Some(receiver) => receiver.recv().await,
        None => None,
    }
}

fn terminal_size_json(size: TerminalSize) -> Vec<u8> {
    serde_json::to_vec(&size).expect("terminal sizes serialize")
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    reason: String,
    details: Option<StatusDetails>,
}

#[derive(Deserialize)]
struct StatusDetails {
    #[serde(default)]
    causes: Vec<StatusCause>,
}

#[derive(Deserialize)]
struct StatusCause {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
}

/// client-go's `errorDecoderV4.decode`.
pub fn decode_status(message: &[u8]) -> Result<Exit, ClientError> {
    let status: Status = serde_json::from_slice(message).map_err(|err| {
        let text = String::from_utf8_lossy(message);
        ClientError::Status(format!("{err} in {text:?}"))
    })?;
    match status.status.as_str() {
        "Success" => Ok(Exit::Success),
        "Failure" if status.reason == "NonZeroExitCode" => exit_code(status.details),
        "Failure" => Ok(Exit::Failure(status.message)),
        _ => Err(ClientError::Status("unknown error".into())),
    }
}

fn exit_code(details: Option<StatusDetails>) -> Result<Exit, ClientError> {
    let details = details.ok_or_else(|| ClientError::Status("details must be set".into()))?;
    let cause = details
        .causes
        .iter()
        .find(|cause| cause.reason == "ExitCode")
        .ok_or_else(|| ClientError::Status("no ExitCode cause given".into()))?;
    cause
        .message
        .parse::<u8>()
        .map(|code| Exit::Code(i32::from(code)))
        .map_err(|_| ClientError::Status(format!("invalid exit code value {:?}", cause.message)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::negotiate::{Negotiated, Transport};
    use crate::remotecommand::{accept, Options, Outcome};

    #[test]
    fn statuses_decode_as_client_go_decodes_them() {
        let exit = |outcome: Outcome| decode_status(outcome.status().to_string().as_bytes());
        assert_eq!(exit(Outcome::Success).unwrap(), Exit::Success);
        let code = Outcome::ExitCode {
            code: 3,
            message: "error executing command [false], exit code 3".into(),
        };
        assert_eq!(exit(code).unwrap(), Exit::Code(3));
        let internal = exit(Outcome::Internal("no shim".into())).unwrap();
        assert_eq!(
            internal,
            Exit::Failure("Internal error occurred: no shim".into())
        );
        let refused = |json: &str| decode_status(json.as_bytes()).unwrap_err().to_string();
        let no_cause = r#"{"status":"Failure","reason":"NonZeroExitCode","details":{}}"#;
        assert_eq!(
            refused(no_cause),
            "error stream protocol error: no ExitCode cause given"
        );
        let big = r#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"300"}]}}"#;
        assert_eq!(
            refused(big),
            "error stream protocol error: invalid exit code value \"300\""
        );
        assert_eq!(
            refused(r#"{"status":"Maybe"}"#),
            "error stream protocol error: unknown error"
        );
        assert!(refused("nope").starts_with("error stream protocol error: expected"));
    }

    /// A server session on one end of an in-memory connection, this client on the other.
    async fn pair(
        options: Options,
        input: Input,
    ) -> (super::super::Session, Client<tokio::io::DuplexStream>) {
        let (server_io, client_io) = tokio::io::duplex(1 << 20);
        let negotiated = Negotiated {
            transport: Transport::WebSocket,
            protocol: V5_CHANNEL,
            accept_key: None,
        };
        let (server, client) = tokio::join!(
            accept(server_io, &negotiated, options),
            Client::start(client_io, input)
        );
        (server.expect("a session"), client)
    }

    #[tokio::test]
    async fn stdin_and_its_end_reach_the_server_and_output_comes_back() {
        let options = Options {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let (stdin, chunks) = mpsc::channel(4);
        let input = Input {
            stdin: Some(chunks),
            resize: None,
        };
        let (mut server, mut client) = pair(options, input).await;
        stdin.send(Bytes::from_static(b"hello")).await.unwrap();
        drop(stdin);
        let mut received = server.stdin.take().unwrap();
        assert_eq!(received.recv().await, Some(Bytes::from_static(b"hello")));
        assert_eq!(received.recv().await, None, "the close signal ends stdin");
        let output = &server.output;
        output.stdout(Bytes::from_static(b"out")).await.unwrap();
        output.stderr(Bytes::from_static(b"err")).await.unwrap();
        let finish = tokio::spawn(server.output.finish(Outcome::ExitCode {
            code: 7,
            message: "exit code 7".into(),
        }));
        assert_eq!(
            client.next().await.unwrap(),
            Event::Stdout(Bytes::from_static(b"out"))
        );
        assert_eq!(
            client.next().await.unwrap(),
            Event::Stderr(Bytes::from_static(b"err"))
        );
        assert_eq!(client.next().await.unwrap(), Event::Exited(Exit::Code(7)));
        drop(client);
        finish.await.unwrap();
    }

    #[tokio::test]
    async fn terminal_sizes_are_sent_with_go_field_names() {
        let options = Options {
            stdin: false,
            stdout: true,
            stderr: false,
            tty: true,
        };
        let (sizes, resize) = mpsc::channel(4);
        let input = Input {
            stdin: None,
            resize: Some(resize),
        };
        let (mut server, mut client) = pair(options, input).await;
        let size = TerminalSize {
            width: 80,
            height: 24,
        };
        sizes.send(size).await.unwrap();
        assert_eq!(server.resize.as_mut().unwrap().recv().await, Some(size));
        assert_eq!(terminal_size_json(size), br#"{"Width":80,"Height":24}"#);
        let finish = tokio::spawn(server.output.finish(Outcome::Success));
        assert_eq!(client.next().await.unwrap(), Event::Exited(Exit::Success));
        drop(client);
        finish.await.unwrap();
    }

    #[tokio::test]
    async fn a_session_closed_without_an_outcome_is_an_error() {
        let options = Options {
            stdout: true,
            ..Options::default()
        };
        let (server, mut client) = pair(options, Input::default()).await;
        drop(server);
        let err = client.next().await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::ClosedWithoutStatus {
                    code: CloseCode::Error,
                    ..
                }
            ),
            "{err}"
        );
    }
}
