//! port-forward over SPDY/3.1, served as kubelet serves it
//! (`pkg/kubelet/cri/streaming/portforward/httpstream.go`): for each forwarded connection the
//! client opens an error stream and a data stream, both with `port` and `requestID` headers;
//! streams with a bad `port` or `streamType` are reset unanswered; a pair completes into a
//! [`Connection`], and a pair still incomplete after kubelet's stream creation timeout is told
//! so on its error stream.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{Connection, Connections};
use crate::spdy::{self, Headers, Incoming, PendingStream, Stream};

/// kubelet's stream creation timeout (`DefaultStreamCreationTimeout`), here for a pair.
const STREAM_PAIR_TIMEOUT: Duration = Duration::from_secs(30);
/// Complete connections that may wait for the caller before streams wait.
const CONNECTION_BACKLOG: usize = 16;

/// Serves port-forward on an upgraded SPDY connection (server role).
pub fn accept<T>(io: T) -> Connections
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (connections, receiver) = Connections::channel(CONNECTION_BACKLOG);
    let (session, incoming) = spdy::Session::server(io);
    tokio::spawn(Pairing::new(connections).run(session, incoming));
    receiver
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamType {
    Data,
    Error,
}

/// A forwarded connection's streams as they arrive.
#[derive(Debug, Default)]
struct Pair {
    data: Option<Stream>,
    error: Option<Stream>,
    /// Tells this pair's timer from an earlier pair's with the same request id.
    generation: u64,
}

struct Pairing {
    pairs: HashMap<String, Pair>,
    connections: mpsc::Sender<Connection>,
    expired_tx: mpsc::UnboundedSender<(String, u64)>,
    expired: mpsc::UnboundedReceiver<(String, u64)>,
    generations: u64,
}

impl Pairing {
    fn new(connections: mpsc::Sender<Connection>) -> Pairing {
        let (expired_tx, expired) = mpsc::unbounded_channel();
        Pairing {
            pairs: HashMap::new(),
            connections,
            expired_tx,
            expired,
            generations: 0,
        }
    }

    /// Pairs streams until the connection ends or the caller drops [`Connections`].
    async fn run(mut self, session: spdy::Session, mut incoming: Incoming) {
        loop {
            tokio::select! {
                pending = incoming.next() => {
                    let Some(pending) = pending else { break };
                    let Some(connection) = self.add(pending).await else { continue };
                    if self.connections.send(connection).await.is_err() {
                        break;
                    }
                }
                Some((request_id, generation)) = self.expired.recv() => {
                    self.expire(&request_id, generation).await;
                }
                () = self.connections.closed() => break,
            }
        }
        drop(session);
    }

    /// Takes a new stream: rejected if kubelet's handler would refuse it, else answered and
    /// added to its pair; the connection once the pair is complete.
    async fn add(&mut self, pending: PendingStream) -> Option<Connection> {
        let (port, stream_type) = match validate(pending.headers()) {
            Ok(valid) => valid,
            Err(reason) => {
                tracing::debug!(%reason, "port-forward: stream rejected");
                pending.reject();
                return None;
            }
        };
        let request_id = request_id(pending.headers(), pending.id(), stream_type);
        let stream = pending.accept();
        let pair = self.pair(&request_id);
        let slot = match stream_type {
            StreamType::Data => &mut pair.data,
            StreamType::Error => &mut pair.error,
        };
        if slot.is_some() {
            let message = format!(
                "error processing stream for request {request_id}: {} stream already assigned",
                match stream_type {
                    StreamType::Data => "data",
                    StreamType::Error => "error",
                }
            );
            tracing::debug!(%message, "port-forward");
            if let Some(error) = pair.error.as_mut() {
                let _ = error.write_all(message.as_bytes()).await;
            }
            return None;
        }
        *slot = Some(stream);
        if pair.data.is_none() || pair.error.is_none() {
            return None;
        }
        let pair = self.pairs.remove(&request_id).expect("the pair is there");
        Some(Connection {
            port,
            data: Box::pin(pair.data.expect("complete")),
            error: Box::pin(pair.error.expect("complete")),
        })
    }

    /// The pair of `request_id`, created (with its timer) if new.
    fn pair(&mut self, request_id: &str) -> &mut Pair {
        if !self.pairs.contains_key(request_id) {
            self.generations += 1;
            let generation = self.generations;
            let expired = self.expired_tx.clone();
            let id = request_id.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(STREAM_PAIR_TIMEOUT).await;
                let _ = expired.send((id, generation));
            });
            self.pairs.insert(
                request_id.to_owned(),
                Pair {
                    generation,
                    ..Pair::default()
                },
            );
        }
        self.pairs.get_mut(request_id).expect("inserted above")
    }

    /// An incomplete pair timed out: say so on its error stream (if any) and drop it.
    async fn expire(&mut self, request_id: &str, generation: u64) {
        if self.pairs.get(request_id).map(|pair| pair.generation) != Some(generation) {
            return;
        }
        let pair = self.pairs.remove(request_id).expect("checked above");
        let message = format!("(request={request_id}) timed out waiting for streams");
        tracing::debug!(%message, "port-forward");
        if let Some(mut error) = pair.error {
            let _ = error.write_all(message.as_bytes()).await;
            let _ = error.shutdown().await;
        }
    }
}

/// kubelet's `httpStreamReceived` checks: a `port` in 1..=65535 and a known `streamType`.
fn validate(headers: &Headers) -> Result<(u16, StreamType), String> {
    let port = headers.get("port").unwrap_or("");
    if port.is_empty() {
        return Err("\"port\" header is required".into());
    }
    let parsed = port
        .bytes()
        .all(|byte| byte.is_ascii_digit())
        .then(|| port.parse::<u16>().ok())
        .flatten()
        .ok_or_else(|| format!("unable to parse {port:?} as a port"))?;
    if parsed == 0 {
        return Err(format!("port {port:?} must be > 0"));
    }
    let stream_type = match headers.get("streamType").unwrap_or("") {
        "" => return Err("\"streamType\" header is required".into()),
        "data" => StreamType::Data,
        "error" => StreamType::Error,
        other => return Err(format!("invalid stream type {other:?}")),
    };
    Ok((parsed, stream_type))
}

/// The `requestID` header; clients older than it get kubelet's guess from the stream ids
/// (error stream N and data stream N+2 make request N).
fn request_id(headers: &Headers, stream_id: u32, stream_type: StreamType) -> String {
    match headers.get("requestID") {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => match stream_type {
            StreamType::Error => stream_id.to_string(),
            StreamType::Data => (i64::from(stream_id) - 2).to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::spdy::testing::{connection, headers, read_all, PROMPTLY};
    use crate::spdy::{RstStatus, SpdyError};

    fn serve() -> (spdy::Session, Connections) {
        let (client_io, server_io) = connection();
        let connections = accept(server_io);
        let (client, incoming) = spdy::Session::client(client_io);
        // The client takes no streams from the server.
        drop(incoming);
        (client, connections)
    }

    /// kubectl's handleConnection: the error stream (half-closed at once: kubectl never writes
    /// to it), then the data stream.
    async fn forward(
        client: &spdy::Session,
        port: &str,
        request_id: Option<&str>,
    ) -> Result<(Stream, Stream), SpdyError> {
        let open = |stream_type: &str| {
            let mut pairs = vec![("streamType", stream_type), ("port", port)];
            if let Some(id) = request_id {
                pairs.push(("requestID", id));
            }
            client.open(headers(&pairs))
        };
        let mut error = open("error").await?;
        error.shutdown().await?;
        let data = open("data").await?;
        Ok((error, data))
    }

    async fn next(connections: &mut Connections) -> Connection {
        tokio::time::timeout(PROMPTLY, connections.next())
            .await
            .expect("no connection came")
            .expect("the session ended")
    }

    #[tokio::test]
    async fn a_pair_becomes_a_full_duplex_connection() {
        let (client, mut connections) = serve();
        let (mut error, mut data) = forward(&client, "8080", Some("0")).await.unwrap();
        let mut connection = next(&mut connections).await;
        assert_eq!(connection.port, 8080);

        data.write_all(b"request").await.unwrap();
        data.shutdown().await.unwrap();
        assert_eq!(read_all(&mut connection.data).await, b"request");
        connection
            .data
            .write_all(b"response after the client's FIN")
            .await
            .unwrap();
        connection.data.shutdown().await.unwrap();
        drop(connection);
        assert_eq!(
            read_all(&mut data).await,
            b"response after the client's FIN"
        );
        assert_eq!(read_all(&mut error).await, b"");
    }

    #[tokio::test]
    async fn a_failure_is_reported_on_the_error_stream() {
        let (client, mut connections) = serve();
        let (mut error, mut data) = forward(&client, "5432", Some("3")).await.unwrap();
        next(&mut connections)
            .await
            .fail("dial tcp 127.0.0.1:5432: connection refused")
            .await;
        assert_eq!(
            read_all(&mut error).await,
            b"dial tcp 127.0.0.1:5432: connection refused"
        );
        assert_eq!(read_all(&mut data).await, b"");
    }

    #[tokio::test]
    async fn streams_kubelet_refuses_are_reset_unanswered() {
        let (client, _connections) = serve();
        let refused = [
            &[("streamType", "data")][..],
            &[("streamType", "data"), ("port", "0")],
            &[("streamType", "data"), ("port", "http")],
            &[("streamType", "data"), ("port", "+80")],
            &[("streamType", "data"), ("port", "65536")],
            &[("port", "80")],
            &[("streamType", "stdin"), ("port", "80")],
        ];
        for pairs in refused {
            let opened = client.open(headers(pairs)).await;
            assert!(
                matches!(opened, Err(SpdyError::StreamReset(RstStatus::CANCEL))),
                "{pairs:?}: {opened:?}"
            );
        }
        client.ping().await.unwrap();
    }

    #[tokio::test]
    async fn clients_without_request_ids_pair_by_stream_id() {
        let (client, mut connections) = serve();
        let (_error, mut data) = forward(&client, "80", None).await.unwrap();
        let mut connection = next(&mut connections).await;
        data.write_all(b"old client").await.unwrap();
        data.shutdown().await.unwrap();
        assert_eq!(read_all(&mut connection.data).await, b"old client");
    }

    #[tokio::test]
    async fn a_second_stream_of_a_type_is_reported() {
        let (client, _connections) = serve();
        let error_headers = headers(&[("streamType", "error"), ("port", "80"), ("requestID", "4")]);
        let mut error = client.open(error_headers.clone()).await.unwrap();
        let _again = client.open(error_headers).await.unwrap();
        let mut message = vec![0u8; 128];
        let n = tokio::time::timeout(PROMPTLY, error.read(&mut message))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            &message[..n],
            b"error processing stream for request 4: error stream already assigned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_incomplete_pair_times_out() {
        let (client, _connections) = serve();
        let mut error = client
            .open(headers(&[
                ("streamType", "error"),
                ("port", "80"),
                ("requestID", "7"),
            ]))
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let mut message = Vec::new();
        error.read_to_end(&mut message).await.unwrap();
        assert_eq!(message, b"(request=7) timed out waiting for streams");
        assert!(started.elapsed() >= STREAM_PAIR_TIMEOUT);
    }

    #[tokio::test]
    async fn many_connections_at_once() {
        let (client, mut connections) = serve();
        tokio::spawn(async move {
            while let Some(mut connection) = connections.next().await {
                tokio::spawn(async move {
                    let (mut reader, mut writer) = tokio::io::split(&mut connection.data);
                    tokio::io::copy(&mut reader, &mut writer).await.unwrap();
                    writer.shutdown().await.unwrap();
                });
            }
        });
        let mut tasks = Vec::new();
        for index in 0..50u32 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let id = index.to_string();
                let (_error, mut data) = forward(&client, "80", Some(&id)).await.unwrap();
                let payload = vec![index as u8; 100_000];
                data.write_all(&payload).await.unwrap();
                data.shutdown().await.unwrap();
                assert_eq!(read_all(&mut data).await, payload);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }
}
