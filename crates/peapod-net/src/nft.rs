//! Running nft for a table of ours: a script applied as one `nft -f -` transaction, and the
//! JSON listing of the table or one of its chains. The agent's firewall and the service
//! proxy both go through here.

use std::io::Write;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running nft (install the nftables package): {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft refused the rules of table ip {table} while {action}: {stderr}")]
    Refused {
        table: String,
        action: String,
        stderr: String,
    },
    #[error("reading table ip {table} from nft: {detail}")]
    Listing { table: String, detail: String },
}

/// Applies `script`, a change to table ip `table`, as one transaction: all of it or nothing.
/// `action` says what the change is for in the error.
pub fn apply(table: &str, action: &str, script: &str) -> Result<(), NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .map_err(NftError::Spawn)?;
    let output = child.wait_with_output().map_err(NftError::Spawn)?;
    if output.status.success() {
        return Ok(());
    }
    Err(NftError::Refused {
        table: table.to_string(),
        action: action.to_string(),
        stderr: trimmed(&output.stderr),
    })
}

/// The objects (`{"chain": …}`, `{"rule": …}`, …) of table ip `table`, or of its chain
/// `chain` only, with their handles.
pub fn list(table: &str, chain: Option<&str>) -> Result<Vec<serde_json::Value>, NftError> {
    let listing = |detail: String| NftError::Listing {
        table: table.to_string(),
        detail,
    };
    let mut command = Command::new("nft");
    command.args(["-j", "-a", "list"]);
    match chain {
        Some(chain) => command.args(["chain", "ip", table, chain]),
        None => command.args(["table", "ip", table]),
    };
    let output = command.output().map_err(NftError::Spawn)?;
    if !output.status.success() {
        return Err(listing(trimmed(&output.stderr)));
    }
    let mut json: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| listing(e.to_string()))?;
    match json["nftables"].take() {
        serde_json::Value::Array(objects) => Ok(objects),
        _ => Err(listing("no \"nftables\" array in its output".to_string())),
    }
}

fn trimmed(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_table_is_a_listing_error_naming_it() {
        let err = list("nfttest-missing", None).unwrap_err();
        assert!(matches!(err, NftError::Listing { .. }), "{err}");
        assert!(
            err.to_string().contains("table ip nfttest-missing"),
            "{err}"
        );
    }

    #[test]
    fn a_refused_script_names_the_table_and_the_action() {
        let err = apply(
            "nfttest-missing",
            "testing",
            "add rule ip nfttest-missing x drop\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("nft refused the rules of table ip nfttest-missing while testing: "),
            "{err}"
        );
    }
}
