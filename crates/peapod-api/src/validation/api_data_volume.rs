//! Validation of the API-data volume sources — secret, configMap, downwardAPI, projected — as
//! kube-apiserver's ValidateVolumes checks them: item paths local and unreserved, file modes
//! within 0..0777, downward field and resource selectors, no two projected files at one path.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, DownwardAPIVolumeFile, DownwardAPIVolumeSource, KeyToPath,
    ObjectFieldSelector, ProjectedVolumeSource, ResourceFieldSelector, SecretVolumeSource,
};

use super::names;
use super::volume::local_descending_path;
use super::{FieldError, FieldPath};
use crate::quantity::Quantity;

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// The field paths a downwardAPI volume file may show, sorted as kube lists them.
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

const RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];
const HUGEPAGES_PREFIXES: &[&str] = &["limits.hugepages-", "requests.hugepages-"];

fn mode(mode: Option<i32>, path: &FieldPath) -> Vec<FieldError> {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(path, m, FILE_MODE_ERROR)],
        _ => Vec::new(),
    }
}

fn name_required(name: &str, path: &FieldPath) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    Vec::new()
}

/// validateSecretVolumeSource
pub fn secret(source: &SecretVolumeSource, path: &FieldPath) -> Vec<FieldError> {
    let name = source.secret_name.as_deref().unwrap_or_default();
    let mut errs = name_required(name, &path.child("secretName"));
    errs.extend(mode(source.default_mode, &path.child("defaultMode")));
    errs.extend(key_to_paths(source.items.as_deref(), &path.child("items")));
    errs
}

/// validateConfigMapVolumeSource
pub fn config_map(source: &ConfigMapVolumeSource, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = name_required(&source.name, &path.child("name"));
    errs.extend(mode(source.default_mode, &path.child("defaultMode")));
    errs.extend(key_to_paths(source.items.as_deref(), &path.child("items")));
    errs
}

fn key_to_paths(items: Option<&[KeyToPath]>, path: &FieldPath) -> Vec<FieldError> {
    let items = items.unwrap_or_default().iter().enumerate();
    items
        .flat_map(|(i, item)| key_to_path(item, &path.index(i)))
        .collect()
}

/// validateKeyToPath
fn key_to_path(item: &KeyToPath, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = name_required(&item.key, &path.child("key"));
    errs.extend(name_required(&item.path, &path.child("path")));
    errs.extend(local_non_reserved_path(&item.path, &path.child("path")));
    errs.extend(mode(item.mode, &path.child("mode")));
    errs
}

/// ValidateLocalNonReservedPath: relative, no `..` element, not starting with `..` (the
/// AtomicWriter's names).
pub fn local_non_reserved_path(target: &str, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
    errs
}

/// validateDownwardAPIVolumeSource: kube checks each item at the source's path, unindexed.
pub fn downward_api(source: &DownwardAPIVolumeSource, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = mode(source.default_mode, &path.child("defaultMode"));
    for file in source.items.iter().flatten() {
        errs.extend(downward_file(file, path));
    }
    errs
}

/// validateDownwardAPIVolumeFile
fn downward_file(file: &DownwardAPIVolumeFile, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = name_required(&file.path, &path.child("path"));
    errs.extend(local_non_reserved_path(&file.path, &path.child("path")));
    match (&file.field_ref, &file.resource_field_ref) {
        (Some(field_ref), resource_ref) => {
            errs.extend(object_field_selector(field_ref, &path.child("fieldRef")));
            if resource_ref.is_some() {
                let detail = "fieldRef and resourceFieldRef can not be specified simultaneously";
                errs.push(FieldError::invalid(path, "resource", detail));
            }
        }
        (None, Some(resource_ref)) => {
            errs.extend(resource_field_selector(
                resource_ref,
                &path.child("resourceFieldRef"),
            ));
        }
        (None, None) => {
            let detail = "one of fieldRef and resourceFieldRef is required";
            errs.push(FieldError::required(path, detail));
        }
    }
    errs.extend(mode(file.mode, &path.child("mode")));
    errs
}

/// validateObjectFieldSelector with the volume's field paths.
fn object_field_selector(selector: &ObjectFieldSelector, path: &FieldPath) -> Vec<FieldError> {
    let api_version = selector.api_version.as_deref().unwrap_or_default();
    if api_version.is_empty() {
        return vec![FieldError::required(&path.child("apiVersion"), "")];
    }
    let field_path = selector.field_path.as_str();
    if field_path.is_empty() {
        return vec![FieldError::required(&path.child("fieldPath"), "")];
    }
    let subscripted = field_path
        .strip_suffix("']")
        .and_then(|inner| inner.split_once("['"));
    let conversion = match (api_version, subscripted) {
        ("v1", Some(("metadata.annotations" | "metadata.labels", _))) => Ok(()),
        ("v1", Some(_)) => Err(format!(
            "field label does not support subscript: {field_path}"
        )),
        ("v1", None) if is_convertible_field_label(field_path) => Ok(()),
        ("v1", None) => Err(format!("field label not supported: {field_path}")),
        _ => Err(format!("unsupported pod version: {api_version}")),
    };
    if let Err(err) = conversion {
        let detail = format!("error converting fieldPath: {err}");
        return vec![FieldError::invalid(
            &path.child("fieldPath"),
            field_path,
            &detail,
        )];
    }
    match subscripted {
        Some(("metadata.annotations", key)) => {
            let key = key.to_lowercase();
            names::qualified_name(&key)
                .iter()
                .map(|m| FieldError::invalid(path, key.as_str(), m))
                .collect()
        }
        Some((_, key)) => names::qualified_name(key)
            .iter()
            .map(|m| FieldError::invalid(path, key, m))
            .collect(),
        None if !VOLUME_FIELD_PATHS.contains(&field_path) => vec![FieldError::not_supported(
            &path.child("fieldPath"),
            field_path,
            VOLUME_FIELD_PATHS,
        )],
        None => Vec::new(),
    }
}

/// The labels ConvertDownwardAPIFieldLabel takes for v1 pods.
fn is_convertible_field_label(label: &str) -> bool {
    matches!(
        label,
        "metadata.annotations"
            | "metadata.labels"
            | "metadata.name"
            | "metadata.namespace"
            | "metadata.uid"
            | "spec.nodeName"
            | "spec.restartPolicy"
            | "spec.serviceAccountName"
            | "spec.schedulerName"
            | "status.phase"
            | "status.hostIP"
            | "status.hostIPs"
            | "status.podIP"
            | "status.podIPs"
            | "spec.host"
    )
}

/// validateContainerResourceFieldSelector for volumes: containerName is required.
fn resource_field_selector(selector: &ResourceFieldSelector, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let resource = selector.resource.as_str();
    if selector
        .container_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !RESOURCE_FIELD_PATHS.contains(&resource)
        && !HUGEPAGES_PREFIXES.iter().any(|p| resource.starts_with(p))
    {
        let field = path.child("resource");
        errs.push(FieldError::not_supported(
            &field,
            resource,
            RESOURCE_FIELD_PATHS,
        ));
    }
    errs.extend(resource_divisor(resource, selector, path));
    errs
}

/// validateContainerResourceDivisor: cpu takes 1m or 1; byte resources a power of 1000 or 1024.
fn resource_divisor(
    resource: &str,
    selector: &ResourceFieldSelector,
    path: &FieldPath,
) -> Vec<FieldError> {
    let Some(divisor) = selector
        .divisor
        .as_ref()
        .and_then(|d| d.0.parse::<Quantity>().ok())
    else {
        return Vec::new();
    };
    if divisor.is_zero() {
        return Vec::new();
    }
    let milli = divisor.milli_value();
    let bytes_ok = || {
        (0..=6)
            .any(|i| milli == Some(1000 * 1000i128.pow(i)) || milli == Some(1000 * 1024i128.pow(i)))
    };
    let bytes_units = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei";
    let detail = match resource {
        "limits.cpu" | "requests.cpu" if !matches!(milli, Some(1) | Some(1000)) => {
            "only divisor's values 1m and 1 are supported with the cpu resource".to_string()
        }
        "limits.memory" | "requests.memory" if !bytes_ok() => {
            format!("only divisor's values {bytes_units} are supported with the memory resource")
        }
        "limits.ephemeral-storage" | "requests.ephemeral-storage" if !bytes_ok() => format!(
            "only divisor's values {bytes_units} are supported with the local ephemeral storage resource"
        ),
        _ if HUGEPAGES_PREFIXES.iter().any(|p| resource.starts_with(p)) && !bytes_ok() => {
            format!("only divisor's values {bytes_units} are supported with the hugepages resource")
        }
        _ => return Vec::new(),
    };
    vec![FieldError::invalid(
        &path.child("divisor"),
        resource,
        &detail,
    )]
}

/// validateProjectedVolumeSource
pub fn projected(source: &ProjectedVolumeSource, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = mode(source.default_mode, &path.child("defaultMode"));
    let mut all_paths: HashSet<String> = HashSet::new();
    let mut claim = |file_path: &str, bad_value: &str, errs: &mut Vec<FieldError>| {
        if !file_path.is_empty() && !all_paths.insert(file_path.to_string()) {
            errs.push(FieldError::invalid(
                path,
                bad_value,
                "conflicting duplicate paths",
            ));
        }
    };
    for (i, source) in source.sources.iter().flatten().enumerate() {
        let src_path = path.child("sources").index(i);
        let mut kinds = 0;
        if let Some(secret) = &source.secret {
            kinds += 1;
            let p = src_path.child("secret");
            errs.extend(name_required(&secret.name, &p.child("name")));
            for (j, item) in secret.items.iter().flatten().enumerate() {
                errs.extend(key_to_path(item, &p.child("items").index(j)));
                claim(&item.path, &secret.name, &mut errs);
            }
        }
        if let Some(config_map) = &source.config_map {
            kinds += 1;
            let p = src_path.child("configMap");
            errs.extend(name_required(&config_map.name, &p.child("name")));
            for (j, item) in config_map.items.iter().flatten().enumerate() {
                errs.extend(key_to_path(item, &p.child("items").index(j)));
                claim(&item.path, &config_map.name, &mut errs);
            }
        }
        if let Some(downward) = &source.downward_api {
            kinds += 1;
            for file in downward.items.iter().flatten() {
                errs.extend(downward_file(file, &src_path.child("downwardAPI")));
                claim(&file.path, &file.path, &mut errs);
            }
        }
        if let Some(token) = &source.service_account_token {
            kinds += 1;
            errs.extend(token_projection(
                token,
                &src_path.child("serviceAccountToken"),
                path,
            ));
        }
        if let Some(bundle) = &source.cluster_trust_bundle {
            kinds += 1;
            let p = src_path.child("clusterTrustBundlePEM");
            errs.extend(name_required(&bundle.path, &p.child("path")));
            errs.extend(local_non_reserved_path(&bundle.path, &p.child("path")));
            claim(&bundle.path, &bundle.path, &mut errs);
        }
        if kinds > 1 {
            errs.push(FieldError::forbidden(
                &src_path,
                "may not specify more than 1 volume type",
            ));
        }
    }
    errs
}

/// The serviceAccountToken source: kube reports its path at the volume's `path`.
fn token_projection(
    token: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
    token_path: &FieldPath,
    volume_path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let expiration = token.expiration_seconds.unwrap_or(3600);
    let field = token_path.child("expirationSeconds");
    if expiration < 10 * 60 {
        errs.push(FieldError::invalid(
            &field,
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > 1 << 32 {
        errs.push(FieldError::invalid(
            &field,
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if token.path.is_empty() {
        errs.push(FieldError::required(&volume_path.child("path"), ""));
    } else {
        errs.extend(local_non_reserved_path(
            &token.path,
            &volume_path.child("path"),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Volume;
    use serde_json::json;

    use super::super::volume::validate_volumes;
    use super::*;

    fn errors(volumes: serde_json::Value) -> Vec<String> {
        let volumes: Vec<Volume> = serde_json::from_value(volumes).unwrap();
        let (_, errs) = validate_volumes(&volumes, &FieldPath::new("spec").child("volumes"));
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn item_paths_must_be_local_and_unreserved() {
        let errs = errors(json!([
            {"name": "a", "configMap": {"name": "c", "items": [
                {"key": "k", "path": "../x"}, {"key": "k", "path": "/abs"},
                {"key": "k", "path": "..data"}, {"key": "", "path": ".."}, {"key": "k", "path": "ok/..a"}
            ]}},
            {"name": "b", "secret": {"items": [{"key": "k", "path": "p", "mode": 512}]}}
        ]));
        assert_eq!(
            errs,
            vec![
                r#"spec.volumes[0].configMap.items[0].path: Invalid value: "../x": must not contain '..'"#,
                r#"spec.volumes[0].configMap.items[1].path: Invalid value: "/abs": must be a relative path"#,
                r#"spec.volumes[0].configMap.items[2].path: Invalid value: "..data": must not start with '..'"#,
                "spec.volumes[0].configMap.items[3].key: Required value",
                r#"spec.volumes[0].configMap.items[3].path: Invalid value: "..": must not contain '..'"#,
                r#"spec.volumes[0].configMap.items[3].path: Invalid value: "..": must not start with '..'"#,
                "spec.volumes[1].secret.secretName: Required value",
                "spec.volumes[1].secret.items[0].mode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive",
            ]
        );
    }

    #[test]
    fn default_modes_are_bounded() {
        let errs = errors(json!([
            {"name": "a", "configMap": {"name": "c", "defaultMode": -1}},
            {"name": "b", "downwardAPI": {"defaultMode": 0o1000}},
            {"name": "c", "projected": {"defaultMode": 0o777, "sources": []}}
        ]));
        assert_eq!(
            errs,
            vec![
                "spec.volumes[0].configMap.defaultMode: Invalid value: -1: must be a number between 0 and 0777 (octal), both inclusive",
                "spec.volumes[1].downwardAPI.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive",
            ]
        );
    }

    #[test]
    fn downward_items_are_checked_at_the_source_path() {
        let errs = errors(json!([{"name": "a", "downwardAPI": {"items": [
            {"path": "n", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
            {"path": "h", "fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}},
            {"path": "x", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['a b']"}},
            {"path": "r", "resourceFieldRef": {"resource": "limits.cpu"}},
            {"path": "d", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "2"}},
            {"path": "none"}
        ]}}]));
        assert_eq!(
            errs[0],
            r#"spec.volumes[0].downwardAPI.fieldRef.fieldPath: Unsupported value: "spec.nodeName": supported values: "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid""#
        );
        assert!(errs[1].starts_with(r#"spec.volumes[0].downwardAPI.fieldRef: Invalid value: "a b": name part must consist of"#), "{errs:?}");
        assert_eq!(
            errs[2],
            "spec.volumes[0].downwardAPI.resourceFieldRef.containerName: Required value"
        );
        assert_eq!(
            errs[3],
            r#"spec.volumes[0].downwardAPI.resourceFieldRef.divisor: Invalid value: "limits.cpu": only divisor's values 1m and 1 are supported with the cpu resource"#
        );
        assert_eq!(errs[4], "spec.volumes[0].downwardAPI: Required value: one of fieldRef and resourceFieldRef is required");
        assert_eq!(errs.len(), 5);
    }

    #[test]
    fn projected_paths_may_not_collide() {
        let errs = errors(json!([{"name": "a", "projected": {"sources": [
            {"configMap": {"name": "c", "items": [{"key": "k", "path": "same"}]}},
            {"secret": {"name": "s", "items": [{"key": "k", "path": "same"}]},
             "configMap": {"name": "c2"}},
            {"downwardAPI": {"items": [{"path": "same", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}]}},
            {"serviceAccountToken": {"path": "../token", "expirationSeconds": 60}}
        ]}}]));
        assert_eq!(
            errs,
            vec![
                r#"spec.volumes[0].projected: Invalid value: "s": conflicting duplicate paths"#,
                "spec.volumes[0].projected.sources[1]: Forbidden: may not specify more than 1 volume type",
                r#"spec.volumes[0].projected: Invalid value: "same": conflicting duplicate paths"#,
                "spec.volumes[0].projected.sources[3].serviceAccountToken.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes",
                r#"spec.volumes[0].projected.path: Invalid value: "../token": must not contain '..'"#,
            ]
        );
    }
}
