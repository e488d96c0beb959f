//! The RollingUpdate strategy (kube's `rolling.go`): the new ReplicaSet grows within
//! maxSurge, old ones shrink within maxUnavailable (their unhealthy replicas first), one
//! step a sync; a complete rollout cleans up the history.

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;

use super::rollout::{ReconcileError, Requeue, Rollout};
use super::{progress, replicas, spec};

impl Rollout<'_> {
    /// `rolloutRolling`.
    pub async fn rollout_rolling(
        &mut self,
        sets: &[ReplicaSet],
    ) -> Result<Requeue, ReconcileError> {
        let (new_rs, old) = self.all_replica_sets_and_sync_revision(sets, true).await?;
        let Some(mut new_rs) = new_rs else {
            return self.sync_rollout_status(None, &old).await;
        };
        let all: Vec<ReplicaSet> = old.iter().cloned().chain([new_rs.clone()]).collect();
        let (scaled_up, updated) = self.reconcile_new_replica_set(&all, &new_rs).await?;
        new_rs = updated;
        if scaled_up {
            return self.sync_rollout_status(Some(&new_rs), &old).await;
        }
        let (scaled_down, old) = self.reconcile_old_replica_sets(old, &new_rs).await?;
        if scaled_down {
            return self.sync_rollout_status(Some(&new_rs), &old).await;
        }
        if progress::deployment_complete(&self.d, &self.status()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(Some(&new_rs), &old).await
    }

    /// `reconcileNewReplicaSet`: the new ReplicaSet scaled toward the Deployment's replicas,
    /// as far as maxSurge allows.
    async fn reconcile_new_replica_set(
        &self,
        all: &[ReplicaSet],
        new_rs: &ReplicaSet,
    ) -> Result<(bool, ReplicaSet), ReconcileError> {
        let desired = spec::deployment_replicas(&self.d);
        let current = spec::rs_replicas(new_rs);
        if current == desired {
            return Ok((false, new_rs.clone()));
        }
        if current > desired {
            return self
                .scale_replica_set_and_record_event(new_rs, desired)
                .await;
        }
        let all: Vec<&ReplicaSet> = all.iter().collect();
        let count = replicas::new_rs_new_replicas(&self.d, &all, new_rs)?;
        self.scale_replica_set_and_record_event(new_rs, count).await
    }

    /// `reconcileOldReplicaSets`: old ReplicaSets scaled down as far as maxUnavailable
    /// allows, counting the new ReplicaSet's unavailable pods; their unhealthy replicas go
    /// first. A failed scale ends the step without failing the sync, as kube's does.
    async fn reconcile_old_replica_sets(
        &self,
        old: Vec<ReplicaSet>,
        new_rs: &ReplicaSet,
    ) -> Result<(bool, Vec<ReplicaSet>), ReconcileError> {
        let active: Vec<&ReplicaSet> = old.iter().filter(|rs| spec::rs_replicas(rs) > 0).collect();
        let plan = replicas::old_replicas_to_scale_down(&self.d, &active, new_rs);
        match self.apply(old, plan).await {
            Ok((removed, old)) => Ok((removed > 0, old)),
            Err((old, err)) => {
                tracing::debug!(%err, "deployment controller: scaling down old replica sets");
                Ok((false, old))
            }
        }
    }

    /// Applies `(name, replicas)` scales to `sets` in order, stopping at the first failure;
    /// answers the replicas removed and the sets as written.
    async fn apply(
        &self,
        mut sets: Vec<ReplicaSet>,
        plan: Vec<(String, i32)>,
    ) -> Result<(i32, Vec<ReplicaSet>), (Vec<ReplicaSet>, ReconcileError)> {
        let mut removed = 0;
        for (name, replicas) in plan {
            let Some(target) = sets.iter_mut().find(|rs| rs.name_any() == name) else {
                continue;
            };
            let before = spec::rs_replicas(target);
            match self
                .scale_replica_set_and_record_event(target, replicas)
                .await
            {
                Ok((_, updated)) => *target = updated,
                Err(err) => return Err((sets, err)),
            }
            removed += before - replicas;
        }
        Ok((removed, sets))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    use super::*;

    fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).expect("a valid object")
    }

    fn deployment(replicas: i32, max_surge: i32, max_unavailable: i32) -> Deployment {
        object(json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                    "maxSurge": max_surge, "maxUnavailable": max_unavailable,
                }},
            },
        }))
    }

    fn rs(replicas: i32, available: i32) -> ReplicaSet {
        object(json!({
            "metadata": {"name": "rs"},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "availableReplicas": available},
        }))
    }

    /// The two cases of kube's comment in `reconcileOldReplicaSets`: 10 replicas, 2
    /// maxUnavailable, 3 maxSurge.
    #[test]
    fn unavailable_new_pods_hold_the_old_ones() {
        let d = deployment(10, 3, 2);
        // A crashlooping new ReplicaSet of 5 beside 8 old: nothing more may go.
        assert_eq!(replicas::max_scaled_down(&d, &[&rs(8, 7)], &rs(5, 0)), None);
        // Rolled back to the old template, the broken one (now old) may lose 4.
        assert_eq!(
            replicas::max_scaled_down(&d, &[&rs(5, 0)], &rs(8, 7)),
            Some(4)
        );
        // A roll-over: a fresh ReplicaSet of 0 beside 13 old may take 5 away.
        assert_eq!(
            replicas::max_scaled_down(&d, &[&rs(8, 8), &rs(5, 0)], &rs(0, 0)),
            Some(5)
        );
        assert_eq!(replicas::max_scaled_down(&d, &[], &rs(10, 10)), None);
    }
}
