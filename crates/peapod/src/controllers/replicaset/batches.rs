//! How many pods one sync creates or deletes, and in what batches: kube's `manageReplicas`
//! diff capped at `burstReplicas`, and `slowStartBatch` (1, 2, 4, ... up to what is left,
//! stopping after the first batch with a failure so a failing create is not repeated 500 times).

use std::future::Future;

use futures::future::join_all;

/// `replicaset.BurstReplicas`: the most pods one sync creates or deletes.
pub const BURST_REPLICAS: usize = 500;
/// `controller.SlowStartInitialBatchSize`.
pub const SLOW_START_INITIAL_BATCH_SIZE: usize = 1;

/// What a sync does to the pod count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Create(usize),
    Delete(usize),
    Steady,
}

/// `manageReplicas`' diff between the active pods and `spec.replicas`, at most `burst`.
pub fn scale(active: usize, desired: i32, burst: usize) -> Scale {
    let desired = usize::try_from(desired).unwrap_or(0);
    match active.cmp(&desired) {
        std::cmp::Ordering::Less => Scale::Create((desired - active).min(burst)),
        std::cmp::Ordering::Greater => Scale::Delete((active - desired).min(burst)),
        std::cmp::Ordering::Equal => Scale::Steady,
    }
}

/// The state of one slow start: the next batch to run, and the tally so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowStart {
    remaining: usize,
    next: usize,
    successes: usize,
    failed: bool,
}

impl SlowStart {
    pub fn new(count: usize, initial_batch: usize) -> SlowStart {
        SlowStart {
            remaining: count,
            next: initial_batch.min(count),
            successes: 0,
            failed: false,
        }
    }

    /// The size of the next batch; `None` once all ran or a batch failed.
    pub fn next_batch(&self) -> Option<usize> {
        (!self.failed && self.next > 0).then_some(self.next)
    }

    /// Records the batch just run, `failures` of whose calls failed.
    pub fn record(&mut self, failures: usize) {
        let batch = self.next;
        self.successes += batch - failures.min(batch);
        if failures > 0 {
            self.failed = true;
            return;
        }
        self.remaining -= batch;
        self.next = (2 * batch).min(self.remaining);
    }

    pub fn successes(&self) -> usize {
        self.successes
    }
}

/// The batch sizes of a slow start in which nothing fails.
pub fn batch_sizes(count: usize, initial_batch: usize) -> Vec<usize> {
    let mut plan = SlowStart::new(count, initial_batch);
    let mut sizes = Vec::new();
    while let Some(size) = plan.next_batch() {
        sizes.push(size);
        plan.record(0);
    }
    sizes
}

/// `slowStartBatch`: runs `call` `count` times, each batch's calls concurrently; answers the
/// successes and the first error of the batch that stopped it.
pub async fn slow_start_batch<F, Fut, E>(
    count: usize,
    initial_batch: usize,
    call: F,
) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut plan = SlowStart::new(count, initial_batch);
    while let Some(size) = plan.next_batch() {
        let results = join_all((0..size).map(|_| call())).await;
        let mut errors = results.into_iter().filter_map(Result::err);
        let first = errors.next();
        plan.record(usize::from(first.is_some()) + errors.count());
        if first.is_some() {
            return (plan.successes(), first);
        }
    }
    (plan.successes(), None)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn the_diff_is_capped_by_burst_replicas() {
        assert_eq!(scale(0, 3, BURST_REPLICAS), Scale::Create(3));
        assert_eq!(scale(5, 2, BURST_REPLICAS), Scale::Delete(3));
        assert_eq!(scale(2, 2, BURST_REPLICAS), Scale::Steady);
        assert_eq!(scale(0, 1000, BURST_REPLICAS), Scale::Create(500));
        assert_eq!(scale(1200, 0, BURST_REPLICAS), Scale::Delete(500));
        assert_eq!(scale(4, -1, BURST_REPLICAS), Scale::Delete(4));
    }

    #[test]
    fn batches_double_up_to_what_is_left() {
        assert_eq!(batch_sizes(0, 1), Vec::<usize>::new());
        assert_eq!(batch_sizes(1, 1), [1]);
        assert_eq!(batch_sizes(10, 1), [1, 2, 4, 3]);
        assert_eq!(batch_sizes(15, 1), [1, 2, 4, 8]);
        assert_eq!(batch_sizes(500, 1), [1, 2, 4, 8, 16, 32, 64, 128, 245]);
        assert_eq!(batch_sizes(10, 4), [4, 6]);
    }

    #[test]
    fn a_failing_batch_stops_the_rest() {
        let mut plan = SlowStart::new(10, 1);
        plan.record(0);
        plan.record(0);
        assert_eq!(plan.next_batch(), Some(4));
        plan.record(2);
        assert_eq!(plan.next_batch(), None);
        assert_eq!(plan.successes(), 5);
    }

    /// kube's `TestSlowStartBatch`-style check: calls fail from the `n`th on.
    #[tokio::test]
    async fn slow_start_batch_counts_successes_and_stops_on_error() {
        for (count, fail_from, want_successes, want_calls) in [
            (10, usize::MAX, 10, 10),
            (10, 0, 0, 1),
            (10, 1, 1, 3),
            (10, 4, 4, 7),
            (0, 0, 0, 0),
        ] {
            let calls = AtomicUsize::new(0);
            let (successes, error) = slow_start_batch(count, 1, || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n >= fail_from {
                        true => Err(format!("call {n} failed")),
                        false => Ok(()),
                    }
                }
            })
            .await;
            assert_eq!(
                successes, want_successes,
                "count {count}, failing from {fail_from}"
            );
            assert_eq!(calls.load(Ordering::SeqCst), want_calls);
            assert_eq!(error.is_some(), fail_from < count);
        }
    }
}
