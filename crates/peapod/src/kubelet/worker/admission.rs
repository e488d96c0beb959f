//! Admission and binding: an unbound pod filtered and bound to the node, as kube-scheduler
//! would, or left Pending; a bound one counted on the node, or the pod rejected as kubelet's
//! admission does (resources, node affinity, ports, NoExecute taints, sysctls).

use super::*;
use crate::kubelet::status_manager;

impl Worker {
    /// Whether the pod may run here now. An unbound pod is bound once the scheduler's filters
    /// pass (false: the caller looks at the pod again); a bound one must hold its ports, or
    /// the kubelet rejects it.
    pub(super) async fn admitted(&mut self, pod: &Pod) -> bool {
        if self.terminal {
            return true;
        }
        if !scheduler::is_bound(pod) {
            self.schedule(pod).await;
            return false;
        }
        let fresh = self.sandbox.is_none() && self.containers.is_empty();
        let reserved = self.ctx.scheduler.reserve(pod);
        if let Err(rejection) = reserved {
            if fresh {
                self.reject(pod, &rejection.reason, &rejection.message)
                    .await;
            }
        } else if fresh {
            let spec = pod.spec.clone().unwrap_or_default();
            if let Some(message) = sysctls::forbidden(&spec, &self.ctx.policy) {
                self.reject(pod, "SysctlForbidden", &message).await;
            } else if self.ctx.evictions.disk_pressure() {
                // kubelet's eviction admission: no new pod while the node is short of disk.
                let message = "The node had condition: [DiskPressure]. ";
                self.reject(pod, "Evicted", message).await;
            }
        }
        true
    }

    /// One scheduling attempt for an unbound pod, then a wait for what could change its
    /// outcome. A pod for another scheduler is left to it: only a change to the pod ends the
    /// wait (its binding).
    async fn schedule(&mut self, pod: &Pod) {
        if !scheduler::is_ours(pod) {
            return self.wait_for_change(pod).await;
        }
        let mut changed = self.ctx.scheduler.subscribe();
        match self.ctx.scheduler.schedule(pod) {
            // The next pass waits for the watch to show the pod bound.
            Ok(()) if self.bind(pod).await => self.wait_for_change(pod).await,
            Ok(()) => {
                tokio::select! {
                    _ = tokio::time::sleep(STATUS_RETRY) => {}
                    _ = self.wait_for_change(pod) => {}
                }
            }
            Err(not_scheduled) => {
                self.not_scheduled(pod, not_scheduled).await;
                tokio::select! {
                    _ = changed.changed() => {}
                    _ = self.wait_for_change(pod) => {}
                }
            }
        }
    }

    /// A pod that does not fit: Unschedulable, and when it preempts, nominated to the node
    /// while its victims are made to go.
    async fn not_scheduled(&self, pod: &Pod, not_scheduled: scheduler::NotScheduled) {
        match not_scheduled {
            scheduler::NotScheduled::NoNode => {}
            scheduler::NotScheduled::Unfit(message) => {
                self.write_unschedulable(pod, &message, None).await
            }
            scheduler::NotScheduled::Preempting { message, victims } => {
                let node = self.ctx.node_name.clone();
                self.write_unschedulable(pod, &message, Some(&node)).await;
                if let Err(err) = scheduler::victims::preempt(&self.ctx, pod, &victims).await {
                    tracing::warn!(pod = %self.name, %err, "preempting");
                }
            }
        }
    }

    /// Binds the pod to the node as kube-scheduler does (pods/binding), with its Scheduled
    /// event; whether it was bound.
    pub(super) async fn bind(&self, pod: &Pod) -> bool {
        let node = &self.ctx.node_name;
        match scheduler::bind(&self.ctx.client, pod, node).await {
            Ok(()) => {
                let message = format!(
                    "Successfully assigned {}/{} to {node}",
                    self.namespace, self.name
                );
                self.scheduler_event(pod, EventType::Normal, "Scheduled", &message);
                true
            }
            // Bound already, being deleted, or gone: the next pass sees which.
            Err(err) if err.code == axum::http::StatusCode::CONFLICT => true,
            Err(err) if err.code == axum::http::StatusCode::NOT_FOUND => false,
            Err(err) => {
                tracing::warn!(pod = %self.name, %err, "binding the pod");
                false
            }
        }
    }

    /// Pending, unbound, PodScheduled=False: kube-scheduler's view of a pod that fits nowhere;
    /// `nominated`, the node it preempted pods on.
    pub(super) async fn write_unschedulable(
        &self,
        pod: &Pod,
        message: &str,
        nominated: Option<&str>,
    ) {
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
        let held = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref());
        if already && (nominated.is_none() || nominated == held) {
            return;
        }
        self.write_own_status(pod, |status| {
            status.phase = Some("Pending".into());
            status.conditions = Some(vec![condition.clone()]);
            if let Some(node) = nominated {
                status.nominated_node_name = Some(node.to_owned());
            }
        })
        .await;
        self.scheduler_event(pod, EventType::Warning, "FailedScheduling", message);
    }

    /// kubelet's admission failure (rejectPod): the pod ends Failed without running anything;
    /// the event says why, the status adds "Pod was rejected: ".
    pub(super) async fn reject(&mut self, pod: &Pod, reason: &str, message: &str) {
        self.terminal = true;
        let status_message = format!("Pod was rejected: {message}");
        self.rejected = Some((reason.to_string(), status_message.clone()));
        self.write_own_status(pod, |status| {
            status.phase = Some("Failed".into());
            status.reason = Some(reason.to_string());
            status.message = Some(status_message.clone());
        })
        .await;
        self.event(pod, EventType::Warning, reason, message, None);
    }

    /// Writes the pod's status as `change` makes it.
    async fn write_own_status(&self, pod: &Pod, change: impl Fn(&mut PodStatus)) {
        let desired = |base: &Pod| {
            let mut status = base.status.clone().unwrap_or_default();
            change(&mut status);
            status
        };
        let (client, pods) = (&self.ctx.client, &self.ctx.pods);
        if let Err(err) = status_manager::write_status(client, pods, pod, desired).await {
            tracing::warn!(pod = %self.name, %err, "writing pod status");
        }
    }

    pub(super) fn scheduler_event(&self, pod: &Pod, type_: EventType, reason: &str, message: &str) {
        let event = events::make(
            pod,
            scheduler::DEFAULT_SCHEDULER,
            &self.ctx.node_name,
            type_,
            reason,
            message,
            None,
        );
        self.ctx.recorder.record(event);
    }

    /// Returns once the pod itself changed (spec, metadata, deletion) or is gone.
    pub(super) async fn wait_for_change(&mut self, pod: &Pod) {
        self.pod_changed_from(&identity(pod)).await
    }
}
