//! Kubernetes' streaming protocols, as kube-apiserver and kubelet speak them to kubectl: the
//! remote-command channels of exec and attach, and port-forward, over WebSocket
//! (`v5.channel.k8s.io`…, `SPDY/3.1+portforward.k8s.io`) and over SPDY/3.1
//! (`X-Stream-Protocol-Version`). [`negotiate`] picks the transport and protocol from the
//! upgrade request; [`remotecommand`] and [`portforward`] then give the caller the same streams
//! whatever the transport. The hand-written wire code is [`spdy`] (framing, header compression,
//! sessions) and [`websocket`] (channel multiplexing over a maintained WebSocket crate).

pub mod negotiate;
pub mod portforward;
pub mod remotecommand;
pub mod spdy;
pub mod websocket;

/// A stream session that failed after the upgrade.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("spdy: {0}")]
    Spdy(#[from] spdy::SpdyError),
    /// The client did not open what the protocol requires in time (kubelet's stream creation
    /// timeout).
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The client broke the protocol (unknown channel, bad port header...).
    #[error("{0}")]
    Protocol(String),
}
