//! The shim's use of libcontainer: mount a container's overlay root, create, start, signal,
//! delete, and start exec processes in a running container.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::executor::CleanSignals;
use super::protocol::Overlay;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("mounting the root filesystem at {target} failed: {source}")]
    MountRoot {
        target: String,
        #[source]
        source: nix::Error,
    },
    #[error("creating {path} failed: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{action} container {id}: {source}")]
    Libcontainer {
        action: &'static str,
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("invalid signal {0}")]
    Signal(i32),
    #[error("setting the oom_score_adj of process {pid} to {value}: {source}")]
    OomScoreAdj {
        pid: i32,
        value: i32,
        #[source]
        source: std::io::Error,
    },
}

/// Stdio handed to a new process: the write ends of the shim's pipes (or a terminal).
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// How a new process is connected to the shim.
pub enum ProcessIo {
    Pipes(Stdio),
    /// A terminal libcontainer creates in the container (the process's `terminal` must be
    /// true); its master is sent to this console socket.
    Terminal(PathBuf),
}

pub struct Runtime {
    /// libcontainer's state directory for this pod.
    state_root: PathBuf,
}

impl Runtime {
    pub fn new(state_root: PathBuf) -> Result<Runtime, RuntimeError> {
        std::fs::create_dir_all(&state_root).map_err(|source| RuntimeError::Dir {
            path: state_root.display().to_string(),
            source,
        })?;
        Ok(Runtime { state_root })
    }

    pub fn mount_root(&self, overlay: &Overlay) -> Result<(), RuntimeError> {
        for dir in [&overlay.upper, &overlay.work, &overlay.target] {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let lower = overlay
            .lower
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let options = format!(
            "lowerdir={lower},upperdir={},workdir={}",
            overlay.upper.display(),
            overlay.work.display()
        );
        mount(
            Some("overlay"),
            &overlay.target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|source| RuntimeError::MountRoot {
            target: overlay.target.display().to_string(),
            source,
        })
    }

    pub fn unmount_root(&self, target: &Path) {
        if let Err(err) = umount2(target, MntFlags::MNT_DETACH) {
            if err != nix::Error::EINVAL && err != nix::Error::ENOENT {
                tracing::warn!(?target, %err, "unmounting container root failed");
            }
        }
    }

    /// A builder for container `id` in this pod's state root; `action` names it in errors.
    fn builder(&self, id: &str, action: &'static str) -> Result<ContainerBuilder, RuntimeError> {
        ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(CleanSignals)
            .with_root_path(&self.state_root)
            .map_err(|source| lc_err(action, id, source))
    }

    /// Creates the container (its init waits for `start`) and returns the init's pid.
    pub fn create(&self, id: &str, bundle: &Path, io: ProcessIo) -> Result<i32, RuntimeError> {
        let container = with_io(self.builder(id, "creating")?, io)
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|source| lc_err("creating", id, source))?;
        Ok(container.pid().map(|p| p.as_raw()).unwrap_or(0))
    }

    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.load(id)?
            .start()
            .map_err(|source| lc_err("starting", id, source))
    }

    pub fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        let all = signal == libc::SIGKILL;
        let signal = Signal::try_from(signal).map_err(|_| RuntimeError::Signal(signal))?;
        self.load(id)?
            .kill(signal, all)
            .map_err(|source| lc_err("signalling", id, source))
    }

    /// Deletes libcontainer's state and the container's cgroup.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        if !self.state_root.join(id).exists() {
            return Ok(());
        }
        self.load(id)?
            .delete(true)
            .map_err(|source| lc_err("deleting", id, source))
    }

    /// Starts the process described by `process_json` (an OCI process whose `terminal`
    /// matches `io`) inside container `id` (its namespaces and cgroup); returns its pid.
    pub fn exec(&self, id: &str, process_json: &Path, io: ProcessIo) -> Result<i32, RuntimeError> {
        let builder = with_io(self.builder(id, "exec in")?, io)
            .as_tenant()
            .with_process(Some(process_json))
            .with_detach(true);
        let pid = self
            .with_container_score(id, || builder.build())
            .map_err(|source| lc_err("exec in", id, source))?;
        Ok(pid.as_raw())
    }

    /// Runs `fork` (an exec's build, which forks from the shim) with the shim's own
    /// oom_score_adj switched to that of container `id`'s init, so the new process is born
    /// with its container's score, as runc gives exec processes the container's.
    fn with_container_score<T>(&self, id: &str, fork: impl FnOnce() -> T) -> T {
        let score = |pid: &str| -> Option<i32> {
            std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let own = score("self");
        let init = self.load(id).ok().and_then(|c| c.pid());
        let theirs = init.and_then(|pid| score(&pid.as_raw().to_string()));
        let self_pid = std::process::id() as i32;
        match (own, theirs) {
            (Some(own), Some(theirs)) if own != theirs => {
                let _ = set_oom_score_adj(self_pid, theirs);
                let result = fork();
                let _ = set_oom_score_adj(self_pid, own);
                result
            }
            _ => fork(),
        }
    }

    fn load(&self, id: &str) -> Result<Container, RuntimeError> {
        Container::load(self.state_root.join(id)).map_err(|source| lc_err("loading", id, source))
    }
}

/// Sets a process's OOM score adjustment (youki's own `oomScoreAdj` would set the shim's
/// instead). Without CAP_SYS_RESOURCE the kernel refuses a score below the one inherited;
/// the process then keeps that one, as containerd's `restrict_oom_score_adj` clamps.
pub fn set_oom_score_adj(pid: i32, value: i32) -> Result<(), RuntimeError> {
    match std::fs::write(format!("/proc/{pid}/oom_score_adj"), value.to_string()) {
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            tracing::debug!(pid, value, "no privilege to lower oom_score_adj; kept");
            Ok(())
        }
        result => result.map_err(|source| RuntimeError::OomScoreAdj { pid, value, source }),
    }
}

/// Whether the kernel OOM-killed a process in the cgroup of the container whose bundle is
/// `bundle`; read before libcontainer's delete removes that cgroup.
pub fn oom_killed(bundle: &Path) -> bool {
    let Ok(config) = std::fs::read(bundle.join("config.json")) else {
        return false;
    };
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(&config) else {
        return false;
    };
    config["linux"]["cgroupsPath"].as_str().is_some_and(|path| {
        crate::runtime::resources::oom_kill_count(
            Path::new(crate::runtime::resources::CGROUP_ROOT),
            path,
        ) > 0
    })
}

/// Hands the process its stdio: the write ends of the shim's pipes and stdin when it has one,
/// or the console socket its terminal's master goes to.
fn with_io(builder: ContainerBuilder, io: ProcessIo) -> ContainerBuilder {
    match io {
        ProcessIo::Pipes(stdio) => {
            let builder = builder.with_stdout(stdio.stdout).with_stderr(stdio.stderr);
            match stdio.stdin {
                Some(stdin) => builder.with_stdin(stdin),
                None => builder,
            }
        }
        ProcessIo::Terminal(console_socket) => builder.with_console_socket(Some(console_socket)),
    }
}

fn lc_err(
    action: &'static str,
    id: &str,
    source: libcontainer::error::LibcontainerError,
) -> RuntimeError {
    RuntimeError::Libcontainer {
        action,
        id: id.to_string(),
        source: Box::new(source),
    }
}
