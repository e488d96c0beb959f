//! The local-path provisioner, as rancher's local-path-provisioner lays volumes out: a claim of
//! the default class gets a directory `<data dir>/storage/<pv>_<namespace>_<claim>` and a
//! hostPath volume there, tied to this node, sized as the request, bound in advance to the
//! claim; a Delete volume's directory goes with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::PROVISIONED_BY;

/// The provisioner name of the default class: rancher's, so manifests written for k3s and
/// kind (`storageClassName: local-path`, provisioner `rancher.io/local-path`) work unchanged.
pub const LOCAL_PATH_PROVISIONER: &str = "rancher.io/local-path";
pub const LOCAL_PATH_CLASS: &str = "local-path";
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("creating the volume directory {path}: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("removing the volume directory {path}: {source}")]
    Remove {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// kube's name for a provisioned volume: `pvc-<claim uid>`.
pub fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", claim.metadata.uid.as_deref().unwrap_or_default())
}

/// `<storage root>/<pv>_<namespace>_<claim>`.
pub fn volume_dir(root: &Path, claim: &PersistentVolumeClaim) -> PathBuf {
    let namespace = claim.namespace().unwrap_or_default();
    root.join(format!(
        "{}_{namespace}_{}",
        volume_name(claim),
        claim.name_any()
    ))
}

/// The directory, made open to every container user as rancher's provisioner makes it.
pub fn create_dir(path: &Path) -> Result<(), ProvisionError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |source| ProvisionError::Create {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(path).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).map_err(failed)
}

/// Removes a provisioned directory, only when it lies under `root`.
pub fn remove_dir(root: &Path, path: &Path) -> Result<(), ProvisionError> {
    if path.parent() != Some(root) || !path.exists() {
        return Ok(());
    }
    std::fs::remove_dir_all(path).map_err(|source| ProvisionError::Remove {
        path: path.display().to_string(),
        source,
    })
}

/// The volume for `claim` in `dir` on `node`, with the class's reclaim policy.
pub fn volume_for(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &str,
    dir: &Path,
) -> PersistentVolume {
    let spec = claim.spec.clone().unwrap_or_default();
    let capacity = spec.resources.and_then(|r| r.requests).unwrap_or_default();
    let capacity = capacity
        .into_iter()
        .filter(|(k, _)| k == "storage")
        .collect();
    let term = NodeSelectorTerm {
        match_expressions: Some(vec![NodeSelectorRequirement {
            key: HOSTNAME_LABEL.to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![node.to_owned()]),
        }]),
        ..NodeSelectorTerm::default()
    };
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(volume_name(claim)),
            annotations: Some(BTreeMap::from([(
                PROVISIONED_BY.to_owned(),
                class.provisioner.clone(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes,
            capacity: Some(capacity),
            claim_ref: Some(claim_ref(claim)),
            host_path: Some(HostPathVolumeSource {
                path: dir.display().to_string(),
                type_: Some("DirectoryOrCreate".to_owned()),
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![term],
                }),
            }),
            persistent_volume_reclaim_policy: class.reclaim_policy.clone(),
            storage_class_name: class.metadata.name.clone(),
            volume_mode: spec.volume_mode,
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    }
}

/// The reference a volume keeps to its claim.
pub fn claim_ref(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("PersistentVolumeClaim".to_owned()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The default class peapod creates when missing: local-path, Delete, WaitForFirstConsumer.
pub fn default_class() -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(LOCAL_PATH_CLASS.to_owned()),
            annotations: Some(BTreeMap::from([(
                peapod_apis::storage::v1::storageclass::DEFAULT_CLASS_ANNOTATION.to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        provisioner: LOCAL_PATH_PROVISIONER.to_owned(),
        reclaim_policy: Some("Delete".to_owned()),
        volume_binding_mode: Some("WaitForFirstConsumer".to_owned()),
        ..StorageClass::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_provisioned_volume_follows_its_claim_and_class() {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "web", "uid": "u-1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                "volumeMode": "Filesystem"},
        }))
        .unwrap();
        let dir = volume_dir(Path::new("/var/lib/peapod/storage"), &claim);
        assert_eq!(dir, Path::new("/var/lib/peapod/storage/pvc-u-1_web_data"));
        let pv = volume_for(&claim, &default_class(), "node-1", &dir);
        let value = serde_json::to_value(&pv).unwrap();
        assert_eq!(value["metadata"]["name"], "pvc-u-1");
        assert_eq!(
            value["metadata"]["annotations"][PROVISIONED_BY],
            LOCAL_PATH_PROVISIONER
        );
        assert_eq!(value["spec"]["capacity"], json!({"storage": "1Gi"}));
        assert_eq!(value["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(value["spec"]["storageClassName"], "local-path");
        assert_eq!(value["spec"]["claimRef"]["uid"], "u-1");
        assert_eq!(
            value["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"]
                [0]["values"],
            json!(["node-1"])
        );
    }

    #[test]
    fn only_directories_under_the_root_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("pvc-1_ns_c");
        create_dir(&inside).unwrap();
        remove_dir(root.path(), &inside).unwrap();
        assert!(!inside.exists());
        let outside = tempfile::tempdir().unwrap();
        remove_dir(root.path(), outside.path()).unwrap();
        assert!(outside.path().exists());
    }
}
