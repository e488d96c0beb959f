//! A command run to completion in a container through its pod's shim (kubelet's ExecSync), for
//! exec probes and exec lifecycle hooks.

use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use crate::shim::client::ShimClient;
use crate::shim::frame;
use crate::shim::protocol::ExecRequest;

/// kubelet keeps at most this much of an exec's combined output (maxReadLength).
pub const MAX_OUTPUT: usize = 10 * 1024;

/// How a command in a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code as Kubernetes reports it (128 + signal for a killed process).
    pub exit_code: i32,
    /// stdout and stderr as they came, capped at [`MAX_OUTPUT`] bytes.
    pub output: String,
    /// stderr alone, capped at [`MAX_OUTPUT`] bytes (the CRI's exit error quotes it).
    pub stderr: String,
}

impl ExecOutput {
    /// The CRI's error for a non-zero exit, as lifecycle hook messages print it:
    /// `command 'sh -c exit 1' exited with 1: <stderr>`; None on exit 0.
    pub fn exit_error(&self, command: &[String]) -> Option<String> {
        (self.exit_code != 0).then(|| {
            format!(
                "command '{}' exited with {}: {}",
                command.join(" "),
                self.exit_code,
                self.stderr
            )
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The CRI's TimeoutError text; the process is killed by the shim when the stream closes.
    #[error("command {} timed out", super::go_quote(.command))]
    TimedOut { command: String },
    #[error("cannot exec in container {container}: {message}")]
    Failed { container: String, message: String },
}

/// Runs `command` in container `container_id` and waits for its exit status, at most `timeout`
/// when given. On timeout the stream to the shim is dropped, which makes the shim kill the
/// process (and its process group), even when a background child still holds its stdout.
pub async fn exec_in_container(
    shim: &ShimClient,
    container_id: &str,
    command: &[String],
    timeout: Option<Duration>,
) -> Result<ExecOutput, ExecError> {
    let run = run_exec(shim, container_id, command);
    match timeout {
        None => run.await,
        Some(limit) => tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
            Err(ExecError::TimedOut {
                command: command.join(" "),
            })
        }),
    }
}

async fn run_exec(
    shim: &ShimClient,
    container_id: &str,
    command: &[String],
) -> Result<ExecOutput, ExecError> {
    let failed = |message: String| ExecError::Failed {
        container: container_id.to_string(),
        message,
    };
    if command.is_empty() {
        return Err(failed("no command given".into()));
    }
    let request = ExecRequest {
        id: container_id.to_string(),
        command: command.to_vec(),
        tty: false,
        stdin: false,
    };
    let stream = shim
        .exec(request)
        .await
        .map_err(|e| failed(e.to_string()))?;
    read_frames(stream).await.map_err(failed)
}

/// Reads output frames until the STATUS frame.
async fn read_frames(mut stream: UnixStream) -> Result<ExecOutput, String> {
    let mut output = Capped::default();
    let mut stderr = Capped::default();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16384];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the exec stream: {e}"))?;
        if n == 0 {
            return Err("the exec stream closed before the exit status".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        for (channel, payload) in frame::decode(&mut buf) {
            match channel {
                frame::STDOUT => output.push(&payload),
                frame::STDERR => {
                    output.push(&payload);
                    stderr.push(&payload);
                }
                frame::STATUS => {
                    let exit_code = exit_status(&payload)?;
                    return Ok(ExecOutput {
                        exit_code,
                        output: output.into_string(),
                        stderr: stderr.into_string(),
                    });
                }
                _ => {}
            }
        }
    }
}

/// `{"exitCode": N}` → N; `{"error": "..."}` → the error.
fn exit_status(payload: &[u8]) -> Result<i32, String> {
    let status: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("unreadable exec status: {e}"))?;
    if let Some(message) = status.get("error").and_then(|e| e.as_str()) {
        return Err(message.to_string());
    }
    status
        .get("exitCode")
        .and_then(|c| c.as_i64())
        .map(|c| c as i32)
        .ok_or_else(|| format!("exec status without an exit code: {status}"))
}

/// Bytes kept up to [`MAX_OUTPUT`], the rest discarded (kubelet's LimitWriter).
#[derive(Default)]
struct Capped(Vec<u8>);

impl Capped {
    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_OUTPUT.saturating_sub(self.0.len());
        self.0.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn into_string(self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

/// `$(VAR)` expansion with only the container's literal env values (kubelet
/// ExpandContainerCommandOnlyStatic): every env entry counts with its `value`, empty for
/// valueFrom ones; the last entry of a name wins; `$$` is `$`; unknown references stay.
pub fn expand_static(command: &[String], container: &Container) -> Vec<String> {
    let env = container.env.as_deref().unwrap_or_default();
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|var| var.name == name)
            .map(|var| var.value.clone().unwrap_or_default())
    };
    command
        .iter()
        .map(|arg| peapod_api::expand::expand(arg, lookup))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;

    fn container(env: serde_json::Value) -> Container {
        serde_json::from_value(serde_json::json!({"name": "c", "env": env})).unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn expansion_uses_only_literal_env_values() {
        let c = container(serde_json::json!([
            {"name": "FILE", "value": "/tmp/healthy"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "DUP", "value": "first"},
            {"name": "DUP", "value": "second"},
        ]));
        let command = strings(&[
            "cat",
            "$(FILE)",
            "[$(POD)]",
            "$(DUP)",
            "$(MISSING)",
            "$$(FILE)",
        ]);
        assert_eq!(
            expand_static(&command, &c),
            strings(&[
                "cat",
                "/tmp/healthy",
                "[]",
                "second",
                "$(MISSING)",
                "$(FILE)"
            ])
        );
        let no_env = container(serde_json::Value::Null);
        assert_eq!(
            expand_static(&strings(&["$(X)"]), &no_env),
            strings(&["$(X)"])
        );
    }

    #[test]
    fn output_is_capped_at_ten_kib() {
        let mut capped = Capped::default();
        capped.push(&vec![b'a'; 8 * 1024]);
        capped.push(&vec![b'b'; 4 * 1024]);
        capped.push(b"c");
        let text = capped.into_string();
        assert_eq!(text.len(), MAX_OUTPUT);
        assert!(text.ends_with('b'));
        assert_eq!(text.matches('b').count(), 2 * 1024);
    }

    #[test]
    fn exit_errors_quote_the_command_and_stderr() {
        let out = ExecOutput {
            exit_code: 1,
            output: "out\nerr\n".into(),
            stderr: "err\n".into(),
        };
        let command = strings(&["sh", "-c", "exit 1"]);
        assert_eq!(
            out.exit_error(&command).unwrap(),
            "command 'sh -c exit 1' exited with 1: err\n"
        );
        let ok = ExecOutput {
            exit_code: 0,
            ..out
        };
        assert_eq!(ok.exit_error(&command), None);
    }

    /// A stand-in shim: answers each exec connection with `frames`, then keeps it open when
    /// `hold` (a process whose background child keeps stdout open).
    async fn fake_shim(dir: &Path, frames: Vec<u8>, hold: bool) -> Arc<AtomicUsize> {
        let listener = UnixListener::bind(dir.join("shim.sock")).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let frames = frames.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    reader.read_line(&mut line).await.unwrap();
                    assert!(line.contains("\"op\":\"exec\""), "{line}");
                    let mut stream = reader.into_inner();
                    stream.write_all(&frames).await.unwrap();
                    if hold {
                        let mut rest = Vec::new();
                        let _ = stream.read_to_end(&mut rest).await;
                    }
                });
            }
        });
        calls
    }

    #[tokio::test]
    async fn collects_output_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let mut frames = frame::encode(frame::STDOUT, b"cat: can't open ");
        frames.extend(frame::encode(frame::STDERR, b"'/tmp/healthy'\n"));
        frames.extend(frame::encode(frame::STATUS, br#"{"exitCode":1}"#));
        fake_shim(dir.path(), frames, false).await;
        let shim = ShimClient::new(dir.path());
        let out = exec_in_container(&shim, "c1", &strings(&["cat", "/tmp/healthy"]), None)
            .await
            .unwrap();
        assert_eq!(out.exit_code, 1);
        assert_eq!(out.output, "cat: can't open '/tmp/healthy'\n");
        assert_eq!(out.stderr, "'/tmp/healthy'\n");
    }

    #[tokio::test]
    async fn times_out_while_the_stream_stays_open() {
        let dir = tempfile::tempdir().unwrap();
        let frames = frame::encode(frame::STDOUT, b"started\n");
        fake_shim(dir.path(), frames, true).await;
        let shim = ShimClient::new(dir.path());
        let command = strings(&["sh", "-c", "sleep 10 & exit 1"]);
        let started = std::time::Instant::now();
        let err = exec_in_container(&shim, "c1", &command, Some(Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            err.to_string(),
            "command \"sh -c sleep 10 & exit 1\" timed out"
        );
    }

    #[tokio::test]
    async fn shim_errors_and_missing_shims_fail() {
        let dir = tempfile::tempdir().unwrap();
        let frames = frame::encode(frame::STATUS, br#"{"error":"container c1 is not running"}"#);
        fake_shim(dir.path(), frames, false).await;
        let shim = ShimClient::new(dir.path());
        let err = exec_in_container(&shim, "c1", &strings(&["true"]), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot exec in container c1: container c1 is not running"
        );
        let nowhere = ShimClient::new(&dir.path().join("absent"));
        let err = exec_in_container(&nowhere, "c1", &strings(&["true"]), None)
            .await
            .unwrap_err();
        assert!(matches!(err, ExecError::Failed { .. }), "{err}");
    }

    #[tokio::test]
    async fn errored_exec_probes_are_retried_three_times() {
        let dir = tempfile::tempdir().unwrap();
        let frames = frame::encode(frame::STATUS, br#"{"error":"no such process"}"#);
        let calls = fake_shim(dir.path(), frames, false).await;
        let shim = ShimClient::new(dir.path());
        let container = container(serde_json::Value::Null);
        let probe: k8s_openapi::api::core::v1::Probe =
            serde_json::from_value(serde_json::json!({"exec": {"command": ["true"]}})).unwrap();
        let target = super::super::ProbeTarget {
            shim: &shim,
            container_id: "c1",
            container: &container,
            pod_ip: None,
        };
        let outcome = super::super::run_probe(&probe, &target).await;
        assert!(matches!(outcome, super::super::ProbeOutcome::Errored(_)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
