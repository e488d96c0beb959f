//! Where a verb's output goes: the process's stdout/stderr/stdin, or buffers in tests.

use std::io::{self, IsTerminal, Read, Write};

use crate::error::CliError;

/// The streams a verb reads and writes. `terminal` says they are the process's own, so exec
/// may put the terminal in raw mode and ask for its size.
pub struct Console {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    stdin: Option<Box<dyn Read + Send>>,
    terminal: bool,
}

impl Console {
    /// The process's stdout, stderr and stdin.
    pub fn std() -> Self {
        Self {
            out: Box::new(io::stdout()),
            err: Box::new(io::stderr()),
            stdin: Some(Box::new(io::stdin())),
            terminal: true,
        }
    }

    /// Arbitrary streams (never treated as a terminal).
    pub fn new(
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
        stdin: Box<dyn Read + Send>,
    ) -> Self {
        Self {
            out,
            err,
            stdin: Some(stdin),
            terminal: false,
        }
    }

    /// Writes to stdout and flushes, so streamed output shows up as it arrives.
    pub(crate) fn out(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.out
            .write_all(bytes)
            .and_then(|()| self.out.flush())
            .map_err(|source| CliError::Write {
                stream: "stdout",
                source,
            })
    }

    pub(crate) fn print(&mut self, text: &str) -> Result<(), CliError> {
        self.out(text.as_bytes())
    }

    /// Writes raw bytes to stderr (exec's STDERR channel).
    pub(crate) fn err(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.err
            .write_all(bytes)
            .and_then(|()| self.err.flush())
            .map_err(|source| CliError::Write {
                stream: "stderr",
                source,
            })
    }

    /// One diagnostic line on stderr; a failing stderr has nowhere left to report to.
    pub(crate) fn eprintln(&mut self, line: &str) {
        let _ = writeln!(self.err, "{line}").and_then(|()| self.err.flush());
    }

    /// Stdin for one consumer; later callers get an empty stream.
    pub(crate) fn take_stdin(&mut self) -> Box<dyn Read + Send> {
        self.stdin.take().unwrap_or_else(|| Box::new(io::empty()))
    }

    /// True when stdout is the process's own and is a terminal.
    pub(crate) fn stdout_is_terminal(&self) -> bool {
        self.terminal && io::stdout().is_terminal()
    }

    /// True when stdin is the process's own and is a terminal.
    pub(crate) fn stdin_is_terminal(&self) -> bool {
        self.terminal && io::stdin().is_terminal()
    }
}
