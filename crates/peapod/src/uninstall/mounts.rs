//! Mounts left beneath the agent's directories (memory-backed emptyDirs live on the host;
//! anything else mounted there goes too), detached deepest first as kubelet's volume teardown
//! does, and the cgroup hierarchies the host has mounted.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

use super::{Report, UninstallError};
use crate::volume::memory::unescape;

/// One line of /proc/self/mountinfo: where, and which file system type.
struct Mount {
    point: PathBuf,
    fstype: String,
}

fn mount_table() -> Vec<Mount> {
    let table = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    table
        .split(|byte| *byte == b'\n')
        .filter_map(|line| {
            let text = String::from_utf8_lossy(line);
            let (mount, filesystem) = text.split_once(" - ")?;
            Some(Mount {
                point: unescape(mount.split(' ').nth(4)?.as_bytes()),
                fstype: filesystem.split(' ').next()?.to_string(),
            })
        })
        .collect()
}

/// Mount points strictly beneath `dir` (symbolic links in it resolved), deepest first; a
/// point mounted over twice is listed twice.
pub fn mounted_beneath(dir: &Path) -> Vec<PathBuf> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let mut points: Vec<PathBuf> = mount_table()
        .into_iter()
        .map(|mount| mount.point)
        .filter(|point| point.starts_with(&dir) && *point != dir)
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    points
}

/// Where the cgroup file systems (v1 controllers and v2) are mounted.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    mount_table()
        .into_iter()
        .filter(|mount| matches!(mount.fstype.as_str(), "cgroup" | "cgroup2"))
        .map(|mount| mount.point)
        .collect()
}

/// Detaches every mount beneath each of `dirs`.
pub fn unmount_beneath(dirs: &[PathBuf], report: &mut Report<'_>) {
    for point in dirs.iter().flat_map(|dir| mounted_beneath(dir)) {
        match umount2(&point, MntFlags::MNT_DETACH) {
            Ok(()) => report.removed(format!("unmounted {}", point.display())),
            // Detached with a mount above it, or stacked twice and listed once per layer.
            Err(nix::Error::EINVAL | nix::Error::ENOENT) => {}
            Err(source) => report.failed(UninstallError::Unmount {
                path: point,
                source,
            }),
        }
    }
}
