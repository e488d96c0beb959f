//! What the DNS server knows of the cluster: Services, their ready endpoints (from
//! EndpointSlices, as CoreDNS reads them) and the namespaces, compiled into one immutable
//! snapshot that queries read without locks held across lookups.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// An object's namespace and name.
pub type Key = (String, String);

/// A port a name can ask for by `_name._proto`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Empty for an unnamed port.
    pub name: String,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    pub port: u16,
}

impl Port {
    /// A ServicePort or EndpointPort as a name answers it: TCP when no protocol is given,
    /// nothing when the number is no port.
    fn of(name: &Option<String>, protocol: &Option<String>, number: i32) -> Option<Port> {
        Some(Port {
            name: name.clone().unwrap_or_default(),
            protocol: protocol.clone().unwrap_or_else(|| "TCP".into()),
            port: u16::try_from(number).ok()?,
        })
    }
}

/// What a Service's own name answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// Its cluster IPs.
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: its ready endpoints.
    Headless,
    /// A CNAME to this name.
    ExternalName(String),
}

/// One ready endpoint address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    /// The endpoint's hostname (a StatefulSet pod's), else its dashed address.
    pub label: String,
}

/// One EndpointSlice's ready addresses with the ports they serve.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSet {
    pub endpoints: Vec<Endpoint>,
    /// A slice without ports still names its addresses (CoreDNS's sentinel port).
    pub ports: Vec<Port>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    pub kind: ServiceKind,
    pub ports: Vec<Port>,
    pub endpoint_sets: Vec<EndpointSet>,
}

/// A compiled snapshot of the cluster, as the records are answered from.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub services: HashMap<Key, ServiceEntry>,
    pub namespaces: HashSet<String>,
    /// Cluster IP → its Service.
    cluster_ips: HashMap<IpAddr, Key>,
    /// Endpoint IP → (endpoint label, Service) for each Service it serves.
    endpoint_ips: HashMap<IpAddr, Vec<(String, Key)>>,
    /// Whether every watch has listed once: before, unknown names are SERVFAIL, not NXDOMAIN.
    pub synced: bool,
    /// The SOA serial: when the view last changed, in seconds since the epoch.
    pub serial: u32,
}

impl View {
    /// Compiles the objects the watches hold.
    pub fn build(
        services: &BTreeMap<Key, Service>,
        slices: &BTreeMap<Key, EndpointSlice>,
        namespaces: &BTreeMap<Key, Namespace>,
    ) -> View {
        let mut view = View {
            namespaces: namespaces.keys().map(|(_, name)| name.clone()).collect(),
            ..View::default()
        };
        for (key, service) in services {
            if let Some(entry) = service_entry(service) {
                if let ServiceKind::ClusterIp(ips) = &entry.kind {
                    for ip in ips {
                        view.cluster_ips.entry(*ip).or_insert_with(|| key.clone());
                    }
                }
                view.services.insert(key.clone(), entry);
            }
        }
        for ((namespace, _), slice) in slices {
            let Some(service) = slice_service(slice) else {
                continue;
            };
            let key = (namespace.clone(), service.to_string());
            let Some(entry) = view.services.get_mut(&key) else {
                continue;
            };
            let set = endpoint_set(slice);
            for endpoint in &set.endpoints {
                view.endpoint_ips
                    .entry(endpoint.ip)
                    .or_default()
                    .push((endpoint.label.clone(), key.clone()));
            }
            entry.endpoint_sets.push(set);
        }
        view
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceEntry> {
        self.services
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// The names (relative to the cluster domain) an address points back to: its Service
    /// when it is a cluster IP, else each endpoint it is.
    pub fn reverse(&self, ip: IpAddr) -> Vec<String> {
        if let Some((namespace, name)) = self.cluster_ips.get(&ip) {
            return vec![format!("{name}.{namespace}.svc")];
        }
        self.endpoint_ips
            .get(&ip)
            .into_iter()
            .flatten()
            .map(|(label, (namespace, name))| format!("{label}.{name}.{namespace}.svc"))
            .collect()
    }
}

fn service_entry(service: &Service) -> Option<ServiceEntry> {
    let spec = service.spec.as_ref()?;
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.as_deref().unwrap_or_default();
        ServiceKind::ExternalName(target.trim_end_matches('.').to_ascii_lowercase())
    } else if spec.cluster_ip.as_deref() == Some("None") {
        ServiceKind::Headless
    } else {
        let ips = match spec.cluster_ips.as_deref() {
            Some(ips) if !ips.is_empty() => ips.to_vec(),
            _ => spec.cluster_ip.iter().cloned().collect(),
        };
        let ips: Vec<IpAddr> = ips.iter().filter_map(|ip| ip.parse().ok()).collect();
        if ips.is_empty() {
            return None;
        }
        ServiceKind::ClusterIp(ips)
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| Port::of(&p.name, &p.protocol, p.port))
        .collect();
    Some(ServiceEntry {
        kind,
        ports,
        endpoint_sets: Vec::new(),
    })
}

fn slice_service(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()?
        .get(SERVICE_NAME_LABEL)
        .map(String::as_str)
}

/// The slice's ready addresses (`ready` unset counts as ready, as the API says) and ports;
/// FQDN slices name no address.
fn endpoint_set(slice: &EndpointSlice) -> EndpointSet {
    if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
        return EndpointSet::default();
    }
    let endpoints = slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .flat_map(|e| {
            let hostname = e.hostname.clone().filter(|h| !h.is_empty());
            e.addresses.iter().filter_map(move |address| {
                let ip: IpAddr = address.parse().ok()?;
                let label = hostname.clone().unwrap_or_else(|| dashed(ip));
                Some(Endpoint { ip, label })
            })
        })
        .collect();
    let ports = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| Port::of(&p.name, &p.protocol, p.port?))
        .collect();
    EndpointSet { endpoints, ports }
}

/// `10-42-0-5` for 10.42.0.5, `fd00--1` for fd00::1 (CoreDNS's `endpointHostname`).
pub fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Value};

    pub fn service(namespace: &str, name: &str, spec: Value) -> (Key, Service) {
        let object = serde_json::from_value(json!({
            "metadata": {"namespace": namespace, "name": name}, "spec": spec,
        }))
        .unwrap();
        ((namespace.into(), name.into()), object)
    }

    pub fn slice(
        namespace: &str,
        name: &str,
        service: &str,
        endpoints: Value,
        ports: Value,
    ) -> (Key, EndpointSlice) {
        let object = serde_json::from_value(json!({
            "metadata": {"namespace": namespace, "name": name,
                         "labels": {SERVICE_NAME_LABEL: service}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports,
        }))
        .unwrap();
        ((namespace.into(), name.into()), object)
    }

    pub fn namespaces(names: &[&str]) -> BTreeMap<Key, Namespace> {
        names
            .iter()
            .map(|name| {
                let object = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
                ((String::new(), name.to_string()), object)
            })
            .collect()
    }

    #[test]
    fn only_ready_endpoints_of_known_services_are_kept() {
        let services = BTreeMap::from([service(
            "shop",
            "db",
            json!({"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}),
        )]);
        let slices = BTreeMap::from([
            slice(
                "shop",
                "db-abc",
                "db",
                json!([
                    {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                    {"addresses": ["10.42.0.6"], "conditions": {}},
                    {"addresses": ["10.42.0.7"], "conditions": {"ready": false}},
                ]),
                json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
            ),
            slice(
                "shop",
                "gone-x",
                "gone",
                json!([{"addresses": ["10.42.0.9"]}]),
                json!([]),
            ),
        ]);
        let view = View::build(&services, &slices, &namespaces(&["shop"]));
        let entry = view.service("shop", "db").unwrap();
        assert_eq!(entry.kind, ServiceKind::Headless);
        let labels: Vec<_> = entry.endpoint_sets[0]
            .endpoints
            .iter()
            .map(|e| e.label.as_str())
            .collect();
        assert_eq!(labels, ["db-0", "10-42-0-6"]);
        assert_eq!(
            view.reverse("10.42.0.5".parse().unwrap()),
            ["db-0.db.shop.svc"]
        );
        assert!(view.reverse("10.42.0.9".parse().unwrap()).is_empty());
        assert!(view.namespaces.contains("shop"));
    }

    #[test]
    fn cluster_ips_point_back_to_their_service() {
        let services = BTreeMap::from([service(
            "default",
            "web",
            json!({"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                   "ports": [{"port": 80}]}),
        )]);
        let view = View::build(&services, &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(
            view.reverse("10.43.0.20".parse().unwrap()),
            ["web.default.svc"]
        );
        assert_eq!(
            view.service("default", "web").unwrap().ports,
            [Port {
                name: String::new(),
                protocol: "TCP".into(),
                port: 80
            }]
        );
    }
}
