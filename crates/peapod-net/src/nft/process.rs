//! The `nft` binary, the fallback when libnftables does not load: a script on the stdin of
//! `nft -f -`, a listing from `nft -j -a list`.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{Answer, NftError};

/// Runs `script` as one `nft -f -` transaction.
pub(super) fn apply(script: &str) -> Result<Answer, NftError> {
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
    Ok(Answer {
        succeeded: output.status.success(),
        output: String::new(),
        error: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Lists table ip `table`, or its chain `chain`, as JSON with handles.
pub(super) fn list(table: &str, chain: Option<&str>) -> Result<Answer, NftError> {
    let mut command = Command::new("nft");
    command.args(["-j", "-a", "list"]);
    match chain {
        Some(chain) => command.args(["chain", "ip", table, chain]),
        None => command.args(["table", "ip", table]),
    };
    let output = command.output().map_err(NftError::Spawn)?;
    Ok(Answer {
        succeeded: output.status.success(),
        output: String::from_utf8_lossy(&output.stdout).into_owned(),
        error: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
