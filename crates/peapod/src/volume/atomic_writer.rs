//! kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go): projects a set of files into a
//! volume directory so that a reader never sees half an update. The files live in a hidden
//! timestamped directory (`..2026_01_02_15_04_05.123`), `..data` is a symlink to it, and each
//! user-visible top-level name is a symlink into `..data`; an update writes a new timestamped
//! directory and swaps `..data` with one rename. Paths starting with `..` are the writer's.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_FILE_NAME_LENGTH: usize = 255;
const MAX_PATH_LENGTH: usize = 4096;
/// Directories are open to group and others so that any user of the pod can walk to a file
/// its mode lets them read.
const DIR_MODE: u32 = 0o755;

/// One file of the payload: its content, mode and, for a projected token read by one user,
/// its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
    pub fs_user: Option<u32>,
}

/// Relative path in the volume → file.
pub type Payload = BTreeMap<String, FileProjection>;

#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    #[error("invalid path: must not be empty: {0:?}")]
    EmptyPath(String),
    #[error("invalid path: must be relative path: {0}")]
    AbsolutePath(String),
    #[error("invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters")]
    PathTooLong,
    #[error("invalid path: must not contain '..': {0}")]
    Backstep(String),
    #[error(
        "invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
    )]
    NameTooLong,
    #[error("invalid path: must not start with '..': {0}")]
    Reserved(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AtomicWriteError {
    let path = path.display().to_string();
    move |source| AtomicWriteError::Io {
        action,
        path,
        source,
    }
}

/// Writes payloads into one volume directory, which must exist. Not for concurrent use: each
/// volume has one writer at a time (its pod's worker).
pub struct AtomicWriter {
    target: PathBuf,
}

impl AtomicWriter {
    pub fn new(target: &Path) -> AtomicWriter {
        AtomicWriter {
            target: target.to_path_buf(),
        }
    }

    /// Projects `payload` into the volume; `set_perms` runs on a new timestamped directory
    /// before it becomes visible (fsGroup). Returns whether anything was written: nothing is
    /// when the files on disk already hold the payload.
    pub fn write(
        &self,
        payload: &Payload,
        set_perms: impl FnOnce(&Path),
    ) -> Result<bool, AtomicWriteError> {
        let payload = validate_payload(payload)?;
        let data_dir = self.target.join(DATA_DIR);
        let old_ts = match std::fs::read_link(&data_dir) {
            Ok(link) => Some(self.target.join(link)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(io("reading the link", &data_dir)(err)),
        };
        let mut to_remove = BTreeSet::new();
        let mut should_write = true;
        if let Some(old_ts) = &old_ts {
            to_remove = paths_to_remove(&payload, old_ts)?;
            should_write = !to_remove.is_empty() || payload_differs(&payload, old_ts)?;
        }
        if should_write {
            let ts_dir = self.new_timestamp_dir()?;
            if let Err(err) = write_payload_to_dir(&payload, &ts_dir) {
                let _ = std::fs::remove_dir_all(&ts_dir);
                return Err(err);
            }
            set_perms(&ts_dir);
            self.swap_data_dir(&ts_dir)?;
        }
        self.create_user_visible_files(&payload)?;
        self.remove_user_visible_paths(&to_remove)?;
        if let Some(old_ts) = old_ts.filter(|_| should_write) {
            std::fs::remove_dir_all(&old_ts).map_err(io("removing", &old_ts))?;
        }
        Ok(should_write)
    }

    /// `..data_tmp` → the new directory, renamed over `..data`: the one atomic step.
    fn swap_data_dir(&self, ts_dir: &Path) -> Result<(), AtomicWriteError> {
        let name = ts_dir
            .file_name()
            .expect("a timestamped directory has a name");
        let new_link = self.target.join(NEW_DATA_DIR);
        // Left behind by a writer that died between these two steps.
        let _ = std::fs::remove_file(&new_link);
        let linked = std::os::unix::fs::symlink(name, &new_link)
            .map_err(io("linking", &new_link))
            .and_then(|()| {
                std::fs::rename(&new_link, self.target.join(DATA_DIR))
                    .map_err(io("renaming", &new_link))
            });
        if linked.is_err() {
            let _ = std::fs::remove_file(&new_link);
            let _ = std::fs::remove_dir_all(ts_dir);
        }
        linked
    }

    fn new_timestamp_dir(&self) -> Result<PathBuf, AtomicWriteError> {
        let stamp = jiff::Timestamp::now().strftime("..%Y_%m_%d_%H_%M_%S.");
        loop {
            let dir = self
                .target
                .join(format!("{stamp}{}", rand::random::<u32>() % 1_000_000_000));
            match std::fs::DirBuilder::new().mode(DIR_MODE).create(&dir) {
                Ok(()) => {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(DIR_MODE))
                        .map_err(io("setting the mode of", &dir))?;
                    return Ok(dir);
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(io("creating", &dir)(err)),
            }
        }
    }

    /// Each top-level name of the payload is a symlink `name -> ..data/name`.
    fn create_user_visible_files(&self, payload: &Payload) -> Result<(), AtomicWriteError> {
        let top_level: BTreeSet<&str> = payload.keys().map(|p| first_component(p)).collect();
        for name in top_level {
            let visible = self.target.join(name);
            match std::fs::read_link(&visible) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    std::os::unix::fs::symlink(Path::new(DATA_DIR).join(name), &visible)
                        .map_err(io("linking", &visible))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Only top-level names are links of their own; deeper paths went with the old directory.
    fn remove_user_visible_paths(&self, paths: &BTreeSet<String>) -> Result<(), AtomicWriteError> {
        let mut last = Ok(());
        for path in paths.iter().filter(|p| !p.contains('/')) {
            let visible = self.target.join(path);
            if let Err(err) = std::fs::remove_file(&visible) {
                tracing::warn!(path = %visible.display(), %err, "pruning an old volume path");
                last = Err(io("removing", &visible)(err));
            }
        }
        last
    }
}

fn first_component(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// The payload with its paths checked and cleaned (Go's `path.Clean`).
fn validate_payload(payload: &Payload) -> Result<Payload, AtomicWriteError> {
    let mut clean = Payload::new();
    for (path, file) in payload {
        validate_path(path)?;
        let cleaned = clean_path(path);
        if cleaned.is_empty() {
            return Err(AtomicWriteError::EmptyPath(path.clone()));
        }
        clean.insert(cleaned, file.clone());
    }
    Ok(clean)
}

/// A path may not be absolute, contain a `..` element, start with `..`, or be too long.
pub fn validate_path(path: &str) -> Result<(), AtomicWriteError> {
    if path.is_empty() {
        return Err(AtomicWriteError::EmptyPath(path.to_string()));
    }
    if path.starts_with('/') {
        return Err(AtomicWriteError::AbsolutePath(path.to_string()));
    }
    if path.len() > MAX_PATH_LENGTH {
        return Err(AtomicWriteError::PathTooLong);
    }
    for item in path.split('/') {
        if item == ".." {
            return Err(AtomicWriteError::Backstep(path.to_string()));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return Err(AtomicWriteError::NameTooLong);
        }
    }
    let first = first_component(path);
    if first.starts_with("..") && first.len() > 2 {
        return Err(AtomicWriteError::Reserved(path.to_string()));
    }
    Ok(())
}

/// `a//b/./c/` → `a/b/c` (no `..` is left by then).
fn clean_path(path: &str) -> String {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether some file of the payload is missing from `old_ts` or holds other bytes (as
/// kubelet, the mode alone does not count).
fn payload_differs(payload: &Payload, old_ts: &Path) -> Result<bool, AtomicWriteError> {
    for (path, file) in payload {
        let on_disk = old_ts.join(path);
        match std::fs::read(&on_disk) {
            Ok(bytes) if bytes == file.data => {}
            Ok(_) => return Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(err) => return Err(io("reading", &on_disk)(err)),
        }
    }
    Ok(false)
}

/// Paths of the current version that the payload no longer has (a directory stays while
/// the payload has something under it).
fn paths_to_remove(payload: &Payload, old_ts: &Path) -> Result<BTreeSet<String>, AtomicWriteError> {
    let mut current = BTreeSet::new();
    walk_relative(old_ts, "", &mut current)?;
    let mut wanted = BTreeSet::new();
    for path in payload.keys() {
        let mut prefix = path.as_str();
        loop {
            wanted.insert(prefix.to_string());
            match prefix.rfind('/') {
                Some(slash) => prefix = &prefix[..slash],
                None => break,
            }
        }
    }
    Ok(current.difference(&wanted).cloned().collect())
}

fn walk_relative(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeSet<String>,
) -> Result<(), AtomicWriteError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io("reading", dir)(err)),
    };
    for entry in entries {
        let entry = entry.map_err(io("reading", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk_relative(&entry.path(), &relative, out)?;
        }
        out.insert(relative);
    }
    Ok(())
}

/// Writes every file into the fresh directory `dir`, with exactly its mode whatever the umask.
/// Files are created, never opened through a link: nothing lands outside `dir`.
fn write_payload_to_dir(payload: &Payload, dir: &Path) -> Result<(), AtomicWriteError> {
    for (path, file) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(parent)
                .map_err(io("creating", parent))?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(file.mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&full)
            .map_err(io("creating", &full))?;
        out.write_all(&file.data).map_err(io("writing", &full))?;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode))
            .map_err(io("setting the mode of", &full))?;
        if let Some(uid) = file.fs_user {
            std::os::unix::fs::lchown(&full, Some(uid), None)
                .map_err(io("changing the owner of", &full))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection {
            data: data.as_bytes().to_vec(),
            mode,
            fs_user: None,
        }
    }

    fn payload(files: &[(&str, &str)]) -> Payload {
        files
            .iter()
            .map(|(path, data)| (path.to_string(), file(data, 0o644)))
            .collect()
    }

    /// The volume as a reader sees it: every regular file reached through the links.
    fn visible(root: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut paths = BTreeSet::new();
        walk_visible(root, "", &mut paths);
        for path in paths {
            let full = root.join(&path);
            if full.is_file() {
                out.insert(path, std::fs::read_to_string(full).unwrap());
            }
        }
        out
    }

    fn walk_visible(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if prefix.is_empty() && name.starts_with("..") {
                continue;
            }
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.path().is_dir() {
                walk_visible(&entry.path(), &relative, out);
            }
            out.insert(relative);
        }
    }

    fn expected(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(p, d)| (p.to_string(), d.to_string()))
            .collect()
    }

    fn hidden_dirs(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA_DIR)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn paths_are_validated_as_kubelet_does() {
        let valid = [
            "i/am/well/behaved.txt",
            "keep/going/down/the/path",
            "a..b",
            ".a",
            "a/..b",
        ];
        for path in valid {
            assert!(validate_path(path).is_ok(), "{path}");
        }
        let long_name = "a".repeat(256);
        let long_path = "a/".repeat(2049);
        let invalid = [
            ("", "invalid path: must not be empty: \"\""),
            (
                "/absolute",
                "invalid path: must be relative path: /absolute",
            ),
            ("..", "invalid path: must not contain '..': .."),
            ("../x", "invalid path: must not contain '..': ../x"),
            (
                "a/../../b",
                "invalid path: must not contain '..': a/../../b",
            ),
            ("..data", "invalid path: must not start with '..': ..data"),
            (
                "..dot/file",
                "invalid path: must not start with '..': ..dot/file",
            ),
            (
                long_name.as_str(),
                "invalid path: filenames must be less than or equal to 255 characters",
            ),
            (
                long_path.as_str(),
                "invalid path: must be less than or equal to 4096 characters",
            ),
        ];
        for (path, message) in invalid {
            assert_eq!(validate_path(path).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn paths_to_remove_keep_parents_of_what_stays() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path();
        std::fs::create_dir_all(old.join("foo/bar")).unwrap();
        std::fs::create_dir_all(old.join("gone/deep")).unwrap();
        std::fs::write(old.join("foo/bar/a.txt"), "").unwrap();
        std::fs::write(old.join("foo/b.txt"), "").unwrap();
        std::fs::write(old.join("gone/deep/c.txt"), "").unwrap();
        std::fs::write(old.join("top.txt"), "").unwrap();
        let remove = paths_to_remove(&payload(&[("foo/bar/a.txt", "")]), old).unwrap();
        let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
        assert_eq!(
            remove,
            [
                "foo/b.txt",
                "gone",
                "gone/deep",
                "gone/deep/c.txt",
                "top.txt"
            ]
        );
    }

    #[test]
    fn a_payload_is_written_behind_links_with_its_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut files = payload(&[("foo", "foo"), ("bar/zab.txt", "zab"), ("a/b/c/d", "d")]);
        files.insert("secret".into(), file("s", 0o400));
        assert!(AtomicWriter::new(root).write(&files, |_| {}).unwrap());
        assert_eq!(
            visible(root),
            expected(&[
                ("a/b/c/d", "d"),
                ("bar/zab.txt", "zab"),
                ("foo", "foo"),
                ("secret", "s")
            ])
        );
        assert_eq!(
            std::fs::read_link(root.join("foo")).unwrap(),
            Path::new("..data/foo")
        );
        assert_eq!(
            std::fs::read_link(root.join("bar")).unwrap(),
            Path::new("..data/bar")
        );
        let ts = std::fs::read_link(root.join(DATA_DIR)).unwrap();
        assert!(ts.to_string_lossy().starts_with("..20"), "{ts:?}");
        let mode = |p: &str| std::fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("secret"), 0o400);
        assert_eq!(mode("foo"), 0o644);
        assert_eq!(mode("bar"), 0o755);
        assert_eq!(
            std::fs::metadata(root.join(&ts)).unwrap().mode() & 0o7777,
            0o755
        );
    }

    #[test]
    fn updates_swap_the_data_dir_and_prune_what_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let writer = AtomicWriter::new(root);
        let steps: [&[(&str, &str)]; 4] = [
            &[("foo", "foo"), ("bar/zab.txt", "zab"), ("old", "x")],
            &[("foo", "foo2"), ("bar/zab.txt", "zab")],
            &[("foo", "foo2"), ("bar/new.txt", "new"), ("baz", "b")],
            &[("baz", "b")],
        ];
        for step in steps {
            assert!(writer.write(&payload(step), |_| {}).unwrap());
            assert_eq!(visible(root), expected(step));
            assert_eq!(hidden_dirs(root).len(), 1, "one timestamped dir");
        }
    }

    #[test]
    fn an_unchanged_payload_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let writer = AtomicWriter::new(root);
        let files = payload(&[("foo", "foo"), ("bar/zab.txt", "zab")]);
        let mut perms_runs = 0;
        assert!(writer.write(&files, |_| perms_runs += 1).unwrap());
        let before = std::fs::read_link(root.join(DATA_DIR)).unwrap();
        // A lost user-visible link is put back without a new version.
        std::fs::remove_file(root.join("foo")).unwrap();
        assert!(!writer.write(&files, |_| perms_runs += 1).unwrap());
        assert_eq!(std::fs::read_link(root.join(DATA_DIR)).unwrap(), before);
        assert_eq!(perms_runs, 1);
        assert_eq!(
            visible(root),
            expected(&[("bar/zab.txt", "zab"), ("foo", "foo")])
        );
    }

    #[test]
    fn an_invalid_payload_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        std::fs::create_dir(&root).unwrap();
        let files = payload(&[("ok", "x"), ("../escape", "x")]);
        let err = AtomicWriter::new(&root).write(&files, |_| {}).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid path: must not contain '..': ../escape"
        );
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn a_stale_temporary_link_does_not_block_the_swap() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::os::unix::fs::symlink("..nowhere", root.join(NEW_DATA_DIR)).unwrap();
        AtomicWriter::new(root)
            .write(&payload(&[("a", "1")]), |_| {})
            .unwrap();
        assert_eq!(visible(root), expected(&[("a", "1")]));
        assert!(std::fs::symlink_metadata(root.join(NEW_DATA_DIR)).is_err());
    }
}
