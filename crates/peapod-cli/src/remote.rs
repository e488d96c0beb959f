//! A command session in a container, for exec, attach and cp's tar: the request kubectl
//! makes (its query, the WebSocket `v5.channel.k8s.io` upgrade), the session's output handed
//! to a sink until the outcome, and the outcome ended as kubectl ends it.

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use peapod_streams::negotiate::V5_CHANNEL;
use peapod_streams::remotecommand::client::{self, ClientError, Event, Exit, Input};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::console::Console;
use crate::error::CliError;
use crate::pod_target::{self, PodError};
use crate::query::{pod_path, Query};
use crate::terminal::TerminalError;
use crate::upgrade;

/// A session that could not run to its outcome, or whose outcome is a failure.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Session(#[from] ClientError),
    /// The command failed other than by exiting non-zero (it could not start...): the
    /// message kubectl prints.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    #[error("cannot attach to the container: {0}")]
    Attach(#[source] PodError),
}

/// Which subresource the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subresource {
    Exec { command: Vec<String> },
    Attach,
}

/// One pods/exec or pods/attach request, with the streams kubectl asks for: stdout always,
/// stderr unless there is a terminal (then it is merged into stdout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub subresource: Subresource,
    pub stdin: bool,
    pub tty: bool,
}

impl Request {
    /// The URL as client-go encodes PodExecOptions and PodAttachOptions: keys sorted, false
    /// flags left out.
    pub fn path(&self) -> String {
        let mut query = Query::new();
        let name = match &self.subresource {
            Subresource::Exec { command } => {
                for word in command {
                    query.push("command", word.clone());
                }
                "exec"
            }
            Subresource::Attach => "attach",
        };
        query
            .push("container", self.container.clone())
            .flag("stderr", !self.tty)
            .flag("stdin", self.stdin)
            .flag("stdout", true)
            .flag("tty", self.tty);
        format!("{}/{name}{query}", pod_path(&self.namespace, &self.pod))
    }
}

/// A container a session runs in, as the verbs name it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    /// `-c`; `None` takes the pod's default container.
    pub container: Option<&'a str>,
}

/// kubectl's exec up to the request: the pod fetched and not completed, the container
/// defaulted when not given (`warn` hears which). There is no terminal yet: the caller
/// decides.
pub async fn exec_request(
    client: &Client,
    target: Target<'_>,
    command: Vec<String>,
    stdin: bool,
    warn: Option<&mut Console>,
) -> Result<Request, CliError> {
    let pod = pod_target::fetch(client, target.namespace, target.pod).await?;
    pod_target::refuse_completed(&pod, "exec into a container")?;
    let container = match target.container {
        Some(container) => container.to_string(),
        None => pod_target::choose_container(&pod, None, warn)?.name,
    };
    Ok(Request {
        namespace: target.namespace.to_string(),
        pod: target.pod.to_string(),
        container,
        subresource: Subresource::Exec { command },
        stdin,
        tty: false,
    })
}

pub type Session = client::Client<TokioIo<Upgraded>>;

/// Upgrades `request` and starts its session.
pub async fn start(client: &Client, request: &Request, input: Input) -> Result<Session, CliError> {
    let io = upgrade::websocket(client, request.path(), V5_CHANNEL).await?;
    Ok(client::Client::start(io, input).await)
}

/// Where a session's output goes.
pub trait Output {
    async fn stdout(&mut self, data: Bytes) -> Result<(), CliError>;
    async fn stderr(&mut self, data: Bytes) -> Result<(), CliError>;
}

impl Output for Console {
    async fn stdout(&mut self, data: Bytes) -> Result<(), CliError> {
        self.out(&data)
    }

    async fn stderr(&mut self, data: Bytes) -> Result<(), CliError> {
        self.err(&data)
    }
}

/// Output nobody reads (cp's `test -d`).
pub struct Discard;

impl Output for Discard {
    async fn stdout(&mut self, _: Bytes) -> Result<(), CliError> {
        Ok(())
    }

    async fn stderr(&mut self, _: Bytes) -> Result<(), CliError> {
        Ok(())
    }
}

/// Hands the session's output to `output` until the outcome.
pub async fn pump(session: &mut Session, output: &mut impl Output) -> Result<Exit, CliError> {
    loop {
        match session.next().await.map_err(RemoteError::from)? {
            Event::Stdout(data) => output.stdout(data).await?,
            Event::Stderr(data) => output.stderr(data).await?,
            Event::Exited(exit) => return Ok(exit),
        }
    }
}

/// Runs `request` to its outcome without a terminal.
pub async fn run(
    client: &Client,
    request: &Request,
    stdin: Option<mpsc::Receiver<Bytes>>,
    output: &mut impl Output,
) -> Result<Exit, CliError> {
    let input = Input {
        stdin,
        resize: None,
    };
    let mut session = start(client, request, input).await?;
    pump(&mut session, output).await
}

/// kubectl's end of a remote command: 0 for a success; for a process that exited non-zero,
/// `command terminated with exit code N` and N; any other failure is an error.
pub fn exit_code(exit: Exit, console: &mut Console) -> Result<i32, CliError> {
    match exit {
        Exit::Success => Ok(0),
        Exit::Code(code) => {
            console.eprintln(&format!("command terminated with exit code {code}"));
            Ok(code)
        }
        Exit::Failure(message) => Err(RemoteError::Failed(message).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(subresource: Subresource, stdin: bool, tty: bool) -> Request {
        Request {
            namespace: "default".into(),
            pod: "web".into(),
            container: "app".into(),
            subresource,
            stdin,
            tty,
        }
    }

    #[test]
    fn queries_are_encoded_as_client_go_encodes_them() {
        let command = vec!["sh".to_string(), "-c".into(), "cat >/x".into()];
        let exec = request(Subresource::Exec { command }, true, false);
        assert_eq!(
            exec.path(),
            "/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=cat%20%3E%2Fx&container=app&stderr=true&stdin=true&stdout=true"
        );
        let attach = request(Subresource::Attach, true, true);
        assert_eq!(
            attach.path(),
            "/api/v1/namespaces/default/pods/web/attach?container=app&stdin=true&stdout=true&tty=true"
        );
    }

    #[test]
    fn outcomes_end_as_kubectl_ends_them() {
        let err = crate::tests::fake::Buf::default();
        let mut console = Console::new(
            Box::new(std::io::sink()),
            Box::new(err.clone()),
            Box::new(std::io::empty()),
        );
        assert_eq!(exit_code(Exit::Success, &mut console).unwrap(), 0);
        assert_eq!(exit_code(Exit::Code(3), &mut console).unwrap(), 3);
        assert_eq!(err.text(), "command terminated with exit code 3\n");
        let failed = exit_code(
            Exit::Failure("Internal error occurred: no".into()),
            &mut console,
        );
        let line = failed.unwrap_err().render();
        assert_eq!(line.as_deref(), Some("error: Internal error occurred: no"));
    }
}
