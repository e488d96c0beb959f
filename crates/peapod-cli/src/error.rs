//! The error a verb ends with, and how it is shown (kubectl's one-line wording).

use crate::client::ClientError;
use crate::cp::CpError;
use crate::delete::DeleteError;
use crate::get::GetError;
use crate::images::ImageError;
use crate::manifest::ManifestError;
use crate::pod_target::PodError;
use crate::port_forward::PortForwardError;
use crate::pull::PullError;
use crate::remote::RemoteError;
use crate::target::TargetError;
use crate::upgrade::HandshakeError;

/// Everything that can end a verb early.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Get(#[from] GetError),
    #[error(transparent)]
    Delete(#[from] DeleteError),
    #[error(transparent)]
    Pod(#[from] PodError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Cp(#[from] CpError),
    #[error(transparent)]
    PortForward(#[from] PortForwardError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error("writing to {stream}: {source}")]
    Write {
        stream: &'static str,
        source: std::io::Error,
    },
}

impl CliError {
    /// The line printed on stderr: server errors as `Error from server (REASON): ...`, the
    /// rest as `error: ...`; `None` when stdout went away (a closed pipe is not worth a line).
    pub fn render(&self) -> Option<String> {
        match self {
            CliError::Client(ClientError::Api(api)) => Some(api.to_string()),
            CliError::Write { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe => {
                None
            }
            other => Some(format!("error: {other}")),
        }
    }
}
