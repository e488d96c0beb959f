//! The patch types kube-apiserver accepts: JSON patch (RFC 6902), JSON merge patch (RFC 7386),
//! strategic merge patch (merge keys and list strategies per kind, [`strategic`]) and
//! server-side apply with the field management every write does ([`apply`]).

pub mod apply;
pub mod schema;
pub mod strategic;

use serde_json::Value;

use crate::negotiate::Input;
use crate::status::ApiError;

/// `original` with `patch` applied as `input` says; `kind` picks the strategic merge schema.
pub fn apply(input: Input, original: &Value, patch: &Value, kind: &str) -> Result<Value, ApiError> {
    match input {
        Input::JsonPatch => json_patch_apply(original, patch),
        Input::MergePatch => {
            let mut result = original.clone();
            json_patch::merge(&mut result, patch);
            Ok(result)
        }
        Input::StrategicMergePatch => {
            let schema = schema::BuiltinSchema::for_kind(kind);
            strategic::apply(original, patch, &schema)
                .map_err(|err| ApiError::bad_request(err.to_string()))
        }
        _ => Err(ApiError::unsupported_media_type("", &PATCH_TYPES)),
    }
}

/// The patch content types, as a 415 lists them.
pub const PATCH_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

fn json_patch_apply(original: &Value, patch: &Value) -> Result<Value, ApiError> {
    let operations: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|err| ApiError::bad_request(format!("invalid JSON patch: {err}")))?;
    let mut result = original.clone();
    json_patch::patch(&mut result, &operations).map_err(|err| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {err}"),
        )
    })?;
    Ok(result)
}
