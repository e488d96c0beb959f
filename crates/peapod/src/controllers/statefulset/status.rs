//! The status a sync writes back, as kube's `computeReplicaStatus` and
//! `completeRollingUpdate` count it: pods, ready, available, at the current and at the update
//! revision; a RollingUpdate whose pods are all updated and ready makes the update revision
//! the current one.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::Pod;
use peapod_apis::apps::v1::statefulset::ROLLING_UPDATE;

use super::plan::{health, readiness, revision_of, Health, Revisions};

pub fn compute(
    set: &StatefulSet,
    pods: &[&Pod],
    revisions: &Revisions,
    now: Timestamp,
) -> StatefulSetStatus {
    let spec = set.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        collision_count: set.status.as_ref().and_then(|s| s.collision_count),
        current_revision: Some(revisions.current.to_owned()),
        update_revision: Some(revisions.update.to_owned()),
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
        ..StatefulSetStatus::default()
    };
    let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
    for pod in pods {
        status.replicas += 1;
        let state = readiness(pod, min_ready, now);
        if matches!(state, Health::ReadyFor(_) | Health::Available) {
            ready += 1;
        }
        if state == Health::Available {
            available += 1;
        }
        if health(pod, min_ready, now) == Health::Terminating {
            continue;
        }
        let revision = revision_of(pod);
        current += i32::from(revision == revisions.current);
        updated += i32::from(revision == revisions.update);
    }
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(current);
    status.updated_replicas = Some(updated);
    let rolling = spec.update_strategy.and_then(|s| s.type_).as_deref() == Some(ROLLING_UPDATE);
    if rolling && updated == status.replicas && ready == status.replicas {
        status.current_replicas = Some(updated);
        status.current_revision = Some(revisions.update.to_owned());
    }
    status
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, revision: &str, ready: bool, terminating: bool) -> Pod {
        let deletion = terminating.then_some("2024-05-01T10:00:00Z");
        serde_json::from_value(json!({
            "metadata": {"name": name, "deletionTimestamp": deletion,
                         "labels": {"controller-revision-hash": revision}},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 3},
            "spec": {"replicas": 3, "selector": {}, "template": {},
                     "updateStrategy": {"type": "RollingUpdate"}}
        }))
        .unwrap()
    }

    #[test]
    fn counts_pods_by_readiness_and_revision() {
        let pods = [
            pod("web-0", "web-a", true, false),
            pod("web-1", "web-b", true, false),
            pod("web-2", "web-b", true, true),
        ];
        let pods: Vec<&Pod> = pods.iter().collect();
        let revisions = Revisions {
            current: "web-a",
            update: "web-b",
        };
        let status = compute(&set(), &pods, &revisions, Timestamp::now());
        assert_eq!(status.replicas, 3);
        assert_eq!(status.ready_replicas, Some(3));
        assert_eq!(status.available_replicas, Some(3));
        assert_eq!(status.current_replicas, Some(1));
        assert_eq!(status.updated_replicas, Some(1));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.current_revision.as_deref(), Some("web-a"));
    }

    #[test]
    fn a_finished_rolling_update_makes_the_update_revision_current() {
        let pods = [
            pod("web-0", "web-b", true, false),
            pod("web-1", "web-b", true, false),
        ];
        let pods: Vec<&Pod> = pods.iter().collect();
        let revisions = Revisions {
            current: "web-a",
            update: "web-b",
        };
        let status = compute(&set(), &pods, &revisions, Timestamp::now());
        assert_eq!(status.current_revision.as_deref(), Some("web-b"));
        assert_eq!(status.current_replicas, Some(2));
    }
}
