//! A pod's sandbox from the agent's side: start the shim (after writing the pod's /etc files
//! and preparing its volumes), find it again after an agent restart, and tear everything
//! down — shim, directories, logs, cgroups — when the pod goes away.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use crate::paths::Paths;
use crate::runtime::etc_files::{pod_hostname, EtcFiles};
use crate::shim::client::ShimClient;
use crate::shim::launch::{self, LaunchError, LaunchSpec};
use crate::volume::{self, HostVolume, VolumeError};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("writing the pod's /etc files in {path}: {source}")]
    EtcFiles {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("preparing the pod's memory volume: {0}")]
    Tmpfs(String),
}

pub struct Sandbox {
    pub client: ShimClient,
    pub volumes: HashMap<String, HostVolume>,
}

/// Starts the pod's shim and readies its volumes.
pub async fn create(paths: &Paths, pod: &Pod) -> Result<Sandbox, SandboxError> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let run_dir = paths.pod_run_dir(&uid);
    let volumes = volume::prepare(pod, &paths.pod_data_dir(&uid))?;
    std::fs::create_dir_all(&run_dir).map_err(|source| SandboxError::EtcFiles {
        path: run_dir.display().to_string(),
        source,
    })?;
    EtcFiles::in_dir(&run_dir)
        .write(pod, None)
        .map_err(|source| SandboxError::EtcFiles {
            path: run_dir.display().to_string(),
            source,
        })?;
    let spec = LaunchSpec {
        pod_uid: uid,
        hostname: pod_hostname(pod),
        run_dir: run_dir.clone(),
        share_pid: pod
            .spec
            .as_ref()
            .and_then(|s| s.share_process_namespace)
            .unwrap_or(false),
    };
    tokio::task::spawn_blocking(move || launch::launch(&spec))
        .await
        .map_err(|e| LaunchError::Failed(e.to_string()))??;
    let client = ShimClient::new(&run_dir);
    for volume in volumes.values() {
        if let Some(size) = volume.tmpfs {
            client
                .mount_tmpfs(&volume.path, size)
                .await
                .map_err(|e| SandboxError::Tmpfs(e.to_string()))?;
        }
    }
    Ok(Sandbox { client, volumes })
}

/// The sandbox of a pod whose shim already runs (the agent restarted), if it answers.
pub async fn attach(paths: &Paths, pod: &Pod) -> Option<Sandbox> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let client = ShimClient::new(&paths.pod_run_dir(&uid));
    client.state().await.ok()?;
    let volumes = volume::prepare(pod, &paths.pod_data_dir(&uid)).ok()?;
    Some(Sandbox { client, volumes })
}

/// Stops the shim (which kills and deletes any container left) and waits for it to exit.
pub async fn stop_shim(paths: &Paths, uid: &str) {
    let client = ShimClient::new(&paths.pod_run_dir(uid));
    let Ok(state) = client.state().await else {
        return;
    };
    if let Err(err) = client.shutdown().await {
        tracing::warn!(uid, %err, "pod sandbox shutdown reported an error");
    }
    wait_gone(state.pid).await;
}

/// Removes everything the pod had on the host but its object: run and data directories,
/// logs, cgroups. The shim must be gone.
pub fn remove_files(paths: &Paths, uid: &str) {
    kill_container_processes(paths, uid);
    remove_dir(&paths.pod_run_dir(uid));
    remove_dir(&paths.pod_data_dir(uid));
    if let Ok(entries) = std::fs::read_dir(paths.pod_logs_root()) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .ends_with(&format!("_{uid}"))
            {
                remove_dir(&entry.path());
            }
        }
    }
    for dir in pod_cgroup_dirs(paths, uid) {
        remove_cgroup(&dir);
    }
}

fn remove_dir(path: &Path) {
    if let Err(err) = std::fs::remove_dir_all(path) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(?path, %err, "removing pod directory");
        }
    }
}

/// The pod's cgroup directory in every mounted hierarchy (cgroup v1 controllers and v2).
pub fn pod_cgroup_dirs(paths: &Paths, uid: &str) -> Vec<PathBuf> {
    let relative = format!("{}/pod{uid}", paths.cgroup_parent().trim_start_matches('/'));
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path().join(&relative))
        .filter(|p| p.is_dir())
        .collect();
    let unified = Path::new("/sys/fs/cgroup").join(&relative);
    if unified.is_dir() {
        dirs.push(unified);
    }
    dirs
}

/// SIGKILLs every process left in the pod's container cgroups: containers have their own PID
/// namespaces, so they outlive a shim that died; nothing of theirs may outlive the pod.
pub fn kill_container_processes(paths: &Paths, uid: &str) {
    for dir in pod_cgroup_dirs(paths, uid) {
        let Ok(children) = std::fs::read_dir(&dir) else {
            continue;
        };
        for child in children.flatten().filter(|c| c.path().is_dir()) {
            let procs =
                std::fs::read_to_string(child.path().join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// cgroup directories are removed leaf first with rmdir (their files are not real files).
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    // A killed process leaves its cgroup a moment after the signal: retry briefly.
    for attempt in 0..100 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) if attempt == 99 => tracing::warn!(?dir, %err, "removing pod cgroup"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Waits until `pid` has exited: reaped when it is our child, otherwise gone or a zombie of
/// another parent.
pub async fn wait_gone(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(pid);
    for _ in 0..2000 {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return,
            Err(_) => {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next());
                if matches!(state, None | Some("Z") | Some("X")) {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tracing::warn!(%pid, "pod sandbox process did not exit in time");
}
