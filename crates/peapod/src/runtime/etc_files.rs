//! The files kubelet manages for every container of a pod: /etc/hosts, /etc/hostname and
//! /etc/resolv.conf, written once per pod and bind-mounted into each container.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use super::spec::BindMount;

pub struct EtcFiles {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

impl EtcFiles {
    pub fn in_dir(pod_run_dir: &Path) -> EtcFiles {
        EtcFiles {
            hosts: pod_run_dir.join("etc-hosts"),
            hostname: pod_run_dir.join("etc-hostname"),
            resolv_conf: pod_run_dir.join("resolv.conf"),
        }
    }

    pub fn binds(&self) -> Vec<BindMount> {
        [
            (&self.hosts, "/etc/hosts"),
            (&self.hostname, "/etc/hostname"),
            (&self.resolv_conf, "/etc/resolv.conf"),
        ]
        .into_iter()
        .map(|(source, destination)| BindMount {
            source: source.clone(),
            destination: destination.to_string(),
            read_only: false,
        })
        .collect()
    }

    pub fn write(&self, pod: &Pod, pod_ip: Option<&str>) -> std::io::Result<()> {
        let hostname = pod_hostname(pod);
        std::fs::write(&self.hostname, format!("{hostname}\n"))?;
        std::fs::write(&self.hosts, hosts_file(pod, &hostname, pod_ip))?;
        std::fs::write(&self.resolv_conf, resolv_conf(pod))
    }
}

/// spec.hostname, else the pod name, cut to 63 characters as kubelet does.
pub fn pod_hostname(pod: &Pod) -> String {
    let spec_hostname = pod.spec.as_ref().and_then(|s| s.hostname.clone());
    let name = spec_hostname
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    let trimmed: String = name.chars().take(63).collect();
    trimmed.trim_end_matches(['-', '.']).to_string()
}

fn hosts_file(pod: &Pod, hostname: &str, pod_ip: Option<&str>) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = pod_ip {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.as_deref())
        .unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            let names = alias.hostnames.as_deref().unwrap_or_default().join("\t");
            out.push_str(&format!("{}\t{names}\n", alias.ip));
        }
    }
    out
}

/// Without cluster DNS, ClusterFirst falls back to the node's resolver, as kubelet does.
fn resolv_conf(pod: &Pod) -> String {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst");
    let mut lines: Vec<String> = if policy == "None" {
        Vec::new()
    } else {
        std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    if let Some(config) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        for server in config.nameservers.as_deref().unwrap_or_default() {
            lines.push(format!("nameserver {server}"));
        }
        let searches = config.searches.as_deref().unwrap_or_default();
        if !searches.is_empty() {
            lines.push(format!("search {}", searches.join(" ")));
        }
        let options: Vec<String> = config
            .options
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|o| match &o.value {
                Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            })
            .collect();
        if !options.is_empty() {
            lines.push(format!("options {}", options.join(" ")));
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_has_localhost_pod_ip_and_aliases() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [], "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["a", "b"]}]}
        }))
        .unwrap();
        let hosts = hosts_file(&pod, "web", Some("10.42.0.5"));
        assert!(hosts.contains("127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("10.42.0.5\tweb\n"));
        assert!(hosts.contains("10.1.2.3\ta\tb\n"));
    }

    #[test]
    fn hostname_prefers_spec_hostname_and_is_cut_to_63() {
        let long = "a".repeat(70);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": long}, "spec": {"containers": []}
        }))
        .unwrap();
        assert_eq!(pod_hostname(&pod).len(), 63);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x"}, "spec": {"containers": [], "hostname": "h"}
        }))
        .unwrap();
        assert_eq!(pod_hostname(&pod), "h");
    }
}
