//! The host's processes as /proc shows them, and stopping those of the root's pods: each shim
//! is asked to shut down (it kills and deletes its containers, and its namespaces go with it),
//! then whatever is left of the shims, their descendants and the processes in the root's
//! cgroups is SIGKILLed, as k3s-killall.sh kills its shims' trees.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{cgroups, Report, UninstallError};
use crate::paths::Paths;
use crate::shim::client::ShimClient;

/// How long a shim may take to kill and delete its containers.
const SHIM_SHUTDOWN: Duration = Duration::from_secs(15);
/// How long SIGKILLed processes may take to go.
const KILL_WITHIN: Duration = Duration::from_secs(10);

/// A live (not zombie) process.
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub args: Vec<String>,
}

/// Every live process but this one.
pub fn running() -> Vec<Process> {
    let own = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != own)
        .filter_map(read_process)
        .collect()
}

fn read_process(pid: i32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?;
    if matches!(state, "Z" | "X") {
        return None;
    }
    let ppid = fields.next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = cmdline
        .split(|byte| *byte == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    Some(Process { pid, ppid, args })
}

/// True once `pid` has exited (gone, or a zombie left to its parent).
pub fn is_gone(pid: i32) -> bool {
    read_process(pid).is_none()
}

/// Waits until `pid` is gone; false when it still runs after `within`.
pub async fn wait_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !is_gone(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Sends `signal`; a process already gone is no error.
pub fn signal(pid: i32, signal: Signal) -> Result<(), UninstallError> {
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(source) => Err(UninstallError::Signal { pid, source }),
    }
}

/// The pod run directory of `process` when it is a shim of this root
/// (`peapod shim --pod-uid UID --run-dir <root>/run/peapod/pods/UID ...`).
fn shim_run_dir(process: &Process, paths: &Paths) -> Option<PathBuf> {
    if process.args.get(1).map(String::as_str) != Some("shim") {
        return None;
    }
    let flag = process.args.iter().position(|arg| arg == "--run-dir")?;
    let run_dir = PathBuf::from(process.args.get(flag + 1)?);
    (run_dir.parent() == Some(paths.pods_run_root().as_path())).then_some(run_dir)
}

/// Stops every pod of the root: shims first, through their socket, then SIGKILL for the rest.
pub async fn stop_pods(paths: &Paths, report: &mut Report<'_>) {
    let shims: Vec<(i32, PathBuf)> = running()
        .iter()
        .filter_map(|process| Some((process.pid, shim_run_dir(process, paths)?)))
        .collect();
    for (pid, run_dir) in shims {
        if shut_down(pid, &run_dir).await {
            let uid = run_dir.file_name().unwrap_or_default().to_string_lossy();
            report.removed(format!(
                "stopped pod sandbox {uid} (pid {pid}) with its containers and namespaces"
            ));
        }
    }
    kill_leftovers(paths, report).await;
}

/// Asks the shim to kill and delete its containers and exit; true when it did.
async fn shut_down(pid: i32, run_dir: &Path) -> bool {
    let client = ShimClient::new(run_dir);
    let answered = tokio::time::timeout(SHIM_SHUTDOWN, client.shutdown()).await;
    matches!(answered, Ok(Ok(()))) && wait_gone(pid, Duration::from_secs(5)).await
}

/// SIGKILLs the root's shims, their descendants and the processes of its cgroups until none
/// is left.
async fn kill_leftovers(paths: &Paths, report: &mut Report<'_>) {
    let deadline = Instant::now() + KILL_WITHIN;
    let mut killed = BTreeSet::new();
    loop {
        let left = leftovers(paths);
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            report.failed(UninstallError::ProcessesLeft(left.into_iter().collect()));
            return;
        }
        for pid in left {
            match signal(pid, Signal::SIGKILL) {
                Ok(()) => {
                    killed.insert(pid);
                }
                Err(err) => report.failed(err),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !killed.is_empty() {
        let pids: Vec<String> = killed.iter().map(ToString::to_string).collect();
        report.removed(format!(
            "killed {} processes left of the pods (pids {})",
            killed.len(),
            pids.join(", ")
        ));
    }
}

/// The live processes of the root's pods: shims, their descendants, and cgroup members.
fn leftovers(paths: &Paths) -> BTreeSet<i32> {
    let processes = running();
    let mut found: BTreeSet<i32> = processes
        .iter()
        .filter(|process| shim_run_dir(process, paths).is_some())
        .map(|process| process.pid)
        .collect();
    loop {
        let before = found.len();
        let children: Vec<i32> = processes
            .iter()
            .filter(|process| found.contains(&process.ppid))
            .map(|process| process.pid)
            .collect();
        found.extend(children);
        if found.len() == before {
            break;
        }
    }
    let own = std::process::id() as i32;
    found.extend(
        cgroups::processes(paths)
            .into_iter()
            .filter(|pid| *pid != own),
    );
    found.retain(|pid| !is_gone(*pid));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(args: &[&str]) -> Process {
        Process {
            pid: 10,
            ppid: 1,
            args: args.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn only_shims_of_this_root_match() {
        let paths = Paths::new("/tmp/a".into());
        let ours = process(&[
            "/usr/bin/peapod",
            "shim",
            "--pod-uid",
            "u1",
            "--run-dir",
            "/tmp/a/run/peapod/pods/u1",
        ]);
        assert_eq!(
            shim_run_dir(&ours, &paths),
            Some(PathBuf::from("/tmp/a/run/peapod/pods/u1"))
        );
        let nested_root = process(&["peapod", "shim", "--run-dir", "/tmp/a/b/run/peapod/pods/u1"]);
        assert_eq!(shim_run_dir(&nested_root, &paths), None);
        let other_root = process(&["peapod", "shim", "--run-dir", "/tmp/ab/run/peapod/pods/u1"]);
        assert_eq!(shim_run_dir(&other_root, &paths), None);
        let not_a_shim = process(&["sh", "-c", "--run-dir", "/tmp/a/run/peapod/pods/u1"]);
        assert_eq!(shim_run_dir(&not_a_shim, &paths), None);
    }
}
