//! Pulls images from OCI distribution registries into the image store, with oci-client:
//! reference resolution to this host's platform, credentials found as the kubelet's keyring
//! finds them (a pod's pull secrets, then the node's docker config.json), and verified,
//! concurrent blob downloads committed to the store atomically.

mod config;
mod error;
mod keyring;
mod pull;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use config::{
    Credentials, DockerConfig, RegistryConfig, RegistryConfigError,
    DEFAULT_MAX_CONCURRENT_DOWNLOADS,
};
pub use error::PullError;
pub use keyring::{fingerprint, Keyring};

use crate::{Image, ImageStore};

/// Progress of one pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum PullEvent {
    /// The reference resolved to a manifest for this platform; its layers, bottom first.
    Resolved {
        reference: String,
        manifest_digest: String,
        layers: Vec<LayerInfo>,
    },
    /// Bytes of a layer blob received so far (reported every [`PROGRESS_STEP`] bytes or so).
    Progress {
        digest: String,
        received: u64,
        total: u64,
    },
    /// A layer is fetched, verified and unpacked, or was already in the store (`cached`).
    LayerReady { digest: String, cached: bool },
}

/// A layer of the resolved manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerInfo {
    /// `sha256:<hex>` of the (compressed) blob.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the store already has it, so it will not be fetched.
    pub cached: bool,
}

/// How many bytes of a layer may arrive between two progress events.
pub const PROGRESS_STEP: u64 = 64 * 1024;

/// Pulls images into one store. Cheap to clone; each pull reads the node's auth file anew.
#[derive(Debug, Clone)]
pub struct Puller {
    store: ImageStore,
    config: Arc<RegistryConfig>,
    clients: Arc<pull::Clients>,
}

impl Puller {
    pub fn new(store: ImageStore, config: RegistryConfig) -> Puller {
        Puller {
            store,
            config: Arc::new(config),
            clients: Arc::default(),
        }
    }

    /// Pulls `reference` with the node's credentials for it, as [`Puller::pull_with`] does
    /// without credentials of its own.
    pub async fn pull(
        &self,
        reference: &str,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<Image, PullError> {
        self.pull_with(reference, &[], progress).await
    }

    /// kubelet's PullImage: tries `first` (a pod's pull-secret credentials for this image),
    /// then every credential the node's auth file has for it, in order, until one pulls; the
    /// errors of all when none does. No credential at all is an anonymous pull.
    pub async fn pull_with(
        &self,
        reference: &str,
        first: &[Credentials],
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<Image, PullError> {
        let parsed = parse(reference)?;
        let (node, node_error) = match self.config.node_keyring() {
            Ok(keyring) => (keyring.lookup(&parsed.name()), None),
            Err(source) => {
                let reference = parsed.normalized();
                (Vec::new(), Some(PullError::Config { reference, source }))
            }
        };
        let candidates: Vec<&Credentials> = first.iter().chain(&node).collect();
        if candidates.is_empty() {
            return match node_error {
                Some(err) => Err(err),
                None => self.attempt(&parsed, None, progress).await,
            };
        }
        let mut errors = Vec::new();
        for credentials in candidates {
            match self.attempt(&parsed, Some(credentials), progress).await {
                Ok(image) => return Ok(image),
                Err(err) => errors.push(err),
            }
        }
        errors.extend(node_error);
        Err(PullError::aggregate(errors))
    }

    /// Pulls `reference` with exactly `credentials` (None: anonymously), whatever the auth
    /// file holds.
    pub async fn pull_as(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<Image, PullError> {
        self.attempt(&parse(reference)?, credentials, progress)
            .await
    }

    /// One pull of `reference` (normalized first) for the host platform: fetches only the
    /// blobs the store lacks, verifies each blob's digest and size, unpacks layers, and
    /// records the image under the normalized reference. Emits progress through `progress`.
    async fn attempt(
        &self,
        reference: &crate::reference::Reference,
        credentials: Option<&Credentials>,
        progress: &(dyn Fn(PullEvent) + Send + Sync),
    ) -> Result<Image, PullError> {
        pull::Session::new(
            &self.store,
            &self.config,
            &self.clients,
            reference,
            credentials,
            progress,
        )?
        .run()
        .await
    }
}

fn parse(reference: &str) -> Result<crate::reference::Reference, PullError> {
    crate::reference::parse(reference).map_err(|source| PullError::InvalidReference {
        reference: reference.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}

    #[test]
    fn pulls_can_run_on_any_runtime_thread() {
        let tmp = tempfile::tempdir().unwrap();
        let puller = Puller::new(
            ImageStore::open(tmp.path()).unwrap(),
            RegistryConfig::default(),
        );
        let noop = |_: PullEvent| {};
        assert_send(&puller.pull("busybox", &noop));
        assert_error::<PullError>();
        assert_error::<RegistryConfigError>();
    }

    #[test]
    fn events_serialize_in_the_agent_wire_format() {
        let progress = PullEvent::Progress {
            digest: "sha256:ab".into(),
            received: 10,
            total: 99,
        };
        assert_eq!(
            serde_json::to_string(&progress).unwrap(),
            r#"{"type":"progress","digest":"sha256:ab","received":10,"total":99}"#
        );
        let resolved = PullEvent::Resolved {
            reference: "docker.io/library/busybox:latest".into(),
            manifest_digest: "sha256:m".into(),
            layers: vec![LayerInfo {
                digest: "sha256:l".into(),
                size: 5,
                cached: true,
            }],
        };
        let json = serde_json::to_string(&resolved).unwrap();
        assert_eq!(
            json,
            r#"{"type":"resolved","reference":"docker.io/library/busybox:latest","manifestDigest":"sha256:m","layers":[{"digest":"sha256:l","size":5,"cached":true}]}"#
        );
        assert_eq!(serde_json::from_str::<PullEvent>(&json).unwrap(), resolved);
        let ready = PullEvent::LayerReady {
            digest: "sha256:l".into(),
            cached: false,
        };
        assert_eq!(
            serde_json::to_string(&ready).unwrap(),
            r#"{"type":"layerReady","digest":"sha256:l","cached":false}"#
        );
    }
}
