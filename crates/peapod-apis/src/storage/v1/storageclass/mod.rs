//! storage.k8s.io/v1 StorageClass: cluster-scoped, reclaim policy Delete and binding mode
//! Immediate by default, validated as kube's `ValidateStorageClass` (a qualified provisioner
//! name, bounded parameters, known policy and mode), provisioner, parameters, reclaim policy
//! and binding mode immutable, printed as kubectl prints classes with the `(default)` marker.

use std::collections::BTreeMap;

use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{names, FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, Column, AGE, NAME};
use serde_json::{json, Value};

pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";
pub const IMMEDIATE: &str = "Immediate";
pub const WAIT_FOR_FIRST_CONSUMER: &str = "WaitForFirstConsumer";
const BINDING_MODES: &[&str] = &[IMMEDIATE, WAIT_FOR_FIRST_CONSUMER];
const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;

pub fn kind() -> Kind {
    Kind::of(StorageClassStrategy).short_names(&["sc"])
}

/// kube's `IsDefaultAnnotation`: either annotation says "true".
pub fn is_default_class(meta: &ObjectMeta) -> bool {
    let annotations = meta.annotations.as_ref();
    [DEFAULT_CLASS_ANNOTATION, BETA_DEFAULT_CLASS_ANNOTATION]
        .iter()
        .any(|key| annotations.and_then(|a| a.get(*key)).map(String::as_str) == Some("true"))
}

pub struct StorageClassStrategy;

impl KindStrategy for StorageClassStrategy {
    type Object = StorageClass;

    /// storage/v1's SetDefaults_StorageClass.
    fn default(&self, class: &mut StorageClass) {
        class
            .reclaim_policy
            .get_or_insert_with(|| "Delete".to_owned());
        class
            .volume_binding_mode
            .get_or_insert_with(|| IMMEDIATE.to_owned());
    }

    fn validate(&self, class: &StorageClass) -> Vec<FieldError> {
        let mut errors = validate_meta(class, false);
        errors.extend(validate_provisioner(&class.provisioner));
        errors.extend(validate_parameters(class.parameters.as_ref()));
        if let Some(policy) = class.reclaim_policy.as_deref().filter(|p| !p.is_empty()) {
            if !RECLAIM_POLICIES.contains(&policy) {
                let path = FieldPath::new("reclaimPolicy");
                errors.push(FieldError::not_supported(&path, policy, RECLAIM_POLICIES));
            }
        }
        let mode_path = FieldPath::new("volumeBindingMode");
        match class.volume_binding_mode.as_deref() {
            None => errors.push(FieldError::required(&mode_path, "")),
            Some(mode) if !BINDING_MODES.contains(&mode) => {
                errors.push(FieldError::not_supported(&mode_path, mode, BINDING_MODES));
            }
            Some(_) => {}
        }
        errors
    }

    /// kube's `ValidateStorageClassUpdate`, then the new class.
    fn validate_update(&self, new: &StorageClass, old: &StorageClass) -> Vec<FieldError> {
        let mut errors =
            validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
        let forbidden = [
            ("parameters", new.parameters == old.parameters),
            ("provisioner", new.provisioner == old.provisioner),
            ("reclaimPolicy", new.reclaim_policy == old.reclaim_policy),
        ];
        for (field, unchanged) in forbidden {
            if !unchanged {
                let detail = format!("updates to {field} are forbidden.");
                errors.push(FieldError::forbidden(&FieldPath::new(field), &detail));
            }
        }
        if new.volume_binding_mode != old.volume_binding_mode {
            errors.push(FieldError::invalid(
                &FieldPath::new("volumeBindingMode"),
                new.volume_binding_mode.as_deref(),
                "field is immutable",
            ));
        }
        errors.extend(self.validate(new));
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Provisioner", "string", "provisioner indicates the type of the provisioner."),
            Column::new("ReclaimPolicy", "string", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete."),
            Column::new("VolumeBindingMode", "string", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature."),
            Column::new("AllowVolumeExpansion", "string", "allowVolumeExpansion shows whether the storage class allow volume expand."),
            AGE,
        ]
    }

    /// kubectl's printStorageClass.
    fn cells(&self, class: &StorageClass) -> Vec<Value> {
        let mut name = class.metadata.name.clone().unwrap_or_default();
        if is_default_class(&class.metadata) {
            name.push_str(" (default)");
        }
        vec![
            json!(name),
            json!(class.provisioner),
            json!(class.reclaim_policy.as_deref().unwrap_or("Delete")),
            json!(class.volume_binding_mode.as_deref().unwrap_or(IMMEDIATE)),
            json!(class.allow_volume_expansion.unwrap_or(false)),
            age_cell(&class.metadata),
        ]
    }
}

fn validate_provisioner(provisioner: &str) -> Vec<FieldError> {
    let path = FieldPath::new("provisioner");
    if provisioner.is_empty() {
        return vec![FieldError::required(&path, "")];
    }
    let lower = provisioner.to_lowercase();
    names::qualified_name(&lower)
        .into_iter()
        .map(|msg| FieldError::invalid(&path, lower.as_str(), &msg))
        .collect()
}

fn validate_parameters(parameters: Option<&BTreeMap<String, String>>) -> Vec<FieldError> {
    let path = FieldPath::new("parameters");
    let parameters = parameters.cloned().unwrap_or_default();
    let mut errors = Vec::new();
    if parameters.len() > MAX_PARAMETERS {
        errors.push(FieldError::too_many(
            &path,
            parameters.len(),
            MAX_PARAMETERS,
        ));
    }
    for key in parameters.keys().filter(|k| k.is_empty()) {
        errors.push(FieldError::invalid(&path, key, "field can not be empty."));
    }
    let size: usize = parameters.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_PARAMETERS_SIZE {
        errors.push(FieldError::too_long(&path, MAX_PARAMETERS_SIZE));
    }
    errors
}

/// kube's `TestValidateStorageClass` and `TestValidateStorageClassUpdate`, the cases that apply.
#[cfg(test)]
mod tests {
    use super::*;

    fn class(provisioner: &str, policy: Option<&str>, mode: Option<&str>) -> StorageClass {
        StorageClass {
            metadata: ObjectMeta {
                name: Some("foo".into()),
                ..ObjectMeta::default()
            },
            provisioner: provisioner.into(),
            reclaim_policy: policy.map(Into::into),
            volume_binding_mode: mode.map(Into::into),
            ..StorageClass::default()
        }
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn classes_are_defaulted_and_validated() {
        let mut defaulted = class("kubernetes.io/foo-provisioner", None, None);
        StorageClassStrategy.default(&mut defaulted);
        assert_eq!(defaulted.reclaim_policy.as_deref(), Some("Delete"));
        assert!(StorageClassStrategy.validate(&defaulted).is_empty());
        assert_eq!(
            messages(StorageClassStrategy.validate(&class("", Some("Retain"), Some(IMMEDIATE)))),
            ["provisioner: Required value"]
        );
        assert_eq!(
            messages(StorageClassStrategy.validate(&class("p", Some("Recycle"), Some("Later")))),
            [
                r#"reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain""#,
                r#"volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer""#,
            ]
        );
        assert_eq!(
            messages(StorageClassStrategy.validate(&class("p", None, None))),
            ["volumeBindingMode: Required value"]
        );
    }

    #[test]
    fn provisioner_policy_and_mode_are_immutable() {
        let old = class("p", Some("Delete"), Some(IMMEDIATE));
        let new = class("q", Some("Retain"), Some(WAIT_FOR_FIRST_CONSUMER));
        assert_eq!(
            messages(StorageClassStrategy.validate_update(&new, &old)),
            [
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
                r#"volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable"#,
            ]
        );
    }

    #[test]
    fn the_default_class_is_marked() {
        let mut default = class("p", Some("Delete"), Some(IMMEDIATE));
        default.metadata.annotations = Some(BTreeMap::from([(
            DEFAULT_CLASS_ANNOTATION.into(),
            "true".into(),
        )]));
        assert_eq!(
            StorageClassStrategy.cells(&default)[0],
            json!("foo (default)")
        );
    }
}
