//! What the endpoint controllers read off a pod and its Service, as kube's
//! `endpointslice/util` and `podutil` say it: whether the pod belongs in endpoints, whether it
//! is ready, its IPv4 address, its hostname for the Service and a Service port's number on it.

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `ShouldPodBeInEndpoints`: not terminal, with an IP, and (unless `include_terminating`)
/// not being deleted.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();
    if matches!(phase, "Succeeded" | "Failed") {
        return false;
    }
    let has_ip = status.is_some_and(|s| {
        s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
            || s.pod_ips.as_ref().is_some_and(|ips| !ips.is_empty())
    });
    has_ip && (include_terminating || pod.metadata.deletion_timestamp.is_none())
}

/// `IsPodReady`: the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == "Ready")
}

/// When the pod's readiness last changed, the pod's part in the trigger time.
pub fn ready_transition(pod: &Pod) -> Option<jiff::Timestamp> {
    Some(ready_condition(pod)?.last_transition_time.as_ref()?.0)
}

/// The pod's IPv4 addresses (podIPs, else podIP), re-formatted as kube's `ParseIPSloppy`.
pub fn ipv4_addresses(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let listed: Vec<&str> = match status.pod_ips.as_deref() {
        Some(ips) if !ips.is_empty() => ips.iter().map(|ip| ip.ip.as_str()).collect(),
        _ => status.pod_ip.as_deref().into_iter().collect(),
    };
    listed
        .into_iter()
        .filter_map(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
        .map(|ip| ip.to_string())
        .collect()
}

/// `ShouldSetHostname`: the pod names a hostname and the Service as its subdomain.
pub fn hostname_for(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let same_namespace = pod.metadata.namespace == service.metadata.namespace;
    (spec.subdomain.as_deref() == service.metadata.name.as_deref() && same_namespace)
        .then(|| hostname.to_owned())
}

/// The pod as an endpoint's targetRef.
pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_owned()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// A Service port's protocol, TCP when unset.
pub fn protocol(port: &ServicePort) -> &str {
    port.protocol.as_deref().unwrap_or("TCP")
}

/// `FindPort`: a numeric targetPort as is (the port itself when unset), a named one looked up
/// among the pod's container ports of the same protocol, then its sidecars'.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let name = match &port.target_port {
        None => return Some(port.port),
        Some(IntOrString::Int(number)) => return Some(*number),
        Some(IntOrString::String(name)) => name,
    };
    let spec = pod.spec.as_ref()?;
    let sidecars = spec.init_containers.iter().flatten();
    let sidecars = sidecars.filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| {
            p.name.as_deref() == Some(name)
                && p.protocol.as_deref().unwrap_or("TCP") == protocol(port)
        })
        .map(|p| p.container_port)
}

/// `IsServiceIPSet`: a clusterIP that is neither empty nor None.
pub fn has_cluster_ip(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    !matches!(ip, None | Some("") | Some("None"))
}

/// Whether the Service publishes its not-ready endpoints as ready.
pub fn publishes_not_ready(service: &Service) -> bool {
    let spec = service.spec.as_ref();
    spec.and_then(|s| s.publish_not_ready_addresses) == Some(true)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodIP, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn pod_with_ports(ports: Vec<ContainerPort>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    ports: Some(ports),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn container_port(name: &str, number: i32, protocol: &str) -> ContainerPort {
        ContainerPort {
            name: Some(name.to_owned()),
            container_port: number,
            protocol: Some(protocol.to_owned()),
            ..ContainerPort::default()
        }
    }

    fn service_port(target: IntOrString, protocol: &str) -> ServicePort {
        ServicePort {
            port: 80,
            target_port: Some(target),
            protocol: Some(protocol.to_owned()),
            ..ServicePort::default()
        }
    }

    #[test]
    fn find_port_resolves_names_per_protocol() {
        let pod = pod_with_ports(vec![
            container_port("http", 8080, "TCP"),
            container_port("dns", 53, "UDP"),
        ]);
        let named = |name: &str| IntOrString::String(name.to_owned());
        assert_eq!(
            find_port(&pod, &service_port(named("http"), "TCP")),
            Some(8080)
        );
        assert_eq!(
            find_port(&pod, &service_port(named("dns"), "UDP")),
            Some(53)
        );
        assert_eq!(find_port(&pod, &service_port(named("dns"), "TCP")), None);
        assert_eq!(find_port(&pod, &service_port(named("nope"), "TCP")), None);
        let numeric = service_port(IntOrString::Int(9376), "TCP");
        assert_eq!(find_port(&pod, &numeric), Some(9376));
    }

    #[test]
    fn terminal_and_ipless_pods_stay_out() {
        let mut pod = Pod {
            status: Some(PodStatus {
                phase: Some("Running".to_owned()),
                pod_ips: Some(vec![PodIP {
                    ip: "10.0.0.5".to_owned(),
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        assert!(should_be_in_endpoints(&pod, false));
        assert_eq!(ipv4_addresses(&pod), vec!["10.0.0.5"]);
        pod.metadata = ObjectMeta {
            deletion_timestamp: Some(Time(jiff::Timestamp::UNIX_EPOCH)),
            ..ObjectMeta::default()
        };
        assert!(!should_be_in_endpoints(&pod, false));
        assert!(should_be_in_endpoints(&pod, true));
        pod.status.as_mut().unwrap().phase = Some("Succeeded".to_owned());
        assert!(!should_be_in_endpoints(&pod, true));
        pod.status = Some(PodStatus::default());
        assert!(!should_be_in_endpoints(&pod, true));
    }
}
