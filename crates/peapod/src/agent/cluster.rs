//! The cluster-wide settings of an agent: the Service range (`PEAPOD_SERVICE_CIDR`, default
//! k3s' 10.43.0.0/16), whose first address is the `kubernetes` Service's, and the cluster
//! domain (`PEAPOD_CLUSTER_DOMAIN`, default `cluster.local`) and the NodePort range
//! (`PEAPOD_SERVICE_NODE_PORT_RANGE`, default kube's 30000-32767).

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use ipnet::Ipv4Net;

pub const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";

#[derive(Debug, thiserror::Error)]
pub enum ClusterConfigError {
    #[error("PEAPOD_SERVICE_CIDR {value:?} is not an IPv4 network such as 10.43.0.0/16 with room for the DNS Service at .10")]
    ServiceCidr { value: String },
    #[error("PEAPOD_CLUSTER_DOMAIN {value:?} is not a DNS domain such as cluster.local")]
    Domain { value: String },
    #[error("PEAPOD_SERVICE_NODE_PORT_RANGE {value:?} is not a port range such as 30000-32767 (first-last, 1 to 65535, first ≤ last)")]
    NodePortRange { value: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub service_cidr: Ipv4Net,
    pub domain: String,
    /// The ports NodePort and LoadBalancer Services are given.
    pub node_port_range: RangeInclusive<u16>,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig::new(DEFAULT_SERVICE_CIDR, DEFAULT_CLUSTER_DOMAIN).expect("valid defaults")
    }
}

impl ClusterConfig {
    pub fn new(service_cidr: &str, domain: &str) -> Result<ClusterConfig, ClusterConfigError> {
        let cidr: Ipv4Net = service_cidr
            .trim()
            .parse()
            .ok()
            .filter(|cidr: &Ipv4Net| cidr.network() == cidr.addr() && cidr.prefix_len() <= 28)
            .ok_or_else(|| ClusterConfigError::ServiceCidr {
                value: service_cidr.to_string(),
            })?;
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if domain.is_empty() || !domain.split('.').all(label_ok) {
            return Err(ClusterConfigError::Domain {
                value: domain.to_string(),
            });
        }
        Ok(ClusterConfig {
            service_cidr: cidr,
            domain,
            node_port_range: 30000..=32767,
        })
    }

    /// The same settings with the NodePort range `range` (`first-last`).
    pub fn with_node_port_range(self, range: &str) -> Result<ClusterConfig, ClusterConfigError> {
        let invalid = || ClusterConfigError::NodePortRange {
            value: range.to_string(),
        };
        let (first, last) = range.trim().split_once('-').ok_or_else(invalid)?;
        let port = |text: &str| text.trim().parse::<u16>().ok().filter(|p| *p > 0);
        match (port(first), port(last)) {
            (Some(first), Some(last)) if first <= last => Ok(ClusterConfig {
                node_port_range: first..=last,
                ..self
            }),
            _ => Err(invalid()),
        }
    }

    /// PEAPOD_SERVICE_CIDR, PEAPOD_CLUSTER_DOMAIN and PEAPOD_SERVICE_NODE_PORT_RANGE, or the
    /// defaults.
    pub fn from_env() -> Result<ClusterConfig, ClusterConfigError> {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        ClusterConfig::new(
            &var("PEAPOD_SERVICE_CIDR", DEFAULT_SERVICE_CIDR),
            &var("PEAPOD_CLUSTER_DOMAIN", DEFAULT_CLUSTER_DOMAIN),
        )?
        .with_node_port_range(&var(
            "PEAPOD_SERVICE_NODE_PORT_RANGE",
            DEFAULT_NODE_PORT_RANGE,
        ))
    }

    /// Where the Service kind takes cluster IPs and node ports from.
    pub fn service_network(&self) -> peapod_apis::ServiceNetwork {
        peapod_apis::ServiceNetwork {
            cidr: self.service_cidr,
            node_ports: self.node_port_range.clone(),
        }
    }

    /// The `kubernetes` Service's cluster IP: the range's first address.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        self.nth_address(1)
    }

    /// The cluster DNS Service's IP: the range's `.10`, as k3s'.
    pub fn dns_service_ip(&self) -> Ipv4Addr {
        self.nth_address(10)
    }

    fn nth_address(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.service_cidr.network()) + n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_k3s() {
        let config = ClusterConfig::default();
        assert_eq!(config.kubernetes_service_ip().to_string(), "10.43.0.1");
        assert_eq!(config.dns_service_ip().to_string(), "10.43.0.10");
        assert_eq!(config.domain, "cluster.local");
        assert_eq!(config.node_port_range, 30000..=32767);
    }

    #[test]
    fn node_port_ranges_are_parsed() {
        let config = ClusterConfig::default();
        let given = config.clone().with_node_port_range("30064-30095").unwrap();
        assert_eq!(given.node_port_range, 30064..=30095);
        for bad in ["", "30000", "32767-30000", "0-10", "30000-70000", "a-b"] {
            let err = config.clone().with_node_port_range(bad).unwrap_err();
            assert!(
                err.to_string().contains("PEAPOD_SERVICE_NODE_PORT_RANGE"),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_ranges_and_domains_are_refused() {
        assert_eq!(
            ClusterConfig::new("10.96.0.0/12", "Example.TEST.")
                .unwrap()
                .domain,
            "example.test"
        );
        for cidr in ["10.43.0.1/16", "10.43.0.0/30", "fd00::/64", "nope"] {
            assert!(ClusterConfig::new(cidr, "cluster.local").is_err(), "{cidr}");
        }
        for domain in ["", "a..b", "-a.b", "a_b.c"] {
            assert!(
                ClusterConfig::new("10.43.0.0/16", domain).is_err(),
                "{domain}"
            );
        }
    }
}
