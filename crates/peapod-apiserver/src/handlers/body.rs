//! Request bodies: read up to kube-apiserver's size limit and decoded by their content type,
//! keeping the keys given twice for field validation.

use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use http_body_util::{BodyExt, Limited};
use peapod_api::decode::{DuplicateField, Tracked};
use serde_json::Value;

use super::ApiResult;
use crate::negotiate::{self, Input};
use crate::status::ApiError;

/// kube-apiserver's limit on a request body (3 MiB).
pub const MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;

/// A decoded body: the value and the keys it gave twice.
pub struct Body {
    pub value: Value,
    pub duplicates: Vec<DuplicateField>,
}

/// The raw bytes of the body and its declared content type.
pub async fn read(request: Request) -> ApiResult<(Input, bytes::Bytes)> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let input = negotiate::input(content_type.as_deref())?;
    let bytes = Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|err| {
            if err.is::<http_body_util::LengthLimitError>() {
                ApiError::too_large(MAX_REQUEST_BYTES)
            } else {
                ApiError::bad_request(format!("reading the request body: {err}"))
            }
        })?
        .to_bytes();
    Ok((input, bytes))
}

/// Reads and decodes an object body (JSON or YAML).
pub async fn object(request: Request) -> ApiResult<Body> {
    let (input, bytes) = read(request).await?;
    decode(input, &bytes)
}

/// Decodes `bytes` given as `input`; patch bodies decode as JSON (apply patches as YAML).
pub fn decode(input: Input, bytes: &[u8]) -> ApiResult<Body> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    match input {
        Input::Json | Input::JsonPatch | Input::MergePatch | Input::StrategicMergePatch => {
            let tracked: Tracked = serde_json::from_slice(bytes).map_err(|err| {
                ApiError::bad_request(format!("the body of the request is not valid JSON: {err}"))
            })?;
            Ok(Body {
                value: tracked.value,
                duplicates: tracked.duplicates,
            })
        }
        Input::Yaml | Input::ApplyPatchYaml => yaml(bytes),
        Input::Protobuf => {
            let value = crate::protobuf::decode(bytes).map_err(|err| {
                ApiError::bad_request(format!("error decoding the protobuf body: {err}"))
            })?;
            Ok(Body {
                value,
                duplicates: Vec::new(),
            })
        }
        Input::ApplyPatchCbor => Err(ApiError::unsupported_media_type(
            negotiate_name(input),
            &["application/json", "application/yaml"],
        )),
    }
}

fn yaml(bytes: &[u8]) -> ApiResult<Body> {
    let mut documents = peapod_api::decode::decode_documents(bytes)
        .map_err(|err| ApiError::bad_request(format!("error decoding YAML: {err}")))?;
    if documents.len() != 1 {
        return Err(ApiError::bad_request(format!(
            "the body must hold exactly one object, it holds {}",
            documents.len()
        )));
    }
    let document = documents.remove(0);
    Ok(Body {
        value: document.value,
        duplicates: document.duplicates,
    })
}

fn negotiate_name(input: Input) -> &'static str {
    match input {
        Input::Protobuf => "application/vnd.kubernetes.protobuf",
        Input::ApplyPatchCbor => "application/apply-patch+cbor",
        _ => "application/json",
    }
}
