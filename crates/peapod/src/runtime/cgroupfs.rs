//! The container's `/sys/fs/cgroup`, as containerd mounts it: the container's own cgroup,
//! read-only (read-write when privileged), so that runtimes that size themselves from their
//! limits (the JVM, Go's automaxprocs, .NET) find them.
//!
//! On cgroup v2 it is a `cgroup2` mount, in a cgroup namespace of the container's own unless
//! privileged. On v1, libcontainer's `cgroup` mount ignores the mount's options (everything
//! would be writable), so the bundle does what runc does itself: it binds the container's
//! directory of each hierarchy onto the mount points of a read-only skeleton directory, which
//! also holds the host's co-mount symlinks (`cpu -> cpu,cpuacct`).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::resources::{hierarchies, Hierarchy};

/// The v1 controllers libcontainer puts a container into, and so makes its directory in.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
];

const DESTINATION: &str = "/sys/fs/cgroup";

/// One v1 hierarchy as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The hierarchy's directory name under /sys/fs/cgroup (`memory`, `cpu,cpuacct`).
    pub name: String,
    /// The container's cgroup in it, on the host.
    pub source: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupFs {
    /// The unified hierarchy.
    Unified,
    /// v1 (or hybrid): the skeleton directory on the host and the hierarchies bound on it.
    Legacy {
        skeleton: PathBuf,
        bound: Vec<Bound>,
    },
}

impl CgroupFs {
    /// The view of cgroup `cgroups_path` of the host whose hierarchies are mounted under
    /// `root`; on v1 it also writes the skeleton directory at `skeleton`.
    pub fn prepare(root: &Path, cgroups_path: &str, skeleton: &Path) -> std::io::Result<CgroupFs> {
        // youki's rule: v2 only when the root itself is the unified hierarchy.
        if root.join("cgroup.controllers").exists() {
            return Ok(CgroupFs::Unified);
        }
        let relative = cgroups_path.trim_start_matches('/');
        let bound: Vec<Bound> = hierarchies(root)
            .iter()
            .filter(|h| holds_containers(h))
            .filter_map(|h| {
                Some(Bound {
                    name: h.path.file_name()?.to_str()?.to_string(),
                    source: h.path.join(relative),
                })
            })
            .collect();
        write_skeleton(root, skeleton, &bound)?;
        Ok(CgroupFs::Legacy {
            skeleton: skeleton.to_path_buf(),
            bound,
        })
    }

    /// The OCI mounts, in order.
    pub fn mounts(&self, privileged: bool) -> Vec<Value> {
        let access = if privileged { "rw" } else { "ro" };
        match self {
            CgroupFs::Unified => vec![json!({
                "destination": DESTINATION, "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", access],
            })],
            CgroupFs::Legacy { skeleton, bound } => {
                // The skeleton only holds mount points and symlinks: read-only even when
                // privileged, so no container writes into the bundle directory.
                let mut mounts = vec![bind(skeleton, DESTINATION, "ro")];
                mounts.extend(
                    bound
                        .iter()
                        .map(|b| bind(&b.source, &format!("{DESTINATION}/{}", b.name), access)),
                );
                mounts
            }
        }
    }

    /// The cgroup namespace the container gets, as containerd gives one on cgroup v2 to all
    /// but privileged containers.
    pub fn namespace(&self, privileged: bool) -> Option<Value> {
        (*self == CgroupFs::Unified && !privileged).then(|| json!({"type": "cgroup"}))
    }
}

fn holds_containers(hierarchy: &Hierarchy) -> bool {
    !hierarchy.v2
        && hierarchy
            .controllers
            .iter()
            .any(|c| V1_CONTROLLERS.contains(&c.as_str()))
}

fn bind(source: &Path, destination: &str, access: &str) -> Value {
    json!({
        "destination": destination, "type": "bind", "source": source,
        "options": ["bind", "rprivate", "nosuid", "noexec", "nodev", access],
    })
}

/// A directory per bound hierarchy, and the host's symlinks that name one of them.
fn write_skeleton(root: &Path, skeleton: &Path, bound: &[Bound]) -> std::io::Result<()> {
    std::fs::create_dir_all(skeleton)?;
    for b in bound {
        std::fs::create_dir_all(skeleton.join(&b.name))?;
    }
    for entry in std::fs::read_dir(root)?.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !bound.iter().any(|b| target == Path::new(&b.name)) {
            continue;
        }
        match std::os::unix::fs::symlink(&target, skeleton.join(entry.file_name())) {
            Err(err) if err.kind() != ErrorKind::AlreadyExists => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v1 host: `cpu,cpuacct` co-mounted (with its two symlinks), memory, the named
    /// systemd hierarchy and the hybrid setup's empty v2 mount.
    fn v1_host() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for dir in ["cpu,cpuacct", "memory", "systemd", "unified"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        std::fs::write(root.path().join("unified/cgroup.controllers"), "").unwrap();
        for link in ["cpu", "cpuacct"] {
            std::os::unix::fs::symlink("cpu,cpuacct", root.path().join(link)).unwrap();
        }
        root
    }

    #[test]
    fn v1_binds_the_containers_own_directories_read_only_on_a_skeleton() {
        let host = v1_host();
        let bundle = tempfile::tempdir().unwrap();
        let skeleton = bundle.path().join("cgroup");
        let view = CgroupFs::prepare(host.path(), "/peapod/pod1/c1", &skeleton).unwrap();
        let CgroupFs::Legacy { bound, .. } = &view else {
            panic!("{view:?}");
        };
        let names: Vec<&str> = bound.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["cpu,cpuacct", "memory"]);
        assert_eq!(bound[1].source, host.path().join("memory/peapod/pod1/c1"));
        assert!(skeleton.join("memory").is_dir());
        assert_eq!(
            std::fs::read_link(skeleton.join("cpu")).unwrap(),
            Path::new("cpu,cpuacct")
        );
        let mounts = view.mounts(false);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0]["destination"], "/sys/fs/cgroup");
        assert_eq!(mounts[0]["source"], json!(skeleton));
        assert_eq!(mounts[2]["destination"], "/sys/fs/cgroup/memory");
        assert!(mounts.iter().all(|m| m["options"][5] == "ro"));
        assert_eq!(view.namespace(false), None);
    }

    #[test]
    fn privileged_gets_the_hierarchies_read_write_as_containerd_does() {
        let host = v1_host();
        let bundle = tempfile::tempdir().unwrap();
        let view = CgroupFs::prepare(host.path(), "/p/c", &bundle.path().join("cg")).unwrap();
        let mounts = view.mounts(true);
        assert_eq!(
            mounts[0]["options"][5], "ro",
            "the skeleton stays read-only"
        );
        assert!(mounts[1..].iter().all(|m| m["options"][5] == "rw"));
    }

    #[test]
    fn v2_is_a_cgroup_mount_in_a_namespace_unless_privileged() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("cgroup.controllers"), "cpu memory").unwrap();
        let skeleton = host.path().join("unused");
        let view = CgroupFs::prepare(host.path(), "/p/c", &skeleton).unwrap();
        assert_eq!(view, CgroupFs::Unified);
        assert!(!skeleton.exists());
        let mounts = view.mounts(false);
        assert_eq!(mounts[0]["type"], "cgroup");
        assert_eq!(mounts[0]["options"][4], "ro");
        assert_eq!(view.namespace(false), Some(json!({"type": "cgroup"})));
        assert_eq!(view.namespace(true), None);
        assert_eq!(view.mounts(true)[0]["options"][4], "rw");
    }
}
