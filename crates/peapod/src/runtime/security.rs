//! A container's securityContext as kubelet and containerd apply it: the pod and container
//! contexts merged (kubelet's `DetermineEffectiveSecurityContext`), the user and groups to run
//! as, the runAsNonRoot check, and the OCI process/linux settings (capabilities,
//! no_new_privileges, read-only root, masked paths, seccomp, sysctls, privileged devices).

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, SecurityContext};
use serde_json::{json, Value};

use super::seccomp::{self, SeccompError};
use super::spec::DEFAULT_CAPABILITIES;
use super::sysctls;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("container's runAsUser breaks non-root policy (pod: {pod:?}, container: {container})")]
    RunAsUserRoot { pod: String, container: String },
    #[error("container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})")]
    ImageRunsAsRoot { pod: String, container: String },
    #[error(
        "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: {pod:?}, container: {container})"
    )]
    NonNumericUser {
        user: String,
        pod: String,
        container: String,
    },
    #[error(
        "container has runAsNonRoot and image has an invalid user id ({uid}). (Must be 1-(2147483647)): must be between 0 and 2147483647, inclusive (pod: {pod:?}, container: {container})"
    )]
    InvalidImageUid {
        uid: i64,
        pod: String,
        container: String,
    },
    #[error("unknown capability {name:?} in securityContext.capabilities.{list} of container {container}")]
    UnknownCapability {
        name: String,
        list: &'static str,
        container: String,
    },
    #[error("container {container}: {source}")]
    Seccomp {
        container: String,
        #[source]
        source: SeccompError,
    },
}

/// Every capability in kernel order (bit N is `CAPABILITIES[N]`).
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// kubelet's default masked and read-only /proc and /sys paths apply unless this is false.
#[derive(Debug, Clone, PartialEq)]
pub struct Security {
    /// The bounding set (`CAP_` names); also effective and permitted when running as root.
    pub capabilities: Vec<String>,
    /// `process.noNewPrivileges: true`; when false the field is left out (youki loads
    /// seccomp before dropping capabilities only when it is absent).
    pub no_new_privileges: bool,
    /// /sys read-write and every device allowed.
    pub privileged: bool,
    pub read_only_root: bool,
    /// Masked and read-only paths of /proc and /sys apply (false: privileged or procMount
    /// Unmasked).
    pub masked_paths: bool,
    /// `linux.seccomp`, None for Unconfined.
    pub seccomp: Option<Value>,
    pub sysctls: BTreeMap<String, String>,
    /// OCI `linux.devices` entries beyond youki's defaults (the host's, when privileged).
    pub devices: Vec<Value>,
}

impl Default for Security {
    fn default() -> Security {
        Security {
            capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            no_new_privileges: false,
            privileged: false,
            read_only_root: false,
            masked_paths: true,
            seccomp: None,
            sysctls: BTreeMap::new(),
            devices: Vec::new(),
        }
    }
}

/// `format.Pod`: `name_namespace(uid)`.
fn pod_label(pod: &Pod) -> String {
    let meta = &pod.metadata;
    format!(
        "{}_{}({})",
        meta.name.as_deref().unwrap_or_default(),
        meta.namespace.as_deref().unwrap_or("default"),
        meta.uid.as_deref().unwrap_or_default()
    )
}

fn pod_context(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref()?.security_context.as_ref()
}

/// The container's effective security context: the pod's container-applicable fields,
/// overridden by each field the container sets.
pub fn effective(pod: &Pod, container: &Container) -> SecurityContext {
    let mut sc = pod_context(pod)
        .map(|p| SecurityContext {
            se_linux_options: p.se_linux_options.clone(),
            windows_options: p.windows_options.clone(),
            run_as_user: p.run_as_user,
            run_as_group: p.run_as_group,
            run_as_non_root: p.run_as_non_root,
            seccomp_profile: p.seccomp_profile.clone(),
            app_armor_profile: p.app_armor_profile.clone(),
            ..Default::default()
        })
        .unwrap_or_default();
    let Some(c) = container.security_context.clone() else {
        return sc;
    };
    macro_rules! override_with {
        ($($field:ident),*) => { $(if c.$field.is_some() { sc.$field = c.$field; })* };
    }
    override_with!(
        capabilities,
        privileged,
        se_linux_options,
        windows_options,
        run_as_user,
        run_as_group,
        run_as_non_root,
        read_only_root_filesystem,
        allow_privilege_escalation,
        proc_mount,
        seccomp_profile,
        app_armor_profile
    );
    sc
}

/// The user string to resolve in the image (`uid[:gid]`): runAsUser over the image USER,
/// runAsGroup over its group, as containerd's `generateUserString`.
pub fn user_spec(sc: &SecurityContext, image_user: &str) -> String {
    let image_user_part = image_user.split(':').next().unwrap_or_default();
    match (sc.run_as_user, sc.run_as_group) {
        (None, None) => image_user.to_string(),
        (Some(uid), None) => uid.to_string(),
        (Some(uid), Some(gid)) => format!("{uid}:{gid}"),
        (None, Some(gid)) => format!("{image_user_part}:{gid}"),
    }
}

/// kubelet's `verifyRunAsNonRoot`: only the numeric part of the image USER before `:`
/// counts; a name is "non-numeric" even if the image's /etc/passwd maps it.
pub fn verify_run_as_non_root(
    pod: &Pod,
    container: &Container,
    sc: &SecurityContext,
    image_user: &str,
) -> Result<(), SecurityError> {
    if sc.run_as_non_root != Some(true) {
        return Ok(());
    }
    let (pod, container) = (pod_label(pod), container.name.clone());
    if let Some(uid) = sc.run_as_user {
        return match uid {
            0 => Err(SecurityError::RunAsUserRoot { pod, container }),
            _ => Ok(()),
        };
    }
    let user = image_user.split(':').next().unwrap_or_default();
    if user.is_empty() {
        return Err(SecurityError::ImageRunsAsRoot { pod, container });
    }
    match user.parse::<i64>() {
        Err(_) => Err(SecurityError::NonNumericUser {
            user: user.to_string(),
            pod,
            container,
        }),
        Ok(0) => Err(SecurityError::ImageRunsAsRoot { pod, container }),
        Ok(uid) if !(0..=i64::from(i32::MAX)).contains(&uid) => {
            Err(SecurityError::InvalidImageUid {
                uid,
                pod,
                container,
            })
        }
        Ok(_) => Ok(()),
    }
}

/// `process.user.additionalGids`: the image user's groups merged with fsGroup and the pod's
/// supplementalGroups, sorted and without duplicates (containerd's `mergeGids`).
pub fn additional_gids(image_groups: &[u32], pod: &Pod) -> Vec<u32> {
    let mut gids: Vec<u32> = image_groups.to_vec();
    if let Some(ctx) = pod_context(pod) {
        let pod_groups = ctx
            .fs_group
            .iter()
            .chain(ctx.supplemental_groups.iter().flatten());
        gids.extend(pod_groups.filter_map(|g| u32::try_from(*g).ok()));
    }
    gids.sort_unstable();
    gids.dedup();
    gids
}

/// Every capability this node can give: those of the running kernel
/// (`/proc/sys/kernel/cap_last_cap`) that the agent's own bounding set still holds, since a
/// container can never gain one its runtime lacks (containerd's current capabilities).
pub fn kernel_capabilities() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(CAPABILITIES.len() - 1);
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| bounding_set(&status))
        .unwrap_or(u64::MAX);
    CAPABILITIES
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(bit, _)| bounding & (1 << bit) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// The `CapBnd` mask of a `/proc/<pid>/status` text.
fn bounding_set(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

fn capability_name(
    name: &str,
    list: &'static str,
    container: &str,
) -> Result<String, SecurityError> {
    let upper = name.to_ascii_uppercase();
    let full = format!("CAP_{}", upper.strip_prefix("CAP_").unwrap_or(&upper));
    if CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SecurityError::UnknownCapability {
            name: name.to_string(),
            list,
            container: container.to_string(),
        })
    }
}

/// containerd's `WithCapabilities`: ALL in add gives every capability, ALL in drop removes
/// every one, then single names are added and dropped in that order.
pub fn capabilities(
    sc: &SecurityContext,
    container: &str,
    all: &[String],
) -> Result<Vec<String>, SecurityError> {
    let mut caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    let Some(requested) = &sc.capabilities else {
        return Ok(caps);
    };
    let add = requested.add.as_deref().unwrap_or_default();
    let drop = requested.drop.as_deref().unwrap_or_default();
    let is_all = |n: &String| n.eq_ignore_ascii_case("ALL");
    if add.iter().any(is_all) {
        caps = all.to_vec();
    }
    if drop.iter().any(is_all) {
        caps.clear();
    }
    for name in add.iter().filter(|n| !is_all(n)) {
        let name = capability_name(name, "add", container)?;
        if !caps.contains(&name) {
            caps.push(name);
        }
    }
    for name in drop.iter().filter(|n| !is_all(n)) {
        let name = capability_name(name, "drop", container)?;
        caps.retain(|c| c != &name);
    }
    Ok(caps)
}

/// kubelet's seccomp choice (container field, then pod field, else Unconfined) made into
/// `linux.seccomp` as containerd does; privileged containers get none.
fn seccomp_profile(
    sc: &SecurityContext,
    container: &str,
    bounding: &[String],
    seccomp_dir: &Path,
) -> Result<Option<Value>, SecurityError> {
    let Some(profile) = &sc.seccomp_profile else {
        return Ok(None);
    };
    let wrap = |source| SecurityError::Seccomp {
        container: container.to_string(),
        source,
    };
    match profile.type_.as_str() {
        "RuntimeDefault" => Ok(Some(seccomp::runtime_default(bounding))),
        "Localhost" => seccomp::localhost(seccomp_dir, profile.localhost_profile.as_deref())
            .map(Some)
            .map_err(wrap),
        _ => Ok(None),
    }
}

/// The OCI settings of the container's security context. `seccomp_dir` holds Localhost
/// profiles.
pub fn security(
    pod: &Pod,
    container: &Container,
    sc: &SecurityContext,
    seccomp_dir: &Path,
) -> Result<Security, SecurityError> {
    let privileged = sc.privileged == Some(true);
    let all = kernel_capabilities();
    let capabilities = if privileged {
        all
    } else {
        capabilities(sc, &container.name, &all)?
    };
    let seccomp = if privileged {
        None
    } else {
        seccomp_profile(sc, &container.name, &capabilities, seccomp_dir)?
    };
    let sysctls = pod
        .spec
        .as_ref()
        .map(sysctls::linux_sysctl)
        .unwrap_or_default();
    Ok(Security {
        capabilities,
        no_new_privileges: sc.allow_privilege_escalation == Some(false),
        privileged,
        read_only_root: sc.read_only_root_filesystem == Some(true),
        masked_paths: !privileged && sc.proc_mount.as_deref() != Some("Unmasked"),
        seccomp,
        sysctls,
        devices: if privileged {
            host_devices(Path::new("/dev"))
        } else {
            Vec::new()
        },
    })
}

/// Directories of /dev whose nodes belong to one container or none (runc's list).
const SKIPPED_DEV_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", "lxc", ".udev"];
/// Nodes the runtime makes itself.
const SKIPPED_DEV_NODES: &[&str] = &["console", "ptmx"];

/// Every character and block device node under `dir`, as OCI `linux.devices` entries: what
/// a privileged container sees in its /dev.
pub fn host_devices(dir: &Path) -> Vec<Value> {
    let mut devices = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return devices;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let file_type = meta.file_type();
        if file_type.is_dir() {
            if !SKIPPED_DEV_DIRS.contains(&name.as_str()) {
                devices.extend(host_devices(&entry.path()));
            }
            continue;
        }
        let kind = if file_type.is_char_device() {
            "c"
        } else if file_type.is_block_device() {
            "b"
        } else {
            continue;
        };
        if SKIPPED_DEV_NODES.contains(&name.as_str()) {
            continue;
        }
        let rdev = meta.rdev();
        devices.push(json!({
            "path": entry.path(),
            "type": kind,
            "major": libc::major(rdev),
            "minor": libc::minor(rdev),
            "fileMode": meta.mode() & 0o7777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        }));
    }
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": value,
        }))
        .unwrap()
    }

    fn container(sc: Value) -> Container {
        serde_json::from_value(json!({"name": "c", "securityContext": sc})).unwrap()
    }

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn container_fields_override_the_pod_context() {
        let p = pod(json!({"containers": [], "securityContext": {
            "runAsUser": 1000, "runAsGroup": 3000, "runAsNonRoot": true, "fsGroup": 2000,
            "seccompProfile": {"type": "RuntimeDefault"}}}));
        let sc = effective(
            &p,
            &container(json!({"runAsUser": 2000, "privileged": true})),
        );
        assert_eq!(sc.run_as_user, Some(2000));
        assert_eq!(sc.run_as_group, Some(3000));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.privileged, Some(true));
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let sc = effective(&pod(json!({"containers": []})), &container(json!({})));
        assert_eq!(sc, SecurityContext::default());
    }

    #[test]
    fn run_as_user_and_group_replace_the_image_user() {
        let sc = |u: Option<i64>, g: Option<i64>| SecurityContext {
            run_as_user: u,
            run_as_group: g,
            ..Default::default()
        };
        assert_eq!(user_spec(&sc(None, None), "app:app"), "app:app");
        assert_eq!(user_spec(&sc(Some(1000), None), "app:app"), "1000");
        assert_eq!(user_spec(&sc(Some(1000), Some(3000)), ""), "1000:3000");
        assert_eq!(user_spec(&sc(None, Some(3000)), "app:app"), "app:3000");
        assert_eq!(user_spec(&sc(None, Some(3000)), ""), ":3000");
    }

    #[test]
    fn run_as_non_root_messages_match_kubelet() {
        let p = pod(json!({"containers": []}));
        let c = container(json!({}));
        let non_root = |uid: Option<i64>| SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: uid,
            ..Default::default()
        };
        let err = verify_run_as_non_root(&p, &c, &non_root(None), "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "container has runAsNonRoot and image will run as root (pod: \"web_ns(u1)\", container: c)"
        );
        let err = verify_run_as_non_root(&p, &c, &non_root(None), "app").unwrap_err();
        assert_eq!(
            err.to_string(),
            "container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: \"web_ns(u1)\", container: c)"
        );
        let err = verify_run_as_non_root(&p, &c, &non_root(Some(0)), "1000").unwrap_err();
        assert_eq!(
            err.to_string(),
            "container's runAsUser breaks non-root policy (pod: \"web_ns(u1)\", container: c)"
        );
        assert!(verify_run_as_non_root(&p, &c, &non_root(None), "0:1000").is_err());
        assert!(verify_run_as_non_root(&p, &c, &non_root(None), "1000:0").is_ok());
        assert!(verify_run_as_non_root(&p, &c, &non_root(Some(1000)), "").is_ok());
        assert!(verify_run_as_non_root(&p, &c, &SecurityContext::default(), "").is_ok());
    }

    #[test]
    fn groups_merge_image_fs_group_and_supplemental_groups() {
        let p = pod(json!({"containers": [], "securityContext": {
            "fsGroup": 2000, "supplementalGroups": [5000, 1000]}}));
        assert_eq!(additional_gids(&[1000, 10], &p), vec![10, 1000, 2000, 5000]);
        assert_eq!(
            additional_gids(&[0], &pod(json!({"containers": []}))),
            vec![0]
        );
    }

    #[test]
    fn capabilities_follow_containerd_add_drop_order() {
        let all = kernel_capabilities();
        let with = |add: &[&str], drop: &[&str]| {
            let sc = SecurityContext {
                capabilities: Some(k8s_openapi::api::core::v1::Capabilities {
                    add: Some(caps(add)),
                    drop: Some(caps(drop)),
                }),
                ..Default::default()
            };
            capabilities(&sc, "c", &all)
        };
        assert_eq!(
            with(&["NET_BIND_SERVICE"], &["ALL"]).unwrap(),
            caps(&["CAP_NET_BIND_SERVICE"])
        );
        let everything_but_chown = with(&["ALL"], &["CHOWN"]).unwrap();
        assert_eq!(everything_but_chown.len(), all.len() - 1);
        assert!(!everything_but_chown.contains(&"CAP_CHOWN".to_string()));
        let added = with(&["net_admin", "CAP_SYS_TIME"], &["KILL"]).unwrap();
        assert!(added.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(added.contains(&"CAP_SYS_TIME".to_string()));
        assert!(!added.contains(&"CAP_KILL".to_string()));
        assert_eq!(added.len(), DEFAULT_CAPABILITIES.len() + 1);
        let err = with(&["MAKE_COFFEE"], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown capability \"MAKE_COFFEE\" in securityContext.capabilities.add of container c"
        );
    }

    #[test]
    fn privileged_gets_every_capability_and_no_confinement() {
        let p = pod(json!({"containers": []}));
        let c = container(json!({"privileged": true,
            "seccompProfile": {"type": "RuntimeDefault"},
            "capabilities": {"drop": ["ALL"]}}));
        let sc = effective(&p, &c);
        let s = security(&p, &c, &sc, Path::new("/nonexistent")).unwrap();
        assert_eq!(s.capabilities, kernel_capabilities());
        assert!(s.privileged && !s.masked_paths && s.seccomp.is_none());
    }

    #[test]
    fn seccomp_is_built_from_the_final_capabilities() {
        let p = pod(json!({"containers": [],
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}));
        let c = container(json!({"allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true, "capabilities": {"add": ["SYS_ADMIN"]}}));
        let s = security(&p, &c, &effective(&p, &c), Path::new("/nonexistent")).unwrap();
        assert!(s.no_new_privileges && s.read_only_root && s.masked_paths);
        let profile = s.seccomp.unwrap();
        let mount_allowed = profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["names"].as_array().unwrap().iter().any(|n| n == "mount"));
        assert!(mount_allowed);
        let c = container(json!({"seccompProfile": {"type": "Unconfined"}}));
        let s = security(&p, &c, &effective(&p, &c), Path::new("/nonexistent")).unwrap();
        assert!(s.seccomp.is_none());
        let c = container(json!({"seccompProfile": {"type": "Localhost",
            "localhostProfile": "missing.json"}}));
        let err = security(&p, &c, &effective(&p, &c), Path::new("/nonexistent")).unwrap_err();
        assert!(
            err.to_string().contains("cannot load seccomp profile"),
            "{err}"
        );
    }

    #[test]
    fn node_capabilities_stay_within_the_bounding_set() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let mask = bounding_set(&status).unwrap();
        let caps = kernel_capabilities();
        assert_eq!(caps.len() as u32, mask.count_ones());
        assert!(caps.iter().all(|c| CAPABILITIES.contains(&c.as_str())));
        assert_eq!(
            bounding_set("CapBnd:\t00000000a80425fb\n"),
            Some(0xa80425fb)
        );
    }

    #[test]
    fn host_devices_lists_device_nodes() {
        let devices = host_devices(Path::new("/dev"));
        let null = devices
            .iter()
            .find(|d| d["path"] == "/dev/null")
            .expect("/dev/null");
        assert_eq!(
            (null["type"].as_str(), null["major"].as_u64()),
            (Some("c"), Some(1))
        );
        assert!(devices.iter().all(|d| d["path"] != "/dev/ptmx"));
        assert!(devices
            .iter()
            .all(|d| !d["path"].as_str().unwrap().starts_with("/dev/pts/")));
    }
}
