//! `exec`: upgrades a connection to the agent, then pumps stdin/resizes out as frames and
//! STDOUT/STDERR frames back until the STATUS frame gives the exit code.

use std::io::Read;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::args::ExecArgs;
use crate::client::{Call, Client};
use crate::console::Console;
use crate::error::CliError;
use crate::frame;
use crate::query::{pod_path, Query};
use crate::target::single_pod;
use crate::terminal::{window_size, RawMode, TerminalError, WindowSize};

pub const EXEC_PROTOCOL: &str = "peapod-exec/v1";
const NOT_A_TERMINAL: &str =
    "Unable to use a TTY - input is not a terminal or the right kind of file";
const READ_BUFFER: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The remote side reported an error instead of an exit code.
    #[error("{0}")]
    Remote(String),
    #[error("invalid exec status {status:?}: {source}")]
    BadStatus {
        status: String,
        source: serde_json::Error,
    },
    #[error("the exec stream ended without an exit status")]
    NoStatus,
    #[error("reading the exec stream: {0}")]
    Read(#[source] std::io::Error),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
}

/// The exec URL for these flags (`tty` is what will actually be used).
pub fn exec_path(args: &ExecArgs, name: &str, tty: bool) -> String {
    let namespace = args.namespace.as_deref().unwrap_or("default");
    let mut query = Query::new();
    query.opt("container", args.container.as_deref());
    for word in &args.command {
        query.push("command", word.clone());
    }
    query.flag("stdin", args.stdin).flag("tty", tty);
    format!("{}/exec{query}", pod_path(namespace, name))
}

pub async fn exec(client: &Client, args: ExecArgs, console: &mut Console) -> Result<i32, CliError> {
    let name = single_pod(&args.pod)?;
    // As kubectl: a TTY needs stdin, and stdin must be a terminal.
    let tty = args.tty && args.stdin && console.stdin_is_terminal();
    if args.tty && args.stdin && !tty {
        console.eprintln(NOT_A_TERMINAL);
    }
    let call = Call::new(hyper::Method::POST, exec_path(&args, &name, tty));
    let stream = client.upgrade(call, EXEC_PROTOCOL).await?;
    let input = args.stdin.then(|| read_in_background(console.take_stdin()));
    if !tty {
        return session(stream, input, None, console).await;
    }
    let _raw = RawMode::enable().map_err(ExecError::from)?;
    let (resizes, watcher) = watch_window_size();
    let result = tokio::select! {
        result = session(stream, input, Some(resizes), console) => result,
        signal = termination() => Ok(128 + signal),
    };
    watcher.abort();
    result
}

/// Reads stdin on its own thread (a blocking read would hold up the runtime's shutdown);
/// the channel closes at EOF.
fn read_in_background(mut input: Box<dyn Read + Send>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if tx.blocking_send(buf[..n].to_vec()).is_err() => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    rx
}

/// The current size now, then again on every SIGWINCH.
fn watch_window_size() -> (mpsc::Receiver<WindowSize>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(async move {
        let mut winch = signal(SignalKind::window_change()).ok();
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

/// Runs one exec session over `stream`: `input` chunks become STDIN frames (STDIN_EOF when
/// it closes), `resizes` become RESIZE frames; returns the exit code from the STATUS frame.
pub async fn session<S>(
    stream: S,
    input: Option<mpsc::Receiver<Vec<u8>>>,
    resizes: Option<mpsc::Receiver<WindowSize>>,
    console: &mut Console,
) -> Result<i32, CliError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let sender = tokio::spawn(send_frames(writer, input, resizes));
    let result = receive_frames(&mut reader, console).await;
    sender.abort();
    result
}

async fn send_frames<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut input: Option<mpsc::Receiver<Vec<u8>>>,
    mut resizes: Option<mpsc::Receiver<WindowSize>>,
) {
    loop {
        let frame = tokio::select! {
            chunk = next(&mut input) => match chunk {
                Some(data) => frame::encode(frame::STDIN, &data),
                None => {
                    input = None;
                    frame::encode(frame::STDIN_EOF, &[])
                }
            },
            size = next(&mut resizes) => match size {
                Some(size) => frame::encode(frame::RESIZE, &serde_json::to_vec(&size).unwrap_or_default()),
                None => {
                    resizes = None;
                    continue;
                }
            },
        };
        if writer.write_all(&frame).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
}

/// The next item of an optional channel; never resolves when there is no channel.
async fn next<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn receive_frames<R: AsyncRead + Unpin>(
    reader: &mut R,
    console: &mut Console,
) -> Result<i32, CliError> {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = reader.read(&mut buf).await.map_err(ExecError::Read)?;
        if n == 0 {
            return Err(ExecError::NoStatus.into());
        }
        pending.extend_from_slice(&buf[..n]);
        for (channel, payload) in frame::decode(&mut pending) {
            match channel {
                frame::STDOUT => console.out(&payload)?,
                frame::STDERR => console.err(&payload)?,
                frame::STATUS => return Ok(exit_code(&payload)?),
                _ => {}
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExitStatus {
    exit_code: Option<i32>,
    error: Option<String>,
}

/// `{"exitCode": N}` → N; `{"error": "..."}` → that error.
fn exit_code(payload: &[u8]) -> Result<i32, ExecError> {
    let status: ExitStatus =
        serde_json::from_slice(payload).map_err(|source| ExecError::BadStatus {
            status: String::from_utf8_lossy(payload).into_owned(),
            source,
        })?;
    match (status.exit_code, status.error) {
        (Some(code), _) => Ok(code),
        (None, Some(error)) => Err(ExecError::Remote(error)),
        (None, None) => Err(ExecError::Remote(
            "exec ended without an exit code".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_payloads() {
        assert_eq!(exit_code(br#"{"exitCode":3}"#).unwrap(), 3);
        assert_eq!(
            exit_code(br#"{"error":"container \"x\" not found"}"#)
                .unwrap_err()
                .to_string(),
            "container \"x\" not found"
        );
        assert!(matches!(
            exit_code(b"nope"),
            Err(ExecError::BadStatus { .. })
        ));
    }
}
