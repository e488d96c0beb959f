//! Rules ConfigMap and Secret share: data keys and immutability.

use peapod_api::validation::{FieldError, FieldPath};

/// The largest ConfigMap or Secret (1 MiB, kube's `MaxSecretSize`).
pub const MAX_TOTAL_BYTES: usize = 1024 * 1024;

/// kube's `IsConfigMapKey`: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`.
pub fn key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if key.len() > 253 {
        errors.push(peapod_api::validation::names::max_len_error(253));
    }
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        errors.push(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_owned(),
        );
    }
    match key {
        "." => errors.push("must not be '.'".to_owned()),
        ".." => errors.push("must not be '..'".to_owned()),
        k if k.starts_with("..") => errors.push("must not start with '..'".to_owned()),
        _ => {}
    }
    errors
}

pub fn check_keys<'a>(
    keys: Option<impl Iterator<Item = &'a String>>,
    path: &FieldPath,
) -> Vec<FieldError> {
    keys.into_iter()
        .flatten()
        .flat_map(|key| {
            key_errors(key)
                .into_iter()
                .map(move |msg| FieldError::invalid(&path.key(key), key.as_str(), &msg))
        })
        .collect()
}

/// An immutable object keeps its data and stays immutable.
pub fn check_immutable(old: Option<bool>, new: Option<bool>, same_data: bool) -> Vec<FieldError> {
    if old != Some(true) {
        return Vec::new();
    }
    let mut errors = Vec::new();
    if new != Some(true) {
        errors.push(FieldError::forbidden(
            &FieldPath::new(""),
            "field is immutable when `immutable` is set",
        ));
    }
    if !same_data {
        errors.push(FieldError::forbidden(
            &FieldPath::new("data"),
            "field is immutable when `immutable` is set",
        ));
    }
    errors
}
