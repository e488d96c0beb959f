//! The per-pod shim: the pod's infra process. It holds the pod's network, IPC, UTS (and, with
//! shareProcessNamespace, PID) namespaces, is the child subreaper of the pod's containers,
//! creates them through libcontainer, pumps their output into CRI log files and records how they
//! exit. It outlives container restarts and agent restarts; the agent talks to it over the
//! Unix socket in the pod's run directory ([`protocol`]).
//!
//! The shim is single-threaded on purpose: libcontainer clones processes with raw `clone3`, which
//! is only safe when no other thread can hold a lock the child needs.

mod attach;
pub mod client;
mod container;
pub mod diagnostics;
mod exec;
mod executor;
mod fd;
pub mod frame;
mod input;
pub mod launch;
mod outbuf;
mod process_io;
pub mod protocol;
mod runtime;
mod server;
mod setup;
mod spawn;
mod stdin;
mod terminal;
mod watch;

pub use server::{run, ShimOptions};

/// The shim protocol's clock: Unix time in nanoseconds.
pub fn protocol_now() -> i64 {
    server::now_nanos()
}
