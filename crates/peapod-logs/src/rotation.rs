//! Rotated siblings of a log file: `<file>.<UTC yyyyMMdd-HHmmss>` plus `.<n>` when several
//! rotations fall in the same second. Finds them oldest first, names the next one, prunes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::LogError;

/// Format of the rotation time in a rotated file's name (kubelet's `20060102-150405`).
const STAMP_FORMAT: &str = "%Y%m%d-%H%M%S";
const STAMP_LEN: usize = 15;

/// Position of a rotated file in time: its stamp, then its same-second counter.
type SortKey = (String, u64);

/// Rotated siblings of `path`, oldest first. Files that do not follow the naming scheme
/// (editor backups, compressed copies made by other tools) are not part of this log.
pub(crate) fn rotated_siblings(path: &Path) -> Result<Vec<PathBuf>, LogError> {
    Ok(keyed_siblings(path)?
        .into_iter()
        .map(|(_, path)| path)
        .collect())
}

/// The name the current file gets when rotated at `now`; later than every existing sibling.
pub(crate) fn next_rotated_path(path: &Path, now: Timestamp) -> Result<PathBuf, LogError> {
    let stamp = now.strftime(STAMP_FORMAT).to_string();
    let same_second = keyed_siblings(path)?
        .into_iter()
        .filter(|((s, _), _)| *s == stamp)
        .map(|((_, counter), _)| counter)
        .max();
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{stamp}"));
    if let Some(counter) = same_second {
        name.push(format!(".{}", counter + 1));
    }
    Ok(PathBuf::from(name))
}

/// Removes the oldest rotated siblings so that at most `keep` remain.
pub(crate) fn prune(path: &Path, keep: usize) -> Result<(), LogError> {
    let siblings = rotated_siblings(path)?;
    let excess = siblings.len().saturating_sub(keep);
    for old in &siblings[..excess] {
        match fs::remove_file(old) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(LogError::Remove {
                    path: old.clone(),
                    source: e,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

fn keyed_siblings(path: &Path) -> Result<Vec<(SortKey, PathBuf)>, LogError> {
    let Some(base) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let list_err = |source| LogError::List {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(list_err(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let name = entry.map_err(list_err)?.file_name();
        if let Some(key) = name.to_str().and_then(|n| sort_key(base, n)) {
            found.push((key, dir.join(&name)));
        }
    }
    found.sort();
    Ok(found)
}

fn sort_key(base: &str, candidate: &str) -> Option<SortKey> {
    let suffix = candidate.strip_prefix(base)?.strip_prefix('.')?;
    let stamp = suffix.get(..STAMP_LEN)?;
    let well_formed = stamp.bytes().enumerate().all(|(i, b)| match i {
        8 => b == b'-',
        _ => b.is_ascii_digit(),
    });
    if !well_formed {
        return None;
    }
    let counter = match &suffix[STAMP_LEN..] {
        "" => 0,
        rest => {
            let digits = rest.strip_prefix('.')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()?
        }
    };
    Some((stamp.to_string(), counter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) {
        fs::write(dir.join(name), b"").unwrap();
    }

    #[test]
    fn sort_key_accepts_only_the_naming_scheme() {
        assert_eq!(
            sort_key("0.log", "0.log.20240101-120000"),
            Some(("20240101-120000".into(), 0))
        );
        assert_eq!(
            sort_key("0.log", "0.log.20240101-120000.12"),
            Some(("20240101-120000".into(), 12))
        );
        assert_eq!(sort_key("0.log", "0.log"), None);
        assert_eq!(sort_key("0.log", "0.log.20240101-120000.gz"), None);
        assert_eq!(sort_key("0.log", "0.log.20240101-120000."), None);
        assert_eq!(sort_key("0.log", "0.log.2024010101-2000"), None);
        assert_eq!(sort_key("0.log", "10.log.20240101-120000"), None);
    }

    #[test]
    fn siblings_are_listed_oldest_first_with_numeric_counters() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "0.log",
            "0.log.20240101-120000.10",
            "0.log.20240101-120000.2",
            "0.log.20240101-120000",
            "0.log.20231231-235959",
            "0.log.swp",
            "1.log.20200101-000000",
        ] {
            touch(dir.path(), name);
        }
        let names: Vec<_> = rotated_siblings(&dir.path().join("0.log"))
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "0.log.20231231-235959",
                "0.log.20240101-120000",
                "0.log.20240101-120000.2",
                "0.log.20240101-120000.10",
            ]
        );
    }

    #[test]
    fn next_name_uses_utc_stamp_and_counts_past_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        let now: Timestamp = "2024-01-01T13:00:00+01:00".parse().unwrap();
        let first = next_rotated_path(&log, now).unwrap();
        assert_eq!(first, dir.path().join("0.log.20240101-120000"));
        touch(dir.path(), "0.log.20240101-120000.3");
        assert_eq!(
            next_rotated_path(&log, now).unwrap(),
            dir.path().join("0.log.20240101-120000.4")
        );
    }

    #[test]
    fn prune_removes_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "0.log.20240101-120000",
            "0.log.20240101-120001",
            "0.log.20240101-120002",
        ] {
            touch(dir.path(), name);
        }
        let log = dir.path().join("0.log");
        prune(&log, 2).unwrap();
        assert!(!dir.path().join("0.log.20240101-120000").exists());
        assert_eq!(rotated_siblings(&log).unwrap().len(), 2);
        prune(&log, 0).unwrap();
        assert!(rotated_siblings(&log).unwrap().is_empty());
    }
}
