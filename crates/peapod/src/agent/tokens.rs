//! Static bearer tokens, in kube-apiserver's `--token-auth-file` format: one CSV record a line,
//! `token,user,uid[,"group1,group2"]`. The file is made empty (0600) at first start, and read
//! again whenever it changes, so a token added to it works without restarting the agent.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use peapod_apiserver::authn::User;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {reason}")]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The tokens of one file, kept as of the file's last change.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

#[derive(Debug, Default)]
struct Loaded {
    /// Inode, size and modification time of the file that was read.
    stamp: Option<(u64, u64, i64, i64)>,
    tokens: HashMap<String, User>,
}

impl TokenFile {
    /// Reads `path`, making it empty (0600) when it is missing; a malformed file is an error.
    pub fn open(path: &Path) -> Result<TokenFile, TokenError> {
        let io = |source| TokenError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !path.exists() {
            crate::perms::write_private(path, b"").map_err(io)?;
        }
        let tokens = TokenFile {
            path: path.to_path_buf(),
            loaded: Mutex::new(Loaded::default()),
        };
        tokens.reload()?;
        Ok(tokens)
    }

    /// The user `token` authenticates, as the file says now.
    pub fn user(&self, token: &str) -> Option<User> {
        if let Err(err) = self.reload() {
            tracing::warn!("refusing every bearer token until the file is fixed: {err}");
            return None;
        }
        let loaded = self.loaded.lock().expect("token file lock");
        loaded.tokens.get(token).cloned()
    }

    /// Reads the file again if it changed since it was last read.
    fn reload(&self) -> Result<(), TokenError> {
        let io = |source| TokenError::Io {
            path: self.path.clone(),
            source,
        };
        let stamp = match std::fs::metadata(&self.path) {
            Ok(meta) => Some((meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(io(err)),
        };
        let mut loaded = self.loaded.lock().expect("token file lock");
        if stamp.is_some() && loaded.stamp == stamp {
            return Ok(());
        }
        let text = match stamp {
            Some(_) => std::fs::read_to_string(&self.path).map_err(io)?,
            None => String::new(),
        };
        // A broken file admits nobody, and is reported once per change.
        let parsed = parse(&text);
        *loaded = Loaded {
            stamp,
            tokens: parsed.clone().unwrap_or_default(),
        };
        parsed
            .map(drop)
            .map_err(|(line, reason)| TokenError::Parse {
                path: self.path.clone(),
                line,
                reason,
            })
    }
}

/// The tokens of a token file's text, or the line (from 1) and reason it is malformed. As
/// kube-apiserver: records need three fields, an empty token is skipped, a later duplicate
/// wins, and the fourth field is a comma-separated group list.
pub fn parse(text: &str) -> Result<HashMap<String, User>, (usize, String)> {
    let mut tokens = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_record(line).map_err(|reason| (line_number, reason.to_string()))?;
        if fields.len() < 3 {
            let reason = format!(
                "a record needs at least 3 columns (token, user name, user uid), found {}",
                fields.len()
            );
            return Err((line_number, reason));
        }
        if fields[0].is_empty() {
            tracing::warn!(line = line_number, "skipping an empty token");
            continue;
        }
        let groups: Vec<&str> = match fields.get(3) {
            Some(groups) if !groups.is_empty() => groups.split(',').collect(),
            _ => Vec::new(),
        };
        tokens.insert(fields[0].clone(), User::new(fields[1].clone(), &groups));
    }
    Ok(tokens)
}

/// The fields of one CSV record as Go's encoding/csv reads them with `TrimLeadingSpace`:
/// commas separate, double quotes enclose, `""` inside quotes is a quote.
fn split_record(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed"),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("extraneous text after a quoted field");
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                if c == '"' {
                    return Err("a bare \" in a field that is not quoted");
                }
                field.push(c);
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn records_give_users_and_their_groups() {
        let text = "tok1,alice,1001,\"dev,ops\"\n\n  tok2, bob ,1002\n\"to,k3\",carol,3,\"\"\n";
        let tokens = parse(text).unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens["tok1"], User::new("alice", &["dev", "ops"]));
        assert_eq!(tokens["tok2"].name, "bob ", "only leading space is trimmed");
        assert_eq!(tokens["tok2"].groups, ["system:authenticated"]);
        assert_eq!(tokens["to,k3"].name, "carol");
    }

    #[test]
    fn quotes_escape_and_bad_records_name_their_line() {
        let tokens = parse("a,\"say \"\"hi\"\"\",9\n").unwrap();
        assert_eq!(tokens["a"].name, "say \"hi\"");
        assert_eq!(parse("ok,u,1\nshort,u\n").unwrap_err().0, 2);
        assert_eq!(parse("x,\"open,1\n").unwrap_err().0, 1);
        assert_eq!(parse("x,\"q\"z,1\n").unwrap_err().0, 1);
        let skipped = parse(",nobody,1\nlast,u,1\nlast,v,2\n").unwrap();
        assert_eq!(skipped.len(), 1, "an empty token is skipped");
        assert_eq!(skipped["last"].name, "v", "a later duplicate wins");
    }

    #[test]
    fn the_file_is_made_private_and_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        let file = TokenFile::open(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(file.user("secret"), None);
        std::fs::write(&path, "secret,dana,7,system:masters\n").unwrap();
        assert_eq!(
            file.user("secret"),
            Some(User::new("dana", &["system:masters"]))
        );
        std::fs::write(&path, "secret,dana\n").unwrap();
        assert_eq!(file.user("secret"), None, "a broken file admits nobody");
        assert_eq!(file.user("secret"), None, "nor does it read again");
        std::fs::write(&path, "other,erin,8\n").unwrap();
        assert_eq!(file.user("secret"), None);
        assert_eq!(file.user("other").unwrap().name, "erin");
    }

    #[test]
    fn a_malformed_file_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "just-a-token\n").unwrap();
        let err = TokenFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("3 columns"), "{err}");
    }
}
