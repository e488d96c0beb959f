//! The node's own objects, kept as kubelet keeps them: the `Node` (kubelet's node status
//! manager, pkg/kubelet/kubelet_node_status.go and the setters of pkg/kubelet/nodestatus) and
//! its heartbeat `Lease` in `kube-node-lease` (pkg/kubelet/nodelease).
//!
//! - **Registration.** At start the Node named after the host is created with kubelet's
//!   default labels (hostname, os, arch, their beta forms) and the control-plane role k3s
//!   gives its server; an existing Node gets those labels back and keeps every other one.
//! - **Status**, computed every 10 s (`nodeStatusUpdateFrequency`) and written only when it
//!   changed, heartbeat times aside, or when 5 minutes passed since the last write
//!   (`nodeStatusReportFrequency`): addresses, capacity and allocatable (the nodefs hard
//!   eviction threshold kept out of ephemeral-storage), nodeInfo, daemon endpoints, images and
//!   the MemoryPressure, DiskPressure, PIDPressure and Ready conditions, whose
//!   lastHeartbeatTime is the time of the pass and lastTransitionTime that of the last flip.
//!   The events kubelet records for those flips are recorded too.
//! - **Lease**, renewed every 10 s (a quarter of its 40 s duration) with the node as holder
//!   and owner, as the node lease controller does: the last lease written is updated without
//!   reading it first; a conflict or a missing lease falls back to get-or-create.
//!
//! Everything goes through the API server (an in-process [`LocalClient`]), never the store.
//! One deliberate difference: a Node deleted while the agent runs is registered again at the
//! next pass, where kubelet waits for its own restart; a single host has no other node to
//! fall back to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::kubelet::eviction::Threshold;
use axum::http::Method;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints,
    NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::status::ApiError;
use serde_json::{json, Value};

use super::Context;

/// kubelet's nodeStatusUpdateFrequency: how often the status is computed.
pub const STATUS_UPDATE_FREQUENCY: Duration = Duration::from_secs(10);
/// kubelet's nodeStatusReportFrequency: the longest an unchanged status goes unwritten.
pub const STATUS_REPORT_FREQUENCY: Duration = Duration::from_secs(300);
/// kubelet's nodeLeaseDurationSeconds.
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// A quarter of the lease's duration (kubelet's renewIntervalFraction).
const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// kubelet's maxPods.
pub const MAX_PODS: u64 = 110;
/// The namespace of node leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// kubelet's nodeStatusMaxImages and MaxNamesPerImageInNodeStatus.
const MAX_IMAGES: usize = 50;
const MAX_NAMES_PER_IMAGE: usize = 5;
/// kubelet's nodeStatusUpdateRetry and the lease controller's maxUpdateRetries.
const UPDATE_RETRIES: usize = 5;
/// The longest wait between registration or lease creation attempts (kubelet: 7 s).
const MAX_BACKOFF: Duration = Duration::from_secs(7);
/// The role label k3s puts on its server nodes.
const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

#[derive(Debug, thiserror::Error)]
pub enum NodeStatusError {
    #[error("{action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: ApiError,
    },
    #[error("reading {object} from the API server: {source}")]
    Decode {
        object: String,
        #[source]
        source: serde_json::Error,
    },
}

impl NodeStatusError {
    fn reason(&self) -> Option<&'static str> {
        match self {
            NodeStatusError::Api { source, .. } => Some(source.reason),
            NodeStatusError::Decode { .. } => None,
        }
    }
}

/// How the node describes itself.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The node's name, which is also its hostname (`agent::node_name()`).
    pub name: String,
    /// Its InternalIP (`agent::host_ip()`).
    pub host_ip: String,
    /// The directory on the filesystem that holds pod data: ephemeral-storage.
    pub data_dir: PathBuf,
    /// The `nodefs.available` hard eviction threshold, kept out of allocatable storage.
    pub nodefs_available: Threshold,
    /// Where the kubelet's own services (logs, exec) are reached: the API's HTTPS port, as
    /// the agent serves them beside the API; 0 when it serves only its socket.
    pub kubelet_port: i32,
}

/// What the machine is, read once at start as cAdvisor's machine info is cached.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Machine {
    pub cpus: u64,
    pub memory_bytes: Option<u64>,
    pub ephemeral_storage_bytes: Option<u64>,
    /// Huge page sizes in bytes with their page counts.
    pub hugepages: Vec<(u64, u64)>,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
    /// Go's name of the architecture (`amd64`, `arm64`).
    pub architecture: &'static str,
}

impl Machine {
    pub fn read(data_dir: &Path) -> Machine {
        let text = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpus = parse_cpu_list(text("/sys/devices/system/cpu/online").trim())
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u64)
            })
            .unwrap_or(1);
        let machine_id = match text("/etc/machine-id").trim() {
            "" => text("/var/lib/dbus/machine-id").trim().to_owned(),
            id => id.to_owned(),
        };
        Machine {
            cpus,
            memory_bytes: parse_mem_total(&text("/proc/meminfo")),
            ephemeral_storage_bytes: filesystem_capacity(data_dir),
            hugepages: read_hugepages(Path::new("/sys/kernel/mm/hugepages")),
            machine_id,
            system_uuid: text("/sys/class/dmi/id/product_uuid").trim().to_owned(),
            boot_id: text("/proc/sys/kernel/random/boot_id").trim().to_owned(),
            kernel_version: text("/proc/sys/kernel/osrelease").trim().to_owned(),
            os_image: os_image(&text("/etc/os-release")),
            architecture: go_arch(std::env::consts::ARCH),
        }
    }
}

/// The number of CPUs in a kernel CPU list (`0-3,6`).
fn parse_cpu_list(list: &str) -> Option<u64> {
    let mut count = 0;
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        count += match part.split_once('-') {
            Some((first, last)) => last.parse::<u64>().ok()? - first.parse::<u64>().ok()? + 1,
            None => part.parse::<u64>().map(|_| 1).ok()?,
        };
    }
    (count > 0).then_some(count)
}

/// MemTotal of /proc/meminfo, in bytes.
fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// cAdvisor's OS image: PRETTY_NAME of /etc/os-release, else "Linux".
fn os_image(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "Linux".to_owned())
}

/// Go's GOARCH for a Rust target architecture.
fn go_arch(arch: &'static str) -> &'static str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn filesystem_capacity(dir: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(stat.blocks() as u64 * stat.fragment_size() as u64)
}

/// Every huge page size the kernel offers (`hugepages-2048kB/nr_hugepages`).
fn read_hugepages(root: &Path) -> Vec<(u64, u64)> {
    let mut pages: Vec<(u64, u64)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let kib: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let count = std::fs::read_to_string(entry.path().join("nr_hugepages")).ok()?;
            Some((kib * 1024, count.trim().parse().ok()?))
        })
        .collect();
    pages.sort();
    pages
}

/// A byte count as Kubernetes prints a BinarySI quantity: the largest binary suffix that
/// divides it exactly, bare below 1Ki or when none does.
fn binary_si(bytes: u64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if bytes < 1024 {
        return bytes.to_string();
    }
    let (mut value, mut suffix) = (bytes, "");
    for next in SUFFIXES {
        if value % 1024 != 0 {
            break;
        }
        value /= 1024;
        suffix = next;
    }
    format!("{value}{suffix}")
}

type Resources = BTreeMap<String, Quantity>;

/// The allocatable the Node reports, as the downward API's resourceFieldRef defaults read it.
pub fn node_allocatable(
    machine: &Machine,
    nodefs_available: Threshold,
) -> crate::kubelet::downward::NodeAllocatable {
    crate::kubelet::downward::NodeAllocatable::from_list(&resources(machine, nodefs_available).1)
}

/// Capacity and allocatable as kubelet's MachineInfo setter makes them: allocatable is
/// capacity less the hard eviction reservation of ephemeral-storage (kubelet's float32
/// percentage times the capacity) and, for memory, less the huge pages.
fn resources(machine: &Machine, nodefs_available: Threshold) -> (Resources, Resources) {
    let (mut capacity, mut allocatable) = (Resources::new(), Resources::new());
    let mut put = |name: String, total: String, usable: String| {
        capacity.insert(name.clone(), Quantity(total));
        allocatable.insert(name, Quantity(usable));
    };
    put(
        "cpu".into(),
        machine.cpus.to_string(),
        machine.cpus.to_string(),
    );
    if let Some(ephemeral) = machine.ephemeral_storage_bytes {
        let reserved = nodefs_available.bytes_of(ephemeral);
        let usable = binary_si(ephemeral.saturating_sub(reserved));
        put("ephemeral-storage".into(), binary_si(ephemeral), usable);
    }
    for (size, count) in &machine.hugepages {
        let total = binary_si(size * count);
        put(
            format!("hugepages-{}", binary_si(*size)),
            total.clone(),
            total,
        );
    }
    if let Some(memory) = machine.memory_bytes {
        let huge: u64 = machine.hugepages.iter().map(|(size, n)| size * n).sum();
        put(
            "memory".into(),
            binary_si(memory),
            binary_si(memory.saturating_sub(huge)),
        );
    }
    put("pods".into(), MAX_PODS.to_string(), MAX_PODS.to_string());
    (capacity, allocatable)
}

/// What the eviction manager reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

/// One pressure condition's wording, as kubelet's setters word it: (type, reason and
/// message and event when under pressure, the same when not).
struct PressureWords {
    type_: &'static str,
    on: [&'static str; 3],
    off: [&'static str; 3],
}

const PRESSURE_WORDS: [PressureWords; 3] = [
    PressureWords {
        type_: "MemoryPressure",
        on: [
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
            "NodeHasInsufficientMemory",
        ],
        off: [
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            "NodeHasSufficientMemory",
        ],
    },
    PressureWords {
        type_: "DiskPressure",
        on: [
            "KubeletHasDiskPressure",
            "kubelet has disk pressure",
            "NodeHasDiskPressure",
        ],
        off: [
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            "NodeHasNoDiskPressure",
        ],
    },
    PressureWords {
        type_: "PIDPressure",
        on: [
            "KubeletHasInsufficientPID",
            "kubelet has insufficient PID available",
            "NodeHasInsufficientPID",
        ],
        off: [
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            "NodeHasSufficientPID",
        ],
    },
];

/// An event about the node: type, reason, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl NodeEvent {
    /// kubelet's recordNodeStatusEvent.
    fn status(node: &str, reason: &'static str) -> NodeEvent {
        NodeEvent {
            type_: "Normal",
            reason,
            message: format!("Node {node} status is now: {reason}"),
        }
    }
}

/// kubelet's condition setters, in their order (the pressures, then Ready, last): each
/// condition is updated in place or appended, its heartbeat is `now`, its transition time
/// moves only when its status flips. A missing capacity makes the node NotReady.
fn set_conditions(
    conditions: &mut Vec<NodeCondition>,
    node: &str,
    pressure: Pressure,
    missing: &[&str],
    now: &Time,
) -> Vec<NodeEvent> {
    let mut events = Vec::new();
    let flags = [pressure.memory, pressure.disk, pressure.pid];
    for (words, on) in PRESSURE_WORDS.iter().zip(flags) {
        let [reason, message, event] = if on { words.on } else { words.off };
        let status = if on { "True" } else { "False" };
        let condition = upsert(conditions, words.type_);
        condition.last_heartbeat_time = Some(now.clone());
        if condition.status != status {
            condition.status = status.into();
            condition.reason = Some(reason.into());
            condition.message = Some(message.into());
            condition.last_transition_time = Some(now.clone());
            events.push(NodeEvent::status(node, event));
        }
    }
    let (status, reason, message) = if missing.is_empty() {
        (
            "True",
            "KubeletReady",
            "kubelet is posting ready status".to_owned(),
        )
    } else {
        let missing = missing.join(", ");
        let message = format!("Missing node capacity for resources: {missing}");
        ("False", "KubeletNotReady", message)
    };
    let existed = conditions.iter().any(|c| c.type_ == "Ready");
    let ready = upsert(conditions, "Ready");
    if ready.status != status {
        ready.last_transition_time = Some(now.clone());
        if existed {
            let event = if status == "True" {
                "NodeReady"
            } else {
                "NodeNotReady"
            };
            events.push(NodeEvent::status(node, event));
        }
    }
    ready.status = status.into();
    ready.reason = Some(reason.into());
    ready.message = Some(message);
    ready.last_heartbeat_time = Some(now.clone());
    events
}

/// The condition of `type_`, appended with status Unknown when missing.
fn upsert<'a>(conditions: &'a mut Vec<NodeCondition>, type_: &str) -> &'a mut NodeCondition {
    let index = match conditions.iter().position(|c| c.type_ == type_) {
        Some(index) => index,
        None => {
            conditions.push(NodeCondition {
                type_: type_.into(),
                status: "Unknown".into(),
                ..Default::default()
            });
            conditions.len() - 1
        }
    };
    &mut conditions[index]
}

/// What a status pass needs beside the previous status.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub machine: Machine,
    pub pressure: Pressure,
    pub images: Vec<ContainerImage>,
}

/// The node's status as kubelet's setters make it from `previous` (fields they do not own
/// are kept), with the events the change calls for.
pub fn node_status(
    previous: Option<&NodeStatus>,
    facts: &Facts,
    config: &NodeConfig,
    now: &Time,
) -> (NodeStatus, Vec<NodeEvent>) {
    let machine = &facts.machine;
    let mut status = previous.cloned().unwrap_or_default();
    let mut events = Vec::new();
    status.addresses = Some(vec![
        address("InternalIP", &config.host_ip),
        address("Hostname", &config.name),
    ]);
    let (capacity, allocatable) = resources(machine, config.nodefs_available);
    let missing: Vec<&str> = ["cpu", "memory", "pods", "ephemeral-storage"]
        .into_iter()
        .filter(|r| !capacity.contains_key(*r))
        .collect();
    status.capacity = Some(capacity);
    status.allocatable = Some(allocatable);
    let info = status.node_info.get_or_insert_with(Default::default);
    if !info.boot_id.is_empty() && info.boot_id != machine.boot_id {
        events.push(NodeEvent {
            type_: "Warning",
            reason: "Rebooted",
            message: format!(
                "Node {} has been rebooted, boot id: {}",
                config.name, machine.boot_id
            ),
        });
    }
    *info = system_info(machine, info);
    status.daemon_endpoints = Some(NodeDaemonEndpoints {
        kubelet_endpoint: Some(DaemonEndpoint {
            port: config.kubelet_port,
        }),
    });
    status.images = Some(facts.images.clone());
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    events.extend(set_conditions(
        conditions,
        &config.name,
        facts.pressure,
        &missing,
        now,
    ));
    (status, events)
}

fn address(type_: &str, address: &str) -> NodeAddress {
    NodeAddress {
        type_: type_.into(),
        address: address.into(),
    }
}

/// nodeInfo: the machine, the kernel and OS, and the runtime and kubelet versions.
fn system_info(machine: &Machine, previous: &NodeSystemInfo) -> NodeSystemInfo {
    NodeSystemInfo {
        architecture: machine.architecture.into(),
        boot_id: machine.boot_id.clone(),
        container_runtime_version: format!("peapod://{}", env!("CARGO_PKG_VERSION")),
        kernel_version: machine.kernel_version.clone(),
        kubelet_version: peapod_apiserver::discovery::GIT_VERSION.into(),
        machine_id: machine.machine_id.clone(),
        operating_system: "linux".into(),
        os_image: machine.os_image.clone(),
        system_uuid: machine.system_uuid.clone(),
        ..previous.clone()
    }
}

/// kubelet's nodeStatusHasChanged: any difference but the conditions' heartbeat times.
pub fn status_changed(old: Option<&NodeStatus>, new: &NodeStatus) -> bool {
    let normalize = |status: &NodeStatus| {
        let mut status = status.clone();
        if let Some(conditions) = status.conditions.as_mut() {
            conditions
                .iter_mut()
                .for_each(|c| c.last_heartbeat_time = None);
            conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
        }
        status
    };
    old.is_none_or(|old| normalize(old) != normalize(new))
}

/// The images on the node, largest first, as kubelet lists them: repo digests, then tags.
pub fn node_images(mut images: Vec<peapod_image::Image>) -> Vec<ContainerImage> {
    images.sort_by_key(|image| std::cmp::Reverse(image.size));
    images
        .into_iter()
        .take(MAX_IMAGES)
        .map(|image| {
            let mut names: Vec<String> = Vec::new();
            for name in &image.names {
                let Ok(reference) = peapod_image::reference::parse(name) else {
                    continue;
                };
                let digest = format!("{}@{}", reference.name(), image.repo_digest);
                if !names.contains(&digest) {
                    names.push(digest);
                }
            }
            names.extend(image.names.iter().filter(|n| !n.contains('@')).cloned());
            names.truncate(MAX_NAMES_PER_IMAGE);
            ContainerImage {
                names: Some(names),
                size_bytes: Some(image.size as i64),
            }
        })
        .collect()
}

/// The Node kubelet registers: its default labels (and k3s' control-plane role).
pub fn initial_node(config: &NodeConfig, arch: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(default_labels(&config.name, arch)),
            ..Default::default()
        },
        spec: Some(Default::default()),
        status: None,
    }
}

fn default_labels(hostname: &str, arch: &str) -> BTreeMap<String, String> {
    [
        ("beta.kubernetes.io/arch", arch),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch),
        ("kubernetes.io/hostname", hostname),
        ("kubernetes.io/os", "linux"),
        (CONTROL_PLANE_LABEL, "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// kubelet's updateDefaultLabels: the default labels put back on an existing Node, every
/// other label left alone. True when the Node changed.
pub fn reconcile_labels(wanted: &Node, existing: &mut Node) -> bool {
    let labels = existing
        .metadata
        .labels
        .get_or_insert_with(Default::default);
    let mut changed = false;
    for (key, value) in wanted.metadata.labels.iter().flatten() {
        if labels.get(key) != Some(value) {
            labels.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

/// `now` to the second, as `metav1.Time` is stored.
fn now_seconds() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn node_path(name: &str) -> String {
    format!("/api/v1/nodes/{name}")
}

fn lease_path(name: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASE_NAMESPACE}/leases/{name}")
}

/// One API call whose answer is an object of type `T`.
async fn call<T: serde::de::DeserializeOwned>(
    client: &LocalClient,
    method: Method,
    path: &str,
    body: Option<Value>,
    action: &'static str,
) -> Result<T, NodeStatusError> {
    let body = body.map(|b| ("application/json", b));
    let answer = client
        .send(method, path, body)
        .await
        .map_err(|source| NodeStatusError::Api {
            action,
            object: path.to_owned(),
            source,
        })?;
    serde_json::from_value(answer).map_err(|source| NodeStatusError::Decode {
        object: path.to_owned(),
        source,
    })
}

fn to_body<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// Sleeps kubelet's registration back-off: 100 ms doubling up to 7 s.
async fn back_off(step: &mut Duration) {
    tokio::time::sleep(*step).await;
    *step = (*step * 2).min(MAX_BACKOFF);
}

/// Keeps the Node and its Lease until the task is dropped.
pub async fn run(client: LocalClient, ctx: Arc<Context>, config: NodeConfig) {
    let data_dir = config.data_dir.clone();
    let machine = tokio::task::spawn_blocking(move || Machine::read(&data_dir))
        .await
        .unwrap_or_default();
    let mut status = StatusManager {
        client: client.clone(),
        ctx,
        config: config.clone(),
        machine,
        registered: false,
        last_report: None,
    };
    let lease = LeaseController {
        client,
        node: config.name,
        latest: None,
    };
    // The lease is owned by the Node: registering first lets its first renewal create it.
    status.start().await;
    tokio::join!(status.run(), lease.run());
}

/// kubelet's node status manager.
struct StatusManager {
    client: LocalClient,
    ctx: Arc<Context>,
    config: NodeConfig,
    machine: Machine,
    registered: bool,
    last_report: Option<Instant>,
}

impl StatusManager {
    /// kubelet's start: the `Starting` event, then registration and the first status.
    async fn start(&mut self) {
        self.record(&NodeEvent {
            type_: "Normal",
            reason: "Starting",
            message: "Starting kubelet.".into(),
        })
        .await;
        self.sync().await;
    }

    async fn run(mut self) {
        let first = tokio::time::Instant::now() + STATUS_UPDATE_FREQUENCY;
        let mut ticks = tokio::time::interval_at(first, STATUS_UPDATE_FREQUENCY);
        loop {
            ticks.tick().await;
            self.sync().await;
        }
    }

    /// Registers the node if needed, then updates its status, trying a few times.
    async fn sync(&mut self) {
        let mut step = Duration::from_millis(100);
        while !self.registered {
            match self.register().await {
                Ok(()) => self.registered = true,
                Err(err) => {
                    tracing::warn!(%err, "registering the node; will retry");
                    back_off(&mut step).await;
                }
            }
        }
        for _ in 0..UPDATE_RETRIES {
            match self.try_update_status().await {
                Ok(()) => return,
                Err(err) if err.reason() == Some("NotFound") => {
                    tracing::warn!(node = %self.config.name, "the Node is gone; registering it again");
                    self.registered = false;
                    self.last_report = None;
                    return;
                }
                Err(err) => tracing::warn!(%err, "updating the node status; will retry"),
            }
        }
    }

    /// kubelet's tryRegisterWithAPIServer: create the Node, or put the default labels back
    /// on the one that exists.
    async fn register(&self) -> Result<(), NodeStatusError> {
        let node = initial_node(&self.config, self.machine.architecture);
        let path = node_path(&self.config.name);
        let created: Result<Node, _> = call(
            &self.client,
            Method::POST,
            "/api/v1/nodes",
            Some(to_body(&node)),
            "creating",
        )
        .await;
        match created {
            Ok(_) => {
                tracing::info!(node = %self.config.name, "registered the node");
                return Ok(());
            }
            Err(err) if err.reason() == Some("AlreadyExists") => {}
            Err(err) => return Err(err),
        }
        let mut existing: Node = call(&self.client, Method::GET, &path, None, "reading").await?;
        if reconcile_labels(&node, &mut existing) {
            let body = Some(to_body(&existing));
            let _: Node = call(&self.client, Method::PUT, &path, body, "updating").await?;
        }
        Ok(())
    }

    /// kubelet's tryUpdateNodeStatus: the status written when it changed or when the report
    /// interval passed; the events of the change recorded once it is written.
    async fn try_update_status(&mut self) -> Result<(), NodeStatusError> {
        let path = node_path(&self.config.name);
        let mut node: Node = call(&self.client, Method::GET, &path, None, "reading").await?;
        let facts = self.facts().await;
        let (status, events) =
            node_status(node.status.as_ref(), &facts, &self.config, &now_seconds());
        let due = self
            .last_report
            .is_none_or(|at| at.elapsed() >= STATUS_REPORT_FREQUENCY);
        if !due && !status_changed(node.status.as_ref(), &status) {
            return Ok(());
        }
        node.status = Some(status);
        let status_path = format!("{path}/status");
        let body = Some(to_body(&node));
        let _: Node = call(&self.client, Method::PUT, &status_path, body, "updating").await?;
        self.last_report = Some(Instant::now());
        for event in &events {
            self.record(event).await;
        }
        Ok(())
    }

    async fn facts(&self) -> Facts {
        let images = self.ctx.images.clone();
        let listed = tokio::task::spawn_blocking(move || images.list()).await;
        Facts {
            machine: self.machine.clone(),
            pressure: Pressure {
                disk: self.ctx.evictions.disk_pressure(),
                ..Default::default()
            },
            images: node_images(listed.ok().and_then(Result::ok).unwrap_or_default()),
        }
    }

    /// Records an event about the node, as kubelet's recorder does (in `default`, the
    /// involved object's uid being the node's name, as kubelet's nodeRef has it).
    async fn record(&self, event: &NodeEvent) {
        let node = &self.config.name;
        let now = jiff::Timestamp::now();
        let body = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("{node}.{:x}", now.as_nanosecond()), "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": node, "uid": node},
            "reason": event.reason,
            "message": event.message,
            "type": event.type_,
            "source": {"component": "kubelet", "host": node},
            "reportingComponent": "kubelet",
            "reportingInstance": node,
            "firstTimestamp": Time(now),
            "lastTimestamp": Time(now),
            "count": 1,
        });
        let path = "/api/v1/namespaces/default/events";
        let recorded: Result<Value, _> =
            call(&self.client, Method::POST, path, Some(body), "recording").await;
        if let Err(err) = recorded {
            tracing::warn!(%err, reason = event.reason, "recording a node event");
        }
    }
}

/// kubelet's node lease controller.
struct LeaseController {
    client: LocalClient,
    node: String,
    /// The lease last written, updated without reading it first.
    latest: Option<Lease>,
}

impl LeaseController {
    async fn run(mut self) {
        let mut ticks = tokio::time::interval(LEASE_RENEW_INTERVAL);
        loop {
            ticks.tick().await;
            self.sync().await;
        }
    }

    async fn sync(&mut self) {
        if let Some(latest) = self.latest.clone() {
            match self.retry_update(latest).await {
                Ok(()) => return,
                Err(err) => tracing::info!(%err, "renewing the last node lease; reading it again"),
            }
        }
        let ensured = self.backoff_ensure().await;
        self.latest = ensured.as_ref().map(|(lease, _)| lease.clone());
        if let Some((lease, false)) = ensured {
            if let Err(err) = self.retry_update(lease).await {
                tracing::warn!(%err, "renewing the node lease; will retry");
            }
        }
    }

    /// The lease, and whether this call created it; None when it cannot be made yet (no
    /// Node to own it).
    async fn backoff_ensure(&self) -> Option<(Lease, bool)> {
        let mut step = Duration::from_millis(100);
        loop {
            match self.ensure().await {
                Ok(ensured) => return ensured,
                Err(err) => {
                    tracing::warn!(%err, "ensuring the node lease exists; will retry");
                    back_off(&mut step).await;
                }
            }
        }
    }

    async fn ensure(&self) -> Result<Option<(Lease, bool)>, NodeStatusError> {
        let path = lease_path(&self.node);
        match call(&self.client, Method::GET, &path, None, "reading").await {
            Ok(lease) => return Ok(Some((lease, false))),
            Err(err) if err.reason() == Some("NotFound") => {}
            Err(err) => return Err(err),
        }
        let Some(lease) = self.new_lease(None).await else {
            return Ok(None);
        };
        let collection = path.rsplit_once('/').map_or(path.as_str(), |(c, _)| c);
        let body = Some(to_body(&lease));
        let created = call(&self.client, Method::POST, collection, body, "creating").await?;
        Ok(Some((created, true)))
    }

    async fn retry_update(&mut self, mut base: Lease) -> Result<(), NodeStatusError> {
        let path = lease_path(&self.node);
        let mut last = None;
        for _ in 0..UPDATE_RETRIES {
            let Some(lease) = self.new_lease(Some(&base)).await else {
                continue;
            };
            let body = Some(to_body(&lease));
            match call(&self.client, Method::PUT, &path, body, "renewing").await {
                Ok(written) => {
                    self.latest = Some(written);
                    return Ok(());
                }
                Err(err) if err.reason() == Some("Conflict") => match self.backoff_ensure().await {
                    Some((fresh, _)) => base = fresh,
                    None => return Err(err),
                },
                Err(err) if err.reason() == Some("NotFound") => return Err(err),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| NodeStatusError::Api {
            action: "renewing",
            object: path,
            source: ApiError::internal("no attempt succeeded"),
        }))
    }

    /// kubelet's newLease: `base` (or a fresh lease held by the node) renewed now, owned by
    /// the Node; None when the Node cannot be read for a lease that has no owner yet.
    async fn new_lease(&self, base: Option<&Lease>) -> Option<Lease> {
        let mut lease = base.cloned().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.node.clone()),
                namespace: Some(NODE_LEASE_NAMESPACE.into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.node.clone()),
                lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                ..Default::default()
            }),
        });
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        if lease
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(Vec::is_empty)
        {
            let path = node_path(&self.node);
            let node: Result<Node, _> =
                call(&self.client, Method::GET, &path, None, "reading").await;
            match node {
                Ok(node) => lease.metadata.owner_references = Some(vec![owner(&node)]),
                Err(err) => {
                    tracing::info!(%err, "the node lease waits for its Node");
                    return None;
                }
            }
        }
        Some(lease)
    }
}

fn owner(node: &Node) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.metadata.name.clone().unwrap_or_default(),
        uid: node.metadata.uid.clone().unwrap_or_default(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NodeConfig {
        NodeConfig {
            name: "host-1".into(),
            host_ip: "192.0.2.10".into(),
            data_dir: PathBuf::from("/"),
            nodefs_available: Threshold::Percent(10),
            kubelet_port: 6443,
        }
    }

    fn machine() -> Machine {
        Machine {
            cpus: 4,
            memory_bytes: Some(16_318_484 * 1024),
            ephemeral_storage_bytes: Some(101_203_873_792),
            hugepages: vec![(2 << 20, 0), (1 << 30, 0)],
            machine_id: "m".into(),
            system_uuid: "u".into(),
            boot_id: "b1".into(),
            kernel_version: "6.1.0-18-amd64".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            architecture: "amd64",
        }
    }

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_700_000_000 + second).unwrap())
    }

    fn facts() -> Facts {
        Facts {
            machine: machine(),
            ..Default::default()
        }
    }

    fn condition<'a>(status: &'a NodeStatus, type_: &str) -> &'a NodeCondition {
        let conditions = status.conditions.as_deref().unwrap_or_default();
        conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn machine_files_are_read_as_cadvisor_reads_them() {
        assert_eq!(parse_cpu_list("0-3"), Some(4));
        assert_eq!(parse_cpu_list("0-3,6,8-9\n".trim()), Some(7));
        assert_eq!(parse_cpu_list(""), None);
        let meminfo = "MemTotal:       16318484 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(16_318_484 * 1024));
        let release = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(os_image(release), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os_image("ID=x\n"), "Linux");
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
    }

    #[test]
    fn quantities_print_as_kubernetes_binary_si() {
        assert_eq!(binary_si(0), "0");
        assert_eq!(binary_si(1000), "1000");
        assert_eq!(binary_si(2 << 20), "2Mi");
        assert_eq!(binary_si(1 << 30), "1Gi");
        assert_eq!(binary_si(16_318_484 * 1024), "16318484Ki");
        assert_eq!(binary_si(1025), "1025");
    }

    #[test]
    fn allocatable_keeps_the_nodefs_threshold_out_of_ephemeral_storage() {
        let (capacity, allocatable) = resources(&machine(), Threshold::Percent(10));
        let get = |list: &Resources, name: &str| list[name].0.clone();
        assert_eq!(get(&capacity, "cpu"), "4");
        assert_eq!(get(&capacity, "pods"), "110");
        assert_eq!(get(&capacity, "memory"), "16318484Ki");
        assert_eq!(get(&allocatable, "memory"), "16318484Ki");
        assert_eq!(get(&capacity, "ephemeral-storage"), "98831908Ki");
        // kubelet: int64(float64(capacity) * float64(float32(10)/100)).
        assert_eq!(get(&allocatable, "ephemeral-storage"), "91083486262");
        assert_eq!(get(&capacity, "hugepages-2Mi"), "0");
        assert_eq!(get(&capacity, "hugepages-1Gi"), "0");
    }

    #[test]
    fn huge_pages_come_out_of_allocatable_memory() {
        let mut m = machine();
        m.hugepages = vec![(2 << 20, 512)];
        let (capacity, allocatable) = resources(&m, Threshold::Percent(10));
        assert_eq!(capacity["hugepages-2Mi"].0, "1Gi");
        assert_eq!(allocatable["memory"].0, "15269908Ki");
    }

    #[test]
    fn the_first_status_reports_the_machine_ready_and_without_pressure() {
        let (status, events) = node_status(None, &facts(), &config(), &at(0));
        let addresses: Vec<(String, String)> = status
            .addresses
            .iter()
            .flatten()
            .map(|a| (a.type_.clone(), a.address.clone()))
            .collect();
        assert_eq!(
            addresses,
            [
                ("InternalIP".to_owned(), "192.0.2.10".to_owned()),
                ("Hostname".to_owned(), "host-1".to_owned())
            ]
        );
        let info = status.node_info.clone().unwrap();
        assert_eq!(
            info.container_runtime_version,
            format!("peapod://{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(
            info.kubelet_version,
            peapod_apiserver::discovery::GIT_VERSION
        );
        assert_eq!(
            (info.operating_system.as_str(), info.architecture.as_str()),
            ("linux", "amd64")
        );
        let types: Vec<&str> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            types,
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        assert_eq!(
            ready.message.as_deref(),
            Some("kubelet is posting ready status")
        );
        let disk = condition(&status, "DiskPressure");
        assert_eq!(
            (disk.status.as_str(), disk.reason.as_deref()),
            ("False", Some("KubeletHasNoDiskPressure"))
        );
        let reasons: Vec<&str> = events.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [
                "NodeHasSufficientMemory",
                "NodeHasNoDiskPressure",
                "NodeHasSufficientPID"
            ]
        );
        assert_eq!(
            events[1].message,
            "Node host-1 status is now: NodeHasNoDiskPressure"
        );
        assert_eq!(
            status
                .daemon_endpoints
                .unwrap()
                .kubelet_endpoint
                .unwrap()
                .port,
            6443
        );
    }

    #[test]
    fn heartbeats_move_transitions_only_on_a_flip() {
        let (first, _) = node_status(None, &facts(), &config(), &at(0));
        let (second, events) = node_status(Some(&first), &facts(), &config(), &at(10));
        assert!(events.is_empty());
        assert!(
            !status_changed(Some(&first), &second),
            "only heartbeats moved"
        );
        let disk = condition(&second, "DiskPressure");
        assert_eq!(disk.last_heartbeat_time, Some(at(10)));
        assert_eq!(disk.last_transition_time, Some(at(0)));

        let pressed = Facts {
            pressure: Pressure {
                disk: true,
                ..Default::default()
            },
            ..facts()
        };
        let (third, events) = node_status(Some(&second), &pressed, &config(), &at(20));
        assert!(status_changed(Some(&second), &third));
        let disk = condition(&third, "DiskPressure");
        assert_eq!(
            (disk.status.as_str(), disk.reason.as_deref()),
            ("True", Some("KubeletHasDiskPressure"))
        );
        assert_eq!(disk.message.as_deref(), Some("kubelet has disk pressure"));
        assert_eq!(disk.last_transition_time, Some(at(20)));
        assert_eq!(events, [NodeEvent::status("host-1", "NodeHasDiskPressure")]);
        assert_eq!(condition(&third, "Ready").last_transition_time, Some(at(0)));
    }

    #[test]
    fn a_missing_capacity_makes_the_node_not_ready_and_a_reboot_is_reported() {
        let (first, _) = node_status(None, &facts(), &config(), &at(0));
        let mut broken = facts();
        broken.machine.memory_bytes = None;
        broken.machine.boot_id = "b2".into();
        let (second, events) = node_status(Some(&first), &broken, &config(), &at(10));
        let ready = condition(&second, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("KubeletNotReady"))
        );
        assert_eq!(
            ready.message.as_deref(),
            Some("Missing node capacity for resources: memory")
        );
        let reasons: Vec<&str> = events.iter().map(|e| e.reason).collect();
        assert_eq!(reasons, ["Rebooted", "NodeNotReady"]);
        assert_eq!(
            events[0].message,
            "Node host-1 has been rebooted, boot id: b2"
        );
    }

    #[test]
    fn conditions_the_kubelet_does_not_own_are_kept() {
        let previous = NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "NetworkUnavailable".into(),
                status: "False".into(),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let (status, _) = node_status(Some(&previous), &facts(), &config(), &at(0));
        let types: Vec<&str> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            types,
            [
                "NetworkUnavailable",
                "MemoryPressure",
                "DiskPressure",
                "PIDPressure",
                "Ready"
            ]
        );
    }

    #[test]
    fn registration_puts_the_default_labels_back_and_keeps_others() {
        let wanted = initial_node(&config(), "amd64");
        let labels = wanted.metadata.labels.clone().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "host-1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels[CONTROL_PLANE_LABEL], "true");
        let mut existing = Node {
            metadata: ObjectMeta {
                labels: Some(
                    [
                        ("team".to_owned(), "a".to_owned()),
                        ("kubernetes.io/os".to_owned(), "x".to_owned()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(reconcile_labels(&wanted, &mut existing));
        let labels = existing.metadata.labels.clone().unwrap();
        assert_eq!(
            (labels["team"].as_str(), labels["kubernetes.io/os"].as_str()),
            ("a", "linux")
        );
        assert!(!reconcile_labels(&wanted, &mut existing));
    }

    #[test]
    fn images_are_listed_largest_first_digests_then_tags() {
        let image = |name: &str, size: u64| peapod_image::Image {
            id: "sha256:c".into(),
            names: vec![name.into()],
            manifest_digest: "sha256:m".into(),
            repo_digest: "sha256:d".into(),
            config: Default::default(),
            size,
            layers: Vec::new(),
        };
        let images = node_images(vec![
            image("docker.io/library/busybox:latest", 10),
            image("localhost:5000/app:v1", 20),
        ]);
        assert_eq!(
            images[0].names.as_deref().unwrap(),
            ["localhost:5000/app@sha256:d", "localhost:5000/app:v1"]
        );
        assert_eq!(
            images[1].names.as_deref().unwrap(),
            [
                "docker.io/library/busybox@sha256:d",
                "docker.io/library/busybox:latest"
            ]
        );
        assert_eq!(images[1].size_bytes, Some(10));
    }
}
