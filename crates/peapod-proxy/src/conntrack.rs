//! Stale UDP flows: UDP has no connection to close, so a flow the kernel NATed to an endpoint
//! that is gone would keep sending there until it times out. As kube-proxy does, the flows
//! of a UDP Service port to each endpoint it lost are deleted, with the `conntrack` tool.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::model::{Endpoint, Protocol, ServicePortName, ServicePortState};

/// The `conntrack -D` arguments that drop the flows `old` NATed to endpoints `new` no longer
/// has (every endpoint when the port is gone).
pub fn stale_flow_filters(
    name: &ServicePortName,
    old: &ServicePortState,
    new: Option<&ServicePortState>,
) -> Vec<Vec<String>> {
    if name.protocol != Protocol::Udp {
        return Vec::new();
    }
    let kept = |endpoint: &Endpoint| new.is_some_and(|n| n.endpoints.contains(endpoint));
    let mut filters = Vec::new();
    for endpoint in old.endpoints.iter().filter(|e| !kept(e)) {
        let nat = endpoint.ip.to_string();
        let addresses: Vec<&Ipv4Addr> = old.cluster_ip.iter().chain(&old.external_ips).collect();
        for address in addresses {
            filters.push(args(&[
                "--orig-dst",
                &address.to_string(),
                "--orig-port-dst",
                &old.port.to_string(),
                "--dst-nat",
                &nat,
            ]));
        }
        if let Some(node_port) = old.node_port {
            filters.push(args(&[
                "--orig-port-dst",
                &node_port.to_string(),
                "--dst-nat",
                &nat,
            ]));
        }
    }
    filters
}

fn args(filter: &[&str]) -> Vec<String> {
    ["-D", "-p", "udp"]
        .iter()
        .chain(filter)
        .map(|s| (*s).to_string())
        .collect()
}

/// Runs each deletion; conntrack exits 1 when nothing matched, which is no error.
pub fn delete_flows(filters: &[Vec<String>]) {
    for filter in filters {
        let status = Command::new("conntrack")
            .args(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(err) = status {
            tracing::warn!(%err, "running conntrack (install the conntrack package) to clear stale UDP flows");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(protocol: Protocol) -> ServicePortName {
        ServicePortName {
            namespace: "ns".into(),
            name: "dns".into(),
            port: String::new(),
            protocol,
        }
    }

    fn state(last_octets: &[u8]) -> ServicePortState {
        ServicePortState {
            cluster_ip: Some("10.43.0.10".parse().unwrap()),
            port: 53,
            node_port: Some(30053),
            endpoints: last_octets
                .iter()
                .map(|last| Endpoint {
                    ip: Ipv4Addr::new(10, 42, 0, *last),
                    port: 5353,
                })
                .collect(),
            ..ServicePortState::default()
        }
    }

    #[test]
    fn only_lost_udp_endpoints_have_their_flows_deleted() {
        let filters = stale_flow_filters(&name(Protocol::Udp), &state(&[4, 5]), Some(&state(&[5])));
        assert_eq!(
            filters,
            [
                args(&[
                    "--orig-dst",
                    "10.43.0.10",
                    "--orig-port-dst",
                    "53",
                    "--dst-nat",
                    "10.42.0.4"
                ]),
                args(&["--orig-port-dst", "30053", "--dst-nat", "10.42.0.4"]),
            ]
        );
        assert!(stale_flow_filters(&name(Protocol::Tcp), &state(&[4]), None).is_empty());
        assert_eq!(
            stale_flow_filters(&name(Protocol::Udp), &state(&[4]), None).len(),
            2
        );
    }
}
