//! The nftables objects of the proxy, laid out as kube-proxy's nftables mode lays out its
//! table, inside the agent's own table: fixed base chains and verdict maps (prefix `proxy-`),
//! and per Service port a `svc-` chain picking an endpoint at random, an `ext-` chain for
//! external traffic, an `ep-` chain per endpoint that DNATs, an `aff-` set per endpoint
//! for ClientIP session affinity, and a `fw-` chain dropping LoadBalancer traffic from outside
//! `loadBalancerSourceRanges`. Traffic to the Service range that no Service port takes is
//! refused (a ClusterIP's other ports) or dropped (an unallocated address), as kube's
//! `cluster-ips-check`. Pure text: nothing here runs nft.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use crate::model::{Endpoint, ServicePortName, ServicePortState};

/// ClusterIP, externalIP and LoadBalancer traffic: `address . protocol . port` → service.
pub const SERVICE_IPS: &str = "proxy-service-ips";
/// NodePort traffic to any address of the node: `protocol . port` → service.
pub const SERVICE_NODEPORTS: &str = "proxy-service-nodeports";
/// Service addresses whose port has no usable endpoint: refused, never black-holed.
pub const NO_ENDPOINT_SERVICES: &str = "proxy-no-endpoint-services";
pub const NO_ENDPOINT_NODEPORTS: &str = "proxy-no-endpoint-nodeports";
/// LoadBalancer addresses of Services with source ranges: `address . protocol . port` → the
/// Service's firewall chain.
pub const FIREWALL_IPS: &str = "proxy-firewall-ips";
/// The ClusterIPs in use, each refusing the ports its Service does not have (kube's
/// `cluster-ips` set, a verdict map here so that it diffs as the others do).
pub const CLUSTER_IPS: &str = "proxy-cluster-ips";
pub const MAPS: [&str; 6] = [
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    NO_ENDPOINT_NODEPORTS,
    FIREWALL_IPS,
    CLUSTER_IPS,
];

const MARK_FOR_MASQUERADE: &str = "proxy-mark-for-masquerade";
const REJECT: &str = "proxy-reject";
/// kube-proxy's masquerade bit.
const MASQUERADE_MARK: &str = "0x4000";

/// The prefixes of the chains and sets made per Service port.
const OWNED_PREFIXES: [&str; 5] = ["svc-", "ext-", "ep-", "aff-", "fw-"];

/// The per-Service-port objects: chains (name → rules), sets (name → declaration) and the
/// elements it puts in the shared maps ((map, key) → verdict).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRules {
    pub chains: BTreeMap<String, Vec<String>>,
    pub sets: BTreeMap<String, String>,
    pub elements: BTreeMap<(&'static str, String), String>,
}

/// Whether a chain or set of the table was made for a Service port.
pub fn is_service_object(name: &str) -> bool {
    OWNED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The table, the proxy's base chains at kube-proxy's priorities, its fixed chains and its
/// maps; rewrites the fixed chains and keeps the maps' elements. `service_cidr` is the
/// Service range, whose addresses no Service holds are dropped.
pub fn base_script(table: &str, service_cidr: Ipv4Net) -> String {
    let t = table;
    let map_type = |map: &str| match map {
        CLUSTER_IPS => "ipv4_addr",
        SERVICE_NODEPORTS | NO_ENDPOINT_NODEPORTS => "inet_proto . inet_service",
        _ => "ipv4_addr . inet_proto . inet_service",
    };
    let mut script = format!("add table ip {t}\n");
    for (chain, hook) in [
        (
            "proxy-filter-prerouting",
            "type filter hook prerouting priority -110",
        ),
        (
            "proxy-nat-prerouting",
            "type nat hook prerouting priority dstnat",
        ),
        ("proxy-nat-output", "type nat hook output priority -100"),
        (
            "proxy-nat-postrouting",
            "type nat hook postrouting priority srcnat",
        ),
        ("proxy-filter-input", "type filter hook input priority -110"),
        (
            "proxy-filter-forward",
            "type filter hook forward priority -110",
        ),
        (
            "proxy-filter-output",
            "type filter hook output priority -110",
        ),
        (
            "proxy-filter-output-post-dnat",
            "type filter hook output priority -90",
        ),
    ] {
        script.push_str(&format!(
            "add chain ip {t} {chain} {{ {hook}; policy accept; }}\n"
        ));
    }
    for map in MAPS {
        script.push_str(&format!(
            "add map ip {t} {map} {{ type {} : verdict; }}\n",
            map_type(map)
        ));
    }
    let mut fixed = base_chain_jumps();
    fixed.extend(regular_chains(service_cidr));
    for (chain, _) in &fixed {
        script.push_str(&format!("add chain ip {t} {chain}\n"));
    }
    for (chain, rules) in fixed {
        script.push_str(&format!("flush chain ip {t} {chain}\n"));
        for rule in rules {
            script.push_str(&format!("add rule ip {t} {chain} {rule}\n"));
        }
    }
    script
}

/// What each base chain jumps to, as kube-proxy's `nftablesJumpChains`.
fn base_chain_jumps() -> Vec<(&'static str, Vec<String>)> {
    let new = "ct state new";
    vec![
        (
            "proxy-filter-prerouting",
            vec![format!("{new} jump proxy-firewall-check")],
        ),
        ("proxy-nat-prerouting", vec!["jump proxy-services".into()]),
        ("proxy-nat-output", vec!["jump proxy-services".into()]),
        (
            "proxy-nat-postrouting",
            vec!["jump proxy-masquerading".into()],
        ),
        (
            "proxy-filter-input",
            vec![
                format!("{new} jump proxy-nodeport-endpoints-check"),
                format!("{new} jump proxy-endpoints-check"),
            ],
        ),
        (
            "proxy-filter-forward",
            vec![
                format!("{new} jump proxy-endpoints-check"),
                format!("{new} jump proxy-cluster-ips-check"),
            ],
        ),
        (
            "proxy-filter-output",
            vec![
                format!("{new} jump proxy-endpoints-check"),
                format!("{new} jump proxy-firewall-check"),
            ],
        ),
        (
            // After the DNAT of nat-output: what is still addressed to the range was not
            // a Service port.
            "proxy-filter-output-post-dnat",
            vec![format!("{new} jump proxy-cluster-ips-check")],
        ),
    ]
}

/// The chains the base chains jump to, and their helpers.
fn regular_chains(service_cidr: Ipv4Net) -> Vec<(&'static str, Vec<String>)> {
    vec![
        (
            "proxy-firewall-check",
            vec![format!(
                "ip daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}"
            )],
        ),
        (
            "proxy-cluster-ips-check",
            vec![
                format!("ip daddr vmap @{CLUSTER_IPS}"),
                format!("ip daddr {service_cidr} drop"),
            ],
        ),
        (
            "proxy-services",
            vec![
                format!("ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"),
                format!("fib daddr type local meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"),
            ],
        ),
        (
            "proxy-endpoints-check",
            vec![format!(
                "ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"
            )],
        ),
        (
            // Packets reaching input are addressed to the node itself.
            "proxy-nodeport-endpoints-check",
            vec![format!(
                "meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"
            )],
        ),
        (
            "proxy-masquerading",
            vec![
                format!("meta mark & {MASQUERADE_MARK} == 0 return"),
                format!("meta mark set meta mark ^ {MASQUERADE_MARK}"),
                "masquerade fully-random".into(),
            ],
        ),
        (
            MARK_FOR_MASQUERADE,
            vec![format!("meta mark set meta mark | {MASQUERADE_MARK}")],
        ),
        (
            REJECT,
            vec![
                "meta l4proto tcp reject with tcp reset".into(),
                "reject".into(),
            ],
        ),
    ]
}

/// The objects of one Service port.
pub fn render(name: &ServicePortName, state: &ServicePortState, pod_cidr: Ipv4Net) -> ServiceRules {
    let mut rules = ServiceRules::default();
    let base = name.to_string();
    let proto = name.protocol.keyword();
    if let Some(ip) = state.cluster_ip.filter(|_| state.claims_cluster_ip) {
        let key = (CLUSTER_IPS, ip.to_string());
        rules.elements.insert(key, format!("goto {REJECT}"));
    }
    add_firewall(&mut rules, &base, proto, state);
    if state.endpoints.is_empty() {
        let reject = format!("goto {REJECT}");
        for ip in state.cluster_ip.iter().chain(&state.external_ips) {
            let key = (NO_ENDPOINT_SERVICES, address_key(*ip, proto, state.port));
            rules.elements.insert(key, reject.clone());
        }
        if let Some(port) = state.node_port {
            let key = (NO_ENDPOINT_NODEPORTS, format!("{proto} . {port}"));
            rules.elements.insert(key, reject);
        }
        return rules;
    }
    let service_chain = object_name("svc", &base, &base);
    let mut service_rules: Vec<String> = state
        .cluster_ip
        .iter()
        .map(|ip| {
            format!(
                "ip daddr {ip} {proto} dport {} ip saddr != {pod_cidr} jump {MARK_FOR_MASQUERADE}",
                state.port
            )
        })
        .collect();
    service_rules.extend(add_endpoints(&mut rules, &base, proto, state));
    if let Some(ip) = &state.cluster_ip {
        let key = (SERVICE_IPS, address_key(*ip, proto, state.port));
        rules.elements.insert(key, format!("goto {service_chain}"));
    }
    if !state.external_ips.is_empty() || state.node_port.is_some() {
        add_external(&mut rules, &base, &service_chain, proto, state, pod_cidr);
    }
    rules.chains.insert(service_chain, service_rules);
    rules
}

/// kube-proxy's firewall chain: LoadBalancer traffic from outside `loadBalancerSourceRanges`
/// is dropped before it is DNATed. NodePorts are not subject to it, as in kube. The VIP is
/// the node's own address, so the node's own traffic passes when a range holds the node.
fn add_firewall(rules: &mut ServiceRules, base: &str, proto: &str, state: &ServicePortState) {
    if state.load_balancer_ips.is_empty() || state.source_ranges.is_empty() {
        return;
    }
    let chain = object_name("fw", base, base);
    let sources: Vec<String> = outermost(&state.source_ranges)
        .iter()
        .map(Ipv4Net::to_string)
        .collect();
    let drop = format!("ip saddr != {{ {} }} drop", sources.join(", "));
    for ip in &state.load_balancer_ips {
        let key = (FIREWALL_IPS, address_key(*ip, proto, state.port));
        rules.elements.insert(key, format!("goto {chain}"));
    }
    rules.chains.insert(chain, vec![drop]);
}

/// The ranges without host bits and without those another holds: nft refuses overlapping
/// intervals in one set.
fn outermost(ranges: &[Ipv4Net]) -> Vec<Ipv4Net> {
    let networks: Vec<Ipv4Net> = ranges.iter().map(Ipv4Net::trunc).collect();
    let mut kept: Vec<Ipv4Net> = Vec::new();
    for (index, range) in networks.iter().enumerate() {
        let held = networks.iter().enumerate().any(|(other_index, other)| {
            other_index != index && other.contains(range) && (other != range || other_index < index)
        });
        if !held {
            kept.push(*range);
        }
    }
    kept.sort();
    kept
}

fn address_key(ip: std::net::Ipv4Addr, proto: &str, port: u16) -> String {
    format!("{ip} . {proto} . {port}")
}

/// Adds a chain (and affinity set) per endpoint; returns the service chain's rules that
/// pick one: the client's remembered endpoint first, else one at random.
fn add_endpoints(
    rules: &mut ServiceRules,
    base: &str,
    proto: &str,
    state: &ServicePortState,
) -> Vec<String> {
    let mut service_rules = Vec::new();
    let mut targets = Vec::new();
    for endpoint in &state.endpoints {
        let (chain, set) = endpoint_objects(base, endpoint, state.affinity_timeout);
        let mut endpoint_rules = vec![format!(
            "ip saddr {} jump {MARK_FOR_MASQUERADE}",
            endpoint.ip
        )];
        if let (Some(set), Some(timeout)) = (&set, state.affinity_timeout) {
            service_rules.push(format!("ip saddr @{set} goto {chain}"));
            endpoint_rules.push(format!("update @{set} {{ ip saddr }}"));
            let declaration = format!("type ipv4_addr; flags dynamic,timeout; timeout {timeout}s;");
            rules.sets.insert(set.clone(), declaration);
        }
        endpoint_rules.push(format!(
            "meta l4proto {proto} dnat to {}:{}",
            endpoint.ip, endpoint.port
        ));
        rules.chains.insert(chain.clone(), endpoint_rules);
        targets.push(chain);
    }
    let picks: Vec<String> = targets
        .iter()
        .enumerate()
        .map(|(i, chain)| format!("{i} : goto {chain}"))
        .collect();
    service_rules.push(format!(
        "numgen random mod {} vmap {{ {} }}",
        targets.len(),
        picks.join(", ")
    ));
    service_rules
}

/// The chain external traffic (NodePorts, externalIPs, LoadBalancer VIPs) goes through, and
/// the map entries leading there.
fn add_external(
    rules: &mut ServiceRules,
    base: &str,
    service_chain: &str,
    proto: &str,
    state: &ServicePortState,
    pod_cidr: Ipv4Net,
) {
    let external_chain = object_name("ext", base, base);
    let goto_service = format!("goto {service_chain}");
    let external_rules = if state.external_local {
        // Clients keep their address, but pods and the node itself still need the reply
        // to come back through the node (kube-proxy's "short-circuit" rules).
        vec![
            format!("ip saddr {pod_cidr} {goto_service}"),
            format!("fib saddr type local jump {MARK_FOR_MASQUERADE}"),
            goto_service,
        ]
    } else {
        vec![format!("jump {MARK_FOR_MASQUERADE}"), goto_service]
    };
    let goto_external = format!("goto {external_chain}");
    for ip in &state.external_ips {
        let key = (SERVICE_IPS, address_key(*ip, proto, state.port));
        rules.elements.insert(key, goto_external.clone());
    }
    if let Some(port) = state.node_port {
        let key = (SERVICE_NODEPORTS, format!("{proto} . {port}"));
        rules.elements.insert(key, goto_external);
    }
    rules.chains.insert(external_chain, external_rules);
}

/// The endpoint's chain, and its affinity set when the Service has ClientIP affinity (named
/// after the timeout too, so that a new timeout is a new set, as nft cannot change one).
fn endpoint_objects(
    base: &str,
    endpoint: &Endpoint,
    affinity: Option<u32>,
) -> (String, Option<String>) {
    let path = format!("{base}__{endpoint}");
    let chain = object_name("ep", &path, &path);
    let set = affinity.map(|timeout| object_name("aff", &path, &format!("{path}/{timeout}")));
    (chain, set)
}

/// `prefix-HASH-path`, as kube-proxy names its chains: 8 hex digits of SHA-256 of `hashed`
/// keep different ports apart, and any character nft would not read in a name is replaced.
fn object_name(prefix: &str, path: &str, hashed: &str) -> String {
    let hash = hex::encode_upper(&Sha256::digest(hashed.as_bytes())[..4]);
    let readable: String = path
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '/' | '_' | '.' | '-' => c,
            _ => '_',
        })
        .collect();
    format!("{prefix}-{hash}-{readable}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn name(protocol: Protocol) -> ServicePortName {
        ServicePortName {
            namespace: "ns".into(),
            name: "web".into(),
            port: "http".into(),
            protocol,
        }
    }

    fn endpoint(last: u8, port: u16) -> Endpoint {
        Endpoint {
            ip: std::net::Ipv4Addr::new(10, 42, 0, last),
            port,
        }
    }

    fn state(endpoints: Vec<Endpoint>) -> ServicePortState {
        ServicePortState {
            cluster_ip: Some("10.43.0.20".parse().unwrap()),
            port: 80,
            endpoints,
            ..ServicePortState::default()
        }
    }

    fn cidr() -> Ipv4Net {
        "10.42.0.0/24".parse().unwrap()
    }

    #[test]
    fn a_port_without_endpoints_is_rejected_and_has_no_chain() {
        let mut s = state(Vec::new());
        s.node_port = Some(30080);
        s.external_ips = vec!["192.0.2.1".parse().unwrap()];
        let rules = render(&name(Protocol::Udp), &s, cidr());
        assert!(rules.chains.is_empty() && rules.sets.is_empty());
        let keys: Vec<_> = rules.elements.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                (NO_ENDPOINT_NODEPORTS, "udp . 30080".to_string()),
                (NO_ENDPOINT_SERVICES, "10.43.0.20 . udp . 80".to_string()),
                (NO_ENDPOINT_SERVICES, "192.0.2.1 . udp . 80".to_string()),
            ]
        );
        assert!(rules.elements.values().all(|v| v == "goto proxy-reject"));
    }

    #[test]
    fn endpoints_are_picked_at_random_and_dnat_with_hairpin_masquerade() {
        let rules = render(
            &name(Protocol::Tcp),
            &state(vec![endpoint(5, 8080), endpoint(7, 8080)]),
            cidr(),
        );
        let service = rules
            .chains
            .keys()
            .find(|c| c.starts_with("svc-"))
            .unwrap()
            .clone();
        assert!(service.ends_with("-ns/web/tcp/http"), "{service}");
        let service_rules = &rules.chains[&service];
        assert_eq!(
            service_rules[0],
            "ip daddr 10.43.0.20 tcp dport 80 ip saddr != 10.42.0.0/24 jump proxy-mark-for-masquerade"
        );
        assert!(
            service_rules[1].starts_with("numgen random mod 2 vmap { 0 : goto ep-"),
            "{service_rules:?}"
        );
        let endpoint_chain = rules
            .chains
            .keys()
            .find(|c| c.ends_with("__10.42.0.7/8080"))
            .unwrap();
        assert_eq!(
            rules.chains[endpoint_chain],
            [
                "ip saddr 10.42.0.7 jump proxy-mark-for-masquerade",
                "meta l4proto tcp dnat to 10.42.0.7:8080"
            ]
        );
        assert_eq!(
            rules.elements[&(SERVICE_IPS, "10.43.0.20 . tcp . 80".to_string())],
            format!("goto {service}")
        );
        assert_eq!(
            rules.chains.len(),
            3,
            "no external chain without NodePort or external IPs"
        );
    }

    #[test]
    fn external_traffic_is_masqueraded_unless_the_policy_is_local() {
        let mut s = state(vec![endpoint(5, 80)]);
        s.node_port = Some(30080);
        let cluster = render(&name(Protocol::Tcp), &s, cidr());
        let external = cluster
            .chains
            .iter()
            .find(|(c, _)| c.starts_with("ext-"))
            .unwrap();
        assert_eq!(external.1[0], "jump proxy-mark-for-masquerade");
        assert_eq!(
            cluster.elements[&(SERVICE_NODEPORTS, "tcp . 30080".to_string())],
            format!("goto {}", external.0)
        );
        s.external_local = true;
        let local = render(&name(Protocol::Tcp), &s, cidr());
        let external = local
            .chains
            .iter()
            .find(|(c, _)| c.starts_with("ext-"))
            .unwrap()
            .1;
        assert!(
            external[0].starts_with("ip saddr 10.42.0.0/24 goto svc-"),
            "{external:?}"
        );
        assert_eq!(
            external[1],
            "fib saddr type local jump proxy-mark-for-masquerade"
        );
    }

    #[test]
    fn client_ip_affinity_adds_a_timed_set_per_endpoint() {
        let mut s = state(vec![endpoint(5, 80)]);
        s.affinity_timeout = Some(60);
        let rules = render(&name(Protocol::Tcp), &s, cidr());
        let (set, declaration) = rules.sets.iter().next().unwrap();
        assert!(
            set.starts_with("aff-") && set.ends_with("__10.42.0.5/80"),
            "{set}"
        );
        assert!(declaration.contains("timeout 60s"), "{declaration}");
        let service = rules
            .chains
            .iter()
            .find(|(c, _)| c.starts_with("svc-"))
            .unwrap()
            .1;
        assert!(
            service[1].starts_with(&format!("ip saddr @{set} goto ep-")),
            "{service:?}"
        );
        s.affinity_timeout = Some(61);
        let longer = render(&name(Protocol::Tcp), &s, cidr());
        assert_ne!(
            longer.sets.keys().next(),
            Some(set),
            "a new timeout is a new set"
        );
    }

    #[test]
    fn load_balancer_source_ranges_make_a_firewall_chain_for_the_vips_only() {
        let mut s = state(vec![endpoint(5, 80)]);
        s.node_port = Some(30080);
        s.load_balancer_ips = vec!["192.0.2.1".parse().unwrap()];
        s.external_ips = vec!["192.0.2.1".parse().unwrap(), "192.0.2.9".parse().unwrap()];
        s.source_ranges = ["10.0.0.0/8", "10.1.0.0/16", "192.168.1.7/24", "10.0.0.0/8"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        let rules = render(&name(Protocol::Tcp), &s, cidr());
        let (chain, drop) = rules
            .chains
            .iter()
            .find(|(c, _)| c.starts_with("fw-"))
            .unwrap();
        assert!(chain.ends_with("-ns/web/tcp/http"), "{chain}");
        assert_eq!(
            drop,
            &["ip saddr != { 10.0.0.0/8, 192.168.1.0/24 } drop".to_string()]
        );
        let firewalled: Vec<_> = rules
            .elements
            .iter()
            .filter(|((map, _), _)| *map == FIREWALL_IPS)
            .collect();
        assert_eq!(
            firewalled,
            [(
                &(FIREWALL_IPS, "192.0.2.1 . tcp . 80".to_string()),
                &format!("goto {chain}")
            )],
            "externalIPs and NodePorts are not firewalled"
        );
        s.source_ranges.clear();
        let open = render(&name(Protocol::Tcp), &s, cidr());
        assert!(!open.chains.keys().any(|c| c.starts_with("fw-")));
        assert!(!open.elements.keys().any(|(map, _)| *map == FIREWALL_IPS));
    }

    #[test]
    fn the_claiming_port_puts_the_cluster_ip_in_use_with_or_without_endpoints() {
        for endpoints in [vec![], vec![endpoint(5, 80)]] {
            let mut s = state(endpoints);
            let unclaimed = render(&name(Protocol::Tcp), &s, cidr());
            assert!(!unclaimed
                .elements
                .keys()
                .any(|(map, _)| *map == CLUSTER_IPS));
            s.claims_cluster_ip = true;
            let claimed = render(&name(Protocol::Tcp), &s, cidr());
            assert_eq!(
                claimed.elements[&(CLUSTER_IPS, "10.43.0.20".to_string())],
                "goto proxy-reject"
            );
        }
    }

    #[test]
    fn the_service_range_is_checked_after_dnat() {
        let script = base_script("t", "10.43.0.0/16".parse().unwrap());
        for line in [
            "add chain ip t proxy-filter-output-post-dnat { type filter hook output priority -90; policy accept; }",
            "add map ip t proxy-cluster-ips { type ipv4_addr : verdict; }",
            "add rule ip t proxy-filter-output-post-dnat ct state new jump proxy-cluster-ips-check",
            "add rule ip t proxy-filter-forward ct state new jump proxy-cluster-ips-check",
            "add rule ip t proxy-cluster-ips-check ip daddr vmap @proxy-cluster-ips",
            "add rule ip t proxy-cluster-ips-check ip daddr 10.43.0.0/16 drop",
            "add rule ip t proxy-filter-prerouting ct state new jump proxy-firewall-check",
            "add rule ip t proxy-filter-output ct state new jump proxy-firewall-check",
        ] {
            assert!(script.contains(&format!("{line}\n")), "{line}\n{script}");
        }
    }

    #[test]
    fn names_keep_only_what_nft_reads() {
        let odd = ServicePortName {
            port: "a b;{c}".into(),
            ..name(Protocol::Tcp)
        };
        let rules = render(&odd, &state(vec![endpoint(5, 80)]), cidr());
        let service = rules.chains.keys().find(|c| c.starts_with("svc-")).unwrap();
        assert!(service.ends_with("-ns/web/tcp/a_b__c_"), "{service}");
        let plain = render(&name(Protocol::Tcp), &state(vec![endpoint(5, 80)]), cidr());
        assert_ne!(plain.chains.keys().last(), rules.chains.keys().last());
    }

    #[test]
    fn names_of_the_proxy_are_recognised() {
        assert!(is_service_object("svc-ABCD0123-ns/web/tcp/http"));
        assert!(is_service_object("aff-ABCD0123-x"));
        assert!(is_service_object("fw-ABCD0123-ns/web/tcp/http"));
        for fixed in ["proxy-services", "hostports", "prerouting"] {
            assert!(!is_service_object(fixed), "{fixed}");
        }
    }
}

/// Against the kernel: what the rules of this module load as nft reads them.
#[cfg(test)]
mod table_tests {
    use std::collections::BTreeMap;
    use std::process::Command;

    use peapod_net::firewall::Firewall;
    use peapod_net::NetworkConfig;

    use crate::model::{Endpoint, Protocol, ServicePortName, ServicePortState};
    use crate::sync::Syncer;

    #[test]
    fn firewalled_sctp_and_claimed_ports_load() {
        let config = NetworkConfig::new("pxtest-fw", "10.253.0.0/24").unwrap();
        let firewall = Firewall::new(&config);
        firewall.ensure_base().unwrap();
        let service_cidr = "10.254.0.0/16".parse().unwrap();
        let mut syncer = Syncer::new(firewall.table(), config.cidr, service_cidr);
        let mut desired = BTreeMap::new();
        for (protocol, claims) in [(Protocol::Tcp, true), (Protocol::Sctp, false)] {
            let name = ServicePortName {
                namespace: "ns".into(),
                name: "lb".into(),
                port: protocol.keyword().into(),
                protocol,
            };
            let state = ServicePortState {
                cluster_ip: Some("10.254.0.5".parse().unwrap()),
                load_balancer_ips: vec!["192.0.2.1".parse().unwrap()],
                external_ips: vec!["192.0.2.1".parse().unwrap()],
                source_ranges: vec!["10.253.0.7/32".parse().unwrap()],
                claims_cluster_ip: claims,
                port: 80,
                node_port: Some(30080),
                endpoints: vec![Endpoint {
                    ip: "10.253.0.7".parse().unwrap(),
                    port: 8080,
                }],
                ..ServicePortState::default()
            };
            desired.insert(name, state);
        }
        let synced = syncer.full_sync(desired);
        let listed = Command::new("nft")
            .args(["list", "table", "ip", firewall.table()])
            .output()
            .unwrap();
        let _ = firewall.delete_table();
        synced.unwrap();
        let rules = String::from_utf8(listed.stdout).unwrap();
        assert!(rules.contains("ip saddr != 10.253.0.7 drop"), "{rules}");
        assert!(
            rules.contains("192.0.2.1 . sctp . 80 : goto fw-"),
            "{rules}"
        );
        assert!(rules.contains("10.254.0.5 : goto proxy-reject"), "{rules}");
        assert!(rules.contains("ip daddr 10.254.0.0/16 drop"), "{rules}");
        assert!(rules.contains("sctp . 30080 : goto ext-"), "{rules}");
    }
}
