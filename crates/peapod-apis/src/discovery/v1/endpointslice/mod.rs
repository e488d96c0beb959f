//! discovery.k8s.io/v1 EndpointSlice: served as kube-apiserver serves endpointslices
//! (pkg/registry/discovery/endpointslice): ports default to TCP and an empty name, validated
//! as kube's `ValidateEndpointSlice` (addresses of the slice's type, 1000 endpoints of 100
//! addresses at most, unique port names, an immutable addressType), printed as kubectl prints
//! them (NAME ADDRESSTYPE PORTS ENDPOINTS AGE).

use std::collections::HashSet;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use peapod_api::validation::{names, FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use crate::core::v1::endpoints::non_special_ip;
use crate::core::v1::ports::{app_protocol_errors, protocol_errors};

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 100;

pub fn kind() -> Kind {
    Kind::of(EndpointSliceStrategy)
}

pub struct EndpointSliceStrategy;

impl KindStrategy for EndpointSliceStrategy {
    type Object = EndpointSlice;

    /// discovery/v1's SetDefaults_EndpointPort.
    fn default(&self, slice: &mut EndpointSlice) {
        for port in slice.ports.iter_mut().flatten() {
            port.name.get_or_insert_with(String::new);
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
    }

    fn validate(&self, slice: &EndpointSlice) -> Vec<FieldError> {
        let mut errors = validate_meta(slice, true);
        let type_path = FieldPath::new("addressType");
        match slice.address_type.as_str() {
            "" => errors.push(FieldError::required(&type_path, "")),
            known if ADDRESS_TYPES.contains(&known) => {}
            other => errors.push(FieldError::not_supported(&type_path, other, ADDRESS_TYPES)),
        }
        errors.extend(validate_endpoints(&slice.endpoints, &slice.address_type));
        errors.extend(validate_ports(slice.ports.as_deref().unwrap_or_default()));
        errors
    }

    fn validate_update(&self, new: &EndpointSlice, old: &EndpointSlice) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        errors.extend(peapod_api::validation::meta::validate_object_meta_update(
            &new.metadata,
            &old.metadata,
            &FieldPath::new("metadata"),
        ));
        if new.address_type != old.address_type {
            errors.push(FieldError::invalid(
                &FieldPath::new("addressType"),
                new.address_type.as_str(),
                "field is immutable",
            ));
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("AddressType", "string", "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type."),
            Column::new("Ports", "string", "ports specifies the list of network ports exposed by each endpoint in this slice."),
            Column::new("Endpoints", "string", "endpoints is a list of unique endpoints in this slice."),
            AGE,
        ]
    }

    fn cells(&self, slice: &EndpointSlice) -> Vec<Value> {
        vec![
            name_cell(&slice.metadata),
            json!(slice.address_type),
            json!(format_ports(slice.ports.as_deref().unwrap_or_default())),
            json!(format_endpoints(&slice.endpoints)),
            age_cell(&slice.metadata),
        ]
    }
}

fn validate_endpoints(endpoints: &[Endpoint], address_type: &str) -> Vec<FieldError> {
    let path = FieldPath::new("endpoints");
    if endpoints.len() > MAX_ENDPOINTS {
        return vec![FieldError::too_many(&path, endpoints.len(), MAX_ENDPOINTS)];
    }
    let mut errors = Vec::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let endpoint_path = path.index(index);
        let addresses_path = endpoint_path.child("addresses");
        if endpoint.addresses.is_empty() {
            errors.push(FieldError::required(
                &addresses_path,
                "must contain at least 1 address",
            ));
        } else if endpoint.addresses.len() > MAX_ADDRESSES {
            errors.push(FieldError::too_many(
                &addresses_path,
                endpoint.addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (at, address) in endpoint.addresses.iter().enumerate() {
            errors.extend(validate_address(
                address,
                address_type,
                &addresses_path.index(at),
            ));
        }
        if let Some(node) = &endpoint.node_name {
            for message in names::dns1123_subdomain(node) {
                errors.push(FieldError::invalid(
                    &endpoint_path.child("nodeName"),
                    node.as_str(),
                    &message,
                ));
            }
        }
        if let Some(hostname) = &endpoint.hostname {
            for message in names::dns1123_label(hostname) {
                errors.push(FieldError::invalid(
                    &endpoint_path.child("hostname"),
                    hostname.as_str(),
                    &message,
                ));
            }
        }
    }
    errors
}

fn validate_address(address: &str, address_type: &str, path: &FieldPath) -> Vec<FieldError> {
    let (family_ok, family_message) = match address_type {
        "IPv4" => (
            address.parse::<std::net::Ipv4Addr>().is_ok(),
            "must be a valid IPv4 address",
        ),
        "IPv6" => (
            address.parse::<std::net::Ipv6Addr>().is_ok(),
            "must be a valid IPv6 address",
        ),
        "FQDN" => {
            let mut errors: Vec<FieldError> = names::dns1123_subdomain(address)
                .iter()
                .map(|message| FieldError::invalid(path, address, message))
                .collect();
            if !address.contains('.') && errors.is_empty() {
                errors.push(FieldError::invalid(
                    path,
                    address,
                    "should be a domain with at least two segments separated by dots",
                ));
            }
            return errors;
        }
        _ => return Vec::new(),
    };
    let mut errors = Vec::new();
    if !family_ok {
        errors.push(FieldError::invalid(path, address, family_message));
    }
    errors.extend(non_special_ip(address, path));
    errors
}

fn validate_ports(ports: &[EndpointPort]) -> Vec<FieldError> {
    let path = FieldPath::new("ports");
    if ports.len() > MAX_PORTS {
        return vec![FieldError::too_many(&path, ports.len(), MAX_PORTS)];
    }
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (index, port) in ports.iter().enumerate() {
        let port_path = path.index(index);
        let name = port.name.as_deref().unwrap_or_default();
        if !name.is_empty() {
            for message in names::dns1123_label(name) {
                errors.push(FieldError::invalid(
                    &port_path.child("name"),
                    name,
                    &message,
                ));
            }
        }
        if !seen.insert(name) {
            errors.push(FieldError::duplicate(&port_path.child("name"), name));
        }
        errors.extend(protocol_errors(
            port.protocol.as_deref(),
            &port_path.child("protocol"),
        ));
        errors.extend(app_protocol_errors(
            port.app_protocol.as_deref(),
            &port_path.child("appProtocol"),
        ));
    }
    errors
}

/// kubectl's `formatDiscoveryPorts`: numbers (else names, else `*`), three at most.
fn format_ports(ports: &[EndpointPort]) -> String {
    let items = ports.iter().map(|port| match (port.port, &port.name) {
        (Some(number), _) => number.to_string(),
        (None, Some(name)) => name.clone(),
        (None, None) => "*".into(),
    });
    list_with_more(items.collect())
}

/// kubectl's `formatDiscoveryEndpoints`: every address of every endpoint, three at most.
fn format_endpoints(endpoints: &[Endpoint]) -> String {
    list_with_more(endpoints.iter().flat_map(|e| e.addresses.clone()).collect())
}

/// kubectl's `listWithMoreString`.
fn list_with_more(mut items: Vec<String>) -> String {
    const MAX: usize = 3;
    let count = items.len();
    if count > MAX {
        items.truncate(MAX);
        return format!("{} + {} more...", items.join(","), count - MAX);
    }
    if items.is_empty() {
        return "<unset>".into();
    }
    items.join(",")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn slice(
        address_type: &str,
        addresses: &[&str],
        ports: &[(&str, Option<i32>)],
    ) -> EndpointSlice {
        let mut slice = EndpointSlice {
            metadata: ObjectMeta {
                name: Some("web-abc".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            address_type: address_type.into(),
            endpoints: addresses
                .iter()
                .map(|a| Endpoint {
                    addresses: vec![a.to_string()],
                    ..Default::default()
                })
                .collect(),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port)| EndpointPort {
                        name: Some(name.to_string()),
                        port: *port,
                        ..Default::default()
                    })
                    .collect(),
            ),
        };
        EndpointSliceStrategy.default(&mut slice);
        slice
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn addresses_ports_and_type_are_checked() {
        let valid = slice(
            "IPv4",
            &["10.42.0.5", "10.42.0.6"],
            &[("http", Some(80)), ("", Some(81))],
        );
        assert!(EndpointSliceStrategy.validate(&valid).is_empty());
        let bad = slice(
            "IPv4",
            &["fd00::1", "127.0.0.1"],
            &[("a", Some(80)), ("a", Some(81))],
        );
        assert_eq!(
            messages(EndpointSliceStrategy.validate(&bad)),
            [
                r#"endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address"#,
                r#"endpoints[1].addresses[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                r#"ports[1].name: Duplicate value: "a""#,
            ]
        );
        let unknown = slice("IPv5", &[], &[]);
        assert_eq!(
            messages(EndpointSliceStrategy.validate(&unknown)),
            [r#"addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6""#]
        );
        let many: Vec<String> = (0..1001)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1))
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            messages(EndpointSliceStrategy.validate(&slice("IPv4", &refs, &[]))),
            ["endpoints: Too many: 1001: must have at most 1000 items"]
        );
        let retyped = slice("IPv6", &[], &[]);
        assert_eq!(
            messages(EndpointSliceStrategy.validate_update(&retyped, &slice("IPv4", &[], &[]))),
            [r#"addressType: Invalid value: "IPv6": field is immutable"#]
        );
    }

    #[test]
    fn columns_show_three_ports_and_addresses_then_a_count() {
        let four = slice(
            "IPv4",
            &["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
            &[("a", Some(80)), ("b", None)],
        );
        let cells = EndpointSliceStrategy.cells(&four);
        assert_eq!(cells[1], "IPv4");
        assert_eq!(cells[2], "80,b");
        assert_eq!(cells[3], "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...");
        let empty = slice("IPv4", &[], &[]);
        assert_eq!(EndpointSliceStrategy.cells(&empty)[3], "<unset>");
    }
}
