//! Hostile layer tarballs imported through the public API: each is refused or accepted exactly
//! as the unpacker is designed to, and nothing is ever written outside the store.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use peapod_image::{Image, ImageConfig, ImageError, ImageStore, UnpackError};
use tar::EntryType;

/// Every test's layer directory is `<tmp>/store/tmp/layer-*` while unpacking and
/// `<tmp>/store/layers/<hex>` after: three levels below `<tmp>`.
const UP_TO_TMP: &str = "../../..";

/// A tar built entry by entry with raw header bytes, so hostile names the `tar` crate's
/// own setters refuse (`..`, absolute paths) reach the unpacker unchanged.
struct Tar {
    builder: tar::Builder<Vec<u8>>,
}

impl Tar {
    fn new() -> Tar {
        Tar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_600_000_000);
        header
    }

    /// A GNU long name (`L`) or long link (`K`) record carrying `value` for the next entry.
    fn gnu_long(&mut self, kind: EntryType, value: &str) {
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        let mut header = Self::header(kind, 0o644, data.len() as u64);
        raw_field(&mut header.as_old_mut().name, "././@LongLink");
        header.set_cksum();
        self.builder.append(&header, &data[..]).unwrap();
    }

    /// Appends an entry named `path` (and pointing at `link`), with GNU long records when
    /// either does not fit the 100-byte header fields.
    fn raw(
        &mut self,
        mut header: tar::Header,
        path: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Tar {
        if path.len() > 100 {
            self.gnu_long(EntryType::GNULongName, path);
        }
        if let Some(link) = link.filter(|l| l.len() > 100) {
            self.gnu_long(EntryType::GNULongLink, link);
        }
        let old = header.as_old_mut();
        raw_field(&mut old.name, &path[..path.len().min(100)]);
        if let Some(link) = link {
            raw_field(&mut old.linkname, &link[..link.len().min(100)]);
        }
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    fn dir(&mut self, path: &str) -> &mut Tar {
        self.raw(
            Self::header(EntryType::Directory, 0o755, 0),
            path,
            None,
            &[],
        )
    }

    fn dir_mode(&mut self, path: &str, mode: u32) -> &mut Tar {
        self.raw(Self::header(EntryType::Directory, mode, 0), path, None, &[])
    }

    fn file(&mut self, path: &str, data: &[u8]) -> &mut Tar {
        self.file_as(path, data, 0o644, (0, 0))
    }

    fn file_as(&mut self, path: &str, data: &[u8], mode: u32, owner: (u64, u64)) -> &mut Tar {
        let mut header = Self::header(EntryType::Regular, mode, data.len() as u64);
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        self.raw(header, path, None, data)
    }

    fn symlink(&mut self, path: &str, target: &str) -> &mut Tar {
        self.symlink_as(path, target, (0, 0))
    }

    fn symlink_as(&mut self, path: &str, target: &str, owner: (u64, u64)) -> &mut Tar {
        let mut header = Self::header(EntryType::Symlink, 0o777, 0);
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        self.raw(header, path, Some(target), &[])
    }

    fn hardlink(&mut self, path: &str, target: &str) -> &mut Tar {
        let header = Self::header(EntryType::Link, 0o644, 0);
        self.raw(header, path, Some(target), &[])
    }

    fn node(&mut self, kind: EntryType, path: &str, major: u32, minor: u32) -> &mut Tar {
        let mut header = Self::header(kind, 0o666, 0);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.raw(header, path, None, &[])
    }

    /// PAX records (`SCHILY.xattr.*`, `uid`, `path`, ...) for the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
        self.builder
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

fn raw_field(field: &mut [u8], value: &str) {
    field.fill(0);
    field[..value.len()].copy_from_slice(value.as_bytes());
}

/// What a host file looked like, to prove nothing wrote to, chowned, chmodded or linked it.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    content: Vec<u8>,
    mode: u32,
    owner: (u32, u32),
    nlink: u64,
    mtime: (i64, i64),
}

impl Snapshot {
    fn of(path: &Path) -> Snapshot {
        let meta = fs::symlink_metadata(path).unwrap();
        Snapshot {
            content: fs::read(path).unwrap(),
            mode: meta.mode(),
            owner: (meta.uid(), meta.gid()),
            nlink: meta.nlink(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// A store next to an empty sentinel directory and a host file that links point at.
struct Env {
    tmp: tempfile::TempDir,
    store: ImageStore,
    secret_before: Snapshot,
    passwd_before: Snapshot,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("sentinel")).unwrap();
        fs::create_dir(tmp.path().join("host")).unwrap();
        let secret = tmp.path().join("host/secret");
        fs::write(&secret, b"keep").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o640)).unwrap();
        let store = ImageStore::open(tmp.path().join("store")).unwrap();
        Env {
            secret_before: Snapshot::of(&secret),
            passwd_before: Snapshot::of(Path::new("/etc/passwd")),
            tmp,
            store,
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.tmp.path().join(relative)
    }

    /// An absolute path (as a tar name or link target) under the test's temp dir.
    fn abs(&self, relative: &str) -> String {
        self.path(relative).to_str().unwrap().to_string()
    }

    fn import(&self, tar: &[u8]) -> Result<Image, ImageError> {
        self.store
            .import(&mut &tar[..], "hostile:1", ImageConfig::default())
    }

    /// Imports a layer that must be accepted and returns its unpacked directory.
    fn accept(&self, tar: &[u8]) -> PathBuf {
        let image = self
            .import(tar)
            .unwrap_or_else(|e| panic!("import failed: {e}"));
        self.assert_contained();
        let mut dirs = self.store.layer_dirs(&image).unwrap();
        assert_eq!(dirs.len(), 1);
        dirs.remove(0)
    }

    /// Imports a layer that must be refused with the unpack error `expected` checks, and
    /// verifies the store is exactly as it was before.
    fn refuse(&self, tar: &[u8], expected: fn(&UnpackError) -> bool) -> UnpackError {
        let before = self.store_state();
        let err = self.import(tar).expect_err("hostile layer was accepted");
        self.assert_contained();
        assert_eq!(self.store_state(), before, "the store changed after {err}");
        match err {
            ImageError::Unpack { source, .. } if expected(&source) => source,
            other => panic!("unexpected error: {other:?}"),
        }
    }

    /// The images and the names in the store's content directories.
    fn store_state(&self) -> (Vec<Image>, Vec<BTreeSet<OsString>>) {
        let dirs = ["store/tmp", "store/layers", "store/blobs/sha256"];
        let contents = dirs.iter().map(|d| names(&self.path(d))).collect();
        (self.store.list().unwrap(), contents)
    }

    /// Nothing exists in the temp dir but the store, the empty sentinel and the untouched
    /// host file; /etc/passwd is untouched too.
    fn assert_contained(&self) {
        assert_eq!(
            names(self.tmp.path()),
            set(&["host", "sentinel", "store"]),
            "something was created next to the store"
        );
        assert_eq!(names(&self.path("sentinel")), BTreeSet::new());
        assert_eq!(names(&self.path("host")), set(&["secret"]));
        assert_eq!(Snapshot::of(&self.path("host/secret")), self.secret_before);
        assert_eq!(Snapshot::of(Path::new("/etc/passwd")), self.passwd_before);
        let mut store = set(&["blobs", "layers", "lock", "tmp"]);
        if self.path("store/index.json").exists() {
            store.insert("index.json".into());
        }
        assert_eq!(names(&self.path("store")), store);
    }
}

fn names(dir: &Path) -> BTreeSet<OsString> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<OsString> {
    items.iter().map(OsString::from).collect()
}

fn is_parent_traversal(e: &UnpackError) -> bool {
    matches!(e, UnpackError::ParentTraversal { .. })
}

fn is_absolute(e: &UnpackError) -> bool {
    matches!(e, UnpackError::AbsolutePath { .. })
}

fn is_through_symlink(e: &UnpackError) -> bool {
    matches!(e, UnpackError::ThroughSymlink { .. })
}

fn is_hardlink_outside(e: &UnpackError) -> bool {
    matches!(e, UnpackError::HardlinkOutside { .. })
}

fn is_invalid_whiteout(e: &UnpackError) -> bool {
    matches!(e, UnpackError::InvalidWhiteout { .. })
}

fn is_name_too_long(e: &UnpackError) -> bool {
    matches!(e, UnpackError::Io { source, .. } if source.raw_os_error() == Some(libc::ENAMETOOLONG))
}

fn meta(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn parent_traversal_is_refused() {
    let long_climb = format!("{}{UP_TO_TMP}/sentinel/evil", "a/".repeat(60));
    let cases: Vec<Vec<u8>> = vec![
        Tar::new()
            .file(&format!("{UP_TO_TMP}/sentinel/evil"), b"x")
            .finish(),
        Tar::new()
            .file(&format!("./a/../{UP_TO_TMP}/sentinel/evil"), b"x")
            .finish(),
        Tar::new().dir(&format!("{UP_TO_TMP}/sentinel/d/")).finish(),
        Tar::new()
            .symlink(&format!("{UP_TO_TMP}/sentinel/link"), "/")
            .finish(),
        Tar::new()
            .file(&format!("{UP_TO_TMP}/host/secret"), b"overwritten")
            .finish(),
        // A GNU long name hides the climb beyond the 100-byte header field.
        Tar::new().file("ok", b"1").file(&long_climb, b"x").finish(),
    ];
    for tar in cases {
        Env::new().refuse(&tar, is_parent_traversal);
    }
}

#[test]
fn absolute_paths_are_refused() {
    let env = Env::new();
    let cases = [
        Tar::new().file(&env.abs("sentinel/evil"), b"x").finish(),
        Tar::new()
            .dir(&format!("{}/", env.abs("sentinel/d")))
            .finish(),
        Tar::new()
            .symlink(&env.abs("sentinel/link"), "/etc/passwd")
            .finish(),
        Tar::new()
            .file(&env.abs("host/secret"), b"overwritten")
            .finish(),
        Tar::new()
            .node(EntryType::Char, &env.abs("sentinel/null"), 1, 3)
            .finish(),
    ];
    for tar in cases {
        env.refuse(&tar, is_absolute);
    }
}

#[test]
fn files_through_a_symlink_to_root_are_refused() {
    let env = Env::new();
    let through_root = format!("root{}", env.abs("sentinel/evil"));
    env.refuse(
        &Tar::new()
            .symlink("root", "/")
            .file(&through_root, b"x")
            .finish(),
        is_through_symlink,
    );
    let dir_through_root = format!("root{}/", env.abs("sentinel/d"));
    env.refuse(
        &Tar::new()
            .symlink("root", "/")
            .dir(&dir_through_root)
            .finish(),
        is_through_symlink,
    );
}

#[test]
fn files_through_a_symlink_to_parent_dirs_are_refused() {
    let env = Env::new();
    env.refuse(
        &Tar::new()
            .symlink("up", UP_TO_TMP)
            .file("up/sentinel/evil", b"x")
            .finish(),
        is_through_symlink,
    );
    env.refuse(
        &Tar::new()
            .dir("d/")
            .symlink("d/up", &format!("../{UP_TO_TMP}"))
            .file("d/up/host/secret", b"overwritten")
            .finish(),
        is_through_symlink,
    );
    env.refuse(
        &Tar::new()
            .symlink("up", "../..")
            .node(EntryType::Fifo, "up/fifo", 0, 0)
            .finish(),
        is_through_symlink,
    );
}

#[test]
fn symlink_chains_that_escape_are_refused() {
    let env = Env::new();
    env.refuse(
        &Tar::new()
            .symlink("a", "b")
            .symlink("b", &format!("{UP_TO_TMP}/sentinel"))
            .file("a/evil", b"x")
            .finish(),
        is_through_symlink,
    );
    env.refuse(
        &Tar::new()
            .dir("x/")
            .symlink("x/y", &format!("../{UP_TO_TMP}/sentinel"))
            .symlink("z", "x/y")
            .dir("z/d/")
            .finish(),
        is_through_symlink,
    );
    // The chain's links are created, then a whiteout through them tries to delete the host file.
    env.refuse(
        &Tar::new()
            .symlink("a", "b")
            .symlink("b", &env.abs("host"))
            .file("a/.wh.secret", b"")
            .finish(),
        is_through_symlink,
    );
}

#[test]
fn escaping_symlinks_themselves_are_kept_verbatim() {
    let env = Env::new();
    let secret = env.abs("host/secret");
    let layer = env.accept(
        &Tar::new()
            .symlink("root", "/")
            .symlink("up", UP_TO_TMP)
            .symlink("secret", &secret)
            .symlink("chain", "up/sentinel")
            .finish(),
    );
    for (name, target) in [
        ("root", "/"),
        ("up", UP_TO_TMP),
        ("secret", secret.as_str()),
        ("chain", "up/sentinel"),
    ] {
        assert_eq!(fs::read_link(layer.join(name)).unwrap(), Path::new(target));
    }
}

#[test]
fn hardlinks_outside_the_layer_are_refused() {
    let env = Env::new();
    let secret = env.abs("host/secret");
    let targets = [
        "/etc/passwd",
        secret.as_str(),
        &format!("{UP_TO_TMP}/host/secret"),
        "up/host/secret",
        "missing",
        "dir",
        "",
    ];
    for target in targets {
        let tar = Tar::new()
            .symlink("up", UP_TO_TMP)
            .dir("dir/")
            .hardlink("stolen", target)
            .finish();
        env.refuse(&tar, is_hardlink_outside);
    }
}

#[test]
fn a_hardlink_to_an_escaping_symlink_links_the_symlink_not_its_target() {
    let env = Env::new();
    let secret = env.abs("host/secret");
    let layer = env.accept(
        &Tar::new()
            .symlink("s", &secret)
            .hardlink("h", "s")
            .symlink("p", "/etc/passwd")
            .hardlink("q", "p")
            .finish(),
    );
    let (s, h) = (meta(&layer.join("s")), meta(&layer.join("h")));
    assert!(h.file_type().is_symlink());
    assert_eq!((h.ino(), h.nlink()), (s.ino(), 2));
    assert_eq!(fs::read_link(layer.join("h")).unwrap(), Path::new(&secret));
    assert!(meta(&layer.join("q")).file_type().is_symlink());

    // A later entry through the linked symlink is still refused.
    env.refuse(
        &Tar::new()
            .symlink("s", &env.abs("host"))
            .hardlink("h", "s")
            .file("h/secret", b"overwritten")
            .finish(),
        is_through_symlink,
    );
}

#[test]
fn whiteouts_of_dot_dot_and_dot_are_refused() {
    let env = Env::new();
    for name in [".wh...", ".wh..", ".wh.", "a/.wh...", "a/b/.wh.."] {
        env.refuse(&Tar::new().file(name, b"").finish(), is_invalid_whiteout);
    }
    env.refuse(
        &Tar::new()
            .file(&format!("{UP_TO_TMP}/host/.wh.secret"), b"")
            .finish(),
        is_parent_traversal,
    );
    env.refuse(
        &Tar::new().file(&env.abs("host/.wh.secret"), b"").finish(),
        is_absolute,
    );
}

#[test]
fn opaque_marker_at_the_root_marks_the_layer_root() {
    for marker in [".wh..wh..opq", "./.wh..wh..opq"] {
        let env = Env::new();
        let layer = env.accept(&Tar::new().file("a", b"1").file(marker, b"").finish());
        assert_eq!(
            xattr::get(&layer, "trusted.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(names(&layer), set(&["a"]));
    }
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let env = Env::new();
    let layer = env.accept(&Tar::new().dir("etc/").file("etc/.wh.motd", b"").finish());
    let motd = meta(&layer.join("etc/motd"));
    assert!(motd.file_type().is_char_device());
    assert_eq!(motd.rdev(), 0);
    assert_eq!(names(&layer.join("etc")), set(&["motd"]));
}

#[test]
fn device_nodes_are_kept_as_nodes() {
    let env = Env::new();
    let layer = env.accept(
        &Tar::new()
            .dir("dev/")
            .node(EntryType::Char, "dev/null", 1, 3)
            .node(EntryType::Char, "dev/tty", 5, 0)
            .node(EntryType::Block, "dev/loop7", 7, 7)
            .node(EntryType::Fifo, "dev/fifo", 0, 0)
            .finish(),
    );
    let null = meta(&layer.join("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    assert_eq!(meta(&layer.join("dev/tty")).rdev(), libc::makedev(5, 0));
    let loop7 = meta(&layer.join("dev/loop7"));
    assert!(loop7.file_type().is_block_device());
    assert_eq!(loop7.rdev(), libc::makedev(7, 7));
    assert!(meta(&layer.join("dev/fifo")).file_type().is_fifo());
}

#[test]
fn user_xattrs_are_kept_and_overlay_xattrs_dropped() {
    let env = Env::new();
    let layer = env.accept(
        &Tar::new()
            .pax(&[("SCHILY.xattr.user.peapod", b"v1")])
            .file("f", b"x")
            .pax(&[
                ("SCHILY.xattr.user.dir", b"d"),
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ])
            .dir("d/")
            .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
            .file("r", b"x")
            .finish(),
    );
    let get = |path: &str, name: &str| xattr::get(layer.join(path), name).unwrap();
    assert_eq!(get("f", "user.peapod").as_deref(), Some(&b"v1"[..]));
    assert_eq!(get("d", "user.dir").as_deref(), Some(&b"d"[..]));
    assert_eq!(get("d", "trusted.overlay.opaque"), None);
    assert_eq!(get("r", "trusted.overlay.redirect"), None);
}

#[test]
fn ownership_is_kept() {
    let env = Env::new();
    let secret = env.abs("host/secret");
    let layer = env.accept(
        &Tar::new()
            .file_as("f", b"x", 0o644, (1000, 1001))
            .file_as("nobody", b"x", 0o644, (65534, 65534))
            .pax(&[("uid", b"3000000000"), ("gid", b"3000000001")])
            .file("big", b"x")
            .symlink_as("link", &secret, (1234, 4321))
            .finish(),
    );
    let owner = |name: &str| {
        let m = meta(&layer.join(name));
        (m.uid(), m.gid())
    };
    assert_eq!(owner("f"), (1000, 1001));
    assert_eq!(owner("nobody"), (65534, 65534));
    assert_eq!(owner("big"), (3_000_000_000, 3_000_000_001));
    // lchown: the link is owned, its target (checked by assert_contained) is not.
    assert_eq!(owner("link"), (1234, 4321));
}

#[test]
fn setuid_setgid_and_sticky_bits_are_kept() {
    let env = Env::new();
    let layer = env.accept(
        &Tar::new()
            .file_as("suid", b"x", 0o4755, (0, 0))
            .file_as("sgid", b"x", 0o2755, (0, 50))
            .file_as("both", b"x", 0o6750, (1000, 1000))
            .dir_mode("tmp/", 0o1777)
            .finish(),
    );
    let mode = |name: &str| meta(&layer.join(name)).mode() & 0o7777;
    assert_eq!(mode("suid"), 0o4755);
    assert_eq!(mode("sgid"), 0o2755);
    assert_eq!(mode("both"), 0o6750);
    assert_eq!(mode("tmp"), 0o1777);
}

#[test]
fn very_long_names_work_up_to_the_kernel_limits() {
    let env = Env::new();
    let component = "n".repeat(255);
    let deep = format!("{}/file", vec!["d".repeat(200); 5].join("/"));
    let long_target = "t/".repeat(300);
    let pax_name = format!("{}/pax", "p".repeat(150));
    let layer = env.accept(
        &Tar::new()
            .file(&component, b"255")
            .file(&deep, b"deep")
            .symlink("long-link", &long_target)
            .pax(&[("path", pax_name.as_bytes())])
            .file("placeholder", b"pax")
            .finish(),
    );
    assert_eq!(fs::read(layer.join(&component)).unwrap(), b"255");
    assert_eq!(fs::read(layer.join(&deep)).unwrap(), b"deep");
    assert_eq!(
        fs::read_link(layer.join("long-link")).unwrap(),
        Path::new(&long_target)
    );
    assert_eq!(fs::read(layer.join(&pax_name)).unwrap(), b"pax");
    assert!(!layer.join("placeholder").exists());

    env.refuse(
        &Tar::new().file(&"n".repeat(256), b"x").finish(),
        is_name_too_long,
    );
}

#[test]
fn duplicated_entries_the_later_wins() {
    let env = Env::new();
    let secret = env.abs("host/secret");
    let layer = env.accept(
        &Tar::new()
            .file("a", b"first")
            .file("a", b"second")
            .file("f2d", b"file")
            .dir("f2d/")
            .file("f2d/inner", b"x")
            .dir("d2f/")
            .file("d2f/inner", b"x")
            .file("d2f", b"file")
            .symlink("l2d", &env.abs("host"))
            .dir("l2d/")
            .symlink("l2f", &secret)
            .file("l2f", b"replaced")
            .file("orig", b"orig")
            .hardlink("h2f", "orig")
            .file("h2f", b"replaced")
            .dir_mode("mode/", 0o700)
            .dir_mode("mode/", 0o750)
            .finish(),
    );
    let read = |name: &str| fs::read(layer.join(name)).unwrap();
    assert_eq!(read("a"), b"second");
    assert_eq!(read("f2d/inner"), b"x");
    assert_eq!(read("d2f"), b"file");
    assert!(meta(&layer.join("l2d")).is_dir());
    assert_eq!(names(&layer.join("l2d")), BTreeSet::new());
    assert_eq!(read("l2f"), b"replaced");
    assert!(meta(&layer.join("l2f")).is_file());
    // The replaced hard link is unlinked first, so the file it shared keeps its content.
    assert_eq!(read("orig"), b"orig");
    assert_eq!(read("h2f"), b"replaced");
    assert_eq!(meta(&layer.join("orig")).nlink(), 1);
    assert_eq!(meta(&layer.join("mode")).mode() & 0o7777, 0o750);
}

#[test]
fn entries_under_a_regular_file_are_refused() {
    let env = Env::new();
    env.refuse(
        &Tar::new().file("f", b"x").file("f/g", b"y").finish(),
        |e| matches!(e, UnpackError::NotADirectory { .. }),
    );
}

#[test]
fn a_non_directory_layer_root_is_refused() {
    let env = Env::new();
    env.refuse(&Tar::new().file("./", b"x").finish(), |e| {
        matches!(e, UnpackError::UnsupportedEntry { .. })
    });
}

#[test]
fn truncated_and_garbage_tars_are_refused() {
    let env = Env::new();
    let whole = Tar::new().file("a", &[7; 4096]).finish();
    let truncated = &whole[..1024];
    let err = env.import(truncated).expect_err("truncated tar accepted");
    assert!(matches!(err, ImageError::Unpack { .. }), "{err}");
    env.assert_contained();
    assert!(env.store.list().unwrap().is_empty());

    let compressed_garbage = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff];
    assert!(env.import(&compressed_garbage).is_err());
    env.assert_contained();
    assert!(env.store.list().unwrap().is_empty());
}

/// Every hostile tar above, named, for the fuzzer's seed corpus; two compressed, so the
/// fuzzer starts from the gzip and zstd paths too.
fn seed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let symlink_root = Tar::new()
        .symlink("root", "/")
        .file("root/tmp/peapod-fuzz-evil", b"x")
        .finish();
    let opaque = Tar::new()
        .file("a", b"1")
        .file(".wh..wh..opq", b"")
        .finish();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, &symlink_root).unwrap();
    vec![
        ("symlink-root.tar.gz", gzip.finish().unwrap()),
        (
            "opaque-root.tar.zst",
            zstd::encode_all(&opaque[..], 3).unwrap(),
        ),
        (
            "parent-traversal.tar",
            Tar::new().file("../../../sentinel/evil", b"x").finish(),
        ),
        (
            "absolute.tar",
            Tar::new().file("/tmp/peapod-fuzz-evil", b"x").finish(),
        ),
        (
            "symlink-root.tar",
            Tar::new()
                .symlink("root", "/")
                .file("root/tmp/peapod-fuzz-evil", b"x")
                .finish(),
        ),
        (
            "symlink-chain.tar",
            Tar::new()
                .symlink("a", "b")
                .symlink("b", "../../..")
                .file("a/evil", b"x")
                .finish(),
        ),
        (
            "hardlink-outside.tar",
            Tar::new().hardlink("stolen", "/etc/passwd").finish(),
        ),
        (
            "hardlink-symlink.tar",
            Tar::new()
                .symlink("s", "../../..")
                .hardlink("h", "s")
                .file("h/evil", b"x")
                .finish(),
        ),
        (
            "whiteout-dotdot.tar",
            Tar::new().file(".wh...", b"").finish(),
        ),
        (
            "opaque-root.tar",
            Tar::new()
                .file("a", b"1")
                .file(".wh..wh..opq", b"")
                .finish(),
        ),
        (
            "devices.tar",
            Tar::new()
                .node(EntryType::Char, "null", 1, 3)
                .node(EntryType::Block, "loop", 7, 0)
                .node(EntryType::Fifo, "fifo", 0, 0)
                .finish(),
        ),
        (
            "xattrs-owners.tar",
            Tar::new()
                .pax(&[("SCHILY.xattr.user.a", b"1"), ("uid", b"3000000000")])
                .file_as("f", b"x", 0o4755, (1000, 1001))
                .finish(),
        ),
        (
            "long-names.tar",
            Tar::new()
                .file(&format!("{}/f", "d".repeat(150)), b"x")
                .symlink("l", &"t/".repeat(80))
                .finish(),
        ),
        (
            "duplicates.tar",
            Tar::new()
                .file("a", b"1")
                .dir("a/")
                .file("a/b", b"2")
                .file("a", b"3")
                .hardlink("h", "a")
                .finish(),
        ),
    ]
}

/// Regenerates the fuzzer's seed corpus:
/// `cargo test -p peapod-image --test hostile_layers -- --ignored write_fuzz_seed_corpus`.
#[test]
#[ignore = "writes fuzz/corpus/unpack_layer; run on purpose"]
fn write_fuzz_seed_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/unpack_layer");
    fs::create_dir_all(&dir).unwrap();
    for (name, tar) in seed_corpus() {
        fs::write(dir.join(name), tar).unwrap();
    }
}

#[test]
fn seed_corpus_imports_stay_contained() {
    for (name, tar) in seed_corpus() {
        let env = Env::new();
        let result = env.import(&tar);
        env.assert_contained();
        let accepted = [
            "opaque-root.tar.zst",
            "opaque-root.tar",
            "devices.tar",
            "xattrs-owners.tar",
            "long-names.tar",
            "duplicates.tar",
        ];
        assert_eq!(
            result.is_ok(),
            accepted.contains(&name),
            "{name}: {result:?}"
        );
    }
}
