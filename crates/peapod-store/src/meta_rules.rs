//! Object rules an API server applies itself when it builds the value of an update: the status
//! subresource and the main resource each keep the other half of the stored object.

use serde_json::Value;

/// Replaces `target`'s `status` with `source`'s (removing it when `source` has none).
pub fn copy_status(target: &mut Value, source: &Value) {
    let Some(fields) = target.as_object_mut() else {
        return;
    };
    match source.get("status") {
        Some(status) => fields.insert("status".into(), status.clone()),
        None => fields.remove("status"),
    };
}

/// A status-subresource update: `stored` with `incoming`'s status, keeping `incoming`'s
/// `metadata.resourceVersion` as the update's precondition.
pub fn status_update(stored: &Value, incoming: &Value) -> Value {
    let mut value = stored.clone();
    copy_status(&mut value, incoming);
    let metadata = crate::meta::metadata_mut(&mut value);
    match crate::meta::field(incoming, "resourceVersion") {
        Some(rv) => metadata.insert("resourceVersion".into(), rv.clone()),
        None => metadata.remove("resourceVersion"),
    };
    value
}

/// A main-resource update: `incoming` with `stored`'s status.
pub fn spec_update(stored: &Value, incoming: &Value) -> Value {
    let mut value = incoming.clone();
    copy_status(&mut value, stored);
    value
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_is_copied_or_removed() {
        let mut target = json!({"spec": 1, "status": {"phase": "Pending"}});
        copy_status(&mut target, &json!({"status": {"phase": "Running"}}));
        assert_eq!(target["status"]["phase"], "Running");
        copy_status(&mut target, &json!({"spec": 2}));
        assert_eq!(target, json!({"spec": 1}));
    }

    #[test]
    fn status_update_keeps_the_stored_rest_and_the_incoming_precondition() {
        let stored = json!({"metadata": {"resourceVersion": "5", "labels": {"a": "b"}}, "spec": 1});
        let incoming = json!({"metadata": {"resourceVersion": "4"}, "spec": 2, "status": {"phase": "Running"}});
        assert_eq!(
            status_update(&stored, &incoming),
            json!({
                "metadata": {"resourceVersion": "4", "labels": {"a": "b"}},
                "spec": 1,
                "status": {"phase": "Running"},
            })
        );
        assert_eq!(
            spec_update(&json!({"status": 1}), &json!({"spec": 2})),
            json!({"spec": 2, "status": 1})
        );
    }
}
