//! The shim's own diagnostics: its stderr is a file on the node's disk, and a full disk must
//! never take a pod down, so a failing container log is reported at a bounded rate (and
//! tracing drops what it cannot write: `log_internal_errors(false)` in main).

use std::time::{Duration, Instant};

/// How often a container whose log cannot be written is reported again.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Counts a container's failed log writes and says when one is worth reporting: the first,
/// then at most one a minute with the number dropped in between.
#[derive(Default)]
pub struct FailureReport {
    last: Option<Instant>,
    unreported: u64,
}

impl FailureReport {
    /// Records a failure; returns how many failures the report covers when one is due.
    pub fn failed(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < REPORT_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_reported_then_one_a_minute_with_the_count() {
        let start = Instant::now();
        let mut report = FailureReport::default();
        assert_eq!(report.failed(start), Some(1));
        assert_eq!(report.failed(start + Duration::from_secs(1)), None);
        assert_eq!(report.failed(start + Duration::from_secs(30)), None);
        assert_eq!(report.failed(start + Duration::from_secs(61)), Some(3));
        assert_eq!(report.failed(start + Duration::from_secs(62)), None);
    }
}
