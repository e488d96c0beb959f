//! Why a pull failed, worded as containerd words it (`failed to pull and unpack image "…":
//! …`), since that text becomes the container's waiting message.

use std::path::PathBuf;

use oci_client::errors::{OciDistributionError, OciErrorCode};

use crate::registry::RegistryConfigError;
use crate::{ImageError, ReferenceError, UnpackError};

/// Why a pull failed; Display is the complete reason.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("failed to pull and unpack image {reference:?}: {source}")]
    InvalidReference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    #[error("failed to pull and unpack image {reference:?}: {source}")]
    Config {
        reference: String,
        #[source]
        source: RegistryConfigError,
    },
    #[error("failed to pull and unpack image {reference:?}: failed to resolve reference {reference:?}: {reference}: not found")]
    NotFound { reference: String },
    #[error("failed to pull and unpack image {reference:?}: failed to resolve reference {reference:?}: pull access denied, repository does not exist or may require authorization: {detail}")]
    Unauthorized { reference: String, detail: String },
    /// The registry could not be reached at all.
    #[error("failed to pull and unpack image {reference:?}: failed to resolve reference {reference:?}: {detail}")]
    Unreachable {
        reference: String,
        host: String,
        detail: String,
    },
    #[error("failed to pull and unpack image {reference:?}: failed to resolve reference {reference:?}: {detail}")]
    Resolve { reference: String, detail: String },
    #[error("failed to pull and unpack image {reference:?}: no match for platform in manifest {index}: not found ({platform})")]
    NoMatchingPlatform {
        reference: String,
        index: String,
        platform: String,
    },
    #[error("failed to pull and unpack image {reference:?}: unsupported media type {media_type:?} of manifest {digest}")]
    UnsupportedManifest {
        reference: String,
        digest: String,
        media_type: String,
    },
    #[error("failed to pull and unpack image {reference:?}: invalid {what}: {detail}")]
    InvalidDocument {
        reference: String,
        what: String,
        detail: String,
    },
    #[error("failed to pull and unpack image {reference:?}: failed to copy: {what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        reference: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("failed to pull and unpack image {reference:?}: failed to copy: {what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        reference: String,
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("failed to pull and unpack image {reference:?}: failed to copy: {what}: {detail}")]
    Fetch {
        reference: String,
        what: String,
        detail: String,
    },
    #[error(
        "failed to pull and unpack image {reference:?}: failed to extract layer {layer}: {source}"
    )]
    Unpack {
        reference: String,
        layer: String,
        #[source]
        source: UnpackError,
    },
    #[error("failed to pull and unpack image {reference:?}: failed to extract layer {layer}: diff_id mismatch: the config lists {expected}, the layer is {actual}")]
    DiffIdMismatch {
        reference: String,
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("failed to pull and unpack image {reference:?}: write {}: {reason}", path.display())]
    Io {
        reference: String,
        path: PathBuf,
        reason: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to pull and unpack image {reference:?}: {source}")]
    Store {
        reference: String,
        #[source]
        source: ImageError,
    },
    /// Each of several credentials failed: their errors, worded as Go's aggregate error.
    #[error("{}", aggregate_message(.0))]
    Attempts(Vec<PullError>),
}

impl PullError {
    /// The registry could not be reached at all (DNS failure, connection refused or timed out).
    pub fn is_unreachable(&self) -> bool {
        match self {
            PullError::Unreachable { .. } => true,
            PullError::Attempts(errors) => errors.iter().all(PullError::is_unreachable),
            _ => false,
        }
    }

    /// The one error, or all of them (kubelet's utilerrors.NewAggregate).
    pub(crate) fn aggregate(mut errors: Vec<PullError>) -> PullError {
        match errors.len() {
            1 => errors.pop().expect("one error"),
            _ => PullError::Attempts(errors),
        }
    }

    pub(crate) fn io(reference: &str, path: PathBuf, source: std::io::Error) -> PullError {
        PullError::Io {
            reference: reference.into(),
            reason: io_reason(&source),
            path,
            source,
        }
    }

    /// A store error met while staging, unpacking or committing `what`.
    pub(crate) fn from_store(reference: &str, what: &str, error: ImageError) -> PullError {
        let reference = reference.to_string();
        match error {
            ImageError::Io { path, source } => PullError::io(&reference, path, source),
            ImageError::Unpack {
                source: UnpackError::Io { path, source },
                ..
            } => PullError::io(&reference, path, source),
            ImageError::Unpack { source, .. } => PullError::Unpack {
                reference,
                layer: what.into(),
                source,
            },
            ImageError::DigestMismatch {
                expected, actual, ..
            } => PullError::DigestMismatch {
                reference,
                what: what.into(),
                expected,
                actual,
            },
            ImageError::SizeMismatch {
                expected, actual, ..
            } => PullError::SizeMismatch {
                reference,
                what: what.into(),
                expected,
                actual,
            },
            source => PullError::Store { reference, source },
        }
    }

    /// An error of the registry client while resolving the reference to a manifest.
    pub(crate) fn resolving(reference: &str, host: &str, error: OciDistributionError) -> PullError {
        let reference = reference.to_string();
        let denied = |detail: String| PullError::Unauthorized {
            reference: reference.clone(),
            detail,
        };
        match error {
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                PullError::Unreachable {
                    detail: dial_detail(host, &e),
                    host: host.into(),
                    reference,
                }
            }
            OciDistributionError::UnauthorizedError { .. } => {
                denied("authorization failed: 401 Unauthorized".into())
            }
            OciDistributionError::AuthenticationFailure(reason) => {
                denied(format!("authentication failed: {}", reason.trim()))
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let messages = envelope
                    .errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                if codes.iter().any(|c| is_not_found(c)) {
                    PullError::NotFound { reference }
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    denied(format!("authorization failed: {messages}"))
                } else {
                    PullError::Resolve {
                        reference,
                        detail: messages,
                    }
                }
            }
            OciDistributionError::ServerError { code: 404, .. } => {
                PullError::NotFound { reference }
            }
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => denied(format!("authorization failed: {error}")),
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => PullError::DigestMismatch {
                reference,
                what: "manifest".into(),
                expected,
                actual,
            },
            other => PullError::Resolve {
                reference,
                detail: innermost(&other),
            },
        }
    }

    /// An error of the registry client while fetching a blob.
    pub(crate) fn fetching(
        reference: &str,
        what: &str,
        error: &dyn std::error::Error,
    ) -> PullError {
        PullError::Fetch {
            reference: reference.into(),
            what: what.into(),
            detail: chain(error),
        }
    }
}

/// Go's aggregate message: distinct messages in order, bracketed when more than one.
fn aggregate_message(errors: &[PullError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for message in errors.iter().map(PullError::to_string) {
        if !seen.contains(&message) {
            seen.push(message);
        }
    }
    match seen.len() {
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

fn is_not_found(code: &OciErrorCode) -> bool {
    matches!(
        code,
        OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
    )
}

/// Go-style wording of a failed dial, naming the host.
fn dial_detail(host: &str, error: &reqwest::Error) -> String {
    let reason = innermost(error);
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if chain(error).contains("dns error") {
        let reason = reason
            .strip_prefix("failed to lookup address information: ")
            .unwrap_or(&reason);
        return format!("dial tcp: lookup {hostname}: {}", lower_first(reason));
    }
    if error.is_timeout() {
        return format!("dial tcp {host}: i/o timeout");
    }
    format!("dial tcp {host}: connect: {}", lower_first(&reason))
}

/// The last, most specific message of an error's source chain, without Rust's `(os error N)`.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    match current.downcast_ref::<std::io::Error>() {
        Some(io) => io_reason(io),
        None => current.to_string(),
    }
}

/// Every distinct message of an error's source chain, joined with ": ".
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut current = error.source();
    while let Some(e) = current {
        let text = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io_reason(io),
            None => e.to_string(),
        };
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// An io error as Go prints it: `no space left on device`, not `No space left on device
/// (os error 28)`.
pub(crate) fn io_reason(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => lower_first(nix::errno::Errno::from_raw(code).desc()),
        None => error.to_string(),
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REF: &str = "127.0.0.1:5000/x:1";

    #[test]
    fn a_full_disk_reads_like_go_with_the_path() {
        let err = PullError::io(
            REF,
            PathBuf::from("/store/tmp/pull-1/tmp/.tmpx"),
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(
            err.to_string(),
            "failed to pull and unpack image \"127.0.0.1:5000/x:1\": write /store/tmp/pull-1/tmp/.tmpx: no space left on device"
        );
        let nested = ImageError::Unpack {
            diff_id: "(import)".into(),
            source: UnpackError::Io {
                path: "/store/tmp/layer-1/bin".into(),
                source: std::io::Error::from_raw_os_error(libc::ENOSPC),
            },
        };
        let err = PullError::from_store(REF, "sha256:ab", nested);
        assert!(
            err.to_string()
                .ends_with("write /store/tmp/layer-1/bin: no space left on device"),
            "{err}"
        );
    }

    #[test]
    fn registry_answers_map_to_containerd_reasons() {
        let unauthorized = OciDistributionError::UnauthorizedError {
            url: "http://x/v2/".into(),
        };
        let err = PullError::resolving(REF, "127.0.0.1:5000", unauthorized);
        assert_eq!(
            err.to_string(),
            format!("failed to pull and unpack image \"{REF}\": failed to resolve reference \"{REF}\": pull access denied, repository does not exist or may require authorization: authorization failed: 401 Unauthorized")
        );
        let envelope: oci_client::errors::OciEnvelope = serde_json::from_str(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
        .unwrap();
        let missing = OciDistributionError::RegistryError {
            envelope,
            url: String::new(),
        };
        let err = PullError::resolving(REF, "127.0.0.1:5000", missing);
        assert!(matches!(err, PullError::NotFound { .. }));
        assert!(!err.is_unreachable());
        let server = OciDistributionError::ServerError {
            code: 503,
            url: "http://x".into(),
            message: "busy".into(),
        };
        let err = PullError::resolving(REF, "127.0.0.1:5000", server);
        assert!(matches!(err, PullError::Resolve { .. }), "{err:?}");
        assert!(err.to_string().contains("503"), "{err}");
    }

    #[test]
    fn failed_attempts_aggregate_as_go_does() {
        let denied = |detail: &str| PullError::Unauthorized {
            reference: REF.into(),
            detail: detail.into(),
        };
        let one = PullError::aggregate(vec![denied("a")]);
        assert!(matches!(one, PullError::Unauthorized { .. }));
        let same = PullError::aggregate(vec![denied("a"), denied("a")]);
        assert_eq!(same.to_string(), denied("a").to_string());
        let two = PullError::aggregate(vec![denied("a"), denied("b"), denied("a")]);
        assert_eq!(
            two.to_string(),
            format!("[{}, {}]", denied("a"), denied("b"))
        );
        assert!(!two.is_unreachable());
        let unreachable = || PullError::Unreachable {
            reference: REF.into(),
            host: "h".into(),
            detail: "d".into(),
        };
        assert!(PullError::aggregate(vec![unreachable(), unreachable()]).is_unreachable());
    }

    #[test]
    fn os_errors_lose_rust_decoration() {
        let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_reason(&refused), "connection refused");
        let custom = std::io::Error::other("unexpected end of file");
        assert_eq!(io_reason(&custom), "unexpected end of file");
    }
}
