//! Reads the images out of a load source: an OCI layout (index.json, possibly nested
//! indexes narrowed to this host's platform) or a docker-save `manifest.json`. Every blob is
//! put in the blob store and verified; names are normalized.

use crate::blobs::{BlobStore, Expected};
use crate::compression::Compression;
use crate::digest::Digest;
use crate::reference;
use crate::source::Source;
use crate::spec::{self, ConfigFile, Descriptor, DockerSaveEntry, Index, Manifest};
use crate::ImageError;

/// An image found in the source, its blobs already in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The digest the names resolved to: an index's when they name one, else the manifest's.
    pub resolved: Digest,
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<(Digest, Digest)>,
    pub names: Vec<String>,
}

/// Reads every image the source holds.
pub(crate) fn read_images(
    source: &mut dyn Source,
    blobs: &BlobStore,
) -> Result<Vec<Found>, ImageError> {
    let oci_index = match (source.metadata("oci-layout"), source.metadata("index.json")) {
        (Some(_), Some(index)) => Some(index.to_vec()),
        _ => None,
    };
    let docker_manifest = source.metadata("manifest.json").map(<[u8]>::to_vec);
    match (oci_index, docker_manifest) {
        (Some(index), docker) => {
            let mut found = read_oci(source, blobs, &index)?;
            if let Some(docker) = docker {
                add_repo_tags(source, blobs, &docker, &mut found)?;
            }
            Ok(found)
        }
        (None, Some(docker)) => read_docker(source, blobs, &docker),
        (None, None) => Err(ImageError::UnknownFormat {
            path: source.origin().to_path_buf(),
        }),
    }
}

fn expected(descriptor: &Descriptor) -> Result<Expected, ImageError> {
    Ok(Expected {
        digest: Digest::parse(&descriptor.digest)?,
        size: Some(descriptor.size),
    })
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Fetches a descriptor's blob from the source into the store, verified.
fn fetch(
    source: &mut dyn Source,
    blobs: &BlobStore,
    descriptor: &Descriptor,
) -> Result<Digest, ImageError> {
    let expected = expected(descriptor)?;
    let (digest, _) = source.blob(&blob_path(&expected.digest), Some(&expected), blobs)?;
    Ok(digest)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(ImageError::json(what))
}

fn read_oci(
    source: &mut dyn Source,
    blobs: &BlobStore,
    index: &[u8],
) -> Result<Vec<Found>, ImageError> {
    let index: Index = parse_json(index, "index.json")?;
    let mut found = Vec::new();
    for descriptor in &index.manifests {
        let names = oci_names(descriptor);
        let manifest = resolve_manifest(source, blobs, descriptor)?;
        let mut image = read_manifest(source, blobs, &manifest)?;
        image.resolved = Digest::parse(&descriptor.digest)?;
        image.names = names;
        found.push(image);
    }
    Ok(found)
}

/// `io.containerd.image.name` first; a `ref.name` only when it is a whole reference
/// (containerd's test: it contains `/`, `:` or `@`), since a bare tag names nothing.
fn oci_names(descriptor: &Descriptor) -> Vec<String> {
    let annotations = &descriptor.annotations;
    let candidates = [
        annotations.get(spec::ANNOTATION_CONTAINERD_NAME),
        annotations
            .get(spec::ANNOTATION_REF_NAME)
            .filter(|name| name.contains(['/', ':', '@'])),
    ];
    let mut names = Vec::new();
    for name in candidates.into_iter().flatten() {
        push_normalized(&mut names, name);
    }
    names
}

fn push_normalized(names: &mut Vec<String>, name: &str) {
    match reference::parse(name) {
        Ok(parsed) => {
            let normalized = parsed.normalized();
            if !names.contains(&normalized) {
                names.push(normalized);
            }
        }
        Err(e) => tracing::warn!(name, error = %e, "ignoring invalid image name in archive"),
    }
}

/// Follows a descriptor down through image indexes to the manifest for this host.
fn resolve_manifest(
    source: &mut dyn Source,
    blobs: &BlobStore,
    descriptor: &Descriptor,
) -> Result<Descriptor, ImageError> {
    let mut current = descriptor.clone();
    loop {
        let digest = fetch(source, blobs, &current)?;
        let bytes = blobs.read(&digest)?;
        let media_type = spec::document_media_type(&current.media_type, &bytes)
            .map_err(ImageError::json(&current.digest))?;
        if !spec::is_index(&media_type) {
            return Ok(current);
        }
        let index: Index = parse_json(&bytes, &current.digest)?;
        current = select_platform(&index, &current.digest)?;
    }
}

fn select_platform(index: &Index, index_digest: &str) -> Result<Descriptor, ImageError> {
    spec::select_platform(index).cloned().ok_or_else(|| {
        let (os, architecture) = spec::host_platform();
        ImageError::NoMatchingPlatform {
            index: index_digest.into(),
            os: os.into(),
            architecture: architecture.into(),
        }
    })
}

/// Fetches a manifest, its config and its layers; checks layers against the diff_ids.
fn read_manifest(
    source: &mut dyn Source,
    blobs: &BlobStore,
    descriptor: &Descriptor,
) -> Result<Found, ImageError> {
    let manifest_digest = fetch(source, blobs, descriptor)?;
    let manifest: Manifest = parse_json(&blobs.read(&manifest_digest)?, &descriptor.digest)?;
    let config = fetch(source, blobs, &manifest.config)?;
    let config_file: ConfigFile = parse_json(&blobs.read(&config)?, &manifest.config.digest)?;
    let diff_ids = diff_ids(&config_file, &manifest_digest, manifest.layers.len())?;
    let mut layers = Vec::new();
    for (layer, diff_id) in manifest.layers.iter().zip(diff_ids) {
        layers.push((fetch(source, blobs, layer)?, diff_id));
    }
    Ok(Found {
        resolved: manifest_digest.clone(),
        manifest: manifest_digest,
        config,
        layers,
        names: Vec::new(),
    })
}

pub(crate) fn diff_ids(
    config: &ConfigFile,
    manifest: &Digest,
    layer_count: usize,
) -> Result<Vec<Digest>, ImageError> {
    if config.rootfs.diff_ids.len() != layer_count {
        return Err(ImageError::LayerCountMismatch {
            manifest: manifest.to_string(),
            layers: layer_count,
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| Digest::parse(d))
        .collect()
}

/// The digest a docker-save file name promises: `<hex>.json` or `blobs/sha256/<hex>`.
fn promised_digest(path: &str) -> Option<Digest> {
    let name = path.rsplit('/').next()?;
    Digest::from_hex(name.strip_suffix(".json").unwrap_or(name))
}

fn read_docker(
    source: &mut dyn Source,
    blobs: &BlobStore,
    manifest_json: &[u8],
) -> Result<Vec<Found>, ImageError> {
    let entries: Vec<DockerSaveEntry> = parse_json(manifest_json, "manifest.json")?;
    entries
        .iter()
        .map(|entry| read_docker_entry(source, blobs, entry))
        .collect()
}

fn read_docker_entry(
    source: &mut dyn Source,
    blobs: &BlobStore,
    entry: &DockerSaveEntry,
) -> Result<Found, ImageError> {
    let promise = promised_digest(&entry.config).map(|digest| Expected { digest, size: None });
    let (config, config_size) = source.blob(&entry.config, promise.as_ref(), blobs)?;
    let config_file: ConfigFile = parse_json(&blobs.read(&config)?, &entry.config)?;
    let mut descriptors = Vec::new();
    let mut stored = Vec::new();
    for path in &entry.layers {
        let (digest, size) = source.blob(path, None, blobs)?;
        if let Some(promised) = path
            .starts_with("blobs/")
            .then(|| promised_digest(path))
            .flatten()
        {
            Expected {
                digest: promised,
                size: None,
            }
            .verify(path, &digest, size)?;
        }
        let compression = sniff_blob(blobs, &digest)?;
        let media_type = compression.docker_layer_media_type();
        descriptors.push(Descriptor::new(media_type, digest.to_string(), size));
        stored.push(digest);
    }
    // containerd's docker importer synthesises a schema2 manifest the same way.
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(spec::DOCKER_MANIFEST.into()),
        config: Descriptor::new(spec::DOCKER_CONFIG, config.to_string(), config_size),
        layers: descriptors,
    };
    let bytes = serde_json::to_vec(&manifest).map_err(ImageError::json("synthesised manifest"))?;
    let (manifest_digest, _) = blobs.put_bytes(&bytes, "synthesised manifest")?;
    let diff_ids = diff_ids(&config_file, &manifest_digest, stored.len())?;
    let mut names = Vec::new();
    for tag in entry.repo_tags.iter().flatten() {
        push_normalized(&mut names, tag);
    }
    Ok(Found {
        resolved: manifest_digest.clone(),
        manifest: manifest_digest,
        config,
        layers: stored.into_iter().zip(diff_ids).collect(),
        names,
    })
}

pub(crate) fn sniff_blob(blobs: &BlobStore, digest: &Digest) -> Result<Compression, ImageError> {
    let path = blobs.path(digest);
    let mut file = blobs.open(digest)?;
    let (compression, _) = crate::compression::sniff(&mut file).map_err(|e| ImageError::Io {
        path,
        source: std::io::Error::other(e),
    })?;
    Ok(compression)
}

/// Docker 25+ writes both formats; its RepoTags name the OCI images with the same config.
fn add_repo_tags(
    source: &mut dyn Source,
    blobs: &BlobStore,
    manifest_json: &[u8],
    found: &mut [Found],
) -> Result<(), ImageError> {
    let entries: Vec<DockerSaveEntry> = parse_json(manifest_json, "manifest.json")?;
    for entry in entries {
        let (config, _) = source.blob(&entry.config, None, blobs)?;
        for image in found.iter_mut().filter(|f| f.config == config) {
            for tag in entry.repo_tags.iter().flatten() {
                push_normalized(&mut image.names, tag);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn descriptor(annotations: &[(&str, &str)]) -> Descriptor {
        let mut d = Descriptor::new(spec::OCI_MANIFEST, String::new(), 0);
        d.annotations = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        d
    }

    #[test]
    fn oci_names_need_a_whole_reference() {
        let bare = descriptor(&[(spec::ANNOTATION_REF_NAME, "latest")]);
        assert!(oci_names(&bare).is_empty());
        let full = descriptor(&[(spec::ANNOTATION_REF_NAME, "busybox:1.36")]);
        assert_eq!(oci_names(&full), ["docker.io/library/busybox:1.36"]);
        let both = descriptor(&[
            (
                spec::ANNOTATION_CONTAINERD_NAME,
                "docker.io/library/busybox:latest",
            ),
            (spec::ANNOTATION_REF_NAME, "latest"),
        ]);
        assert_eq!(oci_names(&both), ["docker.io/library/busybox:latest"]);
    }

    #[test]
    fn platform_selection() {
        let (os, arch) = spec::host_platform();
        let mut other = Descriptor::new(spec::OCI_MANIFEST, "sha256:other".into(), 1);
        other.platform = Some(spec::Platform {
            architecture: "not-this-arch".into(),
            os: os.into(),
            variant: None,
        });
        let mut mine = Descriptor::new(spec::OCI_MANIFEST, "sha256:mine".into(), 1);
        mine.platform = Some(spec::Platform {
            architecture: arch.into(),
            os: os.into(),
            variant: None,
        });
        let index = Index {
            manifests: vec![other.clone(), mine.clone()],
        };
        assert_eq!(select_platform(&index, "i").unwrap(), mine);
        let foreign = Index {
            manifests: vec![other],
        };
        assert!(matches!(
            select_platform(&foreign, "i"),
            Err(ImageError::NoMatchingPlatform { .. })
        ));
    }

    #[test]
    fn docker_save_names_promise_digests() {
        let hex = "a".repeat(64);
        assert_eq!(promised_digest(&format!("{hex}.json")).unwrap().hex(), hex);
        assert_eq!(
            promised_digest(&format!("blobs/sha256/{hex}"))
                .unwrap()
                .hex(),
            hex
        );
        assert_eq!(promised_digest("abc/layer.tar"), None);
    }
}
