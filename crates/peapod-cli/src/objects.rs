//! Fetching pods and events from the agent and typing them for the printers.

use k8s_openapi::api::core::v1::{Event, Pod};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::{Client, ClientError};
use crate::output::with_type_meta;
use crate::query::{events_path, pods_path, Query};

/// The items of a list answer (with apiVersion/kind filled in) and its resourceVersion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listed {
    pub items: Vec<Value>,
    pub resource_version: String,
}

impl Listed {
    fn from_list(mut list: Value, kind: &str) -> Self {
        let resource_version = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        Self {
            items: items
                .into_iter()
                .map(|i| with_type_meta(i, "v1", kind))
                .collect(),
            resource_version,
        }
    }
}

/// Pods in `namespace` (None: all namespaces), optionally filtered by a label selector.
pub async fn list_pods(
    client: &Client,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Listed, ClientError> {
    let mut query = Query::new();
    query.opt("labelSelector", selector);
    let list = client
        .get_json::<Value>(&format!("{}{query}", pods_path(namespace)))
        .await?;
    Ok(Listed::from_list(list, "Pod"))
}

/// Events in `namespace` (None: all), optionally only those about the object `uid`.
pub async fn list_events(
    client: &Client,
    namespace: Option<&str>,
    uid: Option<&str>,
) -> Result<Vec<Event>, ClientError> {
    let mut query = Query::new();
    if let Some(uid) = uid {
        query.push("fieldSelector", format!("involvedObject.uid={uid}"));
    }
    let path = format!("{}{query}", events_path(namespace));
    let list = client.get_json::<Value>(&path).await?;
    typed(&path, Listed::from_list(list, "Event").items)
}

/// JSON objects as k8s-openapi types.
pub fn typed<T: DeserializeOwned>(path: &str, items: Vec<Value>) -> Result<Vec<T>, ClientError> {
    items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item).map_err(|source| ClientError::Decode {
                path: path.to_string(),
                source,
            })
        })
        .collect()
}

pub fn pods(path: &str, items: &[Value]) -> Result<Vec<Pod>, ClientError> {
    typed(path, items.to_vec())
}

/// metadata.name of an object, or "".
pub fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn uid_of(object: &Value) -> Option<&str> {
    object.pointer("/metadata/uid").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_items_get_type_meta_and_resource_version() {
        let listed = Listed::from_list(
            json!({"kind": "PodList", "metadata": {"resourceVersion": "42"}, "items": [{"metadata": {"name": "a"}}]}),
            "Pod",
        );
        assert_eq!(listed.resource_version, "42");
        assert_eq!(listed.items[0]["kind"], "Pod");
        assert_eq!(name_of(&listed.items[0]), "a");
        let pods = pods("/p", &listed.items).unwrap();
        assert_eq!(pods[0].metadata.name.as_deref(), Some("a"));
    }

    #[test]
    fn missing_items_is_empty() {
        let listed = Listed::from_list(json!({"kind": "PodList", "items": null}), "Pod");
        assert!(listed.items.is_empty());
        assert_eq!(listed.resource_version, "");
    }
}
