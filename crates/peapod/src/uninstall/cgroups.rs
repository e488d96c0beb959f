//! The agent's cgroup tree (`Paths::cgroup_parent`: its pods' and their containers' cgroups)
//! in every mounted hierarchy: the processes still in it, and its removal leaf first.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{mounts, Report, UninstallError};
use crate::paths::Paths;

/// How long a cgroup may stay busy once its processes were killed (they leave it a moment
/// after they die).
const BUSY_FOR: Duration = Duration::from_secs(2);

/// The root's tree in each hierarchy where it exists.
fn trees(paths: &Paths) -> Vec<PathBuf> {
    let parent = paths.cgroup_parent();
    let relative = parent.trim_start_matches('/');
    mounts::cgroup_hierarchies()
        .into_iter()
        .map(|hierarchy| hierarchy.join(relative))
        .filter(|tree| tree.is_dir())
        .collect()
}

/// The pids in the root's cgroups, in every hierarchy.
pub fn processes(paths: &Paths) -> Vec<i32> {
    let mut pids = Vec::new();
    for tree in trees(paths) {
        for dir in leaf_first(&tree) {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(
                procs
                    .lines()
                    .filter_map(|line| line.trim().parse::<i32>().ok()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// `dir` and every cgroup beneath it, children before their parent.
fn leaf_first(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                dirs.extend(leaf_first(&entry.path()));
            }
        }
    }
    dirs.push(dir.to_path_buf());
    dirs
}

/// Removes the root's tree from every hierarchy.
pub fn remove(paths: &Paths, report: &mut Report<'_>) {
    let trees = trees(paths);
    let mut removed = 0;
    for dir in trees.iter().flat_map(|tree| leaf_first(tree)) {
        match remove_cgroup(&dir) {
            Ok(()) => removed += 1,
            Err(err) => report.failed(err),
        }
    }
    if removed > 0 {
        report.removed(format!(
            "removed the cgroups {} from {} hierarchies ({removed} cgroups)",
            paths.cgroup_parent(),
            trees.len()
        ));
    }
}

/// rmdir, retried while the cgroup is still busy (a cgroup's files are not real files).
fn remove_cgroup(dir: &Path) -> Result<(), UninstallError> {
    let deadline = Instant::now() + BUSY_FOR;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(UninstallError::Cgroup {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}
