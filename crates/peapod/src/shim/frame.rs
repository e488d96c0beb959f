//! Exec stream framing shared by CLI ↔ agent ↔ shim: one byte channel, four bytes big-endian
//! payload length, then the payload.

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// JSON `{"exitCode": N}` or `{"error": "..."}`; the last frame of a stream.
pub const STATUS: u8 = 3;
/// JSON `{"width": W, "height": H}`.
pub const RESIZE: u8 = 4;
/// An empty STDIN_EOF frame closes the process's stdin.
pub const STDIN_EOF: u8 = 5;

/// Bytes before the payload: channel and length.
pub const HEADER: usize = 5;

/// One frame on the wire.
pub fn encode(channel: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(channel);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits complete frames off the front of `buf`, leaving a trailing partial frame in it.
pub fn decode(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let mut len = [0u8; 4];
        len.copy_from_slice(&buf[at + 1..at + HEADER]);
        let len = u32::from_be_bytes(len) as usize;
        if buf.len() - at - HEADER < len {
            break;
        }
        frames.push((buf[at], buf[at + HEADER..at + HEADER + len].to_vec()));
        at += HEADER + len;
    }
    buf.drain(..at);
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_channel_then_big_endian_length() {
        assert_eq!(encode(STDERR, b"ab"), vec![2, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(encode(STDIN_EOF, b""), vec![5, 0, 0, 0, 0]);
    }

    #[test]
    fn frames_round_trip_across_partial_reads() {
        let mut wire = encode(STDOUT, b"hello");
        wire.extend(encode(STATUS, b"{}"));
        let mut buf = wire[..7].to_vec();
        assert!(decode(&mut buf).is_empty());
        assert_eq!(buf.len(), 7);
        buf.extend_from_slice(&wire[7..]);
        let frames = decode(&mut buf);
        assert_eq!(
            frames,
            vec![(STDOUT, b"hello".to_vec()), (STATUS, b"{}".to_vec())]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_second_frame_stays_in_buffer() {
        let mut buf = encode(STDOUT, b"x");
        buf.extend_from_slice(&encode(STDERR, b"yz")[..6]);
        assert_eq!(decode(&mut buf), vec![(STDOUT, b"x".to_vec())]);
        assert_eq!(buf, vec![2, 0, 0, 0, 2, b'y']);
    }
}
