//! Frames from the client of an exec or attach session, read one chunk at a time so that the
//! session can stop reading (and leave the rest in the socket) when its process is not taking
//! input.

use std::io::{ErrorKind, Read};

use super::frame;

/// A larger frame is a broken client, not input to buffer: clients send stdin in chunks of
/// at most a few tens of KiB.
pub const MAX_PAYLOAD: usize = 1 << 20;

const CHUNK: usize = 16 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Complete frames (possibly none) read so far.
    Frames(Vec<(u8, Vec<u8>)>),
    /// Nothing more to read now.
    Drained,
    /// The client closed its writing half (or the connection failed).
    Closed,
    /// The client announced a frame larger than [`MAX_PAYLOAD`].
    Invalid,
}

/// One read from `stream` into `inbuf`, then the complete frames in `inbuf`.
pub fn read(stream: &mut impl Read, inbuf: &mut Vec<u8>) -> Input {
    let mut chunk = [0u8; CHUNK];
    match stream.read(&mut chunk) {
        Ok(0) => Input::Closed,
        Ok(n) => {
            inbuf.extend_from_slice(&chunk[..n]);
            decoded(inbuf)
        }
        Err(err) if err.kind() == ErrorKind::WouldBlock => Input::Drained,
        Err(err) if err.kind() == ErrorKind::Interrupted => Input::Frames(Vec::new()),
        Err(_) => Input::Closed,
    }
}

/// The complete frames in `inbuf` (e.g. those that came with the request line).
pub fn decoded(inbuf: &mut Vec<u8>) -> Input {
    let frames = frame::decode(inbuf);
    if announced_payload(inbuf).is_some_and(|len| len > MAX_PAYLOAD) {
        return Input::Invalid;
    }
    Input::Frames(frames)
}

/// The payload length the partial frame at the start of `buf` announces, once its header is in.
fn announced_payload(buf: &[u8]) -> Option<usize> {
    let header = buf.get(1..frame::HEADER)?;
    Some(u32::from_be_bytes(header.try_into().ok()?) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_arrive_across_reads_and_the_end_is_seen() {
        let mut wire = frame::encode(frame::STDIN, b"hello");
        wire.extend(frame::encode(frame::STDIN_EOF, b""));
        let mut stream = std::io::Cursor::new(wire);
        let mut inbuf = Vec::new();
        assert_eq!(
            read(&mut stream, &mut inbuf),
            Input::Frames(vec![
                (frame::STDIN, b"hello".to_vec()),
                (frame::STDIN_EOF, Vec::new())
            ])
        );
        assert_eq!(read(&mut stream, &mut inbuf), Input::Closed);
    }

    #[test]
    fn early_bytes_keep_their_partial_frame() {
        let wire = frame::encode(frame::STDIN, b"abc");
        let mut inbuf = wire[..6].to_vec();
        assert_eq!(decoded(&mut inbuf), Input::Frames(Vec::new()));
        inbuf.extend_from_slice(&wire[6..]);
        assert_eq!(
            decoded(&mut inbuf),
            Input::Frames(vec![(frame::STDIN, b"abc".to_vec())])
        );
    }

    #[test]
    fn a_huge_announced_frame_is_refused_before_it_is_buffered() {
        let mut inbuf = vec![frame::STDIN];
        inbuf.extend_from_slice(&((MAX_PAYLOAD as u32) + 1).to_be_bytes());
        assert_eq!(decoded(&mut inbuf), Input::Invalid);
        let mut inbuf = vec![frame::STDIN];
        inbuf.extend_from_slice(&(MAX_PAYLOAD as u32).to_be_bytes());
        assert_eq!(decoded(&mut inbuf), Input::Frames(Vec::new()));
    }
}
