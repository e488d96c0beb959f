//! kubelet's volume manager for `persistentVolumeClaim` volumes: each resolves, through the
//! API, to the volume its claim is bound to, whose hostPath or local directory is then mounted
//! like a hostPath volume (read-only when the pod's volume says so). A claim that is missing or
//! not bound yet fails the pod's volume set-up, which the worker reports as FailedMount and
//! retries, so the pod waits Pending until the binder has bound it. A ReadWriteOncePod claim is
//! its oldest non-terminal pod's alone (kube's scheduler enforces it; peapod's kubelet does).

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, PersistentVolume, PersistentVolumeClaim, Pod,
};
use peapod_apiserver::client::LocalClient;

use crate::volume::{HostVolume, VolumeError};

const READ_WRITE_ONCE_POD: &str = "ReadWriteOncePod";

/// Why a claim's volume cannot be mounted, in kubelet's words.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "error processing PVC {namespace}/{claim}: failed to fetch PVC from API server: {message}"
    )]
    Fetch {
        namespace: String,
        claim: String,
        message: String,
    },
    #[error("error processing PVC {namespace}/{claim}: PVC is not bound")]
    NotBound { namespace: String, claim: String },
    #[error("error processing PVC {namespace}/{claim}: failed to fetch PV {volume} from API server: {message}")]
    FetchVolume {
        namespace: String,
        claim: String,
        volume: String,
        message: String,
    },
    #[error("error processing PVC {namespace}/{claim}: the PV's ClaimRef UID doesn't match the PVC's UID")]
    Mismatch { namespace: String, claim: String },
    /// The scheduler's ReadWriteOncePod conflict: an older pod holds the claim.
    #[error("node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode")]
    ReadWriteOncePod,
    #[error(
        "volume {volume} of PVC {namespace}/{claim} has no hostPath or local source peapod mounts"
    )]
    Unsupported {
        namespace: String,
        claim: String,
        volume: String,
    },
}

/// The pod with each claim volume replaced by its bound volume's directory, and the names of
/// those to mount read-only.
pub async fn resolve(
    client: &LocalClient,
    pod: &Pod,
) -> Result<(Pod, HashSet<String>), VolumeError> {
    let mut resolved = pod.clone();
    let mut read_only = HashSet::new();
    let volumes = resolved.spec.as_mut().and_then(|s| s.volumes.as_mut());
    for volume in volumes.into_iter().flatten() {
        let Some(source) = volume.persistent_volume_claim.take() else {
            continue;
        };
        let path = bound_path(client, pod, &source.claim_name)
            .await
            .map_err(|source| VolumeError::Claim {
                volume: volume.name.clone(),
                source,
            })?;
        volume.host_path = Some(HostPathVolumeSource {
            path,
            type_: Some("Directory".to_owned()),
        });
        if source.read_only == Some(true) {
            read_only.insert(volume.name.clone());
        }
    }
    Ok((resolved, read_only))
}

/// Marks the claim volumes the pod mounts read-only.
pub fn apply_read_only(volumes: &mut HashMap<String, HostVolume>, read_only: &HashSet<String>) {
    for (name, volume) in volumes.iter_mut() {
        volume.read_only |= read_only.contains(name);
    }
}

async fn bound_path(client: &LocalClient, pod: &Pod, claim: &str) -> Result<String, ClaimError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let (ns, name) = (namespace.to_owned(), claim.to_owned());
    let path = format!("/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}");
    let fetched = client.get(&path).await.map_err(|err| ClaimError::Fetch {
        namespace: ns.clone(),
        claim: name.clone(),
        message: err.message,
    })?;
    let pvc: PersistentVolumeClaim =
        serde_json::from_value(fetched).map_err(|err| ClaimError::Fetch {
            namespace: ns.clone(),
            claim: name.clone(),
            message: err.to_string(),
        })?;
    let volume_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if volume_name.is_empty() {
        return Err(ClaimError::NotBound {
            namespace: ns,
            claim: name,
        });
    }
    let modes = pvc.spec.as_ref().and_then(|s| s.access_modes.clone());
    if modes
        .unwrap_or_default()
        .iter()
        .any(|m| m == READ_WRITE_ONCE_POD)
    {
        let pods = client
            .list(&format!("/api/v1/namespaces/{namespace}/pods"))
            .await
            .map_err(|err| ClaimError::Fetch {
                namespace: ns.clone(),
                claim: name.clone(),
                message: err.message,
            })?;
        let pods: Vec<Pod> = pods
            .into_iter()
            .filter_map(|p| serde_json::from_value(p).ok())
            .collect();
        if used_by_older_pod(pod, claim, &pods) {
            return Err(ClaimError::ReadWriteOncePod);
        }
    }
    let fetch_volume = |message: String| ClaimError::FetchVolume {
        namespace: ns.clone(),
        claim: name.clone(),
        volume: volume_name.clone(),
        message,
    };
    let fetched = client
        .get(&format!("/api/v1/persistentvolumes/{volume_name}"))
        .await
        .map_err(|err| fetch_volume(err.message))?;
    let pv: PersistentVolume =
        serde_json::from_value(fetched).map_err(|err| fetch_volume(err.to_string()))?;
    path_of(&pvc, &pv)
        .ok_or(ClaimError::Unsupported {
            namespace: ns.clone(),
            claim: name.clone(),
            volume: volume_name.clone(),
        })?
        .map_err(|()| ClaimError::Mismatch {
            namespace: ns,
            claim: name,
        })
}

/// Whether a pod other than `pod`, not terminal and created before it (by name when together),
/// mounts the claim: a ReadWriteOncePod claim is the first pod's alone.
fn used_by_older_pod(pod: &Pod, claim: &str, pods: &[Pod]) -> bool {
    let order = |p: &Pod| {
        (
            p.metadata.creation_timestamp.clone().map(|t| t.0),
            p.metadata.name.clone(),
        )
    };
    pods.iter().any(|other| {
        let phase = other.status.as_ref().and_then(|s| s.phase.as_deref());
        other.metadata.uid != pod.metadata.uid
            && !matches!(phase, Some("Succeeded" | "Failed"))
            && order(other) < order(pod)
            && crate::controllers::persistent_volume::matching::mounts(other, claim)
    })
}

/// The directory of a volume bound to `pvc`: `None` without a mountable source, `Err` when the
/// volume is bound to another claim.
fn path_of(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> Option<Result<String, ()>> {
    let spec = pv.spec.as_ref()?;
    let uid = spec.claim_ref.as_ref().and_then(|r| r.uid.as_deref());
    let path = match (&spec.host_path, &spec.local) {
        (Some(host_path), _) => host_path.path.clone(),
        (None, Some(local)) => local.path.clone(),
        (None, None) => return None,
    };
    if uid != pvc.metadata.uid.as_deref() {
        return Some(Err(()));
    }
    Some(Ok(path))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_read_write_once_pod_claim_belongs_to_the_oldest_pod() {
        let pod = |name: &str, created: &str, phase: &str| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "uid": name, "creationTimestamp": created},
                "spec": {"containers": [], "volumes": [
                    {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]},
                "status": {"phase": phase},
            }))
            .unwrap()
        };
        let first = pod("a", "2024-01-01T00:00:00Z", "Running");
        let second = pod("b", "2024-01-01T00:00:05Z", "Pending");
        let pods = [first.clone(), second.clone()];
        assert!(!used_by_older_pod(&first, "data", &pods));
        assert!(used_by_older_pod(&second, "data", &pods));
        assert!(!used_by_older_pod(&second, "other", &pods));
        let done = pod("a", "2024-01-01T00:00:00Z", "Succeeded");
        assert!(!used_by_older_pod(&second, "data", &[done, second.clone()]));
    }

    #[test]
    fn a_bound_volume_gives_its_directory() {
        let pvc: PersistentVolumeClaim = serde_json::from_value(
            json!({"metadata": {"uid": "u1"}, "spec": {"volumeName": "pv"}}),
        )
        .unwrap();
        let pv = |source: serde_json::Value, uid: &str| -> PersistentVolume {
            let mut spec = source;
            spec["claimRef"] = json!({"uid": uid});
            serde_json::from_value(json!({"spec": spec})).unwrap()
        };
        assert_eq!(
            path_of(&pvc, &pv(json!({"hostPath": {"path": "/data"}}), "u1")),
            Some(Ok("/data".to_owned()))
        );
        assert_eq!(
            path_of(&pvc, &pv(json!({"local": {"path": "/mnt/disk"}}), "u1")),
            Some(Ok("/mnt/disk".to_owned()))
        );
        assert_eq!(
            path_of(&pvc, &pv(json!({"hostPath": {"path": "/d"}}), "u2")),
            Some(Err(()))
        );
        assert_eq!(
            path_of(
                &pvc,
                &pv(json!({"nfs": {"server": "s", "path": "/"}}), "u1")
            ),
            None
        );
    }
}
