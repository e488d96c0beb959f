//! Container resources for real: requests and limits in the container and pod cgroups, the
//! QoS class and oom_score_adj, an OOM kill seen as OOMKilled / 137 and restarted, and the
//! agent's pod pids limit. Each test ends with a leak check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;

/// Whether the host runs the unified (v2) hierarchy at /sys/fs/cgroup.
fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The agent's pod cgroup of `uid` in the hierarchy holding `controller`.
fn pod_cgroup(agent: &Agent, controller: &str, uid: &str) -> PathBuf {
    let parent = peapod::paths::Paths::new(agent.path().to_path_buf()).cgroup_parent();
    let hierarchy = if unified() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        Path::new("/sys/fs/cgroup").join(controller)
    };
    hierarchy
        .join(parent.trim_start_matches('/'))
        .join(format!("pod{uid}"))
}

fn container_cgroup(agent: &Agent, controller: &str, uid: &str, container_id: &str) -> PathBuf {
    pod_cgroup(agent, controller, uid).join(container_id.trim_start_matches("peapod://"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_string()
}

fn machine_memory() -> i64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: i64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    kib * 1024
}

/// The score a process of the agent can really get for kubelet's `adj`: without
/// CAP_SYS_RESOURCE (an unprivileged test host) nothing goes below the inherited score.
fn settable_adj(adj: i32) -> i32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    const CAP_SYS_RESOURCE: u32 = 24;
    if effective & (1 << CAP_SYS_RESOURCE) != 0 {
        return adj;
    }
    let inherited: i32 = read(Path::new("/proc/self/oom_score_adj")).parse().unwrap();
    adj.max(inherited)
}

/// The oom_score_adj of the pod's shim (its sandbox).
fn shim_oom_score_adj(agent: &Agent, uid: &str) -> i32 {
    let pid = agent.shim_pid(uid);
    read(Path::new(&format!("/proc/{pid}/oom_score_adj")))
        .parse()
        .unwrap()
}

/// The oom_score_adj of the container's processes (all of them must agree).
fn oom_score_adj(uid: &str, container_id: &str) -> i32 {
    let pids = container_pids(uid, container_id);
    assert!(!pids.is_empty(), "container {container_id} has no process");
    let scores: Vec<i32> = pids
        .iter()
        .map(|pid| {
            read(Path::new(&format!("/proc/{pid}/oom_score_adj")))
                .parse()
                .unwrap()
        })
        .collect();
    assert!(scores.iter().all(|s| *s == scores[0]), "{scores:?}");
    scores[0]
}

const BURSTABLE: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: burstable
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "sleep 3600 & wait"]
    resources:
      requests: {cpu: 250m, memory: 32Mi}
      limits: {cpu: 500m, memory: 64Mi}
"#;

const GUARANTEED: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: guaranteed
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
    resources:
      limits: {cpu: 100m, memory: 32Mi}
  - name: side
    image: busybox
    command: ["sleep", "3600"]
    resources:
      limits: {cpu: 200m, memory: 16Mi}
"#;

const BEST_EFFORT: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: best-effort
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
"#;

#[test]
fn requests_and_limits_reach_the_cgroups_and_oom_score() {
    let agent = Agent::start();
    agent.apply(BURSTABLE);
    let pod = agent.wait_running("burstable");
    assert_eq!(pod["status"]["qosClass"], "Burstable");
    let uid = agent.uid("burstable");
    let id = container_id_of(&pod, "app");
    let memory = container_cgroup(&agent, "memory", &uid, &id);
    let cpu = container_cgroup(&agent, "cpu", &uid, &id);
    let pod_memory = pod_cgroup(&agent, "memory", &uid);
    let pod_cpu = pod_cgroup(&agent, "cpu", &uid);
    if unified() {
        assert_eq!(read(&memory.join("memory.max")), "67108864");
        assert_eq!(read(&memory.join("memory.oom.group")), "1");
        assert_eq!(read(&cpu.join("cpu.max")), "50000 100000");
        assert_eq!(read(&cpu.join("cpu.weight")), "35");
        assert_eq!(read(&pod_memory.join("memory.max")), "67108864");
        assert_eq!(read(&pod_cpu.join("cpu.max")), "50000 100000");
    } else {
        assert_eq!(read(&memory.join("memory.limit_in_bytes")), "67108864");
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            assert_eq!(read(&memsw), "67108864", "no swap beyond the limit");
        }
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(&cpu.join("cpu.shares")), "256");
        // Every container declares both limits: the pod cgroup is held to their sums.
        assert_eq!(read(&pod_memory.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(&pod_cpu.join("cpu.shares")), "256");
        assert_eq!(read(&pod_cpu.join("cpu.cfs_quota_us")), "50000");
    }
    let expected = (1000 - 1000 * (32 << 20) / machine_memory()).clamp(2, 999) as i32;
    assert_eq!(
        oom_score_adj(&uid, &id),
        settable_adj(expected),
        "burstable oom_score_adj"
    );
    assert_eq!(
        shim_oom_score_adj(&agent, &uid),
        settable_adj(-998),
        "sandbox"
    );

    agent.apply(GUARANTEED);
    agent.apply(BEST_EFFORT);
    let guaranteed = agent.wait_running("guaranteed");
    let best_effort = agent.wait_running("best-effort");
    assert_eq!(guaranteed["status"]["qosClass"], "Guaranteed");
    assert_eq!(best_effort["status"]["qosClass"], "BestEffort");
    let g_uid = agent.uid("guaranteed");
    for name in ["app", "side"] {
        let id = container_id_of(&guaranteed, name);
        assert_eq!(
            oom_score_adj(&g_uid, &id),
            settable_adj(-998),
            "guaranteed {name}"
        );
    }
    if !unified() {
        let pod_cpu = pod_cgroup(&agent, "cpu", &g_uid);
        assert_eq!(read(&pod_cpu.join("cpu.shares")), "307");
        assert_eq!(read(&pod_cpu.join("cpu.cfs_quota_us")), "30000");
        let pod_memory = pod_cgroup(&agent, "memory", &g_uid);
        assert_eq!(read(&pod_memory.join("memory.limit_in_bytes")), "50331648");
        let side = container_cgroup(&agent, "cpu", &g_uid, &container_id_of(&guaranteed, "side"));
        assert_eq!(read(&side.join("cpu.cfs_quota_us")), "20000");
    }
    let be_uid = agent.uid("best-effort");
    let be_id = container_id_of(&best_effort, "app");
    assert_eq!(oom_score_adj(&be_uid, &be_id), 1000, "best-effort");
    let exec = agent.exec("best-effort", "app", &["cat", "/proc/self/oom_score_adj"]);
    assert_eq!(
        exec.1.trim(),
        "1000",
        "an exec'd process scores as its container"
    );
    if !unified() {
        let cpu = container_cgroup(&agent, "cpu", &be_uid, &be_id);
        assert_eq!(read(&cpu.join("cpu.shares")), "2");
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "-1");
        assert_eq!(
            read(&pod_cgroup(&agent, "cpu", &be_uid).join("cpu.shares")),
            "2"
        );
    }

    agent.delete_and_check("burstable", "0");
    agent.delete_and_check("guaranteed", "0");
    agent.delete_and_check("best-effort", "0");
}

fn oom_pod(name: &str, restart_policy: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart_policy}
  terminationGracePeriodSeconds: 1
  containers:
  - name: hog
    image: busybox
    command: ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M"]
    resources:
      limits: {{memory: 16Mi}}
"#
    )
}

#[test]
fn allocating_past_the_limit_is_oom_killed() {
    let agent = Agent::start();
    agent.apply(&oom_pod("oom-once", "Never"));
    let pod = agent.wait_phase("oom-once", "Failed", Duration::from_secs(30));
    let terminated = &container(&pod, "hog")["state"]["terminated"];
    assert_eq!(terminated["reason"], "OOMKilled", "{pod:#}");
    assert_eq!(terminated["exitCode"], 137, "{pod:#}");
    assert_eq!(agent.get_status("oom-once"), "OOMKilled");
    agent.delete_and_check("oom-once", "0");
}

#[test]
fn an_oom_killed_container_is_restarted() {
    let agent = Agent::start();
    agent.apply(&oom_pod("oom-loop", "Always"));
    let pod = agent.wait_pod(
        "oom-loop",
        "two OOM restarts",
        Duration::from_secs(30),
        |p| container(p, "hog")["restartCount"].as_i64() >= Some(2),
    );
    let hog = container(&pod, "hog");
    let last = &hog["lastState"]["terminated"];
    assert_eq!(last["reason"], "OOMKilled", "{pod:#}");
    assert_eq!(last["exitCode"], 137, "{pod:#}");
    assert_eq!(pod["status"]["phase"], "Running", "{pod:#}");
    agent.delete_and_check("oom-loop", "0");
}

const PIDS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: pids
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
"#;

#[test]
fn the_pod_pids_limit_caps_forks() {
    let agent = Agent::start_with_env(&[("PEAPOD_POD_PIDS_LIMIT", "20")]);
    agent.apply(PIDS);
    let pod = agent.wait_running("pids");
    let uid = agent.uid("pids");
    let cgroup = pod_cgroup(&agent, "pids", &uid);
    assert_eq!(read(&cgroup.join("pids.max")), "20");
    let id = container_id_of(&pod, "app");
    let container_max = container_cgroup(&agent, "pids", &uid, &id).join("pids.max");
    assert_eq!(
        read(&container_max),
        "max",
        "containers get no pids limit of their own"
    );

    let (code, _, stderr) = agent.exec(
        "pids",
        "app",
        &[
            "sh",
            "-c",
            "for i in $(seq 50); do sleep 30 >/dev/null 2>&1 & done",
        ],
    );
    assert!(
        code != 0 && stderr.contains("fork"),
        "forks past the limit must fail: exit {code}, stderr {stderr:?}"
    );
    let current: u64 = read(&cgroup.join("pids.current")).parse().unwrap();
    assert!(
        (2..=20).contains(&current),
        "pids.current {current} must stay within the limit"
    );
    agent.delete_and_check("pids", "0");
}
