//! The agent ↔ shim protocol: one JSON request line per connection, answered by one JSON
//! response line. `Watch` keeps the connection open and streams container exits; `Exec` and
//! `Attach` turn the connection into a framed stdio stream (see [`frame`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the agent asks of a pod's shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The shim's pid and every container it knows.
    State,
    /// Mount the container's root, create it through libcontainer (not yet started).
    Create(Box<CreateRequest>),
    Start {
        id: String,
    },
    Kill {
        id: String,
        signal: i32,
    },
    /// Delete the container (its cgroup, libcontainer state, rootfs mount); it must have exited.
    Remove {
        id: String,
    },
    /// Stream one line per container exit until the connection closes.
    Watch,
    /// Run a process in a container; the connection then carries [`frame`]s.
    Exec(ExecRequest),
    /// Join a running container's main process: its output from now on as STDOUT/STDERR
    /// frames (STDOUT only with a terminal), STDIN and RESIZE frames in, a STATUS frame when
    /// it exits. Closing the connection detaches; the container keeps running.
    Attach(AttachRequest),
    /// Kill whatever still runs, remove every container, and exit.
    Shutdown,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRequest {
    pub id: String,
    pub name: String,
    /// OCI bundle directory holding config.json; its root.path is `rootfs.target`.
    pub bundle: PathBuf,
    pub rootfs: Overlay,
    /// CRI-format log file for stdout and stderr.
    pub log_path: PathBuf,
    /// Kubernetes' `stdin`: the shim holds the write end of the container's stdin open (the
    /// process blocks reading it) and feeds it from attach sessions.
    pub stdin: bool,
    /// Kubernetes' `stdinOnce`: stdin is closed once the first attach session that used it
    /// ends.
    #[serde(default)]
    pub stdin_once: bool,
    /// Kubernetes' `tty`: the process runs on a terminal (config.json's `process.terminal`),
    /// whose output is logged as stdout.
    #[serde(default)]
    pub tty: bool,
    /// Written to the container init's `/proc/<pid>/oom_score_adj` before it starts.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// What the agent needs to adopt the container after a restart of its own.
    #[serde(default)]
    pub labels: ContainerLabels,
}

/// Kept by the shim with each container and returned by `State`, as kubelet keeps its
/// container labels in the runtime: a restarted agent finds the attempt and image of a
/// container whose start it never recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerLabels {
    /// The container's restartCount for this attempt (its log is `<restartCount>.log`).
    pub restart_count: i32,
    pub image: String,
    pub image_id: String,
}

/// An overlayfs root: lower layers listed top first, as overlayfs wants them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overlay {
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    pub id: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
}

/// An attach to container `id`'s main process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    pub id: String,
    /// Relay the client's STDIN frames (only when the container has stdin).
    pub stdin: bool,
    /// The client has a terminal: its RESIZE frames size the container's (if it has one).
    pub tty: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    State(ShimState),
    Created { pid: i32 },
    Error { message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimState {
    /// The shim's pid in the agent's pid namespace.
    pub pid: i32,
    pub containers: Vec<ContainerInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerStatus {
    Created,
    Running,
    Exited,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub status: ContainerStatus,
    pub pid: Option<i32>,
    /// Unix time in nanoseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub exit: Option<ExitInfo>,
    #[serde(default)]
    pub labels: ContainerLabels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit code as Kubernetes reports it: the code, or 128 + signal.
    pub code: i32,
    pub signal: Option<i32>,
    pub finished_at: i64,
    /// The kernel OOM-killed a process of the container's cgroup.
    #[serde(default)]
    pub oom_killed: bool,
}

/// A container exit, as streamed by `Watch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitEvent {
    pub id: String,
    pub exit: ExitInfo,
}

/// Framing of exec and attach streams.
pub use super::frame;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_request_of_an_older_agent_still_parses() {
        let old = serde_json::json!({
            "op": "create", "id": "c1", "name": "app", "bundle": "/b",
            "rootfs": {"lower": [], "upper": "/u", "work": "/w", "target": "/t"},
            "log_path": "/l", "stdin": true,
        });
        let Request::Create(create) = serde_json::from_value(old).unwrap() else {
            panic!("not a create");
        };
        assert!(create.stdin && !create.stdin_once && !create.tty);
    }

    #[test]
    fn attach_is_one_flat_request_line() {
        let request = Request::Attach(AttachRequest {
            id: "c1".into(),
            stdin: true,
            tty: false,
        });
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({"op": "attach", "id": "c1", "stdin": true, "tty": false})
        );
    }
}
