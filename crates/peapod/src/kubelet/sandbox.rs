//! A pod's sandbox from the agent's side: start the shim (after writing the pod's /etc files
//! and preparing its volumes) and give it its network, find it again after an agent restart,
//! and tear everything down — shim, network, directories, logs, cgroups — when the pod goes.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use peapod_net::{HostPort, Protocol};

use super::events::{self, EventType};
use super::scheduler;
use super::Context;
use crate::paths::Paths;
use crate::runtime::etc_files::{kernel_hostname, ClusterDns, EtcFiles};
use crate::shim::client::ShimClient;
use crate::shim::launch::{self, LaunchError, LaunchSpec};
use crate::volume::{self, HostVolume, VolumeError};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("writing the pod's /etc files in {path}: {source}")]
    EtcFiles {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("recording the finished sandbox in {path}: {source}")]
    MarkReady {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("setting up the pod network: {0}")]
    Network(#[from] peapod_net::NetError),
    #[error("the pod sandbox (pid {0}) runs but does not answer on its socket")]
    Unresponsive(i32),
    #[error(transparent)]
    PodCgroup(#[from] super::pod_cgroup::PodCgroupError),
    #[error("setting the pod's sysctls: {0}")]
    Sysctls(#[from] crate::runtime::sysctls::SysctlError),
}

pub struct Sandbox {
    pub client: ShimClient,
    pub volumes: HashMap<String, HostVolume>,
    /// The pod's address: its own on the bridge, or the node's with hostNetwork.
    pub pod_ip: String,
}

/// Starts the pod's shim, gives it its network and readies its volumes. Whatever was set up
/// is taken down again when a step fails.
pub async fn create(ctx: &Context, pod: &Pod) -> Result<Sandbox, SandboxError> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    // A live shim that failed to answer once must not be replaced: its containers would be
    // killed for a transient error.
    if let Some(pid) = running_shim(&ctx.paths.pod_run_dir(&uid), &uid) {
        return Err(SandboxError::Unresponsive(pid));
    }
    // Containers have PID namespaces of their own, so those of a sandbox whose shim died
    // (killed while the agent was down) are still running, in the old network namespace or
    // on the node's ports: kill them first, as kubelet kills a pod's containers before it
    // creates a new sandbox for it.
    kill_container_processes(&ctx.paths, &uid);
    kill_stray_shims(&ctx.paths.pod_run_dir(&uid), &uid).await;
    super::pod_cgroup::ensure(ctx, pod)?;
    let result = start(ctx, pod, &uid).await;
    if result.is_err() {
        stop_shim(ctx, &uid).await;
    }
    result
}

async fn start(ctx: &Context, pod: &Pod, uid: &str) -> Result<Sandbox, SandboxError> {
    let paths = &ctx.paths;
    let run_dir = paths.pod_run_dir(uid);
    let volumes = prepare_volumes(ctx, pod, uid).await?;
    let host_network = uses_host_network(pod);
    let pod_ip = if host_network {
        ctx.host_ip.clone()
    } else {
        ctx.network.reserve(uid)?.to_string()
    };
    write_etc_files(ctx, pod, &run_dir, &pod_ip)?;
    let spec = LaunchSpec {
        pod_uid: uid.to_string(),
        hostname: if host_network {
            None
        } else {
            Some(
                kernel_hostname(pod, &ctx.cluster.domain).map_err(|e| SandboxError::EtcFiles {
                    path: run_dir.display().to_string(),
                    source: e.into(),
                })?,
            )
        },
        run_dir: run_dir.clone(),
        share_pid: pod
            .spec
            .as_ref()
            .and_then(|s| s.share_process_namespace)
            .unwrap_or(false),
    };
    let pid = tokio::task::spawn_blocking(move || launch::launch(&spec))
        .await
        .map_err(|e| LaunchError::Failed(e.to_string()))??;
    let _ = std::fs::write(run_dir.join(SHIM_PID_FILE), pid.to_string());
    // Network sysctls live in the pod's network namespace, which the shim holds, so they are
    // set there once, as containerd sets them on the sandbox.
    let sysctls = pod
        .spec
        .as_ref()
        .map(crate::runtime::sysctls::sandbox_sysctls)
        .unwrap_or_default();
    if !sysctls.is_empty() {
        tokio::task::spawn_blocking(move || crate::runtime::sysctls::write_in_pod(pid, &sysctls))
            .await
            .map_err(|e| LaunchError::Failed(e.to_string()))??;
    }
    if !host_network {
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        ctx.network.attach(uid, &netns, &host_ports(pod)).await?;
    }
    let client = ShimClient::new(&run_dir);
    mark_ready(&run_dir, pid)?;
    Ok(Sandbox {
        client,
        volumes,
        pod_ip,
    })
}

/// The pod's volumes ready on the host, its claims resolved to their bound volumes.
async fn prepare_volumes(
    ctx: &Context,
    pod: &Pod,
    uid: &str,
) -> Result<HashMap<String, HostVolume>, volume::VolumeError> {
    let (resolved, read_only) = super::volume_claims::resolve(&ctx.client, pod).await?;
    let mut volumes = volume::prepare(
        &resolved,
        &ctx.paths.pod_data_dir(uid),
        &volume_sources(ctx),
    )?;
    super::volume_claims::apply_read_only(&mut volumes, &read_only);
    Ok(volumes)
}

/// What the API-data volumes read: the watched ConfigMaps and Secrets, the node's allocatable.
pub fn volume_sources(ctx: &Context) -> volume::Sources<'_> {
    volume::Sources {
        config: &ctx.config,
        allocatable: &ctx.allocatable,
        tokens: &ctx.tokens,
    }
}

const SHIM_PID_FILE: &str = "shim.pid";
/// Written last, with the shim's pid, once every step of the sandbox's set-up succeeded: a
/// shim found without it was cut off mid-way (the agent died) and is not adopted.
const READY_FILE: &str = "sandbox.ready";

fn mark_ready(run_dir: &Path, pid: i32) -> Result<(), SandboxError> {
    let failed = |source| SandboxError::MarkReady {
        path: run_dir.join(READY_FILE).display().to_string(),
        source,
    };
    let staged = run_dir.join(format!("{READY_FILE}.tmp"));
    std::fs::write(&staged, pid.to_string()).map_err(failed)?;
    std::fs::rename(&staged, run_dir.join(READY_FILE)).map_err(failed)
}

fn ready_pid(run_dir: &Path) -> Option<i32> {
    std::fs::read_to_string(run_dir.join(READY_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The pid of the pod's shim if that process still runs (not a zombie).
fn running_shim(run_dir: &Path, uid: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(run_dir.join(SHIM_PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit(')').next()?.split_whitespace().next()?;
    (cmdline.contains("\0shim\0") && cmdline.contains(uid) && state != "Z").then_some(pid)
}

/// Shims of the pod that no pid file names: the agent died while launching them. They hold
/// no container yet, and a second shim must never serve the same pod.
async fn kill_stray_shims(run_dir: &Path, uid: &str) {
    let needle = format!(
        "\0shim\0--pod-uid\0{uid}\0--run-dir\0{}\0",
        run_dir.display()
    );
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline.contains(&needle) {
            tracing::info!(uid, pid, "killing a pod sandbox whose launch was cut off");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_gone(pid).await;
        }
    }
}

/// Writes the pod's /etc files from the node's, recording kubelet's DNS warnings.
fn write_etc_files(
    ctx: &Context,
    pod: &Pod,
    run_dir: &Path,
    pod_ip: &str,
) -> Result<(), SandboxError> {
    let failed = |source| SandboxError::EtcFiles {
        path: run_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(run_dir).map_err(failed)?;
    let cluster_dns = ClusterDns {
        domain: ctx.cluster.domain.clone(),
        server: ctx.cluster.dns_service_ip(),
    };
    let warnings = EtcFiles::in_dir(run_dir)
        .write_reporting(
            pod,
            Some(pod_ip),
            &cluster_dns,
            Path::new("/etc/resolv.conf"),
            Path::new("/etc/hosts"),
        )
        .map_err(failed)?;
    for warning in warnings {
        events::record(
            ctx,
            pod,
            EventType::Warning,
            warning.reason,
            &warning.message,
            None,
        );
    }
    Ok(())
}

/// What an agent finds of a pod's sandbox when it (re)starts the pod's worker.
pub enum Found {
    /// A complete sandbox whose shim answers: adopted as it is.
    Ready(Sandbox),
    /// No shim answers: a new sandbox is to be made.
    Absent,
    /// A shim answers but its sandbox is not whole (why): kubelet's NotReady sandbox, to be
    /// killed and re-created.
    Broken(Sandbox, String),
}

impl Found {
    /// The shim to talk to, whole or not (to stop its containers, say).
    pub fn any(self) -> Option<Sandbox> {
        match self {
            Found::Ready(sandbox) | Found::Broken(sandbox, _) => Some(sandbox),
            Found::Absent => None,
        }
    }
}

/// The sandbox of a pod whose shim already runs (the agent restarted), checked as kubelet
/// checks a sandbox's readiness: set-up finished, network in place.
pub async fn attach(ctx: &Context, pod: &Pod) -> Found {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let run_dir = ctx.paths.pod_run_dir(&uid);
    let client = ShimClient::new(&run_dir);
    let Ok(state) = client.state().await else {
        return Found::Absent;
    };
    let volumes = prepare_volumes(ctx, pod, &uid).await;
    let address = if uses_host_network(pod) {
        Ok(ctx.host_ip.clone())
    } else {
        ctx.network
            .pod_ip(&uid)
            .ok_or_else(|| "it holds no pod address".to_string())
            .and_then(|ip| check_network(ctx, &uid, state.pid, ip).map(|()| ip.to_string()))
    };
    let broken = if ready_pid(&run_dir) != Some(state.pid) {
        Some("its set-up never finished".to_string())
    } else {
        address
            .as_ref()
            .err()
            .cloned()
            .or_else(|| volumes.as_ref().err().map(ToString::to_string))
    };
    let sandbox = Sandbox {
        client,
        volumes: volumes.unwrap_or_default(),
        pod_ip: address.unwrap_or_default(),
    };
    match broken {
        None => Found::Ready(sandbox),
        Some(why) => Found::Broken(sandbox, why),
    }
}

/// The pod's veth is on the bridge, and its namespace has eth0 with the pod's address and a
/// default route.
fn check_network(ctx: &Context, uid: &str, pid: i32, ip: Ipv4Addr) -> Result<(), String> {
    let veth = Path::new("/sys/class/net").join(peapod_net::host_veth_name(uid));
    let master = std::fs::read_link(veth.join("master")).map_err(|_| "its veth is gone")?;
    if master.file_name() != Some(std::ffi::OsStr::new(&ctx.network.config().bridge)) {
        return Err("its veth is not on the bridge".into());
    }
    let read = |file: &str| std::fs::read_to_string(format!("/proc/{pid}/net/{file}"));
    let devices = read("dev").map_err(|e| e.to_string())?;
    if !devices.lines().any(|l| l.trim_start().starts_with("eth0:")) {
        return Err("its network namespace has no eth0".into());
    }
    let addresses = read("fib_trie").map_err(|e| e.to_string())?;
    if !addresses.contains(&format!(" {ip}\n")) {
        return Err(format!("eth0 lacks the pod address {ip}"));
    }
    let routes = read("route").map_err(|e| e.to_string())?;
    let default_route = routes.lines().skip(1).any(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        fields.first() == Some(&"eth0") && fields.get(1) == Some(&"00000000")
    });
    if !default_route {
        return Err("its network namespace has no default route".into());
    }
    Ok(())
}

/// Containers and runtime state of a sandbox whose shim died: nothing of it may linger
/// beside the sandbox that replaces it. Returns its container cgroups, to be removed once
/// their killed processes are gone (see [`remove_cgroups_when_empty`]).
pub fn clean_dead_sandbox(paths: &Paths, uid: &str) -> Vec<PathBuf> {
    kill_container_processes(paths, uid);
    let run_dir = paths.pod_run_dir(uid);
    remove_dir(&run_dir.join("runtime"));
    let _ = std::fs::remove_file(run_dir.join(READY_FILE));
    pod_cgroup_dirs(paths, uid)
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|children| children.flatten().map(|c| c.path()))
        .filter(|path| path.is_dir())
        .collect()
}

/// Removes cgroups whose processes were killed. A killed container init was reparented to
/// the host's init, and its pids charge stays until that init reaps it: wait up to a minute.
pub fn remove_cgroups_when_empty(dirs: Vec<PathBuf>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut left = dirs;
    while !left.is_empty() && std::time::Instant::now() < deadline {
        left.retain(|dir| {
            std::fs::remove_dir(dir).is_err_and(|e| e.kind() != std::io::ErrorKind::NotFound)
        });
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for dir in left {
        tracing::warn!(?dir, "a dead container's cgroup is still in use");
    }
}

/// Stops the shim (which kills and deletes any container left), waits for it to exit, and
/// takes back the pod's network.
pub async fn stop_shim(ctx: &Context, uid: &str) {
    let client = ShimClient::new(&ctx.paths.pod_run_dir(uid));
    if let Ok(state) = client.state().await {
        if let Err(err) = client.shutdown().await {
            tracing::warn!(uid, %err, "pod sandbox shutdown reported an error");
        }
        wait_gone(state.pid).await;
    }
    if let Err(err) = ctx.network.detach(uid).await {
        tracing::warn!(uid, %err, "releasing the pod network");
    }
}

pub fn uses_host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The DNAT rules a pod's hostPorts need (none with hostNetwork: its ports are the node's).
fn host_ports(pod: &Pod) -> Vec<HostPort> {
    scheduler::claims_of(pod)
        .into_iter()
        .map(|claim| HostPort {
            protocol: match claim.protocol.as_str() {
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                _ => Protocol::Tcp,
            },
            host_ip: claim
                .host_ip
                .parse::<Ipv4Addr>()
                .ok()
                .filter(|ip| !ip.is_unspecified()),
            host_port: claim.host_port as u16,
            container_port: claim.container_port as u16,
        })
        .collect()
}

/// Removes everything the pod had on the host but its object: run and data directories,
/// logs, cgroups. The shim must be gone.
pub fn remove_files(paths: &Paths, uid: &str) {
    kill_container_processes(paths, uid);
    remove_dir(&paths.pod_run_dir(uid));
    volume::teardown(&paths.pod_data_dir(uid));
    remove_dir(&paths.pod_data_dir(uid));
    if let Ok(entries) = std::fs::read_dir(paths.pod_logs_root()) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .ends_with(&format!("_{uid}"))
            {
                remove_dir(&entry.path());
            }
        }
    }
    for dir in pod_cgroup_dirs(paths, uid) {
        remove_cgroup(&dir);
    }
}

fn remove_dir(path: &Path) {
    if let Err(err) = std::fs::remove_dir_all(path) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(?path, %err, "removing pod directory");
        }
    }
}

/// The pod's cgroup directory in every mounted hierarchy (cgroup v1 controllers and v2).
pub fn pod_cgroup_dirs(paths: &Paths, uid: &str) -> Vec<PathBuf> {
    let relative = format!("{}/pod{uid}", paths.cgroup_parent().trim_start_matches('/'));
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path().join(&relative))
        .filter(|p| p.is_dir())
        .collect();
    let unified = Path::new("/sys/fs/cgroup").join(&relative);
    if unified.is_dir() {
        dirs.push(unified);
    }
    dirs
}

/// SIGKILLs every process left in the pod's container cgroups: containers have their own PID
/// namespaces, so they outlive a shim that died; nothing of theirs may outlive the pod.
pub fn kill_container_processes(paths: &Paths, uid: &str) {
    for dir in pod_cgroup_dirs(paths, uid) {
        let Ok(children) = std::fs::read_dir(&dir) else {
            continue;
        };
        for child in children.flatten().filter(|c| c.path().is_dir()) {
            let procs =
                std::fs::read_to_string(child.path().join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// cgroup directories are removed leaf first with rmdir (their files are not real files).
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    // A killed process leaves its cgroup a moment after the signal: retry briefly.
    for attempt in 0..100 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) if attempt == 99 => tracing::warn!(?dir, %err, "removing pod cgroup"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Waits until `pid` has exited: reaped when it is our child, otherwise gone or a zombie of
/// another parent.
pub async fn wait_gone(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(pid);
    for _ in 0..2000 {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return,
            Err(_) => {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next());
                if matches!(state, None | Some("Z") | Some("X")) {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tracing::warn!(%pid, "pod sandbox process did not exit in time");
}
