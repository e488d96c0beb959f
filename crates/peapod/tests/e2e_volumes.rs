//! Volumes beyond the seed scenarios: a memory-backed emptyDir bounded by its sizeLimit, and
//! subPathExpr expanded from the downward API.

mod common;

use common::*;

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
