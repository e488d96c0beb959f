//! The watch cache: a bounded ring of the latest committed changes, so a watch can start at any
//! revision still kept and a paged list can go on at its first page's revision, and the live
//! broadcast those changes go out on.
//!
//! One ring for all kinds (kube-apiserver keeps one per resource plus a time window). After the
//! store opens, the oldest revision a watch can start from is the revision at open: changes from
//! before a restart cannot be replayed, so such watches get `Expired` (410) and relist, as
//! continue tokens from before then do (etcd's compaction).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::watch::{Change, WatchFilter, WatchStream};
use crate::StoreError;

/// The longest a reader waits for a commit it has seen to reach the history (writers append
/// right after committing, under the write lock).
const APPEND_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct History {
    state: Mutex<State>,
    /// Signalled after every append, for readers waiting for a commit they have seen.
    appended: Condvar,
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
            appended: Condvar::new(),
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
        drop(state);
        self.appended.notify_all();
    }

    /// The changes `filter` wants after revision `after` up to `until` (a revision the caller
    /// has seen committed), in revision order; `Expired` when changes after `after` are no
    /// longer all kept.
    pub fn changes_between(
        &self,
        filter: &WatchFilter,
        after: u64,
        until: u64,
    ) -> Result<Vec<Arc<Change>>, StoreError> {
        let state = self.lock();
        let (state, _) = self
            .appended
            .wait_timeout_while(state, APPEND_WAIT, |state| state.newest < until)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if after < state.oldest || state.newest < until {
            return Err(StoreError::Expired {
                requested: after,
                oldest: state.oldest,
            });
        }
        let skip = state
            .changes
            .partition_point(|change| change.revision() <= after);
        Ok(state
            .changes
            .range(skip..)
            .take_while(|change| change.revision() <= until)
            .filter(|change| filter.wants(change))
            .cloned()
            .collect())
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
            removed_rv: None,
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

    #[test]
    fn changes_between_two_revisions_are_the_kept_ones_in_between() {
        let history = History::new(3, 8, 10);
        history.append((11..=14).map(|rv| change("a", rv)).collect());
        let revisions = |after, until| -> Result<Vec<u64>, StoreError> {
            let changes = history.changes_between(&pods(Some("a")), after, until)?;
            Ok(changes.iter().map(|change| change.revision()).collect())
        };
        assert_eq!(revisions(11, 13).unwrap(), [12, 13]);
        assert_eq!(revisions(13, 13).unwrap(), Vec::<u64>::new());
        assert!(matches!(
            revisions(10, 14),
            Err(StoreError::Expired {
                requested: 10,
                oldest: 11
            })
        ));
    }

    #[test]
    fn changes_between_wait_for_a_commit_not_yet_appended() {
        let history = Arc::new(History::new(8, 8, 10));
        let appender = history.clone();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            appender.append(vec![change("a", 11)]);
        });
        let changes = history.changes_between(&pods(None), 10, 11).unwrap();
        assert_eq!(changes.len(), 1);
        late.join().unwrap();
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
