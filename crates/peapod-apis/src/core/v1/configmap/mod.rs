//! ConfigMap: keys checked as kube's `IsConfigMapKey`, a 1 MiB total, `immutable` honoured.

use k8s_openapi::api::core::v1::ConfigMap;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use super::data::{check_immutable, check_keys, MAX_TOTAL_BYTES};

pub fn kind() -> Kind {
    Kind::of(ConfigMapStrategy).short_names(&["cm"])
}

pub struct ConfigMapStrategy;

impl KindStrategy for ConfigMapStrategy {
    type Object = ConfigMap;

    fn validate(&self, config_map: &ConfigMap) -> Vec<FieldError> {
        let mut errors = validate_meta(config_map, true);
        let data = config_map.data.as_ref();
        let binary = config_map.binary_data.as_ref();
        errors.extend(check_keys(data.map(|d| d.keys()), &FieldPath::new("data")));
        errors.extend(check_keys(
            binary.map(|d| d.keys()),
            &FieldPath::new("binaryData"),
        ));
        for key in data.into_iter().flat_map(|d| d.keys()) {
            if binary.is_some_and(|b| b.contains_key(key)) {
                let path = FieldPath::new("data").key(key);
                errors.push(FieldError::invalid(
                    &path,
                    key.as_str(),
                    "duplicate of key present in binaryData",
                ));
            }
        }
        // kube counts the values only, keys aside.
        let size: usize = data
            .into_iter()
            .flatten()
            .map(|(_, v)| v.len())
            .sum::<usize>()
            + binary
                .into_iter()
                .flatten()
                .map(|(_, v)| v.0.len())
                .sum::<usize>();
        if size > MAX_TOTAL_BYTES {
            // kube's `field.NewPath("")`: the whole object, printed `[]`.
            errors.push(FieldError::too_long(&FieldPath::new("[]"), MAX_TOTAL_BYTES));
        }
        errors
    }

    /// kube's `ValidateConfigMapUpdate`: metadata, immutability, then the new object.
    fn validate_update(&self, new: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
        let mut errors =
            validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
        let unchanged = [
            ("data", new.data == old.data),
            ("binaryData", new.binary_data == old.binary_data),
        ];
        errors.extend(check_immutable(old.immutable, new.immutable, &unchanged));
        errors.extend(self.validate(new));
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Data", "string", "Number of data entries"),
            AGE,
        ]
    }

    fn cells(&self, config_map: &ConfigMap) -> Vec<Value> {
        let count = config_map.data.as_ref().map_or(0, |d| d.len())
            + config_map.binary_data.as_ref().map_or(0, |d| d.len());
        vec![
            name_cell(&config_map.metadata),
            json!(count),
            age_cell(&config_map.metadata),
        ]
    }
}

/// kube's `TestValidateConfigMap` and `TestValidateConfigMapUpdate`, ported.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::ByteString;

    use super::*;

    fn config_map(data: &[(&str, &str)], binary: &[(&str, &[u8])]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("validname".into()),
                namespace: Some("validns".into()),
                resource_version: Some("1".into()),
                ..ObjectMeta::default()
            },
            data: (!data.is_empty()).then(|| {
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            binary_data: (!binary.is_empty()).then(|| {
                binary
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect()
            }),
            ..ConfigMap::default()
        }
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn keys_names_and_size_are_checked() {
        let valid = config_map(
            &[("key", "value"), ("key.with.dots", "v")],
            &[("bin", b"x")],
        );
        assert!(ConfigMapStrategy.validate(&valid).is_empty());
        assert_eq!(
            messages(ConfigMapStrategy.validate(&config_map(&[("a..b", "v"), ("..", "v")], &[]))),
            [r#"data[..]: Invalid value: "..": must not be '..'"#]
        );
        assert_eq!(
            messages(ConfigMapStrategy.validate(&config_map(&[], &[("b*d", b"v")]))),
            [
                r#"binaryData[b*d]: Invalid value: "b*d": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#
            ]
        );
        assert_eq!(
            messages(ConfigMapStrategy.validate(&config_map(&[("same", "v")], &[("same", b"v")]))),
            [r#"data[same]: Invalid value: "same": duplicate of key present in binaryData"#]
        );
        let half = "x".repeat(512 * 1024);
        let at_limit = config_map(&[("a", &half)], &[("b", half.as_bytes())]);
        assert!(
            ConfigMapStrategy.validate(&at_limit).is_empty(),
            "keys do not count"
        );
        let over = config_map(&[("a", &half), ("c", "!")], &[("b", half.as_bytes())]);
        assert_eq!(
            messages(ConfigMapStrategy.validate(&over)),
            ["[]: Too long: may not be more than 1048576 bytes"]
        );
        let mut unnamed = valid.clone();
        unnamed.metadata.namespace = None;
        assert_eq!(
            messages(ConfigMapStrategy.validate(&unnamed)),
            ["metadata.namespace: Required value"]
        );
    }

    #[test]
    fn an_immutable_config_map_refuses_changes() {
        let old = config_map(&[("key", "value")], &[("bin", b"x")]);
        let changed = config_map(&[("key", "other")], &[("bin", b"y")]);
        assert!(ConfigMapStrategy.validate_update(&changed, &old).is_empty());
        let mut becomes_immutable = changed.clone();
        becomes_immutable.immutable = Some(true);
        assert!(ConfigMapStrategy
            .validate_update(&becomes_immutable, &old)
            .is_empty());

        let mut immutable = old.clone();
        immutable.immutable = Some(true);
        let mut labelled = immutable.clone();
        labelled.metadata.labels = Some(BTreeMap::from([("a".into(), "b".into())]));
        assert!(ConfigMapStrategy
            .validate_update(&labelled, &immutable)
            .is_empty());
        let mut flipped = changed.clone();
        flipped.immutable = Some(false);
        assert_eq!(
            messages(ConfigMapStrategy.validate_update(&flipped, &immutable)),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
                "binaryData: Forbidden: field is immutable when `immutable` is set",
            ]
        );
    }
}
