//! `SPDY/3.1+portforward.k8s.io`: a byte stream carried in WebSocket binary messages, as
//! client-go's `TunnelingConnection` writes it on both ends (kube-apiserver's tunneling
//! handler uses the same type). There is no channel byte: message boundaries mean nothing, a
//! text message is an error, and a close frame 1000 is the end of the stream.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::pipe::{fill, MAX_WRITE};

/// The byte stream of a tunnel, server end. Writes go out one message each, as they are
/// written; like any [`AsyncWrite`], flush to be sure the last one left while the peer was
/// slow.
pub struct Tunnel<T> {
    ws: WebSocketStream<T>,
    pending: Bytes,
    read_ended: bool,
    close_sent: bool,
}

/// Opens the tunnel on a connection upgraded for `SPDY/3.1+portforward.k8s.io`.
pub async fn server<T>(io: T) -> Tunnel<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    Tunnel {
        ws: super::server(io).await,
        pending: Bytes::new(),
        read_ended: false,
        close_sent: false,
    }
}

fn io_error(err: WsError) -> io::Error {
    match err {
        WsError::Io(err) => err,
        other => io::Error::other(other),
    }
}

impl<T> Tunnel<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    /// Waits for the next binary message into `pending`; `false` at the end of the stream.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        loop {
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => {
                    self.pending = data;
                    return Poll::Ready(Ok(true));
                }
                Some(Ok(Message::Text(_))) => {
                    let invalid = "invalid message type received";
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, invalid)));
                }
                // After a close frame the next poll sends the reply and ends the stream.
                Some(Ok(_)) => {}
                Some(Err(err)) => return Poll::Ready(Err(io_error(err))),
                None => return Poll::Ready(Ok(false)),
            }
        }
    }
}

impl<T> AsyncRead for Tunnel<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() && !self.read_ended {
            self.read_ended = !ready!(self.poll_message(cx))?;
        }
        fill(&mut self.pending, buf);
        Poll::Ready(Ok(()))
    }
}

impl<T> AsyncWrite for Tunnel<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // The previous message goes out first: at most one waits in the WebSocket's buffer.
        ready!(Pin::new(&mut self.ws).poll_flush(cx)).map_err(io_error)?;
        let n = buf.len().min(MAX_WRITE);
        let message = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
        Pin::new(&mut self.ws)
            .start_send(message)
            .map_err(io_error)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }

    /// Sends the close frame 1000 that `TunnelingConnection.Close` sends.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.close_sent {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            let close = Pin::new(&mut self.ws).start_send(Message::Close(Some(frame)));
            self.close_sent = true;
            close.map_err(io_error)?;
        }
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }
}

#[cfg(test)]
mod tests {
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::websocket::testing::{binary, client, connection, normal_close, receive, Client};

    async fn open() -> (Tunnel<DuplexStream>, Client) {
        let (server_io, client_io) = connection(1 << 20);
        tokio::join!(server(server_io), client(client_io))
    }

    #[tokio::test]
    async fn messages_are_one_byte_stream_without_channel_bytes() {
        let (mut tunnel, mut client) = open().await;
        client.send(binary(b"\x80\x03")).await.unwrap();
        client.send(binary(b"\x00\x01rest")).await.unwrap();
        let mut read = [0u8; 8];
        tunnel.read_exact(&mut read).await.unwrap();
        assert_eq!(&read, b"\x80\x03\x00\x01rest");
        tunnel.write_all(b"spdy frame").await.unwrap();
        tunnel.flush().await.unwrap();
        assert_eq!(receive(&mut client).await, binary(b"spdy frame"));
    }

    #[tokio::test]
    async fn large_messages_pass_whole_both_ways() {
        let (mut tunnel, mut client) = open().await;
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = payload.clone();
        let sender = tokio::spawn(async move {
            client.send(binary(&sent)).await.unwrap();
            client
        });
        let mut read = vec![0u8; payload.len()];
        tunnel.read_exact(&mut read).await.unwrap();
        assert!(read == payload);
        let mut client = sender.await.unwrap();
        let writer = tokio::spawn(async move {
            tunnel.write_all(&payload).await.unwrap();
            tunnel.flush().await.unwrap();
            payload
        });
        let mut received = Vec::new();
        while received.len() < 3_000_000 {
            match receive(&mut client).await {
                Message::Binary(data) => received.extend_from_slice(&data),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(received == writer.await.unwrap());
    }

    #[tokio::test]
    async fn a_close_frame_ends_the_stream_and_is_answered() {
        let (mut tunnel, mut client) = open().await;
        client.send(binary(b"last")).await.unwrap();
        client.send(normal_close()).await.unwrap();
        let mut read = Vec::new();
        tunnel.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, b"last");
        assert_eq!(receive(&mut client).await, normal_close());
        drop(tunnel);
        assert!(client.next().await.is_none());
    }

    #[tokio::test]
    async fn a_text_message_is_an_error() {
        let (mut tunnel, mut client) = open().await;
        client.send(Message::Text("SPDY".into())).await.unwrap();
        let err = tunnel.read(&mut [0u8; 4]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn shutdown_sends_close_1000() {
        let (mut tunnel, mut client) = open().await;
        tunnel.shutdown().await.unwrap();
        assert_eq!(receive(&mut client).await, normal_close());
        assert!(tunnel.write_all(b"late").await.is_err());
    }
}
