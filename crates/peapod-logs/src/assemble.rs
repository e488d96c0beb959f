//! Joins a stream's `P` records with the record that ends them into one user-visible line.

use jiff::Timestamp;

use crate::line::{LogLine, Stream};

/// Cap on a joined line; past it the joined content is handed out unterminated and joining
/// starts afresh, so a container that never prints a newline cannot exhaust the reader.
const MAX_JOINED_LEN: usize = 1024 * 1024;

/// One user-visible line: the timestamp of its first record and the joined content.
/// `complete` is false when the line did not end (container exited mid-line, or the cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub timestamp: Timestamp,
    pub stream: Stream,
    pub content: Vec<u8>,
    pub complete: bool,
}

/// Per-stream joining state; stdout and stderr records may interleave freely.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    open: [Option<Message>; 2],
}

impl Assembler {
    /// Adds one record; returns a line once the record completes it.
    pub fn push(&mut self, line: LogLine) -> Option<Message> {
        let slot = &mut self.open[line.stream.index()];
        let message = match slot.as_mut() {
            Some(open) => {
                open.content.extend_from_slice(&line.content);
                open
            }
            None => slot.insert(Message {
                timestamp: line.timestamp,
                stream: line.stream,
                content: line.content,
                complete: false,
            }),
        };
        if !line.partial {
            message.complete = true;
            return slot.take();
        }
        if message.content.len() >= MAX_JOINED_LEN {
            return slot.take();
        }
        None
    }

    /// Hands out the lines still waiting for their end, oldest first.
    pub fn flush(&mut self) -> Vec<Message> {
        let mut open: Vec<Message> = self.open.iter_mut().filter_map(Option::take).collect();
        open.sort_by_key(|m| m.timestamp);
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(secs: i64, stream: Stream, partial: bool, content: &[u8]) -> LogLine {
        LogLine {
            timestamp: Timestamp::from_second(secs).unwrap(),
            stream,
            partial,
            content: content.to_vec(),
        }
    }

    #[test]
    fn joins_partials_per_stream_with_the_first_timestamp() {
        let mut a = Assembler::default();
        assert_eq!(a.push(record(1, Stream::Stdout, true, b"hel")), None);
        let err = a.push(record(2, Stream::Stderr, false, b"oops")).unwrap();
        assert_eq!((err.content.as_slice(), err.complete), (&b"oops"[..], true));
        assert_eq!(a.push(record(3, Stream::Stdout, true, b"lo ")), None);
        let out = a.push(record(4, Stream::Stdout, false, b"world")).unwrap();
        assert_eq!(out.content, b"hello world");
        assert_eq!(out.timestamp, Timestamp::from_second(1).unwrap());
        assert!(out.complete);
        assert!(a.flush().is_empty());
    }

    #[test]
    fn flush_returns_unfinished_lines_oldest_first() {
        let mut a = Assembler::default();
        a.push(record(5, Stream::Stdout, true, b"late"));
        a.push(record(4, Stream::Stderr, true, b"early"));
        let open = a.flush();
        assert_eq!(open.len(), 2);
        assert_eq!(open[0].content, b"early");
        assert_eq!(open[1].content, b"late");
        assert!(open.iter().all(|m| !m.complete));
        assert!(a.flush().is_empty());
    }

    #[test]
    fn endless_partials_are_released_at_the_cap() {
        let mut a = Assembler::default();
        let chunk = vec![b'x'; 16 * 1024];
        let mut released = None;
        for i in 0..64 {
            released = a.push(record(i, Stream::Stdout, true, &chunk));
            if released.is_some() {
                assert_eq!(i, 63);
            }
        }
        let released = released.unwrap();
        assert_eq!(released.content.len(), MAX_JOINED_LEN);
        assert!(!released.complete);
    }
}
