//! The agent's directories: its run and data directories whole, and the log directories of
//! its pods (`var/log/pods` is kubelet's layout and may hold other pods' logs: it goes only
//! once empty). Nothing is removed while something is still mounted beneath it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{mounts, Report, UninstallError};
use crate::paths::Paths;

/// Every directory the agent writes beneath.
pub fn agent_dirs(paths: &Paths) -> Vec<PathBuf> {
    vec![paths.run_dir(), paths.data_dir(), paths.pod_logs_root()]
}

/// Removes the log directories of `pods`, then the run and data directories.
pub fn remove(paths: &Paths, pods: &BTreeSet<String>, report: &mut Report<'_>) {
    for dir in pod_log_dirs(paths, pods) {
        remove_tree(&dir, report);
    }
    remove_if_empty(&paths.pod_logs_root(), report);
    remove_tree(&paths.run_dir(), report);
    remove_tree(&paths.data_dir(), report);
}

/// `NAMESPACE_NAME_UID` directories of the logs root whose uid is one of `pods`.
fn pod_log_dirs(paths: &Paths, pods: &BTreeSet<String>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(paths.pod_logs_root()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.rsplit_once('_')
                .is_some_and(|(_, uid)| pods.contains(uid))
        })
        .map(|entry| entry.path())
        .collect()
}

fn remove_tree(dir: &Path, report: &mut Report<'_>) {
    if std::fs::symlink_metadata(dir).is_err() {
        return;
    }
    let mounted = mounts::mounted_beneath(dir);
    if !mounted.is_empty() {
        report.failed(UninstallError::StillMounted {
            dir: dir.to_path_buf(),
            mounts: mounted.iter().map(|p| p.display().to_string()).collect(),
        });
        return;
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => report.removed(format!("removed {}", dir.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => report.failed(UninstallError::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn remove_if_empty(dir: &Path, report: &mut Report<'_>) {
    match std::fs::remove_dir(dir) {
        Ok(()) => report.removed(format!("removed {}", dir.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) if err.kind() == std::io::ErrorKind::DirectoryNotEmpty => report.note(format!(
            "kept {}: it holds logs of pods this agent does not know",
            dir.display()
        )),
        Err(source) => report.failed(UninstallError::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_log_directories_of_known_pods_are_chosen() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path().to_path_buf());
        for name in ["default_web_u1", "default_db_u2", "kube-system_dns_u1x"] {
            std::fs::create_dir_all(paths.pod_logs_root().join(name)).unwrap();
        }
        let pods = BTreeSet::from(["u1".to_string()]);
        assert_eq!(
            pod_log_dirs(&paths, &pods),
            vec![paths.pod_logs_root().join("default_web_u1")]
        );
    }
}
