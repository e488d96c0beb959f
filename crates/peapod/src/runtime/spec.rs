//! The OCI runtime spec (config.json) of one container of a pod: its process, its root, its
//! mounts and the safe defaults every container gets (Docker's capability set, masked /proc
//! paths, read-only /sys). Namespaces it does not list are inherited from the shim, which is how
//! a container shares the pod's network, IPC and UTS (and, optionally, PID) namespaces.

use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

/// Docker's (and containerd's) default capability set.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// Everything that decides one container's config.json.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub no_new_privileges: bool,
    pub rootfs: PathBuf,
    /// Shared PID namespace: the container joins the shim's instead of getting its own.
    pub share_pid: bool,
    pub cgroups_path: String,
    pub binds: Vec<BindMount>,
}

impl ContainerSpec {
    pub fn to_oci(&self) -> Result<Spec, serde_json::Error> {
        serde_json::from_value(self.to_json())
    }

    fn to_json(&self) -> Value {
        let capabilities: Vec<&str> = DEFAULT_CAPABILITIES.to_vec();
        let effective = if self.uid == 0 {
            capabilities.clone()
        } else {
            Vec::new()
        };
        let mut namespaces = vec![json!({"type": "mount"})];
        if !self.share_pid {
            namespaces.push(json!({"type": "pid"}));
        }
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc",
                   "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                   "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
        ];
        mounts.extend(self.binds.iter().map(|bind| {
            let mut options = vec!["rbind", "rprivate"];
            if bind.read_only {
                options.push("ro");
            }
            json!({"destination": bind.destination, "type": "bind",
                   "source": bind.source, "options": options})
        }));
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": self.uid, "gid": self.gid, "additionalGids": self.additional_gids},
                "args": self.args,
                "env": self.env,
                "cwd": self.cwd,
                "capabilities": {
                    "bounding": capabilities,
                    "effective": effective,
                    "permitted": effective,
                },
                "noNewPrivileges": self.no_new_privileges,
            },
            "root": {"path": self.rootfs, "readonly": false},
            "mounts": mounts,
            "linux": {
                "cgroupsPath": self.cgroups_path,
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": namespaces,
                "maskedPaths": MASKED_PATHS,
                "readonlyPaths": READONLY_PATHS,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            no_new_privileges: false,
            rootfs: "/r".into(),
            share_pid: false,
            cgroups_path: "/peapod/pod1/c1".into(),
            binds: vec![BindMount {
                source: "/data".into(),
                destination: "/pod-data".into(),
                read_only: true,
            }],
        }
    }

    #[test]
    fn pod_namespaces_are_inherited_not_created() {
        let oci = spec().to_oci().unwrap();
        let types: Vec<String> = oci
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|ns| format!("{:?}", ns.typ()))
            .collect();
        assert_eq!(types, vec!["Mount", "Pid"]);
        let mut shared = spec();
        shared.share_pid = true;
        let oci = shared.to_oci().unwrap();
        assert_eq!(
            oci.linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn read_only_binds_and_non_root_capabilities() {
        let mut s = spec();
        s.uid = 1000;
        let json = s.to_json();
        let bind = json["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(bind["options"], json!(["rbind", "rprivate", "ro"]));
        assert_eq!(json["process"]["capabilities"]["effective"], json!([]));
        assert_eq!(
            json["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            DEFAULT_CAPABILITIES.len()
        );
    }
}
