//! What probe results do to containers: ready and started flags, and the kill of a container
//! whose liveness or startup probe failed.

use super::*;

impl Worker {
    /// A probe result flipped; returns whether the container's status changed.
    pub(super) fn on_probe(&mut self, report: &ProbeReport) -> bool {
        let readiness_probed = self.readiness_probed.contains(&report.container);
        let Some(tracked) = self.containers.get_mut(&report.container) else {
            return false;
        };
        let current = container_id(&tracked.status).as_deref() == Some(&report.container_id);
        let running = tracked
            .status
            .state
            .as_ref()
            .is_some_and(|s| s.running.is_some());
        if !current || !running {
            return false;
        }
        match (report.kind, report.passed) {
            (ProbeType::Readiness, ready) => {
                if tracked.status.started != Some(true) || tracked.status.ready == ready {
                    return false;
                }
                tracked.status.ready = ready;
            }
            (ProbeType::Startup, true) => {
                tracked.status.started = Some(true);
                tracked.status.ready = !readiness_probed;
            }
            (ProbeType::Liveness, true) => return false,
            (kind, false) => {
                self.probe_failures.insert(
                    report.container.clone(),
                    (report.container_id.clone(), kind),
                );
            }
        }
        true
    }

    /// Tells the probe tasks which instance of each container runs now.
    pub(super) fn publish_instances(&self) {
        let Some(probes) = &self.probes else {
            return;
        };
        for (name, tracked) in &self.containers {
            let instance = container_id(&tracked.status).map(|id| {
                let running = tracked
                    .status
                    .state
                    .as_ref()
                    .and_then(|s| s.running.as_ref());
                Instance {
                    container_id: id,
                    started_at: running
                        .and_then(|r| r.started_at.as_ref())
                        .map_or(jiff::Timestamp::UNIX_EPOCH, |t| t.0),
                    running: running.is_some(),
                    started: tracked.status.started == Some(true),
                }
            });
            probes.update(name, instance);
        }
    }

    /// Kills the containers whose liveness or startup probe failed, as kubelet's sync does,
    /// with the probe's own grace period when it has one; the restart policy then decides.
    pub(super) async fn kill_failed_probes(&mut self, pod: &Pod, spec: &PodSpec) {
        let failures: Vec<(String, (String, ProbeType))> = self.probe_failures.drain().collect();
        let never = spec.restart_policy.as_deref() == Some("Never");
        for (name, (id, kind)) in failures {
            if !self.is_running_id(&id) {
                continue;
            }
            let sidecar = spec
                .init_containers
                .iter()
                .flatten()
                .find(|c| c.name == name)
                .map(|c| (c, true));
            let Some((container, init)) = sidecar.or_else(|| {
                spec.containers
                    .iter()
                    .find(|c| c.name == name)
                    .map(|c| (c, false))
            }) else {
                continue;
            };
            let (probe, what) = match kind {
                ProbeType::Startup => (&container.startup_probe, "startup"),
                _ => (&container.liveness_probe, "liveness"),
            };
            let message = match (init, never) {
                (true, _) => format!("Init container {name} failed {what} probe"),
                (false, true) => format!("Container {name} failed {what} probe"),
                (false, false) => {
                    format!("Container {name} failed {what} probe, will be restarted")
                }
            };
            let seconds = probe
                .as_ref()
                .and_then(|p| p.termination_grace_period_seconds)
                .or(spec.termination_grace_period_seconds)
                .unwrap_or(30)
                .max(0) as u64;
            let container = container.clone();
            self.stop_containers(
                pod,
                std::slice::from_ref(&container),
                init,
                Duration::from_secs(seconds),
                StopReason::Kubelet(Some(message)),
            )
            .await;
        }
    }
}
