//! The backoff on deleting a node's failed daemon pods (kube's `failedPodsBackoff`,
//! client-go's `flowcontrol.Backoff` of 1 s doubling to 15 min): a DaemonSet whose pods the
//! kubelet keeps failing does not fight it in a hot loop.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INITIAL: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

/// Each key's current delay and when it last grew.
#[derive(Debug, Default)]
pub struct FailedPodsBackoff {
    entries: Mutex<HashMap<String, Entry>>,
}

impl FailedPodsBackoff {
    /// `IsInBackOffSinceUpdate`: the key's delay has not passed since it last grew.
    pub fn in_backoff(&self, key: &str, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(key)?;
        (now.saturating_duration_since(entry.last_update) < entry.backoff).then_some(entry.backoff)
    }

    /// `Next`: the first delay for a new (or long expired) key, else twice the last, capped.
    pub fn next(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let backoff = match entries.get(key) {
            Some(entry) if now.saturating_duration_since(entry.last_update) <= 2 * MAX => {
                (entry.backoff * 2).min(MAX)
            }
            _ => INITIAL,
        };
        let entry = Entry {
            backoff,
            last_update: now,
        };
        entries.insert(key.to_owned(), entry);
    }

    /// `GC`: forgets keys untouched for twice the longest delay.
    pub fn gc(&self, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| now.saturating_duration_since(e.last_update) <= 2 * MAX);
    }
}

/// `failedPodsBackoffKey`: one backoff per DaemonSet, observed generation and node.
pub fn key(ds_uid: &str, generation: i64, node: &str) -> String {
    format!("{ds_uid}/{generation}/{node}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_and_expires() {
        let backoff = FailedPodsBackoff::default();
        let start = Instant::now();
        assert_eq!(backoff.in_backoff("k", start), None);
        backoff.next("k", start);
        assert_eq!(backoff.in_backoff("k", start), Some(INITIAL));
        let later = start + INITIAL;
        assert_eq!(backoff.in_backoff("k", later), None);
        backoff.next("k", later);
        assert_eq!(backoff.in_backoff("k", later + INITIAL), Some(2 * INITIAL));
        let much_later = later + 2 * MAX + INITIAL;
        backoff.next("k", much_later);
        assert_eq!(backoff.in_backoff("k", much_later), Some(INITIAL));
        backoff.gc(much_later + 3 * MAX);
        assert_eq!(backoff.in_backoff("k", much_later), None);
    }
}
