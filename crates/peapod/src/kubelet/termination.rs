//! The message of a terminated container, as kubelet's getTerminationMessage reads it: the end
//! of the container's termination-message file or, under FallbackToLogsOnError after a failure
//! with an empty file, the end of its log; and the pod-wide cap on all those messages.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus};
use peapod_logs::{read_log, ReadOptions};

/// kubelet's MaxContainerTerminationMessageLength: the end of the file is kept.
const MAX_FILE_BYTES: u64 = 4 * 1024;
/// kubelet's MaxContainerTerminationMessageLogLines and ...LogLength for the log fallback.
const MAX_LOG_LINES: usize = 80;
const MAX_LOG_BYTES: usize = 2 * 1024;
/// kubelet's MaxPodTerminationMessageLogLength, shared evenly by the pod's containers.
const MAX_POD_BYTES: usize = 12 * 1024;

/// The termination message of an exited container: `file` is the host side of its
/// terminationMessagePath, `log` its CRI log; `fallback_to_logs` is the policy
/// FallbackToLogsOnError together with a non-zero exit.
pub fn read(file: &Path, log: &Path, fallback_to_logs: bool) -> Option<String> {
    let message = match read_end(file, MAX_FILE_BYTES) {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(_) if fallback_to_logs => log_end(log),
        Err(e) if e.kind() == io::ErrorKind::NotFound && fallback_to_logs => log_end(log),
        Ok(_) => String::new(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => format!("Error on reading termination log {}: {e}", file.display()),
    };
    Some(message).filter(|m| !m.is_empty())
}

fn read_end(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    file.seek(SeekFrom::Start(size.saturating_sub(limit)))?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The last 80 lines of the log, of which the last 2048 bytes.
fn log_end(log: &Path) -> String {
    let options = ReadOptions {
        tail: Some(MAX_LOG_LINES),
        ..Default::default()
    };
    let mut out = Vec::new();
    if let Err(e) = read_log(log, &options, &mut out, &|| true) {
        return format!("Error on reading termination message from logs: {e}");
    }
    let start = out.len().saturating_sub(MAX_LOG_BYTES);
    String::from_utf8_lossy(&out[start..]).into_owned()
}

/// Cuts every terminated message of the pod's statuses (state and lastState) to its share
/// of the pod-wide limit, as kubelet's status manager does.
pub fn cap_pod_messages(statuses: &mut [&mut ContainerStatus]) {
    if statuses.is_empty() {
        return;
    }
    let limit = MAX_POD_BYTES / statuses.len();
    for status in statuses.iter_mut() {
        for state in [status.state.as_mut(), status.last_state.as_mut()]
            .into_iter()
            .flatten()
        {
            cut_message(state, limit);
        }
    }
}

fn cut_message(state: &mut ContainerState, limit: usize) {
    let Some(message) = state.terminated.as_mut().and_then(|t| t.message.as_mut()) else {
        return;
    };
    if message.len() > limit {
        let mut end = limit;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerStateTerminated;

    fn cri_log(dir: &Path, lines: &[&str]) -> std::path::PathBuf {
        let path = dir.join("0.log");
        let text: String = lines
            .iter()
            .map(|l| format!("2026-11-22T10:00:00.000000000Z stdout F {l}\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_file_wins_and_keeps_its_end() {
        let tmp = tempfile::tempdir().unwrap();
        let log = cri_log(tmp.path(), &["from the log"]);
        let file = tmp.path().join("termination-log");
        std::fs::write(&file, "OK").unwrap();
        assert_eq!(read(&file, &log, true).as_deref(), Some("OK"));
        let long = format!("{}END", "x".repeat(5000));
        std::fs::write(&file, &long).unwrap();
        let message = read(&file, &log, false).unwrap();
        assert_eq!(message.len(), 4096);
        assert!(message.ends_with("END"));
    }

    #[test]
    fn an_empty_file_falls_back_to_the_log_only_when_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let log = cri_log(tmp.path(), &refs);
        let file = tmp.path().join("termination-log");
        std::fs::write(&file, "").unwrap();
        assert_eq!(read(&file, &log, false), None);
        let message = read(&file, &log, true).unwrap();
        assert!(message.starts_with("line 20\n"), "{message}");
        assert!(message.ends_with("line 99\n"), "{message}");
        let missing = tmp.path().join("gone");
        assert!(read(&missing, &log, true).unwrap().ends_with("line 99\n"));
        assert_eq!(read(&missing, &log, false), None);
    }

    #[test]
    fn the_log_fallback_keeps_the_last_2048_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let line = "y".repeat(100);
        let lines = vec![line.as_str(); 50];
        let log = cri_log(tmp.path(), &lines);
        let message = read(&tmp.path().join("none"), &log, true).unwrap();
        assert_eq!(message.len(), 2048);
    }

    #[test]
    fn pod_messages_share_twelve_kib() {
        let terminated = |message: &str| ContainerState {
            terminated: Some(ContainerStateTerminated {
                message: Some(message.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut a = ContainerStatus {
            state: Some(terminated(&"a".repeat(4096))),
            last_state: Some(terminated(&"é".repeat(3000))),
            ..Default::default()
        };
        let mut b = ContainerStatus::default();
        let mut c = ContainerStatus::default();
        let mut d = ContainerStatus::default();
        cap_pod_messages(&mut [&mut a, &mut b, &mut c, &mut d]);
        let message = |s: &Option<ContainerState>| {
            s.as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .message
                .clone()
                .unwrap()
        };
        assert_eq!(message(&a.state).len(), 3072);
        assert_eq!(message(&a.last_state).len(), 3072);
    }
}
