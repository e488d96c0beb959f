//! Bytes waiting for a non-blocking socket, pipe or terminal that is not taking them yet. The
//! shim's one thread never waits for a peer: what a peer does not take now is kept here, up to
//! a bound its owner enforces, and written when epoll says the peer has room.

use std::io::ErrorKind;
use std::os::fd::AsFd;

/// A queue of bytes for one peer, with the bound its owner checks through [`OutBuf::is_full`].
#[derive(Debug)]
pub struct OutBuf {
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    start: usize,
    limit: usize,
}

impl OutBuf {
    pub fn new(limit: usize) -> OutBuf {
        OutBuf {
            buf: Vec::new(),
            start: 0,
            limit,
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Holds its bound or more: its owner stops producing (or gives up on the peer).
    pub fn is_full(&self) -> bool {
        self.len() >= self.limit
    }

    /// Writes `data` after what is already queued: as much as `fd` takes now, the rest queued.
    /// An error means the peer is gone.
    pub fn write(&mut self, fd: impl AsFd, data: &[u8]) -> std::io::Result<()> {
        self.flush(&fd)?;
        let written = if self.is_empty() {
            write_some(&fd, data)?
        } else {
            0
        };
        self.buf.extend_from_slice(&data[written..]);
        Ok(())
    }

    /// Writes what `fd` takes of the queue without blocking. An error means the peer is gone.
    pub fn flush(&mut self, fd: impl AsFd) -> std::io::Result<()> {
        while !self.is_empty() {
            let n = write_some(&fd, &self.buf[self.start..])?;
            if n == 0 {
                break;
            }
            self.start += n;
        }
        if self.is_empty() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(())
    }
}

/// One write of a prefix of `data`; 0 when `fd` has no room now.
fn write_some(fd: &impl AsFd, data: &[u8]) -> std::io::Result<usize> {
    loop {
        match nix::unistd::write(fd, data) {
            Ok(n) => return Ok(n),
            Err(nix::Error::EINTR) => continue,
            Err(err) => {
                let err = std::io::Error::from(err);
                return match err.kind() {
                    ErrorKind::WouldBlock => Ok(0),
                    _ => Err(err),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn read_all(stream: &mut UnixStream) -> Vec<u8> {
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => return got,
                Err(err) => panic!("{err}"),
            }
        }
    }

    #[test]
    fn a_reading_peer_gets_everything_at_once() {
        let (ours, mut theirs) = pair();
        let mut out = OutBuf::new(16);
        out.write(&ours, b"hello").unwrap();
        assert!(out.is_empty());
        assert_eq!(read_all(&mut theirs), b"hello");
    }

    #[test]
    fn what_a_full_peer_refuses_is_kept_in_order_and_bounded_by_its_owner() {
        let (ours, mut theirs) = pair();
        let mut out = OutBuf::new(1 << 20);
        let chunk: Vec<u8> = (0..=255u8).cycle().take(65536).collect();
        let mut sent = Vec::new();
        while !out.is_full() {
            out.write(&ours, &chunk).unwrap();
            sent.extend_from_slice(&chunk);
        }
        assert!(out.len() >= 1 << 20);
        let mut got = Vec::new();
        while !out.is_empty() {
            got.extend(read_all(&mut theirs));
            out.flush(&ours).unwrap();
        }
        got.extend(read_all(&mut theirs));
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "bytes reordered or lost");
    }

    #[test]
    fn a_vanished_peer_is_an_error() {
        let (ours, theirs) = pair();
        drop(theirs);
        let mut out = OutBuf::new(16);
        assert!(out.write(&ours, b"x").is_err());
    }
}
