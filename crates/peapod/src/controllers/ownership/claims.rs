//! Which objects a controller owns: kube's `BaseControllerRefManager.ClaimObject`. An orphan
//! whose labels match is adopted (unless it or the controller is being deleted), an owned
//! object that no longer matches is released, objects of another controller are left alone;
//! and the strategic-merge patches kube sends to adopt and release, with the object's uid as
//! precondition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use serde_json::{json, Value};

use peapod_api::selector::LabelSelector as Selector;

/// What to do about one object.
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
    #[error("original {kind} {namespace}/{name} is gone: got uid {got}, wanted {wanted}")]
    Gone {
        kind: String,
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
    #[error("can't adopt {kind} {namespace}/{name} ({uid}): {reason}")]
    CantAdopt {
        kind: String,
        namespace: String,
        name: String,
        uid: String,
        reason: Box<ClaimError>,
    },
}

/// `claimObject` for one object, `selector` being its would-be controller's.
pub fn claim<K, O>(owner: &K, selector: &Selector, object: &O) -> Claim
where
    K: Resource<DynamicType = ()>,
    O: Resource,
{
    let owner_meta = owner.meta();
    let meta = object.meta();
    let owner_uid = owner_meta.uid.as_deref().unwrap_or_default();
    let owner_deleting = owner_meta.deletion_timestamp.is_some();
    let matches = selector.matches(labels(meta));
    if let Some(controller) = controller_of(meta) {
        return match (controller.uid == owner_uid, matches) {
            (false, _) => Claim::Ignore,
            (true, true) => Claim::Owned,
            (true, false) if owner_deleting => Claim::Ignore,
            (true, false) => Claim::Release(release_patch(owner_uid, uid(meta))),
        };
    }
    let owner_namespace = owner_meta.namespace.as_deref().unwrap_or_default();
    let same_namespace =
        owner_namespace.is_empty() || Some(owner_namespace) == meta.namespace.as_deref();
    if owner_deleting || !matches || meta.deletion_timestamp.is_some() || !same_namespace {
        return Claim::Ignore;
    }
    Claim::Adopt(adopt_patch(owner, uid(meta)))
}

/// `metav1.GetControllerOf`: the ownerReference with `controller: true`.
pub fn controller_of(metadata: &ObjectMeta) -> Option<&OwnerReference> {
    let owners = metadata.owner_references.as_deref().unwrap_or_default();
    owners.iter().find(|o| o.controller == Some(true))
}

/// Whether `metadata`'s controller is a `K` (by apiVersion and kind).
pub fn controlled_by_kind<K: Resource<DynamicType = ()>>(metadata: &ObjectMeta) -> bool {
    controller_of(metadata)
        .is_some_and(|o| o.kind == K::kind(&()) && o.api_version == K::api_version(&()))
}

/// `metav1.NewControllerRef`: a controller reference that blocks the owner's deletion.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let meta = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `ownerRefControllerPatch`: adds the controller reference, failing if the object was
/// replaced (uid) or already has a controller (ownerReference validation).
pub fn adopt_patch<K: Resource<DynamicType = ()>>(owner: &K, object_uid: &str) -> Value {
    let reference = controller_ref(owner);
    json!({"metadata": {
        "ownerReferences": [{
            "apiVersion": reference.api_version,
            "kind": reference.kind,
            "name": reference.name,
            "uid": reference.uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }],
        "uid": object_uid,
    }})
}

/// `GenerateDeleteOwnerRefStrategicMergeBytes`: drops the reference to `owner_uid`.
pub fn release_patch(owner_uid: &str, object_uid: &str) -> Value {
    json!({"metadata": {
        "uid": object_uid,
        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
    }})
}

/// Adopting an object that is gone (404) is no error: it is simply not claimed.
pub fn adoption_failure_ignored(status_code: u16) -> bool {
    status_code == 404
}

/// Releasing an object that is gone (404), or was replaced or has no references left (422),
/// is no error.
pub fn release_failure_ignored(status_code: u16) -> bool {
    matches!(status_code, 404 | 422)
}

/// kube's `RecheckDeletionTimestamp` with the controllers' uid check: whether a fresh read of
/// the owner (made once, before the first adoption) still allows adopting.
pub fn can_adopt<K: Resource<DynamicType = ()>>(original: &K, fresh: &K) -> Result<(), ClaimError> {
    let (original, fresh) = (original.meta(), fresh.meta());
    let namespace = fresh.namespace.clone().unwrap_or_default();
    let name = fresh.name.clone().unwrap_or_default();
    if fresh.uid != original.uid {
        let gone = ClaimError::Gone {
            kind: K::kind(&()).into_owned(),
            namespace,
            name,
            got: fresh.uid.clone().unwrap_or_default(),
            wanted: original.uid.clone().unwrap_or_default(),
        };
        return Err(ClaimError::Recheck(gone.to_string()));
    }
    match &fresh.deletion_timestamp {
        Some(at) => Err(ClaimError::JustDeleted {
            namespace,
            name,
            at: go_time(at),
        }),
        None => Ok(()),
    }
}

/// The adoption's error when [`can_adopt`] refused.
pub fn cannot_adopt<O: Resource<DynamicType = ()>>(object: &O, reason: ClaimError) -> ClaimError {
    let meta = object.meta();
    ClaimError::CantAdopt {
        kind: O::kind(&()).into_owned(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: uid(meta).to_owned(),
        reason: Box::new(reason),
    }
}

fn labels(meta: &ObjectMeta) -> &std::collections::BTreeMap<String, String> {
    static EMPTY: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    meta.labels.as_ref().unwrap_or(&EMPTY)
}

fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or_default()
}

/// Go's `time.Time.String()` for a UTC time: `2006-01-02 15:04:05 +0000 UTC`.
fn go_time(time: &Time) -> String {
    time.0
        .strftime("%Y-%m-%d %H:%M:%S%.f +0000 UTC")
        .to_string()
}

#[cfg(test)]
mod tests;
