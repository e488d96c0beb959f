//! A bare WebSocket client over the agent's socket (plain HTTP), for what kubectl never sends:
//! the handshake with any subprotocol, masked binary frames out as given, frames in as they
//! come (pings skipped). Enough for kube's channel protocols; no fragmentation, no extensions.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::text;

pub struct WebSocket {
    stream: UnixStream,
    buffer: Vec<u8>,
}

/// What came next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A message: opcode (2 binary, 1 text, 8 close) and payload.
    Message(u8, Vec<u8>),
    /// The connection ended (EOF or error).
    Closed,
    /// Nothing within the read timeout.
    TimedOut,
}

impl WebSocket {
    /// GET `path` upgraded to a WebSocket offering `protocol`; panics unless answered 101.
    pub fn connect(socket: &Path, path: &str, protocol: &str) -> WebSocket {
        let mut stream = UnixStream::connect(socket).expect("the agent's socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream
                .read_exact(&mut byte)
                .expect("the handshake's answer");
            head.push(byte[0]);
        }
        let head = text(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
        WebSocket {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// Sends `payload` as one masked binary message.
    pub fn send(&mut self, payload: &[u8]) {
        self.send_frame(0x2, payload);
    }

    /// Sends `payload` as one masked text message (the base64 protocols).
    pub fn send_text(&mut self, payload: &str) {
        self.send_frame(0x1, payload.as_bytes());
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    /// The next message other than a ping.
    pub fn next(&mut self) -> Next {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buffer) {
                self.buffer.drain(..used);
                if opcode == 0x9 || opcode == 0xa {
                    continue;
                }
                return Next::Message(opcode, payload);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Closed,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Next::TimedOut
                }
                Err(_) => return Next::Closed,
            }
        }
    }
}

/// One unmasked server frame at the start of `buffer`: opcode, payload, bytes used.
fn parse_frame(buffer: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buffer.len() < 2 {
        return None;
    }
    let opcode = buffer[0] & 0x0f;
    let (len, start) = match buffer[1] & 0x7f {
        126 if buffer.len() >= 4 => (u16::from_be_bytes([buffer[2], buffer[3]]) as usize, 4),
        127 if buffer.len() >= 10 => (
            u64::from_be_bytes(buffer[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (buffer.len() >= start + len)
        .then(|| (opcode, buffer[start..start + len].to_vec(), start + len))
}
