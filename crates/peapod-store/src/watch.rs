//! Watch: the stream of committed changes of one kind (and namespace) a watcher receives, first
//! replayed from the history, then live.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::StoreError;

/// The type of a watch event, serialized as the API server's `ADDED` / `MODIFIED` / `DELETED` /
/// `BOOKMARK`. The store never emits `Bookmark`: API servers synthesise them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
}

impl WatchEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
            WatchEventType::Bookmark => "BOOKMARK",
        }
    }
}

/// One change: for `Deleted`, `object` is the last state with the deletion's resourceVersion.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub kind: WatchEventType,
    pub object: Value,
    pub resource_version: u64,
    /// For `Modified`, the object before the change (kube's watch cache `PrevObject`), so a
    /// filtered watch can tell an object leaving its selection.
    pub previous: Option<Value>,
}

/// A committed change as kept in the history and broadcast to every watcher before filtering.
#[derive(Debug)]
pub(crate) struct Change {
    pub type_key: String,
    pub namespace: String,
    pub event: WatchEvent,
    /// For `Deleted`, the resourceVersion the object had until it was removed (its `object`
    /// carries the deletion's): what a list at an earlier revision shows.
    pub removed_rv: Option<u64>,
}

impl Change {
    pub fn revision(&self) -> u64 {
        self.event.resource_version
    }
}

/// Which changes a watcher wants: one storage kind, in one namespace or all.
#[derive(Clone, Debug)]
pub(crate) struct WatchFilter {
    pub type_key: String,
    pub namespace: Option<String>,
}

impl WatchFilter {
    pub fn wants(&self, change: &Change) -> bool {
        change.type_key == self.type_key
            && self
                .namespace
                .as_ref()
                .is_none_or(|namespace| *namespace == change.namespace)
    }
}

/// The changes after a revision, in revision order: those already kept in the history, then
/// live ones.
///
/// A watcher that falls more than the broadcast capacity behind gets one
/// `Err(StoreError::Expired)` and then `None`: it must list and watch again.
#[derive(Debug)]
pub struct WatchStream {
    replay: VecDeque<Arc<Change>>,
    live: broadcast::Receiver<Arc<Change>>,
    filter: WatchFilter,
    /// Changes at or before this revision are not for this watcher.
    after: u64,
    /// Revision of the last change taken from `live`, wanted or not.
    position: u64,
    finished: bool,
}

impl WatchStream {
    /// `replay` holds the kept changes after `after`; `live` was subscribed when the history's
    /// newest change was `position`.
    pub(crate) fn new(
        replay: VecDeque<Arc<Change>>,
        live: broadcast::Receiver<Arc<Change>>,
        filter: WatchFilter,
        after: u64,
        position: u64,
    ) -> WatchStream {
        WatchStream {
            replay,
            live,
            filter,
            after,
            position,
            finished: false,
        }
    }

    /// The next matching change; `None` once the store is gone or after `Expired`.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        if let Some(change) = self.replay.pop_front() {
            return Some(Ok(self.deliver(&change)));
        }
        while !self.finished {
            match self.live.recv().await {
                Ok(change) => {
                    self.position = change.revision();
                    if change.revision() > self.after && self.filter.wants(&change) {
                        return Some(Ok(self.deliver(&change)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, type_key = %self.filter.type_key, "watcher lagged");
                    self.finished = true;
                    return Some(Err(StoreError::Expired {
                        requested: self.after,
                        oldest: self.position + missed,
                    }));
                }
                Err(broadcast::error::RecvError::Closed) => self.finished = true,
            }
        }
        None
    }

    fn deliver(&mut self, change: &Change) -> WatchEvent {
        self.after = change.revision();
        change.event.clone()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn change(type_key: &str, namespace: &str, rv: u64) -> Arc<Change> {
        Arc::new(Change {
            type_key: type_key.into(),
            namespace: namespace.into(),
            event: WatchEvent {
                previous: None,
                kind: WatchEventType::Added,
                object: json!({}),
                resource_version: rv,
            },
            removed_rv: None,
        })
    }

    fn pods(namespace: Option<&str>) -> WatchFilter {
        WatchFilter {
            type_key: "Pod".into(),
            namespace: namespace.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn filters_by_type_and_namespace() {
        let (tx, rx) = broadcast::channel(16);
        let mut stream = WatchStream::new(VecDeque::new(), rx, pods(Some("a")), 0, 0);
        tx.send(change("Node", "", 1)).unwrap();
        tx.send(change("Pod", "b", 2)).unwrap();
        tx.send(change("Pod", "a", 3)).unwrap();
        drop(tx);
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.resource_version, 3);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn replays_first_and_skips_live_changes_already_seen() {
        let (tx, rx) = broadcast::channel(16);
        let replay = VecDeque::from([change("Pod", "a", 4)]);
        let mut stream = WatchStream::new(replay, rx, pods(None), 3, 4);
        tx.send(change("Pod", "a", 4)).unwrap();
        tx.send(change("Pod", "a", 5)).unwrap();
        drop(tx);
        let mut seen = Vec::new();
        while let Some(event) = stream.next().await {
            seen.push(event.unwrap().resource_version);
        }
        assert_eq!(seen, [4, 5]);
    }

    #[tokio::test]
    async fn lagging_ends_the_stream_with_expired() {
        let (tx, rx) = broadcast::channel(2);
        let mut stream = WatchStream::new(VecDeque::new(), rx, pods(None), 0, 0);
        for rv in 1..=5 {
            tx.send(change("Pod", "a", rv)).unwrap();
        }
        assert!(matches!(
            stream.next().await,
            Some(Err(StoreError::Expired {
                requested: 0,
                oldest: 3
            }))
        ));
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn event_types_serialize_like_the_api_server() {
        assert_eq!(
            serde_json::to_value(WatchEventType::Modified).unwrap(),
            json!("MODIFIED")
        );
        assert_eq!(
            serde_json::to_value(WatchEventType::Bookmark).unwrap(),
            json!("BOOKMARK")
        );
        assert_eq!(WatchEventType::Deleted.as_str(), "DELETED");
        assert_eq!(WatchEventType::Bookmark.as_str(), "BOOKMARK");
    }
}
