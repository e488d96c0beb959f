//! emptyDirs with medium Memory: a tmpfs mounted on the host at the volume's path, as kubelet
//! mounts one under its pods directory. On the host, rather than in the shim's mount
//! namespace, the content lives as long as the pod, not as long as one sandbox: a shim
//! re-created after it died finds the volume as it was. The pod's data directory is closed to
//! other users, so the mount is reachable only through the pod's containers.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::kubelet::downward::NodeAllocatable;
use crate::kubelet::pod_cgroup;
use crate::perms;

/// Mounts the volume's tmpfs at `path` unless it is already mounted there (the sandbox is
/// being re-created, or the agent restarted): its size is [`tmpfs_size`], and with an fsGroup its
/// root belongs to that group, setgid, as kubelet's ownership walk leaves an emptyDir.
pub fn mount_once(path: &Path, size: Option<u64>, gid: Option<u32>) -> nix::Result<()> {
    if is_mount_point(path) {
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options(size, gid).as_str()),
    )
}

fn options(size: Option<u64>, gid: Option<u32>) -> String {
    let mut options = match gid {
        Some(gid) => format!(
            "mode={:04o},gid={gid}",
            perms::EMPTY_DIR | super::ownership::SETGID
        ),
        None => format!("mode={:04o}", perms::EMPTY_DIR),
    };
    if let Some(bytes) = size {
        options.push_str(&format!(",size={bytes}"));
    }
    options
}

/// What the pod's memory-backed volumes may hold together at most: its memory limit, or the
/// node's allocatable memory when it has none (or a larger one).
pub fn pod_memory(pod: &Pod, allocatable: &NodeAllocatable) -> Option<u64> {
    let node = allocatable
        .memory
        .0
        .parse::<peapod_api::quantity::Quantity>()
        .ok()
        .and_then(|q| q.value())
        .and_then(|bytes| u64::try_from(bytes).ok())
        .filter(|bytes| *bytes > 0);
    let limit = pod
        .spec
        .as_ref()
        .and_then(|spec| pod_cgroup::resource_config(spec, None).memory_limit)
        .and_then(|bytes| u64::try_from(bytes).ok())
        .filter(|bytes| *bytes > 0);
    match (limit, node) {
        (Some(limit), Some(node)) => Some(limit.min(node)),
        (limit, node) => limit.or(node),
    }
}

/// kubelet's `calculateEmptyDirMemorySize`: the pod's share, or the volume's sizeLimit where
/// that is smaller.
pub fn tmpfs_size(pod_memory: Option<u64>, size_limit: Option<u64>) -> Option<u64> {
    match (pod_memory, size_limit.filter(|limit| *limit > 0)) {
        (Some(pod), Some(limit)) => Some(pod.min(limit)),
        (pod, limit) => pod.or(limit),
    }
}

/// Unmounts every mount at or below `dir`, deepest first. Detached lazily: a process of the
/// host that still has a file open there keeps it until it lets go, and `dir` can go now.
pub fn unmount_under(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else {
        return;
    };
    let mut mounts: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|point| point.starts_with(&dir))
        .collect();
    mounts.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in mounts {
        if let Err(err) = umount2(&point, MntFlags::MNT_DETACH) {
            tracing::warn!(path = %point.display(), %err, "unmounting a pod volume");
        }
    }
}

fn is_mount_point(path: &Path) -> bool {
    path.canonicalize()
        .is_ok_and(|path| mount_points().contains(&path))
}

/// The mount points of the agent's mount namespace, from /proc/self/mountinfo.
fn mount_points() -> Vec<PathBuf> {
    let table = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    table
        .split(|&byte| byte == b'\n')
        .filter_map(|line| line.split(|&byte| byte == b' ').nth(4))
        .map(unescape)
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as octal escapes (`\040`).
pub(crate) fn unescape(field: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|_| field[i] == b'\\')
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn memory_volumes_hold_the_pods_limit_or_the_nodes_memory_or_a_smaller_size_limit() {
        let node = |memory: &str| NodeAllocatable {
            cpu: k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
            memory: k8s_openapi::apimachinery::pkg::api::resource::Quantity(memory.into()),
            ephemeral_storage: None,
        };
        let pod = |limits: &[Option<&str>]| -> Pod {
            let containers: Vec<serde_json::Value> = limits
                .iter()
                .enumerate()
                .map(|(i, limit)| match limit {
                    Some(l) => serde_json::json!({"name": format!("c{i}"), "resources": {"limits": {"memory": l}}}),
                    None => serde_json::json!({"name": format!("c{i}")}),
                })
                .collect();
            serde_json::from_value(serde_json::json!({"spec": {"containers": containers}})).unwrap()
        };
        let mib = |n: u64| n << 20;
        assert_eq!(
            pod_memory(&pod(&[Some("64Mi"), Some("32Mi")]), &node("1Gi")),
            Some(mib(96))
        );
        assert_eq!(
            pod_memory(&pod(&[Some("64Mi"), None]), &node("1Gi")),
            Some(mib(1024))
        );
        assert_eq!(
            pod_memory(&pod(&[Some("2Gi")]), &node("1Gi")),
            Some(mib(1024))
        );
        assert_eq!(tmpfs_size(Some(mib(96)), Some(mib(10))), Some(mib(10)));
        assert_eq!(tmpfs_size(Some(mib(96)), Some(mib(200))), Some(mib(96)));
        assert_eq!(tmpfs_size(Some(mib(96)), Some(0)), Some(mib(96)));
        assert_eq!(tmpfs_size(None, None), None);
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        let unescaped = |field: &str| unescape(field.as_bytes());
        assert_eq!(
            unescaped(r"/tmp/a\040b\011c\134d"),
            Path::new("/tmp/a b\tc\\d")
        );
        assert_eq!(unescaped("/plain/path"), Path::new("/plain/path"));
        assert_eq!(unescaped(r"/odd\04"), Path::new(r"/odd\04"));
        assert_eq!(
            unescaped(r"/latin\351"),
            Path::new(OsStr::from_bytes(b"/latin\xe9"))
        );
    }

    #[test]
    fn options_carry_size_and_fs_group() {
        assert_eq!(options(None, None), "mode=0777");
        assert_eq!(
            options(Some(1 << 20), Some(2000)),
            "mode=2777,gid=2000,size=1048576"
        );
    }

    #[test]
    fn a_tmpfs_is_mounted_once_and_unmounted_from_above() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("pod dir/volumes/mem");
        std::fs::create_dir_all(&volume).unwrap();
        mount_once(&volume, Some(1 << 20), None).unwrap();
        std::fs::write(volume.join("data"), "kept").unwrap();
        mount_once(&volume, Some(1 << 20), None).unwrap();
        assert_eq!(
            std::fs::read_to_string(volume.join("data")).unwrap(),
            "kept"
        );
        unmount_under(&dir.path().join("pod dir"));
        assert!(!is_mount_point(&volume));
        assert!(!volume.join("data").exists());
    }
}
