//! The on-disk record of which images exist and their names (`index.json`), written
//! atomically, and the store lock that serialises writers across threads and processes.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::ImageError;

/// One stored image: its manifest and the normalized names pointing at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    pub manifest: String,
    pub names: Vec<String>,
    /// The digest the names last resolved to when that was an index (containerd's image
    /// target), which kubelet reports in imageID; absent when it is the manifest itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

impl ImageRecord {
    /// Whether a by-digest reference names this image: its manifest or its index.
    pub(crate) fn resolves_to(&self, digest: &str) -> bool {
        self.manifest == digest || self.index.as_deref() == Some(digest)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    pub images: Vec<ImageRecord>,
}

impl Index {
    /// Reads the index; a missing file is an empty store.
    pub(crate) fn read(path: &Path) -> Result<Index, ImageError> {
        match fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(ImageError::json(path.display().to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(ImageError::io(path)(e)),
        }
    }

    /// Writes a temporary file in `scratch` (same filesystem), syncs it and renames it
    /// over the index.
    pub(crate) fn write(&self, path: &Path, scratch: &Path) -> Result<(), ImageError> {
        let dir = scratch;
        let bytes = serde_json::to_vec_pretty(self).map_err(ImageError::json("image index"))?;
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(ImageError::io(dir))?;
        temp.write_all(&bytes)
            .map_err(ImageError::io(temp.path()))?;
        temp.as_file()
            .sync_all()
            .map_err(ImageError::io(temp.path()))?;
        temp.persist(path).map_err(|e| ImageError::Io {
            path: path.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Records `manifest` with `names`; a name held by another image moves here (like
    /// `docker load` re-tagging). The other image stays, possibly with no names.
    pub(crate) fn add(&mut self, manifest: &str, names: &[String], resolved: &str) {
        for record in &mut self.images {
            if record.manifest != manifest {
                record.names.retain(|n| !names.contains(n));
            }
        }
        let record = match self.images.iter().position(|r| r.manifest == manifest) {
            Some(i) => &mut self.images[i],
            None => {
                self.images.push(ImageRecord {
                    manifest: manifest.into(),
                    names: Vec::new(),
                    index: None,
                });
                self.images.last_mut().expect("just pushed")
            }
        };
        if resolved != manifest {
            record.index = Some(resolved.to_string());
        }
        for name in names {
            if !record.names.contains(name) {
                record.names.push(name.clone());
            }
        }
    }

    pub(crate) fn find(&self, manifest: &str) -> Option<&ImageRecord> {
        self.images.iter().find(|r| r.manifest == manifest)
    }
}

/// Held while mutating the store: a process-wide mutex plus an exclusive `flock`.
pub(crate) struct StoreLock<'a> {
    // Declared first so the flock is released before the mutex.
    _flock: Flock<File>,
    _guard: MutexGuard<'a, ()>,
}

#[derive(Debug)]
pub(crate) struct Locker {
    path: PathBuf,
    mutex: Mutex<()>,
}

impl Locker {
    pub(crate) fn new(path: PathBuf) -> Locker {
        Locker {
            path,
            mutex: Mutex::new(()),
        }
    }

    pub(crate) fn lock(&self) -> Result<StoreLock<'_>, ImageError> {
        let guard = self
            .mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let flock = self.flock(FlockArg::LockExclusive)?;
        Ok(StoreLock {
            _flock: flock,
            _guard: guard,
        })
    }

    /// The lock if nobody holds it right now.
    pub(crate) fn try_lock(&self) -> Result<Option<StoreLock<'_>>, ImageError> {
        let Ok(guard) = self.mutex.try_lock() else {
            return Ok(None);
        };
        match self.flock(FlockArg::LockExclusiveNonblock) {
            Ok(flock) => Ok(Some(StoreLock {
                _flock: flock,
                _guard: guard,
            })),
            Err(ImageError::Lock {
                source: nix::Error::EWOULDBLOCK,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn flock(&self, arg: FlockArg) -> Result<Flock<File>, ImageError> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(ImageError::io(&self.path))?;
        Flock::lock(file, arg).map_err(|(_, source)| ImageError::Lock {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_moves_names_and_merges() {
        let mut index = Index::default();
        index.add("m1", &["a".into(), "b".into()], "m1");
        index.add("m2", &["b".into(), "c".into()], "i2");
        index.add("m1", &["a".into(), "d".into()], "m1");
        assert_eq!(index.find("m1").unwrap().names, ["a", "d"]);
        assert_eq!(index.find("m2").unwrap().names, ["b", "c"]);
        assert_eq!(index.find("m1").unwrap().index, None);
        assert_eq!(index.find("m2").unwrap().index.as_deref(), Some("i2"));
        index.add("m3", &[], "m3");
        assert!(index.find("m3").unwrap().names.is_empty());
    }

    #[test]
    fn write_then_read_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("index.json");
        assert_eq!(Index::read(&path).unwrap(), Index::default());
        let mut index = Index::default();
        index.add("m", &["x".into()], "m");
        let scratch = tmp.path().join("scratch");
        fs::create_dir(&scratch).unwrap();
        index.write(&path, &scratch).unwrap();
        assert_eq!(Index::read(&path).unwrap(), index);
        assert_eq!(fs::read_dir(&scratch).unwrap().count(), 0);
    }

    #[test]
    fn lock_excludes_other_holders() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Locker::new(tmp.path().join("lock"));
        let b = Locker::new(tmp.path().join("lock"));
        let held = a.lock().unwrap();
        assert!(a.try_lock().unwrap().is_none(), "same process, same locker");
        assert!(
            b.try_lock().unwrap().is_none(),
            "other open file, as another process"
        );
        drop(held);
        assert!(b.try_lock().unwrap().is_some());
    }
}
