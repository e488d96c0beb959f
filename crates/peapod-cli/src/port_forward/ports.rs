//! port-forward's arguments read as kubectl and client-go read them: `[LOCAL:]REMOTE` ports
//! (a named container port becomes its number, UDP-only ports are refused, `:REMOTE` and
//! `0:REMOTE` pick a free local port) and the `--address` list (`localhost` is both loopback
//! addresses).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::core::v1::Pod;
use peapod_streams::portforward::client::ForwardedPort;

use super::PortForwardError;

/// An address to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddress {
    pub ip: IpAddr,
    /// From `localhost`: the port fails only when no such address could be bound. An address
    /// given as such must be bound.
    pub optional: bool,
}

/// client-go's `parseAddresses`: each address once, in the order of their text.
pub fn parse_addresses(addresses: &[String]) -> Result<Vec<ListenAddress>, PortForwardError> {
    let mut parsed: Vec<ListenAddress> = Vec::new();
    for address in addresses {
        let found = if address == "localhost" {
            vec![
                (IpAddr::V4(Ipv4Addr::LOCALHOST), true),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), true),
            ]
        } else {
            let ip = address
                .parse::<IpAddr>()
                .map_err(|_| PortForwardError::InvalidAddress(address.clone()))?;
            vec![(ip, false)]
        };
        for (ip, optional) in found {
            match parsed.iter_mut().find(|known| known.ip == ip) {
                Some(known) if !optional => known.optional = false,
                Some(_) => {}
                None => parsed.push(ListenAddress { ip, optional }),
            }
        }
    }
    parsed.sort_by_key(|address| address.ip.to_string());
    Ok(parsed)
}

/// kubectl's `splitPort`: `LOCAL:REMOTE`, else the port both ways.
fn split_port(port: &str) -> (&str, &str) {
    match port.split(':').collect::<Vec<_>>()[..] {
        [local, remote] => (local, remote),
        _ => {
            let first = port.split(':').next().unwrap_or_default();
            (first, first)
        }
    }
}

/// kubectl's `checkUDPPortInPod`: a remote port only the pod's UDP ports have is refused.
pub fn refuse_udp_ports(ports: &[String], pod: &Pod) -> Result<(), PortForwardError> {
    let container_ports: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|spec| &spec.containers)
        .flat_map(|container| container.ports.iter().flatten())
        .collect();
    let with_protocol = |number: i32, protocol: &str| {
        container_ports
            .iter()
            .any(|p| p.container_port == number && p.protocol.as_deref() == Some(protocol))
    };
    for port in ports {
        let (_, remote) = split_port(port);
        let number = match remote.parse::<i32>() {
            Ok(number) => number,
            Err(_) => named_port(pod, remote)?,
        };
        if with_protocol(number, "UDP") && !with_protocol(number, "TCP") {
            return Err(PortForwardError::Udp(remote.to_string()));
        }
    }
    Ok(())
}

/// kubectl's `convertPodNamedPortToNumber`.
pub fn named_ports_to_numbers(
    ports: &[String],
    pod: &Pod,
) -> Result<Vec<String>, PortForwardError> {
    ports
        .iter()
        .map(|port| {
            let (local, remote) = split_port(port);
            if remote.is_empty() {
                return Err(PortForwardError::EmptyRemotePort);
            }
            let number = match remote.parse::<i64>() {
                Ok(_) => remote.to_string(),
                Err(_) => named_port(pod, remote)?.to_string(),
            };
            Ok(if local != remote {
                format!("{local}:{number}")
            } else {
                number
            })
        })
        .collect()
}

fn named_port(pod: &Pod, name: &str) -> Result<i32, PortForwardError> {
    pod.spec
        .iter()
        .flat_map(|spec| &spec.containers)
        .flat_map(|container| container.ports.iter().flatten())
        .find(|port| port.name.as_deref() == Some(name))
        .map(|port| port.container_port)
        .ok_or_else(|| PortForwardError::NoNamedPort {
            pod: pod.metadata.name.clone().unwrap_or_default(),
            name: name.to_string(),
        })
}

/// client-go's `parsePorts`.
pub fn parse_ports(ports: &[String]) -> Result<Vec<ForwardedPort>, PortForwardError> {
    ports.iter().map(|port| parse_port(port)).collect()
}

fn parse_port(port: &str) -> Result<ForwardedPort, PortForwardError> {
    let (local, remote) = match port.split(':').collect::<Vec<_>>()[..] {
        [both] => (both, both),
        ["", remote] => ("0", remote),
        [local, remote] => (local, remote),
        _ => return Err(PortForwardError::PortFormat(port.to_string())),
    };
    let local_port = go_parse_u16(local).map_err(|reason| PortForwardError::LocalPort {
        port: local.to_string(),
        reason,
    })?;
    let remote_port = go_parse_u16(remote).map_err(|reason| PortForwardError::RemotePort {
        port: remote.to_string(),
        reason,
    })?;
    if remote_port == 0 {
        return Err(PortForwardError::RemotePortZero);
    }
    Ok(ForwardedPort {
        local: local_port,
        remote: remote_port,
    })
}

/// `strconv.ParseUint(text, 10, 16)` and its error's wording.
fn go_parse_u16(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing {text:?}: invalid syntax"
        ));
    }
    text.parse()
        .map_err(|_| format!("strconv.ParseUint: parsing {text:?}: value out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "app", "ports": [
                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}]}
        }))
        .unwrap()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ports_are_read_as_client_go_reads_them() {
        let port = |local, remote| ForwardedPort { local, remote };
        let parsed = parse_ports(&strings(&["5000", "8888:5000", ":80", "0:81"])).unwrap();
        assert_eq!(
            parsed,
            [port(5000, 5000), port(8888, 5000), port(0, 80), port(0, 81)]
        );
        let refused = |text: &str| parse_ports(&strings(&[text])).unwrap_err().to_string();
        assert_eq!(refused("1:2:3"), "invalid port format '1:2:3'");
        assert_eq!(
            refused("x:80"),
            "error parsing local port 'x': strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            refused("70000"),
            "error parsing local port '70000': strconv.ParseUint: parsing \"70000\": value out of range"
        );
        assert_eq!(refused("80:0"), "remote port must be > 0");
    }

    #[test]
    fn named_ports_become_numbers_and_udp_ports_are_refused() {
        let converted =
            named_ports_to_numbers(&strings(&["http", "9000:http", ":http", "80"]), &pod());
        assert_eq!(converted.unwrap(), ["8080", "9000:8080", ":8080", "80"]);
        let missing = named_ports_to_numbers(&strings(&["grpc"]), &pod()).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "Pod 'web' does not have a named port 'grpc'"
        );
        let empty = named_ports_to_numbers(&strings(&["80:"]), &pod()).unwrap_err();
        assert_eq!(empty.to_string(), "remote port cannot be empty");
        let udp = refuse_udp_ports(&strings(&["8053:dns"]), &pod()).unwrap_err();
        assert_eq!(udp.to_string(), "UDP protocol is not supported for dns");
        assert!(refuse_udp_ports(&strings(&["http", "53000"]), &pod()).is_ok());
    }

    #[test]
    fn localhost_is_both_loopback_addresses() {
        let parsed = parse_addresses(&strings(&["localhost", "127.0.0.1"])).unwrap();
        let ips: Vec<_> = parsed
            .iter()
            .map(|a| (a.ip.to_string(), a.optional))
            .collect();
        assert_eq!(ips, [("127.0.0.1".into(), false), ("::1".into(), true)]);
        let refused = parse_addresses(&strings(&["example.com"])).unwrap_err();
        assert_eq!(refused.to_string(), "example.com is not a valid IP");
    }
}
