//! A firewall table of its own for a test against the kernel: set up as the agent sets its
//! table up, removed even when the test fails. Built for this crate's tests and, through the
//! `scratch-table` feature, for the service proxy's.

use std::process::Command;

use crate::config::NetworkConfig;
use crate::firewall::Firewall;

/// The table of a scratch bridge name over a pod range; dropped, the table goes.
pub struct ScratchTable(Firewall);

impl ScratchTable {
    /// The base chains of bridge `bridge`'s table over `pod_range` (both the test's own).
    pub fn new(bridge: &str, pod_range: &str) -> ScratchTable {
        let config = NetworkConfig::new(bridge, pod_range).expect("a scratch network");
        let firewall = Firewall::new(&config);
        firewall
            .ensure_base()
            .expect("the scratch table's base chains");
        ScratchTable(firewall)
    }

    pub fn firewall(&self) -> &Firewall {
        &self.0
    }

    /// `nft list table` of the table, as text.
    pub fn ruleset(&self) -> String {
        let out = Command::new("nft")
            .args(["list", "table", "ip", self.0.table()])
            .output()
            .expect("running nft");
        String::from_utf8(out.stdout).expect("nft prints UTF-8")
    }
}

impl Drop for ScratchTable {
    fn drop(&mut self) {
        let _ = self.0.delete_table();
    }
}
