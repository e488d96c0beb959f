//! The pod-level cgroup kubelet makes before a pod's first container: `<parent>/pod<uid>` in
//! each hierarchy, holding the pod's summed cpu shares, CFS quota and memory limit
//! (`ResourceConfigForPod`) and the node's pod pids limit; and each container's
//! `oom_score_adj` by QoS class (`pkg/kubelet/qos/policy.go`).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::Context;
use crate::runtime::resources::{
    self, milli_cpu_to_quota, milli_cpu_to_shares, shares_to_weight, Amounts, ContainerResources,
    Hierarchy, MIN_SHARES, QUOTA_PERIOD,
};

/// kubelet's `guaranteedOOMScoreAdj` and `besteffortOOMScoreAdj`.
pub const GUARANTEED_OOM_SCORE_ADJ: i32 = -998;
pub const BEST_EFFORT_OOM_SCORE_ADJ: i32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum PodCgroupError {
    #[error("creating the pod cgroup {path}: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {value:?} to {path}: {source}")]
    Write {
        path: String,
        value: String,
        #[source]
        source: std::io::Error,
    },
}

/// What the pod cgroup is held to; None leaves the kernel's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodResourceConfig {
    pub cpu_shares: Option<u64>,
    /// CFS quota with its period (µs).
    pub cpu_quota: Option<(i64, u64)>,
    pub memory_limit: Option<i64>,
    pub pids_limit: Option<u64>,
}

/// Pod requests and limits summed as `PodRequests`/`PodLimits` do: app containers and
/// restartable (sidecar) init containers add up; each other init container needs its own
/// amount plus the sidecars started before it, and the pod needs the largest of those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodAmounts {
    pub requests: Amounts,
    pub limits: Amounts,
    /// Every container (init ones too) has a non-zero cpu limit (`cpuLimitsDeclared`).
    pub cpu_limits_declared: bool,
    pub memory_limits_declared: bool,
}

fn add(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

fn max(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
    }
}

fn add_amounts(a: Amounts, b: Amounts) -> Amounts {
    Amounts {
        cpu: add(a.cpu, b.cpu),
        memory: add(a.memory, b.memory),
    }
}

fn max_amounts(a: Amounts, b: Amounts) -> Amounts {
    Amounts {
        cpu: max(a.cpu, b.cpu),
        memory: max(a.memory, b.memory),
    }
}

/// `aggregateContainerResourcesByFn` over one side (requests or limits).
fn aggregate(spec: &PodSpec, side: impl Fn(&ContainerResources) -> Amounts) -> Amounts {
    let mut sum = spec
        .containers
        .iter()
        .map(|c| side(&ContainerResources::of(c)))
        .fold(Amounts::default(), add_amounts);
    let mut sidecars = Amounts::default();
    let mut init_max = Amounts::default();
    for init in spec.init_containers.iter().flatten() {
        let own = side(&ContainerResources::of(init));
        let in_use = if init.restart_policy.as_deref() == Some("Always") {
            sum = add_amounts(sum, own);
            sidecars = add_amounts(sidecars, own);
            sidecars
        } else {
            add_amounts(own, sidecars)
        };
        init_max = max_amounts(init_max, in_use);
    }
    max_amounts(sum, init_max)
}

impl PodAmounts {
    pub fn of(spec: &PodSpec) -> PodAmounts {
        let overhead = Amounts::from_list(spec.overhead.as_ref());
        let requests = add_amounts(aggregate(spec, |r| r.requests), overhead);
        let mut limits = aggregate(spec, |r| r.limits);
        // Overhead is added to a limit only where the pod has a non-zero one.
        if limits.cpu.is_some_and(|c| c != 0) {
            limits.cpu = add(limits.cpu, overhead.cpu);
        }
        if limits.memory.is_some_and(|m| m != 0) {
            limits.memory = add(limits.memory, overhead.memory);
        }
        let all = || {
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .map(|c| ContainerResources::of(c).limits)
        };
        PodAmounts {
            requests,
            limits,
            cpu_limits_declared: all().all(|l| l.cpu.is_some_and(|c| c != 0)),
            memory_limits_declared: all().all(|l| l.memory.is_some_and(|m| m != 0)),
        }
    }
}

/// kubelet's `ResourceConfigForPod` (CFS quota enforced, period 100 ms) plus `pids_limit`.
pub fn resource_config(spec: &PodSpec, pids_limit: Option<u64>) -> PodResourceConfig {
    let amounts = PodAmounts::of(spec);
    let shares = milli_cpu_to_shares(amounts.requests.cpu.unwrap_or(0));
    let quota = (
        milli_cpu_to_quota(amounts.limits.cpu.unwrap_or(0), QUOTA_PERIOD),
        QUOTA_PERIOD,
    );
    let memory = amounts.limits.memory.unwrap_or(0);
    let mut config = PodResourceConfig {
        pids_limit,
        ..Default::default()
    };
    match super::qos_class(spec) {
        "Guaranteed" => {
            config.cpu_shares = Some(shares);
            config.cpu_quota = Some(quota);
            config.memory_limit = Some(memory);
        }
        "Burstable" => {
            config.cpu_shares = Some(shares);
            config.cpu_quota = amounts.cpu_limits_declared.then_some(quota);
            config.memory_limit = amounts.memory_limits_declared.then_some(memory);
        }
        _ => config.cpu_shares = Some(MIN_SHARES),
    }
    config
}

/// The pod cgroup below each hierarchy root, relative (`peapod/pod<uid>`).
pub fn relative_path(cgroup_parent: &str, uid: &str) -> String {
    format!("{}/pod{uid}", cgroup_parent.trim_start_matches('/'))
}

/// Creates the pod's cgroup and applies its limits, before its shim starts any container.
pub fn ensure(ctx: &Context, pod: &Pod) -> Result<(), PodCgroupError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let config = resource_config(&spec, ctx.policy.pod_pids_limit);
    let relative = relative_path(&ctx.paths.cgroup_parent(), uid);
    ensure_at(Path::new(resources::CGROUP_ROOT), &relative, &config).map(|_| ())
}

/// [`ensure`] below `root`; returns the directories it made or updated.
pub fn ensure_at(
    root: &Path,
    relative: &str,
    config: &PodResourceConfig,
) -> Result<Vec<PathBuf>, PodCgroupError> {
    let mut dirs = Vec::new();
    for hierarchy in resources::hierarchies(root) {
        let files = files_for(&hierarchy, config);
        if files.is_empty() {
            continue;
        }
        let dir = hierarchy.path.join(relative);
        let mut files = files;
        if hierarchy.v2 {
            enable_controllers(&hierarchy, relative)?;
            let available =
                std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            files.retain(|(file, _)| {
                let controller = file.split('.').next().unwrap_or_default();
                let delegated = available.split_whitespace().any(|c| c == controller);
                if !delegated {
                    tracing::warn!(
                        ?dir,
                        controller,
                        "controller not delegated to the pod cgroup; {file} left unset"
                    );
                }
                delegated
            });
        } else {
            std::fs::create_dir_all(&dir).map_err(|source| PodCgroupError::Create {
                path: dir.display().to_string(),
                source,
            })?;
        }
        for (file, value) in files {
            write(&dir.join(file), &value)?;
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

/// The files (in write order) `config` sets in one hierarchy, by the controllers it has.
fn files_for(hierarchy: &Hierarchy, config: &PodResourceConfig) -> Vec<(&'static str, String)> {
    let mut files = Vec::new();
    if hierarchy.has("cpu") {
        match (hierarchy.v2, config.cpu_shares) {
            (false, Some(shares)) => files.push(("cpu.shares", shares.to_string())),
            (true, Some(shares)) => {
                files.push(("cpu.weight", shares_to_weight(shares).to_string()))
            }
            (_, None) => {}
        }
        match (hierarchy.v2, config.cpu_quota) {
            (false, Some((quota, period))) if quota != 0 => {
                files.push(("cpu.cfs_period_us", period.to_string()));
                files.push(("cpu.cfs_quota_us", quota.to_string()));
            }
            (true, Some((quota, period))) if quota > 0 => {
                files.push(("cpu.max", format!("{quota} {period}")))
            }
            _ => {}
        }
    }
    if let Some(limit) = config.memory_limit.filter(|l| *l > 0) {
        if hierarchy.has("memory") {
            let file = if hierarchy.v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            files.push((file, limit.to_string()));
        }
    }
    if let Some(pids) = config.pids_limit {
        if hierarchy.has("pids") {
            files.push(("pids.max", pids.to_string()));
        }
    }
    files
}

/// cgroup v2 gives a child a controller only when every ancestor lists it in
/// `cgroup.subtree_control`: create each level down to the pod's and enable cpu, memory and
/// pids on the way (the pod cgroup holds no process, so enabling them there is allowed too).
/// Enabling is best effort, as youki's: a level holding processes (a nested host's root)
/// refuses, and what did not reach the pod cgroup is then left unset.
fn enable_controllers(hierarchy: &Hierarchy, relative: &str) -> Result<(), PodCgroupError> {
    let wanted: Vec<&str> = ["cpu", "memory", "pids"]
        .into_iter()
        .filter(|c| hierarchy.has(c))
        .collect();
    let mut dir = hierarchy.path.clone();
    let mut levels = vec![dir.clone()];
    for part in relative.split('/').filter(|p| !p.is_empty()) {
        dir.push(part);
        levels.push(dir.clone());
    }
    for level in &levels {
        std::fs::create_dir_all(level).map_err(|source| PodCgroupError::Create {
            path: level.display().to_string(),
            source,
        })?;
        let control = level.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control).unwrap_or_default();
        for controller in &wanted {
            if !enabled.split_whitespace().any(|c| c == *controller) {
                let _ = write(&control, &format!("+{controller}"));
            }
        }
    }
    Ok(())
}

fn write(path: &Path, value: &str) -> Result<(), PodCgroupError> {
    std::fs::write(path, value).map_err(|source| PodCgroupError::Write {
        path: path.display().to_string(),
        value: value.to_string(),
        source,
    })
}

/// kubelet's `GetContainerOOMScoreAdjust`: Guaranteed −998, BestEffort 1000, Burstable
/// `1000 − 1000·request/capacity` kept within [2, 999] (above any Guaranteed container,
/// below BestEffort ones).
pub fn oom_score_adj(spec: &PodSpec, container: &Container, memory_capacity: u64) -> i32 {
    match super::qos_class(spec) {
        "Guaranteed" => GUARANTEED_OOM_SCORE_ADJ,
        "BestEffort" => BEST_EFFORT_OOM_SCORE_ADJ,
        _ => {
            let request = ContainerResources::of(container)
                .requests
                .memory
                .unwrap_or(0)
                .max(0) as i128;
            let capacity = i128::from(memory_capacity.max(1));
            let adj = 1000 - (1000 * request) / capacity;
            if adj < i128::from(1000 + GUARANTEED_OOM_SCORE_ADJ) {
                1000 + GUARANTEED_OOM_SCORE_ADJ
            } else if adj == i128::from(BEST_EFFORT_OOM_SCORE_ADJ) {
                BEST_EFFORT_OOM_SCORE_ADJ - 1
            } else {
                adj as i32
            }
        }
    }
}

/// [`oom_score_adj`] of `container` in `pod` on this machine.
pub fn container_oom_score_adj(pod: &Pod, container: &Container) -> i32 {
    let spec = pod.spec.clone().unwrap_or_default();
    oom_score_adj(&spec, container, machine_memory())
}

/// The machine's memory in bytes (`MemTotal`, what cAdvisor reports as capacity); 0 if
/// /proc/meminfo cannot be read.
pub fn machine_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).unwrap()
    }

    fn with(resources: serde_json::Value) -> serde_json::Value {
        json!({"name": "c", "resources": resources})
    }

    #[test]
    fn app_containers_add_up_and_init_containers_take_the_max() {
        let s = spec(json!({
            "initContainers": [
                with(json!({"requests": {"cpu": "2", "memory": "10Mi"}})),
                with(json!({"requests": {"cpu": "100m", "memory": "300Mi"}})),
            ],
            "containers": [
                with(json!({"requests": {"cpu": "500m", "memory": "100Mi"}})),
                with(json!({"requests": {"cpu": "250m", "memory": "50Mi"}})),
            ],
        }));
        let a = PodAmounts::of(&s);
        assert_eq!(a.requests.cpu, Some(2000));
        assert_eq!(a.requests.memory, Some(300 << 20));
        assert_eq!(a.limits, Amounts::default());
        assert!(!a.cpu_limits_declared && !a.memory_limits_declared);
    }

    #[test]
    fn sidecars_add_to_the_sum_and_to_later_init_containers() {
        let mut sidecar = with(json!({"requests": {"cpu": "300m"}}));
        sidecar["restartPolicy"] = json!("Always");
        let s = spec(json!({
            "initContainers": [sidecar, with(json!({"requests": {"cpu": "1"}}))],
            "containers": [with(json!({"requests": {"cpu": "200m"}}))],
        }));
        // app 200m + sidecar 300m = 500m; the init container needs 1000m + 300m.
        assert_eq!(PodAmounts::of(&s).requests.cpu, Some(1300));
    }

    #[test]
    fn overhead_adds_to_requests_and_to_set_limits() {
        let s = spec(json!({
            "overhead": {"cpu": "100m", "memory": "10Mi"},
            "containers": [with(json!({"requests": {"cpu": "1"}, "limits": {"memory": "20Mi"}}))],
        }));
        let a = PodAmounts::of(&s);
        assert_eq!(a.requests.cpu, Some(1100));
        assert_eq!(a.requests.memory, Some(10 << 20));
        assert_eq!(a.limits.cpu, None);
        assert_eq!(a.limits.memory, Some(30 << 20));
    }

    #[test]
    fn guaranteed_pod_gets_shares_quota_and_memory() {
        let s = spec(json!({"containers": [
            with(json!({"requests": {"cpu": "500m", "memory": "64Mi"},
                        "limits": {"cpu": "500m", "memory": "64Mi"}})),
            with(json!({"requests": {"cpu": "250m", "memory": "32Mi"},
                        "limits": {"cpu": "250m", "memory": "32Mi"}})),
        ]}));
        assert_eq!(
            resource_config(&s, Some(100)),
            PodResourceConfig {
                cpu_shares: Some(768),
                cpu_quota: Some((75_000, 100_000)),
                memory_limit: Some(96 << 20),
                pids_limit: Some(100),
            }
        );
    }

    #[test]
    fn burstable_pod_gets_limits_only_when_every_container_declares_them() {
        let s = spec(json!({"containers": [
            with(json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "64Mi"}})),
            with(json!({"limits": {"cpu": "500m"}})),
        ]}));
        let c = resource_config(&s, None);
        assert_eq!(c.cpu_shares, Some(102));
        assert_eq!(c.cpu_quota, Some((150_000, 100_000)));
        assert_eq!(c.memory_limit, None);
        assert_eq!(c.pids_limit, None);
    }

    #[test]
    fn best_effort_pod_gets_minimum_shares_only() {
        let s = spec(json!({"containers": [{"name": "c"}]}));
        assert_eq!(
            resource_config(&s, None),
            PodResourceConfig {
                cpu_shares: Some(2),
                ..Default::default()
            }
        );
    }

    fn write_fixture(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(path: PathBuf) -> String {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn full_config() -> PodResourceConfig {
        PodResourceConfig {
            cpu_shares: Some(512),
            cpu_quota: Some((50_000, 100_000)),
            memory_limit: Some(64 << 20),
            pids_limit: Some(20),
        }
    }

    #[test]
    fn v1_hierarchies_get_their_own_files() {
        let root = tempfile::tempdir().unwrap();
        for h in ["cpu,cpuacct", "memory", "pids", "cpuset", "systemd"] {
            std::fs::create_dir_all(root.path().join(h)).unwrap();
        }
        write_fixture(&root.path().join("unified/cgroup.controllers"), "hugetlb\n");
        let dirs = ensure_at(root.path(), "peapod/podu1", &full_config()).unwrap();
        assert_eq!(dirs.len(), 3);
        let cpu = root.path().join("cpu,cpuacct/peapod/podu1");
        assert_eq!(read(cpu.join("cpu.shares")), "512");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
        let memory = root.path().join("memory/peapod/podu1");
        assert_eq!(read(memory.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(root.path().join("pids/peapod/podu1/pids.max")), "20");
        assert!(!root.path().join("cpuset/peapod").exists());
        assert!(!root.path().join("unified/peapod").exists());
    }

    #[test]
    fn v2_pod_cgroup_enables_controllers_and_writes_v2_files() {
        let root = tempfile::tempdir().unwrap();
        write_fixture(
            &root.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        );
        write_fixture(&root.path().join("peapod/cgroup.subtree_control"), "cpu\n");
        let pod = root.path().join("peapod/podu1");
        write_fixture(&pod.join("cgroup.controllers"), "cpu memory pids\n");
        let dirs = ensure_at(root.path(), "peapod/podu1", &full_config()).unwrap();
        assert_eq!(dirs, vec![pod.clone()]);
        assert_eq!(read(pod.join("cpu.weight")), "59");
        assert_eq!(read(pod.join("cpu.max")), "50000 100000");
        assert_eq!(read(pod.join("memory.max")), "67108864");
        assert_eq!(read(pod.join("pids.max")), "20");
        // A regular file keeps only the last write: the last controller missing there.
        assert_eq!(read(root.path().join("cgroup.subtree_control")), "+pids");
        assert_eq!(read(pod.join("cgroup.subtree_control")), "+pids");
    }

    #[test]
    fn v2_controllers_not_delegated_are_left_unset() {
        let root = tempfile::tempdir().unwrap();
        write_fixture(&root.path().join("cgroup.controllers"), "cpu memory pids\n");
        let pod = root.path().join("peapod/podu1");
        write_fixture(&pod.join("cgroup.controllers"), "memory\n");
        ensure_at(root.path(), "peapod/podu1", &full_config()).unwrap();
        assert_eq!(read(pod.join("memory.max")), "67108864");
        assert!(!pod.join("cpu.weight").exists());
        assert!(!pod.join("pids.max").exists());
    }

    #[test]
    fn no_limit_no_file() {
        let root = tempfile::tempdir().unwrap();
        for h in ["cpu", "memory", "pids"] {
            std::fs::create_dir_all(root.path().join(h)).unwrap();
        }
        let config = PodResourceConfig {
            cpu_shares: Some(2),
            ..Default::default()
        };
        let dirs = ensure_at(root.path(), "peapod/podu1", &config).unwrap();
        assert_eq!(dirs, vec![root.path().join("cpu/peapod/podu1")]);
        assert!(!root
            .path()
            .join("cpu/peapod/podu1/cpu.cfs_quota_us")
            .exists());
    }

    #[test]
    fn oom_score_adj_by_qos() {
        let gib = 1u64 << 30;
        let guaranteed = spec(json!({"containers": [
            with(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))]}));
        let c = &guaranteed.containers[0];
        assert_eq!(oom_score_adj(&guaranteed, c, 4 * gib), -998);
        let best_effort = spec(json!({"containers": [{"name": "c"}]}));
        assert_eq!(
            oom_score_adj(&best_effort, &best_effort.containers[0], 4 * gib),
            1000
        );
        let burstable = |memory: &str| {
            spec(json!({"containers": [with(json!({"requests": {"memory": memory}}))]}))
        };
        let adj = |memory: &str, capacity: u64| {
            let s = burstable(memory);
            oom_score_adj(&s, &s.containers[0], capacity)
        };
        assert_eq!(adj("1Gi", 4 * gib), 750);
        assert_eq!(adj("3Gi", 4 * gib), 250);
        assert_eq!(adj("4Gi", 4 * gib), 2);
        assert_eq!(adj("8Gi", 4 * gib), 2);
        assert_eq!(adj("1Ki", 4 * gib), 999);
        let cpu_only = spec(json!({"containers": [with(json!({"requests": {"cpu": "1"}}))]}));
        assert_eq!(
            oom_score_adj(&cpu_only, &cpu_only.containers[0], 4 * gib),
            999
        );
    }

    #[test]
    fn machine_memory_is_read() {
        assert!(machine_memory() > 0);
    }
}
