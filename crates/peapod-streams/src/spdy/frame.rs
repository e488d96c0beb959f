//! SPDY/3.1 frames: the eight control frames and DATA, an [`FrameEncoder`] and an incremental
//! [`FrameDecoder`] over a byte buffer. Control frames are decoded whole (so they are bounded
//! by [`MAX_CONTROL_FRAME_LENGTH`]); DATA payloads are handed out as their bytes arrive, so a
//! frame of any legal size (up to the 24-bit [`MAX_DATA_LENGTH`]) costs no buffering. Control
//! frames of unknown types are skipped, as the spec asks; any other malformed frame is a typed
//! error that ends the session.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::headers::{HeaderCompressor, HeaderDecompressor, Headers};
use super::SpdyError;

pub const VERSION: u16 = 3;
/// The largest DATA payload the 24-bit length field can carry (Go's `spdy.MaxDataLength`).
pub const MAX_DATA_LENGTH: usize = 0xff_ffff;
/// The largest control frame accepted. Control frames carry at most a header block; the bound
/// is Go's `http.DefaultMaxHeaderBytes`, far above what kubectl sends.
pub const MAX_CONTROL_FRAME_LENGTH: usize = 1 << 20;
pub const MAX_STREAM_ID: u32 = 0x7fff_ffff;
const HEADER_LENGTH: usize = 8;

pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
pub const FLAG_SETTINGS_CLEAR: u8 = 0x01;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// A RST_STREAM status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RstStatus(pub u32);

impl RstStatus {
    pub const PROTOCOL_ERROR: RstStatus = RstStatus(1);
    pub const INVALID_STREAM: RstStatus = RstStatus(2);
    pub const REFUSED_STREAM: RstStatus = RstStatus(3);
    pub const UNSUPPORTED_VERSION: RstStatus = RstStatus(4);
    pub const CANCEL: RstStatus = RstStatus(5);
    pub const INTERNAL_ERROR: RstStatus = RstStatus(6);
    pub const FLOW_CONTROL_ERROR: RstStatus = RstStatus(7);
    pub const STREAM_IN_USE: RstStatus = RstStatus(8);
    pub const STREAM_ALREADY_CLOSED: RstStatus = RstStatus(9);
    pub const FRAME_TOO_LARGE: RstStatus = RstStatus(11);
}

impl std::fmt::Display for RstStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            1 => "PROTOCOL_ERROR",
            2 => "INVALID_STREAM",
            3 => "REFUSED_STREAM",
            4 => "UNSUPPORTED_VERSION",
            5 => "CANCEL",
            6 => "INTERNAL_ERROR",
            7 => "FLOW_CONTROL_ERROR",
            8 => "STREAM_IN_USE",
            9 => "STREAM_ALREADY_CLOSED",
            10 => "INVALID_CREDENTIALS",
            11 => "FRAME_TOO_LARGE",
            other => return write!(f, "status {other}"),
        };
        f.write_str(name)
    }
}

/// A GOAWAY status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GoAwayStatus(pub u32);

impl GoAwayStatus {
    pub const OK: GoAwayStatus = GoAwayStatus(0);
    pub const PROTOCOL_ERROR: GoAwayStatus = GoAwayStatus(1);
    pub const INTERNAL_ERROR: GoAwayStatus = GoAwayStatus(2);
}

/// One SETTINGS entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    /// 24 bits.
    pub id: u32,
    pub value: u32,
}

/// A decoded frame. SYN_STREAM's credential slot (SPDY/3 only) is read and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A DATA frame, or a piece of one: the decoder hands payloads out as they arrive and sets
    /// `fin` only on the last piece.
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    SynStream {
        stream_id: u32,
        associated_to: u32,
        /// 0 (highest) to 7.
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: RstStatus,
    },
    Settings {
        clear_persisted: bool,
        settings: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: GoAwayStatus,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    /// Stream 0 is the session window (SPDY/3.1).
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
}

impl Frame {
    /// The frame type's name, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Data { .. } => "DATA",
            Frame::SynStream { .. } => "SYN_STREAM",
            Frame::SynReply { .. } => "SYN_REPLY",
            Frame::RstStream { .. } => "RST_STREAM",
            Frame::Settings { .. } => "SETTINGS",
            Frame::Ping { .. } => "PING",
            Frame::GoAway { .. } => "GOAWAY",
            Frame::Headers { .. } => "HEADERS",
            Frame::WindowUpdate { .. } => "WINDOW_UPDATE",
        }
    }
}

fn control_kind(frame_type: u16) -> Option<&'static str> {
    Some(match frame_type {
        TYPE_SYN_STREAM => "SYN_STREAM",
        TYPE_SYN_REPLY => "SYN_REPLY",
        TYPE_RST_STREAM => "RST_STREAM",
        TYPE_SETTINGS => "SETTINGS",
        TYPE_PING => "PING",
        TYPE_GOAWAY => "GOAWAY",
        TYPE_HEADERS => "HEADERS",
        TYPE_WINDOW_UPDATE => "WINDOW_UPDATE",
        _ => return None,
    })
}

/// Encodes frames; owns the sending side's header compression context.
#[derive(Debug, Default)]
pub struct FrameEncoder {
    headers: HeaderCompressor,
    block: Vec<u8>,
}

impl FrameEncoder {
    pub fn new() -> FrameEncoder {
        FrameEncoder::default()
    }

    /// Appends `frame` to `out`. Frames with header blocks go through the compression context,
    /// so they must be written in the order they are encoded.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), SpdyError> {
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => encode_data(*stream_id, *fin, data, out),
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                let flags = flag(*fin, FLAG_FIN) | flag(*unidirectional, FLAG_UNIDIRECTIONAL);
                let mut fixed = [0u8; 10];
                fixed[..4].copy_from_slice(&stream_id_field(*stream_id, "SYN_STREAM")?);
                fixed[4..8].copy_from_slice(&(associated_to & MAX_STREAM_ID).to_be_bytes());
                fixed[8] = (priority & 0x07) << 5;
                self.encode_with_headers(TYPE_SYN_STREAM, flags, &fixed, headers, out)
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                let fixed = stream_id_field(*stream_id, "SYN_REPLY")?;
                self.encode_with_headers(TYPE_SYN_REPLY, flag(*fin, FLAG_FIN), &fixed, headers, out)
            }
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let fixed = stream_id_field(*stream_id, "HEADERS")?;
                self.encode_with_headers(TYPE_HEADERS, flag(*fin, FLAG_FIN), &fixed, headers, out)
            }
            other => {
                encode_fixed_control(other, out);
                Ok(())
            }
        }
    }

    fn encode_with_headers(
        &mut self,
        frame_type: u16,
        flags: u8,
        fixed: &[u8],
        headers: &Headers,
        out: &mut BytesMut,
    ) -> Result<(), SpdyError> {
        self.block.clear();
        self.headers.compress(headers, &mut self.block)?;
        let length = fixed.len() + self.block.len();
        if length > MAX_DATA_LENGTH {
            return Err(SpdyError::FrameTooLarge {
                kind: control_kind(frame_type).unwrap_or("control"),
                length,
                max: MAX_DATA_LENGTH,
            });
        }
        put_control_header(out, frame_type, flags, length);
        out.put_slice(fixed);
        out.put_slice(&self.block);
        Ok(())
    }
}

fn flag(set: bool, bit: u8) -> u8 {
    if set {
        bit
    } else {
        0
    }
}

fn stream_id_field(stream_id: u32, kind: &'static str) -> Result<[u8; 4], SpdyError> {
    if stream_id == 0 || stream_id > MAX_STREAM_ID {
        return Err(SpdyError::InvalidFrame {
            kind,
            reason: "stream id out of range",
        });
    }
    Ok(stream_id.to_be_bytes())
}

fn encode_data(
    stream_id: u32,
    fin: bool,
    data: &[u8],
    out: &mut BytesMut,
) -> Result<(), SpdyError> {
    stream_id_field(stream_id, "DATA")?;
    if data.len() > MAX_DATA_LENGTH {
        return Err(SpdyError::FrameTooLarge {
            kind: "DATA",
            length: data.len(),
            max: MAX_DATA_LENGTH,
        });
    }
    out.reserve(HEADER_LENGTH + data.len());
    out.put_u32(stream_id);
    out.put_u32(u32::from(flag(fin, FLAG_FIN)) << 24 | data.len() as u32);
    out.put_slice(data);
    Ok(())
}

fn put_control_header(out: &mut BytesMut, frame_type: u16, flags: u8, length: usize) {
    out.reserve(HEADER_LENGTH + length);
    out.put_u16(0x8000 | VERSION);
    out.put_u16(frame_type);
    out.put_u32(u32::from(flags) << 24 | length as u32);
}

/// The control frames without header blocks.
fn encode_fixed_control(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::RstStream { stream_id, status } => {
            put_control_header(out, TYPE_RST_STREAM, 0, 8);
            out.put_u32(stream_id & MAX_STREAM_ID);
            out.put_u32(status.0);
        }
        Frame::Settings {
            clear_persisted,
            settings,
        } => {
            let flags = flag(*clear_persisted, FLAG_SETTINGS_CLEAR);
            put_control_header(out, TYPE_SETTINGS, flags, 4 + 8 * settings.len());
            out.put_u32(settings.len() as u32);
            for setting in settings {
                out.put_u32(u32::from(setting.flags) << 24 | (setting.id & 0xff_ffff));
                out.put_u32(setting.value);
            }
        }
        Frame::Ping { id } => {
            put_control_header(out, TYPE_PING, 0, 4);
            out.put_u32(*id);
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            put_control_header(out, TYPE_GOAWAY, 0, 8);
            out.put_u32(last_good_stream_id & MAX_STREAM_ID);
            out.put_u32(status.0);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            put_control_header(out, TYPE_WINDOW_UPDATE, 0, 8);
            out.put_u32(stream_id & MAX_STREAM_ID);
            out.put_u32(delta & 0x7fff_ffff);
        }
        Frame::Data { .. }
        | Frame::SynStream { .. }
        | Frame::SynReply { .. }
        | Frame::Headers { .. } => {
            unreachable!(
                "frames with payloads or header blocks are encoded by FrameEncoder::encode"
            )
        }
    }
}

/// Where the decoder is within the byte stream.
#[derive(Debug, Clone, Copy)]
enum Position {
    /// At a frame boundary.
    Boundary,
    /// Inside a DATA payload.
    Data {
        stream_id: u32,
        fin: bool,
        remaining: usize,
    },
    /// Inside an unknown control frame, skipping it.
    Skipping { remaining: usize },
}

/// Decodes frames from a growing buffer; owns the receiving side's header decompression
/// context. After an error the byte stream cannot be resynchronized: drop the decoder.
#[derive(Debug)]
pub struct FrameDecoder {
    headers: HeaderDecompressor,
    position: Position,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

/// What one decoding step came to.
enum Step {
    Frame(Frame),
    NeedMore,
    Continue,
}

/// A control frame's fixed 8 bytes.
struct ControlHeader {
    frame_type: u16,
    flags: u8,
    length: usize,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            headers: HeaderDecompressor::new(),
            position: Position::Boundary,
        }
    }

    /// The next frame (or DATA piece) from the front of `buf`, consuming its bytes; `None`
    /// when `buf` holds no complete one yet (the partial bytes stay in `buf`).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        loop {
            let step = match self.position {
                Position::Boundary => self.at_boundary(buf)?,
                Position::Data {
                    stream_id,
                    fin,
                    remaining,
                } => self.data_piece(buf, stream_id, fin, remaining),
                Position::Skipping { remaining } => self.skip(buf, remaining),
            };
            match step {
                Step::Frame(frame) => return Ok(Some(frame)),
                Step::NeedMore => return Ok(None),
                Step::Continue => {}
            }
        }
    }

    fn at_boundary(&mut self, buf: &mut BytesMut) -> Result<Step, SpdyError> {
        if buf.len() < HEADER_LENGTH {
            return Ok(Step::NeedMore);
        }
        if buf[0] & 0x80 == 0 {
            self.start_data(buf)?;
            return Ok(self.empty_data().map_or(Step::Continue, Step::Frame));
        }
        let header = control_header(buf)?;
        let Some(kind) = control_kind(header.frame_type) else {
            buf.advance(HEADER_LENGTH);
            self.position = Position::Skipping {
                remaining: header.length,
            };
            return Ok(Step::Continue);
        };
        if header.length > MAX_CONTROL_FRAME_LENGTH {
            return Err(SpdyError::FrameTooLarge {
                kind,
                length: header.length,
                max: MAX_CONTROL_FRAME_LENGTH,
            });
        }
        if buf.len() < HEADER_LENGTH + header.length {
            buf.reserve(HEADER_LENGTH + header.length - buf.len());
            return Ok(Step::NeedMore);
        }
        buf.advance(HEADER_LENGTH);
        let payload = buf.split_to(header.length);
        self.control_frame(kind, &header, &payload).map(Step::Frame)
    }

    /// As much of the current DATA payload as `buf` holds.
    fn data_piece(
        &mut self,
        buf: &mut BytesMut,
        stream_id: u32,
        fin: bool,
        remaining: usize,
    ) -> Step {
        if buf.is_empty() {
            return Step::NeedMore;
        }
        let take = remaining.min(buf.len());
        let data = buf.split_to(take).freeze();
        let remaining = remaining - take;
        self.position = if remaining == 0 {
            Position::Boundary
        } else {
            Position::Data {
                stream_id,
                fin,
                remaining,
            }
        };
        Step::Frame(Frame::Data {
            stream_id,
            fin: fin && remaining == 0,
            data,
        })
    }

    fn skip(&mut self, buf: &mut BytesMut, remaining: usize) -> Step {
        let take = remaining.min(buf.len());
        buf.advance(take);
        if take < remaining {
            self.position = Position::Skipping {
                remaining: remaining - take,
            };
            return Step::NeedMore;
        }
        self.position = Position::Boundary;
        Step::Continue
    }

    fn start_data(&mut self, buf: &mut BytesMut) -> Result<(), SpdyError> {
        let stream_id = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) & MAX_STREAM_ID;
        if stream_id == 0 {
            return Err(SpdyError::InvalidFrame {
                kind: "DATA",
                reason: "stream id 0",
            });
        }
        let fin = buf[4] & FLAG_FIN != 0;
        let remaining = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        buf.advance(HEADER_LENGTH);
        self.position = Position::Data {
            stream_id,
            fin,
            remaining,
        };
        Ok(())
    }

    /// A DATA frame without payload is complete as soon as its header is.
    fn empty_data(&mut self) -> Option<Frame> {
        match self.position {
            Position::Data {
                stream_id,
                fin,
                remaining: 0,
            } => {
                self.position = Position::Boundary;
                Some(Frame::Data {
                    stream_id,
                    fin,
                    data: Bytes::new(),
                })
            }
            _ => None,
        }
    }

    fn control_frame(
        &mut self,
        kind: &'static str,
        header: &ControlHeader,
        payload: &[u8],
    ) -> Result<Frame, SpdyError> {
        let fin = header.flags & FLAG_FIN != 0;
        match header.frame_type {
            TYPE_SYN_STREAM => {
                let fixed = fixed_part::<10>(kind, payload, false)?;
                let headers = self.headers.decompress(&payload[10..])?;
                Ok(Frame::SynStream {
                    stream_id: nonzero_stream_id(kind, &fixed[..4])?,
                    associated_to: read_u31(&fixed[4..8]),
                    priority: fixed[8] >> 5,
                    fin,
                    unidirectional: header.flags & FLAG_UNIDIRECTIONAL != 0,
                    headers,
                })
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                let fixed = fixed_part::<4>(kind, payload, false)?;
                let headers = self.headers.decompress(&payload[4..])?;
                let stream_id = nonzero_stream_id(kind, &fixed)?;
                Ok(match header.frame_type {
                    TYPE_SYN_REPLY => Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    },
                    _ => Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    },
                })
            }
            _ => decode_fixed_control(kind, header, payload),
        }
    }
}

fn control_header(buf: &[u8]) -> Result<ControlHeader, SpdyError> {
    let version = u16::from_be_bytes([buf[0], buf[1]]) & 0x7fff;
    if version != VERSION {
        return Err(SpdyError::UnsupportedVersion(version));
    }
    Ok(ControlHeader {
        frame_type: u16::from_be_bytes([buf[2], buf[3]]),
        flags: buf[4],
        length: u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize,
    })
}

/// The first `N` bytes of a control payload; `exact` when the frame has nothing more.
fn fixed_part<const N: usize>(
    kind: &'static str,
    payload: &[u8],
    exact: bool,
) -> Result<[u8; N], SpdyError> {
    if payload.len() < N || (exact && payload.len() != N) {
        return Err(SpdyError::InvalidFrame {
            kind,
            reason: "wrong length",
        });
    }
    Ok(payload[..N].try_into().expect("length checked"))
}

fn read_u31(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & MAX_STREAM_ID
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn nonzero_stream_id(kind: &'static str, bytes: &[u8]) -> Result<u32, SpdyError> {
    match read_u31(bytes) {
        0 => Err(SpdyError::InvalidFrame {
            kind,
            reason: "stream id 0",
        }),
        id => Ok(id),
    }
}

fn decode_fixed_control(
    kind: &'static str,
    header: &ControlHeader,
    payload: &[u8],
) -> Result<Frame, SpdyError> {
    match header.frame_type {
        TYPE_RST_STREAM => {
            let fixed = fixed_part::<8>(kind, payload, true)?;
            let status = read_u32(&fixed[4..]);
            if status == 0 {
                return Err(SpdyError::InvalidFrame {
                    kind,
                    reason: "status 0",
                });
            }
            Ok(Frame::RstStream {
                stream_id: nonzero_stream_id(kind, &fixed[..4])?,
                status: RstStatus(status),
            })
        }
        TYPE_SETTINGS => decode_settings(kind, header, payload),
        TYPE_PING => Ok(Frame::Ping {
            id: read_u32(&fixed_part::<4>(kind, payload, true)?),
        }),
        TYPE_GOAWAY => {
            let fixed = fixed_part::<8>(kind, payload, true)?;
            Ok(Frame::GoAway {
                last_good_stream_id: read_u31(&fixed[..4]),
                status: GoAwayStatus(read_u32(&fixed[4..])),
            })
        }
        TYPE_WINDOW_UPDATE => {
            let fixed = fixed_part::<8>(kind, payload, true)?;
            Ok(Frame::WindowUpdate {
                stream_id: read_u31(&fixed[..4]),
                delta: read_u31(&fixed[4..]),
            })
        }
        _ => unreachable!("known control types are listed in control_kind"),
    }
}

fn decode_settings(
    kind: &'static str,
    header: &ControlHeader,
    payload: &[u8],
) -> Result<Frame, SpdyError> {
    let count = read_u32(&fixed_part::<4>(kind, payload, false)?) as usize;
    if (payload.len() - 4) / 8 != count || (payload.len() - 4) % 8 != 0 {
        return Err(SpdyError::InvalidFrame {
            kind,
            reason: "entry count does not match the length",
        });
    }
    let settings = payload[4..]
        .chunks_exact(8)
        .map(|entry| Setting {
            flags: entry[0],
            id: u32::from_be_bytes([0, entry[1], entry[2], entry[3]]),
            value: read_u32(&entry[4..]),
        })
        .collect();
    Ok(Frame::Settings {
        clear_persisted: header.flags & FLAG_SETTINGS_CLEAR != 0,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(frames: &[Frame]) -> BytesMut {
        let mut encoder = FrameEncoder::new();
        let mut out = BytesMut::new();
        for frame in frames {
            encoder.encode(frame, &mut out).unwrap();
        }
        out
    }

    fn decode_all(bytes: &[u8]) -> Vec<Frame> {
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            frames.push(frame);
        }
        assert!(buf.is_empty(), "{} bytes left", buf.len());
        frames
    }

    fn decode_error(bytes: &[u8]) -> SpdyError {
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::from(bytes);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error decoding {bytes:02x?}"),
                Err(error) => return error,
            }
        }
    }

    /// Byte layouts from the SPDY/3 spec (section 2.6) and Chromium's spdy_framer_test.cc.
    #[test]
    fn fixed_control_frames_have_the_spec_layout() {
        let cases: &[(Frame, &[u8])] = &[
            (
                Frame::Ping { id: 0x1234_5678 },
                &[
                    0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0x12, 0x34, 0x56, 0x78,
                ],
            ),
            (
                Frame::RstStream {
                    stream_id: 0x7fff_ffff,
                    status: RstStatus::INTERNAL_ERROR,
                },
                &[
                    0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x7f, 0xff, 0xff, 0xff, 0x00,
                    0x00, 0x00, 0x06,
                ],
            ),
            (
                Frame::Settings {
                    clear_persisted: false,
                    settings: vec![Setting {
                        flags: 0x01,
                        id: 7,
                        value: 0x0a0b_0c0d,
                    }],
                },
                &[
                    0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x01,
                    0x00, 0x00, 0x07, 0x0a, 0x0b, 0x0c, 0x0d,
                ],
            ),
            (
                Frame::GoAway {
                    last_good_stream_id: 0,
                    status: GoAwayStatus::OK,
                },
                &[
                    0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
                    0x00, 0x00, 0x00,
                ],
            ),
            (
                Frame::WindowUpdate {
                    stream_id: 1,
                    delta: 0x0001_0000,
                },
                &[
                    0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00,
                    0x01, 0x00, 0x00,
                ],
            ),
            (
                Frame::Data {
                    stream_id: 1,
                    fin: true,
                    data: Bytes::from_static(b"hello"),
                },
                &[
                    0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o',
                ],
            ),
        ];
        for (frame, bytes) in cases {
            assert_eq!(
                &encode(std::slice::from_ref(frame))[..],
                *bytes,
                "{frame:?}"
            );
            assert_eq!(decode_all(bytes), vec![frame.clone()]);
        }
    }

    /// Chromium's `CreateSynStreamCompressed` fixture: another implementation's zlib stream
    /// with the SPDY/3 dictionary (stream 1, priority 4, headers bar: foo, foo: bar).
    #[test]
    fn decodes_a_syn_stream_compressed_by_chromium() {
        const CHROMIUM_SYN_STREAM: &[u8] = &[
            0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x37, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
            0x00, 0x00, 0x80, 0x00, 0x38, 0xEA, 0xE3, 0xC6, 0xA7, 0xC2, 0x02, 0xE5, 0x0E, 0x50,
            0xC2, 0x4B, 0x4A, 0x04, 0xE5, 0x0B, 0x66, 0x80, 0x00, 0x4A, 0xCB, 0xCF, 0x07, 0x08,
            0x20, 0x10, 0x95, 0x96, 0x9F, 0x0F, 0xA2, 0x00, 0x02, 0x28, 0x29, 0xB1, 0x08, 0x20,
            0x80, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF,
        ];
        let frames = decode_all(CHROMIUM_SYN_STREAM);
        assert_eq!(
            frames,
            vec![Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 4,
                fin: false,
                unidirectional: false,
                headers: [("bar", "foo"), ("foo", "bar")].into_iter().collect(),
            }]
        );
    }

    /// Three SYN_STREAMs as moby/spdystream's Framer wrote them (Go 1.19, `zlib.BestCompression`,
    /// one zlib stream): what kubectl sends to open exec's error, stdin and stdout streams.
    #[test]
    fn decodes_syn_streams_written_by_spdystream() {
        const SPDYSTREAM_SYN_STREAMS: &[u8] = &[
            0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x62, 0x60, 0x60, 0x60,
            0x04, 0xa7, 0xb3, 0x92, 0xa2, 0xd4, 0xc4, 0x5c, 0x68, 0x51, 0xc2, 0x9a, 0x0a, 0x0a,
            0x68, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, //
            0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0xc2, 0x2e, 0x55, 0x5c, 0x92, 0x92, 0x99, 0x07, 0x00, 0x00,
            0x00, 0xff, 0xff, //
            0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x19, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0xc2, 0x2a, 0xc5, 0x56, 0x5c, 0x92, 0x92, 0x5f, 0x5a, 0x02,
            0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let frames = decode_all(SPDYSTREAM_SYN_STREAMS);
        let expected: Vec<Frame> = [(1, "error"), (3, "stdin"), (5, "stdout")]
            .into_iter()
            .map(|(stream_id, stream_type)| Frame::SynStream {
                stream_id,
                associated_to: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: [("streamtype", stream_type)].into_iter().collect(),
            })
            .collect();
        assert_eq!(frames, expected);
    }

    #[test]
    fn header_frames_round_trip_on_one_compression_context() {
        let headers: Headers = [("streamtype", "error"), ("port", "8080")]
            .into_iter()
            .collect();
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 7,
                fin: true,
                unidirectional: true,
                headers: headers.clone(),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: Headers::new(),
            },
            Frame::Headers {
                stream_id: 3,
                fin: true,
                headers: headers.clone(),
            },
            Frame::SynStream {
                stream_id: 5,
                associated_to: 1,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers,
            },
        ];
        assert_eq!(decode_all(&encode(&frames)), frames);
    }

    #[test]
    fn partial_input_stays_buffered_until_a_frame_is_complete() {
        let headers: Headers = [("streamtype", "data")].into_iter().collect();
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers,
            },
            Frame::Ping { id: 1 },
            Frame::Data {
                stream_id: 1,
                fin: true,
                data: Bytes::new(),
            },
        ];
        let wire = encode(&frames);
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in wire.iter() {
            buf.extend_from_slice(&[*byte]);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
    }

    #[test]
    fn data_payloads_are_handed_out_as_they_arrive() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let wire = encode(&[Frame::Data {
            stream_id: 3,
            fin: true,
            data: Bytes::from(payload.clone()),
        }]);
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut pieces = Vec::new();
        for chunk in wire.chunks(1500) {
            buf.extend_from_slice(chunk);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                pieces.push(frame);
            }
        }
        assert!(pieces.len() > 1);
        let mut joined = Vec::new();
        for (index, piece) in pieces.iter().enumerate() {
            let Frame::Data {
                stream_id: 3,
                fin,
                data,
            } = piece
            else {
                panic!("{piece:?}")
            };
            assert_eq!(*fin, index == pieces.len() - 1);
            joined.extend_from_slice(data);
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn unknown_control_frames_are_skipped() {
        let mut wire = vec![
            0x80, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5,
        ];
        wire.extend_from_slice(&encode(&[Frame::Ping { id: 9 }]));
        assert_eq!(decode_all(&wire), vec![Frame::Ping { id: 9 }]);
    }

    #[test]
    fn other_versions_are_rejected() {
        let spdy2_ping = [0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1];
        assert!(matches!(
            decode_error(&spdy2_ping),
            SpdyError::UnsupportedVersion(2)
        ));
    }

    #[test]
    fn oversized_control_frames_are_rejected_from_their_header() {
        let length = (MAX_CONTROL_FRAME_LENGTH + 1) as u32;
        let mut header = vec![0x80, 0x03, 0x00, 0x01];
        header.extend_from_slice(&length.to_be_bytes());
        assert!(matches!(
            decode_error(&header),
            SpdyError::FrameTooLarge {
                kind: "SYN_STREAM",
                ..
            }
        ));
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        let cases: &[&[u8]] = &[
            // RST_STREAM of length 4
            &[0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1],
            // RST_STREAM with status 0
            &[
                0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 1, 0, 0, 0, 0,
            ],
            // PING of length 8
            &[
                0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 1, 0, 0, 0, 0,
            ],
            // SETTINGS announcing 2 entries, holding 1
            &[
                0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x0c, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1,
            ],
            // DATA on stream 0
            &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff],
            // SYN_STREAM too short for its fixed fields
            &[0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1],
        ];
        for case in cases {
            assert!(
                matches!(decode_error(case), SpdyError::InvalidFrame { .. }),
                "{case:02x?}"
            );
        }
    }

    #[test]
    fn a_corrupt_header_block_is_a_compression_error() {
        let mut wire = encode(&[Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: [("a", "b")].into_iter().collect(),
        }]);
        wire[12] ^= 0xff; // the zlib header's first byte
        assert!(matches!(decode_error(&wire), SpdyError::Compression(_)));
    }
}
