//! Errors as kube-apiserver answers them: a `metav1.Status` with code, reason, message and
//! details (the resource, the name, and one cause per invalid field), so clients print exactly
//! what they print against a cluster.

pub use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use peapod_api::validation::{ErrorKind, FieldError, ValidationErrors};
use peapod_store::StoreError;
use serde_json::{json, Value};

/// A failed request, answered as a `Status`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// `metadata.continue` of the Status: where a list too old to go on consistently may go on
    /// at the latest revision.
    pub continue_token: Option<String>,
}

impl ApiError {
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            continue_token: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// 404 for a path that names no served resource.
    pub fn no_route() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// `pods "web" not found`, details naming the resource.
    pub fn not_found(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} {} not found", qualified(group, resource), quote(name)),
        )
        .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!(
                "{} {} already exists",
                qualified(group, resource),
                quote(name)
            ),
        )
        .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    /// `Operation cannot be fulfilled on pods "web": <why>`.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {}: {why}",
                qualified(group, resource),
                quote(name)
            ),
        )
        .with_details(json!({"name": name, "group": group, "kind": resource}))
    }

    /// 422 `Pod "web" is invalid: ...` with one cause per field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: Vec<FieldError>) -> ApiError {
        let causes: Vec<Value> = errors.iter().map(cause).collect();
        let message = ValidationErrors {
            kind: qualified(group, kind),
            name: name.to_owned(),
            errors,
        }
        .to_string();
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message).with_details(json!({
            "name": name, "group": group, "kind": kind, "causes": causes,
        }))
    }

    /// 405 for a method the resource's path has no route for, as kube-apiserver's router
    /// answers it (a GET on `selfsubjectreviews`).
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    /// 405 `<verb> is not supported on resources of kind "<resource>"`.
    pub fn method_not_supported(verb: &str, resource: &str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind {}",
                quote(resource)
            ),
        )
    }

    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
        .with_details(json!({"kind": content_type}))
    }

    pub fn not_acceptable(accepted: &[&str]) -> ApiError {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 410 Gone, for a watch or list from a compacted resourceVersion.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::GONE, "Expired", message)
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if self.reason.is_empty() {
            status.as_object_mut().map(|fields| fields.remove("reason"));
        }
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        if let Some(token) = &self.continue_token {
            status["metadata"]["continue"] = json!(token);
        }
        status
    }

    /// Maps a store error for a request on `group`/`resource`.
    pub fn from_store(err: StoreError, group: &str, resource: &str) -> ApiError {
        match &err {
            StoreError::NotFound { name, .. } => ApiError::not_found(group, resource, name),
            StoreError::AlreadyExists { name, .. } => {
                ApiError::already_exists(group, resource, name)
            }
            StoreError::Conflict { name, .. } => ApiError::conflict(
                group,
                resource,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ),
            _ => ApiError::from(err),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        let code = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if code == StatusCode::INTERNAL_SERVER_ERROR {
            format!("Internal error occurred: {err}")
        } else {
            err.to_string()
        };
        let mut api = ApiError::new(code, err.reason(), message);
        if let StoreError::ContinueExpired { continue_token } = err {
            api.continue_token = Some(continue_token);
        }
        api
    }
}

/// As kube's ErrorNegotiated, a status asking for a retry period says it in `Retry-After`
/// too (which client-go honours by retrying).
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self
            .details
            .as_ref()
            .and_then(|d| d["retryAfterSeconds"].as_u64())
            .filter(|seconds| *seconds > 0);
        let mut response = (self.code, axum::Json(self.status())).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// `pods`, or `deployments.apps`.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

fn quote(name: &str) -> String {
    peapod_api::validation::go_quote(name)
}

/// A `StatusCause` for one field error (its `type` is serialised as `reason`).
fn cause(error: &FieldError) -> Value {
    let reason = match error.kind {
        ErrorKind::Required => "FieldValueRequired",
        ErrorKind::Invalid => "FieldValueInvalid",
        ErrorKind::Duplicate => "FieldValueDuplicate",
        ErrorKind::NotFound => "FieldValueNotFound",
        ErrorKind::NotSupported => "FieldValueNotSupported",
        ErrorKind::Forbidden => "FieldValueForbidden",
        ErrorKind::TooLong => "FieldValueTooLong",
        ErrorKind::TooMany => "FieldValueTooMany",
    };
    let full = error.to_string();
    let message = full
        .strip_prefix(&format!("{}: ", error.path))
        .unwrap_or(&full);
    json!({"reason": reason, "message": message, "field": error.path})
}

#[cfg(test)]
mod tests {
    use peapod_api::validation::FieldPath;

    use super::*;

    #[test]
    fn a_retry_period_is_also_a_retry_after_header_and_an_empty_reason_is_left_out() {
        let busy = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "busy")
            .with_details(json!({"retryAfterSeconds": 10}));
        let response = busy.into_response();
        assert_eq!(response.headers()["retry-after"], "10");
        let now = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "busy")
            .with_details(json!({"causes": []}));
        assert!(now.into_response().headers().get("retry-after").is_none());
        let bare = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "", "two budgets");
        assert!(bare.status().get("reason").is_none());
    }

    #[test]
    fn not_found_names_the_qualified_resource() {
        let err = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(err.message, r#"deployments.apps "web" not found"#);
        let status = err.status();
        assert_eq!(status["code"], 404);
        assert_eq!(status["details"]["kind"], "deployments");
    }

    #[test]
    fn invalid_carries_one_cause_per_field() {
        let path = FieldPath::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        let err = ApiError::invalid("", "Pod", "web", vec![FieldError::required(&path, "")]);
        assert_eq!(
            err.message,
            "Pod \"web\" is invalid: spec.containers[0].image: Required value"
        );
        let cause = &err.status()["details"]["causes"][0];
        assert_eq!(cause["reason"], "FieldValueRequired");
        assert_eq!(cause["field"], "spec.containers[0].image");
        assert_eq!(cause["message"], "Required value");
    }

    #[test]
    fn store_errors_keep_their_code() {
        let err = ApiError::from(StoreError::Expired {
            requested: 3,
            oldest: 10,
        });
        assert_eq!(err.code, StatusCode::GONE);
        assert_eq!(err.reason, "Expired");
    }

    #[test]
    fn an_expired_continue_token_answers_the_token_to_go_on_with() {
        let err = ApiError::from(StoreError::ContinueExpired {
            continue_token: "next".into(),
        });
        let status = err.status();
        assert_eq!(
            (status["code"].clone(), status["reason"].clone()),
            (json!(410), json!("Expired"))
        );
        assert_eq!(status["metadata"], json!({"continue": "next"}));
        assert!(err
            .message
            .starts_with("The provided continue parameter is too old"));
    }
}
