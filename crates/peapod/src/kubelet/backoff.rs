//! kubelet's crash-loop back-off: the first restart is immediate, then the delay doubles from
//! the base (10 s) to the cap (5 min); a container that ran cleanly for twice the cap
//! (10 min) starts over from the base.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    last_update: Instant,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            entries: HashMap::new(),
        }
    }

    /// How long `key` must still wait after its last exit at `exited_at`, if at all.
    pub fn remaining(&self, key: &str, exited_at: Instant, now: Instant) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if self.expired(entry, now) {
            return None;
        }
        let until = exited_at + entry.delay;
        (until > now).then(|| until - now)
    }

    /// Records a restart of `key`: the next exit waits twice as long (up to the cap).
    pub fn next(&mut self, key: &str, now: Instant) {
        let (base, cap) = (self.base, self.cap);
        let delay = match self.entries.get(key) {
            Some(entry) if !self.expired(entry, now) => (entry.delay * 2).min(cap),
            _ => base,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }

    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.duration_since(entry.last_update) > self.cap * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate_then_doubles_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(300));
        let t0 = Instant::now();
        assert_eq!(backoff.remaining("c", t0, t0), None);
        backoff.next("c", t0);
        assert_eq!(
            backoff.remaining("c", t0, t0),
            Some(Duration::from_secs(10))
        );
        let mut delays = vec![];
        for _ in 0..7 {
            backoff.next("c", t0);
            delays.push(backoff.remaining("c", t0, t0).unwrap().as_secs());
        }
        assert_eq!(delays, vec![20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn ten_quiet_minutes_reset_the_delay() {
        let mut backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(300));
        let t0 = Instant::now();
        backoff.next("c", t0);
        backoff.next("c", t0);
        let later = t0 + Duration::from_secs(601);
        assert_eq!(backoff.remaining("c", later, later), None);
        backoff.next("c", later);
        assert_eq!(
            backoff.remaining("c", later, later),
            Some(Duration::from_secs(10))
        );
    }
}
