//! kube's `ValidateService` and `ValidateServiceUpdate` (pkg/apis/core/validation), with its
//! messages, for what a single-stack IPv4 cluster serves.

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_api::validation::meta::{validate_labels, validate_object_meta_update};
use peapod_api::validation::names::{self, regex_error};
use peapod_api::validation::{BadValue, ErrorKind, FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;

use crate::core::v1::endpoints::non_special_ip;
use crate::core::v1::ports::{app_protocol_errors, name_errors, number_errors, protocol_errors};

use super::{
    is_externally_accessible, load_balancer, needs_health_check, service_type, CLUSTER_IP,
    EXTERNAL_NAME, LOAD_BALANCER, NODE_PORT, NONE,
};

const TYPES: &[&str] = &[CLUSTER_IP, EXTERNAL_NAME, LOAD_BALANCER, NODE_PORT];
const MAX_CLIENT_IP_TIMEOUT: i32 = 86400;
/// kube's `AnnotationTopologyMode` and the `DeprecatedAnnotationTopologyAwareHints` it replaced.
const TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
const TOPOLOGY_AWARE_HINTS: &str = "service.kubernetes.io/topology-aware-hints";
const TRAFFIC_DISTRIBUTIONS: &[&str] = &["PreferClose"];
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";

/// A Go `[]string` as kube prints a bad value of one: `[]string{"10.0.0.1"}`.
#[derive(Clone, Debug)]
pub struct GoStrings(pub Vec<String>);

impl BadValue for GoStrings {
    fn render(&self) -> String {
        let items: Vec<String> = self.0.iter().map(|s| s.as_str().render()).collect();
        format!("[]string{{{}}}", items.join(", "))
    }
}

/// A duplicate (protocol, port) pair as kube prints the `core.ServicePort` it keys on.
struct PortKey<'a>(&'a str, i32);

impl BadValue for PortKey<'_> {
    fn render(&self) -> String {
        format!(
            "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
            self.0.render(),
            self.1
        )
    }
}

pub fn validate(service: &Service) -> Vec<FieldError> {
    let mut errors = validate_name(service);
    errors.extend(topology_annotations(service));
    let spec = service.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec));
    errors.extend(load_balancer::validate(service));
    errors
}

/// The topology mode annotation must agree with the older one it replaced when both are set.
fn topology_annotations(service: &Service) -> Vec<FieldError> {
    let annotations = service.metadata.annotations.as_ref();
    let value = |key: &str| annotations.and_then(|a| a.get(key));
    match (value(TOPOLOGY_MODE), value(TOPOLOGY_AWARE_HINTS)) {
        (Some(mode), Some(hints)) if mode != hints => vec![FieldError::invalid(
            &FieldPath::new("metadata")
                .child("annotations")
                .key(TOPOLOGY_MODE),
            mode.as_str(),
            &format!("must match annotations[{TOPOLOGY_AWARE_HINTS}] when both are specified"),
        )],
        _ => Vec::new(),
    }
}

pub fn validate_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let path = FieldPath::new("metadata");
    let mut errors = validate_object_meta_update(&new.metadata, &old.metadata, &path);
    let spec = new.spec.clone().unwrap_or_default();
    let old_spec = old.spec.clone().unwrap_or_default();
    errors.extend(cluster_ips_unchanged(&spec, &old_spec));
    errors.extend(load_balancer::validate_update(&spec, &old_spec));
    let health_check_changed = spec.health_check_node_port != old_spec.health_check_node_port;
    if needs_health_check(&spec) && needs_health_check(&old_spec) && health_check_changed {
        let path = FieldPath::new("spec").child("healthCheckNodePort");
        errors.push(FieldError::forbidden(&path, "field is immutable"));
    }
    errors.extend(validate(new));
    let balancer = new.status.as_ref().and_then(|s| s.load_balancer.as_ref());
    errors.extend(load_balancer_status(balancer, &spec));
    errors
}

/// kube's `ValidateLoadBalancerStatus` (status writes): ingress only on LoadBalancers, IPs
/// with their mode, hostnames that are DNS names.
fn load_balancer_status(
    status: Option<&k8s_openapi::api::core::v1::LoadBalancerStatus>,
    spec: &ServiceSpec,
) -> Vec<FieldError> {
    let path = FieldPath::new("status")
        .child("loadBalancer")
        .child("ingress");
    let ingress = status
        .and_then(|s| s.ingress.as_deref())
        .unwrap_or_default();
    if service_type(spec) != LOAD_BALANCER && !ingress.is_empty() {
        let detail = "may only be used when `spec.type` is 'LoadBalancer'";
        return vec![FieldError::forbidden(&path, detail)];
    }
    let mut errors = Vec::new();
    for (index, entry) in ingress.iter().enumerate() {
        let entry_path = path.index(index);
        let ip = entry.ip.as_deref().unwrap_or_default();
        for message in (!ip.is_empty())
            .then(|| names::ip(ip))
            .into_iter()
            .flatten()
        {
            errors.push(FieldError::invalid(&entry_path.child("ip"), ip, &message));
        }
        let mode_path = entry_path.child("ipMode");
        match (entry.ip_mode.as_deref(), ip.is_empty()) {
            (None, false) => errors.push(FieldError::required(
                &mode_path,
                "must be specified when `ip` is set",
            )),
            (Some(_), true) => errors.push(FieldError::forbidden(
                &mode_path,
                "may not be specified when `ip` is not set",
            )),
            (Some(mode), false) if !["Proxy", "VIP"].contains(&mode) => errors.push(
                FieldError::not_supported(&mode_path, mode, &["Proxy", "VIP"]),
            ),
            _ => {}
        }
        let hostname = entry.hostname.as_deref().unwrap_or_default();
        if !hostname.is_empty() {
            let hostname_path = entry_path.child("hostname");
            for message in names::dns1123_subdomain(hostname) {
                errors.push(FieldError::invalid(&hostname_path, hostname, &message));
            }
            if hostname.parse::<std::net::IpAddr>().is_ok() {
                let detail = "must be a DNS name, not an IP address";
                errors.push(FieldError::invalid(&hostname_path, hostname, detail));
            }
        }
    }
    errors
}

/// ObjectMeta with `NameIsDNS1035Label` in place of the subdomain rule.
fn validate_name(service: &Service) -> Vec<FieldError> {
    let name_path = FieldPath::new("metadata").child("name").to_string();
    let mut errors: Vec<FieldError> = validate_meta(service, true)
        .into_iter()
        .filter(|e| !(e.path == name_path && e.kind == ErrorKind::Invalid))
        .collect();
    let (name, prefix) = match (&service.metadata.name, &service.metadata.generate_name) {
        (Some(name), _) if !name.is_empty() => (name.clone(), false),
        (_, Some(generate)) => (generate.clone(), true),
        _ => return errors,
    };
    let checked = match name.strip_suffix('-') {
        Some(stem) if prefix && !stem.is_empty() => format!("{stem}a"),
        _ => name.clone(),
    };
    let path = FieldPath::new("metadata").child("name");
    for message in dns1035_label(&checked) {
        errors.push(FieldError::invalid(&path, name.as_str(), &message));
    }
    errors
}

/// IsDNS1035Label.
pub fn dns1035_label(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(names::max_len_error(63));
    }
    let bytes = value.as_bytes();
    let valid = bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !valid {
        errors.push(regex_error(
            DNS1035_LABEL_MSG,
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    errors
}

fn validate_spec(spec: &ServiceSpec) -> Vec<FieldError> {
    let path = FieldPath::new("spec");
    let kind = service_type(spec);
    let mut errors = Vec::new();
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && kind != EXTERNAL_NAME && spec.cluster_ip.as_deref() != Some(NONE) {
        errors.push(FieldError::required(&path.child("ports"), ""));
    }
    match kind {
        EXTERNAL_NAME => errors.extend(validate_external_name(spec, &path)),
        NODE_PORT | LOAD_BALANCER if spec.cluster_ip.as_deref() == Some(NONE) => {
            errors.push(FieldError::invalid(
                &path.child("clusterIPs").index(0),
                NONE,
                &format!("may not be set to 'None' for {kind} services"),
            ));
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (index, port) in ports.iter().enumerate() {
        let port_path = path.child("ports").index(index);
        errors.extend(validate_port(port, ports.len() > 1, &mut names, &port_path));
    }
    errors.extend(validate_labels(
        spec.selector.as_ref(),
        &path.child("selector"),
    ));
    errors.extend(validate_session_affinity(spec, &path));
    if !TYPES.contains(&kind) {
        errors.push(FieldError::not_supported(&path.child("type"), kind, TYPES));
    }
    if kind == CLUSTER_IP {
        for (index, port) in ports.iter().enumerate() {
            if port.node_port.is_some_and(|p| p != 0) {
                errors.push(FieldError::forbidden(
                    &path.child("ports").index(index).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    errors.extend(duplicate_ports(ports, &path));
    for (index, ip) in spec.external_ips.iter().flatten().enumerate() {
        let ip_path = path.child("externalIPs").index(index);
        let invalid = names::ip(ip);
        if invalid.is_empty() {
            errors.extend(non_special_ip(ip, &ip_path));
        }
        for message in invalid {
            errors.push(FieldError::invalid(&ip_path, ip.as_str(), &message));
        }
    }
    errors.extend(validate_traffic_policies(spec, &path));
    errors.extend(cluster_ips_related_fields(spec));
    errors
}

fn validate_external_name(spec: &ServiceSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let forbidden = "may not be set for ExternalName services";
    if spec.cluster_ips.as_ref().is_some_and(|ips| !ips.is_empty()) {
        errors.push(FieldError::forbidden(&path.child("clusterIPs"), forbidden));
    }
    if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
        errors.push(FieldError::forbidden(&path.child("ipFamilies"), forbidden));
    }
    if spec.ip_family_policy.is_some() {
        errors.push(FieldError::forbidden(
            &path.child("ipFamilyPolicy"),
            forbidden,
        ));
    }
    let name = spec.external_name.as_deref().unwrap_or_default();
    let cname = name.strip_suffix('.').unwrap_or(name);
    let name_path = path.child("externalName");
    if cname.is_empty() {
        errors.push(FieldError::required(&name_path, ""));
    }
    for message in (!cname.is_empty())
        .then(|| names::dns1123_subdomain(cname))
        .into_iter()
        .flatten()
    {
        errors.push(FieldError::invalid(&name_path, cname, &message));
    }
    errors
}

/// kube's `validateServicePort`.
fn validate_port(
    port: &ServicePort,
    require_name: bool,
    names: &mut HashSet<String>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = port.name.as_deref().unwrap_or_default();
    errors.extend(name_errors(name, require_name, &path.child("name")));
    if !name.is_empty() && !names.insert(name.to_owned()) {
        errors.push(FieldError::duplicate(&path.child("name"), name));
    }
    errors.extend(number_errors(port.port, &path.child("port")));
    errors.extend(protocol_errors(
        port.protocol.as_deref(),
        &path.child("protocol"),
    ));
    errors.extend(port_num_or_name(
        port.target_port.as_ref(),
        &path.child("targetPort"),
    ));
    errors.extend(app_protocol_errors(
        port.app_protocol.as_deref(),
        &path.child("appProtocol"),
    ));
    errors
}

/// kube's `ValidatePortNumOrName`.
pub fn port_num_or_name(port: Option<&IntOrString>, path: &FieldPath) -> Vec<FieldError> {
    match port {
        Some(IntOrString::Int(number)) => names::port_num(i64::from(*number))
            .iter()
            .map(|message| FieldError::invalid(path, *number, message))
            .collect(),
        Some(IntOrString::String(name)) => names::port_name(name)
            .iter()
            .map(|message| FieldError::invalid(path, name.as_str(), message))
            .collect(),
        None => vec![FieldError::invalid(
            path,
            0,
            &names::inclusive_range_error(1, 65535),
        )],
    }
}

fn validate_session_affinity(spec: &ServiceSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let affinity_path = path.child("sessionAffinity");
    let config_path = path.child("sessionAffinityConfig");
    match spec.session_affinity.as_deref().unwrap_or_default() {
        "" => errors.push(FieldError::required(&affinity_path, "")),
        "ClientIP" => {
            let timeout_path = config_path.child("clientIP").child("timeoutSeconds");
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            match timeout {
                None => errors.push(FieldError::required(&timeout_path, "")),
                Some(t) if t <= 0 || t > MAX_CLIENT_IP_TIMEOUT => errors.push(FieldError::invalid(
                    &timeout_path,
                    t,
                    &format!("must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}"),
                )),
                Some(_) => {}
            }
        }
        "None" => {
            if let Some(config) = &spec.session_affinity_config {
                let value = serde_json::to_value(config).unwrap_or_default();
                errors.push(FieldError::invalid(
                    &config_path,
                    value,
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errors.push(FieldError::not_supported(
            &affinity_path,
            other,
            &["ClientIP", "None"],
        )),
    }
    errors
}

/// Two ports may not share a (protocol, port) pair, nor two node ports a (protocol, nodePort).
fn duplicate_ports(ports: &[ServicePort], path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let protocol = |port: &ServicePort| port.protocol.clone().unwrap_or_default();
    let mut node_ports = BTreeSet::new();
    for (index, port) in ports.iter().enumerate() {
        let Some(node_port) = port.node_port.filter(|p| *p != 0) else {
            continue;
        };
        if !node_ports.insert((protocol(port), node_port)) {
            let node_path = path.child("ports").index(index).child("nodePort");
            errors.push(FieldError::duplicate(&node_path, node_port));
        }
    }
    let mut seen = BTreeSet::new();
    for (index, port) in ports.iter().enumerate() {
        let key = (protocol(port), port.port);
        if !seen.insert(key.clone()) {
            errors.push(FieldError::duplicate(
                &path.child("ports").index(index),
                PortKey(&key.0, key.1),
            ));
        }
    }
    errors
}

/// kube's `validateServiceExternalTrafficPolicy` and `validateServiceInternalTrafficFieldsValue`.
fn validate_traffic_policies(spec: &ServiceSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let external = spec.external_traffic_policy.as_deref().unwrap_or_default();
    let external_path = path.child("externalTrafficPolicy");
    if !is_externally_accessible(spec) {
        if !external.is_empty() {
            errors.push(FieldError::invalid(
                &external_path,
                external,
                "may only be set for externally-accessible services (type NodePort or LoadBalancer, or with externalIPs)",
            ));
        }
    } else if external.is_empty() {
        errors.push(FieldError::required(&external_path, ""));
    } else if !["Cluster", "Local"].contains(&external) {
        errors.push(FieldError::not_supported(
            &external_path,
            external,
            &["Cluster", "Local"],
        ));
    }
    let health_path = path.child("healthCheckNodePort");
    let health = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check(spec) {
        if health != 0 {
            errors.push(FieldError::invalid(
                &health_path,
                health,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if health == 0 {
        errors.push(FieldError::required(&health_path, ""));
    } else {
        for message in names::port_num(i64::from(health)) {
            errors.push(FieldError::invalid(&health_path, health, &message));
        }
    }
    let internal_path = path.child("internalTrafficPolicy");
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(service_type(spec), CLUSTER_IP | NODE_PORT | LOAD_BALANCER) => {
            errors.push(FieldError::required(&internal_path, "must be specified"))
        }
        Some(policy) if !["Cluster", "Local"].contains(&policy) => errors.push(
            FieldError::not_supported(&internal_path, policy, &["Cluster", "Local"]),
        ),
        _ => {}
    }
    if let Some(distribution) = spec
        .traffic_distribution
        .as_deref()
        .filter(|d| !TRAFFIC_DISTRIBUTIONS.contains(d))
    {
        errors.push(FieldError::not_supported(
            &path.child("trafficDistribution"),
            distribution,
            TRAFFIC_DISTRIBUTIONS,
        ));
    }
    errors
}

/// kube's `ValidateServiceClusterIPsRelatedFields`, for one family: `clusterIPs` follows
/// `clusterIP`, holds IPs (or a lone `None`), the families and policy are known values.
pub fn cluster_ips_related_fields(spec: &ServiceSpec) -> Vec<FieldError> {
    if service_type(spec) == EXTERNAL_NAME {
        return Vec::new();
    }
    let mut errors = Vec::new();
    let path = FieldPath::new("spec");
    let ips_path = path.child("clusterIPs");
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    match spec.cluster_ip.as_deref().unwrap_or_default() {
        "" if !ips.is_empty() => errors.push(FieldError::invalid(
            &ips_path,
            GoStrings(ips.clone()),
            "must be empty when `clusterIP` is not specified",
        )),
        "" => {}
        _ if ips.is_empty() => errors.push(FieldError::required(&ips_path, "")),
        ip if ips[0] != ip => errors.push(FieldError::invalid(
            &ips_path,
            GoStrings(ips.clone()),
            "first value must match `clusterIP`",
        )),
        _ => {}
    }
    let mut seen = HashSet::new();
    for (index, family) in spec.ip_families.iter().flatten().enumerate() {
        let family_path = path.child("ipFamilies").index(index);
        if !["IPv4", "IPv6"].contains(&family.as_str()) {
            errors.push(FieldError::not_supported(
                &family_path,
                family.as_str(),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(family) {
            errors.push(FieldError::duplicate(&family_path, family.as_str()));
        }
    }
    let policies = ["PreferDualStack", "RequireDualStack", "SingleStack"];
    if let Some(policy) = spec
        .ip_family_policy
        .as_deref()
        .filter(|p| !policies.contains(p))
    {
        errors.push(FieldError::not_supported(
            &path.child("ipFamilyPolicy"),
            policy,
            &policies,
        ));
    }
    for (index, ip) in ips.iter().enumerate() {
        if index == 0 && ip == NONE {
            if ips.len() > 1 {
                errors.push(FieldError::invalid(
                    &ips_path,
                    GoStrings(ips.clone()),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        for message in names::ip(ip) {
            errors.push(FieldError::invalid(
                &ips_path.index(index),
                ip.as_str(),
                &message,
            ));
        }
    }
    if ips.len() > 2 {
        errors.push(FieldError::invalid(
            &ips_path,
            GoStrings(ips),
            "may only hold up to 2 values",
        ));
    }
    errors
}

/// kube's `validateUpgradeDowngradeClusterIPs`: the primary cluster IP never changes but to
/// or from ExternalName.
fn cluster_ips_unchanged(new: &ServiceSpec, old: &ServiceSpec) -> Vec<FieldError> {
    if service_type(new) == EXTERNAL_NAME || service_type(old) == EXTERNAL_NAME {
        return Vec::new();
    }
    let headless = |spec: &ServiceSpec| spec.cluster_ip.as_deref() == Some(NONE);
    if headless(new) && headless(old) {
        return Vec::new();
    }
    let (new_ips, old_ips) = (
        new.cluster_ips.clone().unwrap_or_default(),
        old.cluster_ips.clone().unwrap_or_default(),
    );
    let path = FieldPath::new("spec").child("clusterIPs");
    let changed = |index: usize| {
        FieldError::invalid(
            &path.index(index),
            GoStrings(new_ips.clone()),
            "may not change once set",
        )
    };
    if new_ips.len() == old_ips.len() {
        return (0..old_ips.len())
            .filter(|i| old_ips[*i] != new_ips[*i])
            .map(changed)
            .collect();
    }
    if new_ips.is_empty() {
        return vec![FieldError::invalid(
            &path.index(0),
            GoStrings(new_ips.clone()),
            "primary clusterIP can not be unset",
        )];
    }
    if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        return vec![changed(0)];
    }
    Vec::new()
}

/// Rows of kube's `TestValidateServiceCreate` and `TestValidateServiceUpdate`, with the
/// messages kube gives.
#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ClientIPConfig, SessionAffinityConfig};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn port(name: &str, number: i32) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            protocol: Some("TCP".into()),
            port: number,
            target_port: Some(IntOrString::Int(number)),
            ..Default::default()
        }
    }

    /// kube's `makeValidService`, defaulted as the API server stores it.
    fn valid() -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("valid".into()),
                namespace: Some("default".into()),
                resource_version: Some("1".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("key".to_owned(), "val".to_owned())].into()),
                session_affinity: Some("None".into()),
                type_: Some(CLUSTER_IP.into()),
                ports: Some(vec![port("p", 8675)]),
                cluster_ip: Some("1.2.3.4".into()),
                cluster_ips: Some(vec!["1.2.3.4".into()]),
                ip_families: Some(vec!["IPv4".into()]),
                ip_family_policy: Some("SingleStack".into()),
                internal_traffic_policy: Some("Cluster".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn with(change: impl FnOnce(&mut ServiceSpec)) -> Service {
        let mut service = valid();
        change(service.spec.as_mut().unwrap());
        service
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn create_rows() {
        let rows: Vec<(&str, Service, Vec<&str>)> = vec![
            ("valid", valid(), vec![]),
            ("missing ports", with(|s| s.ports = None), vec!["spec.ports: Required value"]),
            ("headless without ports", with(|s| {
                s.ports = None;
                s.cluster_ip = Some(NONE.into());
                s.cluster_ips = Some(vec![NONE.into()]);
            }), vec![]),
            ("duplicate port", with(|s| s.ports = Some(vec![port("p", 80), port("q", 80)])),
                vec![r#"spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}"#]),
            ("missing port name with two ports", with(|s| s.ports = Some(vec![port("p", 80), port("", 81)])),
                vec!["spec.ports[1].name: Required value"]),
            ("duplicate port name", with(|s| s.ports = Some(vec![port("p", 80), port("p", 81)])),
                vec![r#"spec.ports[1].name: Duplicate value: "p""#]),
            ("port out of range", with(|s| s.ports.as_mut().unwrap()[0].port = 65536),
                vec!["spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive"]),
            ("bad protocol", with(|s| s.ports.as_mut().unwrap()[0].protocol = Some("INVALID".into())),
                vec![r#"spec.ports[0].protocol: Unsupported value: "INVALID": supported values: "SCTP", "TCP", "UDP""#]),
            ("bad target port name", with(|s| s.ports.as_mut().unwrap()[0].target_port = Some(IntOrString::String("a_b".into()))),
                vec![r#"spec.ports[0].targetPort: Invalid value: "a_b": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#]),
            ("named target port", with(|s| s.ports.as_mut().unwrap()[0].target_port = Some(IntOrString::String("http".into()))), vec![]),
            ("bad type", with(|s| s.type_ = Some("Balanced".into())),
                vec![r#"spec.type: Unsupported value: "Balanced": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#]),
            ("bad session affinity", with(|s| s.session_affinity = Some("Sticky".into())),
                vec![r#"spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None""#]),
            ("client IP timeout too long", with(|s| {
                s.session_affinity = Some("ClientIP".into());
                s.session_affinity_config = Some(SessionAffinityConfig { client_ip: Some(ClientIPConfig { timeout_seconds: Some(86401) }) });
            }), vec!["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400"]),
            ("node port on ClusterIP", with(|s| s.ports.as_mut().unwrap()[0].node_port = Some(30001)),
                vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
            ("external traffic policy on ClusterIP", with(|s| s.external_traffic_policy = Some("Local".into())),
                vec![r#"spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services (type NodePort or LoadBalancer, or with externalIPs)"#]),
            ("NodePort without external traffic policy", with(|s| s.type_ = Some(NODE_PORT.into())),
                vec!["spec.externalTrafficPolicy: Required value"]),
            ("valid trafficDistribution field", with(|s| s.traffic_distribution = Some("PreferClose".into())), vec![]),
            ("invalid trafficDistribution field", with(|s| s.traffic_distribution = Some("abc".into())),
                vec![r#"spec.trafficDistribution: Unsupported value: "abc": supported values: "PreferClose""#]),
            ("loopback externalIP", with(|s| {
                s.external_ips = Some(vec!["127.0.0.1".into()]);
                s.external_traffic_policy = Some("Cluster".into());
            }),
                vec![r#"spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#]),
            ("nagative healthCheckNodePort field", with(|s| {
                s.type_ = Some(LOAD_BALANCER.into());
                s.allocate_load_balancer_node_ports = Some(true);
                s.external_traffic_policy = Some("Local".into());
                s.health_check_node_port = Some(-1);
            }), vec!["spec.healthCheckNodePort: Invalid value: -1: must be between 1 and 65535, inclusive"]),
            ("valid healthCheckNodePort field", with(|s| {
                s.type_ = Some(LOAD_BALANCER.into());
                s.allocate_load_balancer_node_ports = Some(true);
                s.external_traffic_policy = Some("Local".into());
                s.health_check_node_port = Some(31100);
            }), vec![]),
            ("headless NodePort", with(|s| {
                s.type_ = Some(NODE_PORT.into());
                s.external_traffic_policy = Some("Cluster".into());
                s.cluster_ip = Some(NONE.into());
                s.cluster_ips = Some(vec![NONE.into()]);
            }), vec![r#"spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services"#]),
            ("duplicate node ports", with(|s| {
                s.type_ = Some(NODE_PORT.into());
                s.external_traffic_policy = Some("Cluster".into());
                let ports = s.ports.insert(vec![port("p", 80), port("q", 81)]);
                ports[0].node_port = Some(30001);
                ports[1].node_port = Some(30001);
            }), vec!["spec.ports[1].nodePort: Duplicate value: 30001"]),
            ("ExternalName with a bad name", with(|s| {
                s.type_ = Some(EXTERNAL_NAME.into());
                (s.cluster_ip, s.cluster_ips, s.ip_families, s.ip_family_policy) = (None, None, None, None);
                s.external_name = Some("foo_bar.com".into());
            }), vec![r#"spec.externalName: Invalid value: "foo_bar.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#]),
            ("ExternalName with a trailing dot", with(|s| {
                s.type_ = Some(EXTERNAL_NAME.into());
                (s.cluster_ip, s.cluster_ips, s.ip_families, s.ip_family_policy) = (None, None, None, None);
                s.external_name = Some("foo.bar.example.com.".into());
            }), vec![]),
            ("ExternalName with a cluster IP", with(|s| {
                s.type_ = Some(EXTERNAL_NAME.into());
                s.external_name = Some("example.com".into());
            }), vec![
                "spec.clusterIPs: Forbidden: may not be set for ExternalName services",
                "spec.ipFamilies: Forbidden: may not be set for ExternalName services",
                "spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services",
            ]),
            ("clusterIPs not matching", with(|s| s.cluster_ips = Some(vec!["1.2.3.5".into()])),
                vec![r#"spec.clusterIPs: Invalid value: []string{"1.2.3.5"}: first value must match `clusterIP`"#]),
            ("bad cluster IP", with(|s| {
                s.cluster_ip = Some("1.2.3.4.5".into());
                s.cluster_ips = Some(vec!["1.2.3.4.5".into()]);
            }), vec![r#"spec.clusterIPs[0]: Invalid value: "1.2.3.4.5": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#]),
            ("bad selector", with(|s| s.selector = Some([("NoUppercaseOrSpecialCharsLike=Equals".to_owned(), "b".to_owned())].into())),
                vec![r#"spec.selector: Invalid value: "NoUppercaseOrSpecialCharsLike=Equals": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#]),
        ];
        for (name, service, expected) in rows {
            assert_eq!(messages(validate(&service)), expected, "{name}");
        }
    }

    #[test]
    fn names_are_dns_1035_labels() {
        let mut service = valid();
        service.metadata.name = Some("1-abc".into());
        assert_eq!(
            messages(validate(&service)),
            [
                r#"metadata.name: Invalid value: "1-abc": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#
            ]
        );
    }

    #[test]
    fn topology_annotations_must_agree() {
        let annotated = |mode: &str, hints: &str| {
            let mut service = valid();
            service.metadata.annotations = Some(
                [
                    (TOPOLOGY_MODE.to_owned(), mode.to_owned()),
                    (TOPOLOGY_AWARE_HINTS.to_owned(), hints.to_owned()),
                ]
                .into(),
            );
            messages(validate(&service))
        };
        assert!(annotated("Auto", "Auto").is_empty());
        assert_eq!(
            annotated("Auto", "Disabled"),
            [
                r#"metadata.annotations[service.kubernetes.io/topology-mode]: Invalid value: "Auto": must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified"#
            ]
        );
    }

    #[test]
    fn health_check_node_port_is_immutable() {
        let local = |port: i32| {
            with(|s| {
                s.type_ = Some(LOAD_BALANCER.into());
                s.allocate_load_balancer_node_ports = Some(true);
                s.external_traffic_policy = Some("Local".into());
                s.health_check_node_port = Some(port);
            })
        };
        assert!(validate_update(&local(31100), &local(31100)).is_empty());
        assert_eq!(
            messages(validate_update(&local(31101), &local(31100))),
            ["spec.healthCheckNodePort: Forbidden: field is immutable"]
        );
    }

    #[test]
    fn update_rows() {
        let changed = with(|s| {
            s.cluster_ip = Some("1.2.3.5".into());
            s.cluster_ips = Some(vec!["1.2.3.5".into()]);
        });
        assert_eq!(
            messages(validate_update(&changed, &valid())),
            [r#"spec.clusterIPs[0]: Invalid value: []string{"1.2.3.5"}: may not change once set"#]
        );
        let to_external = with(|s| {
            s.type_ = Some(EXTERNAL_NAME.into());
            (
                s.cluster_ip,
                s.cluster_ips,
                s.ip_families,
                s.ip_family_policy,
            ) = (None, None, None, None);
            (s.internal_traffic_policy, s.selector) = (None, None);
            s.external_name = Some("example.com".into());
        });
        assert!(validate_update(&to_external, &valid()).is_empty());
        let to_node_port = with(|s| {
            s.type_ = Some(NODE_PORT.into());
            s.external_traffic_policy = Some("Cluster".into());
            s.ports.as_mut().unwrap()[0].node_port = Some(30001);
        });
        assert!(validate_update(&to_node_port, &valid()).is_empty());
        let mut balanced = valid();
        balanced.status = Some(k8s_openapi::api::core::v1::ServiceStatus {
            load_balancer: Some(k8s_openapi::api::core::v1::LoadBalancerStatus {
                ingress: Some(vec![Default::default()]),
            }),
            ..Default::default()
        });
        assert_eq!(
            messages(validate_update(&balanced, &valid())),
            ["status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"]
        );
    }
}
