//! A container's cpu and memory `resources` turned into what the runtime enforces, by kubelet's
//! and containerd's rules: the OCI `linux.resources` entries (cpu shares, CFS quota, memory
//! limit, no swap, cgroup v2 OOM group), and, read back from the container's cgroup, how many
//! of its processes the kernel OOM-killed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use peapod_api::quantity::Quantity;
use serde_json::{json, Map, Value};

/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// kubelet's `cm/helpers_linux.go` constants.
pub const MIN_SHARES: u64 = 2;
pub const MAX_SHARES: u64 = 262_144;
const SHARES_PER_CPU: i64 = 1024;
const MILLI_CPU_TO_CPU: i64 = 1000;
/// The CFS period kubelet always sends (µs).
pub const QUOTA_PERIOD: u64 = 100_000;
const MIN_QUOTA_PERIOD: i64 = 1000;
/// The largest cgroup v2 `cpu.weight`.
const MAX_CPU_WEIGHT: u64 = 10_000;

/// kubelet's `MilliCPUToShares`: 2 for nothing, else 1024 per CPU, within [2, 262144].
pub fn milli_cpu_to_shares(milli_cpu: i64) -> u64 {
    if milli_cpu <= 0 {
        return MIN_SHARES;
    }
    let shares = milli_cpu.saturating_mul(SHARES_PER_CPU) / MILLI_CPU_TO_CPU;
    (shares.max(0) as u64).clamp(MIN_SHARES, MAX_SHARES)
}

/// kubelet's `MilliCPUToQuota`: 0 (no quota) for no limit, else the limit's share of
/// `period`, at least 1000 µs.
pub fn milli_cpu_to_quota(milli_cpu: i64, period: u64) -> i64 {
    if milli_cpu <= 0 {
        return 0;
    }
    let quota = milli_cpu.saturating_mul(period as i64) / MILLI_CPU_TO_CPU;
    quota.max(MIN_QUOTA_PERIOD)
}

/// cgroup v2 `cpu.weight` for v1 `shares`: the quadratic mapping of runc ≥ 1.3.2 that youki
/// 0.7 applies to containers, so the pod cgroup gets the same scale (0 means unset).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= MIN_SHARES {
        return 1;
    }
    if shares >= MAX_SHARES {
        return MAX_CPU_WEIGHT;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, MAX_CPU_WEIGHT)
}

/// Amounts of cpu (millicores) and memory (bytes); None where the list has no such key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    pub cpu: Option<i64>,
    pub memory: Option<i64>,
}

impl Amounts {
    /// The cpu and memory of a resource list (requests, limits, overhead).
    pub fn from_list(list: Option<&BTreeMap<String, K8sQuantity>>) -> Amounts {
        let read = |name: &str, scale: fn(&Quantity) -> Option<i128>| {
            let quantity: Quantity = list?.get(name)?.0.parse().ok()?;
            scale(&quantity).map(|v| v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
        };
        Amounts {
            cpu: read("cpu", Quantity::milli_value),
            memory: read("memory", Quantity::value),
        }
    }
}

/// A container's requests and limits of cpu and memory, as numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerResources {
    pub requests: Amounts,
    pub limits: Amounts,
}

impl ContainerResources {
    /// Quantities that do not parse count as absent: the API refuses them at apply.
    pub fn of(container: &Container) -> ContainerResources {
        Self::from_requirements(container.resources.as_ref())
    }

    pub fn from_requirements(resources: Option<&ResourceRequirements>) -> ContainerResources {
        ContainerResources {
            requests: Amounts::from_list(resources.and_then(|r| r.requests.as_ref())),
            limits: Amounts::from_list(resources.and_then(|r| r.limits.as_ref())),
        }
    }
}

/// The cgroup interface youki drives for containers on this host, and whether it can cap
/// swap there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupHost {
    /// Legacy or hybrid hierarchy: `swap` when `memory.memsw.limit_in_bytes` exists.
    V1 { swap: bool },
    /// Unified hierarchy: `swap` when `memory.swap.max` exists below the root.
    V2 { swap: bool },
}

impl CgroupHost {
    /// Detects the host's setup; `pod_cgroup` is the pod cgroup's path below each hierarchy
    /// root (on cgroup v2 it is where swap control is looked for).
    pub fn detect(pod_cgroup: &str) -> CgroupHost {
        Self::detect_at(Path::new(CGROUP_ROOT), pod_cgroup)
    }

    /// youki's rule: v2 only when the root itself is the unified hierarchy.
    pub fn detect_at(root: &Path, pod_cgroup: &str) -> CgroupHost {
        if root.join("cgroup.controllers").exists() {
            let dir = root.join(pod_cgroup.trim_start_matches('/'));
            return CgroupHost::V2 {
                swap: dir.join("memory.swap.max").exists(),
            };
        }
        let swap = hierarchies(root)
            .iter()
            .filter(|h| !h.v2 && h.has("memory"))
            .any(|h| h.path.join("memory.memsw.limit_in_bytes").exists());
        CgroupHost::V1 { swap }
    }
}

/// The `linux.resources` entries (besides `devices`) of a container: cpu shares from the
/// request (the limit when no request is given), quota only under a limit, memory limit
/// without swap, and on cgroup v2 whole-container OOM kills. `oomScoreAdj` is left to the
/// shim (youki would set it on the shim itself).
pub fn linux_resources(resources: &ContainerResources, host: CgroupHost) -> Value {
    let ContainerResources { requests, limits } = resources;
    let share_milli = match (requests.cpu, limits.cpu) {
        (None, Some(limit)) => limit,
        (request, _) => request.unwrap_or(0),
    };
    let mut cpu = json!({
        "shares": milli_cpu_to_shares(share_milli),
        "period": QUOTA_PERIOD,
    });
    let quota = milli_cpu_to_quota(limits.cpu.unwrap_or(0), QUOTA_PERIOD);
    if quota > 0 {
        cpu["quota"] = json!(quota);
    }
    let mut out = Map::new();
    out.insert("cpu".into(), cpu);
    if let Some(limit) = limits.memory.filter(|l| *l > 0) {
        let mut memory = json!({"limit": limit});
        if host == (CgroupHost::V1 { swap: true }) {
            memory["swap"] = json!(limit);
        }
        out.insert("memory".into(), memory);
    }
    if let CgroupHost::V2 { swap } = host {
        let mut unified = json!({"memory.oom.group": "1"});
        if swap {
            unified["memory.swap.max"] = json!("0");
        }
        out.insert("unified".into(), unified);
    }
    Value::Object(out)
}

/// [`linux_resources`] of `container` on this host, its pod cgroup being `pod_cgroup`.
pub fn for_container(container: &Container, pod_cgroup: &str) -> Value {
    linux_resources(
        &ContainerResources::of(container),
        CgroupHost::detect(pod_cgroup),
    )
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub path: PathBuf,
    pub v2: bool,
    /// v1: the controllers the mount carries (from its directory name, e.g. `cpu,cpuacct`);
    /// v2: those its root offers (`cgroup.controllers`).
    pub controllers: Vec<String>,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The hierarchies under `root`: the root itself when it is cgroup v2, else each directory
/// (a v1 controller mount, or the hybrid setup's v2 mount). Symlinks such as `cpu ->
/// cpu,cpuacct` are skipped: they name a hierarchy listed under its own name.
pub fn hierarchies(root: &Path) -> Vec<Hierarchy> {
    let v2_controllers = |dir: &Path| -> Option<Vec<String>> {
        let text = std::fs::read_to_string(dir.join("cgroup.controllers")).ok()?;
        Some(text.split_whitespace().map(str::to_string).collect())
    };
    if let Some(controllers) = v2_controllers(root) {
        return vec![Hierarchy {
            path: root.to_path_buf(),
            v2: true,
            controllers,
        }];
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<Hierarchy> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            let path = e.path();
            match v2_controllers(&path) {
                Some(controllers) => Hierarchy {
                    path,
                    v2: true,
                    controllers,
                },
                None => Hierarchy {
                    controllers: e
                        .file_name()
                        .to_string_lossy()
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                    path,
                    v2: false,
                },
            }
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// How many processes of the cgroup `cgroups_path` the kernel OOM-killed: `oom_kill` of v2
/// `memory.events` or of v1 `memory.oom_control` (kernel ≥ 4.13). 0 when the cgroup or the
/// memory controller is missing. Must be read before the cgroup is deleted.
pub fn oom_kill_count(root: &Path, cgroups_path: &str) -> u64 {
    let relative = cgroups_path.trim_start_matches('/');
    hierarchies(root)
        .iter()
        .filter(|h| h.has("memory"))
        .filter_map(|h| {
            let file = if h.v2 {
                "memory.events"
            } else {
                "memory.oom_control"
            };
            let text = std::fs::read_to_string(h.path.join(relative).join(file)).ok()?;
            keyed_value(&text, "oom_kill")
        })
        .max()
        .unwrap_or(0)
}

/// The number after `key` in a cgroup "flat keyed" file (`key value` lines).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(v: Value) -> ContainerResources {
        ContainerResources::from_requirements(Some(&serde_json::from_value(v).unwrap()))
    }

    #[test]
    fn shares_follow_milli_cpu_to_shares() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(2), 2);
        assert_eq!(milli_cpu_to_shares(10), 10);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_shares(500), 512);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(300_000), 262_144);
    }

    #[test]
    fn quota_follows_milli_cpu_to_quota() {
        assert_eq!(milli_cpu_to_quota(0, QUOTA_PERIOD), 0);
        assert_eq!(milli_cpu_to_quota(1, QUOTA_PERIOD), 1000);
        assert_eq!(milli_cpu_to_quota(5, QUOTA_PERIOD), 1000);
        assert_eq!(milli_cpu_to_quota(10, QUOTA_PERIOD), 1000);
        assert_eq!(milli_cpu_to_quota(250, QUOTA_PERIOD), 25_000);
        assert_eq!(milli_cpu_to_quota(500, QUOTA_PERIOD), 50_000);
        assert_eq!(milli_cpu_to_quota(2000, QUOTA_PERIOD), 200_000);
    }

    #[test]
    fn weights_match_the_quadratic_mapping() {
        let table = [
            (0, 0),
            (2, 1),
            (10, 4),
            (102, 17),
            (256, 35),
            (512, 59),
            (1024, 100),
            (2048, 174),
            (4096, 303),
            (262_144, 10_000),
        ];
        for (shares, weight) in table {
            assert_eq!(shares_to_weight(shares), weight, "shares {shares}");
        }
    }

    #[test]
    fn quantities_become_millicores_and_bytes() {
        let r = resources(json!({"requests": {"cpu": "250m", "memory": "64Mi"},
                                 "limits": {"cpu": "1", "memory": "1G"}}));
        assert_eq!(r.requests.cpu, Some(250));
        assert_eq!(r.requests.memory, Some(64 * 1024 * 1024));
        assert_eq!(r.limits.cpu, Some(1000));
        assert_eq!(r.limits.memory, Some(1_000_000_000));
        assert_eq!(
            ContainerResources::of(&Container::default()),
            Default::default()
        );
    }

    #[test]
    fn v1_container_with_requests_and_limits() {
        let r = resources(json!({"requests": {"cpu": "250m", "memory": "16Mi"},
                                 "limits": {"cpu": "500m", "memory": "32Mi"}}));
        assert_eq!(
            linux_resources(&r, CgroupHost::V1 { swap: true }),
            json!({
                "cpu": {"shares": 256, "period": 100000, "quota": 50000},
                "memory": {"limit": 33554432, "swap": 33554432},
            })
        );
        assert_eq!(
            linux_resources(&r, CgroupHost::V1 { swap: false })["memory"],
            json!({"limit": 33554432})
        );
    }

    #[test]
    fn v2_container_gets_oom_group_and_no_swap() {
        let r = resources(json!({"limits": {"memory": "16Mi"}}));
        assert_eq!(
            linux_resources(&r, CgroupHost::V2 { swap: true }),
            json!({
                "cpu": {"shares": 2, "period": 100000},
                "memory": {"limit": 16777216},
                "unified": {"memory.oom.group": "1", "memory.swap.max": "0"},
            })
        );
        assert_eq!(
            linux_resources(&r, CgroupHost::V2 { swap: false })["unified"],
            json!({"memory.oom.group": "1"})
        );
    }

    #[test]
    fn shares_come_from_the_limit_only_without_a_request_key() {
        let limit_only = resources(json!({"limits": {"cpu": "1"}}));
        let v = linux_resources(&limit_only, CgroupHost::V1 { swap: true });
        assert_eq!(
            v["cpu"],
            json!({"shares": 1024, "period": 100000, "quota": 100000})
        );
        assert!(v.get("memory").is_none());
        let zero_request = resources(json!({"requests": {"cpu": "0"}, "limits": {"cpu": "1"}}));
        let v = linux_resources(&zero_request, CgroupHost::V1 { swap: true });
        assert_eq!(v["cpu"]["shares"], 2);
        let best_effort = linux_resources(&Default::default(), CgroupHost::V1 { swap: true });
        assert_eq!(best_effort, json!({"cpu": {"shares": 2, "period": 100000}}));
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn detects_v1_hybrid_and_v2() {
        let v1 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(v1.path().join("cpu,cpuacct")).unwrap();
        std::fs::create_dir_all(v1.path().join("memory")).unwrap();
        assert_eq!(
            CgroupHost::detect_at(v1.path(), "/peapod/pod1"),
            CgroupHost::V1 { swap: false }
        );
        write(&v1.path().join("memory/memory.memsw.limit_in_bytes"), "0");
        write(&v1.path().join("unified/cgroup.controllers"), "hugetlb\n");
        assert_eq!(
            CgroupHost::detect_at(v1.path(), "/peapod/pod1"),
            CgroupHost::V1 { swap: true }
        );
        let found = hierarchies(v1.path());
        assert_eq!(found.len(), 3);
        assert!(found[0].has("cpuacct") && !found[0].v2);
        assert!(found[2].v2 && found[2].has("hugetlb") && !found[2].has("memory"));

        let v2 = tempfile::tempdir().unwrap();
        write(&v2.path().join("cgroup.controllers"), "cpu memory pids\n");
        assert_eq!(
            CgroupHost::detect_at(v2.path(), "/peapod/pod1"),
            CgroupHost::V2 { swap: false }
        );
        write(&v2.path().join("peapod/pod1/memory.swap.max"), "max\n");
        assert_eq!(
            CgroupHost::detect_at(v2.path(), "/peapod/pod1"),
            CgroupHost::V2 { swap: true }
        );
        assert_eq!(hierarchies(v2.path()).len(), 1);
    }

    #[test]
    fn oom_kills_are_read_from_v1_and_v2_files() {
        let v1 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(v1.path().join("cpu")).unwrap();
        let control = v1.path().join("memory/peapod/pod1/c1/memory.oom_control");
        write(&control, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
        assert_eq!(oom_kill_count(v1.path(), "/peapod/pod1/c1"), 0);
        write(&control, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        assert_eq!(oom_kill_count(v1.path(), "/peapod/pod1/c1"), 2);
        assert_eq!(oom_kill_count(v1.path(), "/peapod/pod1/gone"), 0);

        let v2 = tempfile::tempdir().unwrap();
        write(&v2.path().join("cgroup.controllers"), "cpu memory\n");
        write(
            &v2.path().join("peapod/pod1/c1/memory.events"),
            "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n",
        );
        assert_eq!(oom_kill_count(v2.path(), "/peapod/pod1/c1"), 1);
    }
}
