//! The shim's containers: create (pipes or a terminal, a stdin held open for `stdin: true`),
//! start, kill, remove, their output into the CRI log (and to attached clients), and their
//! exit.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;

use mio::Token;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use peapod_logs::{LogWriter, Stream};

use super::attach::Attachment;
use super::diagnostics::FailureReport;
use super::protocol::{
    ContainerInfo, ContainerStatus, CreateRequest, ExitEvent, ExitInfo, Response,
};
use super::server::{error, now_nanos, Owner, Shim, ShimError};
use super::spawn::{self, Connected, Pending};
use super::stdin::Stdin;

/// kubelet's containerLogMaxSize and containerLogMaxFiles defaults.
const LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;
const LOG_MAX_FILES: usize = 5;

pub(super) struct Container {
    pub info: ContainerInfo,
    log: LogWriter,
    log_failures: FailureReport,
    root: PathBuf,
    pub bundle: PathBuf,
    /// Output pipes (or the terminal) not yet at their end.
    open_outputs: u8,
    /// Held open from create to exit for `stdin: true`, unless `stdin_once` closed it.
    pub stdin: Option<Stdin>,
    pub stdin_once: bool,
    /// The master of its terminal (`tty: true`).
    pub terminal: Option<File>,
    pub attachments: BTreeMap<Token, Attachment>,
}

impl Container {
    /// Started and not yet exited.
    pub fn is_running(&self) -> bool {
        self.info.status == ContainerStatus::Running && self.info.exit.is_none()
    }

    /// Exited and all its output read: nothing more will reach its log or attached clients.
    pub fn is_finished(&self) -> bool {
        self.info.exit.is_some() && self.open_outputs == 0
    }
}

impl Shim {
    pub(super) fn create(&mut self, request: CreateRequest) -> Response {
        if self.containers.contains_key(&request.id) {
            return error(format!("container {} already exists", request.id));
        }
        match self.try_create(&request) {
            Ok(pid) => Response::Created { pid },
            Err(err) => {
                self.runtime.unmount_root(&request.rootfs.target);
                error(err.to_string())
            }
        }
    }

    fn try_create(&mut self, request: &CreateRequest) -> Result<i32, ShimError> {
        self.runtime.mount_root(&request.rootfs)?;
        let log = LogWriter::open(&request.log_path, LOG_MAX_SIZE, LOG_MAX_FILES).map_err(|e| {
            ShimError::Io {
                what: request.log_path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        let console = request.tty.then(|| self.console_path());
        let (io, pending) = spawn::prepare(console, request.stdin)?;
        let pid = self.runtime.create(&request.id, &request.bundle, io)?;
        let owner = Owner::Container(request.id.clone());
        let plugged = self
            .connect_init(request, pid, pending)
            .and_then(|connected| self.plug(&owner, connected));
        let plugged = match plugged {
            Ok(plugged) => plugged,
            Err(err) => {
                let _ = self.runtime.delete(&request.id);
                let _ = waitpid(Pid::from_raw(pid), None);
                return Err(err);
            }
        };
        self.pids.insert(pid, owner);
        let container = Container {
            info: ContainerInfo {
                id: request.id.clone(),
                name: request.name.clone(),
                status: ContainerStatus::Created,
                pid: Some(pid),
                created_at: now_nanos(),
                started_at: None,
                exit: None,
                labels: request.labels.clone(),
            },
            log,
            log_failures: FailureReport::default(),
            root: request.rootfs.target.clone(),
            bundle: request.bundle.clone(),
            open_outputs: plugged.outputs,
            stdin: plugged.stdin,
            stdin_once: request.stdin_once,
            terminal: plugged.terminal,
            attachments: BTreeMap::new(),
        };
        self.containers.insert(request.id.clone(), container);
        Ok(pid)
    }

    /// The created init's oom_score_adj and stdio.
    fn connect_init(
        &self,
        request: &CreateRequest,
        pid: i32,
        pending: Pending,
    ) -> Result<Connected, ShimError> {
        if let Some(adj) = request.oom_score_adj {
            // The init waits for start: its children inherit the score set now.
            super::runtime::set_oom_score_adj(pid, adj)?;
        }
        pending.connect()
    }

    /// A fresh console socket path in the pod's run directory.
    pub(super) fn console_path(&mut self) -> PathBuf {
        let serial = self.serial();
        self.run_dir.join(format!("console-{serial}.sock"))
    }

    pub(super) fn start(&mut self, id: &str) -> Response {
        let Some(container) = self.containers.get_mut(id) else {
            return error(format!("no container {id}"));
        };
        if let Some(exit) = container.info.exit {
            return error(format!(
                "container {id} exited with code {} before it was started",
                exit.code
            ));
        }
        match self.runtime.start(id) {
            Ok(()) => {
                container.info.status = ContainerStatus::Running;
                container.info.started_at = Some(now_nanos());
                Response::Ok
            }
            Err(err) => error(err.to_string()),
        }
    }

    pub(super) fn kill(&mut self, id: &str, signal: i32) -> Response {
        let Some(container) = self.containers.get(id) else {
            return error(format!("no container {id}"));
        };
        if container.info.exit.is_some() {
            return Response::Ok;
        }
        match self.runtime.kill(id, signal) {
            Ok(()) => Response::Ok,
            Err(err) => error(err.to_string()),
        }
    }

    pub(super) fn remove(&mut self, id: &str) -> Response {
        let Some(container) = self.containers.get(id) else {
            return Response::Ok;
        };
        if container.info.exit.is_none() && container.info.status != ContainerStatus::Created {
            return error(format!("container {id} is still running"));
        }
        let result = self.runtime.delete(id);
        if let Some(pid) = container.info.pid {
            if container.info.exit.is_none() {
                // a created container that never ran: libcontainer killed it; collect it now
                let _ = waitpid(Pid::from_raw(pid), None);
                self.pids.remove(&pid);
            }
        }
        let root = container.root.clone();
        self.runtime.unmount_root(&root);
        let owner = Owner::Container(id.to_string());
        self.drop_outputs_of(&owner);
        self.close_stdin(&owner);
        // Output a surviving process still held open ends here.
        self.finish_attachments(id);
        self.close_attachments(id);
        if let Some(mut container) = self.containers.remove(id) {
            let _ = container.log.finish();
        }
        match result {
            Ok(()) => Response::Ok,
            Err(err) => error(err.to_string()),
        }
    }

    /// Output of container `id`: into its log, and to every attached client.
    pub(super) fn container_output(&mut self, id: &str, stream: Stream, data: &[u8]) {
        let Some(container) = self.containers.get_mut(id) else {
            return;
        };
        if let Err(err) = container.log.write(stream, data) {
            if let Some(failures) = container.log_failures.failed(std::time::Instant::now()) {
                tracing::warn!(%err, id, failures, "writing container log");
            }
        }
        self.fan_out(id, stream, data);
    }

    pub(super) fn container_output_closed(&mut self, id: &str) {
        let Some(container) = self.containers.get_mut(id) else {
            return;
        };
        container.open_outputs = container.open_outputs.saturating_sub(1);
        if container.open_outputs == 0 {
            let _ = container.log.finish();
        }
        if container.is_finished() {
            self.finish_attachments(id);
        }
    }

    pub(super) fn container_exited(&mut self, id: &str, code: i32, signal: Option<i32>) {
        let Some(container) = self.containers.get_mut(id) else {
            return;
        };
        let exit = ExitInfo {
            code,
            signal,
            finished_at: now_nanos(),
            oom_killed: super::runtime::oom_killed(&container.bundle),
        };
        container.info.exit = Some(exit);
        container.info.status = ContainerStatus::Exited;
        container.info.pid = None;
        let finished = container.is_finished();
        self.close_stdin(&Owner::Container(id.to_string()));
        self.notify(&ExitEvent {
            id: id.to_string(),
            exit,
        });
        if finished {
            self.finish_attachments(id);
        }
    }
}
