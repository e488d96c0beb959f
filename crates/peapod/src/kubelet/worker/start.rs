//! Starting one container attempt: its image (EnsureImageExists), bundle, create and start,
//! its postStart hook, and the waiting states and back-off of a start that failed.

use super::*;
use crate::kubelet::environment::{self, EnvError, EnvSources};
use crate::shim::protocol::ContainerLabels;

/// How long an image may take to be ready before the pod's status is written while waiting
/// for it; a present image never waits this long, so a start costs no extra status write.
const STATUS_DURING_PULL_AFTER: Duration = Duration::from_millis(200);

/// What became of a container's image.
pub(super) enum Ensured {
    Ready(Box<peapod_image::Image>),
    Failed(EnsureError),
    Interrupted,
}

/// Returns once the pod is no longer what `seen` describes (changed, being deleted, gone).
async fn pod_changed(
    poke: &mut mpsc::UnboundedReceiver<()>,
    ctx: &Context,
    uid: &str,
    seen: &(ObjectMeta, Option<PodSpec>),
) {
    loop {
        let same = ctx.pods.get(uid).is_some_and(|p| identity(&p) == *seen);
        if !same {
            return;
        }
        if poke.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

impl Worker {
    /// Restarts a container that exited or failed to start, after its back-off.
    pub(super) async fn restart(
        &mut self,
        pod: &Pod,
        container: &Container,
        init: bool,
    ) -> Option<Duration> {
        let key = container.name.clone();
        let tracked = self.containers.get(&key).cloned()?;
        let exited_at = tracked.exited_at.unwrap_or_else(Instant::now);
        let config_changed = self.config_changed(pod, container, &tracked.status);
        let backoff = self.backoff.remaining(&key, exited_at, Instant::now());
        if let Some(remaining) = backoff.filter(|_| !config_changed) {
            let delay = self.backoff_delay(&key, exited_at);
            let waiting = tracked
                .status
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref());
            let waiting_reason = waiting.and_then(|w| w.reason.clone());
            let waiting_message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
            let reason = match waiting_reason.as_deref() {
                Some("ErrImagePull" | "ImagePullBackOff") => "ImagePullBackOff",
                // No container was created, so there is nothing to crash-loop on: the kubelet
                // keeps the reason and its message and retries on a later sync.
                Some(
                    "CreateContainerConfigError"
                    | "CreateContainerError"
                    | "ErrImageNeverPull"
                    | "InvalidImageName",
                ) => {
                    return Some(remaining);
                }
                _ => "CrashLoopBackOff",
            };
            let message = match waiting_reason.as_deref() {
                // image_manager.go: `Back-off pulling image "X": ErrImagePull: <pull error>`.
                Some("ErrImagePull") => format!(
                    "Back-off pulling image \"{}\": ErrImagePull: {waiting_message}",
                    image_of(container)
                ),
                Some("ImagePullBackOff") => waiting_message,
                _ => format!(
                    "back-off {} restarting failed container={} pod={}_{}({})",
                    crate::kubelet::format_go_duration(delay),
                    container.name,
                    self.name,
                    self.namespace,
                    self.uid
                ),
            };
            if waiting_reason.as_deref() != Some(reason) {
                // The image back-off event is Normal in the kubelet, the crash loop's Warning.
                let (event_type, event_message) = if reason == "ImagePullBackOff" {
                    (
                        EventType::Normal,
                        format!("Back-off pulling image \"{}\"", image_of(container)),
                    )
                } else {
                    (
                        EventType::Warning,
                        format!(
                            "Back-off restarting failed container {} in pod {}_{}({})",
                            container.name, self.name, self.namespace, self.uid
                        ),
                    )
                };
                self.event(
                    pod,
                    event_type,
                    "BackOff",
                    &event_message,
                    Some(field_path(container, init)),
                );
                if reason == "ImagePullBackOff" {
                    self.failed_event(pod, reason, Some(field_path(container, init)));
                }
            }
            self.set_waiting(&key, reason, Some(message));
            return Some(remaining);
        }
        // kubelet's doBackOff: the back-off grows when a restart goes ahead, so the first
        // restart after an exit is immediate and the next waits the base, then doubles.
        self.backoff.next(&key, Instant::now());
        self.start(pod, container, init).await
    }

    pub(super) fn backoff_delay(&self, key: &str, exited_at: Instant) -> Duration {
        self.backoff
            .remaining(key, exited_at, exited_at)
            .unwrap_or(self.ctx.backoff_base)
    }

    /// Starts one attempt of a container: image, bundle, create, start.
    pub(super) async fn start(
        &mut self,
        pod: &Pod,
        container: &Container,
        init: bool,
    ) -> Option<Duration> {
        let name = container.name.clone();
        let previous = self.containers.get(&name).cloned();
        let had_attempt = previous
            .as_ref()
            .is_some_and(|t| container_id(&t.status).is_some());
        let restart_count = match &previous {
            Some(t) if had_attempt => t.status.restart_count + 1,
            Some(t) => t.status.restart_count,
            None => 0,
        };
        // The attempt that ended is the last state: still in `state` when the restart comes
        // without a back-off wait, already moved to `lastState` by set_waiting when the
        // container sat in CrashLoopBackOff first.
        let last_state = previous.as_ref().and_then(|t| {
            t.status
                .state
                .clone()
                .filter(|s| s.terminated.is_some())
                .or_else(|| t.status.last_state.clone())
        });
        let fpath = Some(field_path(container, init));
        let image_ref = image_of(container);
        let image = match self.ensure_image(pod, container, init).await {
            Ensured::Ready(image) => *image,
            Ensured::Failed(failure) => {
                self.failed_event(pod, failure.reason, fpath.clone());
                return Some(self.fail_before_start(
                    &name,
                    &image_ref,
                    restart_count,
                    last_state,
                    failure.reason,
                    failure.message,
                ));
            }
            // The pod changed while its image was being pulled; the pull goes on and the
            // next pass, which sees the change first, joins it.
            Ensured::Interrupted => return Some(Duration::ZERO),
        };
        let image_name = image
            .names
            .first()
            .cloned()
            .unwrap_or_else(|| image.id.clone());
        let image_id = image_id(&image);
        let id = new_container_id();
        let env = match self.container_env(pod, container) {
            Ok(env) => {
                self.config_blocked.remove(&name);
                env
            }
            Err(err) => {
                let message = err.to_string();
                self.failed_event(pod, &message, fpath);
                self.config_blocked.insert(name.clone());
                return Some(self.fail_before_start(
                    &name,
                    &image_name,
                    restart_count,
                    last_state,
                    "CreateContainerConfigError",
                    message,
                ));
            }
        };
        let sandbox = self.sandbox.as_ref()?;
        let prepared = bundle::prepare(&BundleInputs {
            paths: &self.ctx.paths,
            pod,
            container,
            image: &image,
            images: &self.ctx.images,
            volumes: &sandbox.volumes,
            env: &env,
            container_id: &id,
            restart_count,
        });
        let request = match prepared {
            Ok(mut request) => {
                request.labels = ContainerLabels {
                    restart_count,
                    image: image_name.clone(),
                    image_id: image_id.clone(),
                };
                request
            }
            Err(err) => {
                let message = err.to_string();
                self.failed_event(pod, &message, fpath);
                return Some(self.fail_before_start(
                    &name,
                    &image_name,
                    restart_count,
                    last_state,
                    err.waiting_reason(),
                    message,
                ));
            }
        };
        let client = sandbox.client.clone();
        let started = match client.create(request).await {
            Ok(_) => {
                self.event(
                    pod,
                    EventType::Normal,
                    "Created",
                    &format!("Created container: {name}"),
                    fpath.clone(),
                );
                client.start(&id).await
            }
            Err(err) => Err(err),
        };
        let base = ContainerStatus {
            name: name.clone(),
            image: image_name,
            image_id,
            container_id: Some(format!("peapod://{id}")),
            restart_count,
            last_state: last_state.clone(),
            ready: false,
            started: Some(false),
            ..Default::default()
        };
        if let Some(prev) = previous.as_ref().and_then(|t| container_id(&t.status)) {
            let _ = client.remove(&prev).await;
            self.remove_attempt_dir(&name, &prev);
        }
        match started {
            Ok(()) => {
                self.event(
                    pod,
                    EventType::Normal,
                    "Started",
                    &format!("Started container {name}"),
                    fpath,
                );
                // started and ready as the probes will see them: without a startup probe
                // the container is started at once, without a readiness probe ready at once.
                let started = !self.startup_probed.contains(&name);
                let ready = started && !self.readiness_probed.contains(&name);
                let running = ContainerStatus {
                    state: Some(ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(now()),
                        }),
                        ..Default::default()
                    }),
                    ready,
                    started: Some(started),
                    ..base
                };
                let post_start = container
                    .lifecycle
                    .as_ref()
                    .and_then(|l| l.post_start.as_ref());
                if let Some(hook) = post_start {
                    // While postStart runs the pod shows the container still being created,
                    // as kubelet's status written before its blocked sync does.
                    let creating = ContainerStatus {
                        state: Some(waiting("ContainerCreating", None)),
                        ready: false,
                        started: Some(false),
                        ..running.clone()
                    };
                    self.track(&name, creating);
                    self.write_status(pod).await;
                    self.track(&name, running);
                    return self.run_post_start(pod, container, init, hook, &id).await;
                }
                self.track(&name, running);
                None
            }
            Err(err) => {
                let message = err.to_string();
                self.failed_event(pod, &message, fpath);
                let _ = client.remove(&id).await;
                let now = now();
                self.containers.insert(
                    name,
                    Tracked {
                        status: ContainerStatus {
                            state: Some(ContainerState {
                                terminated: Some(ContainerStateTerminated {
                                    exit_code: 128,
                                    reason: Some("StartError".into()),
                                    message: Some(message),
                                    started_at: Some(Time(jiff::Timestamp::UNIX_EPOCH)),
                                    finished_at: Some(now),
                                    container_id: Some(format!("peapod://{id}")),
                                    signal: None,
                                }),
                                ..Default::default()
                            }),
                            ..base
                        },
                        exited_at: Some(Instant::now()),
                    },
                );
                Some(Duration::ZERO)
            }
        }
    }

    /// Whether a container that waits for a ConfigMap or Secret would now fare otherwise
    /// (it appeared, or another key or object is missing): then it is tried at once.
    fn config_changed(&self, pod: &Pod, container: &Container, status: &ContainerStatus) -> bool {
        if !self.config_blocked.contains(&container.name) {
            return false;
        }
        let waiting = status.state.as_ref().and_then(|s| s.waiting.as_ref());
        let message = waiting.and_then(|w| w.message.as_deref());
        let now = self
            .container_env(pod, container)
            .err()
            .map(|e| e.to_string());
        now.as_deref() != message
    }

    /// The container's environment (kubelet's makeEnvironmentVariables).
    fn container_env(
        &self,
        pod: &Pod,
        container: &Container,
    ) -> Result<Vec<(String, String)>, EnvError> {
        let facts = PodFacts {
            node_name: self.ctx.node_name.clone(),
            host_ip: self.ctx.host_ip.clone(),
            pod_ip: self.pod_ip.clone(),
        };
        let spec = pod.spec.as_ref();
        let links = spec.and_then(|s| s.enable_service_links).unwrap_or(true);
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        environment::resolve(&EnvSources {
            pod,
            container,
            config: &self.ctx.config,
            facts: &facts,
            allocatable: &self.ctx.allocatable,
            services: &self.ctx.services.env(namespace, links),
        })
    }

    /// Records `status` as the container's current attempt.
    fn track(&mut self, name: &str, status: ContainerStatus) {
        self.containers.insert(
            name.to_string(),
            Tracked {
                status,
                exited_at: None,
            },
        );
    }

    /// postStart, which the container's Running state waits for; when it fails the container
    /// is killed (preStop runs) and waits with PostStartHookError before its restart.
    pub(super) async fn run_post_start(
        &mut self,
        pod: &Pod,
        container: &Container,
        init: bool,
        hook: &k8s_openapi::api::core::v1::LifecycleHandler,
        id: &str,
    ) -> Option<Duration> {
        let Err(message) = self.run_hook(pod, container, hook, id).await else {
            return None;
        };
        tracing::info!(pod = %self.name, container = %container.name, %message, "postStart hook failed");
        // The details stay out of the event, which everyone may read: they may hold secrets.
        self.event(
            pod,
            EventType::Warning,
            "FailedPostStartHook",
            "PostStartHook failed",
            Some(field_path(container, init)),
        );
        let spec = pod.spec.clone().unwrap_or_default();
        let grace =
            Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64);
        self.stop_containers(
            pod,
            std::slice::from_ref(container),
            init,
            grace,
            StopReason::Kubelet(Some("FailedPostStartHook".into())),
        )
        .await;
        let restarts = init || spec.restart_policy.as_deref() != Some("Never");
        if restarts {
            self.set_waiting(&container.name, "PostStartHookError", Some(message));
        }
        Some(Duration::ZERO)
    }

    /// kubelet's EnsureImageExists for `container`, given up when the pod changes (a delete
    /// must not wait for a long pull). The status written first shows the pod creating its
    /// containers while the pull runs.
    pub(super) async fn ensure_image(
        &mut self,
        pod: &Pod,
        container: &Container,
        init: bool,
    ) -> Ensured {
        let ctx = self.ctx.clone();
        let fpath = Some(field_path(container, init));
        let subject = pod.clone();
        let record = move |type_: EventType, reason: &str, message: &str| {
            events::record(&ctx, &subject, type_, reason, message, fpath.clone());
        };
        let ctx = self.ctx.clone();
        let image = image_of(container);
        let pull_secrets = crate::kubelet::pull_secrets::for_pod(&ctx, pod);
        let mut ensure = std::pin::pin!(ctx.image_manager.ensure(
            &image,
            container.image_pull_policy.as_deref(),
            &pull_secrets,
            &record
        ));
        let seen = identity(pod);
        let finish = |result: Result<peapod_image::Image, EnsureError>| match result {
            Ok(image) => Ensured::Ready(Box::new(image)),
            Err(failure) => Ensured::Failed(failure),
        };
        {
            tokio::select! {
                result = &mut ensure => return finish(result),
                () = self.pod_changed_from(&seen) => return Ensured::Interrupted,
                () = tokio::time::sleep(STATUS_DURING_PULL_AFTER) => {}
            }
        }
        // A pull that takes a while: show where the pod stands meanwhile.
        self.write_status(pod).await;
        tokio::select! {
            result = ensure => finish(result),
            () = self.pod_changed_from(&seen) => Ensured::Interrupted,
        }
    }

    /// Resolves once the pod is no longer `seen` (or is gone).
    pub(super) async fn pod_changed_from(&mut self, seen: &(ObjectMeta, Option<PodSpec>)) {
        pod_changed(&mut self.poke, &self.ctx, &self.uid, seen).await
    }

    /// A start that failed before any process existed: the container waits with `reason`.
    pub(super) fn fail_before_start(
        &mut self,
        name: &str,
        image: &str,
        restart_count: i32,
        last_state: Option<ContainerState>,
        reason: &str,
        message: String,
    ) -> Duration {
        let now_instant = Instant::now();
        let exited_at = self.containers.get(name).and_then(|t| t.exited_at);
        if self
            .backoff
            .remaining(name, exited_at.unwrap_or(now_instant), now_instant)
            .is_none()
        {
            self.backoff.next(name, now_instant);
        }
        self.containers.insert(
            name.to_string(),
            Tracked {
                status: ContainerStatus {
                    name: name.to_string(),
                    image: image.to_string(),
                    restart_count,
                    last_state,
                    state: Some(waiting(reason, Some(message))),
                    started: Some(false),
                    ..Default::default()
                },
                exited_at: Some(now_instant),
            },
        );
        let delay = self
            .backoff
            .remaining(name, now_instant, now_instant)
            .unwrap_or(self.ctx.backoff_base);
        if reason == "ErrImagePull" {
            // The failed pull shows as ErrImagePull until the next pass, which finds the
            // image in back-off and reports ImagePullBackOff for the rest of the delay.
            return (delay / 2).min(Duration::from_secs(1));
        }
        delay
    }
}
