//! One container attempt's OCI bundle: environment, command, user and mounts decided by
//! Kubernetes' rules from the pod, the container and its image, written as config.json next to
//! the directories of its overlay root.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use peapod_image::{Image, ImageStore};

use super::cgroupfs::CgroupFs;
use super::etc_files::EtcFiles;
use super::resources::CGROUP_ROOT;
use super::security::{self, SecurityError};
use super::spec::{BindMount, ContainerSpec};
use crate::paths::Paths;
use crate::perms;
use crate::shim::protocol::{CreateRequest, Overlay};
use crate::volume::{self, HostVolume, VolumeError};

/// containerd's default PATH for images that set none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Image(#[from] peapod_image::ImageError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("writing the container bundle at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid runtime spec: {0}")]
    Spec(#[from] serde_json::Error),
    /// runAsNonRoot refused, an unknown capability, a seccomp profile that cannot be loaded:
    /// kubelet's own messages.
    #[error(transparent)]
    Security(#[from] SecurityError),
}

impl BundleError {
    /// The container's waiting reason, as kubelet tells them apart: what it refuses while
    /// generating the container's configuration (runAsNonRoot, env, volumes) is a
    /// CreateContainerConfigError; what fails when the runtime builds it, a
    /// CreateContainerError.
    pub fn waiting_reason(&self) -> &'static str {
        match self {
            BundleError::Io { .. }
            | BundleError::Spec(_)
            | BundleError::Security(
                SecurityError::UnknownCapability { .. } | SecurityError::Seccomp { .. },
            ) => "CreateContainerError",
            _ => "CreateContainerConfigError",
        }
    }
}

pub struct BundleInputs<'a> {
    pub paths: &'a Paths,
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub image: &'a Image,
    pub images: &'a ImageStore,
    pub volumes: &'a HashMap<String, HostVolume>,
    /// The container's own variables, resolved (kubelet's makeEnvironmentVariables).
    pub env: &'a [(String, String)],
    pub container_id: &'a str,
    pub restart_count: i32,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError {
    let path = path.display().to_string();
    move |source| BundleError::Io { path, source }
}

/// The agent-side directory of one container attempt (its termination-message file).
pub fn attempt_dir(paths: &Paths, uid: &str, container: &str, container_id: &str) -> PathBuf {
    paths
        .pod_data_dir(uid)
        .join("containers")
        .join(container)
        .join(container_id)
}

/// The host side of the attempt's terminationMessagePath.
pub fn termination_log(attempt_dir: &Path) -> PathBuf {
    attempt_dir.join("termination-log")
}

/// Writes the bundle and returns the request that asks the shim to create the container.
pub fn prepare(inputs: &BundleInputs) -> Result<CreateRequest, BundleError> {
    let uid = inputs.pod.metadata.uid.as_deref().unwrap_or_default();
    let namespace = inputs
        .pod
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default");
    let pod_name = inputs.pod.metadata.name.as_deref().unwrap_or_default();
    let container = inputs.container;
    let env = inputs.env;
    let lookup = env_lookup(env);
    let expand = |s: &str| peapod_api::expand::expand(s, |k| lookup.get(k).cloned());
    let command: Vec<String> = container
        .command
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|s| expand(s))
        .collect();
    let args: Vec<String> = container
        .args
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|s| expand(s))
        .collect();
    let process = peapod_image::process_args(&inputs.image.config, &command, &args)?;
    let image_user = inputs.image.config.user.clone().unwrap_or_default();
    let context = security::effective(inputs.pod, container);
    security::verify_run_as_non_root(inputs.pod, container, &context, &image_user)?;
    let user = security::user_spec(&context, &image_user);
    let (user_id, group_id, groups) =
        peapod_image::resolve_user(inputs.images, inputs.image, &user)?;
    let settings =
        security::security(inputs.pod, container, &context, &inputs.paths.seccomp_dir())?;

    let run_dir = inputs.paths.pod_run_dir(uid);
    let bundle = run_dir.join("bundles").join(inputs.container_id);
    let attempt = attempt_dir(inputs.paths, uid, &container.name, inputs.container_id);
    let rootfs = bundle.join("rootfs");
    for dir in [&bundle, &attempt, &rootfs] {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let mut lower: Vec<PathBuf> = inputs.images.layer_dirs(inputs.image)?;
    lower.reverse();
    if lower.is_empty() {
        let empty = attempt.join("empty");
        std::fs::create_dir_all(&empty).map_err(io_err(&empty))?;
        lower.push(empty);
    }

    let mut binds = EtcFiles::in_dir(&run_dir).binds();
    binds.push(BindMount {
        source: run_dir.join("shm"),
        destination: "/dev/shm".into(),
        read_only: false,
    });
    let termination_log = termination_log(&attempt);
    std::fs::write(&termination_log, b"").map_err(io_err(&termination_log))?;
    // Any user the container runs as may write its message, as kubelet's 0666 file allows;
    // other host users cannot reach it (the pod's data directory is closed to them).
    std::fs::set_permissions(
        &termination_log,
        std::fs::Permissions::from_mode(perms::TERMINATION_LOG),
    )
    .map_err(io_err(&termination_log))?;
    binds.push(BindMount {
        source: termination_log,
        destination: container
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into()),
        read_only: false,
    });
    binds.extend(volume::container_binds(container, inputs.volumes, &expand)?);
    let pod_cgroup = format!("{}/pod{uid}", inputs.paths.cgroup_parent());
    let cgroups_path = format!("{pod_cgroup}/{}", inputs.container_id);
    let skeleton = bundle.join("cgroup");
    let cgroupfs = CgroupFs::prepare(Path::new(CGROUP_ROOT), &cgroups_path, &skeleton)
        .map_err(io_err(&skeleton))?;

    let spec = ContainerSpec {
        args: process,
        env: env_list(&inputs.image.config.env, env),
        cwd: container
            .working_dir
            .clone()
            .filter(|d| !d.is_empty())
            .or_else(|| inputs.image.config.working_dir.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/".into()),
        uid: user_id,
        gid: group_id,
        additional_gids: security::additional_gids(&groups, inputs.pod),
        security: settings,
        rootfs: rootfs.clone(),
        share_pid: inputs
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.share_process_namespace)
            .unwrap_or(false),
        cgroups_path,
        resources: super::resources::for_container(container, &pod_cgroup),
        binds,
        cgroupfs: Some(cgroupfs),
        terminal: container.tty.unwrap_or(false),
    };
    let config = bundle.join("config.json");
    perms::write_private(&config, &serde_json::to_vec(&spec.to_oci()?)?)
        .map_err(io_err(&config))?;
    Ok(CreateRequest {
        id: inputs.container_id.to_string(),
        name: container.name.clone(),
        bundle,
        rootfs: Overlay {
            lower,
            upper: attempt.join("upper"),
            work: attempt.join("work"),
            target: rootfs,
        },
        log_path: inputs.paths.container_log(
            namespace,
            pod_name,
            uid,
            &container.name,
            inputs.restart_count,
        ),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        oom_score_adj: Some(crate::kubelet::pod_cgroup::container_oom_score_adj(
            inputs.pod, container,
        )),
        labels: Default::default(),
    })
}

fn env_lookup(vars: &[(String, String)]) -> HashMap<String, String> {
    vars.iter().cloned().collect()
}

/// Image variables first, replaced by the container's of the same name; PATH defaulted.
fn env_list(image_env: &[String], container_env: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = image_env
        .iter()
        .filter(|kv| {
            let key = kv.split('=').next().unwrap_or_default();
            !container_env.iter().any(|(k, _)| k == key)
        })
        .cloned()
        .collect();
    out.extend(container_env.iter().map(|(k, v)| format!("{k}={v}")));
    if !out.iter().any(|kv| kv.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_env_overrides_image_env_and_path_is_defaulted() {
        let env = env_list(
            &["A=1".into(), "B=2".into()],
            &[("B".into(), "3".into()), ("C".into(), "4".into())],
        );
        assert_eq!(env, vec![DEFAULT_PATH, "A=1", "B=3", "C=4"]);
        let env = env_list(&["PATH=/bin".into()], &[]);
        assert_eq!(env, vec!["PATH=/bin"]);
    }
}
