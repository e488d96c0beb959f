//! peapod's local OCI image store: pulls from registries, loads docker-save and OCI layout
//! archives, imports root filesystem tarballs, unpacks layers for overlayfs, and answers
//! what Kubernetes needs from an image (process arguments, user resolution, files such as
//! /etc/passwd).

mod blobs;
mod compression;
mod digest;
mod error;
mod index;
mod layers;
mod load;
mod process;
pub mod reference;
pub mod registry;
mod rootfs;
mod source;
mod spec;
mod staging;
mod store;
mod unpack;
mod user;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use compression::CompressionError;
pub use error::ImageError;
pub use process::process_args;
pub use reference::{Reference, ReferenceError};
pub use store::ImageStore;
pub use unpack::UnpackError;
pub use user::resolve_user;

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<hex>` of the config blob, like crictl's IMAGE ID.
    pub id: String,
    /// Normalized references, e.g. `docker.io/library/busybox:latest`.
    pub names: Vec<String>,
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
    /// `sha256:<hex>` the image's names resolve to: the index's for a multi-platform image,
    /// else the manifest's. `<repository>@<repo_digest>` is what kubelet reports as imageID.
    pub repo_digest: String,
    pub config: ImageConfig,
    /// Compressed layer sizes plus the config size.
    pub size: u64,
    /// diff_ids `sha256:<hex>`, bottom first.
    pub layers: Vec<String>,
}

/// The parts of the OCI image config Kubernetes honours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
}
