//! Rules ConfigMap and Secret share: data keys, the size limit and immutability.

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

/// kube's rule for an object whose old version is immutable: it stays immutable
/// (`immutable`) and each of `fields` (name, unchanged) keeps its content.
pub fn check_immutable(
    old: Option<bool>,
    new: Option<bool>,
    fields: &[(&str, bool)],
) -> Vec<FieldError> {
    if old != Some(true) {
        return Vec::new();
    }
    let forbidden = |field: &str| FieldError::forbidden(&FieldPath::new(field), IMMUTABLE);
    let mut errors = Vec::new();
    if new != Some(true) {
        errors.push(forbidden("immutable"));
    }
    for (field, unchanged) in fields {
        if !unchanged {
            errors.push(forbidden(field));
        }
    }
    errors
}

const IMMUTABLE: &str = "field is immutable when `immutable` is set";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_as_is_config_map_key() {
        for good in [
            "a", "key.name", "KEY_NAME", "key-name", ".dot", "a..b", "_", "-",
        ] {
            assert!(key_errors(good).is_empty(), "{good}");
        }
        let regex = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
        assert_eq!(key_errors("a b"), [regex]);
        assert_eq!(key_errors(""), [regex]);
        assert_eq!(key_errors("."), ["must not be '.'"]);
        assert_eq!(key_errors(".."), ["must not be '..'"]);
        assert_eq!(key_errors("..a"), ["must not start with '..'"]);
        assert_eq!(key_errors("../a"), [regex, "must not start with '..'"]);
        let long = "a".repeat(254);
        assert_eq!(key_errors(&long), ["must be no more than 253 characters"]);
        assert!(key_errors(&"a".repeat(253)).is_empty());
    }

    #[test]
    fn an_immutable_object_keeps_its_data_and_its_immutability() {
        assert!(check_immutable(None, None, &[("data", false)]).is_empty());
        assert!(check_immutable(Some(false), Some(true), &[("data", false)]).is_empty());
        assert!(check_immutable(Some(true), Some(true), &[("data", true)]).is_empty());
        let messages = |errors: Vec<FieldError>| -> Vec<String> {
            errors.iter().map(ToString::to_string).collect()
        };
        assert_eq!(
            messages(check_immutable(
                Some(true),
                Some(false),
                &[("data", false), ("binaryData", false)]
            )),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
                "binaryData: Forbidden: field is immutable when `immutable` is set",
            ]
        );
        assert_eq!(
            messages(check_immutable(Some(true), None, &[("data", true)])),
            ["immutable: Forbidden: field is immutable when `immutable` is set"]
        );
    }
}
