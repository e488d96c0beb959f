//! The entry point shared by the `spdy_frames` fuzz target and its stable test: arbitrary bytes
//! fed to a [`FrameDecoder`] in pieces must give frames or a typed error (never a panic, a hang
//! or unbounded buffering), and every frame decoded must come back unchanged through a fresh
//! encoder and decoder.

use bytes::BytesMut;

use super::frame::{Frame, FrameDecoder, FrameEncoder, MAX_CONTROL_FRAME_LENGTH};

/// Decodes `input` (its first byte picks the size of the pieces it is fed in, so frames split
/// across reads are exercised) and checks the invariants above.
pub fn decode_frames(input: &[u8]) {
    let Some((&piece_selector, bytes)) = input.split_first() else {
        return;
    };
    let piece_length = usize::from(piece_selector % 32) + 1;
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    'feeding: for piece in bytes.chunks(piece_length) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => break 'feeding,
            }
        }
        assert!(
            buf.len() <= MAX_CONTROL_FRAME_LENGTH + 8 + piece_length,
            "the decoder holds more than one control frame"
        );
    }
    assert_round_trip(&frames);
}

fn assert_round_trip(frames: &[Frame]) {
    if frames.is_empty() {
        return;
    }
    let mut encoder = FrameEncoder::new();
    let mut wire = BytesMut::new();
    for frame in frames {
        encoder
            .encode(frame, &mut wire)
            .unwrap_or_else(|e| panic!("decoded {} does not re-encode: {e}", frame.kind()));
    }
    let mut decoder = FrameDecoder::new();
    let mut decoded = Vec::new();
    while let Some(frame) = decoder
        .decode(&mut wire)
        .unwrap_or_else(|e| panic!("re-encoded frames do not decode: {e}"))
    {
        decoded.push(frame);
    }
    assert!(wire.is_empty(), "re-encoded frames left bytes over");
    assert_eq!(
        frames,
        decoded.as_slice(),
        "frames changed through a round trip"
    );
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::spdy::frame::{GoAwayStatus, RstStatus, Setting};
    use crate::spdy::headers::Headers;

    /// xorshift64*: reproducible noise without a dependency.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }

        fn bytes(&mut self, length: usize) -> Vec<u8> {
            (0..length).map(|_| self.next() as u8).collect()
        }
    }

    /// A valid session's worth of frames, as the fuzz corpus would start from.
    fn seed() -> Vec<u8> {
        let headers: Headers = [("streamtype", "data"), ("port", "8080"), ("requestid", "1")]
            .into_iter()
            .collect();
        let frames = [
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 2,
                fin: false,
                unidirectional: false,
                headers: headers.clone(),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: Headers::new(),
            },
            Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
            },
            Frame::Headers {
                stream_id: 1,
                fin: true,
                headers,
            },
            Frame::Settings {
                clear_persisted: true,
                settings: vec![Setting {
                    flags: 1,
                    id: 7,
                    value: 65536,
                }],
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 32768,
            },
            Frame::Ping { id: 2 },
            Frame::RstStream {
                stream_id: 1,
                status: RstStatus::CANCEL,
            },
            Frame::GoAway {
                last_good_stream_id: 1,
                status: GoAwayStatus::OK,
            },
        ];
        let mut encoder = FrameEncoder::new();
        let mut wire = BytesMut::new();
        for frame in &frames {
            encoder.encode(frame, &mut wire).unwrap();
        }
        let mut input = vec![7];
        input.extend_from_slice(&wire);
        input
    }

    fn mutate(noise: &mut Noise, input: &mut Vec<u8>) {
        for _ in 0..=noise.below(4) {
            match noise.below(5) {
                0 if !input.is_empty() => {
                    let at = noise.below(input.len());
                    input[at] ^= 1 << noise.below(8);
                }
                1 if !input.is_empty() => {
                    let at = noise.below(input.len());
                    input[at] = noise.next() as u8;
                }
                2 => input.truncate(noise.below(input.len() + 1)),
                3 => {
                    let at = noise.below(input.len() + 1);
                    let length = noise.below(16);
                    let inserted = noise.bytes(length);
                    input.splice(at..at, inserted);
                }
                _ => {
                    // A plausible control header with an arbitrary type, flags and length.
                    let at = noise.below(input.len() + 1);
                    let mut header = vec![0x80, 0x03, 0x00, noise.below(12) as u8];
                    let shift = noise.below(32);
                    header.extend_from_slice(&(noise.next() as u32 >> shift).to_be_bytes());
                    input.splice(at..at, header);
                }
            }
        }
    }

    #[test]
    fn decoding_survives_random_and_mutated_input() {
        let mut noise = Noise(0x5eed_5eed_5eed_5eed);
        let seed = seed();
        decode_frames(&seed);
        for _ in 0..1500 {
            let length = noise.below(600);
            decode_frames(&noise.bytes(length));
        }
        for _ in 0..2000 {
            let mut input = seed.clone();
            mutate(&mut noise, &mut input);
            decode_frames(&input);
        }
    }
}
