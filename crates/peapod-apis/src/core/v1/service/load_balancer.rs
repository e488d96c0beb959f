//! kube's validation of a Service's LoadBalancer fields (ValidateService,
//! validateLoadBalancerClassField): `loadBalancerSourceRanges` (or its older annotation) as
//! CIDRs, `allocateLoadBalancerNodePorts` and `loadBalancerClass` only on LoadBalancers, the
//! class a qualified name that does not change while the Service stays a LoadBalancer.

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use peapod_api::validation::names;
use peapod_api::validation::{FieldError, FieldPath};

use super::{service_type, LOAD_BALANCER};

/// kube's `AnnotationLoadBalancerSourceRangesKey`, read when the field is empty.
pub const SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
const ONLY_LOAD_BALANCER: &str = "may only be used when `type` is 'LoadBalancer'";
const CIDR_MESSAGE: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// The checks of a Service being created or updated, in kube's order.
pub fn validate(service: &Service) -> Vec<FieldError> {
    let spec = service.spec.clone().unwrap_or_default();
    let mut errors = source_ranges(service, &spec);
    let spec_path = FieldPath::new("spec");
    let is_load_balancer = service_type(&spec) == LOAD_BALANCER;
    match (is_load_balancer, spec.allocate_load_balancer_node_ports) {
        (false, Some(_)) => errors.push(FieldError::forbidden(
            &spec_path.child("allocateLoadBalancerNodePorts"),
            ONLY_LOAD_BALANCER,
        )),
        // kube's path lacks `spec` here.
        (true, None) => errors.push(FieldError::required(
            &FieldPath::new("allocateLoadBalancerNodePorts"),
            "",
        )),
        _ => {}
    }
    let class_path = spec_path.child("loadBalancerClass");
    match (is_load_balancer, spec.load_balancer_class.as_deref()) {
        (true, Some(class)) => errors.extend(
            names::qualified_name(class)
                .iter()
                .map(|message| FieldError::invalid(&class_path, class, message)),
        ),
        (false, Some(_)) => errors.push(FieldError::forbidden(&class_path, ONLY_LOAD_BALANCER)),
        _ => {}
    }
    errors
}

/// A LoadBalancer that stays one keeps its class.
pub fn validate_update(new: &ServiceSpec, old: &ServiceSpec) -> Vec<FieldError> {
    let both = service_type(new) == LOAD_BALANCER && service_type(old) == LOAD_BALANCER;
    if !both || new.load_balancer_class == old.load_balancer_class {
        return Vec::new();
    }
    vec![FieldError::invalid(
        &FieldPath::new("spec").child("loadBalancerClass"),
        new.load_balancer_class.as_deref(),
        "may not change once set",
    )]
}

/// The field's ranges (kube's path spells it `LoadBalancerSourceRanges`), else the
/// annotation's comma-separated ones; space padding is allowed, as in kube.
fn source_ranges(service: &Service, spec: &ServiceSpec) -> Vec<FieldError> {
    let is_load_balancer = service_type(spec) == LOAD_BALANCER;
    let ranges = spec
        .load_balancer_source_ranges
        .as_deref()
        .unwrap_or_default();
    let annotation = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SOURCE_RANGES_ANNOTATION));
    let mut errors = Vec::new();
    if !ranges.is_empty() {
        let path = FieldPath::new("spec").child("LoadBalancerSourceRanges");
        if !is_load_balancer {
            errors.push(FieldError::forbidden(&path, ONLY_LOAD_BALANCER));
        }
        for (index, range) in ranges.iter().enumerate() {
            errors.extend(cidr_errors(range.trim(), &path.index(index)));
        }
    } else if let Some(value) = annotation {
        let path = FieldPath::new("metadata")
            .child("annotations")
            .key(SOURCE_RANGES_ANNOTATION);
        if !is_load_balancer {
            errors.push(FieldError::forbidden(&path, ONLY_LOAD_BALANCER));
        }
        let value = value.trim();
        for range in value.split(',').filter(|_| !value.is_empty()) {
            errors.extend(cidr_errors(range.trim(), &path));
        }
    }
    errors
}

/// kube's `IsValidCIDR` without strict parsing (netutils.ParseCIDRSloppy): host bits and
/// leading zeros are accepted.
fn cidr_errors(value: &str, path: &FieldPath) -> Vec<FieldError> {
    if is_sloppy_cidr(value) {
        return Vec::new();
    }
    vec![FieldError::invalid(path, value, CIDR_MESSAGE)]
}

fn is_sloppy_cidr(value: &str) -> bool {
    let Some((address, prefix)) = value.split_once('/') else {
        return false;
    };
    let bits = match sloppy_ip(address) {
        Some(IpAddr::V4(_)) => 32,
        Some(IpAddr::V6(_)) => 128,
        None => return false,
    };
    !prefix.is_empty()
        && prefix.len() <= 3
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && prefix.parse::<u32>().is_ok_and(|p| p <= bits)
}

/// netutils.ParseIPSloppy: IPv4 octets may have leading zeros (read as decimal).
fn sloppy_ip(value: &str) -> Option<IpAddr> {
    if value.contains(':') {
        return value.parse().ok();
    }
    let octets: Vec<u8> = value
        .split('.')
        .map(|octet| {
            let digits = !octet.is_empty() && octet.len() <= 3;
            let decimal = octet.bytes().all(|b| b.is_ascii_digit());
            (digits && decimal)
                .then(|| octet.parse::<u8>().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    let octets: [u8; 4] = octets.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

/// Rows of kube's `TestValidateServiceCreate` and `TestValidateServiceUpdate` for these
/// fields, with the messages kube gives.
#[cfg(test)]
mod tests {
    use super::*;

    fn service(type_: &str, change: impl FnOnce(&mut Service)) -> Service {
        let mut service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "valid", "namespace": "default", "annotations": {}},
            "spec": {"type": type_},
        }))
        .unwrap();
        if type_ == LOAD_BALANCER {
            service
                .spec
                .as_mut()
                .unwrap()
                .allocate_load_balancer_node_ports = Some(true);
        }
        change(&mut service);
        service
    }

    fn spec(service: &mut Service) -> &mut ServiceSpec {
        service.spec.as_mut().unwrap()
    }

    fn ranges(values: &[&str]) -> Option<Vec<String>> {
        Some(values.iter().map(|v| v.to_string()).collect())
    }

    fn annotate(service: &mut Service, value: &str) {
        let annotations = service.metadata.annotations.as_mut().unwrap();
        annotations.insert(SOURCE_RANGES_ANNOTATION.into(), value.into());
    }

    fn messages(service: &Service) -> Vec<String> {
        validate(service).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn create_rows() {
        let annotation =
            "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]";
        let rows: Vec<(&str, Service, Vec<String>)> = vec![
            ("valid LoadBalancer source range annotation",
                service(LOAD_BALANCER, |s| annotate(s, "1.2.3.4/8,  5.6.7.8/16")), vec![]),
            ("empty LoadBalancer source range annotation",
                service(LOAD_BALANCER, |s| annotate(s, "")), vec![]),
            ("invalid LoadBalancer source range annotation (hostname)",
                service("ClusterIP", |s| annotate(s, "foo.bar")), vec![
                format!("{annotation}: Forbidden: may only be used when `type` is 'LoadBalancer'"),
                format!(r#"{annotation}: Invalid value: "foo.bar": {CIDR_MESSAGE}"#),
            ]),
            ("invalid LoadBalancer source range annotation (invalid CIDR)",
                service(LOAD_BALANCER, |s| annotate(s, "1.2.3.4/33")),
                vec![format!(r#"{annotation}: Invalid value: "1.2.3.4/33": {CIDR_MESSAGE}"#)]),
            ("invalid source range for non LoadBalancer type service",
                service("ClusterIP", |s| spec(s).load_balancer_source_ranges = ranges(&["1.2.3.4/8", "5.6.7.8/16"])),
                vec!["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'".into()]),
            ("valid LoadBalancer source range",
                service(LOAD_BALANCER, |s| spec(s).load_balancer_source_ranges = ranges(&["1.2.3.4/8", "005.6.7.8/016"])), vec![]),
            ("empty LoadBalancer source range",
                service(LOAD_BALANCER, |s| spec(s).load_balancer_source_ranges = ranges(&["   "])),
                vec![format!(r#"spec.LoadBalancerSourceRanges[0]: Invalid value: "": {CIDR_MESSAGE}"#)]),
            ("invalid LoadBalancer source range",
                service(LOAD_BALANCER, |s| spec(s).load_balancer_source_ranges = ranges(&["10.0.0.0/8", "foo.bar"])),
                vec![format!(r#"spec.LoadBalancerSourceRanges[1]: Invalid value: "foo.bar": {CIDR_MESSAGE}"#)]),
            ("the field wins over the annotation",
                service(LOAD_BALANCER, |s| {
                    annotate(s, "foo.bar");
                    spec(s).load_balancer_source_ranges = ranges(&["10.0.0.0/8"]);
                }), vec![]),
            ("valid LoadBalancer class",
                service(LOAD_BALANCER, |s| spec(s).load_balancer_class = Some("test.com/test-load-balancer-class".into())), vec![]),
            ("invalid LoadBalancer class",
                service(LOAD_BALANCER, |s| spec(s).load_balancer_class = Some("Bad/Class".into())),
                vec![r#"spec.loadBalancerClass: Invalid value: "Bad/Class": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#.into()]),
            ("invalid setting LoadBalancer class on NodePort",
                service("NodePort", |s| spec(s).load_balancer_class = Some("test.com/test-load-balancer-class".into())),
                vec!["spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'".into()]),
            ("allocateLoadBalancerNodePorts on ClusterIP",
                service("ClusterIP", |s| spec(s).allocate_load_balancer_node_ports = Some(true)),
                vec!["spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'".into()]),
            ("LoadBalancer without allocateLoadBalancerNodePorts",
                service(LOAD_BALANCER, |s| spec(s).allocate_load_balancer_node_ports = None),
                vec!["allocateLoadBalancerNodePorts: Required value".into()]),
        ];
        for (name, service, expected) in rows {
            assert_eq!(messages(&service), expected, "{name}");
        }
    }

    #[test]
    fn update_rows() {
        let class = |type_: &str, class: Option<&str>| {
            service(type_, |s| {
                spec(s).load_balancer_class = class.map(Into::into)
            })
            .spec
            .unwrap()
        };
        let path = "spec.loadBalancerClass: Invalid value:";
        let rows = [
            (
                "update LoadBalancer class",
                class(LOAD_BALANCER, Some("a.com/a")),
                class(LOAD_BALANCER, Some("b.com/b")),
                vec![format!(r#"{path} "b.com/b": may not change once set"#)],
            ),
            (
                "set LoadBalancer class on an existing LoadBalancer",
                class(LOAD_BALANCER, None),
                class(LOAD_BALANCER, Some("b.com/b")),
                vec![format!(r#"{path} "b.com/b": may not change once set"#)],
            ),
            (
                "unset LoadBalancer class",
                class(LOAD_BALANCER, Some("a.com/a")),
                class(LOAD_BALANCER, None),
                vec![format!("{path} null: may not change once set")],
            ),
            (
                "set LoadBalancer class while becoming a LoadBalancer",
                class("ClusterIP", None),
                class(LOAD_BALANCER, Some("b.com/b")),
                vec![],
            ),
            (
                "drop LoadBalancer class while leaving LoadBalancer",
                class(LOAD_BALANCER, Some("a.com/a")),
                class("NodePort", None),
                vec![],
            ),
        ];
        for (name, old, new, expected) in rows {
            let found: Vec<String> = validate_update(&new, &old)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(found, expected, "{name}");
        }
    }

    #[test]
    fn cidrs_are_parsed_as_sloppily_as_kube_parses_them() {
        for valid in ["10.0.0.1/24", "010.0.0.0/08", "0.0.0.0/0", "2001:db8::/64"] {
            assert!(is_sloppy_cidr(valid), "{valid}");
        }
        for invalid in [
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0/8",
            "1.2.3.4/33",
            "::/129",
            "a/8",
            "1.2.3.4/+8",
        ] {
            assert!(!is_sloppy_cidr(invalid), "{invalid}");
        }
    }
}
