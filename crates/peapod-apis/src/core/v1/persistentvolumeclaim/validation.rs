//! kube's `ValidatePersistentVolumeClaim` and `ValidatePersistentVolumeClaimUpdate`.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};
use peapod_api::label_selector::validate_label_selector;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;

use crate::core::v1::volume_claims::{
    storage_of, validate_access_modes, validate_class_name, validate_positive_quantity,
    validate_volume_mode, BETA_STORAGE_CLASS_ANNOTATION, STORAGE,
};

const IMMUTABLE_SPEC: &str =
    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

pub fn validate(pvc: &PersistentVolumeClaim) -> Vec<FieldError> {
    let mut errors = validate_meta(pvc, true);
    let spec = pvc.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, &FieldPath::new("spec")));
    errors
}

/// ValidatePersistentVolumeClaimSpec; the storage request's path is kube's
/// `spec.resources[storage]`.
fn validate_spec(spec: &PersistentVolumeClaimSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        errors.push(FieldError::required(
            &path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(selector) = &spec.selector {
        errors.extend(validate_label_selector(selector, &path.child("selector")));
    }
    errors.extend(validate_access_modes(modes, &path.child("accessModes")));
    let storage_path = path.child("resources").key(STORAGE);
    let requests = spec.resources.as_ref().and_then(|r| r.requests.as_ref());
    match requests.and_then(|r| r.get(STORAGE)) {
        None => errors.push(FieldError::required(&storage_path, "")),
        Some(quantity) => errors.extend(validate_positive_quantity(&quantity.0, &storage_path)),
    }
    let class = spec.storage_class_name.as_deref().unwrap_or_default();
    errors.extend(validate_class_name(class, &path.child("storageClassName")));
    errors.extend(validate_volume_mode(
        spec.volume_mode.as_deref(),
        &path.child("volumeMode"),
    ));
    errors
}

/// The spec is immutable but for the binder setting volumeName once, a class given to a claim
/// without one (kube's retroactive default class) and, once bound, the storage request, which
/// may not shrink.
pub fn validate_update(
    new: &PersistentVolumeClaim,
    old: &PersistentVolumeClaim,
) -> Vec<FieldError> {
    let mut errors =
        validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
    errors.extend(validate(new));
    let mut new_spec = new.spec.clone().unwrap_or_default();
    let mut old_spec = old.spec.clone().unwrap_or_default();
    if old_spec
        .volume_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        old_spec.volume_name = new_spec.volume_name.clone();
    }
    if class_set_from_nil(old, &old_spec, &new_spec) {
        old_spec.storage_class_name = new_spec.storage_class_name.clone();
    }
    let bound = new.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if bound {
        let old_request = old_spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(STORAGE))
            .cloned();
        if let (Some(requests), Some(request)) = (
            new_spec
                .resources
                .as_mut()
                .and_then(|r| r.requests.as_mut()),
            old_request,
        ) {
            requests.insert(STORAGE.to_owned(), request);
        }
    }
    if new_spec != old_spec {
        errors.push(FieldError::forbidden(
            &FieldPath::new("spec"),
            IMMUTABLE_SPEC,
        ));
    }
    let requested = |pvc: &PersistentVolumeClaim| {
        storage_of(pvc.spec.as_ref()?.resources.as_ref()?.requests.as_ref())
    };
    if let (Some(new_size), Some(old_size)) = (requested(new), requested(old)) {
        if new_size < old_size {
            let path = FieldPath::new("spec")
                .child("resources")
                .child("requests")
                .child(STORAGE);
            errors.push(FieldError::forbidden(
                &path,
                "field can not be less than previous value",
            ));
        }
    }
    errors
}

/// validateStorageClassUpgradeFromNil: a claim that had no class, by field or annotation, may
/// be given one.
fn class_set_from_nil(
    old: &PersistentVolumeClaim,
    old_spec: &PersistentVolumeClaimSpec,
    new_spec: &PersistentVolumeClaimSpec,
) -> bool {
    let annotated = old
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(BETA_STORAGE_CLASS_ANNOTATION));
    !annotated
        && old_spec.storage_class_name.is_none()
        && new_spec
            .storage_class_name
            .as_deref()
            .is_some_and(|c| !c.is_empty())
}

/// kube's `TestValidatePersistentVolumeClaim` and `...Update`, the cases that apply.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pvc(spec: serde_json::Value, phase: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "foo", "namespace": "ns"},
            "spec": spec,
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    fn claim(size: &str) -> serde_json::Value {
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}})
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn claims_are_validated_with_kubes_messages() {
        assert!(validate(&pvc(claim("10G"), "Pending")).is_empty());
        let cases = [
            (
                json!({"resources": {"requests": {"storage": "10G"}}}),
                vec!["spec.accessModes: Required value: at least 1 access mode is required"],
            ),
            (
                json!({"accessModes": ["ReadWriteOnce"]}),
                vec!["spec.resources[storage]: Required value"],
            ),
            (
                claim("0"),
                vec!["spec.resources[storage]: Invalid value: \"0\": must be greater than zero"],
            ),
            (
                json!({"accessModes": ["ReadWriteOnce"], "volumeMode": "Disk",
                    "resources": {"requests": {"storage": "1Gi"}}}),
                vec!["spec.volumeMode: Unsupported value: \"Disk\": supported values: \"Block\", \"Filesystem\""],
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(
                messages(validate(&pvc(spec.clone(), "Pending"))),
                expected,
                "{spec}"
            );
        }
    }

    #[test]
    fn updates_allow_binding_a_class_and_growth_once_bound() {
        let old = pvc(claim("1Gi"), "Pending");
        let mut named = old.clone();
        named.spec.as_mut().unwrap().volume_name = Some("pv-1".into());
        named.spec.as_mut().unwrap().storage_class_name = Some("local-path".into());
        assert!(validate_update(&named, &old).is_empty());

        let grown = pvc(claim("2Gi"), "Pending");
        assert_eq!(
            messages(validate_update(&grown, &old)),
            ["spec: Forbidden: ".to_owned() + IMMUTABLE_SPEC]
        );
        let bound = pvc(claim("1Gi"), "Bound");
        let grown_bound = pvc(claim("2Gi"), "Bound");
        assert!(validate_update(&grown_bound, &bound).is_empty());
        assert_eq!(
            messages(validate_update(&bound, &grown_bound)),
            ["spec.resources.requests.storage: Forbidden: field can not be less than previous value"]
        );
        let mut renamed = named.clone();
        renamed.spec.as_mut().unwrap().volume_name = Some("pv-2".into());
        assert_eq!(
            messages(validate_update(&renamed, &named)),
            ["spec: Forbidden: ".to_owned() + IMMUTABLE_SPEC]
        );
    }
}
