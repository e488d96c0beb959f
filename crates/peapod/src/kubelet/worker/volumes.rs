//! The worker's share of kubelet's volume remounts: on every sync of a pod with a sandbox its
//! configMap, secret, downwardAPI and projected volumes are written again where their sources
//! (the watched objects, the pod's own labels and annotations) changed.

use k8s_openapi::api::core::v1::Pod;

use super::Worker;
use crate::kubelet::events::EventType;
use crate::kubelet::sandbox;
use crate::volume;

impl Worker {
    /// A failure leaves the volume as it was and is reported as kubelet reports a failed
    /// remount: a FailedMount warning on the pod.
    pub(super) fn refresh_volumes(&self, pod: &Pod) {
        let pod_dir = self.ctx.paths.pod_data_dir(&self.uid);
        let failures = volume::refresh(pod, &pod_dir, &sandbox::volume_sources(&self.ctx));
        for failure in failures {
            self.event(
                pod,
                EventType::Warning,
                "FailedMount",
                &failure.to_string(),
                None,
            );
        }
    }
}
