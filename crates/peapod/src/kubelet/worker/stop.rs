//! Stopping containers as kubelet's killContainer does (Killing event, preStop hooks within the
//! grace period, stop signal, SIGKILL), and the pod's graceful deletion.

use super::*;
use crate::kubelet::status_manager;

/// The shortest stop kubelet gives a container it kills itself (not a deletion's override).
const MINIMUM_GRACE: Duration = Duration::from_secs(2);
/// How many times the final delete of a pod is tried.
const REMOVE_ATTEMPTS: usize = 5;

/// Why containers are being stopped.
pub(super) enum StopReason {
    /// The pod is being deleted: its grace period is used as given.
    Deletion,
    /// The kubelet's own decision (a failed probe or hook, the active deadline, sidecars after
    /// the app containers), with the Killing event's message when it is not the usual one.
    Kubelet(Option<String>),
}

impl Worker {
    pub(super) async fn stop_sidecars(
        &mut self,
        pod: &Pod,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) {
        let grace = Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30) as u64);
        let sidecars: Vec<Container> = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| status::is_sidecar(c))
            .rev()
            .cloned()
            .collect();
        for sidecar in sidecars {
            if self.is_running(&sidecar.name) {
                self.stop_containers(
                    pod,
                    std::slice::from_ref(&sidecar),
                    true,
                    grace,
                    StopReason::Kubelet(None),
                )
                .await;
            }
        }
    }

    /// Stops `containers` together as kubelet's killContainer does: a Killing event, the
    /// preStop hooks within the grace period, the stop signal, then SIGKILL once what is left
    /// of the grace period has passed.
    pub(super) async fn stop_containers(
        &mut self,
        pod: &Pod,
        containers: &[Container],
        init: bool,
        grace: Duration,
        why: StopReason,
    ) {
        let Some(client) = self.sandbox.as_ref().map(|s| s.client.clone()) else {
            return;
        };
        let mut targets: Vec<(Container, String)> = Vec::new();
        for container in containers {
            let Some(tracked) = self.containers.get(&container.name) else {
                continue;
            };
            if tracked
                .status
                .state
                .as_ref()
                .is_none_or(|s| s.running.is_none())
            {
                continue;
            }
            let Some(id) = container_id(&tracked.status) else {
                continue;
            };
            let message = match &why {
                StopReason::Kubelet(Some(message)) => message.clone(),
                _ => format!("Stopping container {}", container.name),
            };
            self.event(
                pod,
                EventType::Normal,
                "Killing",
                &message,
                Some(field_path(container, init)),
            );
            targets.push((container.clone(), id));
        }
        if targets.is_empty() {
            return;
        }
        let mut grace = grace;
        if !grace.is_zero() {
            let spent = self.run_pre_stop_hooks(pod, &targets, init, grace).await;
            // kubelet counts the hook's time in whole seconds.
            grace = grace.saturating_sub(Duration::from_secs(spent.as_secs()));
            if matches!(why, StopReason::Kubelet(_)) {
                grace = grace.max(MINIMUM_GRACE);
            }
        }
        let mut ids = Vec::new();
        for (container, id) in &targets {
            let signal = if grace.is_zero() {
                libc::SIGKILL
            } else {
                self.stop_signal(container)
            };
            let _ = client.kill(id, signal).await;
            ids.push(id.clone());
        }
        let deadline = Instant::now() + grace;
        let mut killed = grace.is_zero();
        while ids.iter().any(|id| self.is_running_id(id)) {
            let now = Instant::now();
            let wait = if now >= deadline {
                if !killed {
                    for id in ids.iter().filter(|id| self.is_running_id(id)) {
                        let _ = client.kill(id, libc::SIGKILL).await;
                    }
                    killed = true;
                }
                Duration::from_secs(10)
            } else {
                deadline - now
            };
            // Readiness keeps being probed while containers stop, and a container that
            // turns unready is reported at once, as kubelet's status manager does.
            let woke = tokio::time::timeout(wait, async {
                tokio::select! {
                    exit = recv_exit(&mut self.exits) => Wake::from_exit(exit),
                    Some(report) = self.probe_reports.1.recv() => Wake::Probe(report),
                }
            })
            .await;
            match woke {
                Ok(Wake::Exit(event)) => {
                    self.on_exit(&event);
                    self.publish_instances();
                }
                Ok(Wake::Probe(report)) => {
                    if self.on_probe(&report) {
                        self.write_status(pod).await;
                    }
                }
                Ok(_) => {
                    self.forget_sandbox().await;
                    return;
                }
                Err(_) if killed => return,
                Err(_) => {}
            }
        }
    }

    /// The preStop hooks of `targets`, together, for at most `grace`; returns the time spent.
    pub(super) async fn run_pre_stop_hooks(
        &self,
        pod: &Pod,
        targets: &[(Container, String)],
        init: bool,
        grace: Duration,
    ) -> Duration {
        let began = Instant::now();
        let hooks = targets.iter().filter_map(|(container, id)| {
            let hook = container.lifecycle.as_ref()?.pre_stop.as_ref()?;
            Some(async move {
                if let Err(message) = self.run_hook(pod, container, hook, id).await {
                    tracing::info!(pod = %self.name, container = %container.name, %message, "preStop hook failed");
                    self.event(
                        pod,
                        EventType::Warning,
                        "FailedPreStopHook",
                        "PreStopHook failed",
                        Some(field_path(container, init)),
                    );
                }
            })
        });
        let all = futures::future::join_all(hooks);
        // A hook still running when the grace period ends dies with its container.
        let _ = tokio::time::timeout(grace, all).await;
        began.elapsed()
    }

    /// Runs one lifecycle handler for container instance `id`.
    pub(super) async fn run_hook(
        &self,
        pod: &Pod,
        container: &Container,
        hook: &k8s_openapi::api::core::v1::LifecycleHandler,
        id: &str,
    ) -> Result<(), String> {
        let Some(shim) = self.sandbox.as_ref().map(|s| s.client.clone()) else {
            return Err("pod sandbox is gone".into());
        };
        let pod_name = format!(
            "{}_{}({})",
            pod.metadata.name.as_deref().unwrap_or_default(),
            self.namespace,
            self.uid
        );
        let target = HookTarget {
            shim: &shim,
            container_id: id,
            container,
            pod_ip: self.pod_ip.as_deref(),
            pod: &pod_name,
        };
        hooks::run(hook, &target).await
    }

    pub(super) fn is_running_id(&self, id: &str) -> bool {
        let full = format!("peapod://{id}");
        self.containers.values().any(|t| {
            t.status.container_id.as_deref() == Some(full.as_str())
                && t.status.state.as_ref().is_some_and(|s| s.running.is_some())
        })
    }

    pub(super) fn stop_signal(&self, container: &Container) -> i32 {
        self.ctx
            .images
            .get(&image_of(container))
            .ok()
            .and_then(|image| image.config.stop_signal)
            .and_then(|name| parse_signal(&name))
            .unwrap_or(libc::SIGTERM)
    }

    pub(super) async fn stop_sandbox(&mut self) {
        self.ctx.scheduler.release(&self.uid);
        self.probes = None;
        // Without a sandbox the pod may still hold its address: its shim died, or an agent
        // died between stopping the shim and releasing the address.
        if self.sandbox.take().is_some() || self.ctx.network.pod_ip(&self.uid).is_some() {
            sandbox::stop_shim(&self.ctx, &self.uid).await;
            self.exits = None;
        }
    }

    /// Graceful pod deletion: app containers together, then sidecars in reverse order, within
    /// the grace period; then the sandbox, the pod's files, and the object itself.
    pub(super) async fn terminate_and_remove(&mut self, pod: &Pod) {
        if self.sandbox.is_none() && !self.terminal {
            if let Some(sandbox) = sandbox::attach(&self.ctx, pod).await.any() {
                self.watch_exits(&sandbox).await;
                self.sandbox = Some(sandbox);
                self.reconcile_with_shim().await;
            }
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or(spec.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0) as u64;
        let deadline = Instant::now() + Duration::from_secs(grace);
        if let Some(probes) = &mut self.probes {
            probes.stop_liveness();
        }
        self.stop_containers(
            pod,
            &spec.containers,
            false,
            Duration::from_secs(grace),
            StopReason::Deletion,
        )
        .await;
        let sidecars: Vec<Container> = spec
            .init_containers
            .iter()
            .flatten()
            .rev()
            .cloned()
            .collect();
        for sidecar in sidecars {
            let left = deadline.saturating_duration_since(Instant::now());
            self.stop_containers(
                pod,
                std::slice::from_ref(&sidecar),
                true,
                left,
                StopReason::Deletion,
            )
            .await;
        }
        self.terminal = true;
        self.write_final_status_and_tear_down(pod).await;
        self.remove_pod(pod).await;
    }

    /// The last status (as it reads while the sandbox is still there) is written while the
    /// sandbox, the pod's network and its files go; both are done before the object goes.
    async fn write_final_status_and_tear_down(&mut self, pod: &Pod) {
        let status = self.build_status(&self.ctx.pods.freshest(pod));
        self.sandbox = None;
        let (ctx, uid) = (self.ctx.clone(), self.uid.clone());
        let written = status_manager::write_status(&ctx.client, &ctx.pods, pod, |_| status.clone());
        let teardown = async {
            // Whether a shim answers or not: the network outlives a shim that died, or one an
            // agent stopped just before it died, and must go with the pod all the same.
            sandbox::stop_shim(&ctx, &uid).await;
            sandbox::remove_files(&ctx.paths, &uid);
            ctx.tokens.forget(&uid);
        };
        if let (Err(err), ()) = tokio::join!(written, teardown) {
            tracing::warn!(pod = %self.name, %err, "writing the final pod status");
        }
    }

    /// The pod's removal from the API, tried again while it fails.
    async fn remove_pod(&self, pod: &Pod) {
        for _ in 0..REMOVE_ATTEMPTS {
            match status_manager::remove_pod(&self.ctx.client, pod).await {
                Ok(()) => return,
                Err(err) => tracing::warn!(pod = %self.name, %err, "removing the pod; will retry"),
            }
            tokio::time::sleep(STATUS_RETRY).await;
        }
    }

    pub(super) fn remove_attempt_dir(&self, name: &str, id: &str) {
        let dir = bundle::attempt_dir(&self.ctx.paths, &self.uid, name, id);
        let _ = std::fs::remove_dir_all(dir);
        let bundle = self
            .ctx
            .paths
            .pod_run_dir(&self.uid)
            .join("bundles")
            .join(id);
        let _ = std::fs::remove_dir_all(bundle);
    }
}
