//! How the controllers read the API's refusals: the message kube's events and conditions
//! quote, and the refusal of a create in a terminating namespace.

/// `v1.NamespaceTerminatingCause`: a create refused for this cause is neither an event nor a
/// failure to the pod controllers, as every other create in that namespace would fail too.
pub const NAMESPACE_TERMINATING_CAUSE: &str = "NamespaceTerminating";

/// A refusal because the namespace is terminating.
pub fn namespace_terminating(status: &kube::core::Status) -> bool {
    let causes = status.details.as_ref().map(|d| d.causes.as_slice());
    causes
        .unwrap_or_default()
        .iter()
        .any(|cause| cause.reason == NAMESPACE_TERMINATING_CAUSE)
}

/// The API's message for a refusal (as Go's `err.Error()` reads), else the error itself.
pub fn error_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;
    use serde_json::json;

    use super::*;

    fn refusal(reason: &str) -> Status {
        serde_json::from_value(json!({
            "status": "Failure", "message": "forbidden", "code": 403,
            "details": {"causes": [{"reason": reason}]},
        }))
        .expect("a status")
    }

    #[test]
    fn a_terminating_namespace_is_told_by_its_cause() {
        assert!(namespace_terminating(&refusal(NAMESPACE_TERMINATING_CAUSE)));
        assert!(!namespace_terminating(&refusal("FieldValueInvalid")));
        assert!(!namespace_terminating(&Status::default()));
        let err = kube::Error::Api(Box::new(refusal("x")));
        assert_eq!(error_message(&err), "forbidden");
    }
}
