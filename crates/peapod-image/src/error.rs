//! The error type of the image store and its helpers.

use std::path::PathBuf;

use crate::reference::ReferenceError;
use crate::unpack::UnpackError;

/// Everything that can go wrong while storing, loading or reading images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid json in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid image reference: {0}")]
    Reference(#[from] ReferenceError),
    #[error("image {reference:?} not found")]
    NotFound { reference: String },
    #[error("image reference {reference:?} is ambiguous")]
    Ambiguous { reference: String },
    #[error("{path} is neither a docker-save archive nor an oci layout")]
    UnknownFormat { path: PathBuf },
    #[error("blob {name:?} is missing from {source_path}")]
    MissingBlob { name: String, source_path: PathBuf },
    #[error("invalid digest {digest:?}")]
    InvalidDigest { digest: String },
    #[error("unsupported digest algorithm in {digest:?}")]
    UnsupportedDigest { digest: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("no manifest for {os}/{architecture} in index {index}")]
    NoMatchingPlatform {
        index: String,
        os: String,
        architecture: String,
    },
    #[error("manifest {manifest} has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCountMismatch {
        manifest: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("layer {diff_id}: {source}")]
    Unpack {
        diff_id: String,
        #[source]
        source: UnpackError,
    },
    #[error("unpacked layer {diff_id} is missing from the store")]
    LayerMissing { diff_id: String },
    #[error("locking {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("no command specified: the container has no command or args and the image has no entrypoint or cmd")]
    NoCommand,
    #[error("unable to find user {user:?} in the image's /etc/passwd")]
    UnknownUser { user: String },
    #[error("unable to find group {group:?} in the image's /etc/group")]
    UnknownGroup { group: String },
    #[error("{path:?} in the image is a directory")]
    IsADirectory { path: String },
    #[error("too many levels of symbolic links resolving {path:?} in the image")]
    TooManySymlinks { path: String },
}

impl ImageError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { path, source }
    }

    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> ImageError {
        let what = what.into();
        move |source| ImageError::Json { what, source }
    }
}
