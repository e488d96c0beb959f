//! kube's `UIDTrackingControllerExpectations`: per ReplicaSet key, the creations and deletions
//! a sync issued and not yet seen through the watch. A ReplicaSet is not managed again until
//! they are all observed or 5 minutes have passed, so a slow watch never causes double
//! creates. Deletions are tracked by pod key, so a graceful deletion (an update setting
//! deletionTimestamp) and the final delete count once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// `controller.ExpectationsTimeout`.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// `ControlleeExpectations`: what is still expected, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub adds: i64,
    pub deletes: i64,
    set_at: Instant,
}

impl Pending {
    /// `Fulfilled`: nothing more to observe (counts may go below zero).
    pub fn fulfilled(&self) -> bool {
        self.adds <= 0 && self.deletes <= 0
    }
}

#[derive(Default)]
struct Tables {
    counts: HashMap<String, Pending>,
    deleting: HashMap<String, HashSet<String>>,
}

/// The expectations of every ReplicaSet, keyed `namespace/name`; safe to share between the
/// reconcile and the watch handlers.
pub struct Expectations {
    tables: Mutex<Tables>,
    ttl: Duration,
    clock: Clock,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations::new()
    }
}

impl Expectations {
    pub fn new() -> Expectations {
        Expectations::with_clock(EXPECTATIONS_TIMEOUT, Arc::new(Instant::now))
    }

    /// kube's `NewFakeControllerExpectationsLookup`: another TTL and clock.
    pub fn with_clock(ttl: Duration, clock: Clock) -> Expectations {
        Expectations {
            tables: Mutex::new(Tables::default()),
            ttl,
            clock,
        }
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `SatisfiedExpectations`: true when nothing is recorded, all was observed, or the
    /// expectations are older than the TTL.
    pub fn satisfied(&self, key: &str) -> bool {
        let Some(pending) = self.get(key) else {
            return true;
        };
        pending.fulfilled() || (self.clock)().duration_since(pending.set_at) > self.ttl
    }

    /// `GetExpectations`.
    pub fn get(&self, key: &str) -> Option<Pending> {
        self.tables().counts.get(key).copied()
    }

    /// `SetExpectations`: forgets what was expected before.
    pub fn set(&self, key: &str, adds: usize, deletes: usize) {
        let pending = Pending {
            adds: i64::try_from(adds).unwrap_or(i64::MAX),
            deletes: i64::try_from(deletes).unwrap_or(i64::MAX),
            set_at: (self.clock)(),
        };
        self.tables().counts.insert(key.to_owned(), pending);
    }

    /// `ExpectCreations`.
    pub fn expect_creations(&self, key: &str, adds: usize) {
        self.set(key, adds, 0);
    }

    /// `ExpectDeletions` by pod key (`namespace/name`); each key counts once.
    pub fn expect_deletions<I: IntoIterator<Item = String>>(&self, key: &str, pod_keys: I) {
        let keys: HashSet<String> = pod_keys.into_iter().collect();
        let count = keys.len();
        self.tables().deleting.insert(key.to_owned(), keys);
        self.set(key, 0, count);
    }

    /// `LowerExpectations`: no-op for a key without expectations.
    pub fn lower(&self, key: &str, adds: i64, deletes: i64) {
        if let Some(pending) = self.tables().counts.get_mut(key) {
            pending.adds -= adds;
            pending.deletes -= deletes;
        }
    }

    /// `RaiseExpectations`.
    pub fn raise(&self, key: &str, adds: i64, deletes: i64) {
        self.lower(key, -adds, -deletes);
    }

    /// `CreationObserved`: a pod of this ReplicaSet appeared, or a create failed.
    pub fn creation_observed(&self, key: &str) {
        self.lower(key, 1, 0);
    }

    /// `DeletionObserved`: counts only a pod this ReplicaSet is waiting to see deleted.
    pub fn deletion_observed(&self, key: &str, pod_key: &str) {
        let mut tables = self.tables();
        let expected = tables
            .deleting
            .get_mut(key)
            .is_some_and(|k| k.remove(pod_key));
        if let (true, Some(pending)) = (expected, tables.counts.get_mut(key)) {
            pending.deletes -= 1;
        }
    }

    /// The pod keys still expected to be deleted (kube's `GetUIDs`).
    pub fn pending_deletions(&self, key: &str) -> Option<HashSet<String>> {
        self.tables().deleting.get(key).cloned()
    }

    /// `DeleteExpectations`: the ReplicaSet is gone; a new one of that name starts clean.
    pub fn delete(&self, key: &str) {
        let mut tables = self.tables();
        tables.counts.remove(key);
        tables.deleting.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    /// A clock the test moves by hand.
    fn fake_clock() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let reader = now.clone();
        (Arc::new(move || *reader.lock().unwrap()), now)
    }

    /// kube's `TestControllerExpectations`.
    #[test]
    fn expectations_are_lowered_concurrently_and_expire() {
        let ttl = Duration::from_secs(30);
        let (clock, now) = fake_clock();
        let expectations = Arc::new(Expectations::with_clock(ttl, clock));
        let key = "default/foobar";
        let (adds, dels) = (10, 30);
        expectations.set(key, adds, dels);
        let observe = |times: usize, created: bool| {
            let handles: Vec<_> = (0..times)
                .map(|_| {
                    let e = expectations.clone();
                    thread::spawn(move || match created {
                        true => e.creation_observed(key),
                        false => e.lower(key, 0, 1),
                    })
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
        };
        observe(adds + 1, true);
        assert!(!expectations.satisfied(key), "still waiting on deletions");
        observe(dels + 1, false);

        let pending = expectations.get(key).unwrap();
        assert_eq!((pending.adds, pending.deletes), (-1, -1), "surpassed");
        assert!(expectations.satisfied(key));

        expectations.set(key, 1, 2);
        let pending = expectations.get(key).unwrap();
        assert_eq!((pending.adds, pending.deletes), (1, 2));
        assert!(!expectations.satisfied(key));
        *now.lock().unwrap() += ttl + Duration::from_secs(1);
        assert!(
            expectations.satisfied(key),
            "old expectations are cleared by the ttl"
        );
    }

    /// kube's `TestUIDExpectations`.
    #[test]
    fn deletions_are_tracked_by_pod_key() {
        let expectations = Expectations::new();
        let controllers: Vec<(String, Vec<String>)> = (0..4)
            .map(|i| {
                let pods = (0..=i).map(|p| format!("default/pod-{i}-{p}")).collect();
                (format!("default/rs-{i}"), pods)
            })
            .collect();
        for (key, pods) in &controllers {
            expectations.expect_deletions(key, pods.clone());
            assert!(
                !expectations.satisfied(key),
                "{key} waits for its deletions"
            );
        }
        for (key, pods) in &controllers {
            expectations.deletion_observed(key, "default/not-ours");
            assert!(
                !expectations.satisfied(key),
                "an unexpected pod does not count"
            );
            for pod in pods {
                expectations.deletion_observed(key, pod);
                expectations.deletion_observed(key, pod);
            }
            assert!(expectations.satisfied(key), "{key}");
            assert_eq!(
                expectations.get(key).unwrap().deletes,
                0,
                "each pod counts once"
            );
            expectations.delete(key);
            assert_eq!(expectations.pending_deletions(key), None);
            assert_eq!(expectations.get(key), None);
            assert!(expectations.satisfied(key), "no expectations is satisfied");
        }
    }

    #[test]
    fn skipped_creations_are_lowered_one_by_one() {
        let expectations = Expectations::new();
        expectations.expect_creations("default/web", 3);
        expectations.creation_observed("default/web");
        expectations.creation_observed("default/web");
        assert!(!expectations.satisfied("default/web"));
        expectations.creation_observed("default/web");
        assert!(expectations.satisfied("default/web"));
        expectations.raise("default/web", 1, 0);
        assert!(!expectations.satisfied("default/web"));
        expectations.creation_observed("default/unknown");
        assert_eq!(expectations.get("default/unknown"), None);
    }
}
