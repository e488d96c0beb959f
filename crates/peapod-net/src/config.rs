//! The network an agent owns: its bridge's name and its pod range, from PEAPOD_BRIDGE and
//! PEAPOD_POD_CIDR, checked before anything on the host is touched.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;

pub const DEFAULT_BRIDGE: &str = "peapod0";
pub const DEFAULT_POD_CIDR: &str = "10.42.0.0/16";

/// Where an agent records its network in its state directory: `peapod uninstall` reads it to
/// dismantle that agent's bridge and table, whatever its own environment says.
const RECORD_FILE: &str = "network.conf";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("PEAPOD_BRIDGE {name:?} is not a valid interface name: {reason}")]
    BridgeName { name: String, reason: &'static str },
    #[error("PEAPOD_POD_CIDR {value:?} is not an IPv4 network such as 10.42.0.0/16")]
    Cidr { value: String },
    #[error("PEAPOD_POD_CIDR {value} is not a network address: did you mean {network}?")]
    HostBits { value: String, network: Ipv4Net },
    #[error("PEAPOD_POD_CIDR {value} is too small: a pod range needs a prefix of /30 or shorter")]
    TooSmall { value: String },
}

/// The bridge and pod range of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub bridge: String,
    pub cidr: Ipv4Net,
}

impl NetworkConfig {
    pub fn new(bridge: &str, cidr: &str) -> Result<NetworkConfig, ConfigError> {
        check_interface_name(bridge)?;
        Ok(NetworkConfig {
            bridge: bridge.to_string(),
            cidr: parse_cidr(cidr)?,
        })
    }

    /// PEAPOD_BRIDGE and PEAPOD_POD_CIDR, or the defaults (k3s' pod range).
    pub fn from_env() -> Result<NetworkConfig, ConfigError> {
        let bridge = std::env::var("PEAPOD_BRIDGE").unwrap_or_else(|_| DEFAULT_BRIDGE.into());
        let cidr = std::env::var("PEAPOD_POD_CIDR").unwrap_or_else(|_| DEFAULT_POD_CIDR.into());
        NetworkConfig::new(&bridge, &cidr)
    }

    /// The bridge's own address: the first of the range, with the range's prefix.
    pub fn gateway(&self) -> Ipv4Net {
        let first = Ipv4Addr::from(u32::from(self.cidr.network()) + 1);
        Ipv4Net::new(first, self.cidr.prefix_len()).expect("prefix of a parsed network")
    }

    /// The agent's own nftables table (family ip): one per bridge, so agents side by side
    /// never share rules, and never another program's table.
    pub fn table(&self) -> String {
        format!("peapod-{}", self.bridge)
    }

    /// Writes `bridge=` and `cidr=` lines to the record in `state_dir`, replacing it whole.
    pub fn record(&self, state_dir: &Path) -> std::io::Result<()> {
        let staged = state_dir.join(format!("{RECORD_FILE}.tmp"));
        let text = format!("bridge={}\ncidr={}\n", self.bridge, self.cidr);
        std::fs::write(&staged, text)?;
        std::fs::rename(&staged, state_dir.join(RECORD_FILE))
    }

    /// The network an agent recorded in `state_dir`; None when there is no valid record.
    pub fn recorded(state_dir: &Path) -> Option<NetworkConfig> {
        let text = std::fs::read_to_string(state_dir.join(RECORD_FILE)).ok()?;
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        };
        NetworkConfig::new(value("bridge")?, value("cidr")?).ok()
    }
}

fn check_interface_name(name: &str) -> Result<(), ConfigError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > 15 {
        "it is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "it is a path component"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        "only letters, digits, '-', '_' and '.' are allowed"
    } else {
        return Ok(());
    };
    Err(ConfigError::BridgeName {
        name: name.to_string(),
        reason,
    })
}

fn parse_cidr(value: &str) -> Result<Ipv4Net, ConfigError> {
    let cidr: Ipv4Net = value.trim().parse().map_err(|_| ConfigError::Cidr {
        value: value.to_string(),
    })?;
    if cidr.network() != cidr.addr() {
        return Err(ConfigError::HostBits {
            value: value.to_string(),
            network: cidr.trunc(),
        });
    }
    if cidr.prefix_len() > 30 {
        return Err(ConfigError::TooSmall {
            value: value.to_string(),
        });
    }
    Ok(cidr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_k3s() {
        let config = NetworkConfig::new(DEFAULT_BRIDGE, DEFAULT_POD_CIDR).unwrap();
        assert_eq!(config.gateway().to_string(), "10.42.0.1/16");
        assert_eq!(config.table(), "peapod-peapod0");
    }

    #[test]
    fn the_record_gives_back_the_config() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(NetworkConfig::recorded(dir.path()), None);
        let config = NetworkConfig::new("pe1", "10.99.0.0/24").unwrap();
        config.record(dir.path()).unwrap();
        assert_eq!(NetworkConfig::recorded(dir.path()), Some(config));
        std::fs::write(
            dir.path().join(RECORD_FILE),
            "bridge=a b\ncidr=10.99.0.0/24\n",
        )
        .unwrap();
        assert_eq!(NetworkConfig::recorded(dir.path()), None);
    }

    #[test]
    fn bad_bridge_names_are_refused() {
        for name in ["", "a-very-long-bridge-name", "br 0", "br/0", ".."] {
            let err = NetworkConfig::new(name, DEFAULT_POD_CIDR).unwrap_err();
            assert!(
                matches!(err, ConfigError::BridgeName { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn bad_ranges_are_refused_with_the_reason() {
        assert!(matches!(
            NetworkConfig::new("b", "10.42.0.0").unwrap_err(),
            ConfigError::Cidr { .. }
        ));
        assert!(matches!(
            NetworkConfig::new("b", "fd00::/64").unwrap_err(),
            ConfigError::Cidr { .. }
        ));
        let err = NetworkConfig::new("b", "10.42.1.5/16").unwrap_err();
        assert_eq!(
            err.to_string(),
            "PEAPOD_POD_CIDR 10.42.1.5/16 is not a network address: did you mean 10.42.0.0/16?"
        );
        assert!(matches!(
            NetworkConfig::new("b", "10.42.0.0/31").unwrap_err(),
            ConfigError::TooSmall { .. }
        ));
    }
}
