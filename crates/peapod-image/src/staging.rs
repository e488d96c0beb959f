//! A pull's private scratch area under the store's `tmp/`: fetched blobs and unpacked layers
//! wait there until the commit renames them into place. The area holds a lock for its whole
//! life, so that `ImageStore::open` in another process does not clear it as a leftover.

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::blobs::{BlobStore, Expected};
use crate::digest::Digest;
use crate::layers::LayerStore;
use crate::ImageError;

const PREFIX: &str = "pull-";
const LOCK: &str = "lock";

#[derive(Debug)]
pub(crate) struct Staging {
    // Removes the area on drop; declared first so that happens before the lock is released.
    _dir: tempfile::TempDir,
    _lock: Flock<File>,
    scratch: PathBuf,
    blobs: BlobStore,
    layers: LayerStore,
}

impl Staging {
    /// A new, locked staging area in `tmp`.
    pub(crate) fn new(tmp: &Path) -> Result<Staging, ImageError> {
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(tmp)
            .map_err(ImageError::io(tmp))?;
        let lock_path = dir.path().join(LOCK);
        let file = File::create(&lock_path).map_err(ImageError::io(&lock_path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, source)| {
            ImageError::Lock {
                path: lock_path,
                source,
            }
        })?;
        let [scratch, blobs, layers] = ["tmp", "blobs", "layers"].map(|d| dir.path().join(d));
        for sub in [&scratch, &blobs, &layers] {
            fs::create_dir(sub).map_err(ImageError::io(sub))?;
        }
        Ok(Staging {
            blobs: BlobStore::new(blobs, scratch.clone()),
            layers: LayerStore::new(layers, scratch.clone()),
            scratch,
            _lock: lock,
            _dir: dir,
        })
    }

    /// Where partial downloads are written before they are verified.
    pub(crate) fn scratch(&self) -> &Path {
        &self.scratch
    }

    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.path(digest)
    }

    pub(crate) fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.layers.path(diff_id)
    }

    /// Stages a document already in memory, verified against its descriptor.
    pub(crate) fn put_bytes(
        &self,
        bytes: &[u8],
        expected: &Expected,
        what: &str,
    ) -> Result<(), ImageError> {
        self.blobs.put(bytes, Some(expected), what).map(|_| ())
    }

    /// Unpacks a staged layer blob into a staged layer directory; returns its diff_id.
    pub(crate) fn unpack(&self, blob: &Digest) -> Result<Digest, ImageError> {
        let file = self.blobs.open(blob)?;
        self.layers.unpack(BufReader::new(file), None)
    }
}

/// Whether `path`, an entry of the store's `tmp/`, is a staging area a live pull still holds.
pub(crate) fn in_use(path: &Path) -> bool {
    let is_staging = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(PREFIX));
    if !is_staging {
        return false;
    }
    let Ok(file) = File::open(path.join(LOCK)) else {
        return false;
    };
    matches!(
        Flock::lock(file, FlockArg::LockSharedNonblock),
        Err((_, nix::Error::EWOULDBLOCK))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_area_is_in_use_until_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let path = staging.scratch().parent().unwrap().to_path_buf();
        assert!(in_use(&path));
        assert!(!in_use(tmp.path()), "not a staging area");
        drop(staging);
        assert!(!path.exists());
        fs::create_dir(&path).unwrap();
        fs::write(path.join(LOCK), b"").unwrap();
        assert!(!in_use(&path), "a leftover nobody holds");
    }

    #[test]
    fn staged_bytes_are_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let staging = Staging::new(tmp.path()).unwrap();
        let good = Expected {
            digest: Digest::of(b"abc"),
            size: Some(3),
        };
        staging.put_bytes(b"abc", &good, "manifest").unwrap();
        assert!(staging.blob_path(&good.digest).exists());
        let err = staging.put_bytes(b"abd", &good, "manifest").unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    }
}
