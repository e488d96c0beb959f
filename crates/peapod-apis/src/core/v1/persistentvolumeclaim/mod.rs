//! PersistentVolumeClaim: served as kube-apiserver serves core/v1 persistentvolumeclaims
//! (pkg/registry/core/persistentvolumeclaim): volume mode Filesystem by default, Pending at
//! creation, validated with kube's messages (access modes, a positive storage request, class
//! name), the spec immutable but for the binder's volumeName, a class given to a claim that
//! had none and the storage request growing once bound, the `status` subresource and kubectl's
//! columns. [`admission`] gives claims the default class and the protection finalizers;
//! [`resize`] refuses growth their class does not allow.

pub mod admission;
pub mod resize;
mod validation;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimStatus};
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use super::volume_claims::{
    access_modes_string, BETA_STORAGE_CLASS_ANNOTATION, FILESYSTEM, STORAGE,
};

pub fn kind() -> Kind {
    Kind::of(PersistentVolumeClaimStrategy)
        .short_names(&["pvc"])
        .with_status()
}

pub struct PersistentVolumeClaimStrategy;

impl KindStrategy for PersistentVolumeClaimStrategy {
    type Object = PersistentVolumeClaim;

    /// core/v1's SetDefaults_PersistentVolumeClaimSpec.
    fn default(&self, pvc: &mut PersistentVolumeClaim) {
        let spec = pvc.spec.get_or_insert_with(Default::default);
        spec.volume_mode
            .get_or_insert_with(|| FILESYSTEM.to_owned());
    }

    /// The status is reset; kube's decode defaults its phase to Pending.
    fn prepare_for_create(&self, pvc: &mut PersistentVolumeClaim) {
        pvc.status = Some(PersistentVolumeClaimStatus {
            phase: Some("Pending".to_owned()),
            ..PersistentVolumeClaimStatus::default()
        });
    }

    fn validate(&self, pvc: &PersistentVolumeClaim) -> Vec<FieldError> {
        validation::validate(pvc)
    }

    fn validate_update(
        &self,
        new: &PersistentVolumeClaim,
        old: &PersistentVolumeClaim,
    ) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Status", "string", "phase represents the current phase of PersistentVolumeClaim."),
            Column::new("Volume", "string", "volumeName is the binding reference to the PersistentVolume backing this claim."),
            Column::new("Capacity", "string", "capacity represents the actual resources of the underlying volume."),
            Column::new("Access Modes", "string", "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
            Column::new("StorageClass", "string", "StorageClass of the pvc"),
            Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
            AGE,
            Column::new("VolumeMode", "string", "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.").wide(),
        ]
    }

    /// kubectl's printPersistentVolumeClaim: capacity and modes once a volume is named.
    fn cells(&self, pvc: &PersistentVolumeClaim) -> Vec<Value> {
        let spec = pvc.spec.clone().unwrap_or_default();
        let status = pvc.status.clone().unwrap_or_default();
        let phase = if pvc.metadata.deletion_timestamp.is_some() {
            "Terminating".to_owned()
        } else {
            status.phase.clone().unwrap_or_default()
        };
        let volume = spec.volume_name.clone().unwrap_or_default();
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            let capacity = status.capacity.as_ref().and_then(|c| c.get(STORAGE));
            (
                capacity.map_or("0".to_owned(), |q| q.0.clone()),
                access_modes_string(status.access_modes.as_deref().unwrap_or_default()),
            )
        };
        vec![
            name_cell(&pvc.metadata),
            json!(phase),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(claim_class(pvc).unwrap_or_default()),
            json!(spec
                .volume_attributes_class_name
                .unwrap_or_else(|| "<unset>".to_owned())),
            age_cell(&pvc.metadata),
            json!(spec.volume_mode.unwrap_or_else(|| "<unset>".to_owned())),
        ]
    }
}

/// kube's `GetPersistentVolumeClaimClass`: the beta annotation first, then
/// `storageClassName`; `None` when neither is set.
pub fn claim_class(pvc: &PersistentVolumeClaim) -> Option<String> {
    let annotations = pvc.metadata.annotations.as_ref();
    if let Some(class) = annotations.and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION)) {
        return Some(class.clone());
    }
    pvc.spec.as_ref()?.storage_class_name.clone()
}
