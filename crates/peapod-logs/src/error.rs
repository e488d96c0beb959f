//! The crate's error type: every failure names the file or operation it concerns.

use std::io;
use std::path::PathBuf;

use crate::line::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid log line: {0}")]
    Parse(#[from] ParseError),
    #[error("failed to create log directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("failed to open log file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("failed to write log file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("failed to read log file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("failed to list rotated logs in {path}: {source}")]
    List { path: PathBuf, source: io::Error },
    #[error("failed to rotate log file {from} to {to}: {source}")]
    Rotate {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("failed to remove old log file {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("log file {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("failed to write logs of {path} to the output: {source}")]
    Output { path: PathBuf, source: io::Error },
}
