//! One pull: resolve the reference to this platform's manifest, fetch the blobs the store
//! lacks into a private staging area (verified, layers unpacked as they arrive), then commit
//! everything to the store at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::{Credentials, LayerInfo, PullError, PullEvent, RegistryConfig, PROGRESS_STEP};
use crate::blobs::Expected;
use crate::digest::Digest;
use crate::load::{self, Found};
use crate::reference::Reference;
use crate::spec::{self, ConfigFile, Descriptor, Index, Manifest};
use crate::staging::Staging;
use crate::{Image, ImageStore};

const ACCEPTED_MANIFESTS: [&str; 4] = [
    spec::OCI_INDEX,
    spec::DOCKER_MANIFEST_LIST,
    spec::OCI_MANIFEST,
    spec::DOCKER_MANIFEST,
];
/// An index may point at an index; containerd follows such chains, but not forever.
const MAX_INDEX_DEPTH: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A registry that sends nothing for this long is treated as gone.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const USER_AGENT: &str = concat!("peapod/", env!("CARGO_PKG_VERSION"));

type Progress<'a> = &'a (dyn Fn(PullEvent) + Send + Sync);

/// HTTP clients kept between pulls, one per registry, transport and credentials: building one
/// loads the system's CA roots, which costs more than a cached pull. oci-client keeps the
/// first credentials it is given for a registry, so changed credentials get a new client.
#[derive(Default)]
pub(crate) struct Clients {
    by_key: Mutex<HashMap<ClientKey, oci_client::Client>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let clients = self.by_key.lock().map_or(0, |c| c.len());
        f.debug_struct("Clients")
            .field("clients", &clients)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    registry: String,
    plain_http: bool,
    credentials: Option<Credentials>,
}

impl Clients {
    fn get(
        &self,
        key: ClientKey,
        max_downloads: usize,
    ) -> Result<oci_client::Client, oci_client::errors::OciDistributionError> {
        let mut clients = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let protocol = if key.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let client = oci_client::Client::try_from(ClientConfig {
            protocol,
            platform_resolver: None,
            max_concurrent_download: max_downloads.max(1),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        })?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

pub(crate) struct Session<'a> {
    store: &'a ImageStore,
    client: oci_client::Client,
    target: oci_client::Reference,
    auth: RegistryAuth,
    /// The normalized reference: the name the image gets and the one errors quote.
    name: String,
    registry: String,
    max_downloads: usize,
    progress: Progress<'a>,
}

/// The manifest chosen for this platform.
struct Resolved {
    /// The document the reference names (an index, or the manifest itself).
    top: Digest,
    digest: Digest,
    manifest: Manifest,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        store: &'a ImageStore,
        config: &RegistryConfig,
        clients: &Clients,
        reference: &Reference,
        credentials: Option<&Credentials>,
        progress: Progress<'a>,
    ) -> Result<Session<'a>, PullError> {
        let name = reference.normalized();
        let credentials = credentials.filter(|c| !c.is_anonymous()).cloned();
        let key = ClientKey {
            registry: reference.registry.clone(),
            plain_http: config.is_plain_http(&reference.registry),
            credentials: credentials.clone(),
        };
        let auth = credentials.map_or(RegistryAuth::Anonymous, |c| {
            RegistryAuth::Basic(c.username, c.password)
        });
        let client = clients
            .get(key, config.max_concurrent_downloads)
            .map_err(|e| PullError::resolving(&name, &reference.registry, e))?;
        let target = match (&reference.digest, &reference.tag) {
            (Some(digest), _) => oci_client::Reference::with_digest(
                reference.registry.clone(),
                reference.repository.clone(),
                digest.clone(),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                reference.registry.clone(),
                reference.repository.clone(),
                tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        };
        Ok(Session {
            store,
            client,
            target,
            auth,
            name,
            registry: reference.registry.clone(),
            max_downloads: config.max_concurrent_downloads.max(1),
            progress,
        })
    }

    pub(crate) async fn run(self) -> Result<Image, PullError> {
        // Goes to the registry's /v2/ first: this is where an unreachable host or refused
        // credentials show, and where a bearer token is obtained for the repository.
        self.client
            .auth(&self.target, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.resolve_error(e))?;
        let staging = Arc::new(self.store.stage().map_err(|e| self.store_error("", e))?);
        let resolved = self.resolve(&staging).await?;
        let layers: Vec<LayerInfo> = resolved
            .manifest
            .layers
            .iter()
            .map(|l| LayerInfo {
                digest: l.digest.clone(),
                size: l.size,
                cached: self.cached(&l.digest),
            })
            .collect();
        (self.progress)(PullEvent::Resolved {
            reference: self.name.clone(),
            manifest_digest: resolved.digest.to_string(),
            layers,
        });
        let unpacked = self.fetch_all(&staging, &resolved.manifest).await?;
        let image = self.check_layers(&staging, &resolved, unpacked)?;
        let (store, name) = (self.store.clone(), self.name.clone());
        let committed = tokio::task::spawn_blocking(move || store.commit(&staging, &image, &name))
            .await
            .expect("commit task panicked");
        committed.map_err(|e| self.store_error("image", e))
    }

    fn cached(&self, digest: &str) -> bool {
        Digest::parse(digest).is_ok_and(|d| self.store.has_blob(&d))
    }

    /// Fetches the manifest the reference names and follows indexes down to the one for
    /// this platform, verifying each document's digest; stages the chosen manifest.
    async fn resolve(&self, staging: &Staging) -> Result<Resolved, PullError> {
        let (mut bytes, _) = self
            .client
            .pull_manifest_raw(&self.target, &self.auth, &ACCEPTED_MANIFESTS)
            .await
            .map_err(|e| self.resolve_error(e))?;
        let mut digest = sha256(&bytes);
        let top = digest.clone();
        if let Some(wanted) = self.target.digest() {
            self.verify("manifest", wanted, None, &digest, bytes.len())?;
        }
        let mut declared = String::new();
        for _ in 0..MAX_INDEX_DEPTH {
            let media_type = spec::document_media_type(&declared, &bytes)
                .map_err(|e| self.invalid(&format!("manifest {digest}"), e))?;
            if !spec::is_index(&media_type) {
                return self.manifest(staging, &media_type, top, digest, &bytes);
            }
            let index: Index = serde_json::from_slice(&bytes)
                .map_err(|e| self.invalid(&format!("index {digest}"), e))?;
            let chosen = spec::select_platform(&index).cloned().ok_or_else(|| {
                let (os, architecture) = spec::host_platform();
                PullError::NoMatchingPlatform {
                    reference: self.name.clone(),
                    index: digest.to_string(),
                    platform: format!("{os}/{architecture}"),
                }
            })?;
            let child = self.target.clone_with_digest(chosen.digest.clone());
            (bytes, _) = self
                .client
                .pull_manifest_raw(&child, &self.auth, &ACCEPTED_MANIFESTS)
                .await
                .map_err(|e| self.resolve_error(e))?;
            digest = sha256(&bytes);
            let what = format!("manifest {}", chosen.digest);
            self.verify(
                &what,
                &chosen.digest,
                Some(chosen.size),
                &digest,
                bytes.len(),
            )?;
            declared = chosen.media_type;
        }
        Err(PullError::InvalidDocument {
            reference: self.name.clone(),
            what: format!("index {digest}"),
            detail: format!("image indexes nested deeper than {MAX_INDEX_DEPTH}"),
        })
    }

    fn manifest(
        &self,
        staging: &Staging,
        media_type: &str,
        top: Digest,
        digest: Digest,
        bytes: &[u8],
    ) -> Result<Resolved, PullError> {
        if media_type != spec::OCI_MANIFEST && media_type != spec::DOCKER_MANIFEST {
            return Err(PullError::UnsupportedManifest {
                reference: self.name.clone(),
                digest: digest.to_string(),
                media_type: media_type.into(),
            });
        }
        let what = format!("manifest {digest}");
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| self.invalid(&what, e))?;
        if manifest.schema_version != 2 {
            return Err(self.invalid(&what, format!("schema version {}", manifest.schema_version)));
        }
        let expected = Expected {
            digest: digest.clone(),
            size: Some(bytes.len() as u64),
        };
        staging
            .put_bytes(bytes, &expected, &what)
            .map_err(|e| self.store_error(&what, e))?;
        Ok(Resolved {
            top,
            digest,
            manifest,
        })
    }

    /// Fetches the config and the layers the store lacks, `max_downloads` at a time, each
    /// layer unpacked as soon as it is verified. Returns the diff_id of every layer
    /// unpacked here (None for those the store had), in manifest order.
    async fn fetch_all(
        &self,
        staging: &Arc<Staging>,
        manifest: &Manifest,
    ) -> Result<Vec<Option<Digest>>, PullError> {
        // Boxed in a Vec, not mapped lazily: a closure-typed iterator held across the await
        // would make the pull future not Send (the compiler cannot prove it for any lifetime).
        let config_what = format!("config {}", manifest.config.digest);
        let mut jobs: Vec<BoxFuture<'_, Result<Option<Digest>, PullError>>> =
            vec![Box::pin(async {
                self.fetch_blob(staging, &manifest.config, &config_what, false)
                    .await
                    .map(|()| None)
            })];
        for layer in &manifest.layers {
            jobs.push(Box::pin(self.fetch_layer(staging, layer)));
        }
        let mut results: Vec<Option<Digest>> = futures::stream::iter(jobs)
            .buffered(self.max_downloads)
            .try_collect()
            .await?;
        results.remove(0);
        Ok(results)
    }

    async fn fetch_layer(
        &self,
        staging: &Arc<Staging>,
        layer: &Descriptor,
    ) -> Result<Option<Digest>, PullError> {
        let what = format!("layer {}", layer.digest);
        if self.cached(&layer.digest) {
            (self.progress)(PullEvent::LayerReady {
                digest: layer.digest.clone(),
                cached: true,
            });
            return Ok(None);
        }
        self.fetch_blob(staging, layer, &what, true).await?;
        let blob = self.digest(&layer.digest)?;
        let unpacking = Arc::clone(staging);
        let diff_id = tokio::task::spawn_blocking(move || unpacking.unpack(&blob))
            .await
            .expect("unpack task panicked")
            .map_err(|e| self.store_error(&layer.digest, e))?;
        (self.progress)(PullEvent::LayerReady {
            digest: layer.digest.clone(),
            cached: false,
        });
        Ok(Some(diff_id))
    }

    /// Streams a blob the store lacks into the staging area; it gets its final staged name
    /// only once its size and digest match the descriptor.
    async fn fetch_blob(
        &self,
        staging: &Staging,
        descriptor: &Descriptor,
        what: &str,
        report: bool,
    ) -> Result<(), PullError> {
        let expected = self.digest(&descriptor.digest)?;
        if self.store.has_blob(&expected) {
            return Ok(());
        }
        let mut stream = self
            .client
            .pull_blob_stream(&self.target, descriptor.digest.as_str())
            .await
            .map_err(|e| PullError::fetching(&self.name, what, &e))?;
        let scratch = staging.scratch();
        let temp = tempfile::NamedTempFile::new_in(scratch)
            .map_err(|e| PullError::io(&self.name, scratch.to_path_buf(), e))?;
        let (file, temp_path) = temp.into_parts();
        let write_error = |e| PullError::io(&self.name, temp_path.to_path_buf(), e);
        let mut file = tokio::fs::File::from_std(file);
        let mut hasher = Sha256::new();
        let (mut received, mut reported) = (0u64, 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) if received == descriptor.size => {
                    // oci-client ends a stream whose digest is wrong with an error; say so
                    // in our own words if that is what happened.
                    let actual = finish(hasher);
                    self.verify(what, &descriptor.digest, None, &actual, 0)?;
                    return Err(PullError::fetching(&self.name, what, &e));
                }
                Err(e) => return Err(PullError::fetching(&self.name, what, &e)),
            };
            received += chunk.len() as u64;
            if received > descriptor.size {
                return Err(self.size_mismatch(what, descriptor.size, received));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(write_error)?;
            if report && (received - reported >= PROGRESS_STEP || received == descriptor.size) {
                reported = received;
                (self.progress)(PullEvent::Progress {
                    digest: descriptor.digest.clone(),
                    received,
                    total: descriptor.size,
                });
            }
        }
        if received != descriptor.size {
            return Err(self.size_mismatch(what, descriptor.size, received));
        }
        self.verify(what, &descriptor.digest, None, &finish(hasher), 0)?;
        file.sync_all().await.map_err(write_error)?;
        drop(file);
        let target = staging.blob_path(&expected);
        temp_path
            .persist(&target)
            .map_err(|e| PullError::io(&self.name, target, e.error))
    }

    /// Checks the config's diff_ids against the manifest and against the layers unpacked
    /// here; returns the image to commit.
    fn check_layers(
        &self,
        staging: &Staging,
        resolved: &Resolved,
        unpacked: Vec<Option<Digest>>,
    ) -> Result<Found, PullError> {
        let manifest = &resolved.manifest;
        let config_digest = self.digest(&manifest.config.digest)?;
        let what = format!("config {config_digest}");
        let staged = staging.blob_path(&config_digest);
        let bytes = match std::fs::read(&staged) {
            Ok(bytes) => bytes,
            Err(_) => self
                .store
                .read_blob(&config_digest)
                .map_err(|e| self.store_error(&what, e))?,
        };
        let config: ConfigFile =
            serde_json::from_slice(&bytes).map_err(|e| self.invalid(&what, e))?;
        let diff_ids = load::diff_ids(&config, &resolved.digest, manifest.layers.len())
            .map_err(|e| self.invalid(&format!("manifest {}", resolved.digest), e))?;
        let mut layers = Vec::new();
        for ((layer, diff_id), actual) in manifest.layers.iter().zip(diff_ids).zip(unpacked) {
            if let Some(actual) = actual.filter(|a| *a != diff_id) {
                return Err(PullError::DiffIdMismatch {
                    reference: self.name.clone(),
                    layer: layer.digest.clone(),
                    expected: diff_id.to_string(),
                    actual: actual.to_string(),
                });
            }
            layers.push((self.digest(&layer.digest)?, diff_id));
        }
        Ok(Found {
            resolved: resolved.top.clone(),
            manifest: resolved.digest.clone(),
            config: config_digest,
            layers,
            names: Vec::new(),
        })
    }

    fn digest(&self, digest: &str) -> Result<Digest, PullError> {
        Digest::parse(digest).map_err(|e| self.invalid(&format!("digest {digest:?}"), e))
    }

    fn verify(
        &self,
        what: &str,
        expected: &str,
        expected_size: Option<u64>,
        actual: &Digest,
        actual_size: usize,
    ) -> Result<(), PullError> {
        if let Some(size) = expected_size.filter(|s| *s != actual_size as u64) {
            return Err(self.size_mismatch(what, size, actual_size as u64));
        }
        if actual.to_string() != expected {
            return Err(PullError::DigestMismatch {
                reference: self.name.clone(),
                what: what.into(),
                expected: expected.into(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    fn size_mismatch(&self, what: &str, expected: u64, actual: u64) -> PullError {
        PullError::SizeMismatch {
            reference: self.name.clone(),
            what: what.into(),
            expected,
            actual,
        }
    }

    fn invalid(&self, what: &str, detail: impl std::fmt::Display) -> PullError {
        PullError::InvalidDocument {
            reference: self.name.clone(),
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    fn resolve_error(&self, error: oci_client::errors::OciDistributionError) -> PullError {
        PullError::resolving(&self.name, &self.registry, error)
    }

    fn store_error(&self, what: &str, error: crate::ImageError) -> PullError {
        PullError::from_store(&self.name, what, error)
    }
}

fn sha256(bytes: &[u8]) -> Digest {
    finish(Sha256::new_with_prefix(bytes))
}

fn finish(hasher: Sha256) -> Digest {
    Digest::from_hex(&hex::encode(hasher.finalize())).expect("sha256 is 64 hex digits")
}
