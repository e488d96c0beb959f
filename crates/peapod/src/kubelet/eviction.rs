//! kubelet's eviction manager for disk: every monitoring period it evicts pods whose
//! disk-backed emptyDir outgrew its sizeLimit, and when the filesystem holding pod data
//! (nodefs) or images (imagefs) falls below its hard threshold it reclaims images first, then
//! evicts one pod a pass, ranked as kubelet ranks them for DiskPressure. Evictions are handed
//! to the pod's worker, which fails the pod (Failed, reason Evicted) and kills its containers.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use peapod_api::quantity::Quantity;

use super::Context;
use crate::volume;

/// kubelet's defaults: `nodefs.available<10%`, `imagefs.available<15%`, a 10 s period.
#[derive(Debug, Clone, PartialEq)]
pub struct EvictionPolicy {
    pub nodefs_available: Threshold,
    pub imagefs_available: Threshold,
    pub period: Duration,
}

/// A hard threshold as `--eviction-hard` writes it: a percentage of the filesystem or a
/// quantity (`10%`, `500Mi`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Percent(u8),
    Bytes(u64),
}

impl Threshold {
    /// The bytes that must stay available on a filesystem of `capacity` bytes; a percentage
    /// is taken as kubelet does, through a float32 fraction.
    pub fn bytes_of(self, capacity: u64) -> u64 {
        match self {
            Threshold::Percent(percent) => {
                let fraction = f32::from(percent) / 100.0;
                (capacity as f64 * f64::from(fraction)) as u64
            }
            Threshold::Bytes(bytes) => bytes.min(capacity),
        }
    }

    fn parse(value: &str) -> Option<Threshold> {
        if let Some(percent) = value.strip_suffix('%') {
            return percent
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 100)
                .map(Threshold::Percent);
        }
        let bytes = value.parse::<Quantity>().ok()?.value()?;
        u64::try_from(bytes).ok().map(Threshold::Bytes)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvictionConfigError {
    #[error("PEAPOD_EVICTION_HARD: {0:?} is not a signal<threshold of nodefs.available or imagefs.available, the threshold a percentage or a quantity (10%, 500Mi)")]
    Threshold(String),
    #[error("PEAPOD_EVICTION_MONITORING_PERIOD: {0:?} is not a whole number of seconds from 1")]
    Period(String),
}

impl Default for EvictionPolicy {
    fn default() -> Self {
        EvictionPolicy {
            nodefs_available: Threshold::Percent(10),
            imagefs_available: Threshold::Percent(15),
            period: Duration::from_secs(10),
        }
    }
}

impl EvictionPolicy {
    /// `PEAPOD_EVICTION_HARD` in kubelet's `--eviction-hard` syntax, and
    /// `PEAPOD_EVICTION_MONITORING_PERIOD` in seconds.
    pub fn from_env() -> Result<EvictionPolicy, EvictionConfigError> {
        let mut policy = EvictionPolicy::default();
        if let Ok(hard) = std::env::var("PEAPOD_EVICTION_HARD") {
            policy.parse_hard(&hard)?;
        }
        if let Ok(period) = std::env::var("PEAPOD_EVICTION_MONITORING_PERIOD") {
            let seconds = period
                .parse::<u64>()
                .ok()
                .filter(|s| *s >= 1)
                .ok_or_else(|| EvictionConfigError::Period(period.clone()))?;
            policy.period = Duration::from_secs(seconds);
        }
        Ok(policy)
    }

    fn parse_hard(&mut self, hard: &str) -> Result<(), EvictionConfigError> {
        for item in hard.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bad = || EvictionConfigError::Threshold(item.to_string());
            let (signal, value) = item.split_once('<').ok_or_else(bad)?;
            let threshold = Threshold::parse(value.trim()).ok_or_else(bad)?;
            match signal.trim() {
                "nodefs.available" => self.nodefs_available = threshold,
                "imagefs.available" => self.imagefs_available = threshold,
                _ => return Err(bad()),
            }
        }
        Ok(())
    }
}

/// Evictions decided and not yet carried out by the pods' workers, and the node's
/// DiskPressure condition.
#[derive(Default)]
pub struct Evictions {
    pending: Mutex<HashMap<String, String>>,
    disk_pressure: AtomicBool,
}

impl Evictions {
    /// The eviction message for the pod, once.
    pub fn take(&self, uid: &str) -> Option<String> {
        self.pending.lock().expect("evictions lock").remove(uid)
    }

    pub fn is_pending(&self, uid: &str) -> bool {
        self.pending
            .lock()
            .expect("evictions lock")
            .contains_key(uid)
    }

    pub fn disk_pressure(&self) -> bool {
        self.disk_pressure.load(Ordering::Relaxed)
    }

    fn evict(&self, uid: &str, message: String) {
        self.pending
            .lock()
            .expect("evictions lock")
            .entry(uid.to_string())
            .or_insert(message);
    }
}

/// Runs a pass every period over the pods the API lists; `wake` pokes the worker of an
/// evicted pod.
pub async fn run(
    ctx: Arc<Context>,
    policy: EvictionPolicy,
    wake: impl Fn(&str) + Send + Sync + 'static,
) {
    let mut ticks = tokio::time::interval(policy.period);
    loop {
        ticks.tick().await;
        // kubelet's GetActivePods: the pod manager's, not a list from the API every pass.
        let all = ctx.pods.pods();
        let (pass_ctx, pass_policy) = (ctx.clone(), policy.clone());
        let evicted =
            tokio::task::spawn_blocking(move || pass(&pass_ctx, &pass_policy, &all)).await;
        for uid in evicted.unwrap_or_default() {
            wake(&uid);
        }
    }
}

/// One pass over `all` the pods; returns the uids of the pods it evicted.
fn pass(ctx: &Context, policy: &EvictionPolicy, all: &[Pod]) -> Vec<String> {
    let pods: Vec<Pod> = all
        .iter()
        .filter(|p| {
            is_active(p)
                && !ctx
                    .evictions
                    .is_pending(p.metadata.uid.as_deref().unwrap_or_default())
        })
        .cloned()
        .collect();
    let mut evicted = Vec::new();
    for pod in &pods {
        if let Some(message) = empty_dir_over_limit(ctx, pod) {
            evict(ctx, pod, message, &mut evicted);
        }
    }
    if !evicted.is_empty() {
        return evicted;
    }
    let Some(low) = low_filesystem(ctx, policy) else {
        set_pressure(ctx, false);
        return evicted;
    };
    set_pressure(ctx, true);
    reclaim_dead_containers(ctx, all);
    reclaim_images(ctx, all, &low);
    if low_filesystem(ctx, policy).is_none() {
        set_pressure(ctx, false);
        return evicted;
    }
    if let Some((pod, message)) = pick_victim(ctx, &pods, &low) {
        evict(ctx, pod, message, &mut evicted);
    }
    evicted
}

fn evict(ctx: &Context, pod: &Pod, message: String, evicted: &mut Vec<String>) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    tracing::info!(pod = pod.metadata.name.as_deref().unwrap_or_default(), %message, "evicting pod");
    ctx.evictions.evict(&uid, message);
    evicted.push(uid);
}

fn set_pressure(ctx: &Context, on: bool) {
    if ctx.evictions.disk_pressure.swap(on, Ordering::Relaxed) != on {
        tracing::info!(disk_pressure = on, "node condition DiskPressure changed");
    }
}

fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none()
        && !matches!(phase, Some("Succeeded" | "Failed"))
        && pod.spec.as_ref().is_some_and(|s| s.node_name.is_some())
}

/// kubelet's emptyDir check: a disk-backed emptyDir using more than its sizeLimit.
fn empty_dir_over_limit(ctx: &Context, pod: &Pod) -> Option<String> {
    let uid = pod.metadata.uid.as_deref()?;
    let pod_dir = ctx.paths.pod_data_dir(uid);
    for v in pod.spec.as_ref()?.volumes.iter().flatten() {
        let Some(empty_dir) = &v.empty_dir else {
            continue;
        };
        if empty_dir.medium.as_deref() == Some("Memory") {
            continue;
        }
        let Some(limit) = &empty_dir.size_limit else {
            continue;
        };
        let Some(bytes) = limit.0.parse::<Quantity>().ok().and_then(|q| q.value()) else {
            continue;
        };
        let used = disk_usage(&volume::empty_dir_path(&pod_dir, &v.name));
        if i128::from(used) > bytes {
            return Some(format!(
                "Usage of EmptyDir volume {:?} exceeds the limit {:?}. ",
                v.name, limit.0
            ));
        }
    }
    None
}

/// The filesystem below its threshold: which signal, the threshold and what is available.
struct Low {
    signal: &'static str,
    threshold: u64,
    available: u64,
}

fn low_filesystem(ctx: &Context, policy: &EvictionPolicy) -> Option<Low> {
    let checks = [
        (
            "nodefs.available",
            ctx.paths.data_dir(),
            policy.nodefs_available,
        ),
        (
            "imagefs.available",
            ctx.images.root().to_path_buf(),
            policy.imagefs_available,
        ),
    ];
    checks.into_iter().find_map(|(signal, path, threshold)| {
        let stat = nix::sys::statvfs::statvfs(&path).ok()?;
        let unit = stat.fragment_size() as u64;
        let capacity = stat.blocks() as u64 * unit;
        let available = stat.blocks_available() as u64 * unit;
        let threshold = threshold.bytes_of(capacity);
        (available < threshold).then_some(Low {
            signal,
            threshold,
            available,
        })
    })
}

/// kubelet reclaims node-level resources before it evicts, dead containers first: the
/// writable layers of finished pods whose containers have all exited.
fn reclaim_dead_containers(ctx: &Context, pods: &[Pod]) {
    for pod in pods {
        let status = pod.status.as_ref();
        let finished = matches!(
            status.and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let all_exited = status
            .map(|s| {
                s.init_container_statuses
                    .iter()
                    .flatten()
                    .chain(s.container_statuses.iter().flatten())
            })
            .into_iter()
            .flatten()
            .all(|c| c.state.as_ref().is_none_or(|s| s.running.is_none()));
        let Some(uid) = pod.metadata.uid.as_deref() else {
            continue;
        };
        let layers = ctx.paths.pod_data_dir(uid).join("containers");
        if finished && all_exited && layers.exists() {
            tracing::info!(
                pod = pod.metadata.name.as_deref().unwrap_or_default(),
                "disk pressure: removing the writable layers of a finished pod"
            );
            let _ = std::fs::remove_dir_all(layers);
        }
    }
}

/// Then images none of `pods` uses.
fn reclaim_images(ctx: &Context, pods: &[Pod], low: &Low) {
    let needed = low.threshold.saturating_sub(low.available);
    match super::image_gc::free(
        &ctx.images,
        pods,
        ctx.image_manager.usage(),
        needed,
        Duration::ZERO,
    ) {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(
                count = removed.len(),
                "disk pressure: removed unused images"
            )
        }
        Ok(_) => {}
        Err(err) => tracing::info!(%err, "disk pressure: reclaiming images"),
    }
}

/// kubelet's DiskPressure ranking: pods using more than they requested first, then lower
/// priority, then larger usage (writable layers, logs, disk emptyDirs).
fn pick_victim<'a>(ctx: &Context, pods: &'a [Pod], low: &Low) -> Option<(&'a Pod, String)> {
    let mut ranked: Vec<(&Pod, PodUsage)> = pods.iter().map(|p| (p, pod_usage(ctx, p))).collect();
    ranked.sort_by_key(|(pod, usage)| {
        let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        (
            !usage.exceeds_requests,
            priority,
            std::cmp::Reverse(usage.total),
        )
    });
    let (pod, usage) = ranked.into_iter().next()?;
    let mut message = format!(
        "The node was low on resource: ephemeral-storage. Threshold quantity: {}, available: {}. ",
        binary_si(low.threshold),
        binary_si(low.available)
    );
    for (container, used, request) in &usage.containers {
        if used > request {
            message.push_str(&format!(
                "Container {container} was using {}, request is {}, has larger consumption of ephemeral-storage. ",
                binary_si(*used),
                binary_si(*request)
            ));
        }
    }
    tracing::info!(signal = low.signal, "disk pressure: evicting a pod");
    Some((pod, message))
}

struct PodUsage {
    total: u64,
    exceeds_requests: bool,
    /// (container, bytes used by its writable layers and logs, ephemeral-storage request)
    containers: Vec<(String, u64, u64)>,
}

fn pod_usage(ctx: &Context, pod: &Pod) -> PodUsage {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let data = ctx.paths.pod_data_dir(uid);
    let logs = ctx.paths.pod_log_dir(namespace, name, uid);
    let spec = pod.spec.clone().unwrap_or_default();
    let containers: Vec<(String, u64, u64)> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| {
            let used = disk_usage(&data.join("containers").join(&c.name))
                + disk_usage(&logs.join(&c.name));
            (c.name.clone(), used, ephemeral_request(c))
        })
        .collect();
    let volumes = disk_usage(&data.join("volumes"));
    let total = volumes + containers.iter().map(|(_, used, _)| used).sum::<u64>();
    let requested: u64 = containers.iter().map(|(_, _, r)| r).sum();
    PodUsage {
        total,
        exceeds_requests: total > requested,
        containers,
    }
}

fn ephemeral_request(container: &k8s_openapi::api::core::v1::Container) -> u64 {
    container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("ephemeral-storage"))
        .and_then(|q| q.0.parse::<Quantity>().ok())
        .and_then(|q| q.value())
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0)
}

/// Bytes allocated below `path` on its own filesystem (`du -sx`): a tmpfs mounted inside
/// (a memory-backed emptyDir) is memory, not disk.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(root) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let device = root.dev();
    let mut total = root.blocks() * 512;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.dev() != device {
                continue;
            }
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

/// A byte count as Kubernetes prints a binary-SI quantity: `1Gi`, `512Ki`, or plain bytes.
fn binary_si(bytes: u64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut value = bytes;
    let mut suffix = "";
    for s in SUFFIXES {
        if value == 0 || !value.is_multiple_of(1024) {
            break;
        }
        value /= 1024;
        suffix = s;
    }
    format!("{value}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_thresholds_read_kubelets_syntax() {
        let mut policy = EvictionPolicy::default();
        policy
            .parse_hard("nodefs.available<5%, imagefs.available<20%")
            .unwrap();
        assert_eq!(policy.nodefs_available, Threshold::Percent(5));
        assert_eq!(policy.imagefs_available, Threshold::Percent(20));
        policy.parse_hard("nodefs.available<500Mi").unwrap();
        assert_eq!(policy.nodefs_available, Threshold::Bytes(500 << 20));
        assert_eq!(Threshold::Bytes(500 << 20).bytes_of(100), 100);
        assert_eq!(Threshold::Percent(10).bytes_of(1000), 100);
        assert!(policy.parse_hard("memory.available<100Mi").is_err());
        assert!(policy.parse_hard("nodefs.available<lots").is_err());
        assert!(policy.parse_hard("nodefs.available<101%").is_err());
        assert!(policy.parse_hard("nodefs.available=5%").is_err());
    }

    #[test]
    fn quantities_print_in_binary_si_as_kubernetes_does() {
        assert_eq!(binary_si(0), "0");
        assert_eq!(binary_si(1000), "1000");
        assert_eq!(binary_si(1024), "1Ki");
        assert_eq!(binary_si(10 * 1024 * 1024), "10Mi");
        assert_eq!(binary_si(1536 * 1024), "1536Ki");
    }

    #[test]
    fn disk_usage_counts_allocated_blocks_below_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/data"), vec![1u8; 100 * 1024]).unwrap();
        let used = disk_usage(dir.path());
        assert!(used >= 100 * 1024, "{used}");
        assert_eq!(disk_usage(&dir.path().join("missing")), 0);
    }
}
