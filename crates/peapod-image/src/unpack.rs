//! Extracts one layer tar (plain, gzip or zstd) into a directory in overlayfs form, without
//! ever writing outside it, and computes the layer's diff_id.
//!
//! OCI whiteouts become overlayfs ones: `.wh.<name>` → character device 0:0,
//! `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory. The destination must be
//! private to the caller while extracting: path checks are done with `lstat` and then acted
//! on by path, which is only race-free when nobody else changes the tree.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::compression::{decompress, CompressionError};
use crate::digest::{Digest, HashingReader};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";
/// Overlay metadata must only come from our own whiteout translation, never from a layer.
const RESERVED_XATTR_PREFIX: &str = "trusted.overlay.";

/// Why a layer could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(transparent)]
    Compression(#[from] CompressionError),
    #[error("reading layer tar: {0}")]
    Read(#[source] io::Error),
    #[error("entry {entry:?} has an absolute path")]
    AbsolutePath { entry: PathBuf },
    #[error("entry {entry:?} climbs out with '..'")]
    ParentTraversal { entry: PathBuf },
    #[error("entry {entry:?} goes through symlink {component:?}")]
    ThroughSymlink { entry: PathBuf, component: PathBuf },
    #[error("entry {entry:?} goes through non-directory {component:?}")]
    NotADirectory { entry: PathBuf, component: PathBuf },
    #[error("hard link {entry:?} points outside the layer or at nothing: {target:?}")]
    HardlinkOutside { entry: PathBuf, target: PathBuf },
    #[error("entry {entry:?} has unsupported type {kind}")]
    UnsupportedEntry { entry: PathBuf, kind: String },
    #[error("entry {entry:?}: invalid whiteout name")]
    InvalidWhiteout { entry: PathBuf },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn nix_err(path: &Path) -> impl FnOnce(nix::Error) -> UnpackError + '_ {
    move |errno| UnpackError::Io {
        path: path.to_path_buf(),
        source: io::Error::from(errno),
    }
}

/// Extracts the (possibly compressed) layer tar read from `reader` into `dest`, an existing
/// empty directory, and returns the sha256 of the uncompressed tar (the diff_id).
pub(crate) fn unpack(reader: impl Read, dest: &Path) -> Result<Digest, UnpackError> {
    let mut stream = HashingReader::new(decompress(reader)?);
    let mut dir_times = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut stream);
        for entry in archive.entries().map_err(UnpackError::Read)? {
            let entry = entry.map_err(UnpackError::Read)?;
            extract_entry(entry, dest, &mut dir_times)?;
        }
    }
    // Directory mtimes last: creating their children would change them again.
    for (path, mtime) in dir_times.iter().rev() {
        set_mtime(path, *mtime)?;
    }
    let (diff_id, _) = stream.finish().map_err(UnpackError::Read)?;
    Ok(diff_id)
}

/// The components of an archive path, refusing anything that could leave the layer.
fn clean_path(raw: &Path) -> Result<Vec<OsString>, UnpackError> {
    let mut parts = Vec::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(UnpackError::ParentTraversal {
                    entry: raw.to_path_buf(),
                })
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(UnpackError::AbsolutePath {
                    entry: raw.to_path_buf(),
                })
            }
        }
    }
    Ok(parts)
}

/// Walks `parts` below `dest`, checking every step is a real directory (never a symlink);
/// missing directories are created when `create` is set.
fn walk_dirs(
    dest: &Path,
    parts: &[OsString],
    entry: &Path,
    create: bool,
) -> Result<PathBuf, UnpackError> {
    let mut current = dest.to_path_buf();
    for part in parts {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(UnpackError::ThroughSymlink {
                    entry: entry.to_path_buf(),
                    component: current,
                })
            }
            Ok(_) => {
                return Err(UnpackError::NotADirectory {
                    entry: entry.to_path_buf(),
                    component: current,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&current).map_err(io_err(&current))?;
                fs::set_permissions(&current, fs::Permissions::from_mode(0o755))
                    .map_err(io_err(&current))?;
            }
            Err(e) => return Err(io_err(&current)(e)),
        }
    }
    Ok(current)
}

fn extract_entry<R: Read>(
    mut entry: tar::Entry<'_, R>,
    dest: &Path,
    dir_times: &mut Vec<(PathBuf, TimeSpec)>,
) -> Result<(), UnpackError> {
    let kind = entry.header().entry_type();
    if kind.is_pax_global_extensions()
        || kind.is_pax_local_extensions()
        || kind.is_gnu_longname()
        || kind.is_gnu_longlink()
    {
        return Ok(());
    }
    let raw = entry.path().map_err(UnpackError::Read)?.into_owned();
    let parts = clean_path(&raw)?;
    let Some((name, parents)) = parts.split_last() else {
        return extract_root(&mut entry, dest, &raw, dir_times);
    };
    let parent = walk_dirs(dest, parents, &raw, true)?;
    if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        return whiteout(&parent, name, OsStr::from_bytes(hidden), &raw);
    }
    let target = parent.join(name);
    let meta = Meta::read(&mut entry)?;
    match kind {
        tar::EntryType::Directory => {
            make_dir(&target)?;
            meta.apply(&target, true)?;
            dir_times.push((target, meta.mtime));
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            clear(&target)?;
            write_file(&mut entry, &target)?;
            meta.apply(&target, true)?;
        }
        tar::EntryType::Symlink => {
            let link = entry.link_name().map_err(UnpackError::Read)?;
            let link = link.ok_or_else(|| UnpackError::UnsupportedEntry {
                entry: raw.clone(),
                kind: "symlink without target".into(),
            })?;
            clear(&target)?;
            std::os::unix::fs::symlink(&link, &target).map_err(io_err(&target))?;
            meta.apply(&target, false)?;
        }
        tar::EntryType::Link => hard_link(&mut entry, dest, &target, &raw)?,
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            clear(&target)?;
            make_node(&entry, kind, &target, &raw)?;
            meta.apply(&target, true)?;
        }
        other => {
            return Err(UnpackError::UnsupportedEntry {
                entry: raw,
                kind: format!("{other:?}"),
            })
        }
    }
    Ok(())
}

/// `./` itself: only a directory entry makes sense, and it sets the layer root's metadata.
fn extract_root<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dest: &Path,
    raw: &Path,
    dir_times: &mut Vec<(PathBuf, TimeSpec)>,
) -> Result<(), UnpackError> {
    if entry.header().entry_type() != tar::EntryType::Directory {
        return Err(UnpackError::UnsupportedEntry {
            entry: raw.to_path_buf(),
            kind: "non-directory layer root".into(),
        });
    }
    let meta = Meta::read(entry)?;
    meta.apply(dest, true)?;
    dir_times.push((dest.to_path_buf(), meta.mtime));
    Ok(())
}

fn whiteout(parent: &Path, name: &OsStr, hidden: &OsStr, raw: &Path) -> Result<(), UnpackError> {
    if name == OPAQUE_MARKER {
        return xattr::set(parent, OPAQUE_XATTR, b"y").map_err(io_err(parent));
    }
    if hidden.is_empty() || hidden == "." || hidden == ".." {
        return Err(UnpackError::InvalidWhiteout {
            entry: raw.to_path_buf(),
        });
    }
    let target = parent.join(hidden);
    clear(&target)?;
    mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(nix_err(&target))
}

/// Removes whatever is at `target` (a later tar entry replaces an earlier one).
fn clear(target: &Path) -> Result<(), UnpackError> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(target).map_err(io_err(target)),
        Ok(_) => fs::remove_file(target).map_err(io_err(target)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(target)(e)),
    }
}

fn make_dir(target: &Path) -> Result<(), UnpackError> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => {
            clear(target)?;
            fs::create_dir(target).map_err(io_err(target))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(target).map_err(io_err(target))
        }
        Err(e) => Err(io_err(target)(e)),
    }
}

fn write_file(reader: &mut impl Read, target: &Path) -> Result<(), UnpackError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(io_err(target))?;
    // Not io::copy: a full disk must be reported as a write to `target`, not a read.
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnpackError::Read(e)),
        };
        file.write_all(&buffer[..read]).map_err(io_err(target))?;
    }
}

fn hard_link<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dest: &Path,
    target: &Path,
    raw: &Path,
) -> Result<(), UnpackError> {
    let outside = |link: &Path| UnpackError::HardlinkOutside {
        entry: raw.to_path_buf(),
        target: link.to_path_buf(),
    };
    let link = entry
        .link_name()
        .map_err(UnpackError::Read)?
        .ok_or_else(|| outside(Path::new("")))?
        .into_owned();
    let parts = clean_path(&link).map_err(|_| outside(&link))?;
    let Some((name, parents)) = parts.split_last() else {
        return Err(outside(&link));
    };
    let source = walk_dirs(dest, parents, raw, false)
        .map_err(|_| outside(&link))?
        .join(name);
    match fs::symlink_metadata(&source) {
        Ok(meta) if !meta.is_dir() => {}
        _ => return Err(outside(&link)),
    }
    if source == target {
        return Ok(());
    }
    clear(target)?;
    // std's hard_link uses linkat without AT_SYMLINK_FOLLOW: a link to a symlink stays one.
    fs::hard_link(&source, target).map_err(io_err(target))
}

fn make_node<R: Read>(
    entry: &tar::Entry<'_, R>,
    kind: tar::EntryType,
    target: &Path,
    raw: &Path,
) -> Result<(), UnpackError> {
    let header = entry.header();
    let number = |v: io::Result<Option<u32>>| v.map(|n| n.unwrap_or(0)).map_err(UnpackError::Read);
    let (major, minor) = (
        number(header.device_major())?,
        number(header.device_minor())?,
    );
    let flag = match kind {
        tar::EntryType::Char => SFlag::S_IFCHR,
        tar::EntryType::Block => SFlag::S_IFBLK,
        tar::EntryType::Fifo => SFlag::S_IFIFO,
        other => {
            return Err(UnpackError::UnsupportedEntry {
                entry: raw.to_path_buf(),
                kind: format!("{other:?}"),
            })
        }
    };
    mknod(
        target,
        flag,
        Mode::from_bits_truncate(0o600),
        makedev(major.into(), minor.into()),
    )
    .map_err(nix_err(target))
}

/// Ownership, mode, xattrs and mtime of an entry, honouring PAX overrides.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, UnpackError> {
        let header = entry.header();
        let field = |v: io::Result<u64>| v.map_err(UnpackError::Read);
        let mut uid = field(header.uid())?;
        let mut gid = field(header.gid())?;
        let mode = header.mode().map_err(UnpackError::Read)? & 0o7777;
        let mut mtime = TimeSpec::new(field(header.mtime())? as i64, 0);
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry.pax_extensions().map_err(UnpackError::Read)? {
            for extension in extensions {
                let extension = extension.map_err(UnpackError::Read)?;
                let Ok(key) = extension.key() else { continue };
                let value = extension.value_bytes();
                let text = std::str::from_utf8(value).ok();
                match key {
                    "uid" => uid = text.and_then(|t| t.parse().ok()).unwrap_or(uid),
                    "gid" => gid = text.and_then(|t| t.parse().ok()).unwrap_or(gid),
                    "mtime" => mtime = text.and_then(parse_pax_time).unwrap_or(mtime),
                    _ => {
                        if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                            if !name.starts_with(RESERVED_XATTR_PREFIX) {
                                xattrs.push((name.into(), value.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        let id = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(Meta {
            uid: id(uid),
            gid: id(gid),
            mode,
            mtime,
            xattrs,
        })
    }

    /// chown before chmod (chown clears set-id bits) and before xattrs (it clears
    /// security.capability); symlinks have no mode of their own.
    fn apply(&self, target: &Path, has_mode: bool) -> Result<(), UnpackError> {
        std::os::unix::fs::lchown(target, Some(self.uid), Some(self.gid))
            .map_err(io_err(target))?;
        if has_mode {
            fs::set_permissions(target, fs::Permissions::from_mode(self.mode))
                .map_err(io_err(target))?;
        }
        for (name, value) in &self.xattrs {
            match xattr::set(target, name, value) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    tracing::warn!(path = %target.display(), xattr = ?name, "xattr not supported here, skipped");
                }
                Err(e) => return Err(io_err(target)(e)),
            }
        }
        set_mtime(target, self.mtime)
    }
}

fn set_mtime(target: &Path, mtime: TimeSpec) -> Result<(), UnpackError> {
    utimensat(
        nix::fcntl::AT_FDCWD,
        target,
        &mtime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(nix_err(target))
}

/// PAX times are decimal seconds with an optional fraction, e.g. `1700000000.123456789`.
fn parse_pax_time(text: &str) -> Option<TimeSpec> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        digits.parse::<i64>().ok()? * 10_i64.pow(9 - digits.len() as u32)
    };
    Some(TimeSpec::new(secs, nanos))
}

/// Reads `trusted.overlay.opaque` the way overlayfs does.
pub(crate) fn is_opaque(dir: &Path) -> bool {
    matches!(xattr::get(dir, OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

/// True for an overlayfs whiteout: a character device with device number 0:0.
pub(crate) fn is_whiteout(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Opens a file for reading without following a final symlink.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// A tar built entry by entry, with raw names so tests can write hostile paths.
    pub(crate) struct TarBuilder {
        builder: tar::Builder<Vec<u8>>,
    }

    impl TarBuilder {
        pub(crate) fn new() -> Self {
            TarBuilder {
                builder: tar::Builder::new(Vec::new()),
            }
        }

        fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_size(size);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1_600_000_000);
            header
        }

        fn append(&mut self, mut header: tar::Header, path: &str, data: &[u8]) -> &mut Self {
            // Bypass tar-rs' own path checks so hostile names reach the unpacker.
            let name = &mut header.as_old_mut().name;
            name.fill(0);
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            self.builder.append(&header, data).unwrap();
            self
        }

        pub(crate) fn dir(&mut self, path: &str) -> &mut Self {
            self.append(Self::header(tar::EntryType::Directory, 0o755, 0), path, &[])
        }

        pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
            let header = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
            self.append(header, path, data)
        }

        pub(crate) fn file_owned(
            &mut self,
            path: &str,
            data: &[u8],
            uid: u64,
            mode: u32,
        ) -> &mut Self {
            let mut header = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
            header.set_uid(uid);
            header.set_gid(uid + 1);
            self.append(header, path, data)
        }

        pub(crate) fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> &mut Self {
            let mut header = Self::header(kind, 0o777, 0);
            let link = &mut header.as_old_mut().linkname;
            link.fill(0);
            link[..target.len()].copy_from_slice(target.as_bytes());
            self.append(header, path, &[])
        }

        pub(crate) fn device(&mut self, path: &str, major: u32, minor: u32) -> &mut Self {
            let mut header = Self::header(tar::EntryType::Char, 0o666, 0);
            header.set_device_major(major).unwrap();
            header.set_device_minor(minor).unwrap();
            self.append(header, path, &[])
        }

        pub(crate) fn file_with_xattr(
            &mut self,
            path: &str,
            xattr: &str,
            value: &[u8],
        ) -> &mut Self {
            let key = format!("{PAX_XATTR_PREFIX}{xattr}");
            self.builder
                .append_pax_extensions([(key.as_str(), value)])
                .unwrap();
            self.file(path, b"x")
        }

        pub(crate) fn finish(&mut self) -> Vec<u8> {
            let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
            builder.into_inner().unwrap()
        }
    }

    struct Sandbox {
        _tmp: tempfile::TempDir,
        layer: PathBuf,
        outside: PathBuf,
    }

    /// A layer dir next to an "outside" dir that nothing may ever touch.
    fn sandbox() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        let outside = tmp.path().join("outside");
        fs::create_dir(&layer).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"keep").unwrap();
        Sandbox {
            _tmp: tmp,
            layer,
            outside,
        }
    }

    fn assert_outside_untouched(s: &Sandbox) {
        let names: Vec<_> = fs::read_dir(&s.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsString::from("secret")]);
        assert_eq!(fs::read(s.outside.join("secret")).unwrap(), b"keep");
    }

    #[test]
    fn regular_files_dirs_symlinks_and_metadata() {
        let s = sandbox();
        let tar = TarBuilder::new()
            .dir("./")
            .dir("etc/")
            .file("etc/hostname", b"pea\n")
            .file_owned("usr/bin/tool", b"#!/bin/sh\n", 1000, 0o4755)
            .link(tar::EntryType::Symlink, "bin", "usr/bin")
            .link(tar::EntryType::Link, "usr/bin/tool2", "usr/bin/tool")
            .device("dev/null", 1, 3)
            .file_with_xattr("cap", "user.peapod", b"v1")
            .finish();
        let diff_id = unpack(&tar[..], &s.layer).unwrap();
        assert_eq!(diff_id, Digest::of(&tar));

        assert_eq!(fs::read(s.layer.join("etc/hostname")).unwrap(), b"pea\n");
        let tool = fs::symlink_metadata(s.layer.join("usr/bin/tool")).unwrap();
        assert_eq!(
            (tool.uid(), tool.gid(), tool.mode() & 0o7777),
            (1000, 1001, 0o4755)
        );
        assert_eq!(tool.mtime(), 1_600_000_000);
        assert_eq!(tool.nlink(), 2);
        assert_eq!(
            fs::read_link(s.layer.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        let null = fs::symlink_metadata(s.layer.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), makedev(1, 3));
        assert_eq!(
            xattr::get(s.layer.join("cap"), "user.peapod")
                .unwrap()
                .as_deref(),
            Some(&b"v1"[..])
        );
        let etc = fs::metadata(s.layer.join("etc")).unwrap();
        assert_eq!(etc.mtime(), 1_600_000_000);
    }

    #[test]
    fn whiteouts_and_opaque_dirs() {
        let s = sandbox();
        let tar = TarBuilder::new()
            .dir("etc/")
            .file("etc/.wh.motd", b"")
            .dir("var/cache/")
            .file("var/cache/.wh..wh..opq", b"")
            .file(".wh.toplevel", b"")
            .finish();
        unpack(&tar[..], &s.layer).unwrap();
        let motd = fs::symlink_metadata(s.layer.join("etc/motd")).unwrap();
        assert!(is_whiteout(&motd));
        assert!(is_whiteout(
            &fs::symlink_metadata(s.layer.join("toplevel")).unwrap()
        ));
        assert!(!s.layer.join("etc/.wh.motd").exists());
        assert!(is_opaque(&s.layer.join("var/cache")));
        assert!(!is_opaque(&s.layer.join("var")));
        assert!(fs::read_dir(s.layer.join("var/cache"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn compressed_layers_hash_the_uncompressed_tar() {
        let s = sandbox();
        let tar = TarBuilder::new().file("a", b"1").finish();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        assert_eq!(unpack(&zst[..], &s.layer).unwrap(), Digest::of(&tar));
        assert_eq!(fs::read(s.layer.join("a")).unwrap(), b"1");
    }

    #[test]
    fn parent_traversal_refused() {
        let s = sandbox();
        let tar = TarBuilder::new().file("../outside/evil", b"x").finish();
        let err = unpack(&tar[..], &s.layer).unwrap_err();
        assert!(matches!(err, UnpackError::ParentTraversal { .. }), "{err}");
        assert_outside_untouched(&s);
    }

    #[test]
    fn absolute_path_refused() {
        let s = sandbox();
        let evil = format!("{}/evil", s.outside.display());
        let tar = TarBuilder::new().file(&evil, b"x").finish();
        let err = unpack(&tar[..], &s.layer).unwrap_err();
        assert!(matches!(err, UnpackError::AbsolutePath { .. }), "{err}");
        assert_outside_untouched(&s);
    }

    #[test]
    fn write_through_symlink_refused() {
        let s = sandbox();
        let tar = TarBuilder::new()
            .link(
                tar::EntryType::Symlink,
                "escape",
                s.outside.to_str().unwrap(),
            )
            .file("escape/evil", b"x")
            .finish();
        let err = unpack(&tar[..], &s.layer).unwrap_err();
        assert!(matches!(err, UnpackError::ThroughSymlink { .. }), "{err}");
        assert_outside_untouched(&s);
    }

    #[test]
    fn overwriting_a_symlink_replaces_it_instead_of_following() {
        let s = sandbox();
        let secret = s.outside.join("secret");
        let tar = TarBuilder::new()
            .link(tar::EntryType::Symlink, "passwd", secret.to_str().unwrap())
            .file("passwd", b"overwritten")
            .finish();
        unpack(&tar[..], &s.layer).unwrap();
        assert_eq!(fs::read(s.layer.join("passwd")).unwrap(), b"overwritten");
        assert!(!fs::symlink_metadata(s.layer.join("passwd"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_outside_untouched(&s);
    }

    #[test]
    fn hardlink_to_outside_refused() {
        for target in ["../outside/secret", "/etc/passwd", "missing", "sym/secret"] {
            let s = sandbox();
            let tar = TarBuilder::new()
                .link(tar::EntryType::Symlink, "sym", s.outside.to_str().unwrap())
                .link(tar::EntryType::Link, "stolen", target)
                .finish();
            let err = unpack(&tar[..], &s.layer).unwrap_err();
            assert!(
                matches!(err, UnpackError::HardlinkOutside { .. }),
                "{target}: {err}"
            );
            assert!(!s.layer.join("stolen").exists());
            assert_outside_untouched(&s);
        }
    }

    #[test]
    fn overlay_xattrs_from_the_tar_are_ignored() {
        let s = sandbox();
        let tar = TarBuilder::new()
            .file_with_xattr("f", "trusted.overlay.redirect", b"/etc")
            .finish();
        unpack(&tar[..], &s.layer).unwrap();
        assert_eq!(
            xattr::get(s.layer.join("f"), "trusted.overlay.redirect").unwrap(),
            None
        );
    }

    #[test]
    fn whiteouts_of_dot_and_dot_dot_refused() {
        for name in [".wh..", ".wh...", ".wh.", "sub/.wh.."] {
            let s = sandbox();
            let tar = TarBuilder::new().file(name, b"").finish();
            let err = unpack(&tar[..], &s.layer).unwrap_err();
            assert!(
                matches!(err, UnpackError::InvalidWhiteout { .. }),
                "{name}: {err}"
            );
            assert_outside_untouched(&s);
        }
    }

    #[test]
    fn a_later_entry_replaces_an_earlier_one() {
        let s = sandbox();
        let tar = TarBuilder::new()
            .dir("d2f/")
            .file("d2f/inner", b"x")
            .file("d2f", b"file")
            .file("f2d", b"file")
            .dir("f2d/")
            .file("orig", b"orig")
            .link(tar::EntryType::Link, "linked", "orig")
            .file("linked", b"new")
            .finish();
        unpack(&tar[..], &s.layer).unwrap();
        assert_eq!(fs::read(s.layer.join("d2f")).unwrap(), b"file");
        assert!(fs::symlink_metadata(s.layer.join("f2d")).unwrap().is_dir());
        // The link is unlinked before the new file is written, not written through.
        assert_eq!(fs::read(s.layer.join("orig")).unwrap(), b"orig");
        assert_eq!(fs::read(s.layer.join("linked")).unwrap(), b"new");
    }

    #[test]
    fn a_hard_link_to_a_symlink_stays_a_symlink() {
        let s = sandbox();
        let secret = s.outside.join("secret");
        let tar = TarBuilder::new()
            .link(tar::EntryType::Symlink, "sym", secret.to_str().unwrap())
            .link(tar::EntryType::Link, "hard", "sym")
            .finish();
        unpack(&tar[..], &s.layer).unwrap();
        let hard = fs::symlink_metadata(s.layer.join("hard")).unwrap();
        assert!(hard.file_type().is_symlink());
        assert_eq!(hard.nlink(), 2);
        assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
        assert_outside_untouched(&s);
    }

    #[test]
    fn block_devices_and_fifos_are_made() {
        let s = sandbox();
        let mut builder = TarBuilder::new();
        builder.device("tty", 5, 0);
        for (kind, name) in [
            (tar::EntryType::Block, "loop0"),
            (tar::EntryType::Fifo, "fifo"),
        ] {
            let mut header = TarBuilder::header(kind, 0o640, 0);
            header.set_device_major(7).unwrap();
            header.set_device_minor(0).unwrap();
            builder.append(header, name, &[]);
        }
        unpack(&builder.finish()[..], &s.layer).unwrap();
        let block = fs::symlink_metadata(s.layer.join("loop0")).unwrap();
        assert!(block.file_type().is_block_device());
        assert_eq!((block.rdev(), block.mode() & 0o777), (makedev(7, 0), 0o640));
        let fifo = fs::symlink_metadata(s.layer.join("fifo")).unwrap();
        assert!(fifo.file_type().is_fifo());
    }

    #[test]
    fn gnu_long_names_and_link_targets() {
        let s = sandbox();
        let name = format!("{}/file", "d".repeat(150));
        let target = "t/".repeat(100);
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = TarBuilder::header(tar::EntryType::Regular, 0o644, 2);
        builder.append_data(&mut header, &name, &b"ok"[..]).unwrap();
        let mut header = TarBuilder::header(tar::EntryType::Symlink, 0o777, 0);
        builder.append_link(&mut header, "link", &target).unwrap();
        unpack(&builder.into_inner().unwrap()[..], &s.layer).unwrap();
        assert_eq!(fs::read(s.layer.join(&name)).unwrap(), b"ok");
        assert_eq!(
            fs::read_link(s.layer.join("link")).unwrap(),
            Path::new(&target)
        );
    }

    #[test]
    fn pax_times_parse() {
        assert_eq!(parse_pax_time("12.5"), Some(TimeSpec::new(12, 500_000_000)));
        assert_eq!(parse_pax_time("7"), Some(TimeSpec::new(7, 0)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
