//! The image store on disk: layout, image lookup, and the mutating operations (load,
//! import, remove, and the commit of a registry pull) with garbage collection of content no
//! image uses.
//!
//! Layout under the root: `blobs/sha256/<hex>`, `layers/<diff_id hex>/`, `index.json`
//! (names → manifest), `lock`, and `tmp/` for in-progress writes. Writers hold the store
//! lock for their whole operation, so blobs and layers they add cannot be collected before
//! the index refers to them; readers take no lock, relying on atomic renames. A pull
//! downloads without the lock into its own staging area under `tmp/` and takes the lock
//! only to commit.

use std::collections::HashSet;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::index::{ImageRecord, Index, Locker};
use crate::layers::LayerStore;
use crate::load::{self, Found};
use crate::reference;
use crate::rootfs::MergedRoot;
use crate::source::{ArchiveSource, DirSource, Source};
use crate::spec::{self, ConfigFile, Descriptor, Manifest};
use crate::staging::{self, Staging};
use crate::{Image, ImageConfig, ImageError};

/// Shortest hex prefix accepted as an image id, as docker and crictl do.
const ID_PREFIX_MIN: usize = 12;

/// A local OCI image store. Cheap to clone; all clones share one lock.
#[derive(Debug, Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    index_path: PathBuf,
    tmp: PathBuf,
    blobs: BlobStore,
    layers: LayerStore,
    locker: Locker,
}

/// How a reference matched an image.
enum Match {
    Name(String),
    Content,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, clearing leftovers of interrupted
    /// writes when no other writer is active.
    pub fn open(root: impl AsRef<Path>) -> Result<ImageStore, ImageError> {
        let root = root.as_ref().to_path_buf();
        let tmp = root.join("tmp");
        let blobs_dir = root.join("blobs").join("sha256");
        let layers_dir = root.join("layers");
        for dir in [&root, &tmp, &blobs_dir, &layers_dir] {
            fs::create_dir_all(dir).map_err(ImageError::io(dir))?;
        }
        let store = ImageStore {
            inner: Arc::new(Inner {
                index_path: root.join("index.json"),
                blobs: BlobStore::new(blobs_dir, tmp.clone()),
                layers: LayerStore::new(layers_dir, tmp.clone()),
                locker: Locker::new(root.join("lock")),
                tmp: tmp.clone(),
                root,
            }),
        };
        if let Some(_lock) = store.inner.locker.try_lock()? {
            clear_dir(&tmp)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Loads a docker-save archive, an OCI layout archive (either possibly compressed) or
    /// an OCI layout directory. Every blob is verified, layers are unpacked, and the names
    /// recorded in the source are kept; an image with none is reachable by id.
    pub fn load(&self, path: &Path) -> Result<Vec<Image>, ImageError> {
        let _lock = self.inner.locker.lock()?;
        let blobs = &self.inner.blobs;
        let mut source: Box<dyn Source> = if path.is_dir() {
            Box::new(DirSource::open(path)?)
        } else {
            Box::new(ArchiveSource::stage(path, blobs)?)
        };
        let found = load::read_images(source.as_mut(), blobs);
        let found = match found {
            Ok(found) => found,
            Err(e) => {
                self.collect_garbage();
                return Err(e);
            }
        };
        let mut unpacked = Ok(());
        for image in &found {
            unpacked = unpacked.and_then(|()| self.unpack_layers(image));
        }
        if let Err(e) = unpacked {
            self.collect_garbage();
            return Err(e);
        }
        let mut index = Index::read(&self.inner.index_path)?;
        for image in &found {
            index.add(
                &image.manifest.to_string(),
                &image.names,
                &image.resolved.to_string(),
            );
        }
        index.write(&self.inner.index_path, &self.inner.tmp)?;
        self.collect_garbage();
        let manifests: Vec<String> = found.iter().map(|f| f.manifest.to_string()).collect();
        let mut seen = HashSet::new();
        manifests
            .iter()
            .filter(|m| seen.insert(m.as_str()))
            .map(|m| self.record_image(index.find(m).expect("just added")))
            .collect()
    }

    fn unpack_layers(&self, image: &Found) -> Result<(), ImageError> {
        for (blob, diff_id) in &image.layers {
            let file = self.inner.blobs.open(blob)?;
            self.inner
                .layers
                .unpack(BufReader::new(file), Some(diff_id))?;
        }
        Ok(())
    }

    /// Imports a root filesystem tarball (plain, gzip or zstd) as a one-layer image named
    /// `name`, which moves here if another image had it.
    pub fn import(
        &self,
        tarball: &mut dyn Read,
        name: &str,
        config: ImageConfig,
    ) -> Result<Image, ImageError> {
        let name = reference::parse(name)?.normalized();
        let _lock = self.inner.locker.lock()?;
        let result = self.import_locked(tarball, &name, &config);
        if result.is_err() {
            self.collect_garbage();
        }
        result
    }

    fn import_locked(
        &self,
        tarball: &mut dyn Read,
        name: &str,
        config: &ImageConfig,
    ) -> Result<Image, ImageError> {
        let blobs = &self.inner.blobs;
        let (layer, layer_size) = blobs.put(tarball, None, "imported tarball")?;
        let media_type = load::sniff_blob(blobs, &layer)?.oci_layer_media_type();
        let diff_id = self
            .inner
            .layers
            .unpack(BufReader::new(blobs.open(&layer)?), None)?;
        let config_file = ConfigFile::for_import(config, diff_id.to_string());
        let config_json =
            serde_json::to_vec(&config_file).map_err(ImageError::json("image config"))?;
        let (config_digest, config_size) = blobs.put_bytes(&config_json, "image config")?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(spec::OCI_MANIFEST.into()),
            config: Descriptor::new(spec::OCI_CONFIG, config_digest.to_string(), config_size),
            layers: vec![Descriptor::new(media_type, layer.to_string(), layer_size)],
        };
        let manifest_json =
            serde_json::to_vec(&manifest).map_err(ImageError::json("image manifest"))?;
        let (manifest_digest, _) = blobs.put_bytes(&manifest_json, "image manifest")?;
        let mut index = Index::read(&self.inner.index_path)?;
        let manifest_digest = manifest_digest.to_string();
        index.add(&manifest_digest, &[name.to_string()], &manifest_digest);
        index.write(&self.inner.index_path, &self.inner.tmp)?;
        self.collect_garbage();
        self.record_image(index.find(&manifest_digest).expect("just added"))
    }

    /// Whether the store holds a blob.
    pub(crate) fn has_blob(&self, digest: &Digest) -> bool {
        self.inner.blobs.path(digest).is_file()
    }

    pub(crate) fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        self.inner.blobs.read(digest)
    }

    /// A private staging area for a pull, cleared when dropped.
    pub(crate) fn stage(&self) -> Result<Staging, ImageError> {
        Staging::new(&self.inner.tmp)
    }

    /// Moves a pulled image's staged blobs and layers into place (those the store already
    /// has stay as they are) and records it under `name`, which moves here if another image
    /// had it. Fails, leaving the index untouched, when something the pull counted on
    /// finding in the store has meanwhile been removed.
    pub(crate) fn commit(
        &self,
        staging: &Staging,
        image: &Found,
        name: &str,
    ) -> Result<Image, ImageError> {
        let _lock = self.inner.locker.lock()?;
        let result = self.commit_locked(staging, image, name);
        if result.is_err() {
            self.collect_garbage();
        }
        result
    }

    fn commit_locked(
        &self,
        staging: &Staging,
        image: &Found,
        name: &str,
    ) -> Result<Image, ImageError> {
        let blobs = [&image.manifest, &image.config]
            .into_iter()
            .chain(image.layers.iter().map(|(blob, _)| blob));
        for blob in blobs {
            let target = self.inner.blobs.path(blob);
            move_into_place(&staging.blob_path(blob), &target)?;
            if !target.is_file() {
                return Err(ImageError::MissingBlob {
                    name: blob.to_string(),
                    source_path: self.inner.root.clone(),
                });
            }
        }
        for (_, diff_id) in &image.layers {
            let target = self.inner.layers.path(diff_id);
            move_into_place(&staging.layer_path(diff_id), &target)?;
            if !target.is_dir() {
                return Err(ImageError::LayerMissing {
                    diff_id: diff_id.to_string(),
                });
            }
        }
        let manifest = image.manifest.to_string();
        let mut index = Index::read(&self.inner.index_path)?;
        index.add(&manifest, &[name.to_string()], &image.resolved.to_string());
        index.write(&self.inner.index_path, &self.inner.tmp)?;
        self.collect_garbage();
        self.record_image(index.find(&manifest).expect("just added"))
    }

    /// Every image, in the order they were first stored.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let index = Index::read(&self.inner.index_path)?;
        index.images.iter().map(|r| self.record_image(r)).collect()
    }

    /// Finds an image by reference (normalized first), by id (`sha256:<hex>` or a hex prefix
    /// of at least 12) or by manifest digest.
    pub fn get(&self, reference: &str) -> Result<Image, ImageError> {
        let index = Index::read(&self.inner.index_path)?;
        let (record, _) = self.find(&index, reference)?;
        self.record_image(&index.images[record])
    }

    /// Removes a name; an image left without names (or addressed by id or digest) is
    /// deleted with every blob and layer no other image uses. Returns the image with the
    /// names it still has: empty means it is gone.
    pub fn remove(&self, reference: &str) -> Result<Image, ImageError> {
        let _lock = self.inner.locker.lock()?;
        let mut index = Index::read(&self.inner.index_path)?;
        let (position, matched) = self.find(&index, reference)?;
        let mut image = self.record_image(&index.images[position])?;
        let record = &mut index.images[position];
        match matched {
            Match::Name(name) => record.names.retain(|n| *n != name),
            Match::Content => record.names.clear(),
        }
        image.names = record.names.clone();
        if image.names.is_empty() {
            index.images.remove(position);
        }
        index.write(&self.inner.index_path, &self.inner.tmp)?;
        self.collect_garbage();
        Ok(image)
    }

    /// Unpacked layer directories, bottom first (an overlay lowerdir lists them reversed).
    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>, ImageError> {
        image
            .layers
            .iter()
            .map(|diff_id| {
                let dir = self.inner.layers.path(&Digest::parse(diff_id)?);
                if dir.is_dir() {
                    Ok(dir)
                } else {
                    Err(ImageError::LayerMissing {
                        diff_id: diff_id.clone(),
                    })
                }
            })
            .collect()
    }

    /// Reads a file of the image's root filesystem through its layers, honouring whiteouts
    /// and opaque directories and resolving symlinks inside the image. None when absent.
    pub fn read_file(&self, image: &Image, path: &str) -> Result<Option<Vec<u8>>, ImageError> {
        MergedRoot::new(&self.layer_dirs(image)?).read(path)
    }

    /// The position of the matching record, and whether it matched by name.
    fn find(&self, index: &Index, reference: &str) -> Result<(usize, Match), ImageError> {
        let not_found = || ImageError::NotFound {
            reference: reference.into(),
        };
        if let Some(hex) = reference.strip_prefix("sha256:") {
            return self
                .find_by_digest(index, reference, hex)?
                .ok_or_else(not_found);
        }
        let parsed = reference::parse(reference);
        if let Ok(parsed) = &parsed {
            let normalized = parsed.normalized();
            if let Some(i) = index
                .images
                .iter()
                .position(|r| r.names.contains(&normalized))
            {
                return Ok((i, Match::Name(normalized)));
            }
            if let Some(digest) = &parsed.digest {
                let repo = parsed.name();
                let same_repo = |r: &ImageRecord| {
                    r.names
                        .iter()
                        .any(|n| reference::parse(n).is_ok_and(|n| n.name() == repo))
                };
                if let Some(i) = index
                    .images
                    .iter()
                    .position(|r| r.resolves_to(digest) && same_repo(r))
                {
                    return Ok((i, Match::Content));
                }
            }
        }
        if let Some(found) = self.find_by_digest(index, reference, reference)? {
            return Ok(found);
        }
        match parsed {
            Err(e) if !is_hex(reference) => Err(e.into()),
            _ => Err(not_found()),
        }
    }

    /// Matches a full id or manifest digest, or an id prefix of at least 12 hex digits.
    fn find_by_digest(
        &self,
        index: &Index,
        reference: &str,
        hex: &str,
    ) -> Result<Option<(usize, Match)>, ImageError> {
        if hex.len() < ID_PREFIX_MIN || !is_hex(hex) {
            return Ok(None);
        }
        let full = format!("sha256:{hex}");
        if let Some(i) = index.images.iter().position(|r| r.resolves_to(&full)) {
            return Ok(Some((i, Match::Content)));
        }
        let mut hits: Vec<(usize, String)> = Vec::new();
        for (i, record) in index.images.iter().enumerate() {
            let id = self.config_digest(record)?;
            if id.hex().starts_with(hex) {
                hits.push((i, id.to_string()));
            }
        }
        let distinct: HashSet<&str> = hits.iter().map(|(_, id)| id.as_str()).collect();
        if distinct.len() > 1 {
            return Err(ImageError::Ambiguous {
                reference: reference.into(),
            });
        }
        Ok(hits.first().map(|(i, _)| (*i, Match::Content)))
    }

    fn manifest(&self, digest: &Digest) -> Result<Manifest, ImageError> {
        let bytes = self.inner.blobs.read(digest)?;
        serde_json::from_slice(&bytes).map_err(ImageError::json(format!("manifest {digest}")))
    }

    fn config_digest(&self, record: &ImageRecord) -> Result<Digest, ImageError> {
        let manifest = self.manifest(&Digest::parse(&record.manifest)?)?;
        Digest::parse(&manifest.config.digest)
    }

    fn record_image(&self, record: &ImageRecord) -> Result<Image, ImageError> {
        let manifest_digest = Digest::parse(&record.manifest)?;
        let manifest = self.manifest(&manifest_digest)?;
        let config_digest = Digest::parse(&manifest.config.digest)?;
        let bytes = self.inner.blobs.read(&config_digest)?;
        let config: ConfigFile = serde_json::from_slice(&bytes)
            .map_err(ImageError::json(format!("config {config_digest}")))?;
        let diff_ids = load::diff_ids(&config, &manifest_digest, manifest.layers.len())?;
        let size = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
        Ok(Image {
            id: config_digest.to_string(),
            names: record.names.clone(),
            manifest_digest: manifest_digest.to_string(),
            repo_digest: record
                .index
                .clone()
                .unwrap_or_else(|| manifest_digest.to_string()),
            config: config.image_config(),
            size,
            layers: diff_ids.iter().map(Digest::to_string).collect(),
        })
    }

    /// Deletes blobs and layers no indexed image refers to. Runs under the store lock;
    /// failures are logged, not returned, since the operation itself has succeeded.
    fn collect_garbage(&self) {
        if let Err(e) = self.try_collect_garbage() {
            tracing::warn!(root = %self.inner.root.display(), error = %e, "image garbage collection failed");
        }
    }

    fn try_collect_garbage(&self) -> Result<(), ImageError> {
        let index = Index::read(&self.inner.index_path)?;
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        for record in &index.images {
            let manifest_digest = Digest::parse(&record.manifest)?;
            let manifest = self.manifest(&manifest_digest)?;
            let image = self.record_image(record)?;
            blobs.insert(manifest_digest);
            blobs.insert(Digest::parse(&manifest.config.digest)?);
            for layer in &manifest.layers {
                blobs.insert(Digest::parse(&layer.digest)?);
            }
            for diff_id in &image.layers {
                layers.insert(Digest::parse(diff_id)?);
            }
        }
        self.inner.blobs.retain(&blobs)?;
        self.inner.layers.retain(&layers)?;
        Ok(())
    }
}

/// Renames a staged blob or layer to its final name unless it is not staged or the store
/// already has it.
fn move_into_place(staged: &Path, target: &Path) -> Result<(), ImageError> {
    if fs::symlink_metadata(staged).is_err() || fs::symlink_metadata(target).is_ok() {
        return Ok(());
    }
    fs::rename(staged, target).map_err(ImageError::io(target))
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Empties `dir` (leftovers of interrupted writes), sparing the staging areas of pulls
/// still running, which write without the store lock.
fn clear_dir(dir: &Path) -> Result<(), ImageError> {
    for entry in fs::read_dir(dir).map_err(ImageError::io(dir))? {
        let path = entry.map_err(ImageError::io(dir))?.path();
        if staging::in_use(&path) {
            continue;
        }
        let removed = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        removed.map_err(ImageError::io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_spares_a_running_pull_but_clears_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(tmp.path()).unwrap();
        let staging = store.stage().unwrap();
        let partial = staging.scratch().join("partial");
        fs::write(&partial, b"half a blob").unwrap();
        let leftover = tmp.path().join("tmp").join("leftover");
        fs::write(&leftover, b"x").unwrap();

        ImageStore::open(tmp.path()).unwrap();
        assert!(partial.exists(), "a live staging area survives open");
        assert!(!leftover.exists());

        // A pull killed midway leaves its area with a lock file nobody holds.
        let area = tmp.path().join("tmp").join("pull-dead");
        fs::create_dir(&area).unwrap();
        fs::write(area.join("lock"), b"").unwrap();
        ImageStore::open(tmp.path()).unwrap();
        assert!(partial.exists());
        assert!(!area.exists(), "an abandoned staging area is cleared");
    }
}
