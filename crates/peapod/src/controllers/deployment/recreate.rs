//! The Recreate strategy (kube's `recreate.go`): every old ReplicaSet goes to zero, the new
//! one is created only once no old pod runs, then scaled to the Deployment's replicas.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;

use super::rollout::{ReconcileError, Requeue, Rollout};
use super::{progress, spec};
use crate::controllers::ownership;

impl Rollout<'_> {
    /// `rolloutRecreate`, `pods` being those of the Deployment's ReplicaSets.
    pub async fn rollout_recreate(
        &mut self,
        sets: &[ReplicaSet],
        pods: &[Pod],
    ) -> Result<Requeue, ReconcileError> {
        let (new_rs, mut old) = self.all_replica_sets_and_sync_revision(sets, false).await?;
        let mut scaled_down = false;
        for rs in old.iter_mut().filter(|rs| spec::rs_replicas(rs) > 0) {
            let (scaled, updated) = self.scale_replica_set_and_record_event(rs, 0).await?;
            if scaled {
                *rs = updated;
                scaled_down = true;
            }
        }
        if scaled_down || old_pods_running(new_rs.as_ref(), &old, pods) {
            return self.sync_rollout_status(new_rs.as_ref(), &old).await;
        }
        let (new_rs, old) = match new_rs {
            Some(new_rs) => (new_rs, old),
            None => match self.all_replica_sets_and_sync_revision(sets, true).await? {
                (Some(new_rs), old) => (new_rs, old),
                (None, old) => return self.sync_rollout_status(None, &old).await,
            },
        };
        let desired = spec::deployment_replicas(&self.d);
        let (_, new_rs) = self
            .scale_replica_set_and_record_event(&new_rs, desired)
            .await?;
        if progress::deployment_complete(&self.d, &self.status()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(Some(&new_rs), &old).await
    }
}

/// `oldPodsRunning`: an old ReplicaSet still counts pods, or a pod of one (not the new
/// one's) is not yet Succeeded or Failed.
fn old_pods_running(new_rs: Option<&ReplicaSet>, old: &[ReplicaSet], pods: &[Pod]) -> bool {
    if old.iter().any(|rs| spec::rs_status_replicas(rs) > 0) {
        return true;
    }
    let new_uid = new_rs.and_then(|rs| rs.metadata.uid.as_deref());
    pods.iter().any(|pod| {
        let owner = ownership::controller_of(&pod.metadata).map(|o| o.uid.as_str());
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        owner != new_uid && !matches!(phase, Some("Succeeded" | "Failed"))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).expect("a valid object")
    }

    fn rs(uid: &str, status_replicas: i32) -> ReplicaSet {
        object(json!({
            "metadata": {"name": uid, "uid": uid},
            "status": {"replicas": status_replicas},
        }))
    }

    fn pod(owner: &str, phase: &str) -> Pod {
        object(json!({
            "metadata": {"name": "p", "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner,
                "controller": true,
            }]},
            "status": {"phase": phase},
        }))
    }

    /// kube's `TestOldPodsRunning` cases.
    #[test]
    fn old_pods_run_until_terminal_or_gone() {
        let new = rs("new", 0);
        assert!(!old_pods_running(None, &[], &[]));
        assert!(old_pods_running(None, &[rs("old", 1)], &[]));
        assert!(!old_pods_running(
            Some(&new),
            &[rs("old", 0)],
            &[pod("new", "Running")]
        ));
        assert!(old_pods_running(
            Some(&new),
            &[rs("old", 0)],
            &[pod("old", "Running")]
        ));
        assert!(old_pods_running(
            Some(&new),
            &[rs("old", 0)],
            &[pod("old", "Pending")]
        ));
        assert!(old_pods_running(
            Some(&new),
            &[rs("old", 0)],
            &[pod("old", "Unknown")]
        ));
        let done = [pod("old", "Succeeded"), pod("old", "Failed")];
        assert!(!old_pods_running(Some(&new), &[rs("old", 0)], &done));
    }
}
