//! Single-flight work keyed by name: the first caller starts a task, later callers for the same
//! key join it, and every caller sees its progress events and its one result. The task runs on
//! its own, so a caller that goes away cancels nothing for the others.
//!
//! Late joiners get the events that matter (every event without a coalescing key, and the
//! latest of each keyed one), so memory stays bounded however many progress events a task
//! emits.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// An event kind whose newer instances replace older ones with the same key (progress).
pub trait Coalesce {
    fn coalesce_key(&self) -> Option<&str>;
}

/// The task ended without a result (it panicked or was cancelled by the runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the task ended without a result")]
pub struct FlightAborted;

type InFlight<E, R> = Arc<Mutex<HashMap<String, Arc<Flight<E, R>>>>>;

/// The tasks in flight, keyed. Cheap to clone; clones share the tasks.
pub struct Flights<E, R> {
    inflight: InFlight<E, R>,
}

impl<E, R> Clone for Flights<E, R> {
    fn clone(&self) -> Self {
        Flights {
            inflight: self.inflight.clone(),
        }
    }
}

impl<E, R> Default for Flights<E, R> {
    fn default() -> Self {
        Flights {
            inflight: Arc::default(),
        }
    }
}

struct Flight<E, R> {
    state: Mutex<State<E, R>>,
    changed: watch::Sender<u64>,
}

struct State<E, R> {
    seq: u64,
    /// Events without a coalescing key, in order.
    log: Vec<(u64, E)>,
    /// The latest event of each coalescing key.
    latest: HashMap<String, (u64, E)>,
    result: Option<Result<R, FlightAborted>>,
}

/// What a task uses to report progress.
pub struct Emitter<E, R> {
    flight: Arc<Flight<E, R>>,
}

impl<E, R> Clone for Emitter<E, R> {
    fn clone(&self) -> Self {
        Emitter {
            flight: self.flight.clone(),
        }
    }
}

impl<E: Coalesce, R> Emitter<E, R> {
    pub fn emit(&self, event: E) {
        {
            let mut state = self.flight.state.lock().expect("flight state lock");
            state.seq += 1;
            let seq = state.seq;
            match event.coalesce_key().map(str::to_string) {
                Some(key) => {
                    state.latest.insert(key, (seq, event));
                }
                None => state.log.push((seq, event)),
            }
        }
        self.flight.changed.send_modify(|v| *v += 1);
    }
}

/// One step seen by a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<E, R> {
    Event(E),
    Done(Result<R, FlightAborted>),
}

/// One caller's view of a task: its events, then its result.
pub struct Subscription<E, R> {
    flight: Arc<Flight<E, R>>,
    changed: watch::Receiver<u64>,
    seen: u64,
    pending: VecDeque<E>,
    finished: bool,
    /// Whether this caller started the task (false: it joined one in flight).
    pub started: bool,
}

impl<E, R> Flights<E, R>
where
    E: Coalesce + Clone + Send + 'static,
    R: Clone + Send + 'static,
{
    /// Joins the task in flight for `key`, or starts `start(emitter)` as a new one.
    pub fn join<F, Fut>(&self, key: &str, start: F) -> Subscription<E, R>
    where
        F: FnOnce(Emitter<E, R>) -> Fut,
        Fut: Future<Output = R> + Send + 'static,
    {
        let mut inflight = self.inflight.lock().expect("flights lock");
        if let Some(flight) = inflight.get(key) {
            return Subscription::new(flight.clone(), false);
        }
        let (changed, _) = watch::channel(0);
        let flight = Arc::new(Flight {
            state: Mutex::new(State {
                seq: 0,
                log: Vec::new(),
                latest: HashMap::new(),
                result: None,
            }),
            changed,
        });
        inflight.insert(key.to_string(), flight.clone());
        let subscription = Subscription::new(flight.clone(), true);
        let task = tokio::spawn(start(Emitter {
            flight: flight.clone(),
        }));
        let flights = self.clone();
        let key = key.to_string();
        tokio::spawn(async move {
            let result = task.await.map_err(|_| FlightAborted);
            flights.finish(&key, &flight, result);
        });
        subscription
    }

    /// How many tasks are in flight.
    pub fn len(&self) -> usize {
        self.inflight.lock().expect("flights lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn finish(&self, key: &str, flight: &Arc<Flight<E, R>>, result: Result<R, FlightAborted>) {
        {
            let mut inflight = self.inflight.lock().expect("flights lock");
            if inflight.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
                inflight.remove(key);
            }
        }
        flight.state.lock().expect("flight state lock").result = Some(result);
        flight.changed.send_modify(|v| *v += 1);
    }
}

impl<E: Clone, R: Clone> Subscription<E, R> {
    fn new(flight: Arc<Flight<E, R>>, started: bool) -> Self {
        Subscription {
            changed: flight.changed.subscribe(),
            flight,
            seen: 0,
            pending: VecDeque::new(),
            finished: false,
            started,
        }
    }

    /// The next event, then the result once; `None` after that.
    pub async fn next(&mut self) -> Option<Step<E, R>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Step::Event(event));
            }
            if self.finished {
                return None;
            }
            self.changed.borrow_and_update();
            if let Some(result) = self.collect() {
                self.finished = true;
                return Some(Step::Done(result));
            }
            if !self.pending.is_empty() {
                continue;
            }
            // The flight holds the sender as long as this subscription holds the flight.
            let _ = self.changed.changed().await;
        }
    }

    /// Waits for the result, handing each event to `on_event`.
    pub async fn result(mut self, mut on_event: impl FnMut(E)) -> Result<R, FlightAborted> {
        while let Some(step) = self.next().await {
            match step {
                Step::Event(event) => on_event(event),
                Step::Done(result) => return result,
            }
        }
        Err(FlightAborted)
    }

    /// Queues the events newer than those seen; the result once every event is queued.
    fn collect(&mut self) -> Option<Result<R, FlightAborted>> {
        let state = self.flight.state.lock().expect("flight state lock");
        let seen = self.seen;
        let start = state.log.partition_point(|(seq, _)| *seq <= seen);
        let mut fresh: Vec<(u64, E)> = state.log[start..].to_vec();
        fresh.extend(
            state
                .latest
                .values()
                .filter(|(seq, _)| *seq > seen)
                .cloned(),
        );
        fresh.sort_by_key(|(seq, _)| *seq);
        self.seen = state.seq;
        self.pending.extend(fresh.into_iter().map(|(_, e)| e));
        if self.pending.is_empty() {
            state.result.clone()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Start,
        Progress(&'static str, u32),
        Ready(&'static str),
    }

    impl Coalesce for Ev {
        fn coalesce_key(&self) -> Option<&str> {
            match self {
                Ev::Progress(key, _) => Some(key),
                _ => None,
            }
        }
    }

    type TestFlights = Flights<Ev, u32>;

    /// Starts (or joins) a fake task for `key` that waits for `release` and returns 7.
    fn fake(
        flights: &TestFlights,
        key: &str,
        runs: &Arc<AtomicUsize>,
        release: Arc<tokio::sync::Notify>,
    ) -> Subscription<Ev, u32> {
        let runs = runs.clone();
        flights.join(key, move |emitter| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            emitter.emit(Ev::Start);
            emitter.emit(Ev::Progress("a", 1));
            emitter.emit(Ev::Progress("a", 2));
            release.notified().await;
            emitter.emit(Ev::Progress("a", 3));
            emitter.emit(Ev::Ready("a"));
            7
        })
    }

    async fn drain(mut sub: Subscription<Ev, u32>) -> (Vec<Ev>, Result<u32, FlightAborted>) {
        let mut events = Vec::new();
        while let Some(step) = sub.next().await {
            match step {
                Step::Event(e) => events.push(e),
                Step::Done(r) => return (events, r),
            }
        }
        panic!("no result")
    }

    #[tokio::test]
    async fn many_callers_share_one_task_and_its_result() {
        let flights = TestFlights::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let subs: Vec<_> = (0..10)
            .map(|_| fake(&flights, "busybox", &runs, release.clone()))
            .collect();
        assert_eq!(subs.iter().filter(|s| s.started).count(), 1);
        let other = fake(&flights, "nginx", &runs, release.clone());
        assert!(other.started);
        assert_eq!(flights.len(), 2);
        let handles: Vec<_> = subs.into_iter().map(|s| tokio::spawn(drain(s))).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.notify_waiters();
        for handle in handles {
            let (events, result) = handle.await.unwrap();
            assert_eq!(result, Ok(7));
            assert_eq!(events.first(), Some(&Ev::Start));
            assert_eq!(events.last(), Some(&Ev::Ready("a")));
            assert!(events.contains(&Ev::Progress("a", 3)));
        }
        drop(other);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_late_joiner_gets_the_latest_progress_not_every_step() {
        let flights = TestFlights::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let first = fake(&flights, "k", &runs, release.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let late = fake(&flights, "k", &runs, release.clone());
        assert!(!late.started);
        let late = tokio::spawn(drain(late));
        tokio::time::sleep(Duration::from_millis(20)).await;
        release.notify_waiters();
        let (events, result) = late.await.unwrap();
        assert_eq!(result, Ok(7));
        assert_eq!(
            events,
            vec![
                Ev::Start,
                Ev::Progress("a", 2),
                Ev::Progress("a", 3),
                Ev::Ready("a")
            ]
        );
        drop(first);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_caller_going_away_does_not_cancel_the_task() {
        let flights = TestFlights::default();
        let release = Arc::new(tokio::sync::Notify::new());
        let (done_tx, done_rx) = oneshot::channel();
        let gate = release.clone();
        let only = flights.join("k", move |_| async move {
            gate.notified().await;
            let _ = done_tx.send(());
            1
        });
        let waiter = tokio::spawn(drain(only));
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiter.abort();
        let _ = waiter.await;
        // Nobody listens any more, yet the task runs to its end.
        release.notify_one();
        tokio::time::timeout(Duration::from_secs(5), done_rx)
            .await
            .expect("the task finished")
            .unwrap();
    }

    #[tokio::test]
    async fn a_finished_task_leaves_and_the_next_caller_starts_anew() {
        let flights = TestFlights::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let sub = fake(&flights, "k", &runs, release.clone());
        let handle = tokio::spawn(drain(sub));
        tokio::time::sleep(Duration::from_millis(20)).await;
        release.notify_waiters();
        assert_eq!(handle.await.unwrap().1, Ok(7));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(flights.is_empty());
        let again = fake(&flights, "k", &runs, release.clone());
        assert!(again.started);
    }

    #[tokio::test]
    async fn a_panicking_task_ends_every_caller_with_aborted() {
        let flights = TestFlights::default();
        let sub = flights.join("k", |_| async { panic!("boom") });
        let result = sub.result(|_| {}).await;
        assert_eq!(result, Err(FlightAborted));
    }
}
