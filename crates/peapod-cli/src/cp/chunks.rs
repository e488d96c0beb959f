//! Blocking byte streams over bounded channels of chunks, so that tar work on a thread of its
//! own and a session in the runtime hold each other back instead of buffering an archive.

use std::io::{self, Read, Write};

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::mpsc;

/// The size of the chunks a [`ChunkWriter`] sends.
pub const CHUNK: usize = 64 * 1024;
/// Chunks that may wait in a channel.
pub const CHUNKS_IN_FLIGHT: usize = 8;

/// Sends what is written in chunks; a receiver gone is a broken pipe. Flush sends what is
/// left.
pub struct ChunkWriter {
    chunks: mpsc::Sender<Bytes>,
    pending: BytesMut,
}

impl ChunkWriter {
    pub fn new(chunks: mpsc::Sender<Bytes>) -> ChunkWriter {
        ChunkWriter {
            chunks,
            pending: BytesMut::with_capacity(CHUNK),
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = self.pending.split().freeze();
        self.chunks
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the session stopped reading"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&data[..n]);
        if self.pending.len() == CHUNK {
            self.send_pending()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

/// Reads the chunks received; the end of the channel is the end of input.
pub struct ChunkReader {
    chunks: mpsc::Receiver<Bytes>,
    pending: Bytes,
}

impl ChunkReader {
    pub fn new(chunks: mpsc::Receiver<Bytes>) -> ChunkReader {
        ChunkReader {
            chunks,
            pending: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.pending = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pass_whole_in_bounded_chunks() {
        let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            let mut writer = ChunkWriter::new(sender);
            writer.write_all(&sent).unwrap();
            writer.flush().unwrap();
        });
        let mut received = Vec::new();
        ChunkReader::new(receiver)
            .read_to_end(&mut received)
            .unwrap();
        writer.join().unwrap();
        assert!(received == data);
    }

    #[test]
    fn a_gone_reader_is_a_broken_pipe() {
        let (sender, receiver) = mpsc::channel(1);
        drop(receiver);
        let mut writer = ChunkWriter::new(sender);
        writer.write_all(b"x").unwrap();
        assert_eq!(
            writer.flush().unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }
}
