//! The proxy's use of nft: its transactions, and the one listing of the table a full sync
//! makes to find the chains and sets a previous run left.

use std::collections::BTreeSet;

pub use peapod_net::nft::NftError;

use crate::rules::is_service_object;

/// Applies `script` to `table` as one transaction: all of it or nothing.
pub fn apply(table: &str, script: &str) -> Result<(), NftError> {
    peapod_net::nft::apply(table, "syncing the service rules", script)
}

/// The per-Service chains and sets the table holds: (chains, sets).
pub fn service_objects(table: &str) -> Result<(BTreeSet<String>, BTreeSet<String>), NftError> {
    let (mut chains, mut sets) = (BTreeSet::new(), BTreeSet::new());
    for object in peapod_net::nft::list(table, None)? {
        for (kind, names) in [("chain", &mut chains), ("set", &mut sets)] {
            let name = object.get(kind).and_then(|o| o["name"].as_str());
            if let Some(name) = name.filter(|n| is_service_object(n)) {
                names.insert(name.to_string());
            }
        }
    }
    Ok((chains, sets))
}
