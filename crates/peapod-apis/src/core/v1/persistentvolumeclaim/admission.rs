//! kube-apiserver's DefaultStorageClass and StorageObjectInUseProtection admission plugins: a
//! new claim that names no class (neither field nor beta annotation) gets the default class,
//! the newest when several claim to be; claims and volumes get their protection finalizers,
//! which the agent's protection controllers remove once nothing uses them.

use k8s_openapi::api::storage::v1::StorageClass;
use peapod_apiserver::admission::{Admission, NewObject};
use peapod_apiserver::status::ApiError;
use peapod_store::Store;
use serde_json::{json, Value};

use crate::core::v1::volume_claims::BETA_STORAGE_CLASS_ANNOTATION;
use crate::storage::v1::storageclass::is_default_class;

pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";

pub struct StorageAdmission;

impl Admission for StorageAdmission {
    fn admit_create(&self, new: NewObject<'_>, store: &Store) -> Result<(), ApiError> {
        if !new.kind.group.is_empty() {
            return Ok(());
        }
        match new.resource {
            "persistentvolumeclaims" => {
                default_class(new.object, store)?;
                add_finalizer(new.object, PVC_PROTECTION_FINALIZER);
            }
            "persistentvolumes" => add_finalizer(new.object, PV_PROTECTION_FINALIZER),
            _ => {}
        }
        Ok(())
    }
}

fn default_class(claim: &mut Value, store: &Store) -> Result<(), ApiError> {
    let annotated = claim["metadata"]["annotations"]
        .get(BETA_STORAGE_CLASS_ANNOTATION)
        .is_some();
    if annotated || !claim["spec"]["storageClassName"].is_null() {
        return Ok(());
    }
    let classes = store.list::<StorageClass>(None)?;
    if let Some(class) = newest_default(&classes) {
        claim["spec"]["storageClassName"] = json!(class);
    }
    Ok(())
}

/// kube's `GetDefaultClass`: the newest default class, by name when created together.
pub fn newest_default(classes: &[StorageClass]) -> Option<String> {
    crate::default_class::newest_default(classes.iter().map(|c| &c.metadata), is_default_class)
}

fn add_finalizer(object: &mut Value, finalizer: &str) {
    let finalizers = &mut object["metadata"]["finalizers"];
    if !finalizers.is_array() {
        *finalizers = json!([]);
    }
    let list = finalizers.as_array_mut().expect("made an array above");
    if !list.iter().any(|f| f == finalizer) {
        list.push(json!(finalizer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, default: bool, created: &str) -> StorageClass {
        serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "creationTimestamp": created,
                "annotations": {"storageclass.kubernetes.io/is-default-class": default.to_string()},
            },
            "provisioner": "example.com/p",
        }))
        .unwrap()
    }

    #[test]
    fn the_newest_default_class_wins() {
        let classes = [
            class("old", true, "2024-01-01T00:00:00Z"),
            class("new", true, "2024-02-01T00:00:00Z"),
            class("newer", false, "2024-03-01T00:00:00Z"),
        ];
        assert_eq!(newest_default(&classes).as_deref(), Some("new"));
        assert_eq!(newest_default(&classes[2..]), None);
    }

    #[test]
    fn finalizers_are_added_once() {
        let mut object = json!({"metadata": {"finalizers": [PVC_PROTECTION_FINALIZER]}});
        add_finalizer(&mut object, PVC_PROTECTION_FINALIZER);
        assert_eq!(
            object["metadata"]["finalizers"],
            json!([PVC_PROTECTION_FINALIZER])
        );
        let mut bare = json!({"metadata": {}});
        add_finalizer(&mut bare, PV_PROTECTION_FINALIZER);
        assert_eq!(
            bare["metadata"]["finalizers"],
            json!([PV_PROTECTION_FINALIZER])
        );
    }
}
