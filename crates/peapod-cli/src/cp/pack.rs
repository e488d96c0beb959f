//! The archive `cp` streams into a pod, built as kubectl's `makeTar` builds it: entries are
//! named from the destination's last element down, a directory appears only in the names of
//! what it holds (or as an entry of its own when empty), symbolic links stay links, and file
//! contents are streamed, never held whole.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::spec::{base, clean, join};
use super::CpError;

/// Writes the archive of local `src` to be unpacked as remote `dest` (by `tar -x` in `dest`'s
/// directory).
pub fn make_tar(src: &str, dest: &str, writer: impl Write) -> Result<(), CpError> {
    let mut builder = tar::Builder::new(writer);
    builder.follow_symlinks(false);
    append(&mut builder, Path::new(&clean(src)), &base(&clean(dest)))?;
    let mut writer = builder
        .into_inner()
        .map_err(|source| archive_error(src, source))?;
    writer.flush().map_err(|source| archive_error(src, source))
}

fn append<W: Write>(builder: &mut tar::Builder<W>, path: &Path, name: &str) -> Result<(), CpError> {
    let metadata = fs::symlink_metadata(path).map_err(|source| archive_error(path, source))?;
    if !metadata.is_dir() {
        return builder
            .append_path_with_name(path, name)
            .map_err(|source| archive_error(path, source));
    }
    let mut entries = fs::read_dir(path)
        .and_then(|entries| entries.collect::<io::Result<Vec<_>>>())
        .map_err(|source| archive_error(path, source))?;
    if entries.is_empty() {
        return builder
            .append_path_with_name(path, name)
            .map_err(|source| archive_error(path, source));
    }
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let child = join(name, &entry.file_name().to_string_lossy());
        append(builder, &entry.path(), &child)?;
    }
    Ok(())
}

fn archive_error(path: impl AsRef<Path>, source: io::Error) -> CpError {
    CpError::Archive {
        path: path.as_ref().display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn entries(archive: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
        let mut archive = tar::Archive::new(archive);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().display().to_string();
                let kind = entry.header().entry_type();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                (name, kind, data)
            })
            .collect()
    }

    #[test]
    fn directories_are_named_from_the_destination_down() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::create_dir_all(src.join("empty")).unwrap();
        fs::write(src.join("b.bin"), [0u8, 255, 1]).unwrap();
        fs::write(src.join("sub/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("../b.bin", src.join("sub/link")).unwrap();
        let mut archive = Vec::new();
        make_tar(&format!("{}/", src.display()), "/tmp/copy", &mut archive).unwrap();
        assert_eq!(
            entries(&archive),
            vec![
                (
                    "copy/b.bin".into(),
                    tar::EntryType::Regular,
                    vec![0, 255, 1]
                ),
                ("copy/empty".into(), tar::EntryType::Directory, vec![]),
                (
                    "copy/sub/a.txt".into(),
                    tar::EntryType::Regular,
                    b"a".to_vec()
                ),
                ("copy/sub/link".into(), tar::EntryType::Symlink, vec![]),
            ]
        );
    }

    #[test]
    fn a_file_is_named_as_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.txt");
        fs::write(&file, "content").unwrap();
        let mut archive = Vec::new();
        make_tar(file.to_str().unwrap(), "g.txt", &mut archive).unwrap();
        let found = entries(&archive);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].0.as_str(), found[0].2.as_slice()),
            ("g.txt", &b"content"[..])
        );
        let missing = make_tar("/no/such/file", "x", Vec::new()).unwrap_err();
        assert!(
            missing.to_string().starts_with("archiving /no/such/file: "),
            "{missing}"
        );
    }
}
