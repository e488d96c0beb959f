//! The channel framing of Kubernetes' WebSocket subprotocols (wsstream): every message starts
//! with its channel, a byte in the binary protocols (`v5.channel.k8s.io`, `channel.k8s.io`...)
//! or a digit in the base64 ones (`base64.channel.k8s.io`...), whose payload is base64 text.
//! v5 adds the CLOSE signal `[255, channel]`: the sender will write nothing more there. The same
//! [`Framing`] serves the server and a client.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::{alphabet, Engine};
use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Message;

use crate::negotiate::{
    BASE64_CHANNEL, CHANNEL, NO_SUBPROTOCOL, V4_BASE64_CHANNEL, V4_CHANNEL, V5_CHANNEL,
};

/// The first byte of a v5 CLOSE signal (remotecommand's `StreamClose`).
pub const STREAM_CLOSE: u8 = 255;

/// Go's `base64.StdEncoding`: padded, lenient about the unused bits of the last character.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Binary messages, the channel as their first byte.
    Binary,
    /// Text messages: the channel as a digit (`'0' + channel`), then the payload in base64.
    Base64,
}

/// How a negotiated protocol frames its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub encoding: Encoding,
    /// Whether the protocol has the CLOSE signal (v5 only).
    pub close_signal: bool,
    /// How many channels the session has (0 to `channels - 1`).
    pub channels: u8,
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelMessage {
    Data {
        channel: u8,
        data: Bytes,
    },
    /// The sender writes nothing more on `channel`.
    Close {
        channel: u8,
    },
}

/// A message the framing refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("frame is targeted for channel {0}, which is not valid")]
    UnknownChannel(u8),
    #[error("a close signal must name exactly one channel, got {0} bytes")]
    MalformedClose(usize),
    #[error("close is targeted for channel {0}, which is not valid")]
    CloseOfUnknownChannel(u8),
    #[error("invalid base64 data on channel {0}")]
    InvalidBase64(u8),
}

impl ChannelError {
    /// Whether wsstream ends the connection over it (a bad CLOSE signal) rather than dropping
    /// the one message.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ChannelError::MalformedClose(_) | ChannelError::CloseOfUnknownChannel(_)
        )
    }
}

impl Framing {
    /// The framing of a wsstream channel protocol with `channels` channels; `None` for a
    /// protocol that is not one.
    pub fn for_protocol(protocol: &str, channels: u8) -> Option<Framing> {
        let (encoding, close_signal) = match protocol {
            V5_CHANNEL => (Encoding::Binary, true),
            NO_SUBPROTOCOL | CHANNEL | V4_CHANNEL => (Encoding::Binary, false),
            BASE64_CHANNEL | V4_BASE64_CHANNEL => (Encoding::Base64, false),
            _ => return None,
        };
        Some(Framing {
            encoding,
            close_signal,
            channels,
        })
    }

    /// A message carrying `data` on `channel`; an empty one is wsstream's ready signal.
    pub fn encode(&self, channel: u8, data: &[u8]) -> Message {
        match self.encoding {
            Encoding::Binary => {
                let mut message = BytesMut::with_capacity(1 + data.len());
                message.put_u8(channel);
                message.extend_from_slice(data);
                Message::Binary(message.freeze())
            }
            Encoding::Base64 => {
                let mut text = String::from(char::from(b'0'.wrapping_add(channel)));
                GO_STD_BASE64.encode_string(data, &mut text);
                Message::Text(text.into())
            }
        }
    }

    /// The CLOSE signal for `channel`, if the protocol has one.
    pub fn encode_close(&self, channel: u8) -> Option<Message> {
        self.close_signal
            .then(|| Message::Binary(Bytes::copy_from_slice(&[STREAM_CLOSE, channel])))
    }

    /// Decodes a message's payload (see [`payload`]); `None` for an empty one, which wsstream
    /// skips.
    pub fn decode(&self, payload: Bytes) -> Result<Option<ChannelMessage>, ChannelError> {
        let Some(&first) = payload.first() else {
            return Ok(None);
        };
        if self.close_signal && first == STREAM_CLOSE {
            return self.decode_close(&payload).map(Some);
        }
        let channel = match self.encoding {
            Encoding::Binary => first,
            Encoding::Base64 => first.wrapping_sub(b'0'),
        };
        if channel >= self.channels {
            return Err(ChannelError::UnknownChannel(channel));
        }
        let data = match self.encoding {
            Encoding::Binary => payload.slice(1..),
            Encoding::Base64 => {
                decode_base64(&payload[1..]).ok_or(ChannelError::InvalidBase64(channel))?
            }
        };
        Ok(Some(ChannelMessage::Data { channel, data }))
    }

    fn decode_close(&self, payload: &[u8]) -> Result<ChannelMessage, ChannelError> {
        match *payload {
            [_, channel] if channel < self.channels => Ok(ChannelMessage::Close { channel }),
            [_, channel] => Err(ChannelError::CloseOfUnknownChannel(channel)),
            _ => Err(ChannelError::MalformedClose(payload.len() - 1)),
        }
    }
}

/// Go's decoder skips line breaks in base64 input.
fn decode_base64(text: &[u8]) -> Option<Bytes> {
    let decoded = if text.iter().any(|b| matches!(b, b'\r' | b'\n')) {
        let joined: Vec<u8> = text
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'\r' | b'\n'))
            .collect();
        GO_STD_BASE64.decode(joined)
    } else {
        GO_STD_BASE64.decode(text)
    };
    decoded.ok().map(Bytes::from)
}

/// The payload of a data message. Text messages count as well: kube reads them with
/// golang.org/x/net/websocket, which does not tell the two apart.
pub fn payload(message: Message) -> Option<Bytes> {
    match message {
        Message::Binary(data) => Some(data),
        Message::Text(text) => Some(text.into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V5: Framing = Framing {
        encoding: Encoding::Binary,
        close_signal: true,
        channels: 5,
    };

    fn base64() -> Framing {
        Framing::for_protocol(BASE64_CHANNEL, 5).unwrap()
    }

    fn data(channel: u8, data: &'static [u8]) -> Option<ChannelMessage> {
        Some(ChannelMessage::Data {
            channel,
            data: Bytes::from_static(data),
        })
    }

    #[test]
    fn protocols_have_their_framing() {
        assert_eq!(Framing::for_protocol(V5_CHANNEL, 5), Some(V5));
        for binary in [NO_SUBPROTOCOL, CHANNEL, V4_CHANNEL] {
            let framing = Framing::for_protocol(binary, 5).unwrap();
            assert_eq!(
                (framing.encoding, framing.close_signal),
                (Encoding::Binary, false)
            );
        }
        for text in [BASE64_CHANNEL, V4_BASE64_CHANNEL] {
            let framing = Framing::for_protocol(text, 5).unwrap();
            assert_eq!(
                (framing.encoding, framing.close_signal),
                (Encoding::Base64, false)
            );
        }
        assert_eq!(Framing::for_protocol("portforward.k8s.io", 2), None);
    }

    #[test]
    fn binary_messages_lead_with_the_channel_byte() {
        assert_eq!(
            V5.encode(1, b"out"),
            Message::Binary(Bytes::from_static(b"\x01out"))
        );
        assert_eq!(
            V5.encode(1, b""),
            Message::Binary(Bytes::from_static(b"\x01"))
        );
        let decoded = V5.decode(Bytes::from_static(b"\x00abc\n"));
        assert_eq!(decoded, Ok(data(0, b"abc\n")));
        assert_eq!(V5.decode(Bytes::from_static(b"\x04")), Ok(data(4, b"")));
        assert_eq!(V5.decode(Bytes::new()), Ok(None));
    }

    #[test]
    fn base64_messages_lead_with_the_channel_digit() {
        // wsstream's own examples: "\n" read on stdout, "foo\n" written to stdin.
        assert_eq!(base64().encode(1, b"\n"), Message::Text("1Cg==".into()));
        assert_eq!(base64().encode(3, b""), Message::Text("3".into()));
        let decoded = base64().decode(Bytes::from_static(b"0Zm9vCg=="));
        assert_eq!(decoded, Ok(data(0, b"foo\n")));
        let folded = base64().decode(Bytes::from_static(b"0Zm9v\r\nCg=="));
        assert_eq!(folded, Ok(data(0, b"foo\n")));
        let lenient = base64().decode(Bytes::from_static(b"0Zm9vCh=="));
        assert_eq!(lenient, Ok(data(0, b"foo\n")));
        let invalid = base64().decode(Bytes::from_static(b"0Zm9"));
        assert_eq!(invalid, Err(ChannelError::InvalidBase64(0)));
    }

    #[test]
    fn v5_close_signals_name_one_known_channel() {
        assert_eq!(
            V5.encode_close(0),
            Some(Message::Binary(vec![255, 0].into()))
        );
        let close = V5.decode(Bytes::from_static(&[255, 0]));
        assert_eq!(close, Ok(Some(ChannelMessage::Close { channel: 0 })));
        let bare = V5.decode(Bytes::from_static(&[255])).unwrap_err();
        assert_eq!(bare, ChannelError::MalformedClose(0));
        let long = V5.decode(Bytes::from_static(&[255, 0, 1])).unwrap_err();
        assert_eq!(long, ChannelError::MalformedClose(2));
        let unknown = V5.decode(Bytes::from_static(&[255, 5])).unwrap_err();
        assert_eq!(unknown, ChannelError::CloseOfUnknownChannel(5));
        assert!(bare.is_fatal() && long.is_fatal() && unknown.is_fatal());
    }

    #[test]
    fn before_v5_a_close_signal_is_data_for_an_unknown_channel() {
        let v4 = Framing::for_protocol(V4_CHANNEL, 5).unwrap();
        assert_eq!(v4.encode_close(0), None);
        let refused = v4.decode(Bytes::from_static(&[255, 0])).unwrap_err();
        assert_eq!(refused, ChannelError::UnknownChannel(255));
        assert!(!refused.is_fatal());
    }

    #[test]
    fn unknown_channels_are_refused() {
        let refused = V5.decode(Bytes::from_static(b"\x05data")).unwrap_err();
        assert_eq!(refused, ChannelError::UnknownChannel(5));
        let refused = base64().decode(Bytes::from_static(b"9Cg==")).unwrap_err();
        assert_eq!(refused, ChannelError::UnknownChannel(9));
        let ports = Framing::for_protocol(V4_CHANNEL, 4).unwrap();
        assert_eq!(
            ports.decode(Bytes::from_static(b"\x03e")),
            Ok(data(3, b"e"))
        );
        let refused = ports.decode(Bytes::from_static(b"\x04e")).unwrap_err();
        assert_eq!(refused, ChannelError::UnknownChannel(4));
    }

    #[test]
    fn text_and_binary_messages_carry_payloads() {
        assert_eq!(
            payload(Message::Text("\u{0}hi".into())),
            Some(Bytes::from_static(b"\0hi"))
        );
        assert_eq!(
            payload(Message::Binary(Bytes::from_static(b"\x01"))),
            Some(Bytes::from_static(b"\x01"))
        );
        assert_eq!(payload(Message::Ping(Bytes::new())), None);
    }
}
