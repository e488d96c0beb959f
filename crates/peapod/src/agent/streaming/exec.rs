//! pods/exec: runs a command in a running container through its shim, with the streams the
//! client asked for (PodExecOptions), and reports its exit as kubelet's ServeExec does.

use axum::extract::{Path, RawQuery, Request, State};
use axum::response::Response;
use peapod_apiserver::status::ApiError;
use peapod_streams::negotiate::Service;
use peapod_streams::remotecommand::{Options, Outcome};

use super::bridge::{self, ShimStatus};
use super::{negotiated, target, upgrade, ConnectQuery, Result, Shared};
use crate::shim::protocol::ExecRequest;

pub async fn serve(
    State(ctx): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response> {
    let query = ConnectQuery::parse(query);
    let command = query.values("command");
    if command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        )
        .into());
    }
    let options = options(&query)?;
    let target = target(&ctx, &ns, &name, query.value("container"))?;
    let exec = ExecRequest {
        id: target.id.clone(),
        command: command.clone(),
        tty: options.tty,
        stdin: options.stdin,
    };
    let negotiated = negotiated(&request, Service::RemoteCommand)?;
    Ok(upgrade(request, negotiated, move |io, negotiated| {
        bridge::serve(
            io,
            negotiated,
            options,
            "error executing command in container",
            || async move { target.shim.exec(exec).await },
            move |status| outcome(&command, status),
        )
    }))
}

/// kubelet's `remotecommand.NewOptions`: a TTY has no separate stderr, and at least one
/// stream must be asked for.
pub(super) fn options(query: &ConnectQuery) -> Result<Options> {
    let tty = query.flag("tty")?;
    let options = Options {
        stdin: query.flag("stdin")?,
        stdout: query.flag("stdout")?,
        stderr: query.flag("stderr")? && !tty,
        tty,
    };
    if !options.stdin && !options.stdout && !options.stderr {
        return Err(
            ApiError::bad_request("you must specify at least 1 of stdin, stdout, stderr").into(),
        );
    }
    Ok(options)
}

/// The exec's end as containerd words it to kubelet (`error executing command [sh -c exit 3],
/// exit code 3`), which kubelet turns into NonZeroExitCode.
fn outcome(command: &[String], status: ShimStatus) -> Outcome {
    match status {
        ShimStatus {
            exit_code: Some(0), ..
        } => Outcome::Success,
        ShimStatus {
            exit_code: Some(code),
            ..
        } => Outcome::ExitCode {
            code,
            message: format!(
                "error executing command [{}], exit code {code}",
                command.join(" ")
            ),
        },
        ShimStatus { error, .. } => Outcome::Internal(format!(
            "error executing command in container: {}",
            start_failure(&error.unwrap_or_else(|| "no exit status".into()))
        )),
    }
}

/// A process that could not start, worded as containerd and runc word it to kubelet (`failed
/// to exec in container: ... exec: "nope": executable file not found in $PATH: unknown`).
fn start_failure(error: &str) -> String {
    let cause = match missing_executable(error) {
        Some(name) => format!("exec: \"{name}\": executable file not found in $PATH"),
        None => error.to_string(),
    };
    format!(
        "failed to exec in container: failed to start exec \"{}\": OCI runtime exec failed: exec failed: unable to start container process: {cause}: unknown",
        exec_id()
    )
}

/// The executable libcontainer could not find (`executable 'nope' not found in $PATH`).
fn missing_executable(error: &str) -> Option<&str> {
    let (_, rest) = error.split_once("executable '")?;
    let (name, rest) = rest.split_once('\'')?;
    rest.starts_with(" not found").then_some(name)
}

/// A containerd-style exec id: 64 random hex digits.
fn exec_id() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> ConnectQuery {
        ConnectQuery::parse(Some(raw.to_string()))
    }

    #[test]
    fn a_terminal_has_no_stderr_and_some_stream_is_required() {
        let options = options(&query("stdout=true&stderr=true&tty=true&stdin=1")).unwrap();
        assert!(options.tty && options.stdin && options.stdout && !options.stderr);
        let refused = options_error(&query("tty=true"));
        assert!(
            refused.contains("at least 1 of stdin, stdout, stderr"),
            "{refused}"
        );
        let refused = options_error(&query("stdout=maybe"));
        assert!(refused.contains("invalid syntax"), "{refused}");
    }

    fn options_error(query: &ConnectQuery) -> String {
        options(query).unwrap_err().to_string()
    }

    #[test]
    fn exits_are_worded_as_containerd_and_kubelet_word_them() {
        let command = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        let exit = |code| ShimStatus {
            exit_code: Some(code),
            error: None,
        };
        assert_eq!(outcome(&command, exit(0)), Outcome::Success);
        assert_eq!(
            outcome(&command, exit(3)),
            Outcome::ExitCode {
                code: 3,
                message: "error executing command [sh -c exit 3], exit code 3".into()
            }
        );
        let failed = ShimStatus {
            exit_code: None,
            error: Some("exec in container 1f: failed to create container: exec process failed with error error in executing process : executable 'nope' not found in $PATH".into()),
        };
        let Outcome::Internal(message) = outcome(&command, failed) else {
            panic!("a start failure is an internal error");
        };
        let (before, after) = message.split_once("failed to start exec \"").unwrap();
        assert_eq!(
            before,
            "error executing command in container: failed to exec in container: "
        );
        assert_eq!(after[..64].len(), 64);
        assert_eq!(
            &after[64..],
            "\": OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown"
        );
    }
}
