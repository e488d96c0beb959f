//! Secret: type defaulted to Opaque and immutable afterwards, keys as ConfigMap's, `stringData`
//! folded into `data` as kube-apiserver does, each built-in type's required keys
//! ([`types`]), `immutable` honoured.

mod go_json;
#[cfg(test)]
mod tests;
mod types;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use super::data::{check_immutable, check_keys, MAX_TOTAL_BYTES};

pub fn kind() -> Kind {
    Kind::of(SecretStrategy)
}

pub struct SecretStrategy;

impl KindStrategy for SecretStrategy {
    type Object = Secret;

    fn default(&self, secret: &mut Secret) {
        if secret.type_.as_deref().is_none_or(str::is_empty) {
            secret.type_ = Some("Opaque".into());
        }
        if let Some(strings) = secret.string_data.take() {
            let data = secret.data.get_or_insert_with(Default::default);
            for (key, value) in strings {
                data.insert(key, ByteString(value.into_bytes()));
            }
        }
    }

    /// kube's `ValidateSecret`: metadata, keys, the 1 MiB of values, then what the type
    /// requires.
    fn validate(&self, secret: &Secret) -> Vec<FieldError> {
        let mut errors = validate_meta(secret, true);
        let data = secret.data.as_ref();
        errors.extend(check_keys(data.map(|d| d.keys()), &FieldPath::new("data")));
        let size: usize = data.into_iter().flatten().map(|(_, v)| v.0.len()).sum();
        if size > MAX_TOTAL_BYTES {
            errors.push(FieldError::too_long(
                &FieldPath::new("data"),
                MAX_TOTAL_BYTES,
            ));
        }
        errors.extend(types::type_errors(secret));
        errors
    }

    /// kube's `ValidateSecretUpdate`: metadata, the type, immutability, then the new object.
    fn validate_update(&self, new: &Secret, old: &Secret) -> Vec<FieldError> {
        let mut errors =
            validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
        if new.type_ != old.type_ {
            let value = new.type_.clone().unwrap_or_default();
            errors.push(FieldError::invalid(
                &FieldPath::new("type"),
                value,
                "field is immutable",
            ));
        }
        let unchanged = [("data", new.data == old.data)];
        errors.extend(check_immutable(old.immutable, new.immutable, &unchanged));
        errors.extend(self.validate(new));
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Type", "string", "The type of the secret"),
            Column::new("Data", "string", "The number of entries in the secret"),
            AGE,
        ]
    }

    fn cells(&self, secret: &Secret) -> Vec<Value> {
        let count = secret.data.as_ref().map_or(0, |d| d.len());
        vec![
            name_cell(&secret.metadata),
            json!(secret.type_.clone().unwrap_or_default()),
            json!(count),
            age_cell(&secret.metadata),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["type"]
    }

    fn field(&self, secret: &Secret, label: &str) -> Option<String> {
        (label == "type").then(|| secret.type_.clone().unwrap_or_default())
    }
}
