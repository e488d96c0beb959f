//! kubelet's WebSocket port-forward (`v4.channel.k8s.io`, or no subprotocol): the ports are the
//! request's; port i has data channel 2i (both ways) and error channel 2i+1 (to the client),
//! each opened with the port number in two little-endian bytes. Every port is one
//! [`Connection`]; once all are done the session sends the close frame.

use bytes::Bytes;
use futures::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use super::{Connection, Connections};
use crate::websocket::channel::{ChannelMessage, Encoding, Framing};
use crate::websocket::pipe::{ChannelReader, ChannelStream, ChannelWriter};
use crate::websocket::{self, Inbound, Outbound};
use crate::StreamError;

/// The most ports one session forwards: their channels are numbered in a byte.
pub const MAX_PORTS: usize = 127;
/// Messages written by the connections that may wait for the WebSocket.
const OUTBOUND_MESSAGES: usize = 16;
/// Client messages that may wait for each connection's reader.
const INPUT_CHUNKS: usize = 16;

pub async fn accept<T>(io: T, ports: &[u16]) -> Result<Connections, StreamError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let framing = port_framing(ports)?;
    let mut ws = websocket::server(io).await;
    for (index, port) in ports.iter().enumerate() {
        let (data, error) = channels(index);
        ws.send(framing.encode(data, &port.to_le_bytes())).await?;
        ws.send(framing.encode(error, &port.to_le_bytes())).await?;
    }
    let (messages, outgoing) = mpsc::channel(OUTBOUND_MESSAGES);
    let (inputs, connections): (Vec<_>, Vec<_>) = ports
        .iter()
        .enumerate()
        .map(|(index, &port)| connection(framing, index, port, &messages))
        .unzip();
    drop(messages);
    let outbound = websocket::link(ws, move |inbound| read_ports(inbound, framing, inputs));
    let (opened, accepted) = Connections::channel(ports.len());
    for connection in connections {
        // The channel holds every port, so this cannot fail.
        let _ = opened.try_send(connection);
    }
    tokio::spawn(write_ports(outbound, outgoing, opened));
    Ok(accepted)
}

/// kubelet's `NewV4Options` wants a port; the channels of each must fit in a byte.
fn port_framing(ports: &[u16]) -> Result<Framing, StreamError> {
    if ports.is_empty() {
        let required = r#"query parameter "port" is required"#;
        return Err(StreamError::Protocol(required.into()));
    }
    let channels = u8::try_from(ports.len() * 2).map_err(|_| {
        StreamError::Protocol(format!(
            "at most {MAX_PORTS} ports can be forwarded at once"
        ))
    })?;
    Ok(Framing {
        encoding: Encoding::Binary,
        close_signal: false,
        channels,
    })
}

/// The data and error channels of the port at `index` (below [`MAX_PORTS`]).
fn channels(index: usize) -> (u8, u8) {
    let data = (index * 2) as u8;
    (data, data + 1)
}

/// The connection of one port, and the sender of the client's data to it.
fn connection(
    framing: Framing,
    index: usize,
    port: u16,
    messages: &mpsc::Sender<Message>,
) -> (Option<mpsc::Sender<Bytes>>, Connection) {
    let (data_channel, error_channel) = channels(index);
    let (input, chunks) = mpsc::channel(INPUT_CHUNKS);
    let data = ChannelStream {
        reader: ChannelReader::new(chunks),
        writer: ChannelWriter::new(framing, data_channel, messages.clone()),
    };
    let error = ChannelWriter::new(framing, error_channel, messages.clone());
    let connection = Connection {
        port,
        data: Box::pin(data),
        error: Box::pin(error),
    };
    (Some(input), connection)
}

/// Hands the client's data channel messages to their connections; error channels are
/// write-only and other messages dropped, as wsstream drops them.
async fn read_ports<T>(
    mut inbound: Inbound<T>,
    framing: Framing,
    mut inputs: Vec<Option<mpsc::Sender<Bytes>>>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(payload) = inbound.next().await {
        match framing.decode(payload) {
            Ok(Some(ChannelMessage::Data { channel, data }))
                if channel % 2 == 0 && !data.is_empty() =>
            {
                let input = &mut inputs[usize::from(channel / 2)];
                if let Some(sender) = input {
                    if !inbound.deliver(sender, data).await {
                        *input = None;
                    }
                }
            }
            Ok(_) => {}
            Err(err) => tracing::debug!(%err, "dropped a port-forward message"),
        }
    }
}

/// Writes what the connections write until all are done, then closes. `_opened` keeps
/// [`Connections::next`] waiting until the session is over.
async fn write_ports<T>(
    mut outbound: Outbound<T>,
    mut outgoing: mpsc::Receiver<Message>,
    _opened: mpsc::Sender<Connection>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match outbound.next(&mut outgoing).await {
            Ok(Some(message)) => {
                if outbound.send(message).await.is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    if outbound.close(CloseCode::Normal, "").await.is_ok() {
        outbound.linger().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::websocket::testing::{
        binary, client, connection, normal_close, receive, send_binary, Client,
    };

    async fn open(ports: &[u16]) -> (Connections, Client) {
        let (server_io, client_io) = connection(1 << 16);
        let (connections, client) = tokio::join!(accept(server_io, ports), client(client_io));
        (connections.unwrap(), client)
    }

    async fn next(connections: &mut Connections) -> Option<Connection> {
        tokio::time::timeout(Duration::from_secs(5), connections.next())
            .await
            .expect("the session to answer in time")
    }

    #[tokio::test]
    async fn each_port_gets_a_data_and_an_error_channel() {
        let (mut connections, mut client) = open(&[8080, 53]).await;
        for opening in [
            b"\x00\x90\x1f",
            b"\x01\x90\x1f",
            b"\x02\x35\x00",
            b"\x03\x35\x00",
        ] {
            assert_eq!(receive(&mut client).await, binary(opening));
        }
        let mut web = next(&mut connections).await.unwrap();
        let dns = next(&mut connections).await.unwrap();
        assert_eq!((web.port, dns.port), (8080, 53));

        send_binary(&mut client, b"\x00GET /").await;
        send_binary(&mut client, b"\x01ignored").await;
        let mut request = [0u8; 5];
        web.data.read_exact(&mut request).await.unwrap();
        assert_eq!(&request, b"GET /");
        web.data.write_all(b"200 OK").await.unwrap();
        assert_eq!(receive(&mut client).await, binary(b"\x00200 OK"));

        dns.fail("connection refused").await;
        assert_eq!(
            receive(&mut client).await,
            binary(b"\x03connection refused")
        );
        drop(web);
        assert_eq!(receive(&mut client).await, normal_close());
        // Reading on sends the client's answer to the close frame; then the server hangs up.
        assert!(client.next().await.is_none());
        assert!(next(&mut connections).await.is_none());
    }

    #[tokio::test]
    async fn a_vanished_client_ends_every_connection() {
        let (mut connections, client) = open(&[80]).await;
        let mut web = next(&mut connections).await.unwrap();
        drop(client);
        let mut rest = Vec::new();
        web.data.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert!(next(&mut connections).await.is_none());
        let mut late = web.data.write_all(b"late").await;
        for _ in 0..OUTBOUND_MESSAGES {
            late = late.and(web.data.write_all(b"late").await);
        }
        assert!(late.is_err());
    }

    #[tokio::test]
    async fn ports_are_required_and_bounded() {
        let (server_io, _client_io) = connection(1024);
        let refused = accept(server_io, &[]).await.unwrap_err();
        assert_eq!(refused.to_string(), r#"query parameter "port" is required"#);
        let (server_io, _client_io) = connection(1024);
        let too_many = vec![80; MAX_PORTS + 1];
        assert!(accept(server_io, &too_many).await.is_err());
        assert_eq!(port_framing(&vec![80; MAX_PORTS]).unwrap().channels, 254);
    }
}
