//! emptyDirs with medium Memory: a tmpfs mounted on the host at the volume's path, as kubelet
//! mounts one under its pods directory. On the host, rather than in the shim's mount
//! namespace, the content lives as long as the pod, not as long as one sandbox: a shim
//! re-created after it died finds the volume as it was. The pod's data directory is closed to
//! other users, so the mount is reachable only through the pod's containers.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::perms;

/// Mounts the volume's tmpfs at `path` unless it is already mounted there (the sandbox is
/// being re-created, or the agent restarted): its size is sizeLimit, and with an fsGroup its
/// root belongs to that group, setgid, as kubelet's ownership walk leaves an emptyDir.
pub fn mount_once(path: &Path, size: Option<u64>, gid: Option<u32>) -> nix::Result<()> {
    if is_mount_point(path) {
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options(size, gid).as_str()),
    )
}

fn options(size: Option<u64>, gid: Option<u32>) -> String {
    let mut options = match gid {
        Some(gid) => format!(
            "mode={:04o},gid={gid}",
            perms::EMPTY_DIR | super::ownership::SETGID
        ),
        None => format!("mode={:04o}", perms::EMPTY_DIR),
    };
    if let Some(bytes) = size {
        options.push_str(&format!(",size={bytes}"));
    }
    options
}

/// Unmounts every mount at or below `dir`, deepest first. Detached lazily: a process of the
/// host that still has a file open there keeps it until it lets go, and `dir` can go now.
pub fn unmount_under(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else {
        return;
    };
    let mut mounts: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|point| point.starts_with(&dir))
        .collect();
    mounts.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in mounts {
        if let Err(err) = umount2(&point, MntFlags::MNT_DETACH) {
            tracing::warn!(path = %point.display(), %err, "unmounting a pod volume");
        }
    }
}

fn is_mount_point(path: &Path) -> bool {
    path.canonicalize()
        .is_ok_and(|path| mount_points().contains(&path))
}

/// The mount points of the agent's mount namespace, from /proc/self/mountinfo.
fn mount_points() -> Vec<PathBuf> {
    let table = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    table
        .split(|&byte| byte == b'\n')
        .filter_map(|line| line.split(|&byte| byte == b' ').nth(4))
        .map(unescape)
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as octal escapes (`\040`).
pub(crate) fn unescape(field: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|_| field[i] == b'\\')
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        let unescaped = |field: &str| unescape(field.as_bytes());
        assert_eq!(
            unescaped(r"/tmp/a\040b\011c\134d"),
            Path::new("/tmp/a b\tc\\d")
        );
        assert_eq!(unescaped("/plain/path"), Path::new("/plain/path"));
        assert_eq!(unescaped(r"/odd\04"), Path::new(r"/odd\04"));
        assert_eq!(
            unescaped(r"/latin\351"),
            Path::new(OsStr::from_bytes(b"/latin\xe9"))
        );
    }

    #[test]
    fn options_carry_size_and_fs_group() {
        assert_eq!(options(None, None), "mode=0777");
        assert_eq!(
            options(Some(1 << 20), Some(2000)),
            "mode=2777,gid=2000,size=1048576"
        );
    }

    #[test]
    fn a_tmpfs_is_mounted_once_and_unmounted_from_above() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("pod dir/volumes/mem");
        std::fs::create_dir_all(&volume).unwrap();
        mount_once(&volume, Some(1 << 20), None).unwrap();
        std::fs::write(volume.join("data"), "kept").unwrap();
        mount_once(&volume, Some(1 << 20), None).unwrap();
        assert_eq!(
            std::fs::read_to_string(volume.join("data")).unwrap(),
            "kept"
        );
        unmount_under(&dir.path().join("pod dir"));
        assert!(!is_mount_point(&volume));
        assert!(!volume.join("data").exists());
    }
}
