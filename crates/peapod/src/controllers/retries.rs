//! kube's default per-item controller rate limiter: each object's consecutive failed syncs
//! come back after 5 ms doubled per failure, up to 1000 s; a successful sync forgets them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const BACKOFF_BASE: Duration = Duration::from_millis(5);
const BACKOFF_CAP: Duration = Duration::from_secs(1000);

/// The consecutive failures of each object, by key.
#[derive(Debug, Default)]
pub struct Retries {
    failures: Mutex<HashMap<String, u32>>,
}

impl Retries {
    /// Counts one more failure of `key` and says when to try again.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key.to_owned()).or_default();
        *count = count.saturating_add(1);
        backoff(*count)
    }

    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}

/// `BACKOFF_BASE` doubled for each failure after the first, at most `BACKOFF_CAP`.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP)
}

/// `namespace/name`, the key kube's work queues use.
pub fn key_of<K: kube::Resource>(object: &K) -> String {
    let meta = object.meta();
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let name = meta.name.as_deref().unwrap_or_default();
    match namespace {
        "" => name.to_owned(),
        namespace => format!("{namespace}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_milliseconds_up_to_the_cap() {
        let retries = Retries::default();
        assert_eq!(retries.failed("a"), Duration::from_millis(5));
        assert_eq!(retries.failed("a"), Duration::from_millis(10));
        assert_eq!(retries.failed("b"), Duration::from_millis(5));
        retries.succeeded("a");
        assert_eq!(retries.failed("a"), Duration::from_millis(5));
        assert_eq!(backoff(11), Duration::from_millis(5120));
        assert_eq!(backoff(40), BACKOFF_CAP);
    }
}
