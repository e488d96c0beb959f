//! The OCI runtime spec (config.json) of one container of a pod: its process, its root, its
//! mounts and the safe defaults every container gets (Docker's capability set, masked /proc
//! paths, read-only /sys). Namespaces it does not list are inherited from the shim, which is how
//! a container shares the pod's network, IPC and UTS (and, optionally, PID) namespaces.

use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::cgroupfs::CgroupFs;
use super::security::Security;

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
    /// Capabilities, no_new_privileges, read-only root, masked paths, seccomp, sysctls.
    pub security: Security,
    pub rootfs: PathBuf,
    /// Shared PID namespace: the container joins the shim's instead of getting its own.
    pub share_pid: bool,
    pub cgroups_path: String,
    /// `linux.resources` entries besides `devices` (cpu, memory, unified), merged in as given.
    pub resources: Value,
    pub binds: Vec<BindMount>,
    /// What the container sees at /sys/fs/cgroup (nothing when None).
    pub cgroupfs: Option<CgroupFs>,
    /// The process runs on a terminal (Kubernetes' `tty`), which the runtime creates.
    pub terminal: bool,
}

impl ContainerSpec {
    pub fn to_oci(&self) -> Result<Spec, serde_json::Error> {
        serde_json::from_value(self.to_json())
    }

    fn to_json(&self) -> Value {
        let security = &self.security;
        let capabilities = &security.capabilities;
        let effective: &[String] = if self.uid == 0 { capabilities } else { &[] };
        let sys_access = if security.privileged { "rw" } else { "ro" };
        let (masked, readonly) = if security.masked_paths {
            (MASKED_PATHS, READONLY_PATHS)
        } else {
            (&[][..], &[][..])
        };
        let mut namespaces = vec![json!({"type": "mount"})];
        if !self.share_pid {
            namespaces.push(json!({"type": "pid"}));
        }
        if !security.sysctls.is_empty() {
            // youki writes IPC sysctls only into a listed IPC namespace: name the pod's (the
            // shim's, which the runtime's own process is in) explicitly.
            namespaces.push(json!({"type": "ipc", "path": "/proc/self/ns/ipc"}));
        }
        let cgroupfs = self.cgroupfs.as_ref();
        namespaces.extend(cgroupfs.and_then(|c| c.namespace(security.privileged)));
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
                   "options": ["nosuid", "noexec", "nodev", sys_access]}),
        ];
        mounts.extend(
            cgroupfs
                .map(|c| c.mounts(security.privileged))
                .unwrap_or_default(),
        );
        mounts.extend(self.binds.iter().map(|bind| {
            let mut options = vec!["rbind", "rprivate"];
            if bind.read_only {
                options.push("ro");
            }
            json!({"destination": bind.destination, "type": "bind",
                   "source": bind.source, "options": options})
        }));
        let mut spec = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": self.terminal,
                "user": {"uid": self.uid, "gid": self.gid, "additionalGids": self.additional_gids},
                "args": self.args,
                "env": self.env,
                "cwd": self.cwd,
                "capabilities": {
                    "bounding": capabilities,
                    "effective": effective,
                    "permitted": effective,
                },
            },
            "root": {"path": self.rootfs, "readonly": security.read_only_root},
            "mounts": mounts,
            "linux": {
                "cgroupsPath": self.cgroups_path,
                "resources": {"devices": [{"allow": security.privileged, "access": "rwm"}]},
                "namespaces": namespaces,
                "maskedPaths": masked,
                "readonlyPaths": readonly,
            },
        });
        if let Value::Object(resources) = &self.resources {
            for (key, value) in resources {
                spec["linux"]["resources"][key] = value.clone();
            }
        }
        self.add_security_options(&mut spec);
        spec
    }

    /// Fields present only when set. noNewPrivileges is never written false: youki installs
    /// seccomp before dropping capabilities only when the field is absent.
    fn add_security_options(&self, spec: &mut Value) {
        let security = &self.security;
        if security.no_new_privileges {
            spec["process"]["noNewPrivileges"] = json!(true);
        }
        if let Some(seccomp) = &security.seccomp {
            spec["linux"]["seccomp"] = seccomp.clone();
        }
        if !security.sysctls.is_empty() {
            spec["linux"]["sysctl"] = json!(security.sysctls);
        }
        if !security.devices.is_empty() {
            spec["linux"]["devices"] = json!(security.devices);
        }
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
            security: Security::default(),
            rootfs: "/r".into(),
            share_pid: false,
            cgroups_path: "/peapod/pod1/c1".into(),
            resources: Value::Null,
            binds: vec![BindMount {
                source: "/data".into(),
                destination: "/pod-data".into(),
                read_only: true,
            }],
            cgroupfs: None,
            terminal: false,
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

    #[test]
    fn no_new_privileges_is_true_or_absent_never_false() {
        let json = spec().to_json();
        assert!(json["process"].get("noNewPrivileges").is_none());
        let mut s = spec();
        s.security.no_new_privileges = true;
        assert_eq!(s.to_json()["process"]["noNewPrivileges"], json!(true));
        let oci = s.to_oci().unwrap();
        assert_eq!(
            oci.process().as_ref().unwrap().no_new_privileges(),
            Some(true)
        );
    }

    #[test]
    fn privileged_unmasks_and_allows_devices_and_rw_sys() {
        let json = spec().to_json();
        assert_eq!(
            json["linux"]["resources"]["devices"][0]["allow"],
            json!(false)
        );
        assert!(!json["linux"]["maskedPaths"].as_array().unwrap().is_empty());
        let mut s = spec();
        s.security.privileged = true;
        s.security.masked_paths = false;
        s.security.read_only_root = true;
        s.security
            .sysctls
            .insert("kernel.shm_rmid_forced".into(), "1".into());
        s.security.seccomp = Some(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        let json = s.to_json();
        assert_eq!(
            json["linux"]["resources"]["devices"][0]["allow"],
            json!(true)
        );
        assert_eq!(json["linux"]["maskedPaths"], json!([]));
        assert_eq!(json["linux"]["readonlyPaths"], json!([]));
        assert_eq!(json["root"]["readonly"], json!(true));
        assert_eq!(
            json["linux"]["sysctl"]["kernel.shm_rmid_forced"],
            json!("1")
        );
        assert_eq!(
            json["linux"]["namespaces"].as_array().unwrap().last(),
            Some(&json!({"type": "ipc", "path": "/proc/self/ns/ipc"}))
        );
        let sys = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert!(sys["options"].as_array().unwrap().contains(&json!("rw")));
        assert!(s.to_oci().is_ok());
    }

    #[test]
    fn cgroupfs_follows_sys_and_comes_with_its_namespace() {
        let mut s = spec();
        s.cgroupfs = Some(CgroupFs::Unified);
        let json = s.to_json();
        let mounts = json["mounts"].as_array().unwrap();
        let sys = mounts.iter().position(|m| m["destination"] == "/sys");
        let cgroup = mounts
            .iter()
            .position(|m| m["destination"] == "/sys/fs/cgroup");
        assert_eq!(cgroup, sys.map(|i| i + 1), "{mounts:?}");
        assert_eq!(
            json["linux"]["namespaces"].as_array().unwrap().last(),
            Some(&json!({"type": "cgroup"}))
        );
        assert!(s.to_oci().is_ok());
    }

    #[test]
    fn tty_gives_the_process_a_terminal() {
        assert_eq!(spec().to_json()["process"]["terminal"], json!(false));
        let mut s = spec();
        s.terminal = true;
        let oci = s.to_oci().unwrap();
        assert_eq!(oci.process().as_ref().unwrap().terminal(), Some(true));
    }

    #[test]
    fn resources_merge_beside_devices() {
        let mut s = spec();
        s.resources = json!({"cpu": {"shares": 256, "period": 100000, "quota": 50000},
                             "memory": {"limit": 16777216, "swap": 16777216}});
        let oci = s.to_oci().unwrap();
        let resources = oci.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(resources.devices().as_ref().unwrap().len(), 1);
        let cpu = resources.cpu().clone().unwrap();
        assert_eq!((cpu.shares(), cpu.quota()), (Some(256), Some(50000)));
        assert_eq!(resources.memory().unwrap().limit(), Some(16777216));
        assert!(oci.process().as_ref().unwrap().oom_score_adj().is_none());
    }
}
