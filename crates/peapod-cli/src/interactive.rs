//! exec and attach on the process's own streams: stdin read on a thread of its own, and with
//! a terminal, raw mode for the session, its size sent at the start and on every SIGWINCH,
//! and the terminal restored when SIGTERM or SIGHUP ends the session.

use std::io::Read;

use bytes::Bytes;
use peapod_streams::remotecommand::client::{Exit, Input};
use peapod_streams::remotecommand::TerminalSize;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::console::Console;
use crate::error::CliError;
use crate::remote::{self, RemoteError, Request};
use crate::terminal::{window_size, RawMode};

const NOT_A_TERMINAL: &str =
    "Unable to use a TTY - input is not a terminal or the right kind of file";
const READ_BUFFER: usize = 32 * 1024;
/// Stdin chunks read ahead of the session.
const STDIN_CHUNKS: usize = 16;

/// kubectl's `SetupTTY`: a terminal needs stdin, and stdin must be one (else a warning,
/// unless `quiet`).
pub fn use_terminal(stdin: bool, tty: bool, quiet: bool, console: &mut Console) -> bool {
    if !stdin || !tty {
        return false;
    }
    let terminal = console.stdin_is_terminal();
    if !terminal && !quiet {
        console.eprintln(NOT_A_TERMINAL);
    }
    terminal
}

/// How the terminal's size is first sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstSize {
    Current,
    /// One larger, then the current size: an attached program redraws its screen (kubectl
    /// attach).
    Redraw,
}

/// Runs `request` to its end; the exit code as kubectl's (`128 + N` when signal N ended it).
pub async fn run(
    client: &Client,
    request: &Request,
    first_size: FirstSize,
    console: &mut Console,
) -> Result<i32, CliError> {
    let stdin = request
        .stdin
        .then(|| read_in_background(console.take_stdin()));
    if !request.tty {
        let exit = remote::run(client, request, stdin, console).await?;
        return remote::exit_code(exit, console);
    }
    let ended = {
        let _raw = RawMode::enable().map_err(RemoteError::from)?;
        let (resize, watcher) = watch_window_size(first_size);
        let input = Input {
            stdin,
            resize: Some(resize),
        };
        let ended = tokio::select! {
            exit = run_with_terminal(client, request, input, console) => exit.map(Ended::Exit),
            signal = termination() => Ok(Ended::Signal(signal)),
        };
        watcher.abort();
        ended?
    };
    match ended {
        Ended::Exit(exit) => remote::exit_code(exit, console),
        Ended::Signal(signal) => Ok(128 + signal),
    }
}

enum Ended {
    Exit(Exit),
    Signal(i32),
}

async fn run_with_terminal(
    client: &Client,
    request: &Request,
    input: Input,
    console: &mut Console,
) -> Result<Exit, CliError> {
    let mut session = remote::start(client, request, input).await?;
    remote::pump(&mut session, console).await
}

/// Reads stdin on its own thread (a blocking read would hold up the runtime's shutdown);
/// the channel closes at EOF.
fn read_in_background(mut input: Box<dyn Read + Send>) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(STDIN_CHUNKS);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    rx
}

/// The first size (see [`FirstSize`]), then the size again on every SIGWINCH.
fn watch_window_size(first_size: FirstSize) -> (mpsc::Receiver<TerminalSize>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(async move {
        let mut winch = signal(SignalKind::window_change()).ok();
        if let (FirstSize::Redraw, Some(size)) = (first_size, window_size()) {
            let larger = TerminalSize {
                width: size.width.saturating_add(1),
                height: size.height.saturating_add(1),
            };
            if tx.send(larger).await.is_err() {
                return;
            }
        }
        loop {
            if let Some(size) = window_size() {
                if tx.send(size).await.is_err() {
                    return;
                }
            }
            let Some(winch) = winch.as_mut() else {
                return;
            };
            if winch.recv().await.is_none() {
                return;
            }
        }
    });
    (rx, task)
}

/// Resolves with the signal number when SIGTERM or SIGHUP arrives, so the raw-mode guard
/// can restore the terminal before the process ends.
async fn termination() -> i32 {
    let term = signal(SignalKind::terminate());
    let hangup = signal(SignalKind::hangup());
    let (Ok(mut term), Ok(mut hangup)) = (term, hangup) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => SignalKind::terminate().as_raw_value(),
        _ = hangup.recv() => SignalKind::hangup().as_raw_value(),
    }
}
