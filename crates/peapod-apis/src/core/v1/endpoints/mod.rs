//! Endpoints: served as kube-apiserver serves core/v1 endpoints (pkg/registry/core/endpoint):
//! ports default to TCP, validated as kube's `ValidateEndpoints` (addresses are IPs outside
//! the special ranges, ports numbered and named as kube requires), printed as kubectl prints
//! them (NAME ENDPOINTS AGE, three endpoints then `+ N more...`).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints};
use peapod_api::validation::{names, FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use super::ports::{app_protocol_errors, name_errors, number_errors, protocol_errors};

pub fn kind() -> Kind {
    Kind::of(EndpointsStrategy).short_names(&["ep"])
}

pub struct EndpointsStrategy;

impl KindStrategy for EndpointsStrategy {
    type Object = Endpoints;

    /// core/v1's SetDefaults_Endpoints.
    fn default(&self, endpoints: &mut Endpoints) {
        let ports = endpoints
            .subsets
            .iter_mut()
            .flatten()
            .flat_map(|s| s.ports.iter_mut().flatten());
        for port in ports {
            if port.protocol.as_deref().unwrap_or_default().is_empty() {
                port.protocol = Some("TCP".into());
            }
        }
    }

    fn validate(&self, endpoints: &Endpoints) -> Vec<FieldError> {
        let mut errors = validate_meta(endpoints, true);
        let path = FieldPath::new("subsets");
        for (index, subset) in endpoints.subsets.iter().flatten().enumerate() {
            let subset_path = path.index(index);
            let addresses = subset.addresses.as_deref().unwrap_or_default();
            let not_ready = subset.not_ready_addresses.as_deref().unwrap_or_default();
            if addresses.is_empty() && not_ready.is_empty() {
                errors.push(FieldError::required(
                    &subset_path,
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            for (field, list) in [("addresses", addresses), ("notReadyAddresses", not_ready)] {
                for (at, address) in list.iter().enumerate() {
                    errors.extend(validate_address(
                        address,
                        &subset_path.child(field).index(at),
                    ));
                }
            }
            let ports = subset.ports.as_deref().unwrap_or_default();
            for (at, port) in ports.iter().enumerate() {
                let port_path = subset_path.child("ports").index(at);
                errors.extend(validate_port(port, ports.len() > 1, &port_path));
            }
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Endpoints", "string", "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service."),
            AGE,
        ]
    }

    fn cells(&self, endpoints: &Endpoints) -> Vec<Value> {
        vec![
            name_cell(&endpoints.metadata),
            json!(format_endpoints(endpoints)),
            age_cell(&endpoints.metadata),
        ]
    }
}

fn validate_address(address: &EndpointAddress, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let ip_path = path.child("ip");
    for message in names::ip(&address.ip) {
        errors.push(FieldError::invalid(&ip_path, address.ip.as_str(), &message));
    }
    if let Some(hostname) = address.hostname.as_deref().filter(|h| !h.is_empty()) {
        for message in names::dns1123_label(hostname) {
            errors.push(FieldError::invalid(
                &path.child("hostname"),
                hostname,
                &message,
            ));
        }
    }
    if let Some(node) = &address.node_name {
        for message in names::dns1123_subdomain(node) {
            errors.push(FieldError::invalid(
                &path.child("nodeName"),
                node.as_str(),
                &message,
            ));
        }
    }
    errors.extend(non_special_ip(&address.ip, &ip_path));
    errors
}

/// kube's `ValidateNonSpecialIP`: no unspecified, loopback or link-local address.
pub fn non_special_ip(text: &str, path: &FieldPath) -> Vec<FieldError> {
    let Ok(ip) = text.parse::<IpAddr>() else {
        return vec![FieldError::invalid(
            path,
            text,
            "must be a valid IP address",
        )];
    };
    let link_local_multicast = match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    };
    let link_local_unicast = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    };
    let message = if ip.is_unspecified() {
        format!("may not be unspecified ({text})")
    } else if ip.is_loopback() {
        "may not be in the loopback range (127.0.0.0/8, ::1/128)".into()
    } else if link_local_multicast {
        "may not be in the link-local range (224.0.0.0/24, ff02::/10)".into()
    } else if link_local_unicast {
        "may not be in the link-local range (169.254.0.0/16, fe80::/10)".into()
    } else {
        return Vec::new();
    };
    vec![FieldError::invalid(path, text, &message)]
}

fn validate_port(port: &EndpointPort, require_name: bool, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name = port.name.as_deref().unwrap_or_default();
    errors.extend(name_errors(name, require_name, &path.child("name")));
    errors.extend(number_errors(port.port, &path.child("port")));
    errors.extend(protocol_errors(
        port.protocol.as_deref(),
        &path.child("protocol"),
    ));
    errors.extend(app_protocol_errors(
        port.app_protocol.as_deref(),
        &path.child("appProtocol"),
    ));
    errors
}

/// kubectl's `formatEndpoints`: `ip:port` for each port of each subset, three at most.
fn format_endpoints(endpoints: &Endpoints) -> String {
    const MAX: usize = 3;
    let subsets = endpoints.subsets.as_deref().unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".into();
    }
    let (mut list, mut count) = (Vec::new(), 0);
    for subset in subsets {
        let addresses = subset.addresses.as_deref().unwrap_or_default();
        let ports = subset.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| a.ip.clone()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| host_port(&a.ip, port.port)));
        }
    }
    if list.len() > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(","), count - MAX);
    }
    list.join(",")
}

/// Go's `net.JoinHostPort`.
fn host_port(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::EndpointSubset;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn endpoints(ips: &[&str], ports: &[(&str, i32)]) -> Endpoints {
        Endpoints {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            subsets: Some(vec![EndpointSubset {
                addresses: Some(
                    ips.iter()
                        .map(|ip| EndpointAddress {
                            ip: ip.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ports: Some(
                    ports
                        .iter()
                        .map(|(name, port)| EndpointPort {
                            name: Some(name.to_string()),
                            port: *port,
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }]),
        }
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn addresses_and_ports_are_checked() {
        let valid = endpoints(&["10.42.0.5", "fd00::5"], &[("http", 80), ("https", 443)]);
        assert!(EndpointsStrategy.validate(&valid).is_empty());
        let bad = endpoints(
            &["127.0.0.1", "nope", "169.254.1.1"],
            &[("", 0), ("b_c", 80)],
        );
        assert_eq!(
            messages(EndpointsStrategy.validate(&bad)),
            [
                r#"subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                r#"subsets[0].addresses[1].ip: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
                r#"subsets[0].addresses[1].ip: Invalid value: "nope": must be a valid IP address"#,
                r#"subsets[0].addresses[2].ip: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
                "subsets[0].ports[0].name: Required value",
                "subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                r#"subsets[0].ports[1].name: Invalid value: "b_c": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
            ]
        );
        let mut empty = valid.clone();
        empty.subsets.as_mut().unwrap()[0].addresses = None;
        assert_eq!(
            messages(EndpointsStrategy.validate(&empty)),
            ["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]
        );
    }

    #[test]
    fn columns_show_three_endpoints_then_a_count() {
        assert_eq!(
            format_endpoints(&endpoints(&["10.0.0.1"], &[("", 80)])),
            "10.0.0.1:80"
        );
        let many = endpoints(
            &["10.0.0.1", "10.0.0.2", "fd00::3"],
            &[("a", 80), ("b", 81)],
        );
        assert_eq!(
            format_endpoints(&many),
            "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more..."
        );
        let headless = endpoints(&["10.0.0.1"], &[]);
        assert_eq!(format_endpoints(&headless), "10.0.0.1");
        let mut none = headless;
        none.subsets = None;
        assert_eq!(format_endpoints(&none), "<none>");
    }
}
