//! Reconciling the worker's view with what a live shim holds, after an agent restart: exits
//! that happened meanwhile are recorded, a container whose start the status never recorded is
//! adopted (at most one instance of each container runs), and containers created but never
//! started, or left over from earlier attempts, are removed — as kubelet rebuilds its view
//! from the runtime's container labels.

use std::collections::HashMap;

use super::*;
use crate::shim::client::ShimClient;
use crate::shim::protocol::ContainerInfo;

/// How long a duplicate that was killed may take to exit before it is removed.
const DUPLICATE_EXIT_WAIT: Duration = Duration::from_secs(2);

impl Worker {
    pub(super) async fn reconcile_with_shim(&mut self) {
        let Some(client) = self.sandbox.as_ref().map(|s| s.client.clone()) else {
            return;
        };
        let Ok(state) = client.state().await else {
            return;
        };
        self.record_missed_exits(&state.containers);
        let mut by_name: HashMap<String, Vec<ContainerInfo>> = HashMap::new();
        for c in state.containers {
            by_name.entry(c.name.clone()).or_default().push(c);
        }
        for (name, mut instances) in by_name {
            instances.sort_by_key(|c| std::cmp::Reverse(c.created_at));
            self.reconcile_container(&client, &name, instances).await;
        }
    }

    /// Containers the status shows running that exited, or vanished, while no agent watched.
    fn record_missed_exits(&mut self, shim: &[ContainerInfo]) {
        let mut exits = Vec::new();
        for tracked in self.containers.values() {
            let Some(id) = container_id(&tracked.status) else {
                continue;
            };
            let running = tracked
                .status
                .state
                .as_ref()
                .is_some_and(|s| s.running.is_some());
            if !running {
                continue;
            }
            match shim.iter().find(|c| c.id == id) {
                Some(c) if c.status == ShimStatus::Exited => {
                    if let Some(exit) = c.exit {
                        exits.push(ExitEvent { id, exit });
                    }
                }
                Some(_) => {}
                None => exits.push(ExitEvent {
                    id,
                    exit: killed_exit(),
                }),
            }
        }
        for event in exits {
            self.on_exit(&event);
        }
    }

    /// `instances` are the shim's containers named `name`, newest first.
    async fn reconcile_container(
        &mut self,
        client: &ShimClient,
        name: &str,
        instances: Vec<ContainerInfo>,
    ) {
        let tracked_id = self
            .containers
            .get(name)
            .and_then(|t| container_id(&t.status));
        let tracked = tracked_id
            .as_ref()
            .and_then(|id| instances.iter().find(|c| &c.id == id))
            .cloned();
        let mut adopted = false;
        for c in &instances {
            if Some(&c.id) == tracked_id.as_ref() {
                continue;
            }
            let newer = tracked.as_ref().is_none_or(|t| c.created_at > t.created_at);
            match c.status {
                ShimStatus::Created => {
                    tracing::info!(pod = %self.name, container = %name, id = %c.id,
                        "removing a container that was created but never started");
                    let _ = client.remove(&c.id).await;
                }
                ShimStatus::Running if newer && !adopted && !self.tracked_running(&tracked) => {
                    tracing::info!(pod = %self.name, container = %name, id = %c.id,
                        "adopting a running container whose start was not recorded");
                    self.adopt(c);
                    adopted = true;
                }
                ShimStatus::Exited if newer && !adopted && !self.tracked_running(&tracked) => {
                    self.adopt(c);
                    adopted = true;
                }
                ShimStatus::Running => {
                    tracing::warn!(pod = %self.name, container = %name, id = %c.id,
                        "killing a second instance of the container");
                    remove_duplicate(client, &c.id).await;
                }
                ShimStatus::Exited => {
                    let _ = client.remove(&c.id).await;
                    self.remove_attempt_dir(name, &c.id);
                }
            }
        }
        if let Some(t) = tracked.filter(|t| adopted && t.status == ShimStatus::Exited) {
            // The adopted attempt replaced it, as a restart removes the attempt before it.
            let _ = client.remove(&t.id).await;
            self.remove_attempt_dir(name, &t.id);
        }
    }

    /// Whether the attempt the status names still runs in the shim.
    fn tracked_running(&self, tracked: &Option<ContainerInfo>) -> bool {
        tracked
            .as_ref()
            .is_some_and(|t| t.status != ShimStatus::Exited)
    }

    /// Makes `c` the container's current attempt; the attempt the status named becomes its
    /// last state, as it would have when `c` was started.
    fn adopt(&mut self, c: &ContainerInfo) {
        let previous = self.containers.get(&c.name).map(|t| t.status.clone());
        let last_state = previous.as_ref().and_then(|p| {
            p.state
                .clone()
                .filter(|s| s.terminated.is_some())
                .or_else(|| p.last_state.clone())
        });
        let restart_count = match &previous {
            Some(p) if c.labels.image.is_empty() => {
                p.restart_count + i32::from(container_id(p).is_some())
            }
            _ => c.labels.restart_count,
        };
        let started = !self.startup_probed.contains(&c.name);
        let running = ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time_of(c.started_at.unwrap_or(c.created_at))),
            }),
            ..Default::default()
        };
        let status = ContainerStatus {
            name: c.name.clone(),
            image: c.labels.image.clone(),
            image_id: c.labels.image_id.clone(),
            container_id: Some(format!("peapod://{}", c.id)),
            restart_count,
            last_state,
            state: Some(running),
            ready: started && !self.readiness_probed.contains(&c.name),
            started: Some(started),
            ..previous.unwrap_or_default()
        };
        self.containers.insert(
            c.name.clone(),
            Tracked {
                status,
                exited_at: None,
            },
        );
        if let Some(exit) = c.exit {
            self.on_exit(&ExitEvent {
                id: c.id.clone(),
                exit,
            });
        }
    }
}

/// A container that was running when its sandbox went away.
pub(super) fn killed_exit() -> ExitInfo {
    ExitInfo {
        code: 137,
        signal: Some(libc::SIGKILL),
        finished_at: crate::shim::protocol_now(),
        oom_killed: false,
    }
}

fn time_of(unix_nanos: i64) -> Time {
    Time(
        jiff::Timestamp::from_nanosecond(i128::from(unix_nanos))
            .unwrap_or_else(|_| jiff::Timestamp::now()),
    )
}

/// SIGKILLs an instance that must not run, then removes it once the shim saw it exit.
async fn remove_duplicate(client: &ShimClient, id: &str) {
    let _ = client.kill(id, libc::SIGKILL).await;
    let deadline = Instant::now() + DUPLICATE_EXIT_WAIT;
    while Instant::now() < deadline {
        let exited = client.state().await.ok().is_some_and(|s| {
            s.containers
                .iter()
                .all(|c| c.id != id || c.status == ShimStatus::Exited)
        });
        if exited {
            let _ = client.remove(id).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
