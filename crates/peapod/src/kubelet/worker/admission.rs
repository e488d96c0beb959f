//! Admission and binding: host ports reserved (the pod bound to the node, as kube-scheduler
//! would) or the pod left Pending or rejected as kubelet's admission does (ports, sysctls).

use super::*;

impl Worker {
    /// Whether the pod may run here now. An unbound pod is bound once its host ports are free
    /// (false: the caller looks at the pod again); a bound one must hold its ports, or the
    /// kubelet rejects it.
    pub(super) async fn admitted(&mut self, pod: &Pod) -> bool {
        if self.terminal {
            return true;
        }
        let mut freed = self.ctx.scheduler.subscribe();
        let reserved = self.ctx.scheduler.reserve(pod);
        if scheduler::is_bound(pod) {
            let fresh = self.sandbox.is_none() && self.containers.is_empty();
            if let Err(conflict) = reserved {
                if fresh {
                    self.reject(pod, "NodePorts", &conflict.admission_message());
                }
            } else if fresh {
                let spec = pod.spec.clone().unwrap_or_default();
                if let Some(message) = sysctls::forbidden(&spec, &self.ctx.policy) {
                    self.reject(pod, "SysctlForbidden", &message);
                } else if self.ctx.evictions.disk_pressure() {
                    // kubelet's eviction admission: no new pod while the node is short of disk.
                    self.reject(pod, "Evicted", "The node had condition: [DiskPressure]. ");
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
    pub(super) fn bind(&self) {
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
    pub(super) fn write_unschedulable(&self, pod: &Pod, message: &str) {
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

    /// kubelet's admission failure (rejectPod): the pod ends Failed without running anything;
    /// the event says why, the status adds "Pod was rejected: ".
    pub(super) fn reject(&mut self, pod: &Pod, reason: &str, message: &str) {
        self.terminal = true;
        let status_message = format!("Pod was rejected: {message}");
        self.rejected = Some((reason.to_string(), status_message.clone()));
        let mut updated = pod.clone();
        updated.metadata.resource_version = None;
        let status = updated.status.get_or_insert_with(Default::default);
        status.phase = Some("Failed".into());
        status.reason = Some(reason.to_string());
        status.message = Some(status_message);
        if let Err(err) = self.ctx.store.update_status(updated) {
            tracing::warn!(pod = %self.name, %err, "writing pod status");
        }
        self.event(pod, EventType::Warning, reason, message, None);
    }

    pub(super) fn scheduler_event(&self, pod: &Pod, type_: EventType, reason: &str, message: &str) {
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
    pub(super) async fn wait_for_change(&mut self, pod: &Pod) {
        let seen = identity(pod);
        while self.poke.recv().await.is_some() {
            if self.current_pod().is_none_or(|now| identity(&now) != seen) {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}
