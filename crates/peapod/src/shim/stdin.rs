//! A process's stdin as the shim holds it: the write end of its stdin pipe (or a duplicate of
//! its terminal's master), non-blocking, with what the process has not read yet queued up to a
//! bound. While the queue is full the shim stops reading the clients that feed it, so a
//! process that does not read its stdin slows its clients down instead of the shim.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use mio::Token;

use super::outbuf::OutBuf;

/// Input queued for a process that is not reading it, before clients are paused.
const PENDING_LIMIT: usize = 256 * 1024;

pub struct Stdin {
    file: File,
    /// The writable-interest registration of `file`.
    pub token: Token,
    pending: OutBuf,
    /// No more input is taken; the stdin closes once what is queued is written.
    closing: bool,
}

impl Stdin {
    /// `file` must be non-blocking.
    pub fn new(file: File, token: Token) -> Stdin {
        Stdin {
            file,
            token,
            pending: OutBuf::new(PENDING_LIMIT),
            closing: false,
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Passes `data` on to the process (ignored once closing). An error: the process closed
    /// its end.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.closing {
            return Ok(());
        }
        self.pending.write(self.file.as_fd(), data)
    }

    /// Writes what the process now has room for.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.pending.flush(self.file.as_fd())
    }

    /// The process has not read enough: its clients wait.
    pub fn is_full(&self) -> bool {
        self.pending.is_full()
    }

    /// Not closing: clients may still feed it.
    pub fn takes_input(&self) -> bool {
        !self.closing
    }

    /// Takes no more input; the process sees its end once the queue is written.
    pub fn close_when_drained(&mut self) {
        self.closing = true;
    }

    /// Closing and nothing left to write: the file can be closed.
    pub fn is_done(&self) -> bool {
        self.closing && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pipe() -> (File, File) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
        (File::from(r), File::from(w))
    }

    #[test]
    fn input_after_close_is_dropped_and_the_queue_drains_first() {
        let (mut reader, writer) = pipe();
        let mut stdin = Stdin::new(writer, Token(7));
        let big = vec![b'a'; PENDING_LIMIT + 200_000];
        stdin.write(&big).unwrap();
        assert!(stdin.is_full());
        stdin.close_when_drained();
        stdin.write(b"late").unwrap();
        assert!(!stdin.is_done());
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 65536];
        while !stdin.is_done() {
            match reader.read(&mut chunk) {
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("{err}"),
            }
            stdin.flush().unwrap();
        }
        drop(stdin);
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(got, big);
    }

    #[test]
    fn a_closed_reader_is_an_error() {
        let (reader, writer) = pipe();
        drop(reader);
        let mut stdin = Stdin::new(writer, Token(7));
        assert!(stdin.write(b"x").is_err());
    }
}
