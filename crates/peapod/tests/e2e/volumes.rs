//! Volumes beyond the seed scenarios: a memory-backed emptyDir bounded by its sizeLimit and
//! kept for the pod's lifetime, and subPathExpr expanded from the downward API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;

#[test]
fn memory_empty_dir_is_a_bounded_tmpfs_and_sub_path_expr_expands() {
    let agent = Agent::start();
    agent.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: vols}
spec:
  terminationGracePeriodSeconds: 0
  volumes:
  - name: scratch
    emptyDir: {medium: Memory, sizeLimit: 1Mi}
  - name: shared
    emptyDir: {}
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: shared, mountPath: /per-pod, subPathExpr: "$(POD_NAME)/data"}
"#,
    );
    agent.wait_running("vols");
    let (code, mounts, _) = agent.exec("vols", "main", &["cat", "/proc/mounts"]);
    assert_eq!(code, 0);
    let scratch = mounts
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("/scratch"))
        .unwrap_or_else(|| panic!("/scratch is not mounted: {mounts}"));
    assert!(
        scratch.starts_with("tmpfs ") && scratch.contains("size=1024k"),
        "{scratch}"
    );
    let (code, _, err) = agent.exec(
        "vols",
        "main",
        &["sh", "-c", "head -c 2000000 /dev/zero > /scratch/big"],
    );
    assert_ne!(
        code, 0,
        "writing 2 MB into a 1 MiB emptyDir must fail: {err}"
    );
    let (_, size, _) = agent.exec("vols", "main", &["stat", "-c", "%s", "/scratch/big"]);
    let size: u64 = size.trim().parse().unwrap();
    assert!(size <= 1024 * 1024, "the tmpfs held {size} bytes");

    let (code, _, err) = agent.exec("vols", "main", &["sh", "-c", "echo hi > /per-pod/file"]);
    assert_eq!(code, 0, "{err}");
    let uid = agent.uid("vols");
    let on_host = agent
        .path()
        .join("var/lib/peapod/pods")
        .join(&uid)
        .join("volumes/kubernetes.io~empty-dir/shared/vols/data/file");
    assert_eq!(std::fs::read_to_string(&on_host).unwrap(), "hi\n");
    agent.delete_and_check("vols", "0");
}

/// kubelet keeps an emptyDir for the pod's lifetime: a memory-backed one survives the death of
/// the pod's sandbox (its tmpfs is the host's, not the shim's), and goes with the pod.
#[test]
fn a_memory_empty_dir_keeps_its_files_when_the_sandbox_is_recreated() {
    let agent = Agent::start();
    agent.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: memkeep}
spec:
  terminationGracePeriodSeconds: 0
  volumes:
  - name: mem
    emptyDir: {medium: Memory, sizeLimit: 8Mi}
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: mem, mountPath: /mem}
"#,
    );
    agent.wait_running("memkeep");
    let (code, _, err) = agent.exec("memkeep", "main", &["sh", "-c", "echo kept > /mem/data"]);
    assert_eq!(code, 0, "{err}");

    let uid = agent.uid("memkeep");
    agent.kill_shim(&uid);
    agent.wait_pod(
        "memkeep",
        "main restarted in a new sandbox",
        Duration::from_secs(30),
        |p| all_running(p) && container(p, "main")["restartCount"] == 1,
    );

    let (code, data, err) = agent.exec("memkeep", "main", &["cat", "/mem/data"]);
    assert_eq!((code, data.as_str()), (0, "kept\n"), "{err}");
    let (_, mounts, _) = agent.exec("memkeep", "main", &["cat", "/proc/mounts"]);
    assert!(
        mounts
            .lines()
            .any(|l| l.starts_with("tmpfs /mem ") && l.contains("size=8192k")),
        "{mounts}"
    );
    agent.delete_and_check("memkeep", "0");
}

/// A tmpfs the test mounted; unmounted at the end if the agent failed to.
struct TestTmpfs(PathBuf);

impl TestTmpfs {
    fn mount(path: &Path) -> TestTmpfs {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs at {}", path.display());
        TestTmpfs(path.to_path_buf())
    }
}

impl Drop for TestTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// What a crash leaves of a deleted pod's memory-backed emptyDir, a tmpfs on the host, is
/// unmounted and removed when the agent starts.
#[test]
fn a_restarted_agent_unmounts_the_memory_volume_of_a_deleted_pod() {
    let mut agent = Agent::start();
    agent.kill_agent();
    let ghost = "0badc0de-0000-4000-8000-0000000000e1";
    let volume = agent
        .path()
        .join("var/lib/peapod/pods")
        .join(ghost)
        .join("volumes/kubernetes.io~empty-dir/mem");
    let _tmpfs = TestTmpfs::mount(&volume);
    std::fs::write(volume.join("data"), "left behind").unwrap();

    agent.restart();
    agent.leak_check(ghost);
}
