//! kubectl's describers for the kinds other than Pod: ConfigMap (its data under `====`
//! underlines), Secret (type and the size of each value, never the values), Namespace (status
//! and conditions; peapod serves no quotas or limit ranges, so neither section), and the
//! generic describer for the rest (every field of the object, then its events).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::ClientError;
use crate::describe_text::{rfc1123z, Text};

/// What `describe` needs to know of a kind: whether its describer shows events.
pub fn shows_events(group: &str, kind: &str) -> bool {
    !(group.is_empty() && matches!(kind, "Secret" | "Namespace"))
}

/// The describe text of `object` (a `group`/`kind` other than Pod) and its events.
pub fn describe(
    group: &str,
    kind: &str,
    object: Value,
    events: &[Event],
) -> Result<String, ClientError> {
    let now = Timestamp::now();
    match (group, kind) {
        ("", "ConfigMap") => Ok(config_map(&typed(object)?, events, now)),
        ("", "Secret") => Ok(secret(&typed(object)?)),
        ("", "Namespace") => Ok(namespace(&typed(object)?)),
        _ => generic(object, events, now),
    }
}

fn typed<T: DeserializeOwned>(object: Value) -> Result<T, ClientError> {
    let path = object["metadata"]["selfLink"]
        .as_str()
        .unwrap_or("describe")
        .to_string();
    serde_json::from_value(object).map_err(|source| ClientError::Decode { path, source })
}

fn identity(text: &mut Text, meta: &ObjectMeta, namespaced: bool) {
    text.line(
        0,
        &format!("Name:\t{}", meta.name.as_deref().unwrap_or_default()),
    );
    if namespaced {
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        text.line(0, &format!("Namespace:\t{namespace}"));
    }
    text.labels("Labels", meta.labels.as_ref());
    text.annotations(meta.annotations.as_ref());
}

fn config_map(config_map: &ConfigMap, events: &[Event], now: Timestamp) -> String {
    let mut text = Text::default();
    identity(&mut text, &config_map.metadata, true);
    text.raw("\nData\n====\n");
    for (key, value) in config_map.data.iter().flatten() {
        text.raw(&format!("{key}:\n----\n{value}\n\n"));
    }
    text.raw("\nBinaryData\n====\n");
    for (key, value) in config_map.binary_data.iter().flatten() {
        text.raw(&format!("{key}: {} bytes\n", value.0.len()));
    }
    text.raw("\n");
    text.events(events, now);
    text.finish()
}

fn secret(secret: &Secret) -> String {
    let mut text = Text::default();
    identity(&mut text, &secret.metadata, true);
    let kind = secret.type_.as_deref().unwrap_or_default();
    text.raw(&format!("\nType:\t{kind}\n"));
    text.raw("\nData\n====\n");
    for (key, value) in secret.data.iter().flatten() {
        if key == "token" && kind == "kubernetes.io/service-account-token" {
            text.line(0, &format!("{key}:\t{}", String::from_utf8_lossy(&value.0)));
        } else {
            text.line(0, &format!("{key}:\t{} bytes", value.0.len()));
        }
    }
    text.finish()
}

fn namespace(namespace: &Namespace) -> String {
    let mut text = Text::default();
    identity(&mut text, &namespace.metadata, false);
    let status = namespace.status.clone().unwrap_or_default();
    text.line(0, &format!("Status:\t{}", status.phase.unwrap_or_default()));
    let conditions = status.conditions.unwrap_or_default();
    if !conditions.is_empty() {
        text.line(0, "Conditions:");
        text.line(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage");
        text.line(1, "----\t------\t------------------\t------\t-------");
        for c in conditions {
            let at = c
                .last_transition_time
                .map(|t| rfc1123z(t.0))
                .unwrap_or_default();
            let (reason, message) = (c.reason.unwrap_or_default(), c.message.unwrap_or_default());
            text.line(
                1,
                &format!("{}\t{}\t{at}\t{reason}\t{message}", c.type_, c.status),
            );
        }
    }
    text.finish()
}

/// kubectl's generic describer: name, namespace, labels, annotations, every other field.
fn generic(object: Value, events: &[Event], now: Timestamp) -> Result<String, ClientError> {
    let meta: ObjectMeta = typed(object["metadata"].clone())?;
    let mut text = Text::default();
    text.line(
        0,
        &format!("Name:\t{}", meta.name.as_deref().unwrap_or_default()),
    );
    text.line(
        0,
        &format!(
            "Namespace:\t{}",
            meta.namespace.as_deref().unwrap_or_default()
        ),
    );
    text.labels("Labels", meta.labels.as_ref());
    text.annotations(meta.annotations.as_ref());
    let skip = [
        ".metadata.managedFields",
        ".metadata.name",
        ".metadata.namespace",
        ".metadata.labels",
        ".metadata.annotations",
    ];
    if let Value::Object(content) = &object {
        text.unstructured(0, content, "", &skip);
    }
    text.events(events, now);
    Ok(text.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_map_data_under_underlines() {
        let object = json!({"metadata": {"name": "settings", "namespace": "team",
            "labels": {"app": "web"}}, "data": {"b.txt": "two\nlines", "a": "1"},
            "binaryData": {"bin": "AAEC"}});
        let text = describe("", "ConfigMap", object, &[]).unwrap();
        assert_eq!(
            text,
            "Name:         settings\nNamespace:    team\nLabels:       app=web\nAnnotations:  <none>\n\nData\n====\na:\n----\n1\n\nb.txt:\n----\ntwo\nlines\n\n\nBinaryData\n====\nbin: 3 bytes\n\nEvents:  <none>\n"
        );
    }

    #[test]
    fn secret_shows_sizes_never_values() {
        let object = json!({"metadata": {"name": "creds", "namespace": "team"},
            "type": "Opaque", "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}});
        let text = describe("", "Secret", object, &[]).unwrap();
        assert_eq!(
            text,
            "Name:         creds\nNamespace:    team\nLabels:       <none>\nAnnotations:  <none>\n\nType:  Opaque\n\nData\n====\npassword:  7 bytes\nuser:      5 bytes\n"
        );
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn namespace_status_without_quota_sections() {
        let object = json!({"metadata": {"name": "team", "labels":
            {"kubernetes.io/metadata.name": "team"}}, "status": {"phase": "Active"}});
        assert_eq!(
            describe("", "Namespace", object, &[]).unwrap(),
            "Name:         team\nLabels:       kubernetes.io/metadata.name=team\nAnnotations:  <none>\nStatus:       Active\n"
        );
        assert!(!shows_events("", "Namespace") && shows_events("", "ConfigMap"));
    }

    #[test]
    fn generic_lists_every_other_field() {
        let object = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            "name": "builder", "namespace": "team", "uid": "u1", "managedFields": [{}]}});
        assert_eq!(
            describe("", "ServiceAccount", object, &[]).unwrap(),
            "Name:         builder\nNamespace:    team\nLabels:       <none>\nAnnotations:  <none>\nAPI Version:  v1\nKind:         ServiceAccount\nMetadata:\n  UID:   u1\nEvents:  <none>\n"
        );
    }
}
