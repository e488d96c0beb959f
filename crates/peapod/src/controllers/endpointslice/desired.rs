//! The EndpointSlices a Service wants, as kube's reconciler builds them: one endpoint per
//! selected pod (`podToEndpoint`), grouped by the ports resolved on that pod
//! (`getEndpointPorts`), and the labels and owner a new slice of the Service carries.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pods;
use crate::controllers::ownership::claims::controller_ref;

/// The controller's name in the managed-by label.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// kube's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The only address family peapod's pod network has.
pub const ADDRESS_TYPE: &str = "IPv4";

/// The identity of a set of ports (kube's `PortMapKey`).
pub type PortsKey = String;

/// The identity of an endpoint within its slices (kube's `hashEndpoint`): its sorted
/// addresses, hostname and target.
pub fn endpoint_key(endpoint: &Endpoint) -> String {
    let mut addresses = endpoint.addresses.clone();
    addresses.sort();
    let target = endpoint.target_ref.as_ref();
    let field = |f: Option<&String>| f.cloned().unwrap_or_default();
    format!(
        "{}|{}|{}/{}",
        addresses.join(","),
        field(endpoint.hostname.as_ref()),
        field(target.and_then(|t| t.namespace.as_ref())),
        field(target.and_then(|t| t.name.as_ref())),
    )
}

pub fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    let mut parts: Vec<String> = ports.iter().map(|p| format!("{p:?}")).collect();
    parts.sort();
    parts.join(";")
}

/// The endpoints wanted under one set of ports, by [`endpoint_key`].
#[derive(Debug, Default)]
pub struct PortGroup {
    pub ports: Vec<EndpointPort>,
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// The Service's wanted endpoints grouped by their ports: terminating pods included, as
/// kube's EndpointSlice controller does.
pub fn desired_groups(service: &Service, pods: &[&Pod]) -> BTreeMap<PortsKey, PortGroup> {
    let mut groups: BTreeMap<PortsKey, PortGroup> = BTreeMap::new();
    for pod in pods
        .iter()
        .filter(|p| pods::should_be_in_endpoints(p, true))
    {
        let ports = endpoint_ports(service, pod);
        let group = groups.entry(ports_key(&ports)).or_default();
        if group.ports.is_empty() {
            group.ports = ports;
        }
        let endpoint = pod_to_endpoint(pod, service);
        if !endpoint.addresses.is_empty() {
            group.endpoints.insert(endpoint_key(&endpoint), endpoint);
        }
    }
    groups
}

/// `podToEndpoint`: serving is the pod's readiness, terminating its deletion, ready both
/// (or always, when the Service publishes not-ready addresses); no zone.
pub fn pod_to_endpoint(pod: &Pod, service: &Service) -> Endpoint {
    let serving = pods::is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let ready = pods::publishes_not_ready(service) || (serving && !terminating);
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    Endpoint {
        addresses: pods::ipv4_addresses(pod),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: pods::hostname_for(pod, service),
        node_name: node.filter(|n| !n.is_empty()),
        target_ref: Some(pods::target_ref(pod)),
        ..Endpoint::default()
    }
}

/// `getEndpointPorts`: each Service port resolved on the pod, those that do not resolve
/// left out (a headless Service may have none).
pub fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let service_ports = service.spec.as_ref().and_then(|s| s.ports.as_deref());
    service_ports
        .unwrap_or_default()
        .iter()
        .filter_map(|port| {
            let number = pods::find_port(pod, port)?;
            Some(EndpointPort {
                name: Some(port.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(pods::protocol(port).to_owned()),
                app_protocol: port.app_protocol.clone(),
            })
        })
        .collect()
}

/// `setEndpointSliceLabels`: the Service's labels (but the reserved ones), the headless
/// label when it has no clusterIP, its name and the controller's; and whether the slice's
/// own non-reserved labels differ from the Service's.
pub fn slice_labels(
    slice_labels: Option<&BTreeMap<String, String>>,
    service: &Service,
) -> (BTreeMap<String, String>, bool) {
    let unreserved = |labels: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
        labels
            .into_iter()
            .flatten()
            .filter(|(key, _)| !is_reserved_label(key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let current = unreserved(slice_labels);
    let mut labels = unreserved(service.metadata.labels.as_ref());
    let changed = current != labels;
    if !pods::has_cluster_ip(service) {
        labels.insert(LABEL_HEADLESS.to_owned(), String::new());
    }
    let name = service.metadata.name.clone().unwrap_or_default();
    labels.insert(LABEL_SERVICE_NAME.to_owned(), name);
    labels.insert(LABEL_MANAGED_BY.to_owned(), CONTROLLER_NAME.to_owned());
    (labels, changed)
}

fn is_reserved_label(key: &str) -> bool {
    matches!(key, LABEL_SERVICE_NAME | LABEL_MANAGED_BY | LABEL_HEADLESS)
}

/// `newEndpointSlice`: an empty slice of the Service named `<service>-<random>`, owned by it.
pub fn new_slice(service: &Service, ports: &[EndpointPort]) -> EndpointSlice {
    let (labels, _) = slice_labels(None, service);
    let name = service.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(slice_prefix(&name)),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref(service)]),
            ..ObjectMeta::default()
        },
        address_type: ADDRESS_TYPE.to_owned(),
        ports: Some(ports.to_vec()),
        endpoints: Vec::new(),
    }
}

/// `getEndpointSlicePrefix`: `<name>-`, or the bare name when the dash would make it too long.
pub fn slice_prefix(name: &str) -> String {
    match name.len() {
        len if len + 1 > 253 => name.to_owned(),
        _ => format!("{name}-"),
    }
}

/// `ownedBy`: the slice has an owner reference to this Service (same uid).
pub fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    let owners = slice.metadata.owner_references.iter().flatten();
    owners.into_iter().any(|o| {
        o.uid.as_str() == service.metadata.uid.as_deref().unwrap_or_default()
            && o.kind == "Service"
            && o.api_version == "v1"
    })
}
