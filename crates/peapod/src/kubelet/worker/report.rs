//! The pod's status as kubelet writes it (phase, conditions, container statuses) and its events.

use k8s_openapi::api::core::v1::PodCondition;

use super::*;
use crate::kubelet::status_manager;

impl Worker {
    pub(super) fn statuses(
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
        status::set_init_readiness(spec, &mut init);
        let mut app = pick(&spec.containers, app_reason);
        let mut all: Vec<&mut ContainerStatus> = init.iter_mut().chain(app.iter_mut()).collect();
        termination::cap_pod_messages(&mut all);
        (init, app)
    }

    /// Writes the pod's status if it changed; false when the write failed (a full disk,
    /// say), so that the caller tries again.
    pub(super) async fn write_status(&self, pod: &Pod) -> bool {
        let (client, pods) = (&self.ctx.client, &self.ctx.pods);
        let written =
            status_manager::write_status(client, pods, pod, |base| self.build_status(base)).await;
        written
            .map_err(|err| tracing::warn!(pod = %self.name, %err, "pod status; will retry"))
            .is_ok()
    }

    /// The status kubelet reports for the pod, over `pod`'s own (its conditions' times).
    pub(super) fn build_status(&self, pod: &Pod) -> PodStatus {
        let spec = pod.spec.clone().unwrap_or_default();
        let (init, app) = self.statuses(&spec);
        // A pod the kubelet failed itself (admission, active deadline, eviction) is Failed
        // whatever its containers say.
        let phase =
            status::reported_phase(&spec, &init, &app, self.terminal, self.rejected.is_some());
        let previous = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let conditions = self.conditions(&spec, phase, (&init, &app), &previous);
        PodStatus {
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
            qos_class: Some(crate::kubelet::qos_class(&spec).to_string()),
            init_container_statuses: (!init.is_empty()).then_some(init),
            container_statuses: Some(app),
            ..Default::default()
        }
    }

    /// The pod's conditions, each keeping its lastTransitionTime from `previous` while its
    /// status stays.
    fn conditions(
        &self,
        spec: &PodSpec,
        phase: &str,
        (init, app): (&[ContainerStatus], &[ContainerStatus]),
        previous: &[PodCondition],
    ) -> Vec<PodCondition> {
        let now = now();
        let completed = matches!(phase, "Succeeded" | "Failed");
        let uninitialized = status::uninitialized(spec, init);
        let unready = status::unready(spec, init, app);
        let list = |names: &[String]| format!("[{}]", names.join(" "));
        // kubelet's GeneratePodInitializedCondition: True with PodCompleted once Succeeded,
        // True once any regular container has started; a pod that failed in an init
        // container stays uninitialized (kubectl then shows Init:Error).
        let initialized_ok = phase == "Succeeded"
            || status::has_any_regular_container_started(spec, app)
            || uninitialized.is_empty();
        let initialized = status::condition(
            previous,
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
        let ready = |type_: &str, message: Option<String>| {
            let reason = (!ready_ok).then_some(ready_reason);
            status::condition(previous, type_, ready_ok, reason, message, &now)
        };
        let scheduled = previous
            .iter()
            .find(|c| c.type_ == "PodScheduled")
            .cloned()
            .unwrap_or_else(|| status::condition(&[], "PodScheduled", true, None, None, &now));
        let sandbox_ready = self.sandbox.is_some();
        let mut conditions = vec![
            status::condition(
                previous,
                "PodReadyToStartContainers",
                sandbox_ready,
                None,
                None,
                &now,
            ),
            initialized,
            ready("Ready", ready_message.clone()),
            ready("ContainersReady", ready_message),
            scheduled,
        ];
        if self.evicted {
            // kubelet marks the pods it evicts as disrupted, first among the conditions.
            let message = self.rejected.as_ref().map(|(_, m)| m.clone());
            let reason = Some("TerminationByKubelet");
            let disrupted =
                status::condition(previous, "DisruptionTarget", true, reason, message, &now);
            conditions.insert(0, disrupted);
        } else if let Some(disrupted) = previous.iter().find(|c| c.type_ == "DisruptionTarget") {
            // Set by another (the scheduler preempting): kubelet keeps what it does not own.
            conditions.insert(0, disrupted.clone());
        }
        conditions
    }

    pub(super) fn event(
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
    pub(super) fn failed_event(&self, pod: &Pod, error: &str, field_path: Option<String>) {
        let message = format!("Error: {error}");
        self.event(pod, EventType::Warning, "Failed", &message, field_path);
    }
}
