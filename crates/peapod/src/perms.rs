//! Who may reach the agent's state on the host. Pod specs, env values, container output and
//! writable layers are private to root, as kubelet and containerd keep theirs: these are the
//! modes, in one place, and the start-up step that gives the roots theirs, tightening an
//! installation an older agent left open to other users.
//!
//! Containers still reach their volumes, root and termination-log as any user: the kernel
//! resolves those host paths once, for root, when the shim bind-mounts them.

use std::collections::HashSet;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::paths::Paths;

/// The data root (database, images, pod volumes, writable layers): root only, as kubelet's
/// root directory (0750) and containerd's (0711) keep others out.
pub const DATA_ROOT: u32 = 0o700;
/// The runtime root: others may reach the API socket's name, as containerd's state dir (0711).
pub const RUN_ROOT: u32 = 0o711;
/// The pods' runtime state: bundles holding their env, shim sockets, generated /etc files.
pub const PODS_RUN_ROOT: u32 = 0o700;
/// kubelet's `pods` directory and each pod's directory under it.
pub const POD_DATA: u32 = 0o750;
/// kubelet's `/var/log/pods`: anyone lists the pods, nobody else reads their logs.
pub const LOG_ROOT: u32 = 0o755;
/// Each pod's log directory and each container's log file.
pub use peapod_logs::{LOG_DIR_MODE as POD_LOG_DIR, LOG_FILE_MODE as LOG_FILE};
/// The object database and its `-wal` and `-shm` files.
pub use peapod_store::DATABASE_MODE as DATABASE;
/// The API socket: root and root's group, as containerd's.
pub const SOCKET: u32 = 0o660;
/// Files only the agent reads: a bundle's config.json holds the container's env.
pub const PRIVATE_FILE: u32 = 0o600;
/// An emptyDir: every user of the pod writes it (kubelet's 0777); only the pod reaches it.
pub const EMPTY_DIR: u32 = 0o777;
/// A terminationMessagePath file: any container user writes it (kubelet's 0666); only the
/// container reaches it.
pub const TERMINATION_LOG: u32 = 0o666;
/// Directories peapod creates for hostPath volumes and subPaths, as kubelet does.
pub const HOST_PATH_DIR: u32 = 0o755;
/// Files peapod creates for `FileOrCreate` hostPath volumes, as kubelet does.
pub const HOST_PATH_FILE: u32 = 0o644;

#[derive(Debug, thiserror::Error)]
#[error("giving {path} mode {mode:o}: {source}")]
pub struct PermsError {
    pub path: PathBuf,
    pub mode: u32,
    #[source]
    pub source: std::io::Error,
}

/// Creates `dir` if needed and gives it `mode` whatever it had. Missing parents get the
/// ordinary mode of system directories, as `mkdir -p` gives them.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<(), PermsError> {
    create_dir(dir, mode)?;
    std::fs::set_permissions(dir, Permissions::from_mode(mode)).map_err(failed(dir, mode))
}

/// Creates `dir` with `mode` if it is missing; an existing one is left as it is.
fn create_dir(dir: &Path, mode: u32) -> Result<(), PermsError> {
    match dir.parent() {
        Some(parent) => std::fs::create_dir_all(parent),
        None => Ok(()),
    }
    .and_then(|()| match DirBuilder::new().mode(mode).create(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    })
    .map_err(failed(dir, mode))
}

fn failed(path: &Path, mode: u32) -> impl FnOnce(std::io::Error) -> PermsError {
    let path = path.to_path_buf();
    move |source| PermsError { path, mode, source }
}

/// Writes `bytes` to `path` in a file only root reads, whatever the file was before.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(PRIVATE_FILE))?;
    file.write_all(bytes)
}

/// Gives the agent's roots their modes before anything is written below them, and closes the
/// log directories of its pods that an older agent left readable.
pub fn secure_roots(paths: &Paths) -> Result<(), PermsError> {
    for (dir, mode) in [
        (paths.data_dir(), DATA_ROOT),
        (paths.pods_data_root(), POD_DATA),
        (paths.run_dir(), RUN_ROOT),
        (paths.pods_run_root(), PODS_RUN_ROOT),
    ] {
        ensure_dir(&dir, mode)?;
    }
    // Shared with a kubelet at the default root: created as kubelet does, never changed.
    create_dir(&paths.pod_logs_root(), LOG_ROOT)?;
    for dir in own_pod_log_dirs(paths) {
        ensure_dir(&dir, POD_LOG_DIR)?;
    }
    Ok(())
}

/// Log directories (`NAMESPACE_NAME_UID`) of pods this agent has state of. `/var/log/pods`
/// may be shared with a kubelet, whose directories are not ours to change.
fn own_pod_log_dirs(paths: &Paths) -> Vec<PathBuf> {
    let uids: HashSet<String> = [paths.pods_data_root(), paths.pods_run_root()]
        .iter()
        .flat_map(|root| std::fs::read_dir(root).into_iter().flatten().flatten())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    std::fs::read_dir(paths.pod_logs_root())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.rsplit_once('_')
                .is_some_and(|(_, uid)| uids.contains(uid))
        })
        .map(|entry| entry.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn roots_and_own_pod_log_dirs_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path().to_path_buf());
        let ours = paths.pod_log_dir("default", "web", "u1");
        let kubelets = paths.pod_log_dir("default", "web", "k1");
        for open in [
            paths.pod_data_dir("u1"),
            paths.run_dir(),
            ours.clone(),
            kubelets.clone(),
        ] {
            ensure_dir(&open, 0o755).unwrap();
        }
        ensure_dir(&paths.data_dir(), 0o755).unwrap();
        secure_roots(&paths).unwrap();
        assert_eq!(mode(&paths.data_dir()), DATA_ROOT);
        assert_eq!(mode(&paths.pods_data_root()), POD_DATA);
        assert_eq!(mode(&paths.run_dir()), RUN_ROOT);
        assert_eq!(mode(&paths.pods_run_root()), PODS_RUN_ROOT);
        assert_eq!(mode(&paths.pod_logs_root()), LOG_ROOT);
        assert_eq!(mode(&ours), POD_LOG_DIR);
        assert_eq!(mode(&kubelets), 0o755, "another program's pod logs");
    }

    #[test]
    fn private_files_are_private_even_when_they_existed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, b"old and longer").unwrap();
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        write_private(&file, b"new").unwrap();
        assert_eq!(mode(&file), PRIVATE_FILE);
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
    }
}
