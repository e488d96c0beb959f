//! Which transport and protocol an upgrade request gets, answered as kube-apiserver and
//! kubelet answer (wsstream's WebSocket handshake, httpstream's SPDY `Handshake`).
//!
//! The path of a request through kube decides the answer: a WebSocket exec or attach offering
//! `v5.channel.k8s.io` is served by kube-apiserver's stream translator, other WebSocket ones by
//! kubelet (`v4.channel.k8s.io` and older); a WebSocket port-forward offering
//! `SPDY/3.1+….k8s.io` is tunneled by kube-apiserver to kubelet's SPDY server; everything else
//! is SPDY, negotiated by kubelet.

use http::header::{
    HeaderName, HeaderValue, AUTHORIZATION, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, Method, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Remote command with the CLOSE signal (WebSocket) or as v4 (SPDY).
pub const V5_CHANNEL: &str = "v5.channel.k8s.io";
/// Remote command with the exit status as `metav1.Status` JSON; also a port-forward protocol.
pub const V4_CHANNEL: &str = "v4.channel.k8s.io";
pub const V4_BASE64_CHANNEL: &str = "v4.base64.channel.k8s.io";
/// Remote command with the resize stream (SPDY only).
pub const V3_CHANNEL: &str = "v3.channel.k8s.io";
pub const V2_CHANNEL: &str = "v2.channel.k8s.io";
/// The first remote-command protocol; over WebSocket, wsstream's binary channels.
pub const CHANNEL: &str = "channel.k8s.io";
pub const BASE64_CHANNEL: &str = "base64.channel.k8s.io";
/// What a WebSocket client that offers no subprotocol gets (wsstream's `""`): binary channels.
pub const NO_SUBPROTOCOL: &str = "";
pub const PORT_FORWARD: &str = "portforward.k8s.io";
/// SPDY port-forward tunneled in WebSocket binary messages.
pub const TUNNELED_PORT_FORWARD: &str = "SPDY/3.1+portforward.k8s.io";

const TUNNEL_PREFIX: &str = "SPDY/3.1+";
const KUBERNETES_SUFFIX: &str = ".k8s.io";
const SPDY_UPGRADE: &str = "SPDY/3.1";
const STREAM_PROTOCOL_VERSION: &str = "x-stream-protocol-version";

/// kubelet's `SupportedStreamingProtocols`; v5 is served as v4 over SPDY.
const SPDY_REMOTE_COMMAND: &[&str] = &[V5_CHANNEL, V4_CHANNEL, V3_CHANNEL, V2_CHANNEL, CHANNEL];
const SPDY_PORT_FORWARD: &[&str] = &[PORT_FORWARD];
/// kube-apiserver's stream translator serves only v5.
const TRANSLATOR_REMOTE_COMMAND: &[&str] = &[V5_CHANNEL];
/// kubelet's WebSocket remote command (`createWebSocketStreams`).
const KUBELET_REMOTE_COMMAND: &[&str] = &[
    NO_SUBPROTOCOL,
    CHANNEL,
    BASE64_CHANNEL,
    V4_CHANNEL,
    V4_BASE64_CHANNEL,
];
/// kubelet's WebSocket port-forward, less `v4.base64.channel.k8s.io`: the port-forward
/// session is not told the negotiated protocol, so it only frames binary channels.
const KUBELET_PORT_FORWARD: &[&str] = &[NO_SUBPROTOCOL, V4_CHANNEL];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Channels multiplexed in WebSocket binary messages (`v5.channel.k8s.io`...).
    WebSocket,
    /// SPDY/3.1 on the upgraded connection (`Upgrade: SPDY/3.1`).
    Spdy,
    /// SPDY/3.1 carried in WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`).
    SpdyOverWebSocket,
}

/// What is being upgraded for: the protocols each serves differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// exec and attach.
    RemoteCommand,
    PortForward,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub transport: Transport,
    pub protocol: &'static str,
    /// `Sec-WebSocket-Accept` for a WebSocket handshake.
    pub accept_key: Option<String>,
}

impl Negotiated {
    /// The headers of the `101 Switching Protocols` answer.
    pub fn response_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let value = HeaderValue::from_static;
        if self.transport == Transport::Spdy {
            return vec![
                (CONNECTION, value("Upgrade")),
                (UPGRADE, value(SPDY_UPGRADE)),
                (
                    HeaderName::from_static(STREAM_PROTOCOL_VERSION),
                    value(self.protocol),
                ),
            ];
        }
        let mut headers = vec![
            (UPGRADE, value("websocket")),
            (CONNECTION, value("Upgrade")),
        ];
        let accept = self.accept_key.as_deref().map(HeaderValue::from_str);
        if let Some(Ok(accept)) = accept {
            headers.push((SEC_WEBSOCKET_ACCEPT, accept));
        }
        if !self.protocol.is_empty() {
            headers.push((SEC_WEBSOCKET_PROTOCOL, value(self.protocol)));
        }
        headers
    }
}

/// An upgrade refused, with the HTTP status and message kube answers. The message is the
/// answer's body, empty where kube's is (a WebSocket subprotocol nobody serves).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NegotiateError {
    pub code: StatusCode,
    pub message: String,
    /// Who refuses, which decides the body's form.
    pub refused_by: RefusedBy,
}

/// Where kube refuses an upgrade: kube-apiserver's proxy answers a `metav1.Status`; kubelet's
/// stream servers answer plain text, which the proxy passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBy {
    ApiServer,
    Kubelet,
}

impl NegotiateError {
    fn new(code: StatusCode, message: impl Into<String>) -> NegotiateError {
        NegotiateError {
            code,
            message: message.into(),
            refused_by: RefusedBy::Kubelet,
        }
    }

    /// A request that is no upgrade at all: the apiserver's `UpgradeAwareHandler` refuses it
    /// before any kubelet sees it.
    fn upgrade_required() -> NegotiateError {
        NegotiateError {
            refused_by: RefusedBy::ApiServer,
            ..NegotiateError::new(StatusCode::BAD_REQUEST, "Upgrade request required")
        }
    }
}

/// The transport and protocol an upgrade request (`GET`/`POST` on exec, attach or
/// portforward) gets, or kube's refusal.
pub fn negotiate(
    method: &Method,
    headers: &HeaderMap,
    service: Service,
) -> Result<Negotiated, NegotiateError> {
    if !is_websocket_request(headers) {
        return spdy(headers, service);
    }
    let offered = offered_subprotocols(headers);
    match service {
        Service::RemoteCommand if offered.iter().any(|p| p == V5_CHANNEL) => {
            channels(method, headers, &offered, TRANSLATOR_REMOTE_COMMAND)
        }
        Service::RemoteCommand => channels(method, headers, &offered, KUBELET_REMOTE_COMMAND),
        Service::PortForward if offered.iter().any(|p| tunneled_spdy(p).is_some()) => {
            tunnel(method, headers, &offered)
        }
        Service::PortForward => channels(method, headers, &offered, KUBELET_PORT_FORWARD),
    }
}

/// wsstream's `IsWebSocketRequest`.
fn is_websocket_request(headers: &HeaderMap) -> bool {
    first(headers, &UPGRADE).eq_ignore_ascii_case("websocket") && is_upgrade_request(headers)
}

/// httpstream's `IsUpgradeRequest`: any `Connection` header mentioning upgrade.
fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .any(|value| lossy(value).to_ascii_lowercase().contains("upgrade"))
}

/// The first value of a header, as Go's `Header.Get` reads it.
fn first(headers: &HeaderMap, name: &HeaderName) -> String {
    headers.get(name).map(lossy).unwrap_or_default()
}

fn lossy(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

/// The subprotocols of the first `Sec-WebSocket-Protocol` header, as golang.org/x/net/websocket
/// and gorilla/websocket split them (empty entries kept).
fn offered_subprotocols(headers: &HeaderMap) -> Vec<String> {
    let header = first(headers, &SEC_WEBSOCKET_PROTOCOL);
    let header = header.trim();
    if header.is_empty() {
        return Vec::new();
    }
    header.split(',').map(|p| p.trim().to_string()).collect()
}

/// A wsstream channel protocol, served by golang.org/x/net/websocket: the first offered
/// subprotocol served wins, `""` standing for none offered.
fn channels(
    method: &Method,
    headers: &HeaderMap,
    offered: &[String],
    served: &[&'static str],
) -> Result<Negotiated, NegotiateError> {
    let accept_key = x_net_handshake(method, headers)?;
    let wanted: Vec<&str> = match offered {
        [] => vec![NO_SUBPROTOCOL],
        offered => offered.iter().map(String::as_str).collect(),
    };
    let protocol = first_served(&wanted, served)
        .ok_or_else(|| NegotiateError::new(StatusCode::FORBIDDEN, ""))?;
    Ok(Negotiated {
        transport: Transport::WebSocket,
        protocol,
        accept_key: Some(accept_key),
    })
}

/// golang.org/x/net/websocket's `ReadHandshake` checks, with its answers.
fn x_net_handshake(method: &Method, headers: &HeaderMap) -> Result<String, NegotiateError> {
    if method != Method::GET {
        return Err(NegotiateError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "bad method",
        ));
    }
    let bad_request = |message| Err(NegotiateError::new(StatusCode::BAD_REQUEST, message));
    let connection = first(headers, &CONNECTION).to_ascii_lowercase();
    if !first(headers, &UPGRADE).eq_ignore_ascii_case("websocket")
        || !connection.contains("upgrade")
    {
        return bad_request("not websocket protocol");
    }
    let key = first(headers, &SEC_WEBSOCKET_KEY);
    if key.is_empty() {
        return bad_request("mismatch challenge/response");
    }
    if first(headers, &SEC_WEBSOCKET_VERSION) != "13" {
        return bad_request("missing or bad WebSocket Version");
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// kube-apiserver's tunneling handler: the `SPDY/3.1+` protocols go to kubelet's SPDY
/// negotiation, then gorilla/websocket upgrades the client.
fn tunnel(
    method: &Method,
    headers: &HeaderMap,
    offered: &[String],
) -> Result<Negotiated, NegotiateError> {
    let spdy_offered: Vec<&str> = offered.iter().filter_map(|p| tunneled_spdy(p)).collect();
    pick_spdy(&spdy_offered, SPDY_PORT_FORWARD)?;
    let accept_key = gorilla_handshake(method, headers)?;
    Ok(Negotiated {
        transport: Transport::SpdyOverWebSocket,
        protocol: TUNNELED_PORT_FORWARD,
        accept_key: Some(accept_key),
    })
}

/// The SPDY protocol a tunneling subprotocol carries (`SPDY/3.1+portforward.k8s.io`).
fn tunneled_spdy(protocol: &str) -> Option<&str> {
    protocol
        .strip_prefix(TUNNEL_PREFIX)
        .filter(|_| protocol.ends_with(KUBERNETES_SUFFIX))
}

/// gorilla/websocket's `Upgrader.Upgrade` checks; it answers with the status text.
fn gorilla_handshake(method: &Method, headers: &HeaderMap) -> Result<String, NegotiateError> {
    let refuse = |code: StatusCode| {
        let text = code.canonical_reason().unwrap_or_default();
        Err(NegotiateError::new(code, text))
    };
    if !has_token(headers, &CONNECTION, "upgrade") || !has_token(headers, &UPGRADE, "websocket") {
        return refuse(StatusCode::BAD_REQUEST);
    }
    if method != Method::GET {
        return refuse(StatusCode::METHOD_NOT_ALLOWED);
    }
    if !has_token(headers, &SEC_WEBSOCKET_VERSION, "13") {
        return refuse(StatusCode::BAD_REQUEST);
    }
    let key = first(headers, &SEC_WEBSOCKET_KEY);
    if !is_challenge_key(&key) {
        return refuse(StatusCode::BAD_REQUEST);
    }
    Ok(derive_accept_key(key.as_bytes()))
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        lossy(value)
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// A `Sec-WebSocket-Key` gorilla accepts: 16 bytes in standard base64.
fn is_challenge_key(key: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|nonce| nonce.len() == 16)
}

/// kubelet's SPDY path: kube-apiserver wants an upgrade, httpstream's `Handshake` a protocol,
/// and the SPDY upgrader its headers, in that order.
fn spdy(headers: &HeaderMap, service: Service) -> Result<Negotiated, NegotiateError> {
    if !is_upgrade_request(headers) {
        return Err(NegotiateError::upgrade_required());
    }
    let offered = stream_protocol_versions(headers);
    if offered.is_empty() {
        return Err(NegotiateError::new(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: X-Stream-Protocol-Version is required",
        ));
    }
    let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
    let served = match service {
        Service::RemoteCommand => SPDY_REMOTE_COMMAND,
        Service::PortForward => SPDY_PORT_FORWARD,
    };
    let protocol = pick_spdy(&offered, served)?;
    check_spdy_upgrade_headers(headers)?;
    Ok(Negotiated {
        transport: Transport::Spdy,
        protocol,
        accept_key: None,
    })
}

/// httpstream's `commaSeparatedHeaderValues` of every `X-Stream-Protocol-Version` header.
fn stream_protocol_versions(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(STREAM_PROTOCOL_VERSION)
        .iter()
        .flat_map(|value| {
            lossy(value)
                .split(',')
                .map(|p| p.trim_matches(' ').to_string())
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// httpstream's protocol negotiation: the client's first protocol the server serves.
fn pick_spdy(offered: &[&str], served: &[&'static str]) -> Result<&'static str, NegotiateError> {
    first_served(offered, served).ok_or_else(|| {
        NegotiateError::new(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]",
                offered.join(" "),
                served.join(" ")
            ),
        )
    })
}

fn first_served(offered: &[&str], served: &[&'static str]) -> Option<&'static str> {
    offered
        .iter()
        .find_map(|wanted| served.iter().find(|s| *s == wanted).copied())
}

/// The SPDY upgrader's header check, with its Go rendering of the request's headers.
fn check_spdy_upgrade_headers(headers: &HeaderMap) -> Result<(), NegotiateError> {
    let connection = first(headers, &CONNECTION).to_ascii_lowercase();
    let upgrade = first(headers, &UPGRADE).to_ascii_lowercase();
    if connection.contains("upgrade") && upgrade.contains(&SPDY_UPGRADE.to_ascii_lowercase()) {
        return Ok(());
    }
    Err(NegotiateError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "unable to upgrade: missing upgrade headers in request: {}",
            go_header_literal(headers)
        ),
    ))
}

/// Go's `%#v` of an `http.Header`, less `Authorization` (kube-apiserver strips it before
/// proxying to kubelet).
fn go_header_literal(headers: &HeaderMap) -> String {
    let mut names: Vec<&HeaderName> = headers.keys().filter(|n| **n != AUTHORIZATION).collect();
    names.sort_by_key(|name| canonical_header_name(name));
    let entries: Vec<String> = names
        .into_iter()
        .map(|name| {
            let values: Vec<String> = headers
                .get_all(name)
                .iter()
                .map(|v| format!("{:?}", lossy(v)))
                .collect();
            format!(
                "{:?}:[]string{{{}}}",
                canonical_header_name(name),
                values.join(", ")
            )
        })
        .collect();
    format!("http.Header{{{}}}", entries.join(", "))
}

/// Go's `CanonicalMIMEHeaderKey`: `x-stream-protocol-version` → `X-Stream-Protocol-Version`.
fn canonical_header_name(name: &HeaderName) -> String {
    let mut upper = true;
    name.as_str()
        .chars()
        .map(|c| {
            let mapped = if upper { c.to_ascii_uppercase() } else { c };
            upper = c == '-';
            mapped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn websocket(protocols: Option<&str>) -> HeaderMap {
        let mut map = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", KEY),
            ("sec-websocket-version", "13"),
        ]);
        if let Some(protocols) = protocols {
            map.insert(
                SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(protocols).unwrap(),
            );
        }
        map
    }

    fn spdy_request(versions: &str) -> HeaderMap {
        headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", versions),
        ])
    }

    fn websocket_answer(protocol: &'static str) -> Negotiated {
        Negotiated {
            transport: Transport::WebSocket,
            protocol,
            accept_key: Some(ACCEPT.into()),
        }
    }

    fn refused(code: StatusCode, message: &str) -> Result<Negotiated, NegotiateError> {
        Err(NegotiateError::new(code, message))
    }

    const EXEC: Service = Service::RemoteCommand;
    const FORWARD: Service = Service::PortForward;

    #[test]
    fn kubectl_1_32_exec_gets_v5_over_websocket() {
        let answer = negotiate(&Method::GET, &websocket(Some(V5_CHANNEL)), EXEC);
        assert_eq!(answer, Ok(websocket_answer(V5_CHANNEL)));
    }

    #[test]
    fn a_v5_offer_anywhere_goes_to_the_stream_translator() {
        let offer = websocket(Some("v4.channel.k8s.io, v5.channel.k8s.io"));
        let answer = negotiate(&Method::GET, &offer, EXEC);
        assert_eq!(answer, Ok(websocket_answer(V5_CHANNEL)));
    }

    #[test]
    fn kubelet_websocket_protocols_go_in_the_clients_order() {
        let offer = websocket(Some(
            "v3.channel.k8s.io,base64.channel.k8s.io, v4.channel.k8s.io",
        ));
        let answer = negotiate(&Method::GET, &offer, EXEC);
        assert_eq!(answer, Ok(websocket_answer(BASE64_CHANNEL)));
        let offer = websocket(Some(V4_BASE64_CHANNEL));
        let answer = negotiate(&Method::GET, &offer, EXEC);
        assert_eq!(answer, Ok(websocket_answer(V4_BASE64_CHANNEL)));
    }

    #[test]
    fn no_subprotocol_gets_binary_channels_and_no_protocol_header() {
        let answer = negotiate(&Method::GET, &websocket(None), EXEC).unwrap();
        assert_eq!(answer, websocket_answer(NO_SUBPROTOCOL));
        let names: Vec<_> = answer
            .response_headers()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, [UPGRADE, CONNECTION, SEC_WEBSOCKET_ACCEPT]);
        // A trailing comma offers the empty subprotocol, as x/net splits it.
        let answer = negotiate(&Method::GET, &websocket(Some("v9.channel.k8s.io,")), EXEC);
        assert_eq!(answer, Ok(websocket_answer(NO_SUBPROTOCOL)));
    }

    #[test]
    fn an_unserved_websocket_subprotocol_is_forbidden_without_a_body() {
        for offer in [
            "v3.channel.k8s.io",
            "v2.channel.k8s.io, v5.base64.channel.k8s.io",
        ] {
            let answer = negotiate(&Method::GET, &websocket(Some(offer)), EXEC);
            assert_eq!(answer, refused(StatusCode::FORBIDDEN, ""), "{offer}");
        }
    }

    #[test]
    fn websocket_handshakes_are_checked_as_x_net_checks_them() {
        let answer = negotiate(&Method::POST, &websocket(Some(V5_CHANNEL)), EXEC);
        assert_eq!(
            answer,
            refused(StatusCode::METHOD_NOT_ALLOWED, "bad method")
        );
        let mut keyless = websocket(Some(V5_CHANNEL));
        keyless.remove(SEC_WEBSOCKET_KEY);
        let answer = negotiate(&Method::GET, &keyless, EXEC);
        assert_eq!(
            answer,
            refused(StatusCode::BAD_REQUEST, "mismatch challenge/response")
        );
        let mut old = websocket(Some(V5_CHANNEL));
        old.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        let answer = negotiate(&Method::GET, &old, EXEC);
        let message = "missing or bad WebSocket Version";
        assert_eq!(answer, refused(StatusCode::BAD_REQUEST, message));
        let mut split = websocket(Some(V5_CHANNEL));
        split.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        split.append(CONNECTION, HeaderValue::from_static("Upgrade"));
        let answer = negotiate(&Method::GET, &split, EXEC);
        assert_eq!(
            answer,
            refused(StatusCode::BAD_REQUEST, "not websocket protocol")
        );
    }

    #[test]
    fn kubectl_spdy_fallback_gets_the_first_protocol_it_offers() {
        let offer = spdy_request(
            "v5.channel.k8s.io, v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io",
        );
        let answer = negotiate(&Method::POST, &offer, EXEC).unwrap();
        let expected = Negotiated {
            transport: Transport::Spdy,
            protocol: V5_CHANNEL,
            accept_key: None,
        };
        assert_eq!(answer, expected);
        let mut kubectl_1_20 = spdy_request("v4.channel.k8s.io");
        kubectl_1_20.append(STREAM_PROTOCOL_VERSION, HeaderValue::from_static(CHANNEL));
        let answer = negotiate(&Method::GET, &kubectl_1_20, EXEC).unwrap();
        assert_eq!(
            (answer.transport, answer.protocol),
            (Transport::Spdy, V4_CHANNEL)
        );
    }

    #[test]
    fn spdy_answers_carry_the_protocol_version() {
        let answer = negotiate(&Method::POST, &spdy_request(PORT_FORWARD), FORWARD).unwrap();
        let headers: Vec<_> = answer
            .response_headers()
            .into_iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        let expected = [
            "connection: Upgrade",
            "upgrade: SPDY/3.1",
            "x-stream-protocol-version: portforward.k8s.io",
        ];
        assert_eq!(headers, expected);
    }

    #[test]
    fn an_unserved_spdy_protocol_is_forbidden_with_httpstreams_message() {
        let answer = negotiate(
            &Method::POST,
            &spdy_request("v9.channel.k8s.io,bogus"),
            EXEC,
        );
        let message = "unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io bogus], server accepts [v5.channel.k8s.io v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]";
        assert_eq!(answer, refused(StatusCode::FORBIDDEN, message));
        let answer = negotiate(&Method::POST, &spdy_request(V4_CHANNEL), FORWARD);
        let message = "unable to upgrade: unable to negotiate protocol: client supports [v4.channel.k8s.io], server accepts [portforward.k8s.io]";
        assert_eq!(answer, refused(StatusCode::FORBIDDEN, message));
    }

    #[test]
    fn requests_that_are_not_upgrades_are_refused() {
        let plain = headers(&[("accept", "*/*")]);
        let answer = negotiate(&Method::POST, &plain, EXEC);
        assert_eq!(answer, Err(NegotiateError::upgrade_required()));
        let unversioned = headers(&[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")]);
        let answer = negotiate(&Method::POST, &unversioned, EXEC);
        let message = "unable to upgrade: X-Stream-Protocol-Version is required";
        assert_eq!(answer, refused(StatusCode::BAD_REQUEST, message));
    }

    #[test]
    fn an_upgrade_to_something_else_is_missing_spdy_headers() {
        let mut offer = spdy_request(V4_CHANNEL);
        offer.insert(UPGRADE, HeaderValue::from_static("h2c"));
        offer.insert(AUTHORIZATION, HeaderValue::from_static("Bearer secret"));
        let answer = negotiate(&Method::POST, &offer, EXEC);
        let message = r#"unable to upgrade: missing upgrade headers in request: http.Header{"Connection":[]string{"Upgrade"}, "Upgrade":[]string{"h2c"}, "X-Stream-Protocol-Version":[]string{"v4.channel.k8s.io"}}"#;
        assert_eq!(answer, refused(StatusCode::BAD_REQUEST, message));
    }

    #[test]
    fn kubectl_port_forward_gets_the_spdy_tunnel() {
        let offer = websocket(Some(TUNNELED_PORT_FORWARD));
        let answer = negotiate(&Method::GET, &offer, FORWARD).unwrap();
        let expected = Negotiated {
            transport: Transport::SpdyOverWebSocket,
            protocol: TUNNELED_PORT_FORWARD,
            accept_key: Some(ACCEPT.into()),
        };
        assert_eq!(answer, expected);
        let headers: Vec<_> = answer
            .response_headers()
            .into_iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        let expected = [
            "upgrade: websocket",
            "connection: Upgrade",
            &format!("sec-websocket-accept: {ACCEPT}"),
            "sec-websocket-protocol: SPDY/3.1+portforward.k8s.io",
        ];
        assert_eq!(headers, expected);
    }

    #[test]
    fn tunnels_are_refused_as_kubelet_then_gorilla_refuse_them() {
        let offer = websocket(Some("SPDY/3.1+v2.portforward.k8s.io"));
        let answer = negotiate(&Method::GET, &offer, FORWARD);
        let message = "unable to upgrade: unable to negotiate protocol: client supports [v2.portforward.k8s.io], server accepts [portforward.k8s.io]";
        assert_eq!(answer, refused(StatusCode::FORBIDDEN, message));
        let offer = websocket(Some(TUNNELED_PORT_FORWARD));
        let answer = negotiate(&Method::POST, &offer, FORWARD);
        assert_eq!(
            answer,
            refused(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        );
        let mut short_key = websocket(Some(TUNNELED_PORT_FORWARD));
        short_key.insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("c2hvcnQ="));
        let answer = negotiate(&Method::GET, &short_key, FORWARD);
        assert_eq!(answer, refused(StatusCode::BAD_REQUEST, "Bad Request"));
    }

    #[test]
    fn port_forward_channels_are_kubelets_binary_protocols() {
        let answer = negotiate(&Method::GET, &websocket(Some(V4_CHANNEL)), FORWARD);
        assert_eq!(answer, Ok(websocket_answer(V4_CHANNEL)));
        let answer = negotiate(&Method::GET, &websocket(None), FORWARD);
        assert_eq!(answer, Ok(websocket_answer(NO_SUBPROTOCOL)));
        let answer = negotiate(&Method::GET, &websocket(Some(V5_CHANNEL)), FORWARD);
        assert_eq!(answer, refused(StatusCode::FORBIDDEN, ""));
        let answer = negotiate(&Method::POST, &spdy_request(PORT_FORWARD), FORWARD);
        assert_eq!(answer.map(|a| a.protocol), Ok(PORT_FORWARD));
    }
}
