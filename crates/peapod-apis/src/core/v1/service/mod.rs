//! Service: served as kube-apiserver serves core/v1 services (pkg/registry/core/service):
//! kube's defaults ([`defaults`]), cluster IPs and node ports handed out from the agent's
//! ranges ([`allocation`], over the [`pools`]), kube's validation ([`validation`]), the
//! `status` subresource and kubectl's columns ([`table`]).

mod allocation;
mod defaults;
mod load_balancer;
mod pools;
mod table;
pub(crate) mod validation;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service, ServiceSpec, ServiceStatus};
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::Column;
use serde_json::Value;

pub use allocation::{ServiceAllocator, ServiceNetwork};
pub use validation::dns1035_label;

pub const CLUSTER_IP: &str = "ClusterIP";
pub const NODE_PORT: &str = "NodePort";
pub const LOAD_BALANCER: &str = "LoadBalancer";
pub const EXTERNAL_NAME: &str = "ExternalName";
/// The cluster IP of a headless Service.
pub const NONE: &str = "None";

pub fn kind(network: ServiceNetwork) -> Kind {
    Kind::of(ServiceStrategy)
        .short_names(&["svc"])
        .categories(&["all"])
        .with_status()
        .with_allocator(Arc::new(ServiceAllocator::new(network)))
}

pub struct ServiceStrategy;

impl KindStrategy for ServiceStrategy {
    type Object = Service;

    fn default(&self, service: &mut Service) {
        defaults::set_defaults(service);
    }

    /// kube's strategy: a new Service has an empty status.
    fn prepare_for_create(&self, service: &mut Service) {
        service.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus::default()),
            ..ServiceStatus::default()
        });
    }

    /// kube's `patchAllocatedValues` and `dropTypeDependentFields`: values left out of an
    /// update are kept, those of a type left behind dropped.
    fn prepare_for_update(&self, new: &mut Service, old: &Service) {
        let old_spec = old.spec.clone().unwrap_or_default();
        let spec = new.spec.get_or_insert_with(Default::default);
        patch_allocated_values(spec, &old_spec);
        let left_load_balancer = drop_type_dependent_fields(spec, &old_spec);
        if left_load_balancer {
            if let Some(status) = new.status.as_mut() {
                status.load_balancer = Some(LoadBalancerStatus::default());
            }
        }
    }

    fn validate(&self, service: &Service) -> Vec<FieldError> {
        validation::validate(service)
    }

    fn validate_update(&self, new: &Service, old: &Service) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, service: &Service) -> Vec<Value> {
        table::cells(service)
    }
}

pub fn service_type(spec: &ServiceSpec) -> &str {
    spec.type_.as_deref().unwrap_or(CLUSTER_IP)
}

pub fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ips
        .as_ref()
        .and_then(|ips| ips.first())
        .map(String::as_str)
        == Some(NONE)
        || spec.cluster_ip.as_deref() == Some(NONE)
}

pub fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    service_type(spec) != EXTERNAL_NAME
}

/// NodePort, or LoadBalancer unless `allocateLoadBalancerNodePorts` is false.
fn needs_node_ports(spec: &ServiceSpec) -> bool {
    match service_type(spec) {
        NODE_PORT => true,
        LOAD_BALANCER => spec.allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

pub fn should_allocate_node_ports(spec: &ServiceSpec) -> bool {
    needs_node_ports(spec)
}

/// kube's `NeedsHealthCheck`: a LoadBalancer keeping its clients' addresses.
pub fn needs_health_check(spec: &ServiceSpec) -> bool {
    service_type(spec) == LOAD_BALANCER && spec.external_traffic_policy.as_deref() == Some("Local")
}

/// kube's `ExternallyAccessible`: NodePort, LoadBalancer, or ClusterIP with external IPs.
pub fn is_externally_accessible(spec: &ServiceSpec) -> bool {
    match service_type(spec) {
        NODE_PORT | LOAD_BALANCER => true,
        CLUSTER_IP => spec
            .external_ips
            .as_ref()
            .is_some_and(|ips| !ips.is_empty()),
        _ => false,
    }
}

fn patch_allocated_values(spec: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && needs_cluster_ip(spec) {
        if spec.cluster_ip.as_deref().unwrap_or_default().is_empty() {
            spec.cluster_ip = old.cluster_ip.clone();
        }
        if spec.cluster_ips.as_ref().is_none_or(|ips| ips.is_empty()) {
            spec.cluster_ips = old.cluster_ips.clone();
        }
    }
    if needs_node_ports(old) && needs_node_ports(spec) {
        let used = |s: &ServiceSpec| -> Vec<i32> {
            s.ports
                .iter()
                .flatten()
                .filter_map(|p| p.node_port)
                .filter(|n| *n != 0)
                .collect()
        };
        let new_used = used(spec);
        let both: Vec<i32> = used(old)
            .into_iter()
            .filter(|p| new_used.contains(p))
            .collect();
        let by_name: Vec<(String, i32)> = old
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap_or_default(), p.node_port.unwrap_or(0)))
            .collect();
        for port in spec.ports.iter_mut().flatten() {
            if port.node_port.unwrap_or(0) != 0 {
                continue;
            }
            let name = port.name.clone().unwrap_or_default();
            let old_value = by_name
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, p)| *p);
            if old_value != 0 && !both.contains(&old_value) {
                port.node_port = Some(old_value);
            }
        }
    }
    if needs_health_check(old)
        && needs_health_check(spec)
        && spec.health_check_node_port.unwrap_or(0) == 0
    {
        spec.health_check_node_port = old.health_check_node_port;
    }
}

/// Drops what the old type had and the new one does not need, unless the update changed it
/// too (validation then judges it); whether the Service stopped being a LoadBalancer.
fn drop_type_dependent_fields(spec: &mut ServiceSpec, old: &ServiceSpec) -> bool {
    if needs_cluster_ip(old) && !needs_cluster_ip(spec) {
        if spec.cluster_ip == old.cluster_ip && spec.cluster_ips == old.cluster_ips {
            spec.cluster_ip = None;
            spec.cluster_ips = None;
        }
        if spec.ip_families == old.ip_families {
            spec.ip_families = None;
        }
        if spec.ip_family_policy == old.ip_family_policy {
            spec.ip_family_policy = None;
        }
    }
    if needs_node_ports(old) && !needs_node_ports(spec) {
        let node_ports = |s: &ServiceSpec| -> Vec<Option<i32>> {
            s.ports.iter().flatten().map(|p| p.node_port).collect()
        };
        if node_ports(spec) == node_ports(old) {
            for port in spec.ports.iter_mut().flatten() {
                port.node_port = None;
            }
        }
    }
    if needs_health_check(old)
        && !needs_health_check(spec)
        && spec.health_check_node_port == old.health_check_node_port
    {
        spec.health_check_node_port = None;
    }
    let was_load_balancer = service_type(old) == LOAD_BALANCER;
    let left_load_balancer = was_load_balancer && service_type(spec) != LOAD_BALANCER;
    if left_load_balancer {
        if spec.allocate_load_balancer_node_ports.is_some()
            && spec.allocate_load_balancer_node_ports == old.allocate_load_balancer_node_ports
        {
            spec.allocate_load_balancer_node_ports = None;
        }
        if spec.load_balancer_class == old.load_balancer_class {
            spec.load_balancer_class = None;
        }
    }
    if is_externally_accessible(old)
        && !is_externally_accessible(spec)
        && spec.external_traffic_policy == old.external_traffic_policy
    {
        spec.external_traffic_policy = None;
    }
    left_load_balancer
}
