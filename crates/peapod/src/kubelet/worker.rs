//! One pod's worker: compares the pod's spec with what runs in its sandbox and acts — init
//! containers in order, sidecars beside the app containers, restarts under the restart policy
//! with crash-loop back-off, graceful termination — and writes the pod's status.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodIP, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use tokio::sync::mpsc;

use super::backoff::Backoff;
use super::events::{self, EventType};
use super::images::EnsureError;
use super::sandbox::{self, Sandbox};
use super::scheduler;
use super::status;
use super::termination;
use super::Context;
use crate::runtime::bundle::{self, BundleInputs, PodFacts};
use crate::shim::protocol::{ContainerStatus as ShimStatus, ExitEvent, ExitInfo};

/// How long an image may take to be ready before the pod's status is written while waiting
/// for it; a present image never waits this long, so a start costs no extra status write.
const STATUS_DURING_PULL_AFTER: Duration = Duration::from_millis(200);

/// Why the worker woke up.
enum Wake {
    Exit(ExitEvent),
    SandboxGone,
    Poke,
    Timer,
}

/// The worker's view of one container: its Kubernetes status and when its last attempt ended.
#[derive(Clone)]
struct Tracked {
    status: ContainerStatus,
    exited_at: Option<Instant>,
}

pub struct Worker {
    ctx: Arc<Context>,
    namespace: String,
    name: String,
    uid: String,
    sandbox: Option<Sandbox>,
    exits: Option<mpsc::UnboundedReceiver<Option<ExitEvent>>>,
    containers: HashMap<String, Tracked>,
    backoff: Backoff,
    terminal: bool,
    start_time: Option<Time>,
    sandbox_retry_at: Option<Instant>,
    /// Kept once the sandbox is gone: a finished pod still reports the address it had.
    pod_ip: Option<String>,
    /// Why kubelet's admission refused the pod (status reason and message).
    rejected: Option<(String, String)>,
    poke: mpsc::UnboundedReceiver<()>,
    /// Containers whose terminationMessagePolicy is FallbackToLogsOnError (immutable).
    fallback_to_logs: HashSet<String>,
}

impl Worker {
    pub fn new(ctx: Arc<Context>, pod: &Pod, poke: mpsc::UnboundedReceiver<()>) -> Worker {
        let backoff = Backoff::new(ctx.backoff_base, ctx.backoff_cap);
        let mut worker = Worker {
            ctx,
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            sandbox: None,
            exits: None,
            containers: HashMap::new(),
            backoff,
            terminal: false,
            start_time: None,
            sandbox_retry_at: None,
            pod_ip: None,
            rejected: None,
            poke,
            fallback_to_logs: fallback_to_logs(pod),
        };
        worker.adopt_status(pod);
        worker
    }

    /// Resumes from the status an earlier agent wrote (its restart counts, container ids).
    fn adopt_status(&mut self, pod: &Pod) {
        let Some(status) = &pod.status else { return };
        self.start_time = status.start_time.clone();
        self.pod_ip = status.pod_ip.clone();
        if let (Some(reason), Some(message)) = (&status.reason, &status.message) {
            self.rejected = Some((reason.clone(), message.clone()));
        }
        self.terminal = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
        let all = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for s in all {
            self.containers.insert(
                s.name.clone(),
                Tracked {
                    status: s.clone(),
                    exited_at: None,
                },
            );
        }
    }

    pub async fn run(mut self) {
        loop {
            let Some(pod) = self.current_pod() else {
                return;
            };
            if pod.metadata.deletion_timestamp.is_some() {
                self.terminate_and_remove(&pod).await;
                return;
            }
            if !self.admitted(&pod).await {
                continue;
            }
            let wake_in = self.sync(&pod).await;
            self.write_status(&pod);
            // The worker's own status write comes back as a watch poke. Like the kubelet,
            // which syncs on pod updates and container events but not on its status writes,
            // only a change to the pod itself (spec, metadata, deletion) ends the wait early;
            // otherwise a state such as ErrImagePull would be overwritten at once by the
            // next pass's ImagePullBackOff and never be seen.
            let deadline = wake_in.map(|d| Instant::now() + d);
            let seen = identity(&pod);
            loop {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                match self.wait(left).await {
                    Wake::Exit(event) => self.on_exit(&event),
                    Wake::SandboxGone => self.on_sandbox_gone(),
                    Wake::Timer => {}
                    Wake::Poke => {
                        if self.current_pod().is_some_and(|now| identity(&now) == seen) {
                            continue;
                        }
                    }
                }
                break;
            }
        }
    }

    // ----- scheduling and admission ----------------------------------------------------------

    /// Whether the pod may run here now. An unbound pod is bound once its host ports are free
    /// (false: the caller looks at the pod again); a bound one must hold its ports, or the
    /// kubelet rejects it.
    async fn admitted(&mut self, pod: &Pod) -> bool {
        if self.terminal {
            return true;
        }
        let mut freed = self.ctx.scheduler.subscribe();
        let reserved = self.ctx.scheduler.reserve(pod);
        if scheduler::is_bound(pod) {
            if let Err(conflict) = reserved {
                if self.sandbox.is_none() && self.containers.is_empty() {
                    self.reject(pod, "NodePorts", &conflict.admission_message());
                }
            }
            return true;
        }
        match reserved {
            Ok(()) => self.bind(),
            Err(conflict) => {
                self.write_unschedulable(pod, &conflict.scheduler_message());
                tokio::select! {
                    _ = freed.changed() => {}
                    _ = self.wait_for_change(pod) => {}
                }
            }
        }
        false
    }

    /// Sets spec.nodeName, as kube-scheduler's binding does, with its Scheduled event.
    fn bind(&self) {
        let node = self.ctx.node_name.clone();
        let bound = self
            .ctx
            .store
            .modify::<Pod>(&self.namespace, &self.name, |p| {
                if p.metadata.uid.as_deref() != Some(self.uid.as_str()) || scheduler::is_bound(p) {
                    return false;
                }
                p.spec.get_or_insert_with(Default::default).node_name = Some(node.clone());
                let status = p.status.get_or_insert_with(Default::default);
                let conditions = status.conditions.get_or_insert_with(Vec::new);
                conditions.retain(|c| c.type_ != "PodScheduled");
                conditions.push(status::condition(
                    &[],
                    "PodScheduled",
                    true,
                    None,
                    None,
                    &now(),
                ));
                true
            });
        match bound {
            Ok(Some(bound)) => {
                let message = format!(
                    "Successfully assigned {}/{} to {node}",
                    self.namespace, self.name
                );
                self.scheduler_event(&bound, EventType::Normal, "Scheduled", &message);
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(pod = %self.name, %err, "binding the pod"),
        }
    }

    /// Pending, unbound, PodScheduled=False: kube-scheduler's view of a pod that fits nowhere.
    fn write_unschedulable(&self, pod: &Pod, message: &str) {
        let previous = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let condition = status::condition(
            &previous,
            "PodScheduled",
            false,
            Some("Unschedulable"),
            Some(message.to_string()),
            &now(),
        );
        let already = previous.iter().any(|c| {
            c.type_ == condition.type_
                && c.status == condition.status
                && c.message == condition.message
        });
        if already {
            return;
        }
        let mut updated = pod.clone();
        updated.metadata.resource_version = None;
        let status = updated.status.get_or_insert_with(Default::default);
        status.phase = Some("Pending".into());
        status.conditions = Some(vec![condition]);
        if let Err(err) = self.ctx.store.update_status(updated) {
            tracing::warn!(pod = %self.name, %err, "writing pod status");
        }
        self.scheduler_event(pod, EventType::Warning, "FailedScheduling", message);
    }

    /// kubelet's admission failure: the pod ends Failed without running anything.
    fn reject(&mut self, pod: &Pod, reason: &str, message: &str) {
        self.terminal = true;
        self.rejected = Some((reason.to_string(), message.to_string()));
        let mut updated = pod.clone();
        updated.metadata.resource_version = None;
        let status = updated.status.get_or_insert_with(Default::default);
        status.phase = Some("Failed".into());
        status.reason = Some(reason.to_string());
        status.message = Some(message.to_string());
        if let Err(err) = self.ctx.store.update_status(updated) {
            tracing::warn!(pod = %self.name, %err, "writing pod status");
        }
        self.event(pod, EventType::Warning, reason, message, None);
    }

    fn scheduler_event(&self, pod: &Pod, type_: EventType, reason: &str, message: &str) {
        let event = events::make(
            pod,
            "default-scheduler",
            &self.ctx.node_name,
            type_,
            reason,
            message,
            None,
        );
        if let Err(err) = self.ctx.store.record_event(event) {
            tracing::warn!(%err, reason, "recording an event");
        }
    }

    /// Returns once the pod itself changed (spec, metadata, deletion) or is gone.
    async fn wait_for_change(&mut self, pod: &Pod) {
        let seen = identity(pod);
        while self.poke.recv().await.is_some() {
            if self.current_pod().is_none_or(|now| identity(&now) != seen) {
                return;
            }
        }
        std::future::pending::<()>().await
    }

    fn current_pod(&self) -> Option<Pod> {
        let pod: Pod = self.ctx.store.get(&self.namespace, &self.name).ok()??;
        (pod.metadata.uid.as_deref() == Some(self.uid.as_str())).then_some(pod)
    }

    async fn wait(&mut self, wake_in: Option<Duration>) -> Wake {
        let sleep = tokio::time::sleep(wake_in.unwrap_or(Duration::from_secs(3600)));
        tokio::select! {
            exit = recv_exit(&mut self.exits) => match exit {
                Some(event) => Wake::Exit(event),
                None => Wake::SandboxGone,
            },
            poke = self.poke.recv() => match poke {
                Some(()) => Wake::Poke,
                None => Wake::Timer,
            },
            _ = sleep => Wake::Timer,
        }
    }

    // ----- reconciling -------------------------------------------------------------------

    /// One pass: sandbox, init containers, app containers. Returns when to look again.
    async fn sync(&mut self, pod: &Pod) -> Option<Duration> {
        if self.start_time.is_none() {
            self.start_time = Some(now());
        }
        if self.terminal {
            self.stop_sandbox().await;
            return None;
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let deadline_left = self.active_deadline_left(&spec);
        if deadline_left.is_some_and(|left| left.is_zero()) {
            self.exceed_active_deadline(pod, &spec).await;
            return None;
        }
        if self.sandbox.is_none() {
            if let Some(wait) = self.ensure_sandbox(pod).await {
                return Some(deadline_left.map_or(wait, |left| left.min(wait)));
            }
        }
        let mut wake: Option<Duration> = deadline_left;
        let mut note = |d: Option<Duration>| {
            if let Some(d) = d {
                wake = Some(wake.map_or(d, |w: Duration| w.min(d)));
            }
        };
        let restart_policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let mut initialized = true;
        for container in spec.init_containers.iter().flatten() {
            let sidecar = status::is_sidecar(container);
            let state = self.state_of(&container.name);
            match state {
                Observed::Never => {
                    note(self.start(pod, container, true).await);
                    if !sidecar || !self.is_running(&container.name) {
                        initialized = false;
                        break;
                    }
                }
                Observed::Running => {
                    if !sidecar {
                        initialized = false;
                        break;
                    }
                }
                Observed::Exited(0) if !sidecar => {}
                Observed::Exited(_) | Observed::Waiting => {
                    if !sidecar && restart_policy == "Never" {
                        initialized = false;
                        break;
                    }
                    note(self.restart(pod, container, true).await);
                    if !sidecar || !self.is_running(&container.name) {
                        initialized = false;
                        break;
                    }
                }
            }
        }
        if !initialized {
            self.decide_terminal(&spec);
            if self.terminal {
                // A failed init container ended the pod: its sandbox goes, as the kubelet
                // kills a terminal pod's sandbox.
                self.stop_sandbox().await;
            }
            return wake;
        }
        for container in &spec.containers {
            match self.state_of(&container.name) {
                Observed::Never => note(self.start(pod, container, false).await),
                Observed::Running => {}
                Observed::Exited(code) => {
                    let restart = match restart_policy.as_str() {
                        "Always" => true,
                        "OnFailure" => code != 0,
                        _ => false,
                    };
                    if restart {
                        note(self.restart(pod, container, false).await);
                    }
                }
                Observed::Waiting => note(self.restart(pod, container, false).await),
            }
        }
        if self.all_app_containers_done(&spec, &restart_policy) {
            self.stop_sidecars(pod, &spec).await;
        }
        self.decide_terminal(&spec);
        if self.terminal {
            self.stop_sandbox().await;
        }
        wake
    }

    /// Time left before activeDeadlineSeconds, counted from status.startTime as kubelet's
    /// activeDeadlineHandler does; None without a deadline.
    fn active_deadline_left(&self, spec: &k8s_openapi::api::core::v1::PodSpec) -> Option<Duration> {
        let seconds = u64::try_from(spec.active_deadline_seconds?).ok()?;
        let started = self.start_time.as_ref()?.0;
        let active = jiff::Timestamp::now().duration_since(started);
        let active = Duration::try_from(active).unwrap_or_default();
        Some(Duration::from_secs(seconds).saturating_sub(active))
    }

    /// The pod outlived activeDeadlineSeconds: kubelet fails it with DeadlineExceeded and
    /// kills its containers as it would on deletion (grace period, stop signal).
    async fn exceed_active_deadline(
        &mut self,
        pod: &Pod,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) {
        let message = "Pod was active on the node longer than the specified deadline";
        self.event(pod, EventType::Normal, "DeadlineExceeded", message, None);
        self.rejected = Some(("DeadlineExceeded".into(), message.into()));
        let grace =
            Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64);
        self.stop_containers(pod, &spec.containers, false, grace)
            .await;
        self.stop_sidecars(pod, spec).await;
        self.terminal = true;
        self.stop_sandbox().await;
    }

    async fn ensure_sandbox(&mut self, pod: &Pod) -> Option<Duration> {
        if let Some(at) = self.sandbox_retry_at {
            let now = Instant::now();
            if at > now {
                return Some(at - now);
            }
        }
        let attached = sandbox::attach(&self.ctx, pod).await;
        let result = match attached {
            Some(sandbox) => Ok(sandbox),
            None => sandbox::create(&self.ctx, pod).await,
        };
        match result {
            Ok(sandbox) => {
                self.sandbox_retry_at = None;
                self.pod_ip = Some(sandbox.pod_ip.clone());
                self.watch_exits(&sandbox).await;
                self.sandbox = Some(sandbox);
                self.reconcile_with_shim().await;
                None
            }
            Err(err) => {
                let message = err.to_string();
                let reason = if matches!(err, sandbox::SandboxError::Volume(_)) {
                    "FailedMount"
                } else {
                    "FailedCreatePodSandBox"
                };
                self.event(pod, EventType::Warning, reason, &message, None);
                let retry = Duration::from_secs(2);
                self.sandbox_retry_at = Some(Instant::now() + retry);
                Some(retry)
            }
        }
    }

    async fn watch_exits(&mut self, sandbox: &Sandbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut watch) = sandbox.client.watch().await {
            tokio::spawn(async move {
                while let Some(event) = watch.next().await {
                    if tx.send(Some(event)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(None);
            });
        }
        self.exits = Some(rx);
    }

    /// After an agent restart: containers that exited meanwhile get their exit recorded;
    /// containers the shim no longer has (a new sandbox) are treated as gone.
    async fn reconcile_with_shim(&mut self) {
        let Some(client) = self.sandbox.as_ref().map(|s| s.client.clone()) else {
            return;
        };
        let Ok(state) = client.state().await else {
            return;
        };
        let known: HashMap<String, _> = state
            .containers
            .iter()
            .map(|c| (c.id.clone(), c.clone()))
            .collect();
        let mut exits = Vec::new();
        for tracked in self.containers.values_mut() {
            let Some(id) = container_id(&tracked.status) else {
                continue;
            };
            let running = tracked
                .status
                .state
                .as_ref()
                .is_some_and(|s| s.running.is_some());
            match known.get(&id) {
                Some(c) if c.status == ShimStatus::Exited && running => {
                    if let Some(exit) = c.exit {
                        exits.push(ExitEvent {
                            id: id.clone(),
                            exit,
                        });
                    }
                }
                None if running => exits.push(ExitEvent {
                    id: id.clone(),
                    exit: ExitInfo {
                        code: 137,
                        signal: Some(libc::SIGKILL),
                        finished_at: crate::shim::protocol_now(),
                    },
                }),
                _ => {}
            }
        }
        for event in exits {
            self.on_exit(&event);
        }
        let current: Vec<String> = self
            .containers
            .values()
            .filter_map(|t| container_id(&t.status))
            .collect();
        for c in state.containers {
            if !current.contains(&c.id) && c.status == ShimStatus::Exited {
                let _ = client.remove(&c.id).await;
            }
        }
    }

    fn state_of(&self, name: &str) -> Observed {
        let Some(tracked) = self.containers.get(name) else {
            return Observed::Never;
        };
        let state = tracked.status.state.as_ref();
        if state.is_some_and(|s| s.running.is_some()) {
            return Observed::Running;
        }
        if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            return Observed::Exited(t.exit_code);
        }
        if container_id(&tracked.status).is_none() && tracked.status.last_state.is_none() {
            return if tracked.exited_at.is_some() {
                Observed::Waiting
            } else {
                Observed::Never
            };
        }
        Observed::Waiting
    }

    fn is_running(&self, name: &str) -> bool {
        matches!(self.state_of(name), Observed::Running)
    }

    /// Restarts a container that exited or failed to start, after its back-off.
    async fn restart(&mut self, pod: &Pod, container: &Container, init: bool) -> Option<Duration> {
        let key = container.name.clone();
        let tracked = self.containers.get(&key).cloned()?;
        let exited_at = tracked.exited_at.unwrap_or_else(Instant::now);
        if let Some(remaining) = self.backoff.remaining(&key, exited_at, Instant::now()) {
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

    fn backoff_delay(&self, key: &str, exited_at: Instant) -> Duration {
        self.backoff
            .remaining(key, exited_at, exited_at)
            .unwrap_or(self.ctx.backoff_base)
    }

    /// Starts one attempt of a container: image, bundle, create, start.
    async fn start(&mut self, pod: &Pod, container: &Container, init: bool) -> Option<Duration> {
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
        let facts = PodFacts {
            node_name: self.ctx.node_name.clone(),
            host_ip: self.ctx.host_ip.clone(),
            pod_ip: self.pod_ip.clone(),
        };
        let sandbox = self.sandbox.as_ref()?;
        let prepared = bundle::prepare(&BundleInputs {
            paths: &self.ctx.paths,
            pod,
            container,
            image: &image,
            images: &self.ctx.images,
            volumes: &sandbox.volumes,
            facts: &facts,
            container_id: &id,
            restart_count,
        });
        let request = match prepared {
            Ok(request) => request,
            Err(err) => {
                let message = err.to_string();
                self.failed_event(pod, &message, fpath);
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
                self.containers.insert(
                    name,
                    Tracked {
                        status: ContainerStatus {
                            state: Some(ContainerState {
                                running: Some(ContainerStateRunning {
                                    started_at: Some(now()),
                                }),
                                ..Default::default()
                            }),
                            ready: true,
                            started: Some(true),
                            ..base
                        },
                        exited_at: None,
                    },
                );
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

    /// kubelet's EnsureImageExists for `container`, given up when the pod changes (a delete
    /// must not wait for a long pull). The status written first shows the pod creating its
    /// containers while the pull runs.
    async fn ensure_image(&mut self, pod: &Pod, container: &Container, init: bool) -> Ensured {
        let ctx = self.ctx.clone();
        let fpath = Some(field_path(container, init));
        let subject = pod.clone();
        let record = move |type_: EventType, reason: &str, message: &str| {
            events::record(&ctx, &subject, type_, reason, message, fpath.clone());
        };
        let ctx = self.ctx.clone();
        let image = image_of(container);
        let mut ensure = std::pin::pin!(ctx.image_manager.ensure(
            &image,
            container.image_pull_policy.as_deref(),
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
        self.write_status(pod);
        tokio::select! {
            result = ensure => finish(result),
            () = self.pod_changed_from(&seen) => Ensured::Interrupted,
        }
    }

    /// Resolves once the pod in the store is no longer `seen` (or is gone).
    async fn pod_changed_from(&mut self, seen: &(ObjectMeta, Option<PodSpec>)) {
        pod_changed(
            &mut self.poke,
            &self.ctx,
            &self.namespace,
            &self.name,
            &self.uid,
            seen,
        )
        .await
    }

    /// A start that failed before any process existed: the container waits with `reason`.
    fn fail_before_start(
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

    fn on_exit(&mut self, event: &ExitEvent) {
        let full_id = format!("peapod://{}", event.id);
        let Some(name) = self
            .containers
            .iter()
            .find(|(_, t)| t.status.container_id.as_deref() == Some(full_id.as_str()))
            .map(|(name, _)| name.clone())
        else {
            return;
        };
        let message = self.termination_message(&name, &event.id, event.exit.code);
        let tracked = self.containers.get_mut(&name).expect("found above");
        let started_at = tracked
            .status
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.clone());
        if tracked
            .status
            .state
            .as_ref()
            .is_some_and(|s| s.terminated.is_some())
        {
            return;
        }
        let reason = if event.exit.code == 0 {
            "Completed"
        } else {
            "Error"
        };
        tracked.status.state = Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: event.exit.code,
                signal: event.exit.signal,
                reason: Some(reason.into()),
                message,
                started_at,
                finished_at: Some(Time(
                    jiff::Timestamp::from_nanosecond(event.exit.finished_at as i128)
                        .unwrap_or_else(|_| jiff::Timestamp::now()),
                )),
                container_id: Some(full_id),
            }),
            ..Default::default()
        });
        tracked.status.ready = false;
        tracked.status.started = Some(false);
        tracked.exited_at = Some(Instant::now());
    }

    /// What kubelet puts in state.terminated.message for the attempt that just exited.
    fn termination_message(
        &self,
        name: &str,
        container_id: &str,
        exit_code: i32,
    ) -> Option<String> {
        let restart_count = self.containers.get(name)?.status.restart_count;
        let attempt = bundle::attempt_dir(&self.ctx.paths, &self.uid, name, container_id);
        let log = self.ctx.paths.container_log(
            &self.namespace,
            &self.name,
            &self.uid,
            name,
            restart_count,
        );
        let fallback = exit_code != 0 && self.fallback_to_logs.contains(name);
        termination::read(&bundle::termination_log(&attempt), &log, fallback)
    }

    fn on_sandbox_gone(&mut self) {
        tracing::warn!(pod = %self.name, "pod sandbox exited; it will be recreated");
        self.sandbox = None;
        self.exits = None;
        sandbox::kill_container_processes(&self.ctx.paths, &self.uid);
        let running: Vec<String> = self
            .containers
            .values()
            .filter(|t| t.status.state.as_ref().is_some_and(|s| s.running.is_some()))
            .filter_map(|t| container_id(&t.status))
            .collect();
        for id in running {
            self.on_exit(&ExitEvent {
                id,
                exit: ExitInfo {
                    code: 137,
                    signal: Some(libc::SIGKILL),
                    finished_at: crate::shim::protocol_now(),
                },
            });
        }
    }

    fn set_waiting(&mut self, name: &str, reason: &str, message: Option<String>) {
        let Some(tracked) = self.containers.get_mut(name) else {
            return;
        };
        if let Some(terminated) = tracked
            .status
            .state
            .as_ref()
            .and_then(|s| s.terminated.clone())
        {
            tracked.status.last_state = Some(ContainerState {
                terminated: Some(terminated),
                ..Default::default()
            });
        }
        tracked.status.state = Some(waiting(reason, message));
    }

    fn all_app_containers_done(
        &self,
        spec: &k8s_openapi::api::core::v1::PodSpec,
        policy: &str,
    ) -> bool {
        policy != "Always"
            && spec
                .containers
                .iter()
                .all(|c| match self.state_of(&c.name) {
                    Observed::Exited(code) => policy == "Never" || code == 0,
                    _ => false,
                })
    }

    fn decide_terminal(&mut self, spec: &k8s_openapi::api::core::v1::PodSpec) {
        let policy = spec.restart_policy.as_deref().unwrap_or("Always");
        let (init, app) = self.statuses(spec);
        let phase = status::phase(spec, &init, &app, false);
        let sidecars_running = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| status::is_sidecar(c))
            .any(|c| self.is_running(&c.name));
        if matches!(phase, "Succeeded" | "Failed") && policy != "Always" && !sidecars_running {
            self.terminal = true;
        }
    }

    // ----- stopping ----------------------------------------------------------------------

    async fn stop_sidecars(&mut self, pod: &Pod, spec: &k8s_openapi::api::core::v1::PodSpec) {
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
                self.stop_containers(pod, std::slice::from_ref(&sidecar), true, grace)
                    .await;
            }
        }
    }

    /// Stops `containers` together: stop signal, then SIGKILL once `grace` has passed.
    async fn stop_containers(
        &mut self,
        pod: &Pod,
        containers: &[Container],
        init: bool,
        grace: Duration,
    ) {
        let Some(client) = self.sandbox.as_ref().map(|s| s.client.clone()) else {
            return;
        };
        let mut ids = Vec::new();
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
            self.event(
                pod,
                EventType::Normal,
                "Killing",
                &format!("Stopping container {}", container.name),
                Some(field_path(container, init)),
            );
            let signal = if grace.is_zero() {
                libc::SIGKILL
            } else {
                self.stop_signal(container)
            };
            let _ = client.kill(&id, signal).await;
            ids.push(id);
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
            let exit = tokio::time::timeout(wait, recv_exit(&mut self.exits)).await;
            match exit {
                Ok(Some(event)) => self.on_exit(&event),
                Ok(None) => {
                    self.on_sandbox_gone();
                    return;
                }
                Err(_) if killed => return,
                Err(_) => {}
            }
        }
    }

    fn is_running_id(&self, id: &str) -> bool {
        let full = format!("peapod://{id}");
        self.containers.values().any(|t| {
            t.status.container_id.as_deref() == Some(full.as_str())
                && t.status.state.as_ref().is_some_and(|s| s.running.is_some())
        })
    }

    fn stop_signal(&self, container: &Container) -> i32 {
        self.ctx
            .images
            .get(&image_of(container))
            .ok()
            .and_then(|image| image.config.stop_signal)
            .and_then(|name| parse_signal(&name))
            .unwrap_or(libc::SIGTERM)
    }

    async fn stop_sandbox(&mut self) {
        self.ctx.scheduler.release(&self.uid);
        if self.sandbox.take().is_some() {
            sandbox::stop_shim(&self.ctx, &self.uid).await;
            self.exits = None;
        }
    }

    /// Graceful pod deletion: app containers together, then sidecars in reverse order, within
    /// the grace period; then the sandbox, the pod's files, and the object itself.
    async fn terminate_and_remove(&mut self, pod: &Pod) {
        if self.sandbox.is_none() && !self.terminal {
            if let Some(sandbox) = sandbox::attach(&self.ctx, pod).await {
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
        self.stop_containers(pod, &spec.containers, false, Duration::from_secs(grace))
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
            self.stop_containers(pod, std::slice::from_ref(&sidecar), true, left)
                .await;
        }
        self.terminal = true;
        self.write_status(pod);
        if self.sandbox.take().is_some() || sandbox::attach(&self.ctx, pod).await.is_some() {
            sandbox::stop_shim(&self.ctx, &self.uid).await;
        }
        sandbox::remove_files(&self.ctx.paths, &self.uid);
        if let Err(err) = self.ctx.store.delete::<Pod>(&self.namespace, &self.name) {
            tracing::warn!(pod = %self.name, %err, "removing the pod object");
        }
    }

    fn remove_attempt_dir(&self, name: &str, id: &str) {
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

    // ----- status --------------------------------------------------------------------------

    fn statuses(
        &self,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) -> (Vec<ContainerStatus>, Vec<ContainerStatus>) {
        let pick = |containers: &[Container], default_reason: &str| -> Vec<ContainerStatus> {
            containers
                .iter()
                .map(|c| {
                    self.containers
                        .get(&c.name)
                        .map(|t| t.status.clone())
                        .unwrap_or_else(|| ContainerStatus {
                            name: c.name.clone(),
                            image: image_of(c),
                            state: Some(waiting(default_reason, None)),
                            started: Some(false),
                            ..Default::default()
                        })
                })
                .collect()
        };
        let init_containers = spec.init_containers.as_deref().unwrap_or_default();
        let app_reason = if init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let mut init = pick(init_containers, "PodInitializing");
        let mut app = pick(&spec.containers, app_reason);
        let mut all: Vec<&mut ContainerStatus> = init.iter_mut().chain(app.iter_mut()).collect();
        termination::cap_pod_messages(&mut all);
        (init, app)
    }

    fn write_status(&self, pod: &Pod) {
        let spec = pod.spec.clone().unwrap_or_default();
        let (init, app) = self.statuses(&spec);
        // A pod the kubelet failed itself (admission, active deadline) is Failed whatever
        // its containers say.
        let phase = if self.rejected.is_some() {
            "Failed"
        } else {
            status::phase(&spec, &init, &app, self.terminal)
        };
        let previous = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let now = now();
        let completed = matches!(phase, "Succeeded" | "Failed");
        let uninitialized = status::uninitialized(&spec, &init);
        let unready = status::unready(&spec, &init, &app);
        let list = |names: &[String]| format!("[{}]", names.join(" "));
        // kubelet's GeneratePodInitializedCondition: True with PodCompleted once Succeeded,
        // True once any regular container has started; a pod that failed in an init
        // container stays uninitialized (kubectl then shows Init:Error).
        let initialized_ok = phase == "Succeeded"
            || status::has_any_regular_container_started(&spec, &app)
            || uninitialized.is_empty();
        let initialized = status::condition(
            &previous,
            "Initialized",
            initialized_ok,
            if initialized_ok {
                (phase == "Succeeded").then_some("PodCompleted")
            } else {
                Some("ContainersNotInitialized")
            },
            (!initialized_ok).then(|| {
                format!(
                    "containers with incomplete status: {}",
                    list(&uninitialized)
                )
            }),
            &now,
        );
        // generateContainersReadyConditionForTerminalPhase: PodFailed or PodCompleted.
        let ready_reason = match phase {
            "Failed" => "PodFailed",
            "Succeeded" => "PodCompleted",
            _ => "ContainersNotReady",
        };
        let ready_ok = unready.is_empty() && !completed;
        let ready_message = (!ready_ok && !completed)
            .then(|| format!("containers with unready status: {}", list(&unready)));
        let scheduled = previous
            .iter()
            .find(|c| c.type_ == "PodScheduled")
            .cloned()
            .unwrap_or_else(|| status::condition(&[], "PodScheduled", true, None, None, &now));
        let conditions = vec![
            status::condition(
                &previous,
                "PodReadyToStartContainers",
                self.sandbox.is_some(),
                None,
                None,
                &now,
            ),
            initialized,
            status::condition(
                &previous,
                "Ready",
                ready_ok,
                (!ready_ok).then_some(ready_reason),
                ready_message.clone(),
                &now,
            ),
            status::condition(
                &previous,
                "ContainersReady",
                ready_ok,
                (!ready_ok).then_some(ready_reason),
                ready_message,
                &now,
            ),
            scheduled,
        ];
        let status = PodStatus {
            phase: Some(phase.to_string()),
            conditions: Some(conditions),
            host_ip: Some(self.ctx.host_ip.clone()),
            host_ips: Some(vec![HostIP {
                ip: self.ctx.host_ip.clone(),
            }]),
            pod_ip: self.pod_ip.clone(),
            pod_ips: self.pod_ip.clone().map(|ip| vec![PodIP { ip }]),
            start_time: self.start_time.clone(),
            reason: self.rejected.as_ref().map(|r| r.0.clone()),
            message: self.rejected.as_ref().map(|r| r.1.clone()),
            qos_class: Some(super::qos_class(&spec).to_string()),
            init_container_statuses: (!init.is_empty()).then_some(init),
            container_statuses: Some(app),
            ..Default::default()
        };
        if pod.status.as_ref() == Some(&status) {
            return;
        }
        let mut updated = pod.clone();
        updated.metadata.resource_version = None;
        updated.status = Some(status);
        if let Err(err) = self.ctx.store.update_status(updated) {
            if !matches!(err, peapod_store::StoreError::NotFound { .. }) {
                tracing::warn!(pod = %self.name, %err, "writing pod status");
            }
        }
    }

    fn event(
        &self,
        pod: &Pod,
        type_: EventType,
        reason: &str,
        message: &str,
        field_path: Option<String>,
    ) {
        events::record(&self.ctx, pod, type_, reason, message, field_path);
    }

    /// The kubelet's Warning `Failed` event for a container that could not start.
    fn failed_event(&self, pod: &Pod, error: &str, field_path: Option<String>) {
        let message = format!("Error: {error}");
        self.event(pod, EventType::Warning, "Failed", &message, field_path);
    }
}

/// What of a pod its own status writes leave unchanged.
fn identity(pod: &Pod) -> (ObjectMeta, Option<PodSpec>) {
    let mut meta = pod.metadata.clone();
    meta.resource_version = None;
    meta.managed_fields = None;
    (meta, pod.spec.clone())
}

/// What became of a container's image.
enum Ensured {
    Ready(Box<peapod_image::Image>),
    Failed(EnsureError),
    Interrupted,
}

/// Returns once the pod is no longer what `seen` describes (changed, being deleted, gone).
async fn pod_changed(
    poke: &mut mpsc::UnboundedReceiver<()>,
    ctx: &Context,
    namespace: &str,
    name: &str,
    uid: &str,
    seen: &(ObjectMeta, Option<PodSpec>),
) {
    loop {
        let current: Option<Pod> = ctx.store.get(namespace, name).ok().flatten();
        let same = current
            .filter(|p| p.metadata.uid.as_deref() == Some(uid))
            .is_some_and(|p| identity(&p) == *seen);
        if !same {
            return;
        }
        if poke.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

enum Observed {
    Never,
    Running,
    Exited(i32),
    /// Waiting after a failed start or in back-off.
    Waiting,
}

async fn recv_exit(
    exits: &mut Option<mpsc::UnboundedReceiver<Option<ExitEvent>>>,
) -> Option<ExitEvent> {
    match exits {
        Some(rx) => rx.recv().await.flatten(),
        None => std::future::pending().await,
    }
}

fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..Default::default()
    }
}

fn container_id(status: &ContainerStatus) -> Option<String> {
    status
        .container_id
        .as_deref()
        .and_then(|id| id.strip_prefix("peapod://"))
        .map(str::to_string)
}

fn image_of(container: &Container) -> String {
    container.image.clone().unwrap_or_default()
}

fn image_id(image: &peapod_image::Image) -> String {
    match image
        .names
        .first()
        .and_then(|n| peapod_image::reference::parse(n).ok())
    {
        Some(reference) => format!("{}@{}", reference.name(), image.repo_digest),
        None => image.id.clone(),
    }
}

fn field_path(container: &Container, init: bool) -> String {
    let list = if init { "initContainers" } else { "containers" };
    format!("spec.{list}{{{}}}", container.name)
}

fn new_container_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex_string(&bytes)
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// "SIGQUIT", "QUIT" or "3".
pub fn parse_signal(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return Some(n);
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

fn fallback_to_logs(pod: &Pod) -> HashSet<String> {
    let Some(spec) = &pod.spec else {
        return HashSet::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .filter(|c| c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"))
        .map(|c| c.name.clone())
        .collect()
}
