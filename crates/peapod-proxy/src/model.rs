//! A Service and its EndpointSlices → what the node does for each of its ports, as kube-proxy
//! reads them: the addresses the port answers on, its NodePort, its traffic policies, session
//! affinity, and the endpoints traffic may go to (ready ones; serving terminating ones only
//! when none is ready). SCTP ports are served only when the kernel tracks SCTP; Services
//! labelled for another proxy or as headless are left alone, as kube-proxy leaves them.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ipnet::Ipv4Net;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label an EndpointSlice names its Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Labels of Services kube-proxy leaves alone (its informers' `!service-proxy-name,!headless`
/// selector): another proxy serves them, or they are headless in all but name.
const UNPROXIED_LABELS: [&str; 2] = [
    "service.kubernetes.io/service-proxy-name",
    "service.kubernetes.io/headless",
];

/// kube's default `sessionAffinityConfig.clientIP.timeoutSeconds`: three hours.
const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;
/// Present when netfilter tracks SCTP, which NATing it needs.
const SCTP_CONNTRACK: &str = "/proc/sys/net/netfilter/nf_conntrack_sctp_timeout_established";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(protocol: Option<&str>) -> Option<Protocol> {
        match protocol.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name nft and kube-proxy's chain names use.
    pub fn keyword(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A Service port: kube-proxy's `ServicePortName`, written `ns/name/proto/port` as in its
/// chain names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    pub port: String,
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ns, name, proto) = (&self.namespace, &self.name, self.protocol.keyword());
        write!(f, "{ns}/{name}/{proto}/{}", self.port)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.port)
    }
}

/// What one Service port asks of the node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServicePortState {
    pub cluster_ip: Option<Ipv4Addr>,
    /// externalIPs and the LoadBalancer's VIP ingress addresses.
    pub external_ips: Vec<Ipv4Addr>,
    /// The LoadBalancer's VIP ingress addresses alone (also in `external_ips`).
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// `loadBalancerSourceRanges`: the only clients the LoadBalancer addresses answer.
    pub source_ranges: Vec<Ipv4Net>,
    /// Whether this port stands for its Service's ClusterIP in the set of those in use (one
    /// port per Service, so that the address leaves with the Service, not with a port).
    pub claims_cluster_ip: bool,
    pub port: u16,
    pub node_port: Option<u16>,
    /// externalTrafficPolicy Local: external clients keep their source address.
    pub external_local: bool,
    /// sessionAffinity ClientIP: how long a client sticks to its endpoint.
    pub affinity_timeout: Option<u32>,
    /// Sorted, without duplicates.
    pub endpoints: Vec<Endpoint>,
}

/// The (namespace, name) of a Service.
pub type ServiceKey = (String, String);

pub fn service_key(service: &Service) -> ServiceKey {
    let meta = &service.metadata;
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The Service each slice belongs to, from its label.
pub fn slice_service(slice: &EndpointSlice) -> Option<ServiceKey> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some((slice.metadata.namespace.clone()?, name.clone()))
}

/// The ports the node serves for `service`; none for headless and ExternalName Services.
pub fn service_ports(
    service: &Service,
    slices: &[&EndpointSlice],
) -> Vec<(ServicePortName, ServicePortState)> {
    ports_of(service, slices, sctp_available())
}

fn is_unproxied(service: &Service) -> bool {
    let labels = service.metadata.labels.as_ref();
    UNPROXIED_LABELS
        .iter()
        .any(|label| labels.is_some_and(|l| l.contains_key(*label)))
}

/// Whether this host's netfilter tracks SCTP (nf_conntrack_proto_sctp), read once.
pub fn sctp_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| Path::new(SCTP_CONNTRACK).exists())
}

/// Says once per Service that its SCTP ports get no rules on this host.
fn warn_sctp_unavailable(service: &ServiceKey) {
    static WARNED: OnceLock<Mutex<HashSet<ServiceKey>>> = OnceLock::new();
    let warned = WARNED.get_or_init(Default::default);
    let first = warned
        .lock()
        .map(|mut w| w.insert(service.clone()))
        .unwrap_or(false);
    if first {
        let (namespace, name) = service;
        tracing::warn!(
            %namespace,
            %name,
            "SCTP is unavailable on this host (no nf_conntrack SCTP): the Service's SCTP ports get no rules"
        );
    }
}

fn ports_of(
    service: &Service,
    slices: &[&EndpointSlice],
    sctp: bool,
) -> Vec<(ServicePortName, ServicePortState)> {
    let (namespace, name) = service_key(service);
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    if is_unproxied(service) {
        return Vec::new();
    }
    let cluster_ip = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
    if cluster_ip.is_none() || spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let exposes_node_ports = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
    let load_balancer_ips = load_balancer_addresses(service);
    let external_ips = external_addresses(service, &load_balancer_ips);
    let source_ranges = source_ranges(service);
    let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let affinity_timeout = affinity_timeout(service);
    let mut ports = Vec::new();
    for port in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
            continue;
        };
        if protocol == Protocol::Sctp && !sctp {
            warn_sctp_unavailable(&(namespace.clone(), name.clone()));
            continue;
        }
        let Ok(number) = u16::try_from(port.port) else {
            continue;
        };
        let name = ServicePortName {
            namespace: namespace.clone(),
            name: name.clone(),
            port: port.name.clone().unwrap_or_default(),
            protocol,
        };
        let endpoints = usable_endpoints(slices, &name.port, protocol);
        let node_port = port
            .node_port
            .filter(|_| exposes_node_ports)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0);
        let state = ServicePortState {
            cluster_ip,
            external_ips: external_ips.clone(),
            load_balancer_ips: load_balancer_ips.clone(),
            source_ranges: source_ranges.clone(),
            claims_cluster_ip: ports.is_empty(),
            port: number,
            node_port,
            external_local,
            affinity_timeout,
            endpoints,
        };
        ports.push((name, state));
    }
    ports
}

/// externalIPs, and the LoadBalancer's VIPs.
fn external_addresses(service: &Service, load_balancer_ips: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    let external = service
        .spec
        .as_ref()
        .and_then(|s| s.external_ips.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok());
    let addresses: BTreeSet<Ipv4Addr> = external.chain(load_balancer_ips.iter().copied()).collect();
    addresses.into_iter().collect()
}

/// The LoadBalancer's ingress IPs unless their ipMode is Proxy (the load balancer then
/// delivers to the node's own address, as kube-proxy leaves them).
fn load_balancer_addresses(service: &Service) -> Vec<Ipv4Addr> {
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
        return Vec::new();
    }
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter(|i| i.ip_mode.as_deref() != Some("Proxy"))
        .filter_map(|i| i.ip.as_deref()?.parse().ok());
    let addresses: BTreeSet<Ipv4Addr> = ingress.collect();
    addresses.into_iter().collect()
}

/// The IPv4 `loadBalancerSourceRanges`, space-padded values allowed as kube allows them.
fn source_ranges(service: &Service) -> Vec<Ipv4Net> {
    let ranges = service
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_source_ranges.as_ref());
    ranges
        .into_iter()
        .flatten()
        .filter_map(|range| range.trim().parse().ok())
        .collect()
}

fn affinity_timeout(service: &Service) -> Option<u32> {
    let spec = service.spec.as_ref()?;
    if spec.session_affinity.as_deref() != Some("ClientIP") {
        return None;
    }
    let configured = spec
        .session_affinity_config
        .as_ref()
        .and_then(|c| c.client_ip.as_ref())
        .and_then(|c| c.timeout_seconds)
        .and_then(|t| u32::try_from(t).ok())
        .filter(|t| *t > 0);
    Some(configured.unwrap_or(DEFAULT_AFFINITY_TIMEOUT))
}

/// The ready endpoints of the port; when none is ready, the serving terminating ones
/// (kube's graceful termination of the last endpoints).
fn usable_endpoints(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: Protocol,
) -> Vec<Endpoint> {
    let mut ready = BTreeSet::new();
    let mut terminating = BTreeSet::new();
    for slice in slices.iter().filter(|s| s.address_type == "IPv4") {
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(number) = port.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let Some(ip) = endpoint.addresses.first().and_then(|a| a.parse().ok()) else {
                continue;
            };
            let conditions = endpoint.conditions.clone().unwrap_or_default();
            let is_ready = conditions.ready.unwrap_or(true);
            let serving = conditions.serving.unwrap_or(is_ready);
            let is_terminating = conditions.terminating.unwrap_or(false);
            let endpoint = Endpoint { ip, port: number };
            if is_ready {
                ready.insert(endpoint);
            } else if serving && is_terminating {
                terminating.insert(endpoint);
            }
        }
    }
    let chosen = if ready.is_empty() { terminating } else { ready };
    chosen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    fn slice(endpoints: serde_json::Value, ports: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-abc", "namespace": "ns",
                         "labels": {SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        }))
        .unwrap()
    }

    fn web() -> Service {
        service(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.20", "type": "NodePort",
                     "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                               {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]},
        }))
    }

    #[test]
    fn each_port_gets_its_own_endpoints_and_node_port() {
        let slices = [slice(
            serde_json::json!([
                {"addresses": ["10.42.0.7"], "conditions": {"ready": true}},
                {"addresses": ["10.42.0.5"]},
            ]),
            serde_json::json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
        )];
        let ports = service_ports(&web(), &slices.iter().collect::<Vec<_>>());
        assert_eq!(ports.len(), 2);
        let (http, state) = &ports[0];
        assert_eq!(http.to_string(), "ns/web/tcp/http");
        assert_eq!(state.node_port, Some(30080));
        assert_eq!(
            state.endpoints,
            [
                Endpoint {
                    ip: "10.42.0.5".parse().unwrap(),
                    port: 8080
                },
                Endpoint {
                    ip: "10.42.0.7".parse().unwrap(),
                    port: 8080
                },
            ]
        );
        let (dns, state) = &ports[1];
        assert_eq!(dns.protocol, Protocol::Udp);
        assert!(state.endpoints.is_empty());
    }

    #[test]
    fn terminating_endpoints_serve_only_when_none_is_ready() {
        let ports = serde_json::json!([{"name": "http", "port": 80}]);
        let terminating = serde_json::json!(
            {"addresses": ["10.42.0.9"], "conditions": {"ready": false, "serving": true, "terminating": true}});
        let not_serving = serde_json::json!(
            {"addresses": ["10.42.0.8"], "conditions": {"ready": false, "serving": false, "terminating": true}});
        let only_terminating = [slice(
            serde_json::json!([terminating, not_serving]),
            ports.clone(),
        )];
        let found = service_ports(&web(), &only_terminating.iter().collect::<Vec<_>>());
        assert_eq!(found[0].1.endpoints.len(), 1);
        assert_eq!(found[0].1.endpoints[0].ip.to_string(), "10.42.0.9");
        let ready = serde_json::json!({"addresses": ["10.42.0.3"], "conditions": {"ready": true}});
        let with_ready = [slice(serde_json::json!([terminating, ready]), ports)];
        let found = service_ports(&web(), &with_ready.iter().collect::<Vec<_>>());
        assert_eq!(found[0].1.endpoints.len(), 1);
        assert_eq!(found[0].1.endpoints[0].ip.to_string(), "10.42.0.3");
    }

    #[test]
    fn headless_and_external_name_services_have_no_ports() {
        let headless = service(serde_json::json!({
            "metadata": {"name": "h", "namespace": "ns"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]},
        }));
        let external = service(serde_json::json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "spec": {"type": "ExternalName", "externalName": "example.com"},
        }));
        assert!(service_ports(&headless, &[]).is_empty());
        assert!(service_ports(&external, &[]).is_empty());
    }

    #[test]
    fn load_balancer_vips_affinity_and_policies_are_read() {
        let lb = service(serde_json::json!({
            "metadata": {"name": "lb", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.30", "type": "LoadBalancer",
                     "externalIPs": ["192.0.2.9"], "externalTrafficPolicy": "Local",
                     "sessionAffinity": "ClientIP",
                     "ports": [{"port": 443, "nodePort": 31443}]},
            "status": {"loadBalancer": {"ingress": [
                {"ip": "192.0.2.1", "ipMode": "VIP"}, {"ip": "192.0.2.2", "ipMode": "Proxy"}]}},
        }));
        let ports = service_ports(&lb, &[]);
        let state = &ports[0].1;
        assert_eq!(
            state.external_ips,
            [
                "192.0.2.1".parse::<Ipv4Addr>().unwrap(),
                "192.0.2.9".parse().unwrap()
            ]
        );
        assert!(state.external_local);
        assert_eq!(state.affinity_timeout, Some(DEFAULT_AFFINITY_TIMEOUT));
        assert_eq!(state.node_port, Some(31443));
        assert_eq!(ports[0].0.to_string(), "ns/lb/tcp/");
    }

    #[test]
    fn source_ranges_apply_to_the_load_balancer_vips() {
        let lb = service(serde_json::json!({
            "metadata": {"name": "lb", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.30", "type": "LoadBalancer",
                     "externalIPs": ["192.0.2.9"],
                     "loadBalancerSourceRanges": [" 10.0.0.0/8 ", "192.168.0.0/16", "bad"],
                     "ports": [{"name": "a", "port": 443}, {"name": "b", "port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]}},
        }));
        let ports = service_ports(&lb, &[]);
        let state = &ports[0].1;
        assert_eq!(
            state.load_balancer_ips,
            ["192.0.2.1".parse::<Ipv4Addr>().unwrap()]
        );
        assert_eq!(
            state.source_ranges,
            [
                "10.0.0.0/8".parse::<Ipv4Net>().unwrap(),
                "192.168.0.0/16".parse().unwrap()
            ]
        );
        assert!(ports[0].1.claims_cluster_ip && !ports[1].1.claims_cluster_ip);
    }

    #[test]
    fn sctp_ports_are_served_only_where_the_kernel_tracks_sctp() {
        let svc = service(serde_json::json!({
            "metadata": {"name": "s", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.40",
                     "ports": [{"name": "a", "port": 9, "protocol": "SCTP"},
                               {"name": "b", "port": 9, "protocol": "TCP"}]},
        }));
        let with = ports_of(&svc, &[], true);
        assert_eq!(with[0].0.protocol, Protocol::Sctp);
        assert_eq!(with[0].0.to_string(), "ns/s/sctp/a");
        let without = ports_of(&svc, &[], false);
        assert_eq!(without.len(), 1);
        assert_eq!(without[0].0.protocol, Protocol::Tcp);
        assert!(without[0].1.claims_cluster_ip, "the ClusterIP stays in use");
    }

    #[test]
    fn services_labelled_for_another_proxy_or_headless_are_left_alone() {
        for label in UNPROXIED_LABELS {
            let mut svc = web();
            svc.metadata.labels = Some([(label.to_string(), "x".to_string())].into());
            assert!(service_ports(&svc, &[]).is_empty(), "{label}");
        }
        let mut other = web();
        other.metadata.labels = Some([("app".to_string(), "x".to_string())].into());
        assert_eq!(service_ports(&other, &[]).len(), 2);
    }

    #[test]
    fn cluster_ip_services_ignore_node_ports() {
        let mut svc = web();
        svc.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        assert!(service_ports(&svc, &[])
            .iter()
            .all(|(_, s)| s.node_port.is_none()));
    }
}
