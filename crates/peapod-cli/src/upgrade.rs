//! The upgrades the streaming verbs ask the agent for, as kubectl asks them: a WebSocket with
//! one subprotocol for exec and attach (`v5.channel.k8s.io`), SPDY/3.1 with one stream
//! protocol for port-forward (`portforward.k8s.io`). The answer is checked before a session
//! starts on the connection.

use hyper::upgrade::Upgraded;
use hyper::{HeaderMap, Method};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::client::{Call, Client};
use crate::error::CliError;

const SEC_WEBSOCKET_ACCEPT: &str = "sec-websocket-accept";
const SEC_WEBSOCKET_PROTOCOL: &str = "sec-websocket-protocol";
const STREAM_PROTOCOL_VERSION: &str = "x-stream-protocol-version";

/// An upgrade the agent answered with something the client did not ask for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("the agent's WebSocket handshake is invalid: Sec-WebSocket-Accept {0:?} does not answer the key")]
    Accept(String),
    /// client-go's wording when the server picks another protocol.
    #[error(
        "unable to negotiate protocol: client supports {offered:?}, server returned {answered:?}"
    )]
    Protocol { offered: String, answered: String },
}

/// A GET upgraded to a WebSocket speaking `protocol`.
pub async fn websocket(
    client: &Client,
    path: String,
    protocol: &'static str,
) -> Result<TokioIo<Upgraded>, CliError> {
    let key = generate_key();
    let call = Call::get(path)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-key", key.clone())
        .header("sec-websocket-version", "13")
        .header(SEC_WEBSOCKET_PROTOCOL, protocol);
    let upgrade = client.upgrade(call).await?;
    let accept = header(&upgrade.headers, SEC_WEBSOCKET_ACCEPT);
    if accept != derive_accept_key(key.as_bytes()) {
        return Err(HandshakeError::Accept(accept).into());
    }
    expect_protocol(&upgrade.headers, SEC_WEBSOCKET_PROTOCOL, protocol)?;
    Ok(upgrade.io)
}

/// A POST upgraded to SPDY/3.1 speaking `protocol`.
pub async fn spdy(
    client: &Client,
    path: String,
    protocol: &'static str,
) -> Result<TokioIo<Upgraded>, CliError> {
    let call = Call::new(Method::POST, path)
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header(STREAM_PROTOCOL_VERSION, protocol);
    let upgrade = client.upgrade(call).await?;
    expect_protocol(&upgrade.headers, STREAM_PROTOCOL_VERSION, protocol)?;
    Ok(upgrade.io)
}

fn expect_protocol(
    headers: &HeaderMap,
    name: &str,
    protocol: &'static str,
) -> Result<(), HandshakeError> {
    let answered = header(headers, name);
    if answered == protocol {
        return Ok(());
    }
    Err(HandshakeError::Protocol {
        offered: protocol.to_string(),
        answered,
    })
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default()
}
