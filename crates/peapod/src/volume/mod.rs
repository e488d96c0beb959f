//! Pod volumes: where each one lives on the host (emptyDir under the pod's data directory,
//! a tmpfs there for medium Memory, hostPath with kubelet's type checks) and how a container's
//! volumeMounts become bind mounts, including subPath / subPathExpr resolved so they can never
//! leave their volume. The API-data volumes (configMap, secret, downwardAPI, projected) are
//! written by the [`atomic_writer`] from their [`projection`] and refreshed on every sync of
//! their pod, as kubelet remounts them.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, EmptyDirVolumeSource, Pod, Volume};

use crate::perms;
use crate::runtime::spec::BindMount;

pub mod atomic_writer;
pub mod memory;
pub mod ownership;
pub mod projection;

use atomic_writer::{AtomicWriteError, AtomicWriter, Payload};
use ownership::FsGroup;
use peapod_api::validation::go_quote;
pub use projection::Sources;
use projection::{ApiData, PayloadError};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("hostPath type check failed: {path} is not {expected}")]
    HostPathType {
        path: String,
        expected: &'static str,
    },
    #[error("volume {volume:?}: {path}: {source}")]
    Io {
        volume: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting the memory of volume {volume:?} at {path}: {source}")]
    Tmpfs {
        volume: String,
        path: String,
        #[source]
        source: nix::Error,
    },
    #[error(transparent)]
    PodDir(#[from] perms::PermsError),
    #[error("volume {0:?} has no source peapod supports")]
    Unsupported(String),
    #[error("volumeMount {mount:?} names no volume of the pod")]
    NoSuchVolume { mount: String },
    #[error("subPath {sub_path:?} of volume {volume:?} resolves outside the volume")]
    SubPathEscape { volume: String, sub_path: String },
    #[error("subPath {sub_path:?} of volume {volume:?} is not a relative path inside the volume")]
    SubPathInvalid { volume: String, sub_path: String },
    /// kubelet's FailedMount message for a claim whose volume cannot be found.
    #[error("Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes=[], failed to process volumes=[{volume}]: {source}")]
    Claim {
        volume: String,
        #[source]
        source: crate::kubelet::volume_claims::ClaimError,
    },
    /// kubelet's FailedMount message.
    #[error("MountVolume.SetUp failed for volume {} : {source}", go_quote(volume))]
    SetUp {
        volume: String,
        #[source]
        source: SetUpError,
    },
}

/// Why an API-data volume could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SetUpError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error(transparent)]
    Write(#[from] AtomicWriteError),
}

/// A volume ready on the host (a memory-backed emptyDir with its tmpfs mounted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVolume {
    pub path: PathBuf,
    /// Mounted read-only into every container, whatever the mount asks (API data).
    pub read_only: bool,
}

/// kubelet's layout: `<pod dir>/volumes/kubernetes.io~empty-dir/<name>`.
pub fn empty_dir_path(pod_data_dir: &Path, name: &str) -> PathBuf {
    pod_data_dir
        .join("volumes/kubernetes.io~empty-dir")
        .join(name)
}

/// Creates or checks every volume of the pod, in its data directory closed to other users, and
/// mounts the tmpfs of memory-backed emptyDirs that lack theirs.
pub fn prepare(
    pod: &Pod,
    pod_data_dir: &Path,
    sources: &Sources,
) -> Result<HashMap<String, HostVolume>, VolumeError> {
    perms::ensure_dir(pod_data_dir, perms::POD_DATA)?;
    let volumes = pod_volumes(pod);
    let fs_group = FsGroup::of(pod);
    let memory = memory::pod_memory(pod, sources.allocatable);
    volumes
        .iter()
        .map(|v| {
            let prepared = match ApiData::of(v) {
                Some(kind) => set_up_api_data(v, kind, pod, pod_data_dir, sources, memory)?,
                None => prepare_one(v, pod_data_dir, fs_group.as_ref(), memory)?,
            };
            Ok((v.name.clone(), prepared))
        })
        .collect()
}

/// Volumes kubelet manages ownership of (emptyDir here; never hostPath) get the pod's fsGroup.
fn prepare_one(
    volume: &Volume,
    pod_data_dir: &Path,
    fs_group: Option<&FsGroup>,
    pod_memory: Option<u64>,
) -> Result<HostVolume, VolumeError> {
    if let Some(empty_dir) = &volume.empty_dir {
        let path = empty_dir_path(pod_data_dir, &volume.name);
        create_dir(&volume.name, &path, perms::EMPTY_DIR)?;
        if empty_dir.medium.as_deref() == Some("Memory") {
            let gid = fs_group.map(|g| g.gid);
            let size = memory::tmpfs_size(pod_memory, size_limit(empty_dir));
            memory::mount_once(&path, size, gid).map_err(|source| VolumeError::Tmpfs {
                volume: volume.name.clone(),
                path: path.display().to_string(),
                source,
            })?;
        }
        if let Some(fs_group) = fs_group {
            ownership::set_volume_ownership(&path, fs_group, false);
        }
        return Ok(HostVolume {
            path,
            read_only: false,
        });
    }
    if let Some(host_path) = &volume.host_path {
        let path = PathBuf::from(&host_path.path);
        check_host_path(
            &volume.name,
            &path,
            host_path.type_.as_deref().unwrap_or(""),
        )?;
        return Ok(HostVolume {
            path,
            read_only: false,
        });
    }
    Err(VolumeError::Unsupported(volume.name.clone()))
}

/// kubelet's layout: `<pod dir>/volumes/kubernetes.io~configmap/<name>` and the like.
pub fn api_data_path(pod_data_dir: &Path, kind: ApiData, name: &str) -> PathBuf {
    pod_data_dir
        .join("volumes")
        .join(kind.plugin_dir())
        .join(name)
}

/// An API-data volume's SetUp: its payload first (a missing source leaves nothing on the
/// host), then its directory — a tmpfs but for configMap — then the files. A volume written
/// before (the sandbox is re-created, the agent restarted) keeps its files when its source
/// fails now, as kubelet keeps a mounted volume; the next sync reports the failure.
fn set_up_api_data(
    volume: &Volume,
    kind: ApiData,
    pod: &Pod,
    pod_data_dir: &Path,
    sources: &Sources,
    pod_memory: Option<u64>,
) -> Result<HostVolume, VolumeError> {
    let path = api_data_path(pod_data_dir, kind, &volume.name);
    let host_volume = HostVolume {
        path: path.clone(),
        read_only: true,
    };
    let payload = match projection::payload(volume, pod, sources) {
        Some(Ok(payload)) => payload,
        Some(Err(err)) if is_written(&path) => {
            tracing::warn!(volume = %volume.name, %err, "keeping the files of an API-data volume");
            return Ok(host_volume);
        }
        Some(Err(err)) => return Err(set_up_failed(&volume.name, err.into())),
        None => return Err(VolumeError::Unsupported(volume.name.clone())),
    };
    // Only when missing: the root of a volume set up before keeps what fsGroup gave it.
    if !path.is_dir() {
        create_dir(&volume.name, &path, perms::EMPTY_DIR)?;
    }
    if kind.in_memory() {
        let size = memory::tmpfs_size(pod_memory, None);
        memory::mount_once(&path, size, None).map_err(|source| VolumeError::Tmpfs {
            volume: volume.name.clone(),
            path: path.display().to_string(),
            source,
        })?;
    }
    write_api_data(&volume.name, &path, &payload, FsGroup::of(pod).as_ref())?;
    Ok(host_volume)
}

fn is_written(path: &Path) -> bool {
    std::fs::symlink_metadata(path.join("..data")).is_ok()
}

fn set_up_failed(volume: &str, source: SetUpError) -> VolumeError {
    VolumeError::SetUp {
        volume: volume.to_string(),
        source,
    }
}

/// AtomicWriter.Write with kubelet's setPerms: with an fsGroup the whole volume gets the
/// group, read-only (these volumes are), before the new files become visible.
fn write_api_data(
    volume: &str,
    path: &Path,
    payload: &Payload,
    fs_group: Option<&FsGroup>,
) -> Result<bool, VolumeError> {
    let set_perms = |_: &Path| {
        if let Some(fs_group) = fs_group {
            let always = FsGroup {
                on_root_mismatch: false,
                ..fs_group.clone()
            };
            ownership::set_volume_ownership(path, &always, true);
        }
    };
    AtomicWriter::new(path)
        .write(payload, set_perms)
        .map_err(|err| set_up_failed(volume, err.into()))
}

fn pod_volumes(pod: &Pod) -> &[Volume] {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
}

/// kubelet's remount of the API-data volumes on a pod sync: each volume already set up gets
/// its payload again, written only where it changed. Returns the failures (FailedMount).
pub fn refresh(pod: &Pod, pod_data_dir: &Path, sources: &Sources) -> Vec<VolumeError> {
    let volumes = pod_volumes(pod);
    let fs_group = FsGroup::of(pod);
    let mut failures = Vec::new();
    for volume in volumes {
        let Some(kind) = ApiData::of(volume) else {
            continue;
        };
        let path = api_data_path(pod_data_dir, kind, &volume.name);
        if !path.is_dir() {
            continue;
        }
        let written = match projection::payload(volume, pod, sources) {
            Some(Ok(payload)) => write_api_data(&volume.name, &path, &payload, fs_group.as_ref()),
            Some(Err(err)) => Err(set_up_failed(&volume.name, err.into())),
            None => continue,
        };
        match written {
            Ok(true) => tracing::debug!(volume = %volume.name, "API-data volume updated"),
            Ok(false) => {}
            Err(err) => failures.push(err),
        }
    }
    failures
}

/// The emptyDir's sizeLimit in bytes (None: unlimited).
fn size_limit(empty_dir: &EmptyDirVolumeSource) -> Option<u64> {
    empty_dir
        .size_limit
        .as_ref()
        .and_then(|q| q.0.parse::<peapod_api::quantity::Quantity>().ok())
        .and_then(|q| q.value())
        .and_then(|bytes| u64::try_from(bytes).ok())
}

/// Unmounts what `prepare` mounted for the pod, so that its data directory can be removed.
/// Safe after a crash: what is still mounted is found in the mount table.
pub fn teardown(pod_data_dir: &Path) {
    memory::unmount_under(pod_data_dir);
}

fn create_dir(volume: &str, path: &Path, mode: u32) -> Result<(), VolumeError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(io(volume, path))
}

fn io(volume: &str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let (volume, path) = (volume.to_string(), path.display().to_string());
    move |source| VolumeError::Io {
        volume,
        path,
        source,
    }
}

/// kubelet's hostPath type checker; "" creates a missing directory as containerd does.
fn check_host_path(volume: &str, path: &Path, type_: &str) -> Result<(), VolumeError> {
    let meta = std::fs::metadata(path);
    let wrong = |expected| VolumeError::HostPathType {
        path: path.display().to_string(),
        expected,
    };
    match type_ {
        "" => {
            if meta.is_err() {
                create_dir(volume, path, perms::HOST_PATH_DIR)?;
            }
            Ok(())
        }
        "DirectoryOrCreate" => match meta {
            Err(_) => create_dir(volume, path, perms::HOST_PATH_DIR),
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(wrong("a directory")),
        },
        "Directory" => meta
            .ok()
            .filter(|m| m.is_dir())
            .map(|_| ())
            .ok_or_else(|| wrong("a directory")),
        "FileOrCreate" => match meta {
            Err(_) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(perms::HOST_PATH_FILE)
                .open(path)
                .map(|_| ())
                .map_err(io(volume, path)),
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(wrong("a file")),
        },
        "File" => meta
            .ok()
            .filter(|m| m.is_file())
            .map(|_| ())
            .ok_or_else(|| wrong("a file")),
        "Socket" => meta
            .ok()
            .filter(|m| m.file_type().is_socket())
            .map(|_| ())
            .ok_or_else(|| wrong("a socket file")),
        "CharDevice" => meta
            .ok()
            .filter(|m| m.file_type().is_char_device())
            .map(|_| ())
            .ok_or_else(|| wrong("a character device")),
        "BlockDevice" => meta
            .ok()
            .filter(|m| m.file_type().is_block_device())
            .map(|_| ())
            .ok_or_else(|| wrong("a block device")),
        _ => Err(VolumeError::Unsupported(volume.to_string())),
    }
}

/// The container's volumeMounts as bind mounts. `expand` resolves subPathExpr with the
/// container's environment.
pub fn container_binds(
    container: &Container,
    volumes: &HashMap<String, HostVolume>,
    expand: &dyn Fn(&str) -> String,
) -> Result<Vec<BindMount>, VolumeError> {
    let mounts = container.volume_mounts.as_deref().unwrap_or_default();
    mounts
        .iter()
        .map(|mount| {
            let volume = volumes
                .get(&mount.name)
                .ok_or_else(|| VolumeError::NoSuchVolume {
                    mount: mount.name.clone(),
                })?;
            let sub_path = match (&mount.sub_path, &mount.sub_path_expr) {
                (Some(p), _) if !p.is_empty() => Some(p.clone()),
                (_, Some(expr)) if !expr.is_empty() => Some(expand(expr)),
                _ => None,
            };
            let source = match sub_path {
                Some(sub) => resolve_sub_path(&mount.name, &volume.path, &sub)?,
                None => volume.path.clone(),
            };
            Ok(BindMount {
                source,
                destination: mount.mount_path.clone(),
                read_only: mount.read_only.unwrap_or(false) || volume.read_only,
            })
        })
        .collect()
}

/// Walks `sub_path` below `root` one component at a time, creating missing directories and
/// refusing any component that resolves (through a symlink) outside the volume.
pub fn resolve_sub_path(volume: &str, root: &Path, sub_path: &str) -> Result<PathBuf, VolumeError> {
    let invalid = || VolumeError::SubPathInvalid {
        volume: volume.to_string(),
        sub_path: sub_path.to_string(),
    };
    let relative = Path::new(sub_path);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(invalid());
    }
    let root = root.canonicalize().map_err(io(volume, root))?;
    let mut current = root.clone();
    for component in relative.components() {
        let Component::Normal(part) = component else {
            continue;
        };
        let next = current.join(part);
        if std::fs::symlink_metadata(&next).is_err() {
            create_dir(volume, &next, perms::HOST_PATH_DIR)?;
        }
        let resolved = next.canonicalize().map_err(io(volume, &next))?;
        if !resolved.starts_with(&root) {
            return Err(VolumeError::SubPathEscape {
                volume: volume.to_string(),
                sub_path: sub_path.to_string(),
            });
        }
        current = resolved;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_path_through_a_symlink_out_of_the_volume_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("vol");
        std::fs::create_dir(&volume).unwrap();
        std::os::unix::fs::symlink("/etc", volume.join("escape")).unwrap();
        let err = resolve_sub_path("v", &volume, "escape").unwrap_err();
        assert!(matches!(err, VolumeError::SubPathEscape { .. }), "{err}");
        let err = resolve_sub_path("v", &volume, "escape/ssl").unwrap_err();
        assert!(matches!(err, VolumeError::SubPathEscape { .. }), "{err}");
        std::os::unix::fs::symlink("../..", volume.join("up")).unwrap();
        assert!(resolve_sub_path("v", &volume, "up").is_err());
    }

    #[test]
    fn sub_path_inside_is_created_and_dotdot_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let resolved = resolve_sub_path("v", dir.path(), "a/b").unwrap();
        assert!(resolved.is_dir());
        assert!(resolved.starts_with(dir.path().canonicalize().unwrap()));
        std::os::unix::fs::symlink("a", dir.path().join("inner")).unwrap();
        assert!(resolve_sub_path("v", dir.path(), "inner/b").is_ok());
        assert!(matches!(
            resolve_sub_path("v", dir.path(), "../x"),
            Err(VolumeError::SubPathInvalid { .. })
        ));
        assert!(matches!(
            resolve_sub_path("v", dir.path(), "/etc"),
            Err(VolumeError::SubPathInvalid { .. })
        ));
    }

    #[test]
    fn host_path_types_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(check_host_path("v", &file, "File").is_ok());
        let err = check_host_path("v", &file, "Directory").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "hostPath type check failed: {} is not a directory",
                file.display()
            )
        );
        assert!(check_host_path("v", dir.path(), "File").is_err());
        assert!(check_host_path("v", &file, "Socket").is_err());
        assert!(check_host_path("v", Path::new("/dev/null"), "CharDevice").is_ok());
        let created = dir.path().join("new/dir");
        check_host_path("v", &created, "DirectoryOrCreate").unwrap();
        assert!(created.is_dir());
        let new_file = dir.path().join("nf");
        check_host_path("v", &new_file, "FileOrCreate").unwrap();
        assert!(new_file.is_file());
        assert!(check_host_path("v", &dir.path().join("missing"), "Directory").is_err());
    }
}
