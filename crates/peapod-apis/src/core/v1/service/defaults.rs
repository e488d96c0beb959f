//! kube's `SetDefaults_Service` (pkg/apis/core/v1/defaults.go). The IP families, the policy
//! and the cluster IPs are the allocator's, as in kube, since they depend on the cluster.

use k8s_openapi::api::core::v1::{ClientIPConfig, Service, SessionAffinityConfig};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{is_externally_accessible, service_type, CLUSTER_IP, LOAD_BALANCER, NODE_PORT};

/// kube's `DefaultClientIPServiceAffinitySeconds`: three hours.
const DEFAULT_CLIENT_IP_TIMEOUT: i32 = 10800;

pub fn set_defaults(service: &mut Service) {
    let spec = service.spec.get_or_insert_with(Default::default);
    let affinity = spec.session_affinity.get_or_insert_with(|| "None".into());
    if affinity == "None" {
        spec.session_affinity_config = None;
    }
    if affinity == "ClientIP" {
        let timeout = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds);
        if timeout.is_none() {
            spec.session_affinity_config = Some(SessionAffinityConfig {
                client_ip: Some(ClientIPConfig {
                    timeout_seconds: Some(DEFAULT_CLIENT_IP_TIMEOUT),
                }),
            });
        }
    }
    if spec.type_.as_deref().unwrap_or_default().is_empty() {
        spec.type_ = Some(CLUSTER_IP.into());
    }
    for port in spec.ports.iter_mut().flatten() {
        if port.protocol.as_deref().unwrap_or_default().is_empty() {
            port.protocol = Some("TCP".into());
        }
        let unset = matches!(&port.target_port, None | Some(IntOrString::Int(0)))
            || matches!(&port.target_port, Some(IntOrString::String(s)) if s.is_empty());
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    let accessible = is_externally_accessible(spec);
    if accessible
        && spec
            .external_traffic_policy
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    let kind = service_type(spec).to_owned();
    if spec.internal_traffic_policy.is_none()
        && [NODE_PORT, LOAD_BALANCER, CLUSTER_IP].contains(&kind.as_str())
    {
        spec.internal_traffic_policy = Some("Cluster".into());
    }
    if kind == LOAD_BALANCER {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
        let ingress = service
            .status
            .iter_mut()
            .filter_map(|s| s.load_balancer.as_mut())
            .flat_map(|lb| lb.ingress.iter_mut().flatten());
        for entry in ingress.filter(|i| i.ip.as_deref().is_some_and(|ip| !ip.is_empty())) {
            entry.ip_mode.get_or_insert_with(|| "VIP".into());
        }
    }
}
