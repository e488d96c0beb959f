//! Watch: committed changes fanned out to watchers, filtered to one type and namespace.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::StoreError;

/// The type of a watch event, serialized as the API server's `ADDED` / `MODIFIED` / `DELETED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
}

impl WatchEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
        }
    }
}

/// One change: for `Deleted`, `object` is the last state with the deletion's resourceVersion.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub kind: WatchEventType,
    pub object: Value,
    pub resource_version: u64,
}

/// A committed change as broadcast to every watcher before filtering.
#[derive(Debug)]
pub(crate) struct Change {
    pub type_key: String,
    pub namespace: String,
    pub event: WatchEvent,
}

/// The changes after a `list_watch`, in revision order.
///
/// A watcher that falls more than the channel capacity behind gets one
/// `Err(StoreError::Expired)` and then `None`: it must list and watch again.
#[derive(Debug)]
pub struct WatchStream {
    changes: broadcast::Receiver<Arc<Change>>,
    type_key: String,
    namespace: Option<String>,
    finished: bool,
}

impl WatchStream {
    pub(crate) fn new(
        changes: broadcast::Receiver<Arc<Change>>,
        type_key: String,
        namespace: Option<String>,
    ) -> WatchStream {
        WatchStream {
            changes,
            type_key,
            namespace,
            finished: false,
        }
    }

    /// The next matching change; `None` once the store is gone or after `Expired`.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        while !self.finished {
            match self.changes.recv().await {
                Ok(change) if self.wants(&change) => return Some(Ok(change.event.clone())),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, type_key = %self.type_key, "watcher lagged");
                    self.finished = true;
                    return Some(Err(StoreError::Expired));
                }
                Err(broadcast::error::RecvError::Closed) => self.finished = true,
            }
        }
        None
    }

    fn wants(&self, change: &Change) -> bool {
        change.type_key == self.type_key
            && self
                .namespace
                .as_ref()
                .is_none_or(|namespace| *namespace == change.namespace)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(type_key: &str, namespace: &str, rv: u64) -> Arc<Change> {
        Arc::new(Change {
            type_key: type_key.into(),
            namespace: namespace.into(),
            event: WatchEvent {
                kind: WatchEventType::Added,
                object: json!({}),
                resource_version: rv,
            },
        })
    }

    #[tokio::test]
    async fn filters_by_type_and_namespace() {
        let (tx, rx) = broadcast::channel(16);
        let mut stream = WatchStream::new(rx, "Pod".into(), Some("a".into()));
        tx.send(change("Node", "", 1)).unwrap();
        tx.send(change("Pod", "b", 2)).unwrap();
        tx.send(change("Pod", "a", 3)).unwrap();
        drop(tx);
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.resource_version, 3);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn lagging_ends_the_stream_with_expired() {
        let (tx, rx) = broadcast::channel(2);
        let mut stream = WatchStream::new(rx, "Pod".into(), None);
        for rv in 1..=5 {
            tx.send(change("Pod", "a", rv)).unwrap();
        }
        assert!(matches!(
            stream.next().await,
            Some(Err(StoreError::Expired))
        ));
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn event_types_serialize_like_the_api_server() {
        assert_eq!(
            serde_json::to_value(WatchEventType::Modified).unwrap(),
            json!("MODIFIED")
        );
        assert_eq!(WatchEventType::Deleted.as_str(), "DELETED");
    }
}
