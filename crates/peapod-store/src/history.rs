//! The watch cache: a bounded ring of the latest committed changes, so a watch can start at any
//! revision still kept, and the live broadcast those changes go out on.
//!
//! One ring for all kinds (kube-apiserver keeps one per resource plus a time window). After the
//! store opens, the oldest revision a watch can start from is the revision at open: changes from
//! before a restart cannot be replayed, so such watches get `Expired` (410) and relist.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::watch::{Change, WatchFilter, WatchStream};
use crate::StoreError;

pub(crate) struct History {
    state: Mutex<State>,
    capacity: usize,
}

struct State {
    changes: VecDeque<Arc<Change>>,
    /// Every change after this revision is in `changes`.
    oldest: u64,
    /// The revision of the newest change appended (or the revision at open).
    newest: u64,
    live: broadcast::Sender<Arc<Change>>,
}

impl History {
    /// Keeps up to `capacity` changes; live watchers may fall `lag` changes behind.
    pub fn new(capacity: usize, lag: usize, revision: u64) -> History {
        let (live, _) = broadcast::channel(lag.max(1));
        History {
            state: Mutex::new(State {
                changes: VecDeque::with_capacity(capacity.min(1024)),
                oldest: revision,
                newest: revision,
                live,
            }),
            capacity,
        }
    }

    /// Records committed changes in revision order and sends them to live watchers. Writers call
    /// this after commit while still holding the write lock, so appends are in revision order.
    pub fn append(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut state = self.lock();
        for change in changes {
            let change = Arc::new(change);
            state.newest = change.revision();
            state.changes.push_back(change.clone());
            while state.changes.len() > self.capacity {
                if let Some(dropped) = state.changes.pop_front() {
                    state.oldest = dropped.revision();
                }
            }
            // No receivers is fine: nobody is watching.
            let _ = state.live.send(change);
        }
    }

    /// The changes `filter` wants after revision `after`, replayed then live; `Expired` when
    /// changes after `after` are no longer all kept. An `after` beyond the newest revision is
    /// fine: the stream starts with the first change after it.
    pub fn watch(&self, filter: WatchFilter, after: u64) -> Result<WatchStream, StoreError> {
        let state = self.lock();
        if after < state.oldest {
            return Err(StoreError::Expired {
                requested: after,
                oldest: state.oldest,
            });
        }
        // Changes are in revision order: skip the ones at or before `after` without a scan.
        let skip = state
            .changes
            .partition_point(|change| change.revision() <= after);
        let replay = state
            .changes
            .range(skip..)
            .filter(|change| filter.wants(change))
            .cloned()
            .collect();
        // Subscribing under the lock appenders hold splits the changes exactly here.
        let live = state.live.subscribe();
        Ok(WatchStream::new(replay, live, filter, after, state.newest))
    }

    /// The oldest revision a watch can start from.
    #[cfg(test)]
    pub fn oldest(&self) -> u64 {
        self.lock().oldest
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Appends cannot panic halfway through a change; the state stays consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::watch::{WatchEvent, WatchEventType};

    fn change(namespace: &str, rv: u64) -> Change {
        Change {
            type_key: "Pod".into(),
            namespace: namespace.into(),
            event: WatchEvent {
                previous: None,
                kind: WatchEventType::Added,
                object: json!({}),
                resource_version: rv,
            },
        }
    }

    fn pods(namespace: Option<&str>) -> WatchFilter {
        WatchFilter {
            type_key: "Pod".into(),
            namespace: namespace.map(str::to_owned),
        }
    }

    async fn revisions(stream: &mut WatchStream, count: usize) -> Vec<u64> {
        let mut seen = Vec::new();
        for _ in 0..count {
            seen.push(stream.next().await.unwrap().unwrap().resource_version);
        }
        seen
    }

    #[tokio::test]
    async fn replays_kept_changes_then_goes_live() {
        let history = History::new(8, 8, 10);
        history.append((11..=13).map(|rv| change("a", rv)).collect());
        let mut stream = history.watch(pods(Some("a")), 11).unwrap();
        history.append(vec![change("b", 14), change("a", 15)]);
        assert_eq!(revisions(&mut stream, 3).await, [12, 13, 15]);
    }

    #[tokio::test]
    async fn evicted_or_pre_open_revisions_are_expired() {
        let history = History::new(2, 8, 10);
        assert!(matches!(
            history.watch(pods(None), 9),
            Err(StoreError::Expired {
                requested: 9,
                oldest: 10
            })
        ));
        history.append((11..=14).map(|rv| change("a", rv)).collect());
        assert_eq!(history.oldest(), 12);
        assert!(history.watch(pods(None), 11).is_err());
        let mut stream = history.watch(pods(None), 12).unwrap();
        assert_eq!(revisions(&mut stream, 2).await, [13, 14]);
    }

    #[tokio::test]
    async fn a_future_revision_waits_for_later_changes() {
        let history = History::new(8, 8, 10);
        let mut stream = history.watch(pods(None), 12).unwrap();
        history.append((11..=13).map(|rv| change("a", rv)).collect());
        assert_eq!(revisions(&mut stream, 1).await, [13]);
    }

    #[tokio::test]
    async fn without_history_only_live_changes_are_seen() {
        let history = History::new(0, 8, 0);
        history.append(vec![change("a", 1)]);
        assert_eq!(history.oldest(), 1);
        let mut stream = history.watch(pods(None), 1).unwrap();
        history.append(vec![change("a", 2)]);
        assert_eq!(revisions(&mut stream, 1).await, [2]);
    }
}
