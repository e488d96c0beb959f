//! Container logs under load: a container flooding stdout is never slowed down by logging, and
//! its log rotates at kubelet's 10 MiB keeping 5 files.

use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn a_flooding_container_is_not_blocked_and_its_log_rotates() {
    let agent = Agent::start();
    // About 60 MiB of 1000-character lines, then a marker line.
    agent.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: flood}
spec:
  restartPolicy: Never
  containers:
  - name: noisy
    image: busybox
    command: ["sh", "-c", "head -c 60000000 /dev/zero | tr '\\0' x | fold -w 1000; echo; echo flood-done"]
"#,
    );
    let started = Instant::now();
    let pod = agent.wait_pod(
        "flood",
        "the flood to finish",
        Duration::from_secs(60),
        |p| p["status"]["phase"] == "Succeeded",
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "60 MB of output took {took:?}"
    );
    assert_eq!(
        container(&pod, "noisy")["state"]["terminated"]["exitCode"],
        0
    );

    let uid = agent.uid("flood");
    let dir = agent
        .path()
        .join(format!("var/log/pods/default_flood_{uid}/noisy"));
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    assert!(files.iter().any(|(n, _)| n == "0.log"), "{files:?}");
    let rotated: Vec<_> = files
        .iter()
        .filter(|(n, _)| n.starts_with("0.log."))
        .collect();
    assert_eq!(
        rotated.len(),
        4,
        "kubelet keeps 5 files: the current and 4 rotated: {files:?}"
    );
    for (name, size) in &files {
        assert!(
            *size <= 10 * 1024 * 1024 + 2048,
            "{name} is {size} bytes, over 10 MiB"
        );
    }
    let tail = agent.ok(&["logs", "flood", "--tail", "1"]);
    assert_eq!(tail.trim(), "flood-done");
    agent.delete_and_check("flood", "0");
}
