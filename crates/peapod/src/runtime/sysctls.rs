//! Pod sysctls: kubelet's admission (the safe set plus the agent's allowed unsafe sysctls,
//! refused when they would reach a host namespace) and the `linux.sysctl` map every container
//! of the pod carries, which youki writes inside the pod's IPC and network namespaces.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;

use crate::kubelet::policy::KubeletPolicy;

/// kubelet's safe sysctls (`pkg/kubelet/sysctl/safe_sysctls.go`); every kernel peapod runs on
/// is recent enough for all of them.
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// The pod namespace a sysctl lives in (kubelet's sysctl/namespace.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Ipc,
    Net,
}

impl Namespace {
    fn of(name: &str) -> Option<Namespace> {
        let name = name.trim_end_matches('*');
        if name == "kernel.sem"
            || ["kernel.shm", "kernel.msg", "fs.mqueue."]
                .iter()
                .any(|p| name.starts_with(p))
        {
            Some(Namespace::Ipc)
        } else if name.starts_with("net.") {
            Some(Namespace::Net)
        } else {
            None
        }
    }

    fn word(self) -> &'static str {
        match self {
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
        }
    }
}

/// kubelet's `convertSysctlVariableToDotsSeparator`: a name whose first separator is `/`
/// has `/` and `.` swapped (`net/ipv4/conf/eno2.100/rp_filter` →
/// `net.ipv4.conf.eno2/100.rp_filter`).
pub fn convert(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

fn allowlisted(name: &str, policy: &KubeletPolicy) -> bool {
    SAFE_SYSCTLS.contains(&name)
        || policy
            .allowed_unsafe_sysctls
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => entry == name,
            })
}

fn host_conflict(spec: &PodSpec, namespace: Namespace) -> bool {
    match namespace {
        Namespace::Ipc => spec.host_ipc.unwrap_or(false),
        Namespace::Net => spec.host_network.unwrap_or(false),
    }
}

/// Why kubelet would reject this pod's sysctls (`forbidden sysctl: "kernel.msgmax" not
/// allowlisted`), or None when every one is admitted.
pub fn forbidden(spec: &PodSpec, policy: &KubeletPolicy) -> Option<String> {
    let sysctls = spec.security_context.as_ref()?.sysctls.as_deref()?;
    sysctls.iter().find_map(|sysctl| {
        let name = convert(&sysctl.name);
        let reason = if !allowlisted(&name, policy) {
            format!("{name:?} not allowlisted")
        } else {
            let namespace = Namespace::of(&name)?;
            if !host_conflict(spec, namespace) {
                return None;
            }
            format!(
                "{name:?} not allowed with host {} enabled",
                namespace.word()
            )
        };
        Some(format!("forbidden sysctl: {reason}"))
    })
}

/// The pod's sysctls that may be set: namespaced, and not in a namespace shared with the host.
/// Whatever admission said, nothing else is ever written, so a pod can never set a host
/// sysctl.
fn settable(spec: &PodSpec) -> impl Iterator<Item = (String, String)> + '_ {
    spec.security_context
        .as_ref()
        .and_then(|s| s.sysctls.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|s| (convert(&s.name), s.value.clone()))
        .filter(|(name, _)| {
            Namespace::of(name).is_some_and(|namespace| !host_conflict(spec, namespace))
        })
}

/// The IPC sysctls youki accepts in `linux.sysctl` (its validator knows only these).
const RUNTIME_IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

fn runtime_writes(name: &str) -> bool {
    RUNTIME_IPC_SYSCTLS.contains(&name) || name.starts_with("fs.mqueue.")
}

/// The sysctls every container's config.json carries as `linux.sysctl` (dot-separated);
/// youki writes them in the pod's IPC namespace, which the container joins.
pub fn linux_sysctl(spec: &PodSpec) -> BTreeMap<String, String> {
    settable(spec)
        .filter(|(name, _)| runtime_writes(name))
        .collect()
}

/// The sysctls youki refuses in `linux.sysctl` (it takes a joined network namespace for the
/// host's): `net.*` and the rarer IPC ones. The sandbox writes them with [`write_in_pod`].
pub fn sandbox_sysctls(spec: &PodSpec) -> BTreeMap<String, String> {
    settable(spec)
        .filter(|(name, _)| !runtime_writes(name))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("entering the {namespace} namespace of pod sandbox process {pid}: {source}")]
    Enter {
        namespace: &'static str,
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread setting the pod's sysctls panicked")]
    Panicked,
    #[error("setting sysctl {name}={value:?} in the pod: {source}")]
    Write {
        name: String,
        value: String,
        #[source]
        source: std::io::Error,
    },
}

/// `/proc/sys` path of a dot-separated name (a `/` inside a segment is a `.` of the path).
fn proc_path(name: &str) -> String {
    let relative: String = name
        .chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect();
    format!("/proc/sys/{relative}")
}

/// Writes `sysctls` inside the network and IPC namespaces of the pod's sandbox process
/// `pid`, from a thread of its own (namespaces are per thread; the thread ends here).
pub fn write_in_pod(pid: i32, sysctls: &BTreeMap<String, String>) -> Result<(), SysctlError> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let sysctls = sysctls.clone();
    std::thread::spawn(move || -> Result<(), SysctlError> {
        for (namespace, flag) in [
            ("net", nix::sched::CloneFlags::CLONE_NEWNET),
            ("ipc", nix::sched::CloneFlags::CLONE_NEWIPC),
        ] {
            let enter = |source| SysctlError::Enter {
                namespace,
                pid,
                source,
            };
            let file = std::fs::File::open(format!("/proc/{pid}/ns/{namespace}")).map_err(enter)?;
            nix::sched::setns(&file, flag).map_err(|e| enter(e.into()))?;
        }
        for (name, value) in &sysctls {
            std::fs::write(proc_path(name), value).map_err(|source| SysctlError::Write {
                name: name.clone(),
                value: value.clone(),
                source,
            })?;
        }
        Ok(())
    })
    .join()
    .unwrap_or(Err(SysctlError::Panicked))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sysctls: &[(&str, &str)], host_network: bool) -> PodSpec {
        let list: Vec<_> = sysctls
            .iter()
            .map(|(n, v)| serde_json::json!({"name": n, "value": v}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "containers": [],
            "hostNetwork": host_network,
            "securityContext": {"sysctls": list},
        }))
        .unwrap()
    }

    #[test]
    fn slash_separated_names_are_converted() {
        assert_eq!(convert("kernel/shm_rmid_forced"), "kernel.shm_rmid_forced");
        assert_eq!(
            convert("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
        assert_eq!(
            convert("net.ipv4.conf.eno2/100.rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
    }

    #[test]
    fn safe_sysctls_pass_and_unsafe_ones_need_the_policy() {
        let policy = KubeletPolicy::default();
        assert_eq!(
            forbidden(&spec(&[("kernel.shm_rmid_forced", "1")], false), &policy),
            None
        );
        assert_eq!(
            forbidden(&spec(&[("kernel/shm_rmid_forced", "1")], false), &policy),
            None
        );
        let unsafe_pod = spec(
            &[("kernel.shm_rmid_forced", "1"), ("kernel.msgmax", "1")],
            false,
        );
        assert_eq!(
            forbidden(&unsafe_pod, &policy).as_deref(),
            Some("forbidden sysctl: \"kernel.msgmax\" not allowlisted")
        );
        let allowing = KubeletPolicy {
            allowed_unsafe_sysctls: vec!["kernel.msg*".into()],
            ..Default::default()
        };
        assert_eq!(forbidden(&unsafe_pod, &allowing), None);
        assert_eq!(forbidden(&PodSpec::default(), &policy), None);
    }

    #[test]
    fn net_sysctls_conflict_with_host_network() {
        let policy = KubeletPolicy::default();
        let pod = spec(&[("net.ipv4.tcp_syncookies", "1")], true);
        assert_eq!(
            forbidden(&pod, &policy).as_deref(),
            Some("forbidden sysctl: \"net.ipv4.tcp_syncookies\" not allowed with host net enabled")
        );
        assert!(linux_sysctl(&pod).is_empty());
        let pod = spec(&[("net.ipv4.tcp_syncookies", "1")], false);
        assert_eq!(forbidden(&pod, &policy), None);
    }

    #[test]
    fn only_namespaced_sysctls_reach_the_runtime_spec() {
        let pod = spec(
            &[
                ("kernel/shm_rmid_forced", "1"),
                ("vm.swappiness", "1"),
                ("kernel.msgmax", "9"),
            ],
            false,
        );
        let map = linux_sysctl(&pod);
        assert_eq!(map.len(), 2);
        assert_eq!(map["kernel.shm_rmid_forced"], "1");
        assert_eq!(map["kernel.msgmax"], "9");
        assert!(sandbox_sysctls(&pod).is_empty());
    }

    #[test]
    fn net_sysctls_are_left_to_the_sandbox() {
        let pod = spec(
            &[
                ("net.ipv4.ip_unprivileged_port_start", "0"),
                ("kernel.shm_rmid_forced", "1"),
            ],
            false,
        );
        assert_eq!(linux_sysctl(&pod).len(), 1);
        let sandbox = sandbox_sysctls(&pod);
        assert_eq!(sandbox.len(), 1);
        assert_eq!(sandbox["net.ipv4.ip_unprivileged_port_start"], "0");
        assert_eq!(
            proc_path("net.ipv4.conf.eno2/100.rp_filter"),
            "/proc/sys/net/ipv4/conf/eno2.100/rp_filter"
        );
    }

    #[test]
    fn write_in_pod_sets_a_sysctl_in_another_network_namespace() {
        // A child process in a network namespace of its own stands in for the pod sandbox.
        let mut child = std::process::Command::new("unshare")
            .args(["--net", "sleep", "30"])
            .spawn()
            .expect("unshare");
        let pid = child.id() as i32;
        let path = format!("/proc/{pid}/ns/net");
        let host = std::fs::read_link("/proc/self/ns/net").unwrap();
        for _ in 0..100 {
            if std::fs::read_link(&path).is_ok_and(|ns| ns != host) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let name = "net.ipv4.ip_unprivileged_port_start";
        let host_value = std::fs::read_to_string(proc_path(name)).unwrap();
        let wanted = if host_value.trim() == "123" {
            "124"
        } else {
            "123"
        };
        let sysctls = BTreeMap::from([(name.to_string(), wanted.to_string())]);
        let result = write_in_pod(pid, &sysctls);
        let seen = std::process::Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", "cat", &proc_path(name)])
            .output()
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        result.unwrap();
        assert_eq!(String::from_utf8_lossy(&seen.stdout).trim(), wanted);
        assert_eq!(
            std::fs::read_to_string(proc_path(name)).unwrap(),
            host_value
        );
    }
}
