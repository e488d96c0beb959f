//! fsGroup volume ownership, kubelet's `SetVolumeOwnership`: every file of the volume gets the
//! pod's fsGroup as its group and group read (and write, unless the volume is read-only)
//! permission; directories also get setgid so that new files inherit the group.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
pub(super) const SETGID: u32 = 0o2000;

/// The pod's fsGroup and fsGroupChangePolicy, when it sets an fsGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsGroup {
    pub gid: u32,
    /// fsGroupChangePolicy `OnRootMismatch`: skip the walk when the volume root already fits.
    pub on_root_mismatch: bool,
}

impl FsGroup {
    pub fn of(pod: &k8s_openapi::api::core::v1::Pod) -> Option<FsGroup> {
        let context = pod.spec.as_ref()?.security_context.as_ref()?;
        let gid = u32::try_from(context.fs_group?).ok()?;
        Some(FsGroup {
            gid,
            on_root_mismatch: context.fs_group_change_policy.as_deref() == Some("OnRootMismatch"),
        })
    }
}

fn mask(read_only: bool, dir: bool) -> u32 {
    let base = if read_only { RO_MASK } else { RW_MASK };
    if dir {
        base | SETGID | EXEC_MASK
    } else {
        base
    }
}

/// Whether the volume root already has the group and permissions the walk would give it.
fn root_matches(root: &Path, fs_group: &FsGroup, read_only: bool) -> bool {
    std::fs::metadata(root).is_ok_and(|meta| {
        let wanted = mask(read_only, true);
        meta.gid() == fs_group.gid && meta.mode() & wanted == wanted
    })
}

/// Applies fsGroup to the volume at `root`. Failures on single files are logged, as kubelet
/// does, and the walk goes on.
pub fn set_volume_ownership(root: &Path, fs_group: &FsGroup, read_only: bool) {
    if fs_group.on_root_mismatch && root_matches(root, fs_group, read_only) {
        return;
    }
    walk(root, fs_group.gid, read_only);
}

/// Children before their directory, so a read-only mask never locks the walk out.
fn walk(path: &Path, gid: u32, read_only: bool) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                walk(&entry.path(), gid, read_only);
            }
        }
    }
    if let Err(err) = std::os::unix::fs::lchown(path, None, Some(gid)) {
        tracing::warn!(path = %path.display(), %err, "fsGroup: changing the group failed");
        return;
    }
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = (meta.mode() & 0o7777) | mask(read_only, meta.is_dir());
    if let Err(err) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), %err, "fsGroup: changing the mode failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn files_and_directories_get_the_group_and_its_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(root.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(root.join("sub/f"), std::fs::Permissions::from_mode(0o400))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let fs_group = FsGroup {
            gid: 2345,
            on_root_mismatch: false,
        };
        set_volume_ownership(&root, &fs_group, false);
        assert_eq!(mode(&root), 0o2777);
        assert_eq!(mode(&root.join("sub/f")), 0o660);
        assert_eq!(std::fs::metadata(root.join("sub/f")).unwrap().gid(), 2345);
        assert_eq!(std::fs::metadata(root.join("sub")).unwrap().gid(), 2345);
        assert_eq!(
            std::fs::symlink_metadata(root.join("link")).unwrap().gid(),
            2345
        );
        assert_ne!(std::fs::metadata("/etc/passwd").unwrap().gid(), 2345);
    }

    #[test]
    fn on_root_mismatch_skips_a_volume_whose_root_fits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("f"), "x").unwrap();
        std::fs::set_permissions(root.join("f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(root, None, Some(777)).unwrap();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o2770)).unwrap();
        let fs_group = FsGroup {
            gid: 777,
            on_root_mismatch: true,
        };
        set_volume_ownership(root, &fs_group, false);
        assert_eq!(mode(&root.join("f")), 0o600);
        set_volume_ownership(
            root,
            &FsGroup {
                on_root_mismatch: false,
                ..fs_group
            },
            true,
        );
        assert_eq!(mode(&root.join("f")), 0o640);
    }

    #[test]
    fn fs_group_comes_from_the_pod_security_context() {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [], "securityContext": {
                "fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch"}}
        }))
        .unwrap();
        assert_eq!(
            FsGroup::of(&pod),
            Some(FsGroup {
                gid: 2000,
                on_root_mismatch: true
            })
        );
    }
}
