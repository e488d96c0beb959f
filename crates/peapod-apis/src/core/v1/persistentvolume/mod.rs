//! PersistentVolume: served as kube-apiserver serves core/v1 persistentvolumes (pkg/registry/
//! core/persistentvolume): cluster-scoped, reclaim policy Retain and volume mode Filesystem by
//! default, Pending at creation, validated with kube's messages (exactly one volume source, a
//! storage capacity, access modes, hostPath and local paths), the source immutable, the
//! `status` subresource and kubectl's columns. Its binder lives in the agent.

mod validation;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use super::volume_claims::{access_modes_string, FILESYSTEM, STORAGE};

pub use validation::SOURCES;

pub const RETAIN: &str = "Retain";
pub const DELETE: &str = "Delete";
pub const RECYCLE: &str = "Recycle";

pub fn kind() -> Kind {
    Kind::of(PersistentVolumeStrategy)
        .short_names(&["pv"])
        .with_status()
}

pub struct PersistentVolumeStrategy;

impl KindStrategy for PersistentVolumeStrategy {
    type Object = PersistentVolume;

    /// core/v1's SetDefaults_PersistentVolume.
    fn default(&self, pv: &mut PersistentVolume) {
        let spec = pv.spec.get_or_insert_with(Default::default);
        spec.persistent_volume_reclaim_policy
            .get_or_insert_with(|| RETAIN.to_owned());
        spec.volume_mode
            .get_or_insert_with(|| FILESYSTEM.to_owned());
    }

    /// kube's `PrepareForCreate`: a new volume is Pending since now.
    fn prepare_for_create(&self, pv: &mut PersistentVolume) {
        pv.status = Some(PersistentVolumeStatus {
            phase: Some("Pending".to_owned()),
            last_phase_transition_time: Some(Time(Timestamp::now())),
            ..PersistentVolumeStatus::default()
        });
    }

    fn validate(&self, pv: &PersistentVolume) -> Vec<FieldError> {
        validation::validate(pv)
    }

    fn validate_update(&self, new: &PersistentVolume, old: &PersistentVolume) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    fn warnings(&self, pv: &PersistentVolume) -> Vec<String> {
        validation::warnings(pv)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
            Column::new("Access Modes", "string", "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
            Column::new("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"),
            Column::new("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
            Column::new("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"),
            Column::new("StorageClass", "string", "StorageClass of the pv"),
            Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
            Column::new("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
            AGE,
            Column::new("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.").wide(),
        ]
    }

    /// kubectl's printPersistentVolume.
    fn cells(&self, pv: &PersistentVolume) -> Vec<Value> {
        let spec = pv.spec.clone().unwrap_or_default();
        let status = pv.status.clone().unwrap_or_default();
        let claim = spec.claim_ref.as_ref().map_or(String::new(), |c| {
            format!(
                "{}/{}",
                c.namespace.as_deref().unwrap_or_default(),
                c.name.as_deref().unwrap_or_default()
            )
        });
        let capacity = spec
            .capacity
            .as_ref()
            .and_then(|c| c.get(STORAGE))
            .map_or("0".to_owned(), |q| q.0.clone());
        let phase = if pv.metadata.deletion_timestamp.is_some() {
            "Terminating".to_owned()
        } else {
            status.phase.unwrap_or_default()
        };
        vec![
            name_cell(&pv.metadata),
            json!(capacity),
            json!(access_modes_string(
                spec.access_modes.as_deref().unwrap_or_default()
            )),
            json!(spec.persistent_volume_reclaim_policy.unwrap_or_default()),
            json!(phase),
            json!(claim),
            json!(volume_class(pv)),
            json!(spec
                .volume_attributes_class_name
                .unwrap_or_else(|| "<unset>".to_owned())),
            json!(status.reason.unwrap_or_default()),
            age_cell(&pv.metadata),
            json!(spec.volume_mode.unwrap_or_else(|| "<unset>".to_owned())),
        ]
    }
}

/// kube's `GetPersistentVolumeClass`: the beta annotation first, then `storageClassName`.
pub fn volume_class(pv: &PersistentVolume) -> String {
    let annotation = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(super::volume_claims::BETA_STORAGE_CLASS_ANNOTATION));
    annotation
        .cloned()
        .or_else(|| pv.spec.as_ref()?.storage_class_name.clone())
        .unwrap_or_default()
}
