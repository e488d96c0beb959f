//! ConfigMap: keys checked as kube's `IsConfigMapKey`, a 1 MiB total, `immutable` honoured.

use k8s_openapi::api::core::v1::ConfigMap;
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
        let size: usize = data
            .into_iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + binary
                .into_iter()
                .flatten()
                .map(|(k, v)| k.len() + v.0.len())
                .sum::<usize>();
        if size > MAX_TOTAL_BYTES {
            errors.push(FieldError::too_long(&FieldPath::new(""), MAX_TOTAL_BYTES));
        }
        errors
    }

    fn validate_update(&self, new: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        let same = new.data == old.data && new.binary_data == old.binary_data;
        errors.extend(check_immutable(old.immutable, new.immutable, same));
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
