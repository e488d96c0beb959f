//! Disk pressure, end to end, on an agent whose root is a small tmpfs the test mounts: a full
//! disk takes no pod down and statuses catch up once space returns; an agent whose log cannot
//! be written goes on; a disk-backed emptyDir over its sizeLimit gets its pod evicted; a node
//! short of disk evicts the pod using the most.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

/// A tmpfs of `size` mounted for one test, unmounted when dropped (after the agent on it).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::Builder::new()
            .prefix("peapod-disk-")
            .tempdir()
            .unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs");
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk (a file that takes every free block); returns the file.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64K"])
            .arg(format!("of={}", filler.display()))
            .stderr(std::process::Stdio::null())
            .status();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn shim_pid(agent: &Agent, uid: &str) -> i64 {
    agent.shim_state(uid).expect("shim answers")["pid"]
        .as_i64()
        .unwrap()
}

fn evicted(agent: &Agent, name: &str) -> Value {
    poll(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || agent.pod(name).unwrap(),
        |p| p["status"]["reason"] == "Evicted",
    )
}

#[test]
fn a_full_disk_takes_no_pod_down_and_statuses_catch_up_once_space_returns() {
    let disk = SmallDisk::mount("64m");
    // Eviction off: this test is about surviving a full disk, not about reclaiming it.
    let agent = Agent::start_in(
        disk.path(),
        &[(
            "PEAPOD_EVICTION_HARD",
            "nodefs.available<0%,imagefs.available<0%",
        )],
    );
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: logger}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: talk, image: busybox, imagePullPolicy: Never, command: [sh, -c, 'while true; do echo line-$(date +%s%N); sleep 0.1; done']}\n  - {name: short, image: busybox, imagePullPolicy: Never, command: [sh, -c, 'sleep 6; exit 3']}\n",
    );
    let pod = agent.wait_running("logger");
    let uid = agent.uid("logger");
    let shim = shim_pid(&agent, &uid);
    let filler = disk.fill();
    // `short` exits while the disk is full: its status write fails and must be retried.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        shim_pid(&agent, &uid),
        shim,
        "the pod's sandbox died on a full disk"
    );
    std::fs::remove_file(filler).unwrap();
    let after = poll(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || agent.pod("logger").unwrap(),
        |p| container(p, "short")["state"]["terminated"]["exitCode"] == 3,
    );
    assert_eq!(
        container(&after, "short")["state"]["terminated"]["exitCode"],
        3,
        "{after:#}"
    );
    assert_eq!(container(&after, "talk")["restartCount"], 0);
    assert_eq!(
        container_id_of(&after, "talk"),
        container_id_of(&pod, "talk")
    );
    assert!(container(&after, "talk")["state"]["running"].is_object());
    assert_eq!(shim_pid(&agent, &uid), shim);
    let logs = agent.ok(&["logs", "logger", "-c", "talk", "--tail", "1"]);
    assert!(logs.starts_with("line-"), "{logs}");
    agent.delete_and_check("logger", "0");
}

/// Every write to /dev/full fails with ENOSPC, as the agent's log does on a full disk: a
/// failed log line must cost the line, never the task that logged it (once, the pod's worker,
/// whose statuses then stopped).
#[test]
fn an_agent_whose_log_cannot_be_written_runs_pods_and_reports_their_exits() {
    let agent = Agent::start_writing_stderr_to(Path::new("/dev/full"));
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: mute}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: c, image: busybox, imagePullPolicy: Never, command: [sh, -c, 'exit 3']}\n",
    );
    let pod = agent.wait_phase("mute", "Failed", Duration::from_secs(30));
    assert_eq!(container(&pod, "c")["state"]["terminated"]["exitCode"], 3);
    agent.delete_and_check("mute", "0");
}

#[test]
fn a_disk_empty_dir_over_its_size_limit_gets_its_pod_evicted() {
    let agent = Agent::start_with_env(&[("PEAPOD_EVICTION_MONITORING_PERIOD", "1")]);
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hoarder}\nspec:\n  containers:\n  - name: fill\n    image: busybox\n    imagePullPolicy: Never\n    command: [sh, -c, 'dd if=/dev/zero of=/cache/blob bs=1M count=4; sleep 3600']\n    volumeMounts: [{name: cache, mountPath: /cache}]\n  volumes:\n  - {name: cache, emptyDir: {sizeLimit: 1Mi}}\n",
    );
    let pod = evicted(&agent, "hoarder");
    let message = "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\". ";
    assert_eq!(pod["status"]["phase"], "Failed", "{pod:#}");
    assert_eq!(pod["status"]["message"], message);
    let disruption = condition(&pod, "DisruptionTarget");
    assert_eq!(disruption["status"], "True");
    assert_eq!(disruption["reason"], "TerminationByKubelet");
    let uid = agent.uid("hoarder");
    agent.wait_event(&uid, "Evicted", Duration::from_secs(5), |m| m == message);
    let done = poll(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || agent.pod("hoarder").unwrap(),
        |p| container(p, "fill")["state"]["terminated"].is_object(),
    );
    assert_eq!(
        container(&done, "fill")["state"]["terminated"]["exitCode"],
        137,
        "{done:#}"
    );
    agent.delete_and_check("hoarder", "0");
}

#[test]
fn a_node_short_of_disk_evicts_the_pod_using_the_most_and_reclaims_its_layer() {
    let disk = SmallDisk::mount("96m");
    let agent = Agent::start_in(
        disk.path(),
        &[
            (
                "PEAPOD_EVICTION_HARD",
                "nodefs.available<40%,imagefs.available<40%",
            ),
            ("PEAPOD_EVICTION_MONITORING_PERIOD", "1"),
        ],
    );
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: quiet}\nspec:\n  containers:\n  - {name: c, image: busybox, imagePullPolicy: Never, command: [sleep, '3600']}\n",
    );
    agent.wait_running("quiet");
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hog}\nspec:\n  containers:\n  - {name: c, image: busybox, imagePullPolicy: Never, command: [sh, -c, 'dd if=/dev/zero of=/blob bs=1M count=70; sleep 3600']}\n",
    );
    let pod = evicted(&agent, "hog");
    let message = pod["status"]["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("The node was low on resource: ephemeral-storage. Threshold quantity: "),
        "{message}"
    );
    assert!(
        message.contains("Container c was using ")
            && message.ends_with("request is 0, has larger consumption of ephemeral-storage. "),
        "{message}"
    );
    // The evicted pod's writable layer is reclaimed, the pressure ends, the other pod runs on.
    let quiet = poll(
        Duration::from_secs(20),
        Duration::from_millis(500),
        || {
            let free = nix::sys::statvfs::statvfs(disk.path()).unwrap();
            (
                free.blocks_available() * 100 / free.blocks(),
                agent.pod("quiet").unwrap(),
            )
        },
        |(free, _)| *free > 60,
    );
    assert!(
        quiet.0 > 60,
        "the evicted pod's disk was not reclaimed: {}% free",
        quiet.0
    );
    assert!(all_running(&quiet.1), "{:#}", quiet.1);
    assert_ne!(quiet.1["status"]["reason"], "Evicted");
    agent.delete_and_check("hog", "0");
    agent.delete_and_check("quiet", "0");
}

#[test]
fn a_node_under_disk_pressure_rejects_new_pods() {
    // Available below 100 % of the disk: the node is always short of it.
    let agent = Agent::start_with_env(&[
        ("PEAPOD_EVICTION_HARD", "nodefs.available<100%"),
        ("PEAPOD_EVICTION_MONITORING_PERIOD", "1"),
    ]);
    // The node lifecycle controller taints the node for its condition (TaintNodesByCondition).
    let tainted = poll(
        Duration::from_secs(25),
        Duration::from_millis(500),
        || agent.api_get("/api/v1/nodes")["items"][0].clone(),
        |node| {
            let taints = node["spec"]["taints"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            taints.iter().any(|t| {
                t["key"] == "node.kubernetes.io/disk-pressure" && t["effect"] == "NoSchedule"
            })
        },
    );
    let node = tainted["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let taints = tainted["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        taints
            .iter()
            .any(|t| t["key"] == "node.kubernetes.io/disk-pressure"),
        "{tainted:#}"
    );
    // The scheduler keeps a new pod off the tainted node.
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: waiting}\nspec:\n  containers:\n  - {name: c, image: busybox, imagePullPolicy: Never, command: [sleep, '3600']}\n",
    );
    let waiting = agent.wait_pod("waiting", "refused", Duration::from_secs(20), |p| {
        let conditions = p["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions
            .iter()
            .any(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable")
    });
    let conditions = waiting["status"]["conditions"].to_string();
    assert!(
        conditions.contains("node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }"),
        "{waiting:#}"
    );
    // A pod bound to the node directly meets kubelet's eviction admission.
    agent.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: latecomer}}\nspec:\n  nodeName: {node}\n  containers:\n  - {{name: c, image: busybox, imagePullPolicy: Never, command: [sleep, '3600']}}\n",
    ));
    let pod = agent.wait_phase("latecomer", "Failed", Duration::from_secs(20));
    assert_eq!(pod["status"]["reason"], "Evicted");
    assert_eq!(
        pod["status"]["message"],
        "Pod was rejected: The node had condition: [DiskPressure]. "
    );
    // The Node says so too, as kubelet's DiskPressure setter words it.
    let disk_pressure = |nodes: &Value| {
        let conditions = nodes["items"][0]["status"]["conditions"]
            .as_array()
            .cloned();
        conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c["type"] == "DiskPressure")
            .unwrap_or(Value::Null)
    };
    let nodes = poll(
        Duration::from_secs(25),
        Duration::from_millis(500),
        || agent.api_get("/api/v1/nodes"),
        |nodes| disk_pressure(nodes)["status"] == "True",
    );
    let condition = disk_pressure(&nodes);
    assert_eq!(condition["status"], "True", "{nodes:#}");
    assert_eq!(condition["reason"], "KubeletHasDiskPressure");
    assert_eq!(condition["message"], "kubelet has disk pressure");
    agent.delete_and_check("latecomer", "0");
    agent.delete_and_check("waiting", "0");
}
