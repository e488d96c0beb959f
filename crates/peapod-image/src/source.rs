//! Where `load` reads from: a tar archive (possibly compressed), staged into the blob store
//! in one pass, or an OCI layout directory read in place. Both hand out files by their path
//! inside the archive.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use crate::blobs::{BlobStore, Expected};
use crate::compression::decompress;
use crate::digest::Digest;
use crate::ImageError;

/// Top-level files read into memory instead of the blob store.
const METADATA_FILES: [&str; 4] = ["index.json", "oci-layout", "manifest.json", "repositories"];
/// Bound on an in-memory metadata file, against hostile archives.
const METADATA_MAX: u64 = 64 << 20;
const LINK_HOPS_MAX: usize = 16;

pub(crate) trait Source {
    /// A top-level metadata file (see [`METADATA_FILES`]), if present.
    fn metadata(&self, name: &str) -> Option<&[u8]>;

    /// Puts the file at `path` into the blob store (checked against `expected`) and returns
    /// its digest and size.
    fn blob(
        &mut self,
        path: &str,
        expected: Option<&Expected>,
        blobs: &BlobStore,
    ) -> Result<(Digest, u64), ImageError>;

    fn origin(&self) -> &Path;
}

/// Normalises an archive path: `./a//b/` → `a/b`; `..` pops. None if it climbs out.
pub(crate) fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.join("/"))
}

fn missing(path: &str, origin: &Path) -> ImageError {
    ImageError::MissingBlob {
        name: path.into(),
        source_path: origin.to_path_buf(),
    }
}

/// An OCI layout directory.
pub(crate) struct DirSource {
    root: PathBuf,
    metadata: HashMap<String, Vec<u8>>,
}

impl DirSource {
    pub(crate) fn open(root: &Path) -> Result<DirSource, ImageError> {
        let mut metadata = HashMap::new();
        for name in METADATA_FILES {
            let path = root.join(name);
            match fs::read(&path) {
                Ok(bytes) => {
                    metadata.insert(name.to_string(), bytes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ImageError::io(path)(e)),
            }
        }
        Ok(DirSource {
            root: root.to_path_buf(),
            metadata,
        })
    }
}

impl Source for DirSource {
    fn metadata(&self, name: &str) -> Option<&[u8]> {
        self.metadata.get(name).map(Vec::as_slice)
    }

    fn blob(
        &mut self,
        path: &str,
        expected: Option<&Expected>,
        blobs: &BlobStore,
    ) -> Result<(Digest, u64), ImageError> {
        let relative = normalize(path).ok_or_else(|| missing(path, &self.root))?;
        let full = self.root.join(relative);
        let file = match File::open(&full) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(missing(path, &self.root))
            }
            Err(e) => return Err(ImageError::io(full)(e)),
        };
        blobs.put(BufReader::new(file), expected, path)
    }

    fn origin(&self) -> &Path {
        &self.root
    }
}

/// A tar archive whose files were all copied into the blob store on open.
pub(crate) struct ArchiveSource {
    origin: PathBuf,
    metadata: HashMap<String, Vec<u8>>,
    files: HashMap<String, (Digest, u64)>,
    links: HashMap<String, String>,
}

impl ArchiveSource {
    /// Reads the whole archive once, storing every regular file as a blob.
    pub(crate) fn stage(path: &Path, blobs: &BlobStore) -> Result<ArchiveSource, ImageError> {
        let file = File::open(path).map_err(ImageError::io(path))?;
        let stream = decompress(BufReader::new(file)).map_err(|e| ImageError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        let mut source = ArchiveSource {
            origin: path.to_path_buf(),
            metadata: HashMap::new(),
            files: HashMap::new(),
            links: HashMap::new(),
        };
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(ImageError::io(path))? {
            let entry = entry.map_err(ImageError::io(path))?;
            source.stage_entry(entry, blobs)?;
        }
        Ok(source)
    }

    fn stage_entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        blobs: &BlobStore,
    ) -> Result<(), ImageError> {
        let read_err = ImageError::io(&self.origin);
        let raw = entry
            .path()
            .map_err(read_err)?
            .to_string_lossy()
            .into_owned();
        let Some(name) = normalize(&raw) else {
            tracing::warn!(
                entry = raw,
                "skipping archive entry outside the archive root"
            );
            return Ok(());
        };
        let kind = entry.header().entry_type();
        if kind.is_file() || kind.is_contiguous() {
            if METADATA_FILES.contains(&name.as_str()) {
                let mut bytes = Vec::new();
                (&mut entry)
                    .take(METADATA_MAX)
                    .read_to_end(&mut bytes)
                    .map_err(ImageError::io(&self.origin))?;
                self.metadata.insert(name, bytes);
            } else {
                let stored = blobs.put(&mut entry, None, &name)?;
                self.files.insert(name, stored);
            }
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name().map_err(ImageError::io(&self.origin))?;
            let target = target
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Symlinks are relative to their directory, hard links to the archive root.
            let joined = if kind.is_symlink() && !target.starts_with('/') {
                let parent = Path::new(&name).parent().unwrap_or(Path::new(""));
                parent.join(&target).to_string_lossy().into_owned()
            } else {
                target
            };
            if let Some(target) = normalize(&joined) {
                self.links.insert(name, target);
            }
        }
        Ok(())
    }

    fn resolve(&self, path: &str) -> Option<&(Digest, u64)> {
        let mut current = normalize(path)?;
        for _ in 0..LINK_HOPS_MAX {
            if let Some(found) = self.files.get(&current) {
                return Some(found);
            }
            current = self.links.get(&current)?.clone();
        }
        None
    }
}

impl Source for ArchiveSource {
    fn metadata(&self, name: &str) -> Option<&[u8]> {
        self.metadata.get(name).map(Vec::as_slice)
    }

    fn blob(
        &mut self,
        path: &str,
        expected: Option<&Expected>,
        _blobs: &BlobStore,
    ) -> Result<(Digest, u64), ImageError> {
        let (digest, size) = self
            .resolve(path)
            .cloned()
            .ok_or_else(|| missing(path, &self.origin))?;
        if let Some(expected) = expected {
            expected.verify(path, &digest, size)?;
        }
        Ok((digest, size))
    }

    fn origin(&self) -> &Path {
        &self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("./a//b/").as_deref(), Some("a/b"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("/abs/x").as_deref(), Some("abs/x"));
        assert_eq!(normalize("../x"), None);
    }
}
