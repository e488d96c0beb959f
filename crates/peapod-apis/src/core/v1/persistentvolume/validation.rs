//! kube's `ValidatePersistentVolume` and `ValidatePersistentVolumeUpdate`.

use k8s_openapi::api::core::v1::{LocalVolumeSource, PersistentVolume, PersistentVolumeSpec};
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{no_backsteps, validate_host_path, FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;
use serde_json::Value;

use super::{DELETE, RECYCLE, RETAIN};
use crate::core::v1::volume_claims::{
    validate_access_modes, validate_class_name, validate_positive_quantity, validate_volume_mode,
    STORAGE,
};

/// The volume sources of a PersistentVolumeSpec, in the order kube checks them.
pub const SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];
/// The sources peapod can mount.
const MOUNTABLE: &[&str] = &["hostPath", "local"];
const RECLAIM_POLICIES: &[&str] = &[DELETE, RECYCLE, RETAIN];

pub fn validate(pv: &PersistentVolume) -> Vec<FieldError> {
    let mut errors = validate_meta(pv, false);
    let spec = pv.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, &FieldPath::new("spec")));
    errors
}

pub fn validate_update(new: &PersistentVolume, old: &PersistentVolume) -> Vec<FieldError> {
    let mut errors = validate(new);
    errors.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &FieldPath::new("metadata"),
    ));
    let (new_spec, old_spec) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    if sources(&new_spec) != sources(&old_spec) {
        errors.push(FieldError::forbidden(
            &FieldPath::new("spec").child("persistentvolumesource"),
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    if new_spec.volume_mode != old_spec.volume_mode {
        errors.push(FieldError::invalid(
            &FieldPath::new("volumeMode"),
            new_spec.volume_mode.as_deref(),
            "field is immutable",
        ));
    }
    errors
}

/// Sources peapod accepts, as kube does, but cannot mount.
pub fn warnings(pv: &PersistentVolume) -> Vec<String> {
    let spec = pv.spec.clone().unwrap_or_default();
    sources(&spec)
        .into_iter()
        .filter(|(name, _)| !MOUNTABLE.contains(name))
        .map(|(name, _)| format!("spec.{name}: peapod mounts only hostPath and local volumes"))
        .collect()
}

/// The sources set in `spec`, with their values.
fn sources(spec: &PersistentVolumeSpec) -> Vec<(&'static str, Value)> {
    let value = serde_json::to_value(spec).unwrap_or_default();
    SOURCES
        .iter()
        .filter_map(|name| Some((*name, value.get(*name)?.clone())))
        .filter(|(_, v)| !v.is_null())
        .collect()
}

fn validate_spec(spec: &PersistentVolumeSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        errors.push(FieldError::required(&path.child("accessModes"), ""));
    }
    errors.extend(validate_access_modes(modes, &path.child("accessModes")));
    errors.extend(validate_capacity(spec, &path.child("capacity")));
    let class = spec.storage_class_name.as_deref().unwrap_or_default();
    errors.extend(validate_class_name(class, &path.child("storageClassName")));
    errors.extend(validate_volume_mode(
        spec.volume_mode.as_deref(),
        &path.child("volumeMode"),
    ));
    if let Some(policy) = spec.persistent_volume_reclaim_policy.as_deref() {
        if !RECLAIM_POLICIES.contains(&policy) {
            let field = path.child("persistentVolumeReclaimPolicy");
            errors.push(FieldError::not_supported(&field, policy, RECLAIM_POLICIES));
        }
    }
    let (affinity_set, affinity_errors) = validate_node_affinity(spec, &path.child("nodeAffinity"));
    errors.extend(affinity_errors);
    errors.extend(validate_sources(spec, affinity_set, path));
    let root = spec
        .host_path
        .as_ref()
        .is_some_and(|h| clean(&h.path) == "/");
    if root && spec.persistent_volume_reclaim_policy.as_deref() == Some(RECYCLE) {
        errors.push(FieldError::forbidden(
            &path.child("persistentVolumeReclaimPolicy"),
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }
    errors
}

/// A storage entry and nothing else, each quantity positive.
fn validate_capacity(spec: &PersistentVolumeSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let capacity = spec.capacity.clone().unwrap_or_default();
    if capacity.is_empty() {
        errors.push(FieldError::required(path, ""));
    }
    if !capacity.contains_key(STORAGE) || capacity.len() > 1 {
        let shown: serde_json::Map<String, Value> = capacity
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.0.clone())))
            .collect();
        errors.push(FieldError::not_supported(
            path,
            Value::Object(shown),
            &[STORAGE],
        ));
    }
    for (name, quantity) in &capacity {
        errors.extend(validate_positive_quantity(&quantity.0, &path.key(name)));
    }
    errors
}

/// validateVolumeNodeAffinity: whether one is given, and what is wrong with it.
fn validate_node_affinity(
    spec: &PersistentVolumeSpec,
    path: &FieldPath,
) -> (bool, Vec<FieldError>) {
    let Some(affinity) = &spec.node_affinity else {
        return (false, Vec::new());
    };
    let Some(required) = &affinity.required else {
        let detail = "must specify required node constraints";
        return (
            false,
            vec![FieldError::required(&path.child("required"), detail)],
        );
    };
    if required.node_selector_terms.is_empty() {
        let field = path.child("required").child("nodeSelectorTerms");
        let detail = "must have at least one node selector term";
        return (true, vec![FieldError::required(&field, detail)]);
    }
    (true, Vec::new())
}

/// Exactly one source; hostPath and local checked as kube checks them.
fn validate_sources(
    spec: &PersistentVolumeSpec,
    affinity_set: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (index, (name, _)) in sources(spec).iter().enumerate() {
        if index > 0 {
            errors.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        match *name {
            "hostPath" => errors.extend(validate_host_path(
                spec.host_path.as_ref(),
                &path.child(name),
            )),
            "local" => {
                errors.extend(validate_local(spec.local.as_ref(), &path.child(name)));
                if !affinity_set {
                    errors.push(FieldError::required(
                        &path.child("nodeAffinity"),
                        "Local volume requires node affinity",
                    ));
                }
            }
            _ => {}
        }
    }
    if sources(spec).is_empty() {
        errors.push(FieldError::required(path, "must specify a volume type"));
    }
    errors
}

/// validateLocalVolumeSource.
fn validate_local(local: Option<&LocalVolumeSource>, path: &FieldPath) -> Vec<FieldError> {
    let Some(local) = local else {
        return Vec::new();
    };
    if local.path.is_empty() {
        return vec![FieldError::required(&path.child("path"), "")];
    }
    no_backsteps(&local.path, &path.child("path"))
}

/// Go's `path.Clean`, enough to recognise `/`.
fn clean(target: &str) -> String {
    let parts: Vec<&str> = target
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if target.starts_with('/') && parts.is_empty() {
        return "/".to_owned();
    }
    parts.join("/")
}

/// kube's `TestValidatePersistentVolumes`, the cases that apply.
#[cfg(test)]
mod tests {
    use super::*;

    fn pv(spec: serde_json::Value) -> PersistentVolume {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "foo"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn messages(pv: &PersistentVolume) -> Vec<String> {
        validate(pv).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn good_volumes_pass() {
        let host = pv(serde_json::json!({
            "capacity": {"storage": "10G"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": "/foo", "type": ""},
        }));
        assert!(messages(&host).is_empty(), "{:?}", messages(&host));
        let local = pv(serde_json::json!({
            "capacity": {"storage": "10G"}, "accessModes": ["ReadWriteOnce"],
            "local": {"path": "/foo"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n"]}]}]}},
        }));
        assert!(messages(&local).is_empty(), "{:?}", messages(&local));
    }

    #[test]
    fn bad_volumes_are_refused_with_kubes_messages() {
        let cases = [
            (
                serde_json::json!({"capacity": {"storage": "10G"}, "hostPath": {"path": "/foo"}}),
                vec!["spec.accessModes: Required value"],
            ),
            (
                serde_json::json!({"accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/foo"}}),
                vec![
                    "spec.capacity: Required value",
                    "spec.capacity: Unsupported value: {}: supported values: \"storage\"",
                ],
            ),
            (
                serde_json::json!({"capacity": {"storage": "10G"}, "accessModes": ["ReadWriteOnce"]}),
                vec!["spec: Required value: must specify a volume type"],
            ),
            (
                serde_json::json!({"capacity": {"storage": "10G"}, "accessModes": ["ReadWriteOnce"],
                    "hostPath": {"path": "/foo"}, "local": {"path": "/bar"}}),
                vec!["spec.local: Forbidden: may not specify more than 1 volume type"],
            ),
            (
                serde_json::json!({"capacity": {"storage": "10G"}, "accessModes": ["ReadWriteOnce"],
                    "local": {"path": "/foo/../bar"}}),
                vec![
                    "spec.local.path: Invalid value: \"/foo/../bar\": must not contain '..'",
                    "spec.nodeAffinity: Required value: Local volume requires node affinity",
                ],
            ),
            (
                serde_json::json!({"capacity": {"storage": "10G"}, "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Recycle", "hostPath": {"path": "/a/.."}}),
                vec![
                    "spec.hostPath.path: Invalid value: \"/a/..\": must not contain '..'",
                ],
            ),
            (
                serde_json::json!({"capacity": {"storage": "10G"}, "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Recycle", "hostPath": {"path": "/"}}),
                vec!["spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath mount of '/'"],
            ),
            (
                serde_json::json!({"capacity": {"storage": "10G"}, "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "-invalid-", "hostPath": {"path": "/foo"}}),
                vec!["spec.storageClassName: Invalid value: \"-invalid-\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"],
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(messages(&pv(spec.clone())), expected, "{spec}");
        }
    }

    #[test]
    fn the_source_is_immutable() {
        let old = pv(serde_json::json!({"capacity": {"storage": "1G"},
            "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/a"}}));
        let mut new = old.clone();
        new.spec.as_mut().unwrap().host_path.as_mut().unwrap().path = "/b".into();
        let errors: Vec<String> = validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            ["spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"]
        );
    }
}
