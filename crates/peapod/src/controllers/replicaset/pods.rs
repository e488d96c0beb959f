//! What the controller reads off a pod, as kube's `podutil` and `controller` helpers say it:
//! active, ready (and since when), available after minReadySeconds, its key and controller.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;

/// The pod's phase, "" when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The node the pod is bound to, "" when unscheduled.
pub fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

pub fn labels(pod: &Pod) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// `IsPodActive`: not Succeeded, not Failed and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// `FilterActivePods`, keeping the order.
pub fn filter_active<'a>(pods: &[&'a Pod]) -> Vec<&'a Pod> {
    pods.iter().copied().filter(|p| is_active(p)).collect()
}

/// `IsPodReady`: the Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// `podReadyTime`: when a ready pod turned ready; `None` (kube's zero time) otherwise.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let condition = ready_condition(pod).filter(|c| c.status == "True")?;
    condition.last_transition_time.as_ref().map(|t| t.0)
}

/// `IsPodAvailable`: ready, and either no minReadySeconds or ready for strictly longer.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds == 0 {
        return true;
    }
    let since = ready_condition(pod).and_then(|c| c.last_transition_time.as_ref());
    since.is_some_and(|t| t.0 + min_ready(min_ready_seconds) < now)
}

/// When a ready pod that is not available yet becomes available; `None` for every other pod.
pub fn available_at(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<Timestamp> {
    if min_ready_seconds <= 0 || !is_ready(pod) {
        return None;
    }
    let at = ready_since(pod)? + min_ready(min_ready_seconds);
    (at >= now).then_some(at)
}

fn min_ready(seconds: i32) -> SignedDuration {
    SignedDuration::from_secs(i64::from(seconds))
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == "Ready")
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Pods built the way kube's controller tests build them.

    use jiff::Timestamp;
    use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    pub fn pod(name: &str, node: &str, phase: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.metadata.namespace = Some("default".into());
        pod.metadata.uid = Some(format!("uid-{name}"));
        pod.spec = Some(PodSpec {
            node_name: (!node.is_empty()).then(|| node.into()),
            ..PodSpec::default()
        });
        pod.status = Some(PodStatus {
            phase: Some(phase.into()),
            ..PodStatus::default()
        });
        pod
    }

    /// Sets the Ready condition, True since `since` (kube's zero time when `None`) or False.
    pub fn set_ready(pod: &mut Pod, ready: bool, since: Option<Timestamp>) {
        let condition = PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: since.map(Time),
            ..PodCondition::default()
        };
        pod.status.get_or_insert_default().conditions = Some(vec![condition]);
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{pod, set_ready};
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn active_pods_exclude_finished_and_deleting_ones() {
        let running = pod("running", "node", "Running");
        let pending = pod("pending", "", "Pending");
        let succeeded = pod("succeeded", "node", "Succeeded");
        let failed = pod("failed", "node", "Failed");
        let mut deleting = pod("deleting", "node", "Running");
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        let all = [&running, &pending, &succeeded, &failed, &deleting];
        let names: Vec<_> = filter_active(&all)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["running", "pending"]);
    }

    #[test]
    fn availability_needs_strictly_more_than_min_ready_seconds() {
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let mut p = pod("p", "node", "Running");
        assert!(!is_available(&p, 0, now));
        set_ready(&mut p, true, Some("2026-01-01T00:00:00Z".parse().unwrap()));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 59, now));
        assert!(!is_available(&p, 60, now));
        assert_eq!(available_at(&p, 60, now), Some(now));
        assert_eq!(available_at(&p, 59, now), None);
        set_ready(&mut p, true, None);
        assert!(!is_available(&p, 1, now));
        assert!(is_available(&p, 0, now));
    }
}
