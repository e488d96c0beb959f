//! Pod volume validation: names, exactly one source, hostPath and emptyDir rules (the
//! API-data sources in [`super::api_data_volume`]).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, HostPathVolumeSource, Volume};
use serde_json::Value;

use super::{api_data_volume, names};
use super::{quantity_errors, FieldError, FieldPath};
use crate::quantity::Quantity;

/// Volume source fields in the order Kubernetes checks them.
const SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

pub const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// Validates the volumes; returns the names of the valid ones (mounts may only
/// name those) and the errors.
pub fn validate_volumes(
    volumes: &[Volume],
    path: &FieldPath,
) -> (HashSet<String>, Vec<FieldError>) {
    let mut valid = HashSet::new();
    let mut errs = Vec::new();
    for (i, volume) in volumes.iter().enumerate() {
        let vol_path = path.index(i);
        let name_path = vol_path.child("name");
        let mut el = validate_source(volume, &vol_path);
        if volume.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            for msg in names::dns1123_label(&volume.name) {
                el.push(FieldError::invalid(&name_path, &volume.name, &msg));
            }
        }
        if valid.contains(&volume.name) {
            el.push(FieldError::duplicate(&name_path, &volume.name));
        }
        if el.is_empty() {
            valid.insert(volume.name.clone());
        }
        errs.extend(el);
    }
    (valid, errs)
}

fn present_sources(volume: &Volume) -> Vec<&'static str> {
    let value = serde_json::to_value(volume).unwrap_or(Value::Null);
    SOURCES
        .iter()
        .copied()
        .filter(|s| value.get(s).is_some_and(|v| !v.is_null()))
        .collect()
}

fn validate_source(volume: &Volume, path: &FieldPath) -> Vec<FieldError> {
    let sources = present_sources(volume);
    let Some(first) = sources.first() else {
        return vec![FieldError::required(path, "must specify a volume type")];
    };
    let mut errs: Vec<FieldError> = sources[1..]
        .iter()
        .map(|s| FieldError::forbidden(&path.child(s), "may not specify more than 1 volume type"))
        .collect();
    match *first {
        "emptyDir" => errs.extend(validate_empty_dir(
            volume.empty_dir.as_ref(),
            &path.child("emptyDir"),
        )),
        "hostPath" => errs.extend(validate_host_path(
            volume.host_path.as_ref(),
            &path.child("hostPath"),
        )),
        "persistentVolumeClaim" => {
            let claim = volume.persistent_volume_claim.as_ref();
            if claim.is_some_and(|c| c.claim_name.is_empty()) {
                let field = path.child("persistentVolumeClaim").child("claimName");
                errs.push(FieldError::required(&field, ""));
            }
        }
        "secret" => errs.extend(volume.secret.as_ref().map_or_else(Vec::new, |s| {
            api_data_volume::secret(s, &path.child("secret"))
        })),
        "configMap" => errs.extend(volume.config_map.as_ref().map_or_else(Vec::new, |c| {
            api_data_volume::config_map(c, &path.child("configMap"))
        })),
        "downwardAPI" => errs.extend(volume.downward_api.as_ref().map_or_else(Vec::new, |d| {
            api_data_volume::downward_api(d, &path.child("downwardAPI"))
        })),
        "projected" => errs.extend(volume.projected.as_ref().map_or_else(Vec::new, |p| {
            api_data_volume::projected(p, &path.child("projected"))
        })),
        _ => {}
    }
    errs
}

/// validateHostPathVolumeSource, shared with PersistentVolumes.
pub fn validate_host_path(
    host_path: Option<&HostPathVolumeSource>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let Some(host_path) = host_path else {
        return Vec::new();
    };
    if host_path.path.is_empty() {
        return vec![FieldError::required(&path.child("path"), "")];
    }
    let mut errs = no_backsteps(&host_path.path, &path.child("path"));
    if let Some(kind) = &host_path.type_ {
        if !HOST_PATH_TYPES.contains(&kind.as_str()) {
            errs.push(FieldError::not_supported(
                &path.child("type"),
                kind,
                HOST_PATH_TYPES,
            ));
        }
    }
    errs
}

/// Kubernetes leaves `medium` to the kubelet; peapod checks it up front.
fn validate_empty_dir(
    empty_dir: Option<&EmptyDirVolumeSource>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let Some(empty_dir) = empty_dir else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let medium = empty_dir.medium.as_deref().unwrap_or_default();
    if !matches!(medium, "" | "Memory" | "HugePages") && !medium.starts_with("HugePages-") {
        let supported = ["", "Memory", "HugePages", "HugePages-<size>"];
        errs.push(FieldError::not_supported(
            &path.child("medium"),
            medium,
            &supported,
        ));
    }
    if let Some(limit) = &empty_dir.size_limit {
        let limit_path = path.child("sizeLimit");
        let bad_format = quantity_errors(&limit.0, &limit_path);
        let negative = limit.0.parse::<Quantity>().is_ok_and(|q| q.is_negative());
        errs.extend(bad_format);
        if negative {
            let detail = "SizeLimit field must be a valid resource quantity";
            errs.push(FieldError::forbidden(&limit_path, detail));
        }
    }
    errs
}

/// validatePathNoBacksteps: no `..` element.
pub fn no_backsteps(target: &str, path: &FieldPath) -> Vec<FieldError> {
    if target.split('/').any(|part| part == "..") {
        return vec![FieldError::invalid(path, target, "must not contain '..'")];
    }
    Vec::new()
}

/// validateLocalDescendingPath: relative, no `..` element.
pub fn local_descending_path(target: &str, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(no_backsteps(target, path));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(volumes: serde_json::Value) -> (HashSet<String>, Vec<String>) {
        let volumes: Vec<Volume> = serde_json::from_value(volumes).unwrap();
        let (names, errs) = validate_volumes(&volumes, &FieldPath::new("spec").child("volumes"));
        (names, errs.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn names_unique_and_labels() {
        let (names, errs) = check(json!([
            {"name": "data", "emptyDir": {}},
            {"name": "data", "emptyDir": {}},
            {"name": "Bad.Name", "emptyDir": {}},
            {"name": "", "emptyDir": {}}
        ]));
        assert_eq!(names, HashSet::from(["data".to_string()]));
        assert_eq!(errs[0], r#"spec.volumes[1].name: Duplicate value: "data""#);
        assert!(
            errs[1].starts_with(
                r#"spec.volumes[2].name: Invalid value: "Bad.Name": a lowercase RFC 1123 label"#
            ),
            "{errs:?}"
        );
        assert_eq!(errs[2], "spec.volumes[3].name: Required value");
    }

    #[test]
    fn a_claim_volume_names_its_claim() {
        let (_, errs) = check(json!([
            {"name": "a", "persistentVolumeClaim": {"claimName": "data", "readOnly": true}},
            {"name": "b", "persistentVolumeClaim": {"claimName": ""}}
        ]));
        assert_eq!(
            errs,
            ["spec.volumes[1].persistentVolumeClaim.claimName: Required value"]
        );
    }

    #[test]
    fn exactly_one_source() {
        let (_, errs) = check(json!([
            {"name": "a"},
            {"name": "b", "emptyDir": {}, "hostPath": {"path": "/x"}, "configMap": {"name": "c"}}
        ]));
        assert_eq!(
            errs,
            vec![
                "spec.volumes[0]: Required value: must specify a volume type",
                "spec.volumes[1].hostPath: Forbidden: may not specify more than 1 volume type",
                "spec.volumes[1].configMap: Forbidden: may not specify more than 1 volume type",
            ]
        );
    }

    #[test]
    fn host_path_rules() {
        let (_, errs) = check(json!([
            {"name": "a", "hostPath": {"path": ""}},
            {"name": "b", "hostPath": {"path": "/x/../etc", "type": "Dir"}},
            {"name": "c", "hostPath": {"path": "/x", "type": "Socket"}}
        ]));
        assert_eq!(
            errs,
            vec![
                "spec.volumes[0].hostPath.path: Required value",
                r#"spec.volumes[1].hostPath.path: Invalid value: "/x/../etc": must not contain '..'"#,
                r#"spec.volumes[1].hostPath.type: Unsupported value: "Dir": supported values: "", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket""#,
            ]
        );
    }

    #[test]
    fn empty_dir_rules() {
        let (names, errs) = check(json!([
            {"name": "a", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "b", "emptyDir": {"medium": "HugePages-2Mi"}},
            {"name": "c", "emptyDir": {"medium": "Disk"}},
            {"name": "d", "emptyDir": {"sizeLimit": "-1"}}
        ]));
        assert_eq!(names.len(), 2);
        assert_eq!(
            errs,
            vec![
                r#"spec.volumes[2].emptyDir.medium: Unsupported value: "Disk": supported values: "", "Memory", "HugePages", "HugePages-<size>""#,
                "spec.volumes[3].emptyDir.sizeLimit: Forbidden: SizeLimit field must be a valid resource quantity",
            ]
        );
    }
}
