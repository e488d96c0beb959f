//! Turns raw container output into CRI records appended to a log file, rotating by size.
//!
//! Splitting follows containerd's CRI logger: a `\n` (or `\r\n`) ends an `F` record, content
//! beyond [`MAX_CONTENT_LEN`] goes out early as `P` records, and output left unterminated at
//! exit is written as a final `P` record.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::line::{encode, Stream, MAX_CONTENT_LEN};
use crate::rotation::{next_rotated_path, prune};
use crate::LogError;

/// The mode of a log file: containerd writes container logs 0640, readable by root's group but
/// not by other users (a container's output may hold anything).
pub const LOG_FILE_MODE: u32 = 0o640;
/// The mode of the directories `LogWriter::open` creates (a pod's log directory, kubelet's 0750).
pub const LOG_DIR_MODE: u32 = 0o750;

/// Appends CRI records to a log file. Each `write` call ends with one plain append of the
/// records it produced, so readers see complete lines promptly and the producer never waits
/// on anything but the file system.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: usize,
    pending: [Vec<u8>; 2],
    last_timestamp: Timestamp,
}

impl LogWriter {
    /// Opens (creating it and its parent directories if needed) the log file at `path` for
    /// appending. The file is rotated before it would grow beyond `max_size` bytes (`0`
    /// disables rotation) and at most `max_files` files are kept, the current one included.
    pub fn open(path: &Path, max_size: u64, max_files: usize) -> Result<LogWriter, LogError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(LOG_DIR_MODE)
                .create(dir)
                .map_err(|source| LogError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let file = open_append(path)?;
        let size = file
            .metadata()
            .map_err(|source| LogError::Open {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files,
            pending: [Vec::new(), Vec::new()],
            last_timestamp: Timestamp::UNIX_EPOCH,
        })
    }

    /// Takes bytes as read from the container's `stream` pipe, in any chunking. Complete
    /// lines become `F` records, over-long content becomes 16 KiB `P` records, and an
    /// unterminated tail is kept (per stream) for the next call.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), LogError> {
        let mut pending = std::mem::take(&mut self.pending[stream.index()]);
        let mut batch = Vec::new();
        let result = self
            .split(&mut batch, stream, &mut pending, bytes)
            .and_then(|()| self.append(&batch));
        self.pending[stream.index()] = pending;
        result
    }

    /// Writes what is left unterminated on either stream as a final `P` record, as
    /// containerd does when the container's pipe closes mid-line.
    pub fn finish(&mut self) -> Result<(), LogError> {
        let mut batch = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let mut pending = std::mem::take(&mut self.pending[stream.index()]);
            self.emit_overflow(&mut batch, stream, &mut pending, 0)?;
            if !pending.is_empty() {
                self.emit(&mut batch, stream, true, &pending)?;
            }
        }
        self.append(&batch)
    }

    fn split(
        &mut self,
        batch: &mut Vec<u8>,
        stream: Stream,
        pending: &mut Vec<u8>,
        bytes: &[u8],
    ) -> Result<(), LogError> {
        let mut rest = bytes;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            pending.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            if pending.last() == Some(&b'\r') {
                pending.pop();
            }
            self.emit_overflow(batch, stream, pending, 0)?;
            self.emit(batch, stream, false, pending)?;
            pending.clear();
        }
        pending.extend_from_slice(rest);
        // A trailing '\r' may be the first half of "\r\n", so it is not content yet.
        let held = usize::from(pending.last() == Some(&b'\r'));
        self.emit_overflow(batch, stream, pending, held)
    }

    /// Emits `P` records while more than a record's worth of content (not counting `held`
    /// trailing bytes) is pending; containerd emits `F` for content of exactly that size.
    fn emit_overflow(
        &mut self,
        batch: &mut Vec<u8>,
        stream: Stream,
        pending: &mut Vec<u8>,
        held: usize,
    ) -> Result<(), LogError> {
        let mut start = 0;
        while pending.len() - start - held > MAX_CONTENT_LEN {
            self.emit(
                batch,
                stream,
                true,
                &pending[start..start + MAX_CONTENT_LEN],
            )?;
            start += MAX_CONTENT_LEN;
        }
        pending.drain(..start);
        Ok(())
    }

    /// Encodes one record into `batch`, first writing out and rotating the file when the
    /// record would take it beyond `max_size`.
    fn emit(
        &mut self,
        batch: &mut Vec<u8>,
        stream: Stream,
        partial: bool,
        content: &[u8],
    ) -> Result<(), LogError> {
        let before = batch.len();
        let timestamp = self.next_timestamp();
        encode(batch, timestamp, stream, partial, content);
        let record_len = (batch.len() - before) as u64;
        let size_before = self.size + before as u64;
        if self.max_size > 0 && size_before > 0 && size_before + record_len > self.max_size {
            self.append(&batch[..before])?;
            batch.drain(..before);
            self.rotate()?;
        }
        Ok(())
    }

    /// Now, but never earlier than the previous record, so that record order and time
    /// order agree even if the wall clock steps back.
    fn next_timestamp(&mut self) -> Timestamp {
        self.last_timestamp = self.last_timestamp.max(Timestamp::now());
        self.last_timestamp
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(bytes)
            .map_err(|source| LogError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let rotated = next_rotated_path(&self.path, Timestamp::now())?;
        match fs::rename(&self.path, &rotated) {
            // Someone removed the file under us: starting a fresh one is all that is left.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(LogError::Rotate {
                    from: self.path.clone(),
                    to: rotated,
                    source,
                })
            }
            Ok(()) => {}
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        prune(&self.path, self.max_files.saturating_sub(1))
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_FILE_MODE)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{parse_record, LogLine};
    use crate::rotation::rotated_siblings;

    fn records(path: &Path) -> Vec<LogLine> {
        let data = fs::read(path).unwrap();
        assert!(data.is_empty() || data.ends_with(b"\n"));
        data.split_inclusive(|&b| b == b'\n')
            .map(|l| parse_record(l).unwrap())
            .collect()
    }

    fn summary(lines: &[LogLine]) -> Vec<(Stream, bool, String)> {
        lines
            .iter()
            .map(|l| {
                (
                    l.stream,
                    l.partial,
                    String::from_utf8(l.content.clone()).unwrap(),
                )
            })
            .collect()
    }

    fn open(dir: &Path) -> (LogWriter, PathBuf) {
        let path = dir.join("pod/c/0.log");
        (LogWriter::open(&path, 0, 5).unwrap(), path)
    }

    #[test]
    fn chunked_input_becomes_full_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, path) = open(dir.path());
        for chunk in ["hel", "lo\nwor", "ld\r\n", "\n", "a\rb\n", "tail"] {
            w.write(Stream::Stdout, chunk.as_bytes()).unwrap();
        }
        let out = Stream::Stdout;
        assert_eq!(
            summary(&records(&path)),
            [
                (out, false, "hello".into()),
                (out, false, "world".into()),
                (out, false, "".into()),
                (out, false, "a\rb".into()),
            ]
        );
        w.finish().unwrap();
        assert_eq!(summary(&records(&path)[4..]), [(out, true, "tail".into())]);
        w.finish().unwrap();
        assert_eq!(records(&path).len(), 5, "finish twice adds nothing");
    }

    #[test]
    fn long_lines_split_at_exactly_16_kib() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, path) = open(dir.path());
        let exact = vec![b'a'; MAX_CONTENT_LEN];
        w.write(Stream::Stdout, &exact).unwrap();
        assert!(records(&path).is_empty(), "exactly 16 KiB may still end");
        w.write(Stream::Stdout, b"\n").unwrap();
        let mut long = vec![b'b'; 2 * MAX_CONTENT_LEN + 1];
        long.extend_from_slice(b"\r\n");
        w.write(Stream::Stdout, &long).unwrap();
        let lines = records(&path);
        let shape: Vec<_> = lines.iter().map(|l| (l.partial, l.content.len())).collect();
        assert_eq!(
            shape,
            [
                (false, MAX_CONTENT_LEN),
                (true, MAX_CONTENT_LEN),
                (true, MAX_CONTENT_LEN),
                (false, 1)
            ]
        );
    }

    #[test]
    fn carriage_return_at_chunk_edge_is_not_counted_as_content() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, path) = open(dir.path());
        let mut chunk = vec![b'c'; MAX_CONTENT_LEN];
        chunk.push(b'\r');
        w.write(Stream::Stderr, &chunk).unwrap();
        w.write(Stream::Stderr, b"\n").unwrap();
        let lines = records(&path);
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].partial);
        assert_eq!(lines[0].content, vec![b'c'; MAX_CONTENT_LEN]);
    }

    #[test]
    fn streams_keep_separate_remainders() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, path) = open(dir.path());
        w.write(Stream::Stdout, b"out-").unwrap();
        w.write(Stream::Stderr, b"err-").unwrap();
        w.write(Stream::Stderr, b"1\n").unwrap();
        w.write(Stream::Stdout, b"1\nout-2\n").unwrap();
        w.write(Stream::Stderr, b"unfinished").unwrap();
        w.finish().unwrap();
        assert_eq!(
            summary(&records(&path)),
            [
                (Stream::Stderr, false, "err-1".into()),
                (Stream::Stdout, false, "out-1".into()),
                (Stream::Stdout, false, "out-2".into()),
                (Stream::Stderr, true, "unfinished".into()),
            ]
        );
    }

    #[test]
    fn timestamps_are_monotonic_utc_with_nanoseconds() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, path) = open(dir.path());
        let start = Timestamp::now();
        for i in 0..200 {
            w.write(Stream::Stdout, format!("{i}\n").as_bytes())
                .unwrap();
        }
        let data = fs::read_to_string(&path).unwrap();
        for line in data.lines() {
            let stamp = line.split(' ').next().unwrap();
            assert_eq!(
                stamp.len(),
                "2016-10-06T00:17:09.669794202Z".len(),
                "{stamp}"
            );
            assert!(stamp.ends_with('Z'));
        }
        let stamps: Vec<_> = records(&path).iter().map(|l| l.timestamp).collect();
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
        assert!(stamps[0] >= start && stamps[199] <= Timestamp::now());
    }

    #[test]
    fn rotates_before_exceeding_max_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let record_len = "2016-10-06T00:17:09.669794202Z stdout F 0000\n".len() as u64;
        let mut w = LogWriter::open(&path, 3 * record_len, 3).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("{i:04}\n").as_bytes())
                .unwrap();
        }
        let rotated = rotated_siblings(&path).unwrap();
        assert_eq!(rotated.len(), 2, "max_files counts the current file");
        let mut all = Vec::new();
        for file in rotated.iter().chain([&path]) {
            let size = fs::metadata(file).unwrap().len();
            assert!(size <= 3 * record_len, "{} is {size} bytes", file.display());
            all.extend(records(file));
        }
        let numbers: Vec<u32> = all
            .iter()
            .map(|l| String::from_utf8_lossy(&l.content).parse().unwrap())
            .collect();
        assert_eq!(
            numbers,
            (12..20).collect::<Vec<_>>(),
            "oldest removed first"
        );
    }

    #[test]
    fn max_files_of_one_keeps_only_the_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut w = LogWriter::open(&path, 10, 1).unwrap();
        w.write(Stream::Stdout, b"first\nsecond\n").unwrap();
        assert!(rotated_siblings(&path).unwrap().is_empty());
        assert_eq!(
            summary(&records(&path)),
            [(Stream::Stdout, false, "second".into())]
        );
    }

    #[test]
    fn reopening_appends_and_counts_the_existing_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let record_len = "2016-10-06T00:17:09.669794202Z stdout F a\n".len() as u64;
        LogWriter::open(&path, 2 * record_len, 5)
            .unwrap()
            .write(Stream::Stdout, b"a\nb\n")
            .unwrap();
        let mut again = LogWriter::open(&path, 2 * record_len, 5).unwrap();
        again.write(Stream::Stdout, b"c\n").unwrap();
        assert_eq!(rotated_siblings(&path).unwrap().len(), 1);
        assert_eq!(
            summary(&records(&path)),
            [(Stream::Stdout, false, "c".into())]
        );
    }

    #[test]
    fn logs_are_closed_to_other_users_after_rotation_too() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let (mut w, path) = open(dir.path());
        assert_eq!(mode(&dir.path().join("pod")), LOG_DIR_MODE);
        assert_eq!(mode(&dir.path().join("pod/c")), LOG_DIR_MODE);
        assert_eq!(mode(&path), LOG_FILE_MODE);
        w.max_size = 10;
        w.write(Stream::Stdout, b"first\nsecond\n").unwrap();
        assert_eq!(rotated_siblings(&path).unwrap().len(), 1);
        assert_eq!(mode(&path), LOG_FILE_MODE);
    }

    #[test]
    fn open_reports_the_path_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), b"").unwrap();
        let bad = dir.path().join("file/0.log");
        let err = LogWriter::open(&bad, 0, 5).err().unwrap();
        assert!(err.to_string().contains("file"), "{err}");
    }
}
