//! The CRI log line format: encoding one record and parsing one record back.
//!
//! A record is `<RFC3339Nano UTC> <stdout|stderr> <tag> <content>\n`, where the tag is
//! `F` (the content ends a line) or `P` (the content is a chunk of a longer line).

use std::fmt;

use jiff::Timestamp;

use crate::LogError;

/// Longest content of one record; longer lines are split into `P` chunks of this size
/// (containerd's default `max_container_log_line_size`).
pub const MAX_CONTENT_LEN: usize = 16 * 1024;

/// Which pipe of the container a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The name used in the CRI record.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed record. `content` excludes the record's terminating newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp: Timestamp,
    pub stream: Stream,
    pub partial: bool,
    pub content: Vec<u8>,
}

/// Why a record is not a CRI log line (same checks, same order as kubelet's `parseCRILog`).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("timestamp is not found in log line")]
    MissingTimestamp,
    #[error("unexpected timestamp {value:?} in log line: {source}")]
    BadTimestamp { value: String, source: jiff::Error },
    #[error("stream type is not found in log line")]
    MissingStream,
    #[error("unexpected stream type {value:?} in log line")]
    BadStream { value: String },
    #[error("log tag is not found in log line")]
    MissingTag,
}

/// Parses one record, with or without its trailing `\n`.
///
/// Like kubelet, only the first `:`-separated tag is interpreted and anything other than
/// `P` counts as a full line, which keeps the parser forward compatible.
pub fn parse_line(line: &[u8]) -> Result<LogLine, LogError> {
    parse_record(line).map_err(LogError::from)
}

pub(crate) fn parse_record(line: &[u8]) -> Result<LogLine, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let (ts, rest) = split_field(line).ok_or(ParseError::MissingTimestamp)?;
    let timestamp = parse_timestamp(ts)?;
    let (stream, rest) = split_field(rest).ok_or(ParseError::MissingStream)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        other => {
            return Err(ParseError::BadStream {
                value: String::from_utf8_lossy(other).into_owned(),
            })
        }
    };
    let (tags, content) = split_field(rest).ok_or(ParseError::MissingTag)?;
    let partial = tags.split(|&b| b == b':').next() == Some(b"P");
    Ok(LogLine {
        timestamp,
        stream,
        partial,
        content: content.to_vec(),
    })
}

fn split_field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let idx = memchr::memchr(b' ', bytes)?;
    Some((&bytes[..idx], &bytes[idx + 1..]))
}

fn parse_timestamp(field: &[u8]) -> Result<Timestamp, ParseError> {
    let text = String::from_utf8_lossy(field);
    text.parse().map_err(|source| ParseError::BadTimestamp {
        value: text.into_owned(),
        source,
    })
}

/// Formats a timestamp as kubelet's RFC3339NanoFixed in UTC: always nine fraction digits,
/// so records sort and align like the ones containerd writes.
pub fn format_timestamp(ts: Timestamp) -> String {
    format!("{ts:.9}")
}

/// Appends one encoded record to `out`.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    ts: Timestamp,
    stream: Stream,
    partial: bool,
    content: &[u8],
) {
    let tag = if partial { "P" } else { "F" };
    out.extend_from_slice(format!("{} {stream} {tag} ", format_timestamp(ts)).as_bytes());
    out.extend_from_slice(content);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_records() {
        let full = parse_line(b"2016-10-06T00:17:09.669794202Z stdout F log content 1\n").unwrap();
        assert_eq!(full.stream, Stream::Stdout);
        assert!(!full.partial);
        assert_eq!(full.content, b"log content 1");
        assert_eq!(
            full.timestamp,
            "2016-10-06T00:17:09.669794202Z"
                .parse::<Timestamp>()
                .unwrap()
        );

        let partial = parse_line(b"2016-10-06T00:17:09.669794203Z stderr P chunk").unwrap();
        assert_eq!(partial.stream, Stream::Stderr);
        assert!(partial.partial);
        assert_eq!(partial.content, b"chunk");
    }

    #[test]
    fn accepts_lenient_timestamps_and_extra_tags() {
        let line = parse_line(b"2016-10-06T02:17:09.6+02:00 stdout P:x a b ").unwrap();
        assert!(line.partial);
        assert_eq!(line.content, b"a b ");
        assert_eq!(
            line.timestamp,
            "2016-10-06T00:17:09.6Z".parse::<Timestamp>().unwrap()
        );
        let odd_tag = parse_line(b"2016-10-06T00:17:09Z stdout X hi").unwrap();
        assert!(!odd_tag.partial);
    }

    #[test]
    fn rejects_malformed_records() {
        assert!(matches!(
            parse_record(b"garbage"),
            Err(ParseError::MissingTimestamp)
        ));
        assert!(matches!(
            parse_record(b"yesterday stdout F hi"),
            Err(ParseError::BadTimestamp { value, .. }) if value == "yesterday"
        ));
        assert!(matches!(
            parse_record(b"2016-10-06T00:17:09Z stdout"),
            Err(ParseError::MissingStream)
        ));
        assert!(matches!(
            parse_record(b"2016-10-06T00:17:09Z stdin F hi"),
            Err(ParseError::BadStream { value }) if value == "stdin"
        ));
        assert!(matches!(
            parse_record(b"2016-10-06T00:17:09Z stdout F\n"),
            Err(ParseError::MissingTag)
        ));
    }

    #[test]
    fn encode_round_trips_with_fixed_nanoseconds() {
        let ts: Timestamp = "2024-01-01T12:00:00.5Z".parse().unwrap();
        let mut out = Vec::new();
        encode(&mut out, ts, Stream::Stderr, true, b"x y");
        assert_eq!(out, b"2024-01-01T12:00:00.500000000Z stderr P x y\n");
        let back = parse_line(&out).unwrap();
        assert_eq!(back.timestamp, ts);
        assert!(back.partial);
        assert_eq!(back.content, b"x y");
    }

    #[test]
    fn empty_content_keeps_the_delimiter() {
        let mut out = Vec::new();
        encode(&mut out, Timestamp::UNIX_EPOCH, Stream::Stdout, false, b"");
        assert_eq!(out, b"1970-01-01T00:00:00.000000000Z stdout F \n");
        assert_eq!(parse_line(&out).unwrap().content, b"");
    }
}
