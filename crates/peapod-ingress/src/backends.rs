//! A backend's addresses: the Service port an Ingress names (by name or number), then the
//! ready endpoints of the Service's EndpointSlices on the slice port of the same name (the
//! targetPort the EndpointSlice controller resolved), taken in turn (round robin).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::routes::PortRef;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Services and EndpointSlices the controller watches.
#[derive(Default)]
pub struct Backends {
    services: HashMap<(String, String), Arc<Service>>,
    slices: HashMap<(String, String), Vec<Arc<EndpointSlice>>>,
}

impl Backends {
    pub fn new(services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) -> Backends {
        let key =
            |ns: &Option<String>, name: &str| (ns.clone().unwrap_or_default(), name.to_owned());
        let mut backends = Backends::default();
        for service in services {
            let name = service.metadata.name.as_deref().unwrap_or_default();
            let entry = key(&service.metadata.namespace, name);
            backends.services.insert(entry, service.clone());
        }
        for slice in slices {
            let labels = slice.metadata.labels.as_ref();
            let Some(owner) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) else {
                continue;
            };
            let entry = key(&slice.metadata.namespace, owner);
            backends
                .slices
                .entry(entry)
                .or_default()
                .push(slice.clone());
        }
        backends
    }

    /// The ready addresses behind `port` of Service `namespace/name`, sorted; empty when the
    /// Service, its port or a ready endpoint is missing.
    pub fn endpoints(&self, namespace: &str, name: &str, port: &PortRef) -> Vec<SocketAddr> {
        let key = (namespace.to_owned(), name.to_owned());
        let Some(service) = self.services.get(&key) else {
            return Vec::new();
        };
        let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
        let Some(service_port) = ports.into_iter().flatten().find(|p| match port {
            PortRef::Name(wanted) => p.name.as_deref() == Some(wanted.as_str()),
            PortRef::Number(wanted) => p.port == *wanted,
        }) else {
            return Vec::new();
        };
        let port_name = service_port.name.clone().unwrap_or_default();
        let mut found = BTreeSet::new();
        for slice in self.slices.get(&key).into_iter().flatten() {
            let slice_port = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.clone().unwrap_or_default() == port_name);
            let Some(number) = slice_port.and_then(|p| p.port) else {
                continue;
            };
            let Ok(number) = u16::try_from(number) else {
                continue;
            };
            for endpoint in &slice.endpoints {
                let conditions = endpoint.conditions.as_ref();
                if conditions.and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                let address = endpoint
                    .addresses
                    .first()
                    .and_then(|a| a.parse::<IpAddr>().ok());
                found.extend(address.map(|ip| SocketAddr::new(ip, number)));
            }
        }
        found.into_iter().collect()
    }
}

/// One turn counter per backend, kept across rebuilds of the routing table.
#[derive(Default)]
pub struct RoundRobin {
    turns: Mutex<HashMap<String, Arc<AtomicUsize>>>,
}

impl RoundRobin {
    /// `addresses` rotated to start at this backend's next turn.
    pub fn order(&self, backend: &str, addresses: &[SocketAddr]) -> Vec<SocketAddr> {
        if addresses.is_empty() {
            return Vec::new();
        }
        let counter = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            turns.entry(backend.to_owned()).or_default().clone()
        };
        let start = counter.fetch_add(1, Ordering::Relaxed) % addresses.len();
        let mut ordered = addresses[start..].to_vec();
        ordered.extend_from_slice(&addresses[..start]);
        ordered
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service() -> Arc<Service> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"ports": [
                    {"name": "http", "port": 80, "targetPort": "web"},
                    {"name": "metrics", "port": 9090},
                ]},
            }))
            .unwrap(),
        )
    }

    fn slice(name: &str, endpoints: serde_json::Value) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9100}],
                "endpoints": endpoints,
            }))
            .unwrap(),
        )
    }

    #[test]
    fn ports_by_name_or_number_reach_ready_endpoints() {
        let slices = [
            slice(
                "web-a",
                json!([
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
                    {"addresses": ["10.0.0.3"], "conditions": {"ready": false}},
                ]),
            ),
            slice("web-b", json!([{"addresses": ["10.0.0.4"]}])),
        ];
        let backends = Backends::new(&[service()], &slices);
        let by_name = backends.endpoints("default", "web", &PortRef::Name("http".into()));
        let want: Vec<SocketAddr> = vec![
            "10.0.0.2:8080".parse().unwrap(),
            "10.0.0.4:8080".parse().unwrap(),
        ];
        assert_eq!(by_name, want);
        let by_number = backends.endpoints("default", "web", &PortRef::Number(9090));
        assert_eq!(by_number[0], "10.0.0.2:9100".parse().unwrap());
        assert!(backends
            .endpoints("default", "web", &PortRef::Number(81))
            .is_empty());
        assert!(backends
            .endpoints("default", "none", &PortRef::Number(80))
            .is_empty());
    }

    #[test]
    fn round_robin_takes_turns() {
        let addresses: Vec<SocketAddr> = vec![
            "10.0.0.1:80".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        ];
        let turns = RoundRobin::default();
        let firsts: Vec<SocketAddr> = (0..4).map(|_| turns.order("web", &addresses)[0]).collect();
        assert_eq!(
            firsts,
            [addresses[0], addresses[1], addresses[0], addresses[1]]
        );
        assert_eq!(turns.order("web", &addresses).len(), 2);
    }
}
