//! kubectl's Service columns (pkg/printers/internalversion `printService`): NAME TYPE
//! CLUSTER-IP EXTERNAL-IP PORT(S) AGE, and SELECTOR with `-o wide`.

use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service, ServicePort};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use super::{service_type, CLUSTER_IP, EXTERNAL_NAME, LOAD_BALANCER, NODE_PORT};

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer."),
        Column::new("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
        Column::new("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
        Column::new("Port(s)", "string", "The list of ports that are exposed by this service."),
        AGE,
        Column::new("Selector", "string", "Route service traffic to pods with label keys and values matching this selector.").wide(),
    ]
}

pub fn cells(service: &Service) -> Vec<Value> {
    let spec = service.spec.clone().unwrap_or_default();
    let cluster_ip = spec
        .cluster_ips
        .as_ref()
        .and_then(|ips| ips.first().cloned())
        .unwrap_or_else(|| "<none>".into());
    let ports = port_string(spec.ports.as_deref().unwrap_or_default());
    let selector = spec
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_else(|| "<none>".into());
    vec![
        name_cell(&service.metadata),
        json!(service_type(&spec)),
        json!(cluster_ip),
        json!(external_ip(service, true)),
        json!(if ports.is_empty() {
            "<none>".into()
        } else {
            ports
        }),
        age_cell(&service.metadata),
        json!(selector),
    ]
}

/// kubectl's `getServiceExternalIP`.
fn external_ip(service: &Service, wide: bool) -> String {
    let spec = service.spec.clone().unwrap_or_default();
    let external_ips = spec.external_ips.clone().unwrap_or_default();
    match service_type(&spec) {
        CLUSTER_IP | NODE_PORT if external_ips.is_empty() => "<none>".into(),
        CLUSTER_IP | NODE_PORT => external_ips.join(","),
        LOAD_BALANCER => {
            let status = service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref());
            let balancer = status
                .map(|lb| load_balancer_ips(lb, wide))
                .unwrap_or_default();
            let mut all: Vec<String> = Vec::new();
            if !balancer.is_empty() {
                all.extend(balancer.split(',').map(str::to_owned));
            }
            all.extend(external_ips);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        EXTERNAL_NAME => spec.external_name.clone().unwrap_or_default(),
        _ => "<unknown>".into(),
    }
}

/// kubectl's `loadBalancerStatusStringer`: shortened to 13 characters and `...` past 16.
fn load_balancer_ips(status: &LoadBalancerStatus, wide: bool) -> String {
    let entries: Vec<String> = status
        .ingress
        .iter()
        .flatten()
        .filter_map(|i| {
            i.ip.clone()
                .filter(|ip| !ip.is_empty())
                .or_else(|| i.hostname.clone().filter(|h| !h.is_empty()))
        })
        .collect();
    let joined = entries.join(",");
    if !wide && joined.len() > 16 {
        return format!("{}...", &joined[..13]);
    }
    joined
}

/// kubectl's `makePortString`: `80/TCP`, `80:30080/TCP`.
fn port_string(ports: &[ServicePort]) -> String {
    let protocol = |p: &ServicePort| p.protocol.clone().unwrap_or_default();
    ports
        .iter()
        .map(|p| match p.node_port.filter(|n| *n > 0) {
            Some(node_port) => format!("{}:{node_port}/{}", p.port, protocol(p)),
            None => format!("{}/{}", p.port, protocol(p)),
        })
        .collect::<Vec<_>>()
        .join(",")
}
