//! kube-apiserver's PersistentVolumeClaimResize admission: growing a claim's storage request
//! is refused unless the claim is bound and its class, unchanged, allows volume expansion.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use peapod_apiserver::admission::{Admission, NewObject, Update};
use peapod_apiserver::status::ApiError;
use peapod_store::Store;

use super::claim_class;
use crate::core::v1::volume_claims::storage_of;

pub const NOT_BOUND: &str = "Only bound persistent volume claims can be expanded";
pub const NOT_EXPANDABLE: &str = "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize";

pub struct ResizeAdmission;

impl Admission for ResizeAdmission {
    fn admit_create(&self, _new: NewObject<'_>, _store: &Store) -> Result<(), ApiError> {
        Ok(())
    }

    fn validate_update(&self, update: Update<'_>, store: &Store) -> Result<(), ApiError> {
        let claims = update.kind.group.is_empty() && update.resource == "persistentvolumeclaims";
        if !claims || update.subresource.is_some() {
            return Ok(());
        }
        let (Ok(new), Ok(old)) = (
            serde_json::from_value::<PersistentVolumeClaim>(update.object.clone()),
            serde_json::from_value::<PersistentVolumeClaim>(update.old.clone()),
        ) else {
            return Ok(());
        };
        let class = |name: &str| store.get::<StorageClass>("", name).ok().flatten();
        match refusal(&new, &old, class) {
            Some(why) => Err(update.forbidden(why)),
            None => Ok(()),
        }
    }
}

/// Why kube's plugin refuses the change from `old` to `new`, if it does; `class` finds a
/// StorageClass by name.
pub fn refusal(
    new: &PersistentVolumeClaim,
    old: &PersistentVolumeClaim,
    class: impl Fn(&str) -> Option<StorageClass>,
) -> Option<&'static str> {
    let requested = |pvc: &PersistentVolumeClaim| {
        storage_of(pvc.spec.as_ref()?.resources.as_ref()?.requests.as_ref())
    };
    let (new_size, old_size) = (requested(new), requested(old));
    if new_size <= old_size {
        return None;
    }
    if old.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
        return Some(NOT_BOUND);
    }
    let name = claim_class(new).unwrap_or_default();
    let expandable = !name.is_empty()
        && claim_class(old).as_deref() == Some(name.as_str())
        && class(&name).and_then(|c| c.allow_volume_expansion) == Some(true);
    (!expandable).then_some(NOT_EXPANDABLE)
}

/// kube's `TestPVCResizeAdmission`.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claim(size: &str, class: Option<&str>, phase: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "foo", "namespace": "default"},
            "spec": {"volumeName": "volume1", "storageClassName": class,
                "resources": {"requests": {"storage": size}}},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    fn classes(name: &str) -> Option<StorageClass> {
        let allow = match name {
            "gold" => true,
            "silver" => false,
            _ => return None,
        };
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "provisioner": "kubernetes.io/glusterfs",
            "allowVolumeExpansion": allow,
        }))
        .ok()
    }

    #[test]
    fn growth_needs_a_bound_claim_of_an_expandable_class() {
        let cases = [
            ("1Gi", "2Gi", Some("gold"), "Bound", None),
            ("1Gi", "2Gi", None, "Bound", Some(NOT_EXPANDABLE)),
            ("1Gi", "2Gi", Some("silver"), "Bound", Some(NOT_EXPANDABLE)),
            ("1Gi", "2Gi", Some("missing"), "Bound", Some(NOT_EXPANDABLE)),
            ("1Gi", "1Gi", Some("silver"), "Pending", None),
            ("1Gi", "2Gi", Some("silver"), "Pending", Some(NOT_BOUND)),
            ("2Gi", "1Gi", Some("silver"), "Bound", None),
        ];
        for (old_size, new_size, class, phase, expected) in cases {
            let old = claim(old_size, class, phase);
            let new = claim(new_size, class, phase);
            assert_eq!(
                refusal(&new, &old, classes),
                expected,
                "{old_size} -> {new_size} {class:?} {phase}"
            );
        }
    }

    #[test]
    fn a_changed_class_is_not_expandable() {
        let old = claim("1Gi", Some("silver"), "Bound");
        let new = claim("2Gi", Some("gold"), "Bound");
        assert_eq!(refusal(&new, &old, classes), Some(NOT_EXPANDABLE));
    }
}
