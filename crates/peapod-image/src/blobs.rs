//! The content-addressed blob directory `blobs/sha256/<hex>`: verified writes, reads, removal.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader};
use crate::ImageError;

/// What a blob must hash to, and optionally how long it must be.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub digest: Digest,
    pub size: Option<u64>,
}

impl Expected {
    /// Checks a computed digest and size against this expectation.
    pub(crate) fn verify(&self, what: &str, digest: &Digest, size: u64) -> Result<(), ImageError> {
        if let Some(expected) = self.size.filter(|expected| *expected != size) {
            return Err(ImageError::SizeMismatch {
                what: what.into(),
                expected,
                actual: size,
            });
        }
        if *digest != self.digest {
            return Err(ImageError::DigestMismatch {
                what: what.into(),
                expected: self.digest.to_string(),
                actual: digest.to_string(),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf) -> BlobStore {
        BlobStore { dir, tmp }
    }

    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Streams `reader` into the store; with `expected`, a blob that does not match is
    /// discarded and reported. Writing goes through a temporary file so a crash never
    /// leaves a partial blob under a digest name.
    pub(crate) fn put(
        &self,
        reader: impl Read,
        expected: Option<&Expected>,
        what: &str,
    ) -> Result<(Digest, u64), ImageError> {
        let mut temp =
            tempfile::NamedTempFile::new_in(&self.tmp).map_err(ImageError::io(&self.tmp))?;
        let mut hashing = HashingReader::new(reader);
        io::copy(&mut hashing, temp.as_file_mut()).map_err(ImageError::io(what))?;
        let (digest, size) = hashing.finish().map_err(ImageError::io(what))?;
        if let Some(expected) = expected {
            expected.verify(what, &digest, size)?;
        }
        let target = self.path(&digest);
        if !target.exists() {
            temp.as_file_mut()
                .flush()
                .map_err(ImageError::io(temp.path()))?;
            temp.as_file()
                .sync_all()
                .map_err(ImageError::io(temp.path()))?;
            temp.persist(&target).map_err(|e| ImageError::Io {
                path: target.clone(),
                source: e.error,
            })?;
        }
        Ok((digest, size))
    }

    pub(crate) fn put_bytes(&self, bytes: &[u8], what: &str) -> Result<(Digest, u64), ImageError> {
        self.put(bytes, None, what)
    }

    pub(crate) fn read(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest);
        fs::read(&path).map_err(ImageError::io(path))
    }

    pub(crate) fn open(&self, digest: &Digest) -> Result<fs::File, ImageError> {
        let path = self.path(digest);
        fs::File::open(&path).map_err(ImageError::io(path))
    }

    /// Deletes every blob not in `keep`; returns how many went.
    pub(crate) fn retain(&self, keep: &HashSet<Digest>) -> Result<usize, ImageError> {
        let mut removed = 0;
        for name in list_names(&self.dir)? {
            let wanted = Digest::from_hex(&name).is_some_and(|d| keep.contains(&d));
            if !wanted {
                let path = self.dir.join(&name);
                fs::remove_file(&path).map_err(ImageError::io(path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The file names in `dir`, as strings (others cannot be ours and are skipped).
pub(crate) fn list_names(dir: &Path) -> Result<Vec<String>, ImageError> {
    let entries = fs::read_dir(dir).map_err(ImageError::io(dir))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(ImageError::io(dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, scratch) = (tmp.path().join("blobs"), tmp.path().join("tmp"));
        fs::create_dir(&dir).unwrap();
        fs::create_dir(&scratch).unwrap();
        (tmp, BlobStore::new(dir, scratch))
    }

    #[test]
    fn put_stores_under_the_content_digest() {
        let (_tmp, blobs) = store();
        let (digest, size) = blobs.put_bytes(b"abc", "test").unwrap();
        assert_eq!((digest.clone(), size), (Digest::of(b"abc"), 3));
        assert_eq!(blobs.read(&digest).unwrap(), b"abc");
    }

    #[test]
    fn mismatching_blobs_are_rejected_and_not_stored() {
        let (_tmp, blobs) = store();
        let wrong = Expected {
            digest: Digest::of(b"other"),
            size: None,
        };
        let err = blobs.put(&b"abc"[..], Some(&wrong), "layer x").unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { ref what, .. } if what == "layer x"));
        let short = Expected {
            digest: Digest::of(b"abc"),
            size: Some(4),
        };
        let err = blobs.put(&b"abc"[..], Some(&short), "y").unwrap_err();
        assert!(matches!(
            err,
            ImageError::SizeMismatch {
                expected: 4,
                actual: 3,
                ..
            }
        ));
        assert!(list_names(&blobs.dir).unwrap().is_empty());
        assert!(list_names(&blobs.tmp).unwrap().is_empty());
    }

    #[test]
    fn retain_deletes_the_rest() {
        let (_tmp, blobs) = store();
        let (a, _) = blobs.put_bytes(b"a", "a").unwrap();
        let (b, _) = blobs.put_bytes(b"b", "b").unwrap();
        assert_eq!(blobs.retain(&HashSet::from([a.clone()])).unwrap(), 1);
        assert!(blobs.path(&a).exists());
        assert!(!blobs.path(&b).exists());
    }
}
