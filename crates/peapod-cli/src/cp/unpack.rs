//! Unpacks the archive `tar cf - PATH` writes in a pod, as kubectl's `untarAll` does: every
//! member must start with the source path as tar wrote it (else the archive was tampered
//! with), that prefix is replaced by the local destination, and a member that would land
//! outside the destination is skipped with a warning. Symbolic links are skipped with
//! kubectl's warning; a hard link is made only to a member inside the destination. Files are
//! written as they stream in, with the local defaults for permissions, as kubectl writes them.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use tar::EntryType;

use super::spec::{dir, is_within, join, strip_trailing_slash};
use super::CpError;

/// Where members go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// What every member's name starts with: the source path as tar names it.
    pub prefix: String,
    /// The local path the prefix becomes.
    pub path: String,
    /// The command kubectl suggests, with the first skipped symbolic link, for copying links
    /// too.
    pub link_hint: String,
}

/// Where a member would go.
enum Place {
    Inside(String),
    Outside(String),
}

impl Destination {
    /// The local path of member `name`, which must start with the prefix.
    fn place(&self, name: &str) -> Result<Place, CpError> {
        let rest = name.strip_prefix(&self.prefix).ok_or(CpError::Corrupted)?;
        let local = join(&self.path, &strip_trailing_slash(rest).replace('\\', "/"));
        if is_within(&self.path, &local) {
            Ok(Place::Inside(local))
        } else {
            Ok(Place::Outside(local))
        }
    }
}

/// Unpacks `archive` into `to`, then reads the rest of the input (tar's padding); what was
/// skipped is told in `warnings`.
pub fn unpack(
    archive: impl Read,
    to: &Destination,
    warnings: &mut Vec<String>,
) -> Result<(), CpError> {
    let mut archive = tar::Archive::new(archive);
    let mut unpacker = Unpacker {
        to,
        warnings,
        hinted: false,
    };
    for entry in archive.entries().map_err(CpError::ReadArchive)? {
        let mut entry = entry.map_err(CpError::ReadArchive)?;
        unpacker.entry(&mut entry)?;
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(CpError::ReadArchive)?;
    Ok(())
}

struct Unpacker<'a> {
    to: &'a Destination,
    warnings: &'a mut Vec<String>,
    hinted: bool,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), CpError> {
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let local = match self.to.place(&name)? {
            Place::Inside(local) => local,
            Place::Outside(local) => {
                self.warn(format!(
                    "warning: file {local:?} is outside target destination, skipping"
                ));
                return Ok(());
            }
        };
        create_dir_all(&dir(&local))?;
        match kind {
            EntryType::Directory => create_dir_all(&local),
            EntryType::Symlink => {
                let target = link_name(entry);
                self.skip_symlink(&local, &target);
                Ok(())
            }
            EntryType::Link => self.hard_link(&local, &link_name(entry)),
            _ => write_file(&local, entry),
        }
    }

    fn skip_symlink(&mut self, local: &str, target: &str) {
        let hint = if self.hinted {
            String::new()
        } else {
            format!(" (consider using {:?})", self.to.link_hint)
        };
        self.hinted = true;
        self.warn(format!(
            "warning: skipping symlink: {local:?} -> {target:?}{hint}"
        ));
    }

    /// Links to a member already unpacked, when that is inside the destination.
    fn hard_link(&mut self, local: &str, target: &str) -> Result<(), CpError> {
        let linked = match self.to.place(target) {
            Ok(Place::Inside(linked)) if Path::new(&linked).is_file() => linked,
            _ => {
                self.warn(format!(
                    "warning: skipping hard link: {local:?} -> {target:?}"
                ));
                return Ok(());
            }
        };
        remove_existing(local)?;
        fs::hard_link(&linked, local).map_err(|source| write_error(local, source))
    }

    fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }
}

fn link_name<R: Read>(entry: &tar::Entry<R>) -> String {
    entry
        .link_name_bytes()
        .map(|name| String::from_utf8_lossy(&name).into_owned())
        .unwrap_or_default()
}

fn create_dir_all(path: &str) -> Result<(), CpError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|source| write_error(path, source))
}

/// A file in place of whatever is there; never written through a symbolic link.
fn write_file(path: &str, content: &mut impl Read) -> Result<(), CpError> {
    if fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_symlink()) {
        remove_existing(path)?;
    }
    let mut file = fs::File::create(path).map_err(|source| write_error(path, source))?;
    io::copy(content, &mut file).map_err(|source| write_error(path, source))?;
    Ok(())
}

fn remove_existing(path: &str) -> Result<(), CpError> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(write_error(path, err)),
        _ => Ok(()),
    }
}

fn write_error(path: &str, source: io::Error) -> CpError {
    CpError::Write {
        path: path.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive with whatever names and kinds a test wants, as a hostile pod could send.
    fn archive(members: &[(&str, EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in members {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            let name_field = &mut header.as_old_mut().name;
            name_field[..name.len()].copy_from_slice(name.as_bytes());
            if !link.is_empty() {
                header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn destination(prefix: &str, path: &Path) -> Destination {
        Destination {
            prefix: prefix.into(),
            path: path.display().to_string(),
            link_hint: "peapod exec -n \"default\" \"web\" -- tar cf - \"/tmp/src\" | tar xf -"
                .into(),
        }
    }

    #[test]
    fn members_land_beneath_the_destination_in_place_of_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let members = archive(&[
            ("tmp/src/", EntryType::Directory, "", b""),
            ("tmp/src/sub/", EntryType::Directory, "", b""),
            ("tmp/src/sub/data.bin", EntryType::Regular, "", &[0, 1, 255]),
            (
                "tmp/src/same.bin",
                EntryType::Link,
                "tmp/src/sub/data.bin",
                b"",
            ),
            ("tmp/src/link", EntryType::Symlink, "/etc/passwd", b""),
            ("tmp/src/link2", EntryType::Symlink, "sub", b""),
        ]);
        let mut warnings = Vec::new();
        unpack(&members[..], &destination("tmp/src", &out), &mut warnings).unwrap();
        assert_eq!(fs::read(out.join("sub/data.bin")).unwrap(), [0, 1, 255]);
        assert_eq!(fs::read(out.join("same.bin")).unwrap(), [0, 1, 255]);
        assert!(!out.join("link").exists() && !out.join("link2").exists());
        let out = out.display();
        assert_eq!(
            warnings,
            vec![
                format!("warning: skipping symlink: \"{out}/link\" -> \"/etc/passwd\" (consider using \"peapod exec -n \\\"default\\\" \\\"web\\\" -- tar cf - \\\"/tmp/src\\\" | tar xf -\")"),
                format!("warning: skipping symlink: \"{out}/link2\" -> \"sub\""),
            ]
        );
    }

    #[test]
    fn members_escaping_the_destination_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let members = archive(&[
            ("tmp/x/../escaped", EntryType::Regular, "", b"bad"),
            ("tmp/x/ok", EntryType::Regular, "", b"good"),
            (
                "tmp/x/hard",
                EntryType::Link,
                "tmp/x/../../../etc/passwd",
                b"",
            ),
        ]);
        let mut warnings = Vec::new();
        unpack(&members[..], &destination("tmp/x", &out), &mut warnings).unwrap();
        assert_eq!(fs::read(out.join("ok")).unwrap(), b"good");
        assert!(!dir.path().join("escaped").exists());
        assert!(!out.join("hard").exists());
        let out = out.display();
        assert_eq!(
            warnings,
            vec![
                format!(
                    "warning: file \"{}/escaped\" is outside target destination, skipping",
                    dir.path().display()
                ),
                format!(
                    "warning: skipping hard link: \"{out}/hard\" -> \"tmp/x/../../../etc/passwd\""
                ),
            ]
        );
    }

    #[test]
    fn a_member_outside_the_source_means_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let members = archive(&[("etc/passwd", EntryType::Regular, "", b"x")]);
        let err = unpack(
            &members[..],
            &destination("tmp/x", dir.path()),
            &mut Vec::new(),
        );
        assert_eq!(err.unwrap_err().to_string(), "tar contents corrupted");
    }

    #[test]
    fn an_existing_symlink_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, out.join("f")).unwrap();
        let members = archive(&[("f", EntryType::Regular, "", b"new")]);
        unpack(
            &members[..],
            &destination("f", &out.join("f")),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(out.join("f")).unwrap(), b"new");
    }
}
