//! exec and attach over SPDY/3.1, served as kubelet serves them
//! (`pkg/kubelet/cri/streaming/remotecommand/httpstream.go`): the client opens one stream per
//! channel, named by its `streamType` header (error, stdin, stdout, stderr, resize), each
//! answered as it comes; the session starts once the expected set is there, within kubelet's
//! stream creation timeout. `v5.channel.k8s.io`, which client-go offers first, runs as v4 over
//! SPDY (client-go's `streamProtocolV5` is v4; its CLOSE signal exists only over WebSocket).

use std::io;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Options, Outcome, Output, OutputFrame, Session, TerminalSize};
use crate::spdy::{self, Incoming, Stream};
use crate::StreamError;

/// kubelet's `DefaultStreamCreationTimeout`.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// stdin chunks that may wait for the caller before the stream (and the connection) waits.
const STDIN_CHUNKS: usize = 16;

/// The protocol versions that differ on the server side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    /// `channel.k8s.io`, or no protocol header at all.
    V1,
    V2,
    /// Adds the resize stream.
    V3,
    /// Writes a `metav1.Status` on the error stream (v5 too).
    V4,
}

impl Version {
    fn of(protocol: &str) -> Result<Version, StreamError> {
        Ok(match protocol {
            "" | "channel.k8s.io" => Version::V1,
            "v2.channel.k8s.io" => Version::V2,
            "v3.channel.k8s.io" => Version::V3,
            "v4.channel.k8s.io" | "v5.channel.k8s.io" => Version::V4,
            other => {
                return Err(StreamError::Protocol(format!(
                    "unsupported remote command protocol {other:?}"
                )))
            }
        })
    }

    fn resizes(self) -> bool {
        self >= Version::V3
    }
}

/// The streams the client opened, by type.
#[derive(Debug, Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

impl Streams {
    /// Where a stream of `stream_type` goes; `None` for types this version does not know.
    fn slot(&mut self, stream_type: &str, version: Version) -> Option<&mut Option<Stream>> {
        match stream_type {
            "error" => Some(&mut self.error),
            "stdin" => Some(&mut self.stdin),
            "stdout" => Some(&mut self.stdout),
            "stderr" => Some(&mut self.stderr),
            "resize" if version.resizes() => Some(&mut self.resize),
            _ => None,
        }
    }
}

/// Accepts an exec or attach session on an upgraded SPDY connection.
pub async fn accept<T>(
    io: T,
    protocol: &'static str,
    options: Options,
) -> Result<Session, StreamError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let version = Version::of(protocol)?;
    let (connection, mut incoming) = spdy::Session::server(io);
    let expected = expected_streams(options, version);
    let streams = tokio::time::timeout(
        STREAM_CREATION_TIMEOUT,
        receive_streams(&mut incoming, expected, version),
    )
    .await
    .map_err(|_| StreamError::Timeout("client to create streams".into()))??;
    Ok(start(connection, protocol, version, options, streams))
}

/// kubelet's count: the error stream, one per requested channel, and resize for a TTY when the
/// version has it. A TTY has no stderr (kubelet drops it; clients do not open it).
fn expected_streams(options: Options, version: Version) -> usize {
    1 + usize::from(options.stdin)
        + usize::from(options.stdout)
        + usize::from(options.stderr && !options.tty)
        + usize::from(options.tty && version.resizes())
}

/// Answers every stream the client opens (as kubelet's handler does) until `expected` of
/// known types are there; a later stream of a type replaces the earlier one, as in kubelet.
async fn receive_streams(
    incoming: &mut Incoming,
    expected: usize,
    version: Version,
) -> Result<Streams, StreamError> {
    let mut streams = Streams::default();
    let mut received = 0;
    while received < expected {
        let Some(pending) = incoming.next().await else {
            return Err(StreamError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the client closed the connection before creating its streams",
            )));
        };
        let stream_type = pending.headers().get("streamType").unwrap_or("").to_owned();
        let stream = pending.accept();
        match streams.slot(&stream_type, version) {
            Some(slot) => {
                *slot = Some(stream);
                received += 1;
            }
            None => tracing::debug!(stream_type, "remote command: unexpected stream type"),
        }
    }
    Ok(streams)
}

fn start(
    connection: spdy::Session,
    protocol: &'static str,
    version: Version,
    options: Options,
    mut streams: Streams,
) -> Session {
    let (finished_tx, finished) = watch::channel(false);
    let mut pumps = Vec::new();
    if version == Version::V1 {
        // kubelet's v1 handler resets the error stream once the streams are there (a bug kept
        // for 1.0 clients), so v1 never reports an outcome.
        if let Some(error) = streams.error.as_mut() {
            error.reset();
        }
    }
    let stdin = match streams.stdin.take().filter(|_| options.stdin) {
        Some(stream) => {
            let (chunks, receiver) = mpsc::channel(STDIN_CHUNKS);
            let v1 = version == Version::V1;
            pumps.push(tokio::spawn(pump_stdin(
                stream,
                chunks,
                finished.clone(),
                v1,
            )));
            Some(receiver)
        }
        None => None,
    };
    let resize = match streams.resize.take().filter(|_| options.tty) {
        Some(stream) => {
            let (sizes, receiver) = mpsc::channel(1);
            pumps.push(tokio::spawn(pump_resizes(stream, sizes, finished.clone())));
            Some(receiver)
        }
        None => None,
    };
    let (output, frames) = Output::channel();
    let writer = OutputWriter {
        connection,
        version,
        error: streams.error,
        stdout: streams.stdout,
        stderr: streams.stderr,
        finished: finished_tx,
        pumps,
    };
    tokio::spawn(writer.run(frames));
    Session {
        protocol,
        stdin,
        resize,
        output,
    }
}

/// Moves stdin chunks from the stream to the caller until the client's FIN (which closes the
/// channel) or the end of the session. Chunks the caller no longer wants are drained, so an
/// abandoned stdin never holds the connection back.
async fn pump_stdin(
    mut stream: Stream,
    chunks: mpsc::Sender<Bytes>,
    mut finished: watch::Receiver<bool>,
    v1: bool,
) {
    if v1 {
        // kubelet's v1 handler closes its side of stdin straight away.
        let _ = stream.shutdown().await;
    }
    loop {
        let chunk = tokio::select! {
            chunk = stream.recv() => chunk,
            _ = finished.wait_for(|finished| *finished) => return,
        };
        let Ok(Some(chunk)) = chunk else {
            return;
        };
        if chunks.is_closed() {
            continue;
        }
        tokio::select! {
            _ = chunks.send(chunk) => {}
            _ = finished.wait_for(|finished| *finished) => return,
        }
    }
}

/// Decodes terminal sizes from the resize stream (JSON values one after another, as Go's
/// `json.Decoder` reads them) and hands the caller the latest one whenever it takes one, so an
/// unread resize channel never holds the connection back. A malformed value ends the
/// channel, as it ends kubelet's loop; the stream is still drained.
async fn pump_resizes(
    mut stream: Stream,
    sizes: mpsc::Sender<TerminalSize>,
    mut finished: watch::Receiver<bool>,
) {
    let mut decoder = SizeDecoder::default();
    let mut sizes = Some(sizes);
    let mut latest = None;
    let mut stream_open = true;
    while stream_open || latest.is_some() {
        let waiting = latest.is_some();
        let room = async {
            match sizes.as_ref() {
                Some(sizes) if waiting => sizes.reserve().await.ok(),
                _ => std::future::pending().await,
            }
        };
        let mut abandon = false;
        tokio::select! {
            permit = room => match permit {
                Some(permit) => permit.send(latest.take().expect("a size is waiting")),
                None => abandon = true,
            },
            chunk = stream.recv(), if stream_open => match chunk {
                Ok(Some(bytes)) => match decoder.push(&bytes) {
                    Ok(decoded) => latest = decoded.or(latest),
                    Err(()) => abandon = true,
                },
                _ => stream_open = false,
            },
            _ = finished.wait_for(|finished| *finished) => return,
        }
        if abandon {
            (sizes, latest) = (None, None);
        }
    }
}

/// A stream of JSON terminal sizes, decoded with Go's `encoding/json` leniency: field names
/// match case-insensitively, unknown fields are ignored, `null` leaves zeroes.
#[derive(Debug, Default)]
struct SizeDecoder {
    pending: Vec<u8>,
}

impl SizeDecoder {
    /// Adds bytes; the last complete size among them, if any.
    fn push(&mut self, bytes: &[u8]) -> Result<Option<TerminalSize>, ()> {
        self.pending.extend_from_slice(bytes);
        let mut values = serde_json::Deserializer::from_slice(&self.pending).into_iter::<Value>();
        let mut latest = None;
        let mut consumed = 0;
        loop {
            match values.next() {
                Some(Ok(value)) => {
                    latest = Some(terminal_size(value)?);
                    consumed = values.byte_offset();
                }
                Some(Err(error)) if error.is_eof() => break,
                Some(Err(_)) => return Err(()),
                None => {
                    consumed = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..consumed);
        Ok(latest)
    }
}

fn terminal_size(value: Value) -> Result<TerminalSize, ()> {
    let mut size = TerminalSize {
        width: 0,
        height: 0,
    };
    let fields = match value {
        Value::Null => return Ok(size),
        Value::Object(fields) => fields,
        _ => return Err(()),
    };
    for (name, value) in fields {
        let field = if name.eq_ignore_ascii_case("width") {
            &mut size.width
        } else if name.eq_ignore_ascii_case("height") {
            &mut size.height
        } else {
            continue;
        };
        match value {
            Value::Null => {}
            Value::Number(number) => {
                *field = number
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or(())?
            }
            _ => return Err(()),
        }
    }
    Ok(size)
}

/// The task that writes the caller's output and, at the end, the outcome.
struct OutputWriter {
    connection: spdy::Session,
    version: Version,
    error: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    /// Tells the stdin and resize pumps to stop (their streams get FIN as they go).
    finished: watch::Sender<bool>,
    pumps: Vec<JoinHandle<()>>,
}

impl OutputWriter {
    /// Runs until the outcome is written, or the client is gone, when dropping `frames` tells
    /// the caller ([`Output::closed`]). A client half-closing stdin is not gone.
    async fn run(mut self, mut frames: mpsc::Receiver<OutputFrame>) {
        loop {
            let frame = tokio::select! {
                frame = frames.recv() => frame,
                () = self.connection.closed() => return,
            };
            let written = match frame {
                Some(OutputFrame::Stdout(data)) => write_to(&mut self.stdout, &data).await,
                Some(OutputFrame::Stderr(data)) => write_to(&mut self.stderr, &data).await,
                Some(OutputFrame::Finish { outcome, done }) => {
                    self.finish(outcome).await;
                    let _ = done.send(());
                    return;
                }
                // Every Output was dropped unfinished: no success to report.
                None => return self.finish(unreported()).await,
            };
            if written.is_err() {
                drop(frames);
                return self.finish(unreported()).await;
            }
        }
    }

    /// Writes the outcome as the version wants it, half-closes every stream and closes the
    /// session once all of that is on the wire.
    async fn finish(mut self, outcome: Outcome) {
        if let (Some(error), Some(message)) =
            (self.error.as_mut(), status_message(self.version, &outcome))
        {
            let _ = error.write_all(&message).await;
        }
        for stream in [&mut self.error, &mut self.stdout, &mut self.stderr]
            .into_iter()
            .flatten()
        {
            let _ = stream.shutdown().await;
        }
        self.finished.send_replace(true);
        for pump in self.pumps.drain(..) {
            let _ = pump.await;
        }
        self.connection.close().await;
    }
}

fn unreported() -> Outcome {
    Outcome::Internal("the session ended without an outcome".into())
}

/// Output of a channel the client did not ask for is dropped.
async fn write_to(stream: &mut Option<Stream>, data: &[u8]) -> io::Result<()> {
    match stream {
        Some(stream) => stream.write_all(data).await,
        None => Ok(()),
    }
}

/// What the error stream carries: v4's Status JSON; v2 and v3's message, nothing on success;
/// nothing on v1, whose error stream is reset.
fn status_message(version: Version, outcome: &Outcome) -> Option<Vec<u8>> {
    match version {
        Version::V4 => Some(outcome.status_json()),
        Version::V2 | Version::V3 => outcome.text().map(String::into_bytes),
        Version::V1 => None,
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::spdy::testing::{connection, headers, read_all, PROMPTLY};

    const ALL: Options = Options {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    };

    /// kubectl's side of the session, with the streams client-go's createStreams opens.
    struct Kubectl {
        session: spdy::Session,
        _incoming: Incoming,
        error: Stream,
        stdin: Option<Stream>,
        stdout: Option<Stream>,
        stderr: Option<Stream>,
        resize: Option<Stream>,
    }

    async fn kubectl<T>(io: T, options: Options, version: Version) -> Kubectl
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (session, incoming) = spdy::Session::client(io);
        let open = |stream_type: &'static str, wanted: bool| {
            let session = session.clone();
            async move {
                match wanted {
                    true => Some(
                        session
                            .open(headers(&[("streamType", stream_type)]))
                            .await
                            .unwrap(),
                    ),
                    false => None,
                }
            }
        };
        Kubectl {
            error: open("error", true).await.unwrap(),
            stdin: open("stdin", options.stdin).await,
            stdout: open("stdout", options.stdout).await,
            stderr: open("stderr", options.stderr && !options.tty).await,
            resize: open("resize", options.tty && version.resizes()).await,
            session,
            _incoming: incoming,
        }
    }

    async fn exec(protocol: &'static str, options: Options) -> (Session, Kubectl) {
        let (client_io, server_io) = connection();
        let server = tokio::spawn(accept(server_io, protocol, options));
        let client = kubectl(client_io, options, Version::of(protocol).unwrap()).await;
        let session = tokio::time::timeout(PROMPTLY, server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(session.protocol, protocol);
        (session, client)
    }

    async fn recv_all(stdin: &mut mpsc::Receiver<Bytes>) -> Vec<u8> {
        let mut bytes = Vec::new();
        while let Some(chunk) = tokio::time::timeout(PROMPTLY, stdin.recv()).await.unwrap() {
            bytes.extend_from_slice(&chunk);
        }
        bytes
    }

    fn exit_code() -> Outcome {
        Outcome::ExitCode {
            code: 3,
            message: "error executing command [sh -c exit 3], exit code 3".into(),
        }
    }

    #[tokio::test]
    async fn v4_carries_stdin_output_and_the_status() {
        let (mut session, mut client) = exec("v4.channel.k8s.io", ALL).await;
        let mut stdin = client.stdin.take().unwrap();
        stdin.write_all(b"some input").await.unwrap();
        stdin.shutdown().await.unwrap();
        assert_eq!(
            recv_all(session.stdin.as_mut().unwrap()).await,
            b"some input"
        );
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
        session.output.clone().finish(exit_code()).await;

        assert_eq!(read_all(client.stdout.as_mut().unwrap()).await, b"out");
        assert_eq!(read_all(client.stderr.as_mut().unwrap()).await, b"err");
        let status: Value = serde_json::from_slice(&read_all(&mut client.error).await).unwrap();
        assert_eq!(status, exit_code().status());
        assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
        // client-go waits on its stdin stream until the server closes it.
        assert_eq!(read_all(&mut stdin).await, b"");
    }

    #[tokio::test]
    async fn v5_over_spdy_runs_as_v4() {
        let (session, mut client) = exec("v5.channel.k8s.io", ALL).await;
        session.output.finish(Outcome::Success).await;
        let status: Value = serde_json::from_slice(&read_all(&mut client.error).await).unwrap();
        assert_eq!(status, Outcome::Success.status());
    }

    #[tokio::test]
    async fn v2_and_v3_write_the_message_and_nothing_on_success() {
        let (session, mut client) = exec("v2.channel.k8s.io", ALL).await;
        session.output.finish(exit_code()).await;
        let text = String::from_utf8(read_all(&mut client.error).await).unwrap();
        assert_eq!(Some(text), exit_code().text());

        let (session, mut client) = exec("v3.channel.k8s.io", ALL).await;
        session.output.finish(Outcome::Success).await;
        assert_eq!(read_all(&mut client.error).await, b"");
        assert_eq!(read_all(client.stdout.as_mut().unwrap()).await, b"");
    }

    #[tokio::test]
    async fn v1_resets_the_error_stream_and_closes_stdin_at_once() {
        for protocol in ["channel.k8s.io", ""] {
            let (session, mut client) = exec(protocol, ALL).await;
            let stdin = client.stdin.as_mut().unwrap();
            assert_eq!(read_all(stdin).await, b"");
            assert!(client.error.read(&mut [0u8; 16]).await.is_err());
            session.output.finish(exit_code()).await;
        }
    }

    #[tokio::test]
    async fn a_tty_gets_terminal_sizes_as_go_decodes_them() {
        let options = Options {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: true,
        };
        let (mut session, mut client) = exec("v4.channel.k8s.io", options).await;
        assert!(client.stderr.is_none());
        let sizes = session.resize.as_mut().unwrap();
        let resize = client.resize.as_mut().unwrap();
        resize.write_all(b"{\"Width\":80,\"Hei").await.unwrap();
        resize.write_all(b"ght\":24}\n").await.unwrap();
        let first = tokio::time::timeout(PROMPTLY, sizes.recv()).await.unwrap();
        assert_eq!(
            first,
            Some(TerminalSize {
                width: 80,
                height: 24
            })
        );
        resize
            .write_all(b" {\"width\":100,\"height\":50,\"extra\":true}")
            .await
            .unwrap();
        let second = tokio::time::timeout(PROMPTLY, sizes.recv()).await.unwrap();
        assert_eq!(
            second,
            Some(TerminalSize {
                width: 100,
                height: 50
            })
        );
        resize.write_all(b"[1, 2]").await.unwrap();
        assert_eq!(
            tokio::time::timeout(PROMPTLY, sizes.recv()).await.unwrap(),
            None
        );
        session.output.finish(Outcome::Success).await;
    }

    #[test]
    fn size_decoding_follows_encoding_json() {
        let mut decoder = SizeDecoder::default();
        assert_eq!(decoder.push(b"{\"Width\":1,"), Ok(None));
        assert_eq!(
            decoder.push(b"\"Height\":2} null {\"HEIGHT\":7}"),
            Ok(Some(TerminalSize {
                width: 0,
                height: 7
            }))
        );
        assert_eq!(decoder.push(b"{\"Width\":70000}"), Err(()));
        assert_eq!(SizeDecoder::default().push(b"{\"Width\":\"80\"}"), Err(()));
        assert_eq!(SizeDecoder::default().push(b"{\"Width\":-1}"), Err(()));
    }

    #[tokio::test(start_paused = true)]
    async fn missing_streams_time_out_as_in_kubelet() {
        let (client_io, server_io) = connection();
        let server = tokio::spawn(accept(server_io, "v4.channel.k8s.io", ALL));
        let (client, _incoming) = spdy::Session::client(client_io);
        let _error = client
            .open(headers(&[("streamType", "error")]))
            .await
            .unwrap();
        let _unknown = client
            .open(headers(&[("streamType", "bogus")]))
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let result = server.await.unwrap();
        assert!(
            matches!(&result, Err(StreamError::Timeout(_))),
            "{result:?}"
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "timed out waiting for client to create streams"
        );
        assert!(started.elapsed() >= STREAM_CREATION_TIMEOUT - Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_client_leaving_closes_the_output_but_ending_stdin_does_not() {
        let (mut session, mut client) = exec("v4.channel.k8s.io", ALL).await;
        client.stdin.as_mut().unwrap().shutdown().await.unwrap();
        assert_eq!(recv_all(session.stdin.as_mut().unwrap()).await, b"");
        let still_there =
            tokio::time::timeout(Duration::from_millis(200), session.output.closed()).await;
        assert!(still_there.is_err(), "half-closing stdin is not leaving");
        session
            .output
            .stdout(Bytes::from_static(b"x"))
            .await
            .unwrap();

        drop(client);
        tokio::time::timeout(PROMPTLY, session.output.closed())
            .await
            .unwrap();
        assert!(session
            .output
            .stdout(Bytes::from_static(b"y"))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn output_of_channels_not_asked_for_is_dropped() {
        let options = Options {
            stdout: true,
            ..Options::default()
        };
        let (session, mut client) = exec("v4.channel.k8s.io", options).await;
        assert!(session.stdin.is_none());
        session
            .output
            .stderr(Bytes::from_static(b"nobody"))
            .await
            .unwrap();
        session
            .output
            .stdout(Bytes::from_static(b"somebody"))
            .await
            .unwrap();
        session.output.finish(Outcome::Success).await;
        assert_eq!(read_all(client.stdout.as_mut().unwrap()).await, b"somebody");
        client.session.closed().await;
    }

    #[tokio::test]
    async fn dropping_the_output_unfinished_reports_a_failure() {
        let (session, mut client) = exec("v4.channel.k8s.io", ALL).await;
        drop(session);
        let status: Value = serde_json::from_slice(&read_all(&mut client.error).await).unwrap();
        assert_eq!(status["reason"], "InternalError");
    }

    #[tokio::test]
    async fn unknown_protocols_are_refused() {
        let (_client_io, server_io) = connection();
        let result = accept(server_io, "v9.channel.k8s.io", ALL).await;
        assert!(matches!(result, Err(StreamError::Protocol(_))));
    }
}
