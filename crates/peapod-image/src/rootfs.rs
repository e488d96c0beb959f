//! Reads files of an image's root filesystem straight from its unpacked layers, resolving
//! paths the way the overlay mount would see them: upper layers win, whiteouts hide,
//! opaque directories cut off the layers below, symlinks resolve inside the image.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::unpack::{is_opaque, is_whiteout, open_nofollow};
use crate::ImageError;

const SYMLINK_HOPS_MAX: usize = 40;

/// What a path is in the merged view.
#[derive(Debug)]
enum Entry {
    Dir,
    File(PathBuf),
    Symlink(PathBuf),
}

/// The merged view of layer directories, given bottom first.
pub(crate) struct MergedRoot {
    top_down: Vec<PathBuf>,
}

impl MergedRoot {
    pub(crate) fn new(bottom_first: &[PathBuf]) -> MergedRoot {
        let mut top_down: Vec<PathBuf> = bottom_first.iter().rev().cloned().collect();
        if let Some(opaque) = top_down.iter().position(|dir| is_opaque(dir)) {
            top_down.truncate(opaque + 1);
        }
        MergedRoot { top_down }
    }

    /// The file's contents, following symlinks within the image; None when absent.
    pub(crate) fn read(&self, path: &str) -> Result<Option<Vec<u8>>, ImageError> {
        let mut resolved: Vec<String> = Vec::new();
        let mut remaining: VecDeque<String> = components(path);
        let mut hops = 0;
        while let Some(part) = remaining.pop_front() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(part);
            match self.entry(&resolved)? {
                None => return Ok(None),
                Some(Entry::Dir) => {}
                Some(Entry::File(real)) if remaining.is_empty() => return read_file(&real),
                Some(Entry::File(_)) => return Ok(None),
                Some(Entry::Symlink(target)) => {
                    hops += 1;
                    if hops > SYMLINK_HOPS_MAX {
                        return Err(ImageError::TooManySymlinks { path: path.into() });
                    }
                    resolved.pop();
                    if target.is_absolute() {
                        resolved.clear();
                    }
                    let target = target.to_string_lossy().into_owned();
                    for part in components(&target).into_iter().rev() {
                        remaining.push_front(part);
                    }
                }
            }
        }
        Err(ImageError::IsADirectory { path: path.into() })
    }

    /// Looks up `parts` (whose ancestors are all directories) across the layers.
    fn entry(&self, parts: &[String]) -> Result<Option<Entry>, ImageError> {
        let relative: PathBuf = parts.iter().collect();
        let parents = &parts[..parts.len() - 1];
        for layer in self.layers_for(parents) {
            let real = layer.join(&relative);
            let meta = match fs::symlink_metadata(&real) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => continue,
                Err(e) => return Err(ImageError::io(real)(e)),
            };
            return Ok(if is_whiteout(&meta) {
                None
            } else if meta.is_dir() {
                Some(Entry::Dir)
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&real).map_err(ImageError::io(&real))?;
                Some(Entry::Symlink(target))
            } else {
                Some(Entry::File(real))
            });
        }
        Ok(None)
    }

    /// The layers that contribute to directory `dir`: top down, each having every step of
    /// it as a real directory, cut after an opaque step or where a layer hides the step.
    fn layers_for(&self, dir: &[String]) -> Vec<&Path> {
        let mut layers: Vec<&Path> = self.top_down.iter().map(PathBuf::as_path).collect();
        let mut relative = PathBuf::new();
        for part in dir {
            relative.push(part);
            let mut next = Vec::new();
            for layer in layers {
                let real = layer.join(&relative);
                match fs::symlink_metadata(&real) {
                    Ok(meta) if meta.is_dir() => {
                        next.push(layer);
                        if is_opaque(&real) {
                            break;
                        }
                    }
                    Ok(_) => break,
                    Err(_) => {}
                }
            }
            layers = next;
        }
        layers
    }
}

fn components(path: &str) -> VecDeque<String> {
    path.split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn read_file(real: &Path) -> Result<Option<Vec<u8>>, ImageError> {
    let mut bytes = Vec::new();
    open_nofollow(real)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(ImageError::io(real))?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::{tests::TarBuilder, unpack};

    fn layer(root: &Path, name: &str, tar: Vec<u8>) -> PathBuf {
        let dir = root.join(name);
        fs::create_dir(&dir).unwrap();
        unpack(&tar[..], &dir).unwrap();
        dir
    }

    #[test]
    fn upper_layers_whiteouts_opaque_dirs_and_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let bottom = layer(
            tmp.path(),
            "bottom",
            TarBuilder::new()
                .file("etc/passwd", b"old")
                .file("etc/group", b"grp")
                .file("etc/motd", b"hi")
                .file("opt/keep", b"k")
                .file("usr/lib/os-release", b"os")
                .finish(),
        );
        let top = layer(
            tmp.path(),
            "top",
            TarBuilder::new()
                .file("etc/passwd", b"new")
                .file("etc/.wh.motd", b"")
                .dir("opt/")
                .file("opt/.wh..wh..opq", b"")
                .file("opt/fresh", b"f")
                .link(
                    tar::EntryType::Symlink,
                    "etc/os-release",
                    "../usr/lib/os-release",
                )
                .link(tar::EntryType::Symlink, "etc/abs", "/etc/../../etc/group")
                .link(tar::EntryType::Symlink, "loop", "loop")
                .finish(),
        );
        let root = MergedRoot::new(&[bottom, top]);
        assert_eq!(root.read("/etc/passwd").unwrap().unwrap(), b"new");
        assert_eq!(root.read("etc/group").unwrap().unwrap(), b"grp");
        assert_eq!(root.read("/etc/motd").unwrap(), None);
        assert_eq!(root.read("/opt/keep").unwrap(), None);
        assert_eq!(root.read("/opt/fresh").unwrap().unwrap(), b"f");
        assert_eq!(root.read("/etc/os-release").unwrap().unwrap(), b"os");
        assert_eq!(root.read("/etc/abs").unwrap().unwrap(), b"grp");
        assert_eq!(root.read("/nope/x").unwrap(), None);
        assert_eq!(root.read("/etc/passwd/x").unwrap(), None);
        assert!(matches!(
            root.read("/loop"),
            Err(ImageError::TooManySymlinks { .. })
        ));
        assert!(matches!(
            root.read("/etc"),
            Err(ImageError::IsADirectory { .. })
        ));
    }

    #[test]
    fn file_in_upper_layer_hides_lower_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let bottom = layer(
            tmp.path(),
            "b",
            TarBuilder::new().file("d/f", b"1").finish(),
        );
        let top = layer(
            tmp.path(),
            "t",
            TarBuilder::new().file("d", b"now a file").finish(),
        );
        let root = MergedRoot::new(&[bottom, top]);
        assert_eq!(root.read("/d/f").unwrap(), None);
        assert_eq!(root.read("/d").unwrap().unwrap(), b"now a file");
    }

    #[test]
    fn opaque_ancestor_hides_lower_subdirectories() {
        let tmp = tempfile::tempdir().unwrap();
        let bottom = layer(
            tmp.path(),
            "b",
            TarBuilder::new().file("opt/sub/x", b"1").finish(),
        );
        let top = layer(
            tmp.path(),
            "t",
            TarBuilder::new()
                .dir("opt/")
                .file("opt/.wh..wh..opq", b"")
                .file("opt/sub/y", b"2")
                .finish(),
        );
        let root = MergedRoot::new(&[bottom, top]);
        assert_eq!(root.read("/opt/sub/x").unwrap(), None);
        assert_eq!(root.read("/opt/sub/y").unwrap().unwrap(), b"2");
    }
}
