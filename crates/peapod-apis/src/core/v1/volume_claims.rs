//! What PersistentVolumes and PersistentVolumeClaims validate and print alike: access modes,
//! class names, volume modes and storage quantities, as kube's core validation and printers.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use peapod_api::quantity::{Quantity, QUANTITY_FORMAT_ERROR};
use peapod_api::validation::{names, FieldError, FieldPath};

pub const READ_WRITE_ONCE: &str = "ReadWriteOnce";
pub const READ_ONLY_MANY: &str = "ReadOnlyMany";
pub const READ_WRITE_MANY: &str = "ReadWriteMany";
pub const READ_WRITE_ONCE_POD: &str = "ReadWriteOncePod";
/// kube's `supportedAccessModes`, sorted as `sets.List` gives them.
pub const ACCESS_MODES: &[&str] = &[
    READ_ONLY_MANY,
    READ_WRITE_MANY,
    READ_WRITE_ONCE,
    READ_WRITE_ONCE_POD,
];
pub const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
pub const FILESYSTEM: &str = "Filesystem";
pub const STORAGE: &str = "storage";
/// The annotation that picked a class before `storageClassName` existed.
pub const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// The access mode checks of `ValidatePersistentVolumeSpec` and `ValidatePersistentVolumeClaimSpec`
/// after the emptiness check: each mode supported, ReadWriteOncePod alone.
pub fn validate_access_modes(modes: &[String], path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let (mut once_pod, mut others) = (false, false);
    for mode in modes {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            errors.push(FieldError::not_supported(path, mode, ACCESS_MODES));
        } else if mode == READ_WRITE_ONCE_POD {
            once_pod = true;
        } else {
            others = true;
        }
    }
    if once_pod && others {
        errors.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errors
}

/// `ValidateClassName` (a DNS-1123 subdomain) of a non-empty class name.
pub fn validate_class_name(class: &str, path: &FieldPath) -> Vec<FieldError> {
    if class.is_empty() {
        return Vec::new();
    }
    names::dns1123_subdomain(class)
        .into_iter()
        .map(|msg| FieldError::invalid(path, class, &msg))
        .collect()
}

pub fn validate_volume_mode(mode: Option<&str>, path: &FieldPath) -> Vec<FieldError> {
    match mode {
        Some(mode) if !VOLUME_MODES.contains(&mode) => {
            vec![FieldError::not_supported(path, mode, VOLUME_MODES)]
        }
        _ => Vec::new(),
    }
}

/// `ValidatePositiveQuantityValue` after the format check.
pub fn validate_positive_quantity(value: &str, path: &FieldPath) -> Vec<FieldError> {
    match value.parse::<Quantity>() {
        Err(_) => vec![FieldError::invalid(path, value, QUANTITY_FORMAT_ERROR)],
        Ok(q) if q.is_negative() || q.is_zero() => {
            vec![FieldError::invalid(
                path,
                value,
                "must be greater than zero",
            )]
        }
        Ok(_) => Vec::new(),
    }
}

/// The storage amount of a capacity or request list, parsed.
pub fn storage_of(list: Option<&BTreeMap<String, K8sQuantity>>) -> Option<Quantity> {
    list?.get(STORAGE)?.0.parse().ok()
}

/// kube's `GetAccessModesAsString`: the short names in a fixed order, each once.
pub fn access_modes_string(modes: &[String]) -> String {
    [
        (READ_WRITE_ONCE, "RWO"),
        (READ_ONLY_MANY, "ROX"),
        (READ_WRITE_MANY, "RWX"),
        (READ_WRITE_ONCE_POD, "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(list: &[&str]) -> Vec<String> {
        list.iter().map(|m| m.to_string()).collect()
    }

    #[test]
    fn access_modes_are_checked_and_printed() {
        let path = FieldPath::new("spec").child("accessModes");
        assert!(
            validate_access_modes(&modes(&["ReadWriteOnce", "ReadOnlyMany"]), &path).is_empty()
        );
        let errors: Vec<String> = validate_access_modes(
            &modes(&["ReadWriteOncePod", "ReadWriteOnce", "Fake"]),
            &path,
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            errors,
            [
                r#"spec.accessModes: Unsupported value: "Fake": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod""#,
                "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
            ]
        );
        assert_eq!(
            access_modes_string(&modes(&["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"])),
            "RWO,RWX"
        );
    }

    #[test]
    fn quantities_must_be_positive() {
        let path = FieldPath::new("spec").child("capacity").key("storage");
        assert!(validate_positive_quantity("10Gi", &path).is_empty());
        assert_eq!(
            validate_positive_quantity("0", &path)[0].to_string(),
            r#"spec.capacity[storage]: Invalid value: "0": must be greater than zero"#
        );
    }
}
