//! kube's Service allocation (pkg/registry/core/service/storage/alloc.go) as the Service
//! kind's [`Allocator`]: each create or update locks the pools, reads the cluster IPs and node
//! ports every other stored Service holds, then fills in the IP families, the cluster IP and
//! the node ports the new object needs. The stored Services are the only record, so a write
//! that fails after allocating releases everything by not being stored, and one that drops a
//! type releases its values by being stored without them.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::sync::{Mutex, MutexGuard, PoisonError};

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{Allocation, AllocationError, Allocator};
use peapod_apiserver::status::ApiError;
use peapod_store::Store;
use serde_json::Value;

use super::pools::{IpPool, PoolError, PortPool};
use super::validation::{cluster_ips_related_fields, GoStrings};
use super::{
    is_headless, needs_cluster_ip, needs_health_check, service_type, should_allocate_node_ports,
    EXTERNAL_NAME, LOAD_BALANCER, NODE_PORT, NONE,
};

/// Where Services take their addresses and node ports from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// `--service-cluster-ip-range`: `.1` is the `kubernetes` Service's, `.10` the DNS's.
    pub cidr: Ipv4Net,
    /// `--service-node-port-range`.
    pub node_ports: RangeInclusive<u16>,
}

impl Default for ServiceNetwork {
    /// k3s' 10.43.0.0/16 and kube's 30000-32767.
    fn default() -> ServiceNetwork {
        ServiceNetwork {
            cidr: "10.43.0.0/16".parse().expect("a valid range"),
            node_ports: 30000..=32767,
        }
    }
}

/// The Service kind's pools; its lock is held from reading the stored Services to the end of
/// the write.
pub struct ServiceAllocator {
    network: ServiceNetwork,
    lock: Mutex<()>,
}

impl ServiceAllocator {
    pub fn new(network: ServiceNetwork) -> ServiceAllocator {
        ServiceAllocator {
            network,
            lock: Mutex::new(()),
        }
    }
}

impl Allocator for ServiceAllocator {
    fn begin(
        &self,
        store: &Store,
        namespace: &str,
        name: &str,
    ) -> Result<Box<dyn Allocation + '_>, ApiError> {
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let services = store
            .list::<Service>(None)
            .map_err(|err| ApiError::from_store(err, "", "services"))?;
        let mut pools = Pools {
            ips: IpPool::new(self.network.cidr),
            ports: PortPool::new(self.network.node_ports.clone()),
        };
        let others = services.iter().filter(|service| {
            let meta = &service.metadata;
            meta.namespace.as_deref() != Some(namespace) || meta.name.as_deref() != Some(name)
        });
        for spec in others.filter_map(|service| service.spec.as_ref()) {
            pools.mark(spec);
        }
        Ok(Box::new(ServiceAllocation {
            pools,
            _turn: guard,
        }))
    }
}

struct Pools {
    ips: IpPool,
    ports: PortPool,
}

impl Pools {
    fn mark(&mut self, spec: &ServiceSpec) {
        let ips = spec.cluster_ips.iter().flatten().chain(&spec.cluster_ip);
        for ip in ips.filter_map(|ip| ip.parse::<Ipv4Addr>().ok()) {
            self.ips.mark(ip);
        }
        for port in node_ports(spec).chain(spec.health_check_node_port) {
            if let Ok(port) = u16::try_from(port) {
                self.ports.mark(port);
            }
        }
    }
}

struct ServiceAllocation<'a> {
    pools: Pools,
    _turn: MutexGuard<'a, ()>,
}

impl Allocation for ServiceAllocation<'_> {
    fn allocate(&mut self, new: &mut Value, old: Option<&Value>) -> Result<(), AllocationError> {
        let decode = |value: &Value| {
            serde_json::from_value::<Service>(value.clone())
                .map_err(|err| ApiError::internal(format!("a Service that does not decode: {err}")))
        };
        let mut service = decode(new)?;
        let old = old.map(decode).transpose()?;
        let spec = service.spec.get_or_insert_with(Default::default);
        let old_spec = old.as_ref().map(|old| old.spec.clone().unwrap_or_default());
        normalize_cluster_ips(spec, old_spec.as_ref());
        init_ip_families(spec, old_spec.as_ref())?;
        match &old_spec {
            None => {
                self.allocate_cluster_ip(spec)?;
                self.allocate_node_ports(spec, &[])?;
                self.allocate_health_check_port(spec, None)?;
            }
            Some(old) => {
                if service_type(old) == EXTERNAL_NAME && service_type(spec) != EXTERNAL_NAME {
                    self.allocate_cluster_ip(spec)?;
                }
                if matches!(service_type(spec), NODE_PORT | LOAD_BALANCER) {
                    let kept: Vec<i32> = node_ports(old).collect();
                    self.allocate_node_ports(spec, &kept)?;
                }
                self.allocate_health_check_port(spec, Some(old))?;
            }
        }
        *new = serde_json::to_value(&service).map_err(|err| ApiError::internal(err.to_string()))?;
        Ok(())
    }
}

impl ServiceAllocation<'_> {
    /// kube's `allocClusterIPs`: a requested address taken, else a free one; none for
    /// ExternalName and headless Services.
    fn allocate_cluster_ip(&mut self, spec: &mut ServiceSpec) -> Result<(), AllocationError> {
        if !needs_cluster_ip(spec) || is_headless(spec) {
            return Ok(());
        }
        let requested = spec.cluster_ip.clone().filter(|ip| !ip.is_empty());
        let ip = match requested {
            None => self.pools.ips.allocate_next().map_err(|err| {
                ApiError::internal(format!("failed to allocate a serviceIP: {err}"))
            })?,
            Some(requested) => {
                // Validation has made sure it is an IP; an IPv6 one has no pool here.
                let refused = |err: String| {
                    let path = FieldPath::new("spec").child("clusterIPs");
                    let given = GoStrings(spec.cluster_ips.clone().unwrap_or_default());
                    let detail = format!("failed to allocate IP {requested}: {err}");
                    AllocationError::Invalid(vec![FieldError::invalid(&path, given, &detail)])
                };
                let ip = requested
                    .parse::<Ipv4Addr>()
                    .map_err(|_| refused("IPv6 is not configured on this cluster".into()))?;
                self.pools
                    .ips
                    .allocate(ip)
                    .map_err(|err| refused(err.to_string()))?;
                ip
            }
        };
        spec.cluster_ip = Some(ip.to_string());
        spec.cluster_ips = Some(vec![ip.to_string()]);
        Ok(())
    }

    /// kube's `initNodePorts` and `updateNodePorts`: each port's requested node port taken
    /// (unless the old object held it), else a free one, ports of the same number sharing
    /// theirs.
    fn allocate_node_ports(
        &mut self,
        spec: &mut ServiceSpec,
        kept: &[i32],
    ) -> Result<(), AllocationError> {
        if !matches!(service_type(spec), NODE_PORT | LOAD_BALANCER) {
            return Ok(());
        }
        let allocate_new = should_allocate_node_ports(spec);
        let ports = spec.ports.get_or_insert_with(Vec::new);
        let requested: Vec<(i32, i32)> = ports
            .iter()
            .filter_map(|p| p.node_port.filter(|n| *n != 0).map(|n| (p.port, n)))
            .collect();
        let mut by_port: Vec<(i32, i32)> = Vec::new();
        let mut taken_here: Vec<i32> = Vec::new();
        for (index, port) in ports.iter_mut().enumerate() {
            let given = port.node_port.unwrap_or(0);
            if given == 0 && !allocate_new {
                continue;
            }
            let shared = by_port
                .iter()
                .find(|(p, _)| *p == port.port)
                .map(|(_, n)| *n);
            let wanted = match (given, shared) {
                (0, Some(shared)) => {
                    port.node_port = Some(shared);
                    continue;
                }
                (0, None) => requested
                    .iter()
                    .find(|(p, _)| *p == port.port)
                    .map(|(_, n)| *n),
                (given, _) => Some(given),
            };
            let node_port = match wanted {
                Some(wanted) if kept.contains(&wanted) || taken_here.contains(&wanted) => wanted,
                Some(wanted) => self.pools.ports.allocate(wanted).map_err(|err| {
                    let path = FieldPath::new("spec")
                        .child("ports")
                        .index(index)
                        .child("nodePort");
                    AllocationError::Invalid(vec![FieldError::invalid(
                        &path,
                        wanted,
                        &err.to_string(),
                    )])
                })? as i32,
                None => self.next_node_port("a nodePort")?,
            };
            port.node_port = Some(node_port);
            taken_here.push(node_port);
            by_port.push((port.port, node_port));
        }
        Ok(())
    }

    /// A LoadBalancer with `externalTrafficPolicy: Local` gets a health check node port:
    /// the requested one, else a free one (kept across updates).
    fn allocate_health_check_port(
        &mut self,
        spec: &mut ServiceSpec,
        old: Option<&ServiceSpec>,
    ) -> Result<(), AllocationError> {
        if !needs_health_check(spec) {
            return Ok(());
        }
        let had = old
            .filter(|old| needs_health_check(old))
            .and_then(|old| old.health_check_node_port);
        match spec.health_check_node_port.filter(|p| *p != 0) {
            Some(port) if had == Some(port) => {}
            Some(port) => {
                self.pools.ports.allocate(port).map_err(|err| {
                    ApiError::internal(format!(
                        "failed to allocate requested HealthCheck NodePort {port}: {err}"
                    ))
                })?;
            }
            None => {
                let port = self.next_node_port("a HealthCheck NodePort 0")?;
                spec.health_check_node_port = Some(port);
            }
        }
        Ok(())
    }

    fn next_node_port(&mut self, what: &str) -> Result<i32, AllocationError> {
        let port = self.pools.ports.allocate_next().map_err(|err: PoolError| {
            ApiError::internal(format!("failed to allocate {what}: {err}"))
        })?;
        Ok(i32::from(port))
    }
}

fn node_ports(spec: &ServiceSpec) -> impl Iterator<Item = i32> + '_ {
    spec.ports
        .iter()
        .flatten()
        .filter_map(|port| port.node_port)
        .filter(|port| *port != 0)
}

/// kube's `normalizeClusterIPs`: `clusterIPs` follows `clusterIP` when only that was given
/// or changed.
fn normalize_cluster_ips(spec: &mut ServiceSpec, old: Option<&ServiceSpec>) {
    let cluster_ip = spec.cluster_ip.clone().filter(|ip| !ip.is_empty());
    let Some(old) = old else {
        if let (Some(ip), None | Some([])) = (&cluster_ip, spec.cluster_ips.as_deref()) {
            spec.cluster_ips = Some(vec![ip.clone()]);
        }
        return;
    };
    let old_ip = old.cluster_ip.clone().filter(|ip| !ip.is_empty());
    let same_ips =
        spec.cluster_ips.clone().unwrap_or_default() == old.cluster_ips.clone().unwrap_or_default();
    if cluster_ip != old_ip && same_ips {
        spec.cluster_ips = match cluster_ip {
            None => None,
            Some(ip) => {
                let mut ips = old.cluster_ips.clone().unwrap_or_default();
                match ips.first_mut() {
                    Some(first) => *first = ip,
                    None => ips.push(ip),
                }
                Some(ips)
            }
        };
    }
}

/// kube's `initIPFamilyFields` on a single-stack IPv4 cluster: the policy (the old one on
/// update, RequireDualStack for a headless Service without selector, else SingleStack), the
/// families from the cluster IPs or IPv4.
fn init_ip_families(
    spec: &mut ServiceSpec,
    old: Option<&ServiceSpec>,
) -> Result<(), AllocationError> {
    if service_type(spec) == EXTERNAL_NAME {
        return Ok(());
    }
    let selectorless_headless = spec.cluster_ip.as_deref() == Some(NONE)
        && spec.selector.as_ref().is_none_or(|s| s.is_empty());
    if spec.ip_family_policy.is_none() {
        spec.ip_family_policy = Some(match old.and_then(|old| old.ip_family_policy.clone()) {
            Some(policy) => policy,
            None if selectorless_headless => "RequireDualStack".into(),
            None => "SingleStack".into(),
        });
    }
    let errors = cluster_ips_related_fields(spec);
    if !errors.is_empty() {
        return Err(AllocationError::Invalid(errors));
    }
    let families = spec.ip_families.get_or_insert_with(Vec::new);
    let single = spec.ip_family_policy.as_deref() == Some("SingleStack");
    if selectorless_headless {
        if families.is_empty() {
            families.push("IPv4".into());
        }
        if families.len() < 2 && !single {
            let other = if families[0] == "IPv4" {
                "IPv6"
            } else {
                "IPv4"
            };
            families.push(other.into());
        }
        return Ok(());
    }
    let mut errors = Vec::new();
    let path = FieldPath::new("spec");
    let cluster_ips = spec.cluster_ips.clone().unwrap_or_default();
    for (index, ip) in cluster_ips.iter().enumerate() {
        if ip == NONE {
            break;
        }
        let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
        if index < families.len() {
            continue;
        }
        if family == "IPv4" {
            families.push(family.into());
        } else {
            errors.push(FieldError::invalid(
                &path.child("clusterIPs").index(index),
                GoStrings(cluster_ips.clone()),
                "IPv6 is not configured on this cluster",
            ));
        }
    }
    if spec.ip_family_policy.as_deref() == Some("RequireDualStack") {
        errors.push(FieldError::invalid(
            &path.child("ipFamilyPolicy"),
            "RequireDualStack",
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (index, family) in families.iter().enumerate() {
        if family != "IPv4" {
            errors.push(FieldError::invalid(
                &path.child("ipFamilies").index(index),
                family.as_str(),
                "not configured on this cluster",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(AllocationError::Invalid(errors));
    }
    if families.is_empty() {
        families.push("IPv4".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::ServicePort;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    use super::*;
    use crate::core::v1::service::CLUSTER_IP;

    fn allocator() -> ServiceAllocator {
        ServiceAllocator::new(ServiceNetwork {
            cidr: "10.43.7.0/24".parse().unwrap(),
            node_ports: 30000..=30031,
        })
    }

    fn service(name: &str, kind: &str, cluster_ip: Option<&str>, node_port: Option<i32>) -> Value {
        let service = Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some(kind.into()),
                cluster_ip: cluster_ip.map(Into::into),
                ports: Some(vec![ServicePort {
                    port: 80,
                    protocol: Some("TCP".into()),
                    node_port,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        serde_json::to_value(service).unwrap()
    }

    /// Allocates for `object` and stores it, as the create handler does.
    fn create(
        store: &Store,
        allocator: &ServiceAllocator,
        mut object: Value,
    ) -> Result<Value, String> {
        let mut allocation = allocator.begin(store, "", "").unwrap();
        match allocation.allocate(&mut object, None) {
            Ok(()) => {
                let typed: Service = serde_json::from_value(object.clone()).unwrap();
                store.create(typed).unwrap();
                Ok(object)
            }
            Err(AllocationError::Invalid(errors)) => Err(errors[0].to_string()),
            Err(AllocationError::Api(err)) => Err(err.message),
        }
    }

    #[test]
    fn creates_get_families_addresses_and_node_ports() {
        let (store, allocator) = (Store::open_in_memory().unwrap(), allocator());
        let created = create(&store, &allocator, service("a", NODE_PORT, None, None)).unwrap();
        let spec = &created["spec"];
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        let ip: Ipv4Addr = spec["clusterIP"].as_str().unwrap().parse().unwrap();
        assert!(ip.octets()[3] > 16, "{ip} is from the upper band");
        assert_eq!(spec["clusterIPs"], json!([ip.to_string()]));
        let node_port = spec["ports"][0]["nodePort"].as_i64().unwrap();
        assert!((30016..=30031).contains(&node_port), "{node_port}");

        let taken = create(
            &store,
            &allocator,
            service("b", CLUSTER_IP, Some(&ip.to_string()), None),
        );
        assert_eq!(
            taken.unwrap_err(),
            format!(
                r#"spec.clusterIPs: Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: provided IP is already allocated"#
            )
        );
        let outside = create(
            &store,
            &allocator,
            service("b", CLUSTER_IP, Some("10.43.8.1"), None),
        );
        assert_eq!(
            outside.unwrap_err(),
            r#"spec.clusterIPs: Invalid value: []string{"10.43.8.1"}: failed to allocate IP 10.43.8.1: the provided IP (10.43.8.1) is not in the valid range. The range of valid IPs is 10.43.7.0/24"#
        );
        let port_taken = create(
            &store,
            &allocator,
            service("b", NODE_PORT, None, Some(node_port as i32)),
        );
        assert_eq!(
            port_taken.unwrap_err(),
            format!("spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated")
        );
        let port_outside = create(
            &store,
            &allocator,
            service("b", NODE_PORT, None, Some(31000)),
        );
        assert_eq!(
            port_outside.unwrap_err(),
            "spec.ports[0].nodePort: Invalid value: 31000: provided port is not in the valid range. The range of valid ports is 30000-30031"
        );
        let headless = create(
            &store,
            &allocator,
            service("h", CLUSTER_IP, Some(NONE), None),
        )
        .unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!([NONE]));
    }

    #[test]
    fn concurrent_creates_never_share_a_value() {
        let store = Store::open_in_memory().unwrap();
        let allocator = Arc::new(allocator());
        let threads: Vec<_> = (0..16)
            .map(|n| {
                let (store, allocator) = (store.clone(), allocator.clone());
                std::thread::spawn(move || {
                    let object = service(&format!("s{n}"), NODE_PORT, None, None);
                    let created = create(&store, &allocator, object).unwrap();
                    let spec = &created["spec"];
                    (
                        spec["clusterIP"].to_string(),
                        spec["ports"][0]["nodePort"].as_i64().unwrap(),
                    )
                })
            })
            .collect();
        let results: Vec<(String, i64)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let ips: HashSet<&String> = results.iter().map(|(ip, _)| ip).collect();
        let ports: HashSet<i64> = results.iter().map(|(_, port)| *port).collect();
        assert_eq!((ips.len(), ports.len()), (16, 16));
    }

    #[test]
    fn a_refused_create_leaks_nothing_and_updates_keep_their_values() {
        let (store, allocator) = (Store::open_in_memory().unwrap(), allocator());
        let mut refused = service("a", CLUSTER_IP, Some("10.43.7.50"), None);
        allocator
            .begin(&store, "", "")
            .unwrap()
            .allocate(&mut refused, None)
            .unwrap();
        // Never stored (validation refused it, say): the address is free again.
        let created = create(
            &store,
            &allocator,
            service("b", CLUSTER_IP, Some("10.43.7.50"), None),
        );
        let old = created.unwrap();

        let mut node_port = old.clone();
        node_port["spec"]["type"] = json!(NODE_PORT);
        let mut allocation = allocator.begin(&store, "default", "b").unwrap();
        allocation.allocate(&mut node_port, Some(&old)).unwrap();
        assert_eq!(node_port["spec"]["clusterIP"], "10.43.7.50");
        assert!(node_port["spec"]["ports"][0]["nodePort"].as_i64().is_some());
        let mut again = node_port.clone();
        allocation.allocate(&mut again, Some(&node_port)).unwrap();
        assert_eq!(again, node_port, "an update keeps what the object holds");
    }
}
