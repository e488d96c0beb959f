//! Which pods a ReplicaSet owns: kube's `PodControllerRefManager.ClaimPods`. An orphan whose
//! labels match is adopted (unless it or the ReplicaSet is being deleted), an owned pod that
//! no longer matches is released, pods of another controller are left alone; and the
//! strategic-merge patches kube sends to adopt and release, with the pod's uid as precondition.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use serde_json::{json, Value};

use super::pods;
use peapod_api::selector::LabelSelector as Selector;

pub const API_VERSION: &str = "apps/v1";
pub const KIND: &str = "ReplicaSet";

/// What to do about one pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Ours already and matching: claimed without any request (even while we are deleted).
    Owned,
    /// An orphan to adopt with this patch; claimed once it succeeds.
    Adopt(Value),
    /// Ours but no longer matching: release with this patch; not claimed.
    Release(Value),
    /// Someone else's, not matching, or a deletion in the way: not claimed.
    Ignore,
}

/// Why an adoption cannot go ahead, in kube's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("original {KIND} {namespace}/{name} is gone: got uid {got}, wanted {wanted}")]
    Gone {
        namespace: String,
        name: String,
        got: String,
        wanted: String,
    },
    #[error("{namespace}/{name} has just been deleted at {at}")]
    JustDeleted {
        namespace: String,
        name: String,
        at: String,
    },
    #[error("can't recheck DeletionTimestamp: {0}")]
    Recheck(String),
    #[error("can't adopt Pod {namespace}/{name} ({uid}): {reason}")]
    CantAdopt {
        namespace: String,
        name: String,
        uid: String,
        reason: Box<ClaimError>,
    },
}

/// `claimObject` for one pod, `selector` being the ReplicaSet's.
pub fn claim(rs: &ReplicaSet, selector: &Selector, pod: &Pod) -> Claim {
    let rs_uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let rs_deleting = rs.metadata.deletion_timestamp.is_some();
    let matches = selector.matches(pods::labels(pod));
    if let Some(owner) = pods::controller_of(&pod.metadata) {
        return match (owner.uid == rs_uid, matches) {
            (false, _) => Claim::Ignore,
            (true, true) => Claim::Owned,
            (true, false) if rs_deleting => Claim::Ignore,
            (true, false) => Claim::Release(release_patch(rs_uid, pods::uid(pod))),
        };
    }
    let rs_namespace = rs.metadata.namespace.as_deref().unwrap_or_default();
    let same_namespace =
        rs_namespace.is_empty() || Some(rs_namespace) == pod.metadata.namespace.as_deref();
    if rs_deleting || !matches || pod.metadata.deletion_timestamp.is_some() || !same_namespace {
        return Claim::Ignore;
    }
    Claim::Adopt(adopt_patch(rs, pods::uid(pod)))
}

/// `metav1.NewControllerRef` for a ReplicaSet.
pub fn controller_ref(rs: &ReplicaSet) -> OwnerReference {
    OwnerReference {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        name: rs.metadata.name.clone().unwrap_or_default(),
        uid: rs.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `ownerRefControllerPatch`: adds the controller reference, failing if the pod was
/// replaced (uid) or already has a controller (ownerReference validation).
pub fn adopt_patch(rs: &ReplicaSet, pod_uid: &str) -> Value {
    let reference = controller_ref(rs);
    json!({"metadata": {
        "ownerReferences": [{
            "apiVersion": reference.api_version,
            "kind": reference.kind,
            "name": reference.name,
            "uid": reference.uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }],
        "uid": pod_uid,
    }})
}

/// `GenerateDeleteOwnerRefStrategicMergeBytes`: drops the reference to `owner_uid`.
pub fn release_patch(owner_uid: &str, pod_uid: &str) -> Value {
    json!({"metadata": {
        "uid": pod_uid,
        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
    }})
}

/// Adopting a pod that is gone (404) is no error: it is simply not claimed.
pub fn adoption_failure_ignored(status_code: u16) -> bool {
    status_code == 404
}

/// Releasing a pod that is gone (404), or was replaced or has no references left (422), is
/// no error.
pub fn release_failure_ignored(status_code: u16) -> bool {
    matches!(status_code, 404 | 422)
}

/// kube's `RecheckDeletionTimestamp` with the ReplicaSet controller's uid check: whether a
/// fresh read of the ReplicaSet (made once, before the first adoption) still allows adopting.
pub fn can_adopt(original: &ReplicaSet, fresh: &ReplicaSet) -> Result<(), ClaimError> {
    let namespace = fresh.metadata.namespace.clone().unwrap_or_default();
    let name = fresh.metadata.name.clone().unwrap_or_default();
    if fresh.metadata.uid != original.metadata.uid {
        let got = fresh.metadata.uid.clone().unwrap_or_default();
        let wanted = original.metadata.uid.clone().unwrap_or_default();
        let gone = ClaimError::Gone {
            namespace,
            name,
            got,
            wanted,
        };
        return Err(ClaimError::Recheck(gone.to_string()));
    }
    match &fresh.metadata.deletion_timestamp {
        Some(at) => Err(ClaimError::JustDeleted {
            namespace,
            name,
            at: go_time(at),
        }),
        None => Ok(()),
    }
}

/// `AdoptPod`'s error when [`can_adopt`] refused.
pub fn cannot_adopt(pod: &Pod, reason: ClaimError) -> ClaimError {
    ClaimError::CantAdopt {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pods::uid(pod).to_owned(),
        reason: Box::new(reason),
    }
}

/// Go's `time.Time.String()` for a UTC time: `2006-01-02 15:04:05 +0000 UTC`.
fn go_time(time: &Time) -> String {
    time.0
        .strftime("%Y-%m-%d %H:%M:%S%.f +0000 UTC")
        .to_string()
}

#[cfg(test)]
mod tests;
