//! A pod's probe workers, as kubelet's prober manager runs them: one task per container and
//! probe type, probing on its period from the container's start, counting consecutive results
//! against the thresholds and reporting to the pod worker only when a result flips.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::events::{self, EventType};
use super::prober::{self, ProbeTarget, ProbeType};
use super::Context;
use crate::shim::client::ShimClient;

/// The container instance a probe worker looks at, as the pod worker last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub container_id: String,
    /// When this instance started (initialDelaySeconds counts from here).
    pub started_at: jiff::Timestamp,
    pub running: bool,
    /// Its startup probe succeeded, or it has none: liveness and readiness may run.
    pub started: bool,
}

/// A probe's result flipped for one container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub container: String,
    pub kind: ProbeType,
    pub container_id: String,
    pub passed: bool,
}

/// Everything a probe task needs besides its own probe.
#[derive(Clone)]
struct Shared {
    ctx: Arc<Context>,
    pod: Arc<Pod>,
    shim: ShimClient,
    pod_ip: Option<String>,
    reports: mpsc::UnboundedSender<ProbeReport>,
    /// restartPolicy Never: a terminated container is never probed again.
    never_restart: bool,
}

/// The probe tasks of one pod sandbox; dropping it stops them all.
pub struct ProbeWorkers {
    instances: HashMap<String, watch::Sender<Option<Instance>>>,
    tasks: Vec<(ProbeType, JoinHandle<()>)>,
}

impl ProbeWorkers {
    /// Starts a task for every probe of the pod's containers and sidecars (regular init
    /// containers have none).
    pub fn start(
        ctx: Arc<Context>,
        pod: &Pod,
        shim: ShimClient,
        pod_ip: Option<String>,
        reports: mpsc::UnboundedSender<ProbeReport>,
    ) -> ProbeWorkers {
        let spec = pod.spec.clone().unwrap_or_default();
        let shared = Shared {
            ctx,
            pod: Arc::new(pod.clone()),
            shim,
            pod_ip,
            reports,
            never_restart: spec.restart_policy.as_deref() == Some("Never"),
        };
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| super::status::is_sidecar(c))
            .map(|c| (c, true));
        let containers = spec.containers.iter().map(|c| (c, false));
        let mut workers = ProbeWorkers {
            instances: HashMap::new(),
            tasks: Vec::new(),
        };
        for (container, init) in sidecars.chain(containers) {
            let probes = [
                (ProbeType::Startup, &container.startup_probe),
                (ProbeType::Liveness, &container.liveness_probe),
                (ProbeType::Readiness, &container.readiness_probe),
            ];
            for (kind, probe) in probes {
                let Some(probe) = probe.clone() else { continue };
                let instance = workers
                    .instances
                    .entry(container.name.clone())
                    .or_insert_with(|| watch::channel(None).0)
                    .subscribe();
                let task = ProbeTask {
                    shared: shared.clone(),
                    container: container.clone(),
                    init,
                    kind,
                    probe,
                    instance,
                };
                workers.tasks.push((kind, tokio::spawn(task.run())));
            }
        }
        workers
    }

    /// Tells the container's probe tasks which instance to look at.
    pub fn update(&self, container: &str, instance: Option<Instance>) {
        if let Some(tx) = self.instances.get(container) {
            tx.send_if_modified(|current| {
                let changed = *current != instance;
                *current = instance;
                changed
            });
        }
    }

    /// A terminating pod: liveness and startup probes stop (no kill for a failed probe while
    /// the pod shuts down); readiness goes on until the containers stop.
    pub fn stop_liveness(&mut self) {
        self.tasks.retain(|(kind, task)| {
            if *kind == ProbeType::Readiness {
                return true;
            }
            task.abort();
            false
        });
    }
}

impl Drop for ProbeWorkers {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}

/// The result a probe holds before its first run on a new instance: not ready, alive, and
/// not yet started.
fn initial_result(kind: ProbeType) -> Option<bool> {
    match kind {
        ProbeType::Readiness => Some(false),
        ProbeType::Liveness => Some(true),
        ProbeType::Startup => None,
    }
}

/// kubelet's probe worker for one (container, probe type).
struct ProbeTask {
    shared: Shared,
    container: Container,
    init: bool,
    kind: ProbeType,
    probe: Probe,
    instance: watch::Receiver<Option<Instance>>,
}

/// The consecutive-results counter of one container instance.
#[derive(Debug, Default)]
struct Count {
    container_id: String,
    result: Option<bool>,
    last: Option<bool>,
    run: i32,
    /// A liveness or startup failure was reported: nothing more until a new instance.
    on_hold: bool,
}

impl Count {
    fn new(container_id: &str, kind: ProbeType) -> Count {
        Count {
            container_id: container_id.to_string(),
            result: initial_result(kind),
            ..Default::default()
        }
    }

    /// Counts one result against the probe's thresholds (kubelet's consecutive-results
    /// rule); returns the new result when it flips.
    fn observe(&mut self, passed: bool, kind: ProbeType, probe: &Probe) -> Option<bool> {
        if self.last == Some(passed) {
            self.run += 1;
        } else {
            self.last = Some(passed);
            self.run = 1;
        }
        let threshold = if passed {
            probe.success_threshold.unwrap_or(1)
        } else {
            probe.failure_threshold.unwrap_or(3)
        };
        if self.run < threshold.max(1) {
            return None;
        }
        let flipped = (self.result != Some(passed)).then_some(passed);
        self.result = Some(passed);
        if !passed && kind != ProbeType::Readiness {
            self.on_hold = true;
            self.run = 0;
        }
        flipped
    }
}

impl ProbeTask {
    async fn run(mut self) {
        let period = Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64);
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut count = Count::default();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                changed = self.instance.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // kubelet triggers readiness as soon as a container is started, rather
                    // than leaving it unready for up to a period.
                    if !(self.kind == ProbeType::Readiness && self.startable()) {
                        continue;
                    }
                }
            }
            if !self.probe_once(&mut count).await {
                return;
            }
        }
    }

    /// Started and running: what the readiness trigger waits for.
    fn startable(&self) -> bool {
        self.instance
            .borrow()
            .as_ref()
            .is_some_and(|i| i.running && i.started)
    }

    /// kubelet's doProbe; false ends the worker.
    async fn probe_once(&mut self, count: &mut Count) -> bool {
        let Some(instance) = self.instance.borrow_and_update().clone() else {
            return true;
        };
        if instance.container_id != count.container_id {
            *count = Count::new(&instance.container_id, self.kind);
        }
        if count.on_hold {
            return true;
        }
        if !instance.running {
            count.result = Some(false);
            return !self.shared.never_restart;
        }
        let delay = self.probe.initial_delay_seconds.unwrap_or(0).max(0);
        let running_for = jiff::Timestamp::now()
            .duration_since(instance.started_at)
            .as_secs();
        if running_for < i64::from(delay) {
            return true;
        }
        let gated = match self.kind {
            ProbeType::Startup => instance.started,
            _ => !instance.started,
        };
        if gated {
            return true;
        }
        let target = ProbeTarget {
            shim: &self.shared.shim,
            container_id: &instance.container_id,
            container: &self.container,
            pod_ip: self.shared.pod_ip.as_deref(),
        };
        let outcome = prober::run_probe(&self.probe, &target).await;
        if let Some((reason, message)) = outcome.event(self.kind) {
            events::record(
                &self.shared.ctx,
                &self.shared.pod,
                EventType::Warning,
                reason,
                &message,
                Some(events::field_path(&self.container, self.init)),
            );
        }
        let Some(passed) = outcome.passed() else {
            return true;
        };
        if let Some(passed) = count.observe(passed, self.kind, &self.probe) {
            let _ = self.shared.reports.send(ProbeReport {
                container: self.container.name.clone(),
                kind: self.kind,
                container_id: instance.container_id.clone(),
                passed,
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(success: i32, failure: i32) -> Probe {
        Probe {
            success_threshold: Some(success),
            failure_threshold: Some(failure),
            ..Default::default()
        }
    }

    #[test]
    fn readiness_flips_after_consecutive_results() {
        let probe = probe(2, 3);
        let mut count = Count::new("c1", ProbeType::Readiness);
        assert_eq!(count.observe(true, ProbeType::Readiness, &probe), None);
        assert_eq!(
            count.observe(true, ProbeType::Readiness, &probe),
            Some(true)
        );
        assert_eq!(count.observe(true, ProbeType::Readiness, &probe), None);
        // A single opposite result resets the run.
        assert_eq!(count.observe(false, ProbeType::Readiness, &probe), None);
        assert_eq!(count.observe(true, ProbeType::Readiness, &probe), None);
        assert_eq!(count.observe(false, ProbeType::Readiness, &probe), None);
        assert_eq!(count.observe(false, ProbeType::Readiness, &probe), None);
        assert_eq!(
            count.observe(false, ProbeType::Readiness, &probe),
            Some(false)
        );
        assert!(!count.on_hold, "readiness keeps probing");
    }

    #[test]
    fn liveness_starts_healthy_and_holds_after_failing() {
        let probe = probe(1, 2);
        let mut count = Count::new("c1", ProbeType::Liveness);
        assert_eq!(count.observe(true, ProbeType::Liveness, &probe), None);
        assert_eq!(count.observe(false, ProbeType::Liveness, &probe), None);
        assert_eq!(
            count.observe(false, ProbeType::Liveness, &probe),
            Some(false)
        );
        assert!(count.on_hold);
    }

    #[test]
    fn startup_reports_its_first_success() {
        let probe = probe(1, 3);
        let mut count = Count::new("c1", ProbeType::Startup);
        assert_eq!(count.result, None);
        assert_eq!(count.observe(false, ProbeType::Startup, &probe), None);
        assert_eq!(count.observe(true, ProbeType::Startup, &probe), Some(true));
    }
}
