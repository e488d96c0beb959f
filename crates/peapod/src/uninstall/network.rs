//! The agent's network: its pods' veths, then the bridge and nftables table its record names
//! (`NetworkConfig::recorded`, never this process's environment, which may name another
//! agent's). The bridge and table stay when links that are not this agent's are on the bridge.

use std::collections::BTreeSet;
use std::path::Path;

use peapod_net::firewall::Firewall;
use peapod_net::link::Links;
use peapod_net::{host_veth_name, NetworkConfig};

use super::{Report, UninstallError};
use crate::paths::Paths;

pub async fn dismantle(paths: &Paths, pods: &BTreeSet<String>, report: &mut Report<'_>) {
    let state_dir = paths.data_dir().join("network");
    let links = match Links::connect() {
        Ok(links) => links,
        Err(err) => return report.failed(err.into()),
    };
    for uid in pods {
        if let Err(err) = delete_veth(&links, uid, report).await {
            report.failed(err);
        }
    }
    let Some(config) = NetworkConfig::recorded(&state_dir) else {
        if state_dir.exists() {
            report.note(format!(
                "no bridge recorded in {}: no bridge or nftables table touched",
                state_dir.display()
            ));
        }
        return;
    };
    match delete_bridge(&links, &config, report).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(err) => return report.failed(err),
    }
    if let Err(err) = delete_table(&config, report) {
        report.failed(err);
    }
}

async fn delete_veth(
    links: &Links,
    uid: &str,
    report: &mut Report<'_>,
) -> Result<(), UninstallError> {
    let veth = host_veth_name(uid);
    if !Path::new("/sys/class/net").join(&veth).exists() {
        return Ok(());
    }
    links.delete_link(&veth).await?;
    report.removed(format!("deleted veth {veth}"));
    Ok(())
}

/// Deletes the bridge when it is one and nothing is on it; true when it is gone.
async fn delete_bridge(
    links: &Links,
    config: &NetworkConfig,
    report: &mut Report<'_>,
) -> Result<bool, UninstallError> {
    let bridge = &config.bridge;
    let Some(index) = links.index_of(bridge).await? else {
        return Ok(true);
    };
    let kept = |reason: String| UninstallError::BridgeKept {
        bridge: bridge.clone(),
        reason,
    };
    if !Path::new("/sys/class/net")
        .join(bridge)
        .join("bridge")
        .exists()
    {
        report.failed(kept("it is not a bridge".into()));
        return Ok(false);
    }
    let ports = links.bridge_ports(index).await?;
    if !ports.is_empty() {
        let on_it = ports.join(", ");
        report.failed(kept(format!(
            "{on_it}, not of this agent's pods, are on it"
        )));
        return Ok(false);
    }
    links.delete_link(bridge).await?;
    report.removed(format!("deleted bridge {bridge}"));
    Ok(true)
}

fn delete_table(config: &NetworkConfig, report: &mut Report<'_>) -> Result<(), UninstallError> {
    let firewall = Firewall::new(config);
    if firewall.exists()? {
        firewall.delete_table()?;
        report.removed(format!("deleted nftables table ip {}", firewall.table()));
    }
    Ok(())
}
