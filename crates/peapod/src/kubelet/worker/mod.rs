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
use super::downward::PodFacts;
use super::events::{self, field_path, EventType};
use super::hooks::{self, HookTarget};
use super::images::EnsureError;
use super::probe_workers::{Instance, ProbeReport, ProbeWorkers};
use super::prober::ProbeType;
use super::sandbox::{self, Sandbox};
use super::scheduler;
use super::status;
use super::termination;
use super::Context;
use crate::runtime::bundle::{self, BundleInputs};
use crate::runtime::sysctls;
use crate::shim::protocol::{ContainerStatus as ShimStatus, ExitEvent, ExitInfo};

mod admission;
mod adopt;
mod probes;
mod report;
mod start;
mod stop;
mod volumes;

use stop::StopReason;

/// How soon a status write that failed is tried again.
const STATUS_RETRY: Duration = Duration::from_secs(1);

/// Why the worker woke up.
enum Wake {
    Exit(ExitEvent),
    Probe(ProbeReport),
    SandboxGone,
    Poke,
    Timer,
}

impl Wake {
    fn from_exit(exit: Option<ExitEvent>) -> Wake {
        match exit {
            Some(event) => Wake::Exit(event),
            None => Wake::SandboxGone,
        }
    }
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
    /// Why the kubelet failed the pod itself: admission, active deadline, eviction (status
    /// reason and message).
    rejected: Option<(String, String)>,
    /// The eviction manager evicted the pod: its DisruptionTarget condition says so.
    evicted: bool,
    poke: mpsc::UnboundedReceiver<()>,
    /// Containers whose terminationMessagePolicy is FallbackToLogsOnError (immutable).
    fallback_to_logs: HashSet<String>,
    /// The probe tasks of the current sandbox, and where they report.
    probes: Option<ProbeWorkers>,
    probe_reports: (
        mpsc::UnboundedSender<ProbeReport>,
        mpsc::UnboundedReceiver<ProbeReport>,
    ),
    /// Containers with a startup or readiness probe (immutable).
    startup_probed: HashSet<String>,
    readiness_probed: HashSet<String>,
    /// Container instances whose liveness or startup probe failed, to be killed.
    probe_failures: HashMap<String, (String, ProbeType)>,
    /// Containers waiting for a ConfigMap or Secret (or a key of one) their environment
    /// names: started as soon as it is there, as nothing ran that a back-off would slow.
    config_blocked: HashSet<String>,
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
            evicted: false,
            poke,
            fallback_to_logs: fallback_to_logs(pod),
            probes: None,
            probe_reports: mpsc::unbounded_channel(),
            startup_probed: containers_where(pod, |c| c.startup_probe.is_some()),
            readiness_probed: containers_where(pod, |c| c.readiness_probe.is_some()),
            probe_failures: HashMap::new(),
            config_blocked: HashSet::new(),
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
            if let Some(message) = self.ctx.evictions.take(&self.uid) {
                if !self.terminal {
                    self.evict(&pod, message).await;
                }
            }
            if !self.admitted(&pod).await {
                continue;
            }
            let mut wake_in = self.sync(&pod).await;
            if !self.write_status(&pod).await {
                wake_in = Some(wake_in.map_or(STATUS_RETRY, |w| w.min(STATUS_RETRY)));
            }
            self.publish_instances();
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
                    Wake::Probe(report) => {
                        if !self.on_probe(&report) {
                            continue;
                        }
                    }
                    Wake::SandboxGone => {
                        tracing::warn!(pod = %self.name, "pod sandbox exited; it will be re-created");
                        self.on_sandbox_gone(&pod).await;
                    }
                    Wake::Timer => {}
                    Wake::Poke => {
                        let evicted = self.ctx.evictions.is_pending(&self.uid);
                        let stale = self.ctx.config.take_stale(&self.uid);
                        if !evicted
                            && !stale
                            && self.current_pod().is_some_and(|now| identity(&now) == seen)
                        {
                            continue;
                        }
                    }
                }
                break;
            }
        }
    }

    /// The pod as the pod manager holds it; None once it is gone.
    fn current_pod(&self) -> Option<Pod> {
        self.ctx.pods.get(&self.uid)
    }

    async fn wait(&mut self, wake_in: Option<Duration>) -> Wake {
        let sleep = tokio::time::sleep(wake_in.unwrap_or(Duration::from_secs(3600)));
        tokio::select! {
            exit = recv_exit(&mut self.exits) => Wake::from_exit(exit),
            Some(report) = self.probe_reports.1.recv() => Wake::Probe(report),
            poke = self.poke.recv() => match poke {
                Some(()) => Wake::Poke,
                None => Wake::Timer,
            },
            _ = sleep => Wake::Timer,
        }
    }

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
        } else {
            // A sandbox set up in this pass had its volumes written just now.
            self.ctx.tokens.fetch_for(pod).await;
            self.refresh_volumes(pod);
        }
        self.kill_failed_probes(pod, &spec).await;
        let mut wake: Option<Duration> = deadline_left;
        let mut note = |d: Option<Duration>| {
            if let Some(d) = d {
                wake = Some(wake.map_or(d, |w: Duration| w.min(d)));
            }
        };
        note(self.ctx.tokens.next_refresh(&self.uid));
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
                    if !sidecar || !self.is_started(&container.name) {
                        initialized = false;
                        break;
                    }
                }
                Observed::Running => {
                    // A sidecar lets the next init container start once it is started
                    // (its startup probe, if any, succeeded).
                    if !sidecar || !self.is_started(&container.name) {
                        initialized = false;
                        break;
                    }
                }
                Observed::Exited(0) if !sidecar => {}
                Observed::Exited(_) | Observed::Waiting => {
                    // One that never ran (its start failed: config, image) is tried again
                    // whatever the policy, as the kubelet starts an init container it
                    // has no container of.
                    if !sidecar
                        && restart_policy == "Never"
                        && !self.failed_to_start(&container.name)
                    {
                        initialized = false;
                        break;
                    }
                    note(self.restart(pod, container, true).await);
                    if !sidecar || !self.is_started(&container.name) {
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
    /// kills its containers as it would on deletion (grace period, stop signal). The status
    /// reads Failed at once, while the containers are still stopping: kubelet's
    /// `generateAPIPodStatus` asks the active-deadline handler on every status it writes.
    async fn exceed_active_deadline(
        &mut self,
        pod: &Pod,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) {
        let message = "Pod was active on the node longer than the specified deadline";
        self.event(pod, EventType::Normal, "DeadlineExceeded", message, None);
        self.rejected = Some(("DeadlineExceeded".into(), message.into()));
        self.write_status(pod).await;
        let grace =
            Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64);
        self.kill_pod(pod, spec, grace).await;
    }

    /// kubelet's eviction (a hard threshold: no grace period): the Evicted event, the pod
    /// Failed with reason Evicted and a DisruptionTarget condition, its containers killed.
    async fn evict(&mut self, pod: &Pod, message: String) {
        self.event(pod, EventType::Warning, "Evicted", &message, None);
        self.rejected = Some(("Evicted".into(), message));
        self.evicted = true;
        self.write_status(pod).await;
        let spec = pod.spec.clone().unwrap_or_default();
        self.kill_pod(pod, &spec, Duration::ZERO).await;
    }

    /// Stops every container of a pod the kubelet failed, then its sandbox.
    async fn kill_pod(&mut self, pod: &Pod, spec: &PodSpec, grace: Duration) {
        self.stop_containers(
            pod,
            &spec.containers,
            false,
            grace,
            StopReason::Kubelet(None),
        )
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
        self.ctx.tokens.fetch_for(pod).await;
        let result = match sandbox::attach(&self.ctx, pod).await {
            sandbox::Found::Ready(sandbox) => Ok(sandbox),
            sandbox::Found::Absent => sandbox::create(&self.ctx, pod).await,
            sandbox::Found::Broken(_, why) => {
                self.replace_broken_sandbox(pod, &why).await;
                sandbox::create(&self.ctx, pod).await
            }
        };
        match result {
            Ok(sandbox) => {
                self.sandbox_retry_at = None;
                self.pod_ip = Some(sandbox.pod_ip.clone());
                self.probes = Some(ProbeWorkers::start(
                    self.ctx.clone(),
                    pod,
                    sandbox.client.clone(),
                    self.pod_ip.clone(),
                    self.probe_reports.0.clone(),
                ));
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

    /// Waiting without ever having had a container: its start failed before one existed.
    fn failed_to_start(&self, name: &str) -> bool {
        self.containers.get(name).is_some_and(|t| {
            matches!(self.state_of(name), Observed::Waiting)
                && container_id(&t.status).is_none()
                && t.status.last_state.is_none()
        })
    }

    fn is_running(&self, name: &str) -> bool {
        matches!(self.state_of(name), Observed::Running)
    }

    /// Running, and its startup probe (if any) succeeded.
    fn is_started(&self, name: &str) -> bool {
        self.is_running(name)
            && self
                .containers
                .get(name)
                .is_some_and(|t| t.status.started == Some(true))
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
        let reason = if event.exit.oom_killed {
            "OOMKilled"
        } else if event.exit.code == 0 {
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

    /// kubelet's answer to a NotReady sandbox: SandboxChanged, the sandbox and its containers
    /// killed, a new one made (the containers restart in it, their restartCount grows).
    async fn replace_broken_sandbox(&mut self, pod: &Pod, why: &str) {
        tracing::info!(pod = %self.name, why, "pod sandbox is not whole; re-creating it");
        sandbox::stop_shim(&self.ctx, &self.uid).await;
        self.on_sandbox_gone(pod).await;
    }

    /// The sandbox is gone (its shim died, or was stopped as broken): what ran in it is
    /// recorded as killed and its remains are cleared before a new one is made.
    async fn on_sandbox_gone(&mut self, pod: &Pod) {
        self.event(
            pod,
            EventType::Normal,
            "SandboxChanged",
            "Pod sandbox changed, it will be killed and re-created.",
            None,
        );
        self.forget_sandbox().await;
    }

    /// Records what ran in the sandbox as killed and clears its remains.
    async fn forget_sandbox(&mut self) {
        self.sandbox = None;
        self.exits = None;
        self.probes = None;
        let (paths, uid) = (self.ctx.paths.clone(), self.uid.clone());
        let cleaned =
            tokio::task::spawn_blocking(move || sandbox::clean_dead_sandbox(&paths, &uid));
        if let Ok(cgroups) = cleaned.await {
            tokio::task::spawn_blocking(move || sandbox::remove_cgroups_when_empty(cgroups));
        }
        let running: Vec<String> = self
            .containers
            .values()
            .filter(|t| t.status.state.as_ref().is_some_and(|s| s.running.is_some()))
            .filter_map(|t| container_id(&t.status))
            .collect();
        for id in running {
            self.on_exit(&ExitEvent {
                id,
                exit: adopt::killed_exit(),
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
}

/// What of a pod its own status writes leave unchanged.
fn identity(pod: &Pod) -> (ObjectMeta, Option<PodSpec>) {
    let mut meta = pod.metadata.clone();
    meta.resource_version = None;
    meta.managed_fields = None;
    (meta, pod.spec.clone())
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

/// The names of the pod's containers and sidecars that `has` picks.
fn containers_where(pod: &Pod, has: impl Fn(&Container) -> bool) -> HashSet<String> {
    let Some(spec) = &pod.spec else {
        return HashSet::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .filter(|c| has(c))
        .map(|c| c.name.clone())
        .collect()
}

fn fallback_to_logs(pod: &Pod) -> HashSet<String> {
    containers_where(pod, |c| {
        c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
    })
}
