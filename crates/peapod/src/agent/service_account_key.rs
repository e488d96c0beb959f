//! The key service account tokens are signed with: made at first start beside the CA (0600,
//! as kube-apiserver's `--service-account-key-file`), read at every later one.

use std::path::{Path, PathBuf};

use peapod_apis::core::v1::serviceaccount::token::{TokenError, TokenSigner};

use crate::certs::{self, CertError};
use crate::perms;

/// The key's file name in the TLS directory.
const KEY_FILE: &str = "service-account.key";
const TLS_DIR_MODE: u32 = 0o700;

#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountKeyError {
    #[error("preparing {dir}: {source}")]
    Dir {
        dir: PathBuf,
        #[source]
        source: perms::PermsError,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable service account signing key: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: Box<TokenError>,
    },
    #[error("making the service account signing key: {0}")]
    Generate(#[source] Box<TokenError>),
    #[error(transparent)]
    Write(#[from] CertError),
}

/// The signer of the key under `dir`, made first if there is none.
pub fn load_or_create(dir: &Path) -> Result<TokenSigner, ServiceAccountKeyError> {
    perms::ensure_dir(dir, TLS_DIR_MODE).map_err(|source| ServiceAccountKeyError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(KEY_FILE);
    let pem = match std::fs::read_to_string(&path) {
        Ok(pem) => pem,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let pem = TokenSigner::generate_key_pem()
                .map_err(|err| ServiceAccountKeyError::Generate(Box::new(err)))?;
            certs::write_private_atomic(&path, pem.as_bytes())?;
            tracing::info!(path = %path.display(), "made the service account signing key");
            pem
        }
        Err(source) => return Err(ServiceAccountKeyError::Read { path, source }),
    };
    TokenSigner::from_key_pem(&pem).map_err(|source| ServiceAccountKeyError::Invalid {
        path,
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let first = load_or_create(&tls).unwrap();
        let path = tls.join(KEY_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pem = std::fs::read_to_string(&path).unwrap();
        let second = load_or_create(&tls).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
        assert_eq!(format!("{first:?}"), format!("{second:?}"), "same key id");
    }
}
