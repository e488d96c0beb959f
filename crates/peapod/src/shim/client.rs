//! The agent's side of the shim protocol, over tokio.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::protocol::{
    AttachRequest, CreateRequest, ExecRequest, ExitEvent, Request, Response, ShimState,
};

#[derive(Debug, thiserror::Error)]
pub enum ShimClientError {
    #[error("pod sandbox unreachable at {socket}: {source}")]
    Unreachable {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("pod sandbox closed the connection")]
    Closed,
    #[error("pod sandbox sent an unreadable answer: {0}")]
    Protocol(#[from] serde_json::Error),
    #[error("{0}")]
    Failed(String),
    #[error("pod sandbox sent an unexpected answer to {0}")]
    Unexpected(&'static str),
}

#[derive(Clone, Debug)]
pub struct ShimClient {
    socket: PathBuf,
}

impl ShimClient {
    pub fn new(run_dir: &Path) -> ShimClient {
        ShimClient {
            socket: run_dir.join("shim.sock"),
        }
    }

    async fn connect(&self, request: &Request) -> Result<UnixStream, ShimClientError> {
        let mut stream = UnixStream::connect(&self.socket).await.map_err(|source| {
            ShimClientError::Unreachable {
                socket: self.socket.display().to_string(),
                source,
            }
        })?;
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        stream
            .write_all(&line)
            .await
            .map_err(|_| ShimClientError::Closed)?;
        Ok(stream)
    }

    async fn call(&self, request: &Request) -> Result<Response, ShimClientError> {
        let stream = self.connect(request).await?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|_| ShimClientError::Closed)?;
        if n == 0 {
            return Err(ShimClientError::Closed);
        }
        match serde_json::from_str(&line)? {
            Response::Error { message } => Err(ShimClientError::Failed(message)),
            response => Ok(response),
        }
    }

    async fn ok(&self, request: &Request, what: &'static str) -> Result<(), ShimClientError> {
        match self.call(request).await? {
            Response::Ok => Ok(()),
            _ => Err(ShimClientError::Unexpected(what)),
        }
    }

    pub async fn state(&self) -> Result<ShimState, ShimClientError> {
        match self.call(&Request::State).await? {
            Response::State(state) => Ok(state),
            _ => Err(ShimClientError::Unexpected("state")),
        }
    }

    pub async fn create(&self, request: CreateRequest) -> Result<i32, ShimClientError> {
        match self.call(&Request::Create(Box::new(request))).await? {
            Response::Created { pid } => Ok(pid),
            _ => Err(ShimClientError::Unexpected("create")),
        }
    }

    pub async fn start(&self, id: &str) -> Result<(), ShimClientError> {
        self.ok(&Request::Start { id: id.into() }, "start").await
    }

    pub async fn kill(&self, id: &str, signal: i32) -> Result<(), ShimClientError> {
        self.ok(
            &Request::Kill {
                id: id.into(),
                signal,
            },
            "kill",
        )
        .await
    }

    pub async fn remove(&self, id: &str) -> Result<(), ShimClientError> {
        self.ok(&Request::Remove { id: id.into() }, "remove").await
    }

    pub async fn shutdown(&self) -> Result<(), ShimClientError> {
        self.ok(&Request::Shutdown, "shutdown").await
    }

    /// Container exits, one per line, until the shim goes away.
    pub async fn watch(&self) -> Result<ExitWatch, ShimClientError> {
        let stream = self.connect(&Request::Watch).await?;
        Ok(ExitWatch {
            reader: BufReader::new(stream),
        })
    }

    /// Starts an exec; the returned stream carries protocol frames both ways.
    pub async fn exec(&self, request: ExecRequest) -> Result<UnixStream, ShimClientError> {
        self.connect(&Request::Exec(request)).await
    }

    /// Attaches to container `id`'s main process; the returned stream carries protocol frames
    /// both ways (STDIN frames count only with `stdin`, RESIZE frames only with `tty`).
    pub async fn attach(
        &self,
        id: &str,
        stdin: bool,
        tty: bool,
    ) -> Result<UnixStream, ShimClientError> {
        let request = AttachRequest {
            id: id.to_string(),
            stdin,
            tty,
        };
        self.connect(&Request::Attach(request)).await
    }
}

pub struct ExitWatch {
    reader: BufReader<UnixStream>,
}

impl ExitWatch {
    /// The next exit, or None when the shim is gone.
    pub async fn next(&mut self) -> Option<ExitEvent> {
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {
                    if let Ok(event) = serde_json::from_str(&line) {
                        return Some(event);
                    }
                }
            }
        }
    }
}
