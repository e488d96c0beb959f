//! The pod network of peapod: one bridge per agent, a veth pair per pod sandbox with an
//! address from a persistent IPAM, and the agent's own nftables table for masquerade and
//! hostPorts. [`Network`] is what the kubelet calls; the modules below each do one part.

pub mod config;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod nft;
#[cfg(any(test, feature = "scratch-table"))]
pub mod scratch;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::Ipv4Net;

pub use config::NetworkConfig;
pub use firewall::{HostPort, Protocol};

use firewall::Firewall;
use ipam::{Ipam, IpamError};
use link::{LinkError, Links};
use nft::NftError;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Firewall(#[from] NftError),
    #[error("pod range {cidr} overlaps the host route to {route}: choose another PEAPOD_POD_CIDR")]
    Overlap { cidr: Ipv4Net, route: Ipv4Net },
    #[error("setting {path}: {source}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("recording the network in {}: {source}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<NetError>),
}

/// The agent's pod network, set up on the host.
pub struct Network {
    config: NetworkConfig,
    links: Links,
    bridge_index: u32,
    ipam: Ipam,
    firewall: Firewall,
    /// The pods that have hostPort rules: a pod without any is detached without running nft.
    published: Mutex<HashSet<String>>,
}

impl Network {
    /// Checks the range against the host's routes, then makes sure the bridge, IP forwarding
    /// and the agent's nftables table exist. `state_dir` keeps the address allocations and the
    /// record of the bridge and range (see [`NetworkConfig::recorded`]).
    pub async fn open(config: NetworkConfig, state_dir: &Path) -> Result<Network, NetError> {
        let links = Links::connect()?;
        let existing_bridge = links.index_of(&config.bridge).await?;
        for (route, oif) in links.ipv4_routes().await? {
            let ours = existing_bridge.is_some() && oif == existing_bridge;
            if route.prefix_len() > 0 && !ours && overlaps(route, config.cidr) {
                return Err(NetError::Overlap {
                    cidr: config.cidr,
                    route,
                });
            }
        }
        let ipam = Ipam::open(&state_dir.join("ipam"), config.cidr)?;
        // Before the bridge exists, so that no bridge of ours is ever left unrecorded.
        config
            .record(state_dir)
            .map_err(|source| NetError::Record {
                path: state_dir.to_path_buf(),
                source,
            })?;
        let bridge_index = links
            .ensure_bridge(&config.bridge, config.gateway())
            .await?;
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        // Lets hostPorts answer on 127.0.0.1: DNATed loopback traffic may leave by the bridge.
        sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", config.bridge),
            "1",
        )?;
        let firewall = Firewall::new(&config);
        firewall.ensure_base()?;
        let published = Mutex::new(firewall.owners()?);
        Ok(Network {
            config,
            links,
            bridge_index,
            ipam,
            firewall,
            published,
        })
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Gives the pod whose network namespace is `netns` its address, interface and host
    /// ports. Rolls back what it did on failure. Returns the pod IP.
    pub async fn attach(
        &self,
        pod_uid: &str,
        netns: &Path,
        host_ports: &[HostPort],
    ) -> Result<Ipv4Addr, NetError> {
        let ip = self.ipam.allocate(pod_uid)?;
        let veth = host_veth_name(pod_uid);
        let address = Ipv4Net::new(ip, self.config.cidr.prefix_len()).expect("range prefix");
        let gateway = self.config.gateway().addr();
        let result = async {
            self.links.delete_link(&veth).await?;
            self.links
                .add_pod_interface(&veth, self.bridge_index, netns, address, gateway)
                .await?;
            // A pod reaching itself through a Service is DNATed back to its own port: the
            // bridge must send the frame out where it came in (kubelet's hairpin-veth mode).
            sysctl(&format!("/sys/class/net/{veth}/brport/hairpin_mode"), "1")?;
            if !host_ports.is_empty() {
                self.published_mut().insert(pod_uid.to_string());
                self.firewall.add_host_ports(pod_uid, ip, host_ports)?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(ip),
            Err(err) => {
                let _ = self.detach(pod_uid).await;
                Err(err)
            }
        }
    }

    /// The pod's address, allocated now if it has none yet (it keeps it until detached).
    pub fn reserve(&self, pod_uid: &str) -> Result<Ipv4Addr, NetError> {
        Ok(self.ipam.allocate(pod_uid)?)
    }

    /// The address the pod holds, if any.
    pub fn pod_ip(&self, pod_uid: &str) -> Option<Ipv4Addr> {
        self.ipam.address_of(pod_uid)
    }

    /// Takes back everything [`Network::attach`] gave the pod. Goes on past failures and
    /// reports them all.
    pub async fn detach(&self, pod_uid: &str) -> Result<(), NetError> {
        let mut errors = Vec::new();
        if self.published_mut().contains(pod_uid) {
            match self.firewall.remove_host_ports(pod_uid) {
                Ok(()) => {
                    self.published_mut().remove(pod_uid);
                }
                Err(err) => errors.push(err.into()),
            }
        }
        if let Err(err) = self.links.delete_link(&host_veth_name(pod_uid)).await {
            errors.push(err.into());
        }
        if let Err(err) = self.ipam.release(pod_uid) {
            errors.push(err.into());
        }
        several(errors)
    }

    /// After a crash: detaches every pod that holds something here and is not in `live`.
    pub async fn remove_stale(&self, live: &HashSet<String>) -> Result<(), NetError> {
        let mut errors = Vec::new();
        let mut stale: HashSet<String> = self.ipam.owners().into_iter().collect();
        stale.extend(self.published_mut().iter().cloned());
        stale.retain(|uid| !live.contains(uid));
        for uid in &stale {
            tracing::info!(uid, "releasing the network of a deleted pod");
            if let Err(err) = self.detach(uid).await {
                errors.push(err);
            }
        }
        let live_veths: HashSet<String> = live.iter().map(|uid| host_veth_name(uid)).collect();
        match self.links.bridge_ports(self.bridge_index).await {
            Ok(ports) => {
                for port in ports.iter().filter(|p| !live_veths.contains(*p)) {
                    if let Err(err) = self.links.delete_link(port).await {
                        errors.push(err.into());
                    }
                }
            }
            Err(err) => errors.push(err.into()),
        }
        several(errors)
    }
}

impl Network {
    fn published_mut(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.published.lock().expect("published lock")
    }
}

/// The host end of a pod's veth pair: "pp" and the first 12 hex digits of its uid, within
/// the kernel's 15-byte limit and recognisable as the pod's.
pub fn host_veth_name(pod_uid: &str) -> String {
    let hex: String = pod_uid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    format!("pp{hex}")
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn sysctl(path: &str, value: &str) -> Result<(), NetError> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current.trim() == value {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| NetError::Sysctl {
        path: path.into(),
        source,
    })
}

fn several(mut errors: Vec<NetError>) -> Result<(), NetError> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(NetError::Several(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_the_kernel_limit() {
        let name = host_veth_name("1b4e28ba-2fa1-11d2-883f-0016d3cca427");
        assert_eq!(name, "pp1b4e28ba2fa1");
        assert!(name.len() <= 15);
    }

    #[test]
    fn overlap_in_both_directions() {
        let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
        assert!(overlaps(net("10.42.0.0/16"), net("10.42.3.0/24")));
        assert!(overlaps(net("10.0.0.0/8"), net("10.42.0.0/16")));
        assert!(!overlaps(net("192.0.2.0/24"), net("10.42.0.0/16")));
    }
}
