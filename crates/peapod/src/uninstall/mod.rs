//! `peapod uninstall`, as k3s' killall and uninstall scripts: stops the agent of one
//! `PEAPOD_ROOT`, its pods' shims and containers, unmounts what they left mounted, dismantles
//! its network (veths, bridge, nftables table) and its cgroups, and removes its directories.
//! Only what belongs to that root is touched, so an agent on another root keeps running; a
//! second run finds nothing left. Each thing removed is printed as it goes.

mod agent;
mod cgroups;
mod files;
mod mounts;
mod network;
mod processes;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use crate::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum UninstallError {
    #[error("peapod uninstall must run as root: it stops processes, unmounts file systems and removes network links and cgroups")]
    NotRoot,
    #[error("signalling process {pid}: {source}")]
    Signal {
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("the agent (pid {0}) is still running after SIGKILL")]
    AgentAlive(i32),
    #[error("processes of the pods are still running after SIGKILL: {0:?}")]
    ProcessesLeft(Vec<i32>),
    #[error("unmounting {}: {source}", path.display())]
    Unmount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("kept {}: {} still mounted beneath it", dir.display(), mounts.join(", "))]
    StillMounted { dir: PathBuf, mounts: Vec<String> },
    #[error("dismantling the pod network: {0}")]
    Link(#[from] peapod_net::link::LinkError),
    #[error("deleting the nftables table: {0}")]
    Firewall(#[from] peapod_net::nft::NftError),
    #[error("kept bridge {bridge} and its nftables table: {reason}")]
    BridgeKept { bridge: String, reason: String },
    #[error("removing cgroup {}: {source}", path.display())]
    Cgroup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("removing {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the uninstall is incomplete: {0} step(s) failed (above); run it again once fixed")]
    Incomplete(usize),
}

/// What a run did: each thing removed is printed on `out` at once, each failure on stderr.
pub struct Report<'a> {
    out: &'a mut dyn Write,
    removed: usize,
    failures: usize,
}

impl Report<'_> {
    fn removed(&mut self, what: impl AsRef<str>) {
        self.removed += 1;
        let _ = writeln!(self.out, "{}", what.as_ref());
        let _ = self.out.flush();
    }

    fn failed(&mut self, error: UninstallError) {
        self.failures += 1;
        eprintln!("error: {error}");
    }

    fn note(&mut self, what: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", what.as_ref());
    }
}

/// Uninstalls the agent of `paths`' root, printing what it removes on `out`.
pub async fn uninstall(paths: &Paths, out: &mut dyn Write) -> Result<(), UninstallError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(UninstallError::NotRoot);
    }
    let mut report = Report {
        out,
        removed: 0,
        failures: 0,
    };
    agent::stop(paths, &mut report).await;
    let pods = known_pods(paths);
    processes::stop_pods(paths, &mut report).await;
    mounts::unmount_beneath(&files::agent_dirs(paths), &mut report);
    network::dismantle(paths, &pods, &mut report).await;
    cgroups::remove(paths, &mut report);
    files::remove(paths, &pods, &mut report);
    let root = paths.root().display();
    match (report.failures, report.removed) {
        (0, 0) => report.note(format!("nothing of peapod is left under {root}")),
        (0, _) => report.note(format!("peapod is uninstalled from {root}")),
        (failures, _) => return Err(UninstallError::Incomplete(failures)),
    }
    Ok(())
}

/// The uids of the pods this root's agent has anything of: run and data directories, and
/// addresses held.
fn known_pods(paths: &Paths) -> BTreeSet<String> {
    let ipam = paths.data_dir().join("network/ipam");
    let mut uids: BTreeSet<String> = [paths.pods_run_root(), paths.pods_data_root()]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let owners = std::fs::read_dir(ipam).into_iter().flatten().flatten();
    uids.extend(owners.filter_map(|entry| {
        let owner = std::fs::read_to_string(entry.path()).ok()?;
        Some(owner.trim().to_string()).filter(|owner| !owner.is_empty())
    }));
    uids
}
