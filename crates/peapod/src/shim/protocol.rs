//! The agent ↔ shim protocol: one JSON request line per connection, answered by one JSON
//! response line. `Watch` keeps the connection open and streams container exits; `Exec` turns
//! the connection into a framed stdio stream (see [`frame`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the agent asks of a pod's shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The shim's pid and every container it knows.
    State,
    /// Mount the container's root, create it through libcontainer (not yet started).
    Create(CreateRequest),
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
    /// Mount a tmpfs (an emptyDir with medium Memory) in the pod's mount namespace.
    MountTmpfs {
        path: PathBuf,
        size: Option<u64>,
    },
    /// Stream one line per container exit until the connection closes.
    Watch,
    /// Run a process in a container; the connection then carries [`frame`]s.
    Exec(ExecRequest),
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
    pub stdin: bool,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit code as Kubernetes reports it: the code, or 128 + signal.
    pub code: i32,
    pub signal: Option<i32>,
    pub finished_at: i64,
}

/// A container exit, as streamed by `Watch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitEvent {
    pub id: String,
    pub exit: ExitInfo,
}

/// Framing of an exec stream, shared by shim ↔ agent and agent ↔ CLI so the agent only splices
/// bytes: one byte channel, four bytes big-endian length, payload.
pub mod frame {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    /// JSON `{"exitCode": N}` or `{"error": "..."}`; the last frame of a stream.
    pub const STATUS: u8 = 3;
    /// JSON `{"width": W, "height": H}`.
    pub const RESIZE: u8 = 4;
    /// An empty STDIN_EOF frame closes the process's stdin.
    pub const STDIN_EOF: u8 = 5;

    pub const HEADER: usize = 5;

    pub fn encode(channel: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.push(channel);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Splits complete frames off the front of `buf`.
    pub fn decode(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        let mut at = 0;
        while buf.len() - at >= HEADER {
            let len = u32::from_be_bytes(buf[at + 1..at + 5].try_into().unwrap()) as usize;
            if buf.len() - at - HEADER < len {
                break;
            }
            frames.push((buf[at], buf[at + HEADER..at + HEADER + len].to_vec()));
            at += HEADER + len;
        }
        buf.drain(..at);
        frames
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn frames_round_trip_across_partial_reads() {
            let mut wire = encode(STDOUT, b"hello");
            wire.extend(encode(STATUS, b"{}"));
            let mut buf = wire[..7].to_vec();
            assert!(decode(&mut buf).is_empty());
            buf.extend_from_slice(&wire[7..]);
            let frames = decode(&mut buf);
            assert_eq!(
                frames,
                vec![(STDOUT, b"hello".to_vec()), (STATUS, b"{}".to_vec())]
            );
            assert!(buf.is_empty());
        }
    }
}
