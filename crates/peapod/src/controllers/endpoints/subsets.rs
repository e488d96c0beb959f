//! The subsets of a Service's Endpoints, as kube's endpoints controller computes them: one
//! address per selected pod and resolved port (`addEndpointSubset`), repacked into the
//! canonical N-to-M form (`endpoints.RepackSubsets`), and truncated to 1000 addresses
//! (`truncateEndpoints`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Pod, Service};

use crate::controllers::endpointslice::pods;

/// kube's `maxCapacity` of an Endpoints.
pub const MAX_CAPACITY: usize = 1000;

/// The subsets for `service` over `pods`, repacked.
pub fn service_subsets(service: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let tolerate_unready = pods::publishes_not_ready(service);
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let mut subsets = Vec::new();
    for pod in pods
        .iter()
        .filter(|p| pods::should_be_in_endpoints(p, tolerate_unready))
    {
        let Some(address) = pod_address(pod, service) else {
            continue;
        };
        let ready = tolerate_unready || pods::is_ready(pod);
        if ports.is_empty() && headless {
            subsets.push(one_address(address.clone(), None, ready));
        }
        for port in &ports {
            let Some(number) = pods::find_port(pod, port) else {
                continue;
            };
            let port = EndpointPort {
                name: port.name.clone().filter(|n| !n.is_empty()),
                port: number,
                protocol: Some(pods::protocol(port).to_owned()),
                app_protocol: port.app_protocol.clone(),
            };
            subsets.push(one_address(address.clone(), Some(port), ready));
        }
    }
    repack(subsets)
}

/// `podToEndpointAddressForService`, with the hostname kube's `ShouldSetHostname` allows.
fn pod_address(pod: &Pod, service: &Service) -> Option<EndpointAddress> {
    let ip = pods::ipv4_addresses(pod).into_iter().next()?;
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    Some(EndpointAddress {
        ip,
        hostname: pods::hostname_for(pod, service),
        node_name: Some(node.unwrap_or_default()),
        target_ref: Some(pods::target_ref(pod)),
    })
}

fn one_address(
    address: EndpointAddress,
    port: Option<EndpointPort>,
    ready: bool,
) -> EndpointSubset {
    let (ready_addresses, not_ready) = match ready {
        true => (Some(vec![address]), None),
        false => (None, Some(vec![address])),
    };
    EndpointSubset {
        addresses: ready_addresses,
        not_ready_addresses: not_ready,
        ports: Some(port.into_iter().collect()),
    }
}

/// An address's identity when repacking: its IP and its target's uid.
type AddressKey = (String, String);

fn address_key(address: &EndpointAddress) -> AddressKey {
    let uid = address.target_ref.as_ref().and_then(|t| t.uid.clone());
    (address.ip.clone(), uid.unwrap_or_default())
}

/// The sentinel port of subsets without ports, kept so their addresses are not lost.
fn sentinel() -> PortKey {
    (String::new(), -1, String::new(), String::new())
}

/// A port's identity: name, number, protocol, appProtocol.
type PortKey = (String, i32, String, String);

fn port_key(port: &EndpointPort) -> PortKey {
    let field = |f: &Option<String>| f.clone().unwrap_or_default();
    (
        field(&port.name),
        port.port,
        field(&port.protocol),
        field(&port.app_protocol),
    )
}

fn port_of(key: &PortKey) -> EndpointPort {
    let optional = |f: &String| Some(f.clone()).filter(|f| !f.is_empty());
    EndpointPort {
        name: optional(&key.0),
        port: key.1,
        protocol: optional(&key.2),
        app_protocol: optional(&key.3),
    }
}

/// `RepackSubsets`: each address once per set of ports it serves (ready once ready for a
/// port), subsets grouping the addresses that serve the same ports, sorted.
pub fn repack(subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    let mut all: BTreeMap<AddressKey, EndpointAddress> = BTreeMap::new();
    let mut by_port: BTreeMap<PortKey, BTreeMap<AddressKey, bool>> = BTreeMap::new();
    for subset in subsets {
        let ports: Vec<PortKey> = match subset.ports.as_deref() {
            None | Some([]) => vec![sentinel()],
            Some(ports) => ports.iter().map(port_key).collect(),
        };
        let ready = subset.addresses.into_iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .into_iter()
            .flatten()
            .map(|a| (a, false));
        for (address, ready) in ready.chain(not_ready) {
            let key = address_key(&address);
            all.entry(key.clone()).or_insert(address);
            for port in &ports {
                let seen = by_port.entry(port.clone()).or_default();
                let recorded = seen.entry(key.clone()).or_insert(ready);
                *recorded |= ready;
            }
        }
    }
    let mut by_addresses: BTreeMap<Vec<(AddressKey, bool)>, Vec<PortKey>> = BTreeMap::new();
    for (port, addresses) in by_port {
        let ports = by_addresses
            .entry(addresses.into_iter().collect())
            .or_default();
        if port != sentinel() {
            ports.push(port);
        }
    }
    let mut repacked: Vec<EndpointSubset> = by_addresses
        .into_iter()
        .map(|(addresses, ports)| subset_of(&all, addresses, ports))
        .collect();
    repacked.sort_by_key(first_address);
    repacked
}

fn subset_of(
    all: &BTreeMap<AddressKey, EndpointAddress>,
    addresses: Vec<(AddressKey, bool)>,
    ports: Vec<PortKey>,
) -> EndpointSubset {
    let pick = |want: bool| -> Option<Vec<EndpointAddress>> {
        let picked: Vec<EndpointAddress> = addresses
            .iter()
            .filter(|(_, ready)| *ready == want)
            .map(|(key, _)| all[key].clone())
            .collect();
        (!picked.is_empty()).then_some(picked)
    };
    EndpointSubset {
        addresses: pick(true),
        not_ready_addresses: pick(false),
        ports: (!ports.is_empty()).then(|| ports.iter().map(port_of).collect()),
    }
}

fn first_address(subset: &EndpointSubset) -> Option<AddressKey> {
    let ready = subset.addresses.iter().flatten();
    let all = ready.chain(subset.not_ready_addresses.iter().flatten());
    all.map(address_key).min()
}

fn count(subsets: &[EndpointSubset]) -> (usize, usize) {
    let ready = subsets
        .iter()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    let not_ready = subsets
        .iter()
        .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len));
    (ready, not_ready.sum())
}

/// `truncateEndpoints`: over 1000 addresses, the not-ready ones are cut first, each subset
/// keeping its share; answers whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let (ready, not_ready) = count(subsets);
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total) = match truncate_ready {
        true => (MAX_CAPACITY, ready),
        false => (MAX_CAPACITY - ready, not_ready),
    };
    let mut room = max;
    for subset in subsets.iter_mut() {
        let cut = match truncate_ready {
            true => {
                subset.not_ready_addresses = Some(Vec::new());
                &mut subset.addresses
            }
            false => &mut subset.not_ready_addresses,
        };
        let here = cut.as_ref().map_or(0, Vec::len);
        let share = (here * max).div_ceil(total).min(room);
        if let Some(addresses) = cut.as_mut() {
            addresses.truncate(share);
            room -= addresses.len();
        }
    }
    true
}

/// `capacityAnnotationSetCorrectly`: within capacity and without the over-capacity mark.
pub fn capacity_annotation_correct(
    annotations: Option<&BTreeMap<String, String>>,
    subsets: &[EndpointSubset],
) -> bool {
    let (ready, not_ready) = count(subsets);
    let marked = annotations.is_some_and(|a| a.contains_key(OVER_CAPACITY));
    ready + not_ready <= MAX_CAPACITY && !marked
}

/// `v1.EndpointsOverCapacity`.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

#[cfg(test)]
mod tests {
    use super::*;

    fn address(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.to_owned(),
            ..EndpointAddress::default()
        }
    }

    fn port(number: i32) -> EndpointPort {
        EndpointPort {
            port: number,
            ..EndpointPort::default()
        }
    }

    fn subset(ready: &[&str], not_ready: &[&str], ports: &[i32]) -> EndpointSubset {
        let addresses =
            |ips: &[&str]| (!ips.is_empty()).then(|| ips.iter().map(|ip| address(ip)).collect());
        EndpointSubset {
            addresses: addresses(ready),
            not_ready_addresses: addresses(not_ready),
            ports: (!ports.is_empty()).then(|| ports.iter().map(|p| port(*p)).collect()),
        }
    }

    /// Rows of kube's TestPackSubsets.
    #[test]
    fn repack_as_kubes_table() {
        let cases: Vec<(&str, Vec<EndpointSubset>, Vec<EndpointSubset>)> = vec![
            ("empty everything", vec![], vec![]),
            (
                "empty ports",
                vec![subset(&["1.2.3.4"], &[], &[])],
                vec![subset(&["1.2.3.4"], &[], &[])],
            ),
            (
                "one set, two ips, one port",
                vec![subset(&["1.2.3.4", "5.6.7.8"], &[], &[111])],
                vec![subset(&["1.2.3.4", "5.6.7.8"], &[], &[111])],
            ),
            (
                "one set, dup ips, one port",
                vec![subset(&["1.2.3.4", "1.2.3.4"], &[], &[111])],
                vec![subset(&["1.2.3.4"], &[], &[111])],
            ),
            (
                "one set, one ip, dup ports",
                vec![subset(&["1.2.3.4"], &[], &[111, 111])],
                vec![subset(&["1.2.3.4"], &[], &[111])],
            ),
            (
                "two sets, dup ip, two ports",
                vec![
                    subset(&["1.2.3.4"], &[], &[111]),
                    subset(&["1.2.3.4"], &[], &[222]),
                ],
                vec![subset(&["1.2.3.4"], &[], &[111, 222])],
            ),
            (
                "two sets, two ips, dup port",
                vec![
                    subset(&["1.2.3.4"], &[], &[111]),
                    subset(&["5.6.7.8"], &[], &[111]),
                ],
                vec![subset(&["1.2.3.4", "5.6.7.8"], &[], &[111])],
            ),
            (
                "two sets, two ips, two ports",
                vec![
                    subset(&["1.2.3.4"], &[], &[111]),
                    subset(&["5.6.7.8"], &[], &[222]),
                ],
                vec![
                    subset(&["1.2.3.4"], &[], &[111]),
                    subset(&["5.6.7.8"], &[], &[222]),
                ],
            ),
            (
                "ready and not ready, same ip and port",
                vec![
                    subset(&["1.2.3.4"], &[], &[111]),
                    subset(&[], &["1.2.3.4"], &[111]),
                ],
                vec![subset(&["1.2.3.4"], &[], &[111])],
            ),
            (
                "not ready and ready addresses of one port",
                vec![
                    subset(&["1.2.3.4"], &[], &[111]),
                    subset(&[], &["5.6.7.8"], &[111]),
                ],
                vec![subset(&["1.2.3.4"], &["5.6.7.8"], &[111])],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(repack(input), expected, "{name}");
        }
    }

    fn many(prefix: &str, count: usize) -> Vec<EndpointAddress> {
        (0..count)
            .map(|i| address(&format!("{prefix}.{}.{}", i / 250, i % 250)))
            .collect()
    }

    /// Rows of kube's TestTruncateEndpoints.
    #[test]
    fn truncate_keeps_a_thousand_cutting_not_ready_first() {
        let count_of = |subsets: &[EndpointSubset]| count(subsets);
        let mut subsets = vec![EndpointSubset {
            addresses: Some(many("10", 800)),
            not_ready_addresses: Some(many("11", 400)),
            ports: None,
        }];
        assert!(truncate(&mut subsets));
        assert_eq!(count_of(&subsets), (800, 200));
        let mut subsets = vec![
            EndpointSubset {
                addresses: Some(many("10", 600)),
                not_ready_addresses: Some(many("11", 100)),
                ports: None,
            },
            EndpointSubset {
                addresses: Some(many("12", 600)),
                not_ready_addresses: Some(many("13", 100)),
                ports: None,
            },
        ];
        assert!(truncate(&mut subsets));
        assert_eq!(count_of(&subsets), (1000, 0));
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 500);
        let mut small = vec![subset(&["1.2.3.4"], &[], &[80])];
        assert!(!truncate(&mut small));
        assert!(capacity_annotation_correct(None, &small));
        let marked = BTreeMap::from([(OVER_CAPACITY.to_owned(), "truncated".to_owned())]);
        assert!(!capacity_annotation_correct(Some(&marked), &small));
    }
}
