//! Unpacked layers `layers/<diff_id hex>/`, each extracted once into a temporary directory
//! and renamed into place, so a crash never leaves a half layer under its final name.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use crate::blobs::list_names;
use crate::digest::Digest;
use crate::{unpack, ImageError};

#[derive(Debug, Clone)]
pub(crate) struct LayerStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl LayerStore {
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf) -> LayerStore {
        LayerStore { dir, tmp }
    }

    pub(crate) fn path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(diff_id.hex())
    }

    /// Unpacks a layer unless `expected` is already present; verifies the diff_id when
    /// expected. Returns the diff_id.
    pub(crate) fn unpack(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<Digest, ImageError> {
        if let Some(diff_id) = expected.filter(|d| self.path(d).is_dir()) {
            return Ok(diff_id.clone());
        }
        let label = expected.map_or_else(|| "(import)".to_string(), Digest::to_string);
        let temp = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(&self.tmp)
            .map_err(ImageError::io(&self.tmp))?;
        fs::set_permissions(
            temp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(ImageError::io(temp.path()))?;
        let diff_id = unpack::unpack(reader, temp.path()).map_err(|source| ImageError::Unpack {
            diff_id: label,
            source,
        })?;
        if let Some(expected) = expected.filter(|e| **e != diff_id) {
            return Err(ImageError::DigestMismatch {
                what: format!("uncompressed layer {expected}"),
                expected: expected.to_string(),
                actual: diff_id.to_string(),
            });
        }
        let target = self.path(&diff_id);
        if !target.exists() {
            let unpacked = temp.keep();
            fs::rename(&unpacked, &target).map_err(ImageError::io(&target))?;
        }
        Ok(diff_id)
    }

    /// Deletes every layer not in `keep`. Each goes to the scratch dir first, so a crash
    /// mid-delete leaves nothing half-removed under a layer name.
    pub(crate) fn retain(&self, keep: &HashSet<Digest>) -> Result<usize, ImageError> {
        let mut removed = 0;
        for name in list_names(&self.dir)? {
            if Digest::from_hex(&name).is_some_and(|d| keep.contains(&d)) {
                continue;
            }
            let doomed = tempfile::Builder::new()
                .prefix("gone-")
                .tempdir_in(&self.tmp)
                .map_err(ImageError::io(&self.tmp))?;
            let from = self.dir.join(&name);
            fs::rename(&from, doomed.path().join(&name)).map_err(ImageError::io(&from))?;
            doomed.close().map_err(ImageError::io(&self.tmp))?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::tests::TarBuilder;

    fn store() -> (tempfile::TempDir, LayerStore) {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, scratch) = (tmp.path().join("layers"), tmp.path().join("tmp"));
        fs::create_dir(&dir).unwrap();
        fs::create_dir(&scratch).unwrap();
        (tmp, LayerStore::new(dir, scratch))
    }

    #[test]
    fn unpacks_once_and_verifies_diff_id() {
        let (_tmp, layers) = store();
        let tar = TarBuilder::new().file("a", b"1").finish();
        let diff_id = layers.unpack(&tar[..], None).unwrap();
        assert_eq!(diff_id, Digest::of(&tar));
        let dir = layers.path(&diff_id);
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"1");
        fs::write(dir.join("marker"), b"").unwrap();
        // Already present: the stream is not even read.
        layers.unpack(&b"garbage"[..], Some(&diff_id)).unwrap();
        assert!(dir.join("marker").exists());

        let wrong = Digest::of(b"nope");
        let err = layers.unpack(&tar[..], Some(&wrong)).unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert!(!layers.path(&wrong).exists());
        assert!(list_names(&layers.tmp).unwrap().is_empty());
    }

    #[test]
    fn failed_unpack_leaves_nothing() {
        let (_tmp, layers) = store();
        let tar = TarBuilder::new()
            .file("ok", b"1")
            .file("../bad", b"2")
            .finish();
        assert!(layers.unpack(&tar[..], None).is_err());
        assert!(list_names(&layers.dir).unwrap().is_empty());
        assert!(list_names(&layers.tmp).unwrap().is_empty());
    }

    #[test]
    fn retain_removes_unwanted_layers() {
        let (_tmp, layers) = store();
        let a = layers
            .unpack(&TarBuilder::new().file("a", b"1").finish()[..], None)
            .unwrap();
        let b = layers
            .unpack(&TarBuilder::new().file("b", b"2").finish()[..], None)
            .unwrap();
        assert_eq!(layers.retain(&HashSet::from([a.clone()])).unwrap(), 1);
        assert!(layers.path(&a).is_dir());
        assert!(!layers.path(&b).exists());
        assert!(list_names(&layers.tmp).unwrap().is_empty());
    }
}
