//! Connecting a new process (a container's init or an exec) to the shim: pipes for its stdout
//! and stderr (and its stdin when it has one), or a terminal whose master carries all three.
//! The shim's ends are non-blocking.

use std::fs::File;
use std::path::PathBuf;

use peapod_logs::Stream;

use super::fd::{pipe, set_nonblocking};
use super::runtime::{ProcessIo, Stdio};
use super::server::{io_err, ShimError};
use super::terminal::{ConsoleSocket, WindowSize};

/// The shim's ends of a process's stdio.
pub struct Connected {
    /// The output pipes' read ends, or a duplicate of the terminal's master (as stdout).
    pub outputs: Vec<(File, Stream)>,
    /// The process's stdin: a pipe's write end or a duplicate of the master.
    pub stdin: Option<File>,
    /// The terminal's master, for window sizes.
    pub terminal: Option<File>,
}

/// The shim's ends while the process is being built.
pub enum Pending {
    Pipes(Connected),
    /// The master arrives on the console socket during the build.
    Terminal {
        console: ConsoleSocket,
        stdin: bool,
    },
}

/// Stdio for a process about to be built: a terminal when `console` names the socket its
/// master is to be sent to, pipes otherwise; stdin only when `stdin`.
pub fn prepare(console: Option<PathBuf>, stdin: bool) -> Result<(ProcessIo, Pending), ShimError> {
    if let Some(path) = console {
        let console = ConsoleSocket::bind(path)?;
        let io = ProcessIo::Terminal(console.path().to_path_buf());
        return Ok((io, Pending::Terminal { console, stdin }));
    }
    let (out_r, out_w) = pipe().map_err(io_err("pipe"))?;
    let (err_r, err_w) = pipe().map_err(io_err("pipe"))?;
    let (stdin_theirs, stdin_ours) = if stdin {
        let (r, w) = pipe().map_err(io_err("pipe"))?;
        (Some(r), Some(File::from(w)))
    } else {
        (None, None)
    };
    let ours = Connected {
        outputs: vec![
            (File::from(out_r), Stream::Stdout),
            (File::from(err_r), Stream::Stderr),
        ],
        stdin: stdin_ours,
        terminal: None,
    };
    for file in ours.outputs.iter().map(|(f, _)| f).chain(&ours.stdin) {
        set_nonblocking(file).map_err(io_err("pipe"))?;
    }
    let theirs = Stdio {
        stdin: stdin_theirs,
        stdout: out_w,
        stderr: err_w,
    };
    Ok((ProcessIo::Pipes(theirs), Pending::Pipes(ours)))
}

impl Pending {
    /// The shim's ends once the process is built: for a terminal, its master, sized 80x24.
    pub fn connect(self) -> Result<Connected, ShimError> {
        let (console, stdin) = match self {
            Pending::Pipes(ours) => return Ok(ours),
            Pending::Terminal { console, stdin } => (console, stdin),
        };
        let master = console.receive()?;
        set_nonblocking(&master).map_err(io_err("terminal"))?;
        WindowSize::default().apply(&master);
        let duplicate = || master.try_clone().map_err(io_err("terminal"));
        Ok(Connected {
            outputs: vec![(duplicate()?, Stream::Stdout)],
            stdin: if stdin { Some(duplicate()?) } else { None },
            terminal: Some(master),
        })
    }
}
