//! The agent's own nftables table (family ip, named after its bridge): masquerade for traffic
//! leaving the pod range, and the DNAT rules of hostPorts, as the CNI portmap plugin sets them
//! up, and kube-proxy's guard of the node's loopback. Every change is one nft transaction
//! ([`crate::nft`]); no other table is ever read or written.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use ipnet::Ipv4Net;

use crate::config::NetworkConfig;
use crate::nft::{self, NftError};

const HOSTPORTS: &str = "hostports";
/// The mark of packets that came from outside the node to one of its addresses (portmap's
/// hairpin mark): DNAT-ed back into the pod range, they are masqueraded so that replies
/// come back through the node. Service traffic to a ClusterIP keeps its pod source, as kube's.
const TO_NODE_MARK: &str = "0x2000";

/// The comment of the input rule that keeps pods off the node's loopback services: with
/// `route_localnet` on the bridge (hostPorts on 127.0.0.1 need it), the kernel would deliver
/// a frame a pod addresses to 127.0.0.1 (CVE-2020-8558). kube-proxy's rule since 1.18.4:
/// only replies and DNAT-ed connections may reach 127.0.0.0/8 from outside it.
const LOOPBACK_GUARD: &str = "pods may not reach the node's loopback (CVE-2020-8558)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn keyword(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A container port published on the node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub protocol: Protocol,
    /// None: every address of the node.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
}

pub struct Firewall {
    table: String,
    bridge: String,
    cidr: Ipv4Net,
    /// Listing a pod's rules and deleting them must not interleave with another change.
    lock: Mutex<()>,
}

impl Firewall {
    pub fn new(config: &NetworkConfig) -> Firewall {
        Firewall {
            table: config.table(),
            bridge: config.bridge.clone(),
            cidr: config.cidr,
            lock: Mutex::new(()),
        }
    }

    /// The table's name, as nft reads it unquoted: "peapod-" and a checked interface name
    /// form a plain identifier (a letter first, then letters, digits, '-', '_', '.').
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table and rewrites its base chains; the hostPort rules of live pods stay.
    pub fn ensure_base(&self) -> Result<(), NftError> {
        let _guard = self.lock.lock().expect("firewall lock");
        self.apply(&self.base_script(), "setting up the base chains")
    }

    /// Publishes the pod's ports, replacing any rules it had.
    pub fn add_host_ports(
        &self,
        owner: &str,
        pod_ip: Ipv4Addr,
        ports: &[HostPort],
    ) -> Result<(), NftError> {
        let _guard = self.lock.lock().expect("firewall lock");
        let mut script = self.delete_script(owner)?;
        for port in ports {
            script.push_str(&self.dnat_rule(owner, pod_ip, port));
        }
        self.apply(
            &script,
            &format!("publishing the host ports of pod {owner}"),
        )
    }

    /// Withdraws the pod's ports; Ok when it has none.
    pub fn remove_host_ports(&self, owner: &str) -> Result<(), NftError> {
        let _guard = self.lock.lock().expect("firewall lock");
        let script = self.delete_script(owner)?;
        if script.is_empty() {
            return Ok(());
        }
        self.apply(
            &script,
            &format!("withdrawing the host ports of pod {owner}"),
        )
    }

    /// The pods that have hostPort rules.
    pub fn owners(&self) -> Result<HashSet<String>, NftError> {
        Ok(self
            .hostport_rules()?
            .into_iter()
            .map(|(_, owner)| owner)
            .collect())
    }

    /// Whether the table exists.
    pub fn exists(&self) -> Result<bool, NftError> {
        let status = Command::new("nft")
            .args(["list", "table", "ip", &self.table])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(NftError::Spawn)?;
        Ok(status.success())
    }

    /// Removes the whole table (the agent's network is being dismantled).
    pub fn delete_table(&self) -> Result<(), NftError> {
        let _guard = self.lock.lock().expect("firewall lock");
        let script = format!("add table ip {t}\ndelete table ip {t}\n", t = self.table());
        self.apply(&script, "deleting the table")
    }

    fn base_script(&self) -> String {
        let (t, cidr, bridge) = (self.table(), self.cidr, &self.bridge);
        format!(
            "add table ip {t}\n\
             add chain ip {t} {HOSTPORTS}\n\
             add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n\
             add chain ip {t} output {{ type nat hook output priority -100; policy accept; }}\n\
             add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
             add chain ip {t} input {{ type filter hook input priority filter; policy accept; }}\n\
             flush chain ip {t} prerouting\n\
             flush chain ip {t} output\n\
             flush chain ip {t} postrouting\n\
             flush chain ip {t} input\n\
             add rule ip {t} prerouting fib daddr type local meta mark set meta mark | {TO_NODE_MARK}\n\
             add rule ip {t} prerouting fib daddr type local jump {HOSTPORTS}\n\
             add rule ip {t} output fib daddr type local jump {HOSTPORTS}\n\
             add rule ip {t} postrouting ct status dnat ip saddr 127.0.0.0/8 oifname \"{bridge}\" masquerade comment \"localhost to a host port\"\n\
             add rule ip {t} postrouting ct status dnat ip saddr {cidr} ip daddr {cidr} meta mark & {TO_NODE_MARK} == {TO_NODE_MARK} masquerade comment \"a pod to a host port of the pod range\"\n\
             add rule ip {t} postrouting ip saddr {cidr} ip daddr != {cidr} ip daddr != 224.0.0.0/4 masquerade comment \"pods to beyond the node\"\n\
             add rule ip {t} input iifname \"{bridge}\" ip daddr 127.0.0.0/8 ip saddr != 127.0.0.0/8 ct state & (established | related) == 0 ct status & dnat == 0 drop comment \"{LOOPBACK_GUARD}\"\n"
        )
    }

    fn dnat_rule(&self, owner: &str, pod_ip: Ipv4Addr, port: &HostPort) -> String {
        let proto = port.protocol.keyword();
        let daddr = port
            .host_ip
            .map(|ip| format!("ip daddr {ip} "))
            .unwrap_or_default();
        format!(
            "add rule ip {t} {HOSTPORTS} {daddr}{proto} dport {hp} dnat to {pod_ip}:{cp} comment \"{owner}\"\n",
            t = self.table(),
            hp = port.host_port,
            cp = port.container_port,
        )
    }

    fn delete_script(&self, owner: &str) -> Result<String, NftError> {
        Ok(self
            .hostport_rules()?
            .into_iter()
            .filter(|(_, o)| o == owner)
            .map(|(handle, _)| {
                format!(
                    "delete rule ip {} {HOSTPORTS} handle {handle}\n",
                    self.table()
                )
            })
            .collect())
    }

    /// (handle, owner) of every rule in the hostports chain.
    fn hostport_rules(&self) -> Result<Vec<(u64, String)>, NftError> {
        let objects = nft::list(&self.table, Some(HOSTPORTS))?;
        Ok(objects
            .iter()
            .filter_map(|object| {
                let rule = object.get("rule")?;
                Some((
                    rule["handle"].as_u64()?,
                    rule["comment"].as_str()?.to_string(),
                ))
            })
            .collect())
    }

    fn apply(&self, script: &str, action: &str) -> Result<(), NftError> {
        nft::apply(&self.table, action, script)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchTable;

    /// A table of its own per test, removed even when the test fails.
    fn scratch(bridge: &str) -> ScratchTable {
        ScratchTable::new(bridge, "10.250.0.0/24")
    }

    fn port(protocol: Protocol, host_ip: Option<Ipv4Addr>, host: u16, container: u16) -> HostPort {
        HostPort {
            protocol,
            host_ip,
            host_port: host,
            container_port: container,
        }
    }

    #[test]
    fn base_chains_masquerade_the_pod_range_and_are_idempotent() {
        let table = scratch("fwtest-base");
        table.firewall().ensure_base().unwrap();
        let rules = table.ruleset();
        assert_eq!(rules.matches("jump hostports").count(), 2, "{rules}");
        assert!(
            rules.contains("ip saddr 10.250.0.0/24 ip daddr != 10.250.0.0/24"),
            "{rules}"
        );
        assert_eq!(rules.matches("masquerade").count(), 3, "{rules}");
        let to_node = "ip saddr 10.250.0.0/24 ip daddr 10.250.0.0/24 meta mark & 0x00002000 == 0x00002000 masquerade";
        assert!(
            rules.contains(to_node),
            "only what was sent to the node is masqueraded back into the range: {rules}"
        );
    }

    #[test]
    fn only_replies_and_dnat_reach_loopback_from_the_bridge() {
        let table = scratch("fwtest-lo");
        table.firewall().ensure_base().unwrap();
        let rules = table.ruleset();
        let guard: Vec<&str> = rules
            .lines()
            .filter(|l| l.contains(LOOPBACK_GUARD))
            .collect();
        assert_eq!(guard.len(), 1, "{rules}");
        for part in [
            "iifname \"fwtest-lo\"",
            "ip daddr 127.0.0.0/8 ip saddr != 127.0.0.0/8",
            "established",
            "related",
            "dnat drop",
        ] {
            assert!(guard[0].contains(part), "{part} in {rules}");
        }
        assert!(rules.contains("hook input priority filter"), "{rules}");
    }

    #[test]
    fn host_ports_are_added_replaced_and_removed_per_pod() {
        let table = scratch("fwtest-ports");
        let fw = table.firewall();
        let pod_ip = Ipv4Addr::new(10, 250, 0, 5);
        fw.add_host_ports(
            "uid-a",
            pod_ip,
            &[
                port(Protocol::Tcp, None, 8001, 80),
                port(Protocol::Udp, Some(Ipv4Addr::new(127, 0, 0, 1)), 5353, 53),
            ],
        )
        .unwrap();
        fw.add_host_ports(
            "uid-b",
            Ipv4Addr::new(10, 250, 0, 6),
            &[port(Protocol::Tcp, None, 8002, 80)],
        )
        .unwrap();
        let rules = table.ruleset();
        assert!(
            rules.contains("tcp dport 8001 dnat to 10.250.0.5:80"),
            "{rules}"
        );
        assert!(
            rules.contains("ip daddr 127.0.0.1 udp dport 5353 dnat to 10.250.0.5:53"),
            "{rules}"
        );
        assert_eq!(
            fw.owners().unwrap(),
            HashSet::from(["uid-a".to_string(), "uid-b".to_string()])
        );

        fw.add_host_ports("uid-a", pod_ip, &[port(Protocol::Sctp, None, 9000, 9000)])
            .unwrap();
        let rules = table.ruleset();
        assert!(!rules.contains("8001"), "{rules}");
        assert!(rules.contains("sctp dport 9000"), "{rules}");

        fw.remove_host_ports("uid-a").unwrap();
        fw.remove_host_ports("uid-a").unwrap();
        assert_eq!(fw.owners().unwrap(), HashSet::from(["uid-b".to_string()]));
        table.firewall().ensure_base().unwrap();
        assert!(
            table.ruleset().contains("dport 8002"),
            "base rewrite keeps pod rules"
        );
    }

    #[test]
    fn a_refused_change_names_the_table() {
        let table = scratch("fwtest-bad");
        let err = table
            .firewall()
            .apply("add rule ip fwtest-nope x drop\n", "testing")
            .unwrap_err();
        assert!(err.to_string().contains("fwtest-bad"), "{err}");
    }
}
