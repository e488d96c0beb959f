//! Test plumbing: an in-memory connection and a WebSocket client on its far end, playing
//! kubectl.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::DuplexStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Client = WebSocketStream<DuplexStream>;

/// The server's and the client's ends of a connection buffering `capacity` bytes each way.
pub fn connection(capacity: usize) -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(capacity)
}

pub async fn client(io: DuplexStream) -> Client {
    WebSocketStream::from_raw_socket(io, Role::Client, None).await
}

/// The client's next message other than a pong, within a generous deadline.
pub async fn receive(client: &mut Client) -> Message {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), client.next()).await;
        match next.expect("a message in time") {
            Some(Ok(Message::Pong(_))) => {}
            Some(Ok(message)) => return message,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

pub async fn send_binary(client: &mut Client, data: &[u8]) {
    let message = Message::Binary(Bytes::copy_from_slice(data));
    client.send(message).await.expect("client send");
}

pub fn binary(data: &[u8]) -> Message {
    Message::Binary(Bytes::copy_from_slice(data))
}

pub fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}
