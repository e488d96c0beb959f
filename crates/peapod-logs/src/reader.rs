//! Reads a container's log back like kubelet's `ReadLogs`: rotated siblings then the current
//! file, `P` records joined, `--tail`/`--since`/`--limit-bytes`/`--timestamps` applied, and
//! with follow, polling for appended lines and moving on to the new file after a rotation.
//!
//! Malformed records are skipped with a warning, as kubelet does.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use crate::assemble::{Assembler, Message};
use crate::line::{format_timestamp, parse_record};
use crate::rotation::rotated_siblings;
use crate::LogError;

/// How often a follower looks for new lines, a rotation, or `stop()`.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Bytes a follower reads before it checks `stop()` again.
const FOLLOW_BUDGET: usize = 4 * 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// What `peapod logs` asks for; `None` means "no limit" / "from the start".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Only the last this many lines (joined lines, counted across rotated files).
    pub tail: Option<usize>,
    /// Prefix each line with its RFC3339Nano UTC timestamp and a space.
    pub timestamps: bool,
    /// Keep reading appended lines until `stop()` says otherwise.
    pub follow: bool,
    /// Skip lines whose (first record's) timestamp is before this.
    pub since: Option<Timestamp>,
    /// Stop after writing this many bytes, cutting the last line if needed.
    pub limit_bytes: Option<u64>,
}

/// Writes the log of one container attempt at `path` to `out` (see [`ReadOptions`]).
/// With `follow`, returns once `stop()` is true (checked every 50 ms) after a last read of
/// what is already written; without it, returns at the end of the current file.
pub fn read_log(
    path: &Path,
    opts: &ReadOptions,
    out: &mut dyn Write,
    stop: &dyn Fn() -> bool,
) -> Result<(), LogError> {
    let mut pipe = Pipeline::new(path, opts, out);
    if pipe.done() {
        return Ok(());
    }
    let mut current = Cursor::open(path)?;
    let siblings = rotated_siblings(path)?;
    if current.is_none() && siblings.is_empty() {
        return Err(LogError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let current_id = current.as_ref().map(|c| c.id);
    for older in files_before(&siblings, current_id)? {
        read_whole(older, &mut pipe)?;
    }
    if let Some(cursor) = current.as_mut() {
        cursor.pump(&mut pipe, usize::MAX)?;
    }
    if !opts.follow {
        if let Some(cursor) = current.as_mut() {
            cursor.finish(&mut pipe)?;
        }
        pipe.flush_unfinished()?;
        pipe.release_tail()?;
        return pipe.sink.flush();
    }
    pipe.release_tail()?;
    follow(path, current, &mut pipe, stop)
}

fn follow(
    path: &Path,
    mut current: Option<Cursor>,
    pipe: &mut Pipeline<'_>,
    stop: &dyn Fn() -> bool,
) -> Result<(), LogError> {
    while !pipe.done() {
        let mut caught_up = true;
        if let Some(cursor) = current.as_mut() {
            caught_up = cursor.pump(pipe, FOLLOW_BUDGET)?;
        }
        if caught_up {
            if let Some(next) = replacement(path, current.as_ref())? {
                if let Some(mut old) = current.take() {
                    old.finish(pipe)?;
                    read_rotated_between(path, old.id, next.id, pipe)?;
                }
                current = Some(next);
                continue;
            }
        }
        pipe.sink.flush()?;
        if stop() {
            return drain_and_finish(current, pipe);
        }
        if caught_up {
            std::thread::sleep(POLL_INTERVAL);
        }
    }
    pipe.sink.flush()
}

/// Reads what is already written once more, then hands out lines left unfinished.
fn drain_and_finish(current: Option<Cursor>, pipe: &mut Pipeline<'_>) -> Result<(), LogError> {
    if let Some(mut cursor) = current {
        if cursor.pump(pipe, FOLLOW_BUDGET)? {
            cursor.finish(pipe)?;
        }
    }
    pipe.flush_unfinished()?;
    pipe.sink.flush()
}

/// The file now at `path` if it is not the one being read (it was rotated away).
fn replacement(path: &Path, current: Option<&Cursor>) -> Result<Option<Cursor>, LogError> {
    let id = match std::fs::metadata(path) {
        Ok(meta) => file_id(&meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LogError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if current.is_some_and(|c| c.id == id) {
        return Ok(None);
    }
    Cursor::open(path)
}

/// Reads rotated files that came after `old` but before `new`, so that several rotations
/// between two polls lose nothing. If `old` was already pruned its position is unknown and
/// nothing is read.
fn read_rotated_between(
    path: &Path,
    old: FileId,
    new: FileId,
    pipe: &mut Pipeline<'_>,
) -> Result<(), LogError> {
    let siblings = rotated_siblings(path)?;
    let mut after_old = false;
    for sibling in &siblings {
        let Some(id) = id_of(sibling)? else { continue };
        if id == new {
            break;
        }
        if after_old {
            read_whole(sibling, pipe)?;
        }
        after_old |= id == old;
    }
    Ok(())
}

/// Rotated files older than the current file. If the current file was itself rotated
/// between opening and listing, it shows up among them and later ones are left to follow.
fn files_before(siblings: &[PathBuf], current: Option<FileId>) -> Result<Vec<&Path>, LogError> {
    let mut older = Vec::new();
    for sibling in siblings {
        if current.is_some() && id_of(sibling)? == current {
            break;
        }
        older.push(sibling.as_path());
    }
    Ok(older)
}

fn read_whole(path: &Path, pipe: &mut Pipeline<'_>) -> Result<(), LogError> {
    match Cursor::open(path)? {
        Some(mut cursor) => cursor.finish(pipe),
        None => Ok(()),
    }
}

type FileId = (u64, u64);

fn file_id(meta: &std::fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

fn id_of(path: &Path) -> Result<Option<FileId>, LogError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(file_id(&meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// An open log file and the bytes of a record not yet terminated by `\n`.
struct Cursor {
    path: PathBuf,
    file: File,
    id: FileId,
    unterminated: Vec<u8>,
}

impl Cursor {
    /// Opens `path`; `None` if it does not exist (not created yet, or pruned meanwhile).
    fn open(path: &Path) -> Result<Option<Cursor>, LogError> {
        let read_err = |source| LogError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        let id = file_id(&file.metadata().map_err(read_err)?);
        Ok(Some(Cursor {
            path: path.to_path_buf(),
            file,
            id,
            unterminated: Vec::new(),
        }))
    }

    /// Feeds complete records appended since the last call, reading at most about `budget`
    /// bytes. Returns whether the end of the file was reached.
    fn pump(&mut self, pipe: &mut Pipeline<'_>, budget: usize) -> Result<bool, LogError> {
        let mut chunk = vec![0; READ_CHUNK];
        let mut read = 0;
        while read < budget && !pipe.done() {
            let n = match self.file.read(&mut chunk) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(LogError::Read {
                        path: self.path.clone(),
                        source,
                    })
                }
            };
            read += n;
            self.unterminated.extend_from_slice(&chunk[..n]);
            self.feed_complete(pipe)?;
        }
        Ok(false)
    }

    fn feed_complete(&mut self, pipe: &mut Pipeline<'_>) -> Result<(), LogError> {
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &self.unterminated[start..]) {
            pipe.record(&self.path, &self.unterminated[start..start + end + 1])?;
            start += end + 1;
        }
        self.unterminated.drain(..start);
        Ok(())
    }

    /// Reads to the end and treats an unterminated last record as complete, as kubelet does
    /// for a file nobody will append to any more.
    fn finish(&mut self, pipe: &mut Pipeline<'_>) -> Result<(), LogError> {
        self.pump(pipe, usize::MAX)?;
        if !self.unterminated.is_empty() {
            let last = std::mem::take(&mut self.unterminated);
            pipe.record(&self.path, &last)?;
        }
        Ok(())
    }
}

/// Records in, user-visible lines out: parse, join, hold back for `tail`, then write.
struct Pipeline<'a> {
    assembler: Assembler,
    tail: Option<(usize, VecDeque<Message>)>,
    sink: Sink<'a>,
}

impl<'a> Pipeline<'a> {
    fn new(path: &Path, opts: &ReadOptions, out: &'a mut dyn Write) -> Pipeline<'a> {
        Pipeline {
            assembler: Assembler::default(),
            tail: opts.tail.map(|n| (n, VecDeque::new())),
            sink: Sink {
                out,
                path: path.to_path_buf(),
                timestamps: opts.timestamps,
                since: opts.since,
                remaining: opts.limit_bytes,
            },
        }
    }

    fn done(&self) -> bool {
        self.sink.remaining == Some(0)
    }

    fn record(&mut self, file: &Path, raw: &[u8]) -> Result<(), LogError> {
        match parse_record(raw) {
            Ok(line) => match self.assembler.push(line) {
                Some(message) => self.deliver(message),
                None => Ok(()),
            },
            Err(error) => {
                tracing::warn!(
                    path = %file.display(),
                    line = %String::from_utf8_lossy(raw).trim_end(),
                    %error,
                    "skipping malformed log line"
                );
                Ok(())
            }
        }
    }

    fn deliver(&mut self, message: Message) -> Result<(), LogError> {
        match &mut self.tail {
            Some((keep, held)) => {
                held.push_back(message);
                if held.len() > *keep {
                    held.pop_front();
                }
                Ok(())
            }
            None => self.sink.emit(&message),
        }
    }

    fn flush_unfinished(&mut self) -> Result<(), LogError> {
        for message in self.assembler.flush() {
            self.deliver(message)?;
        }
        Ok(())
    }

    /// Writes the lines held back for `tail`; from then on lines go straight out.
    fn release_tail(&mut self) -> Result<(), LogError> {
        if let Some((_, held)) = self.tail.take() {
            for message in held {
                self.sink.emit(&message)?;
            }
        }
        Ok(())
    }
}

/// Formats lines for the user and enforces `since` and `limit_bytes`.
struct Sink<'a> {
    out: &'a mut dyn Write,
    path: PathBuf,
    timestamps: bool,
    since: Option<Timestamp>,
    remaining: Option<u64>,
}

impl Sink<'_> {
    fn emit(&mut self, message: &Message) -> Result<(), LogError> {
        if self.remaining == Some(0) || self.since.is_some_and(|s| message.timestamp < s) {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(message.content.len() + 32);
        if self.timestamps {
            bytes.extend_from_slice(format_timestamp(message.timestamp).as_bytes());
            bytes.push(b' ');
        }
        bytes.extend_from_slice(&message.content);
        if message.complete {
            bytes.push(b'\n');
        }
        if let Some(remaining) = self.remaining.as_mut() {
            let keep = bytes
                .len()
                .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
            bytes.truncate(keep);
            *remaining -= keep as u64;
        }
        self.out.write_all(&bytes).map_err(|e| self.output_error(e))
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.out.flush().map_err(|e| self.output_error(e))
    }

    fn output_error(&self, source: io::Error) -> LogError {
        LogError::Output {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{encode, Stream};
    use crate::LogWriter;
    use std::fs;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    /// Writes records `(second, stream, partial, content)` to `path`.
    fn write_records(path: &Path, records: &[(i64, Stream, bool, &str)]) {
        let mut data = Vec::new();
        for &(secs, stream, partial, content) in records {
            encode(&mut data, ts(secs), stream, partial, content.as_bytes());
        }
        fs::write(path, data).unwrap();
    }

    fn read(path: &Path, opts: &ReadOptions) -> String {
        let mut out = Vec::new();
        read_log(path, opts, &mut out, &|| true).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Three files: two rotated siblings and the current one, with a `P` line split
    /// across the last rotation.
    fn rotated_log(dir: &Path) -> PathBuf {
        let out = Stream::Stdout;
        let path = dir.join("0.log");
        write_records(
            &dir.join("0.log.20240101-120000"),
            &[(1, out, false, "one"), (2, out, false, "two")],
        );
        write_records(
            &dir.join("0.log.20240101-120000.1"),
            &[(3, out, false, "three"), (4, out, true, "fo")],
        );
        write_records(&path, &[(5, out, false, "ur"), (6, out, false, "five")]);
        path
    }

    #[test]
    fn reads_rotated_files_oldest_first_and_joins_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = rotated_log(dir.path());
        assert_eq!(
            read(&path, &ReadOptions::default()),
            "one\ntwo\nthree\nfour\nfive\n"
        );
    }

    #[test]
    fn tail_counts_joined_lines_across_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = rotated_log(dir.path());
        let tail = |n| {
            read(
                &path,
                &ReadOptions {
                    tail: Some(n),
                    ..Default::default()
                },
            )
        };
        assert_eq!(tail(3), "three\nfour\nfive\n");
        assert_eq!(tail(4), "two\nthree\nfour\nfive\n");
        assert_eq!(tail(0), "");
        assert_eq!(tail(100), "one\ntwo\nthree\nfour\nfive\n");
    }

    #[test]
    fn timestamps_prefix_the_first_record_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        write_records(
            &path,
            &[
                (1, Stream::Stdout, true, "a"),
                (2, Stream::Stdout, false, "b"),
            ],
        );
        let plain = read(&path, &ReadOptions::default());
        assert_eq!(plain, "ab\n");
        let stamped = read(
            &path,
            &ReadOptions {
                timestamps: true,
                ..Default::default()
            },
        );
        assert_eq!(stamped, "2023-11-14T22:13:21.000000000Z ab\n");
    }

    #[test]
    fn interleaved_streams_are_joined_separately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        write_records(
            &path,
            &[
                (1, Stream::Stdout, true, "long "),
                (2, Stream::Stderr, false, "warning"),
                (3, Stream::Stdout, false, "line"),
                (4, Stream::Stderr, true, "no newline at exit"),
            ],
        );
        assert_eq!(
            read(&path, &ReadOptions::default()),
            "warning\nlong line\nno newline at exit"
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut data = Vec::new();
        encode(&mut data, ts(1), Stream::Stdout, false, b"good");
        data.extend_from_slice(b"this is not a cri line\n");
        data.extend_from_slice(b"2024-01-01T00:00:00Z stdin F nope\n");
        encode(&mut data, ts(2), Stream::Stdout, false, b"also good");
        fs::write(&path, data).unwrap();
        assert_eq!(read(&path, &ReadOptions::default()), "good\nalso good\n");
    }

    #[test]
    fn since_and_limit_bytes_filter_like_kubelet() {
        let dir = tempfile::tempdir().unwrap();
        let path = rotated_log(dir.path());
        let since = read(
            &path,
            &ReadOptions {
                since: Some(ts(4)),
                ..Default::default()
            },
        );
        assert_eq!(since, "four\nfive\n");
        let limited = read(
            &path,
            &ReadOptions {
                limit_bytes: Some(6),
                ..Default::default()
            },
        );
        assert_eq!(limited, "one\ntw");
        let none = read(
            &path,
            &ReadOptions {
                limit_bytes: Some(0),
                ..Default::default()
            },
        );
        assert_eq!(none, "");
    }

    #[test]
    fn unterminated_last_record_is_read_without_follow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut data = Vec::new();
        encode(&mut data, ts(1), Stream::Stdout, false, b"whole");
        data.extend_from_slice(b"2023-11-14T22:13:22Z stdout F cut sh");
        fs::write(&path, data).unwrap();
        assert_eq!(read(&path, &ReadOptions::default()), "whole\ncut sh\n");
    }

    #[test]
    fn missing_log_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.log");
        let mut out = Vec::new();
        let err = read_log(&path, &ReadOptions::default(), &mut out, &|| true).unwrap_err();
        assert!(matches!(err, LogError::NotFound { .. }));
        assert!(err.to_string().contains("nope.log"));
    }

    /// A `Write` shared between the reading thread and the test.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        fn wait_for(&self, expected: &str) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.text() != expected {
                assert!(Instant::now() < deadline, "got {:?}", self.text());
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn spawn_follower(
        path: &Path,
        opts: ReadOptions,
    ) -> (Shared, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let out = Shared::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (path, mut out, stop) = (path.to_path_buf(), out.clone(), stop.clone());
            std::thread::spawn(move || {
                let opts = ReadOptions {
                    follow: true,
                    ..opts
                };
                read_log(&path, &opts, &mut out, &|| stop.load(Ordering::SeqCst)).unwrap();
            })
        };
        (out, stop, handle)
    }

    #[test]
    fn follow_sees_appended_lines_and_continues_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let record_len = "2016-10-06T00:17:09.669794202Z stdout F line-00\n".len() as u64;
        let mut writer = LogWriter::open(&path, 2 * record_len, 10).unwrap();
        writer.write(Stream::Stdout, b"line-00\n").unwrap();
        let (out, stop, handle) = spawn_follower(
            &path,
            ReadOptions {
                tail: Some(1),
                ..Default::default()
            },
        );
        out.wait_for("line-00\n");

        let mut expected = String::from("line-00\n");
        for i in 1..8 {
            writer
                .write(Stream::Stdout, format!("line-{i:02}\n").as_bytes())
                .unwrap();
            expected.push_str(&format!("line-{i:02}\n"));
        }
        out.wait_for(&expected);
        assert!(
            rotated_siblings(&path).unwrap().len() >= 3,
            "writer rotated"
        );

        writer.write(Stream::Stderr, b"bye").unwrap();
        writer.finish().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(out.text(), expected, "the unfinished line waits");
        stop.store(true, Ordering::SeqCst);
        handle.join().unwrap();
        assert_eq!(out.text(), expected + "bye");
    }

    #[test]
    fn follow_waits_for_the_end_of_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        write_records(&path, &[(1, Stream::Stdout, true, "hel")]);
        let (out, stop, handle) = spawn_follower(&path, ReadOptions::default());
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(out.text(), "");
        let mut more = Vec::new();
        encode(&mut more, ts(2), Stream::Stdout, false, b"lo");
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&more)
            .unwrap();
        out.wait_for("hello\n");
        stop.store(true, Ordering::SeqCst);
        handle.join().unwrap();
    }

    #[test]
    fn follow_stops_promptly_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        write_records(&path, &[(1, Stream::Stdout, false, "x")]);
        let (out, stop, handle) = spawn_follower(&path, ReadOptions::default());
        out.wait_for("x\n");
        let asked = Instant::now();
        stop.store(true, Ordering::SeqCst);
        handle.join().unwrap();
        // Polled every 50 ms; the slack is for a loaded machine.
        assert!(
            asked.elapsed() < Duration::from_millis(400),
            "{:?}",
            asked.elapsed()
        );
    }

    #[test]
    fn follow_picks_up_rotations_that_happen_between_polls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        write_records(&path, &[(1, Stream::Stdout, false, "a")]);
        let (out, stop, handle) = spawn_follower(&path, ReadOptions::default());
        out.wait_for("a\n");
        // Two rotations in a row, faster than the reader polls.
        let first = dir.path().join("0.log.20240101-120000");
        fs::rename(&path, &first).unwrap();
        write_records(&path, &[(2, Stream::Stdout, false, "b")]);
        fs::rename(&path, dir.path().join("0.log.20240101-120000.1")).unwrap();
        write_records(&path, &[(3, Stream::Stdout, false, "c")]);
        out.wait_for("a\nb\nc\n");
        stop.store(true, Ordering::SeqCst);
        handle.join().unwrap();
    }
}
