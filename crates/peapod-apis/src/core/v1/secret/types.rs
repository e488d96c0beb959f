//! What each built-in Secret type requires, as kube's `ValidateSecret` checks it. Other types
//! (Opaque, `bootstrap.kubernetes.io/token`, anything user-defined) require nothing.

use k8s_openapi::api::core::v1::Secret;
use peapod_api::validation::{FieldError, FieldPath};

use super::go_json::unmarshal_into_map_error;

pub const SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";
pub const SERVICE_ACCOUNT_NAME_KEY: &str = "kubernetes.io/service-account.name";
pub const DOCKERCFG: &str = "kubernetes.io/dockercfg";
pub const DOCKERCFG_KEY: &str = ".dockercfg";
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
pub const SSH_AUTH: &str = "kubernetes.io/ssh-auth";
pub const TLS: &str = "kubernetes.io/tls";

/// The value kube prints in place of a secret's content.
const REDACTED: &str = "<secret contents redacted>";

/// The errors of `secret`'s type-specific rules.
pub fn type_errors(secret: &Secret) -> Vec<FieldError> {
    let data_path = FieldPath::new("data");
    let value = |key: &str| secret.data.as_ref().and_then(|d| d.get(key)).map(|v| &v.0);
    let required = |key: &str| FieldError::required(&data_path.key(key), "");
    match secret.type_.as_deref().unwrap_or_default() {
        SERVICE_ACCOUNT_TOKEN => {
            let annotations = secret.metadata.annotations.as_ref();
            let named = annotations
                .and_then(|a| a.get(SERVICE_ACCOUNT_NAME_KEY))
                .is_some_and(|name| !name.is_empty());
            if named {
                return Vec::new();
            }
            let path = FieldPath::new("metadata")
                .child("annotations")
                .key(SERVICE_ACCOUNT_NAME_KEY);
            vec![FieldError::required(&path, "")]
        }
        kind @ (DOCKERCFG | DOCKER_CONFIG_JSON) => {
            let key = if kind == DOCKERCFG {
                DOCKERCFG_KEY
            } else {
                DOCKER_CONFIG_JSON_KEY
            };
            match value(key) {
                None => vec![required(key)],
                Some(content) => unmarshal_into_map_error(content)
                    .map(|err| FieldError::invalid(&data_path.key(key), REDACTED, &err))
                    .into_iter()
                    .collect(),
            }
        }
        // Either may be empty, but one of them must be there.
        BASIC_AUTH if value("username").is_none() && value("password").is_none() => {
            vec![required("username"), required("password")]
        }
        SSH_AUTH if value("ssh-privatekey").is_none_or(Vec::is_empty) => {
            vec![required("ssh-privatekey")]
        }
        TLS => ["tls.crt", "tls.key"]
            .into_iter()
            .filter(|key| value(key).is_none())
            .map(required)
            .collect(),
        _ => Vec::new(),
    }
}
