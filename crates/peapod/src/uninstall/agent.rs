//! The agent of a root: the process serving its API socket (its peer credentials say which),
//! and any `peapod serve` or `peapod play` started with that PEAPOD_ROOT (one still starting,
//! or whose socket is gone). Stopped as systemd stops a service: SIGTERM, SIGKILL after a grace.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::processes::{self, Process};
use super::{Report, UninstallError};
use crate::paths::Paths;

/// How long the agent may take to stop on SIGTERM (an embedded one deletes its pods first).
const GRACE: Duration = Duration::from_secs(10);

/// Stops every agent of the root.
pub async fn stop(paths: &Paths, report: &mut Report<'_>) {
    let mut pids: BTreeSet<i32> = started_for(paths).into_iter().collect();
    pids.extend(socket_owner(&paths.socket()).await);
    pids.remove(&(std::process::id() as i32));
    for pid in pids {
        match terminate(pid).await {
            Ok(()) => report.removed(format!("stopped the agent (pid {pid})")),
            Err(err) => report.failed(err),
        }
    }
}

/// The pid of the process that accepts connections on `socket`.
async fn socket_owner(socket: &Path) -> Option<i32> {
    let connect = tokio::net::UnixStream::connect(socket);
    let stream = tokio::time::timeout(Duration::from_secs(2), connect)
        .await
        .ok()?
        .ok()?;
    stream.peer_cred().ok()?.pid().filter(|pid| *pid > 0)
}

/// `peapod serve` and `peapod play` processes whose PEAPOD_ROOT is this root.
fn started_for(paths: &Paths) -> Vec<i32> {
    let Ok(root) = std::path::absolute(paths.root()) else {
        return Vec::new();
    };
    processes::running()
        .into_iter()
        .filter(is_agent)
        .filter(|process| root_of(process.pid).is_some_and(|theirs| theirs == root))
        .map(|process| process.pid)
        .collect()
}

fn is_agent(process: &Process) -> bool {
    let program = process
        .args
        .first()
        .map(Path::new)
        .and_then(Path::file_name);
    let verb = process.args.get(1).map(String::as_str);
    program.is_some_and(|name| name.to_string_lossy().starts_with("peapod"))
        && matches!(verb, Some("serve" | "play"))
}

/// The PEAPOD_ROOT a process was started with (`/` when unset or empty), a relative one
/// resolved against the process's working directory.
fn root_of(pid: i32) -> Option<PathBuf> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let value = environ
        .split(|byte| *byte == 0)
        .find_map(|variable| variable.strip_prefix(b"PEAPOD_ROOT="))
        .filter(|value| !value.is_empty());
    let root = PathBuf::from(OsStr::from_bytes(value.unwrap_or(b"/")));
    if root.is_absolute() {
        return Some(root);
    }
    Some(
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .ok()?
            .join(root),
    )
}

/// SIGTERM, then SIGKILL once the grace has passed.
async fn terminate(pid: i32) -> Result<(), UninstallError> {
    processes::signal(pid, Signal::SIGTERM)?;
    if processes::wait_gone(pid, GRACE).await {
        return Ok(());
    }
    processes::signal(pid, Signal::SIGKILL)?;
    if processes::wait_gone(pid, Duration::from_secs(5)).await {
        Ok(())
    } else {
        Err(UninstallError::AgentAlive(pid))
    }
}
