//! The files kubelet manages for every container of a pod — /etc/hosts, /etc/hostname and
//! /etc/resolv.conf — built with kubelet's rules (`GetPodDNS`, `ensureHostsFile`) and the
//! container runtime's file format, written once per pod and bind-mounted into each container.

use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{HostAlias, Pod, PodDNSConfig, PodSpec};

use super::spec::BindMount;

/// kubelet's `ndots:5`, the only option of a ClusterFirst pod's resolver (defaultDNSOptions).
const CLUSTER_FIRST_OPTIONS: &[&str] = &["ndots:5"];
/// Kubernetes' MaxDNSNameservers.
pub const MAX_DNS_NAMESERVERS: usize = 3;
/// Kubernetes' MaxDNSSearchPaths.
pub const MAX_DNS_SEARCH_PATHS: usize = 32;
/// Kubernetes' MaxDNSSearchListChars.
pub const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;
/// Longer search paths make some resolvers (glibc 2.28) abort, so kubelet drops them.
const MAX_SEARCH_PATH_LEN: usize = 253;
/// kubelet's maxResolveConfLength.
const MAX_RESOLV_CONF_LEN: u64 = 10 << 20;
/// The Linux nodename field holds 64 characters.
const MAX_FQDN_LEN: usize = 64;
const MAX_HOSTNAME_LEN: usize = 63;

const MANAGED_HOSTS_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const MANAGED_HOSTS_HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";
const LOCALHOST_ENTRIES: &str = "127.0.0.1\tlocalhost\n\
    ::1\tlocalhost ip6-localhost ip6-loopback\n\
    fe00::0\tip6-localnet\n\
    fe00::0\tip6-mcastprefix\n\
    fe00::1\tip6-allnodes\n\
    fe00::2\tip6-allrouters\n";

/// Reason of kubelet's Warning event when nameservers or search paths were cut to the limits.
pub const DNS_CONFIG_FORMING_REASON: &str = "DNSConfigForming";

#[derive(Debug, thiserror::Error)]
pub enum EtcFilesError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading {path}: the read limit is reached")]
    TooLarge { path: PathBuf },
    #[error("parsing {path}: nameserver list is empty")]
    EmptyNameserver { path: PathBuf },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading the node's hostname: {0}")]
    NodeHostname(#[source] nix::Error),
    #[error("failed to construct fqdn from pod hostname and cluster domain, fqdn {fqdn} is too long ({MAX_FQDN_LEN} characters is the max, {} characters requested)", fqdn.len())]
    FqdnTooLong { fqdn: String },
}

impl From<EtcFilesError> for io::Error {
    fn from(err: EtcFilesError) -> io::Error {
        let kind = match &err {
            EtcFilesError::Read { source, .. } | EtcFilesError::Write { source, .. } => {
                source.kind()
            }
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }
}

/// kubelet's `--cluster-domain` and `--cluster-dns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterDns {
    pub domain: String,
    pub server: Ipv4Addr,
}

/// A Warning event kubelet would record on the pod while forming its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEvent {
    pub reason: &'static str,
    pub message: String,
}

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

    /// Writes the three files from the node's `host_resolv_conf` and `host_hosts`
    /// (normally /etc/resolv.conf and /etc/hosts), returning the Warning events kubelet
    /// records on the pod while doing so (DNSConfigForming), for the caller to emit.
    pub fn write_reporting(
        &self,
        pod: &Pod,
        pod_ip: Option<&str>,
        cluster: &ClusterDns,
        host_resolv_conf: &Path,
        host_hosts: &Path,
    ) -> io::Result<Vec<PodEvent>> {
        let hostname = kernel_hostname(pod, &cluster.domain)?;
        write_file(&self.hostname, &format!("{hostname}\n"))?;
        let hosts = hosts_file(pod, pod_ip, &cluster.domain, host_hosts)?;
        write_file(&self.hosts, &hosts)?;
        let host_text = read_resolv_conf(host_resolv_conf)?;
        let host = parse_resolv_conf(&host_text).map_err(|ParseError::EmptyNameserver| {
            EtcFilesError::EmptyNameserver {
                path: host_resolv_conf.to_path_buf(),
            }
        })?;
        let (dns, events) = pod_dns(pod, cluster, host);
        write_file(&self.resolv_conf, &dns.render().unwrap_or(host_text))?;
        Ok(events)
    }
}

fn write_file(path: &Path, content: &str) -> Result<(), EtcFilesError> {
    use std::os::unix::fs::PermissionsExt;
    let write = || {
        std::fs::write(path, content)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
    };
    write().map_err(|source| EtcFilesError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn spec(pod: &Pod) -> Option<&PodSpec> {
    pod.spec.as_ref()
}

fn host_network(pod: &Pod) -> bool {
    spec(pod).and_then(|s| s.host_network).unwrap_or(false)
}

/// spec.hostname, else the pod name; cut to 63 characters (then stripped of trailing
/// '-' and '.') as kubelet's `truncatePodHostnameIfNeeded` does.
pub fn pod_hostname(pod: &Pod) -> String {
    let spec_hostname = spec(pod).and_then(|s| s.hostname.clone());
    let name = spec_hostname
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    if name.len() <= MAX_HOSTNAME_LEN {
        return name;
    }
    let cut: String = name.chars().take(MAX_HOSTNAME_LEN).collect();
    cut.trim_end_matches(['-', '.']).to_string()
}

/// `<subdomain>.<namespace>.svc.<cluster domain>` when spec.subdomain is set.
fn pod_domain(pod: &Pod, cluster_domain: &str) -> Option<String> {
    let subdomain = spec(pod)?.subdomain.as_deref().filter(|s| !s.is_empty())?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    Some(format!("{subdomain}.{namespace}.svc.{cluster_domain}"))
}

/// The hostname the pod's containers see (/etc/hostname, and the UTS namespace): the
/// node's for hostNetwork pods, whose UTS namespace is the node's; else [`pod_hostname`],
/// or its FQDN with setHostnameAsFQDN (kubelet's `GetNodenameForKernel`).
pub fn kernel_hostname(pod: &Pod, cluster_domain: &str) -> Result<String, EtcFilesError> {
    if host_network(pod) {
        let name = nix::unistd::gethostname().map_err(EtcFilesError::NodeHostname)?;
        return Ok(name.to_string_lossy().into_owned());
    }
    let hostname = pod_hostname(pod);
    let as_fqdn = spec(pod).and_then(|s| s.set_hostname_as_fqdn) == Some(true);
    match pod_domain(pod, cluster_domain) {
        Some(domain) if as_fqdn => {
            let fqdn = format!("{hostname}.{domain}");
            if fqdn.len() > MAX_FQDN_LEN {
                return Err(EtcFilesError::FqdnTooLong { fqdn });
            }
            Ok(fqdn)
        }
        _ => Ok(hostname),
    }
}

fn host_aliases(pod: &Pod) -> &[HostAlias] {
    spec(pod)
        .and_then(|s| s.host_aliases.as_deref())
        .unwrap_or_default()
}

/// kubelet's `nodeHostsFileContent` for hostNetwork pods, else `managedHostsFileContent`.
fn hosts_file(
    pod: &Pod,
    pod_ip: Option<&str>,
    cluster_domain: &str,
    host_hosts: &Path,
) -> Result<String, EtcFilesError> {
    let aliases = host_aliases(pod);
    if host_network(pod) {
        let node_hosts = std::fs::read(host_hosts).map_err(|source| EtcFilesError::Read {
            path: host_hosts.to_path_buf(),
            source,
        })?;
        let node_hosts = String::from_utf8_lossy(&node_hosts);
        return Ok(format!(
            "{MANAGED_HOSTS_HEADER_HOST_NETWORK}{node_hosts}{}",
            alias_entries(aliases)
        ));
    }
    Ok(managed_hosts_file(pod, pod_ip, cluster_domain, aliases))
}

fn managed_hosts_file(
    pod: &Pod,
    pod_ip: Option<&str>,
    cluster_domain: &str,
    aliases: &[HostAlias],
) -> String {
    let hostname = pod_hostname(pod);
    let mut out = format!("{MANAGED_HOSTS_HEADER}{LOCALHOST_ENTRIES}");
    if let Some(ip) = pod_ip {
        match pod_domain(pod, cluster_domain) {
            Some(domain) => out.push_str(&format!("{ip}\t{hostname}.{domain}\t{hostname}\n")),
            None => out.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    out.push_str(&alias_entries(aliases));
    out
}

/// kubelet's `hostsEntriesFromHostAliases`: one line per alias, its names tab-separated.
fn alias_entries(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for alias in aliases {
        let names = alias.hostnames.as_deref().unwrap_or_default().join("\t");
        out.push_str(&format!("{}\t{names}\n", alias.ip));
    }
    out
}

/// A resolver configuration as kubelet hands it to the runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    /// `name` or `name:value`.
    pub options: Vec<String>,
}

impl ResolvConf {
    /// The file as containerd writes it (search, nameservers, options); `None` when all
    /// three are empty, where the runtime copies the node's file instead.
    pub fn render(&self) -> Option<String> {
        if self.servers.is_empty() && self.searches.is_empty() && self.options.is_empty() {
            return None;
        }
        let mut out = String::new();
        if !self.searches.is_empty() {
            out.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        for server in &self.servers {
            out.push_str(&format!("nameserver {server}\n"));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        Some(out)
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("nameserver list is empty")]
    EmptyNameserver,
}

fn read_resolv_conf(path: &Path) -> Result<String, EtcFilesError> {
    let read_error = |source| EtcFilesError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_RESOLV_CONF_LEN)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 >= MAX_RESOLV_CONF_LEN {
        return Err(EtcFilesError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// kubelet's `parseResolvConf`: nameservers accumulate, the last search and options lines
/// win, search domains lose a trailing dot; a bare `nameserver` line is an error.
pub fn parse_resolv_conf(text: &str) -> Result<ResolvConf, ParseError> {
    let mut conf = ResolvConf::default();
    let mut empty_nameserver = false;
    for line in text.split('\n').map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["nameserver", server, ..] => conf.servers.push(server.to_string()),
            ["nameserver"] => empty_nameserver = true,
            ["search", rest @ ..] => {
                conf.searches = rest
                    .iter()
                    .map(|s| s.strip_suffix('.').unwrap_or(s).to_string())
                    .collect();
            }
            ["options", rest @ ..] => conf.options = rest.iter().map(|s| s.to_string()).collect(),
            _ => {}
        }
    }
    if empty_nameserver {
        return Err(ParseError::EmptyNameserver);
    }
    Ok(conf)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DnsType {
    Cluster,
    Host,
    None,
}

/// kubelet's `getPodDNSType`; an unknown or unset policy falls back to ClusterFirst.
fn dns_type(pod: &Pod) -> DnsType {
    match spec(pod).and_then(|s| s.dns_policy.as_deref()) {
        Some("None") => DnsType::None,
        Some("ClusterFirst") if host_network(pod) => DnsType::Host,
        Some("Default") => DnsType::Host,
        _ => DnsType::Cluster,
    }
}

/// kubelet's `GetPodDNS`, from the node's parsed resolver: ClusterFirst pods get the
/// cluster DNS alone, the cluster's search domains before the node's, and `ndots:5`.
pub fn pod_dns(pod: &Pod, cluster: &ClusterDns, host: ResolvConf) -> (ResolvConf, Vec<PodEvent>) {
    let mut dns = match dns_type(pod) {
        DnsType::None => ResolvConf::default(),
        DnsType::Host => host,
        DnsType::Cluster => ResolvConf {
            servers: vec![cluster.server.to_string()],
            searches: cluster_first_searches(pod, &cluster.domain, &host.searches),
            options: CLUSTER_FIRST_OPTIONS
                .iter()
                .map(|o| o.to_string())
                .collect(),
        },
    };
    if let Some(config) = spec(pod).and_then(|s| s.dns_config.as_ref()) {
        append_dns_config(&mut dns, config);
    }
    let events = fit_limits(&mut dns);
    (dns, events)
}

/// kubelet's `generateSearchesForDNSClusterFirst`: `<ns>.svc.<domain> svc.<domain> <domain>`,
/// then the node's, without duplicates.
fn cluster_first_searches(pod: &Pod, domain: &str, host: &[String]) -> Vec<String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let cluster = [
        format!("{namespace}.svc.{domain}"),
        format!("svc.{domain}"),
        domain.to_string(),
    ];
    omit_duplicates(cluster.iter().chain(host))
}

/// kubelet's `appendDNSConfig`: servers and searches appended without duplicates,
/// options merged by name with the pod's value winning.
fn append_dns_config(dns: &mut ResolvConf, config: &PodDNSConfig) {
    let servers = config.nameservers.as_deref().unwrap_or_default();
    dns.servers = omit_duplicates(dns.servers.iter().chain(servers));
    let searches = config.searches.as_deref().unwrap_or_default();
    dns.searches = omit_duplicates(dns.searches.iter().chain(searches));
    let pod_options = config.options.iter().flatten().map(|o| {
        let name = o.name.clone().unwrap_or_default();
        (name, o.value.clone().unwrap_or_default())
    });
    dns.options = merge_options(&dns.options, pod_options);
}

fn omit_duplicates<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// kubelet's `mergeDNSOptions`. kubelet's map gives a random order; this keeps each name
/// where it first appeared, so the file is stable.
fn merge_options(existing: &[String], pod: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let parsed = existing.iter().map(|op| match op.split_once(':') {
        Some((name, value)) => (name.to_string(), value.to_string()),
        None => (op.clone(), String::new()),
    });
    let mut merged: Vec<(String, String)> = Vec::new();
    for (name, value) in parsed.chain(pod) {
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => merged.push((name, value)),
        }
    }
    merged
        .into_iter()
        .map(|(name, value)| match value.as_str() {
            "" => name,
            _ => format!("{name}:{value}"),
        })
        .collect()
}

/// kubelet's `formDNSConfigFitsLimits`, with the DNSConfigForming events it records.
fn fit_limits(dns: &mut ResolvConf) -> Vec<PodEvent> {
    let mut events = Vec::new();
    if dns.servers.len() > MAX_DNS_NAMESERVERS {
        dns.servers.truncate(MAX_DNS_NAMESERVERS);
        events.push(forming_event(format!(
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
            dns.servers.join(" ")
        )));
    }
    if fit_searches(&mut dns.searches) {
        events.push(forming_event(format!(
            "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
            dns.searches.join(" ")
        )));
    }
    events
}

fn forming_event(message: String) -> PodEvent {
    PodEvent {
        reason: DNS_CONFIG_FORMING_REASON,
        message,
    }
}

/// kubelet's `formDNSSearchFitsLimits`: at most 32 paths, none over 253 characters, and
/// whole paths cut from the end until the line fits 2048 characters. True when cut.
fn fit_searches(searches: &mut Vec<String>) -> bool {
    let mut exceeded = searches.len() > MAX_DNS_SEARCH_PATHS;
    searches.truncate(MAX_DNS_SEARCH_PATHS);
    let before = searches.len();
    searches.retain(|s| s.len() <= MAX_SEARCH_PATH_LEN);
    exceeded |= searches.len() != before;
    let line_len = searches.join(" ").len();
    if line_len > MAX_DNS_SEARCH_LIST_CHARS {
        let mut cut_len = 0;
        let mut cut_num = 0;
        for search in searches.iter().rev() {
            cut_len += search.len() + 1;
            cut_num += 1;
            if line_len.saturating_sub(cut_len) <= MAX_DNS_SEARCH_LIST_CHARS {
                break;
            }
        }
        searches.truncate(searches.len() - cut_num);
        exceeded = true;
    }
    exceeded
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn pod(spec: Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([]);
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
            "spec": spec
        }))
        .unwrap()
    }

    const HOST_RESOLV: &str = "# generated by resolvconf\n\
        nameserver 10.0.0.2\n\
        nameserver 10.0.0.3\n\
        search old.example\n\
        search corp.example. lab.example\n\
        options ndots:2 timeout:1\n";

    fn host() -> ResolvConf {
        parse_resolv_conf(HOST_RESOLV).unwrap()
    }

    fn cluster() -> ClusterDns {
        ClusterDns {
            domain: "cluster.local".into(),
            server: Ipv4Addr::new(10, 43, 0, 10),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_like_kubelet() {
        let conf = host();
        assert_eq!(conf.servers, strings(&["10.0.0.2", "10.0.0.3"]));
        assert_eq!(conf.searches, strings(&["corp.example", "lab.example"]));
        assert_eq!(conf.options, strings(&["ndots:2", "timeout:1"]));
        assert_eq!(
            parse_resolv_conf("nameserver\n"),
            Err(ParseError::EmptyNameserver)
        );
        let odd = parse_resolv_conf("  # c\n\tnameserver 1.1.1.1 # x\nsearch\n").unwrap();
        assert_eq!(odd.servers, strings(&["1.1.1.1"]));
        assert!(odd.searches.is_empty());
    }

    #[test]
    fn default_policy_reforms_the_host_file() {
        let (dns, events) = pod_dns(&pod(json!({"dnsPolicy": "Default"})), &cluster(), host());
        assert!(events.is_empty());
        assert_eq!(
            dns.render().unwrap(),
            "search corp.example lab.example\n\
             nameserver 10.0.0.2\n\
             nameserver 10.0.0.3\n\
             options ndots:2 timeout:1\n"
        );
    }

    const CLUSTER_FIRST: &str =
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n\
         nameserver 10.43.0.10\n\
         options ndots:5\n";

    #[test]
    fn cluster_first_names_the_cluster_dns_without_events() {
        let (dns, events) = pod_dns(
            &pod(json!({"dnsPolicy": "ClusterFirst"})),
            &cluster(),
            host(),
        );
        assert!(events.is_empty());
        assert_eq!(dns.render().unwrap(), CLUSTER_FIRST);
        let (unset, _) = pod_dns(&pod(json!({})), &cluster(), host());
        assert_eq!(unset.render().unwrap(), CLUSTER_FIRST);
    }

    #[test]
    fn cluster_first_search_paths_are_not_repeated() {
        let mut node = host();
        node.searches = strings(&["cluster.local", "corp.example"]);
        let (dns, _) = pod_dns(&pod(json!({"dnsPolicy": "ClusterFirst"})), &cluster(), node);
        assert_eq!(
            dns.searches,
            strings(&[
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ])
        );
    }

    #[test]
    fn host_network_policies() {
        let host_first = pod(json!({"dnsPolicy": "ClusterFirst", "hostNetwork": true}));
        assert_eq!(pod_dns(&host_first, &cluster(), host()).0, host());
        let with_host_net =
            pod(json!({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": true}));
        let (dns, _) = pod_dns(&with_host_net, &cluster(), host());
        assert_eq!(dns.render().unwrap(), CLUSTER_FIRST);
    }

    #[test]
    fn cluster_first_merges_the_pods_dns_config() {
        let p = pod(json!({"dnsPolicy": "ClusterFirst", "dnsConfig": {
            "nameservers": ["1.1.1.1"], "searches": ["extra.example"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}));
        let (dns, _) = pod_dns(&p, &cluster(), host());
        assert_eq!(dns.servers, strings(&["10.43.0.10", "1.1.1.1"]));
        assert_eq!(
            dns.searches.last().map(String::as_str),
            Some("extra.example")
        );
        assert_eq!(dns.options, strings(&["ndots:2", "edns0"]));
    }

    #[test]
    fn none_policy_uses_only_dns_config() {
        let p = pod(json!({"dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["1.1.1.1", "1.1.1.1"], "searches": ["a.example"],
            "options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}]}}));
        let (dns, events) = pod_dns(&p, &cluster(), host());
        assert!(events.is_empty());
        assert_eq!(
            dns.render().unwrap(),
            "search a.example\nnameserver 1.1.1.1\noptions ndots:1 edns0\n"
        );
    }

    #[test]
    fn dns_config_merges_into_host_config() {
        let p = pod(json!({"dnsPolicy": "Default", "dnsConfig": {
            "nameservers": ["10.0.0.3", "9.9.9.9"],
            "searches": ["lab.example", "svc.example"],
            "options": [{"name": "ndots", "value": "5"}, {"name": "timeout", "value": ""},
                        {"name": "single-request"}]}}));
        let (dns, _) = pod_dns(&p, &cluster(), host());
        assert_eq!(dns.servers, strings(&["10.0.0.2", "10.0.0.3", "9.9.9.9"]));
        assert_eq!(
            dns.searches,
            strings(&["corp.example", "lab.example", "svc.example"])
        );
        assert_eq!(
            dns.options,
            strings(&["ndots:5", "timeout", "single-request"])
        );
    }

    #[test]
    fn nameservers_are_cut_to_three() {
        let p = pod(json!({"dnsPolicy": "Default",
            "dnsConfig": {"nameservers": ["8.8.8.8", "8.8.4.4"]}}));
        let (dns, events) = pod_dns(&p, &cluster(), host());
        assert_eq!(dns.servers, strings(&["10.0.0.2", "10.0.0.3", "8.8.8.8"]));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, "DNSConfigForming");
        assert_eq!(
            events[0].message,
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.0.0.2 10.0.0.3 8.8.8.8"
        );
    }

    #[test]
    fn search_paths_are_cut_to_thirty_two() {
        let mut searches: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
        assert!(fit_searches(&mut searches));
        assert_eq!(searches.len(), 32);
        assert_eq!(searches[31], "d31.example");
        let mut few = strings(&["a.example"]);
        assert!(!fit_searches(&mut few));
    }

    #[test]
    fn overlong_search_paths_are_dropped() {
        let long = format!("{}.example", "a".repeat(250));
        let mut searches = vec!["a.example".to_string(), long, "b.example".to_string()];
        assert!(fit_searches(&mut searches));
        assert_eq!(searches, strings(&["a.example", "b.example"]));
    }

    #[test]
    fn search_line_is_cut_to_2048_chars_from_the_end() {
        // Ten 250-character paths: 2509 characters joined, so two must go.
        let mut searches: Vec<String> =
            (0..10).map(|i| format!("{i}{}", "x".repeat(249))).collect();
        assert!(fit_searches(&mut searches));
        assert_eq!(searches.len(), 8);
        assert!(searches.join(" ").len() <= MAX_DNS_SEARCH_LIST_CHARS);
        assert!(searches[7].starts_with('7'));
        let p = pod(
            json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"],
            "searches": (0..10).map(|i| format!("{i}{}", "x".repeat(249))).collect::<Vec<_>>()}}),
        );
        let (_, events) = pod_dns(&p, &cluster(), ResolvConf::default());
        assert!(events[0]
            .message
            .starts_with("Search Line limits were exceeded, some search paths have been omitted, the applied search line is: 0xxx"));
    }

    #[test]
    fn hosts_file_with_pod_ip_and_aliases() {
        let p = pod(
            json!({"hostAliases": [{"ip": "10.1.2.3", "hostnames": ["a", "b"]},
                                            {"ip": "10.1.2.4", "hostnames": ["c"]}]}),
        );
        assert_eq!(
            managed_hosts_file(&p, Some("10.42.0.5"), "cluster.local", host_aliases(&p)),
            format!(
                "# Kubernetes-managed hosts file.\n{LOCALHOST_ENTRIES}10.42.0.5\tweb\n\
                 \n# Entries added by HostAliases.\n10.1.2.3\ta\tb\n10.1.2.4\tc\n"
            )
        );
        let bare = pod(json!({}));
        assert_eq!(
            managed_hosts_file(&bare, None, "cluster.local", &[]),
            format!("# Kubernetes-managed hosts file.\n{LOCALHOST_ENTRIES}")
        );
    }

    #[test]
    fn hosts_file_with_subdomain_has_the_fqdn() {
        let p = pod(json!({"hostname": "db-0", "subdomain": "db"}));
        let hosts = managed_hosts_file(&p, Some("10.42.0.7"), "cluster.local", &[]);
        assert!(hosts.ends_with("10.42.0.7\tdb-0.db.shop.svc.cluster.local\tdb-0\n"));
    }

    #[test]
    fn host_network_hosts_file_is_the_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let node_hosts = dir.path().join("hosts");
        std::fs::write(&node_hosts, "127.0.0.1 localhost\n192.168.1.9 node1").unwrap();
        let p = pod(json!({"hostNetwork": true,
            "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["a"]}]}));
        assert_eq!(
            hosts_file(&p, Some("192.168.1.9"), "cluster.local", &node_hosts).unwrap(),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.1.9 node1\
             \n# Entries added by HostAliases.\n10.1.2.3\ta\n"
        );
    }

    #[test]
    fn hostname_is_cut_to_63_and_trimmed_only_when_cut() {
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": long}, "spec": {"containers": []}
        }))
        .unwrap();
        assert_eq!(pod_hostname(&p), "a".repeat(62));
        let p = pod(json!({"hostname": "h"}));
        assert_eq!(pod_hostname(&p), "h");
    }

    #[test]
    fn kernel_hostname_honours_set_hostname_as_fqdn() {
        let p = pod(json!({"subdomain": "db", "setHostnameAsFQDN": true}));
        assert_eq!(
            kernel_hostname(&p, "cluster.local").unwrap(),
            "web.db.shop.svc.cluster.local"
        );
        let p = pod(json!({"subdomain": "db"}));
        assert_eq!(kernel_hostname(&p, "cluster.local").unwrap(), "web");
        let p =
            pod(json!({"hostname": "h".repeat(40), "subdomain": "db", "setHostnameAsFQDN": true}));
        let err = kernel_hostname(&p, "cluster.local").unwrap_err();
        assert!(matches!(err, EtcFilesError::FqdnTooLong { .. }));
        assert!(err
            .to_string()
            .contains("(64 characters is the max, 66 characters requested)"));
    }

    fn write_all(p: &Pod, resolv: &str) -> (tempfile::TempDir, io::Result<Vec<PodEvent>>) {
        let dir = tempfile::tempdir().unwrap();
        let resolv_path = dir.path().join("host-resolv.conf");
        let hosts_path = dir.path().join("host-hosts");
        std::fs::write(&resolv_path, resolv).unwrap();
        std::fs::write(&hosts_path, "127.0.0.1 localhost\n").unwrap();
        let files = EtcFiles::in_dir(dir.path());
        let result =
            files.write_reporting(p, Some("10.42.0.5"), &cluster(), &resolv_path, &hosts_path);
        (dir, result)
    }

    #[test]
    fn write_produces_all_three_files() {
        let p = pod(json!({"dnsPolicy": "Default"}));
        let (dir, result) = write_all(&p, HOST_RESOLV);
        assert!(result.unwrap().is_empty());
        let files = EtcFiles::in_dir(dir.path());
        assert_eq!(std::fs::read_to_string(&files.hostname).unwrap(), "web\n");
        let hosts = std::fs::read_to_string(&files.hosts).unwrap();
        assert!(hosts.ends_with("10.42.0.5\tweb\n"));
        let resolv = std::fs::read_to_string(&files.resolv_conf).unwrap();
        assert!(resolv.starts_with("search corp.example lab.example\n"));
        assert!(!resolv.contains('#'));
    }

    #[test]
    fn empty_config_copies_the_host_file() {
        let host_text = "# nothing but a comment\n";
        let (dir, result) = write_all(&pod(json!({"dnsPolicy": "Default"})), host_text);
        result.unwrap();
        let resolv = std::fs::read_to_string(EtcFiles::in_dir(dir.path()).resolv_conf).unwrap();
        assert_eq!(resolv, host_text);
    }

    #[test]
    fn write_errors_name_the_file() {
        let (_dir, result) = write_all(&pod(json!({"dnsPolicy": "Default"})), "nameserver\n");
        let err = result.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err
            .to_string()
            .contains("host-resolv.conf: nameserver list is empty"));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let err = EtcFiles::in_dir(dir.path())
            .write_reporting(&pod(json!({})), None, &cluster(), &missing, &missing)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("absent"));
    }
}
