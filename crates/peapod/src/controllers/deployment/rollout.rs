//! One sync of one Deployment against the API (kube's `sync.go` and `progress.go` I/O): the
//! working copy of the Deployment whose status the steps update, its ReplicaSets claimed, the
//! status written back, old ReplicaSets cleaned up, and the paused and scaling paths. The
//! rollouts proper are in [`super::rolling`] and [`super::recreate`], the ReplicaSet writes in
//! [`super::replica_sets`].

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use peapod_api::selector::LabelSelector as Selector;

use super::controller::Context;
use super::rollback::rollback_to;
use super::{progress, replicas, spec, status};
use crate::controllers::ownership::{self, AdoptionError};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Adoption(#[from] AdoptionError),
    #[error("{0}")]
    Fencepost(#[from] replicas::FencepostError),
    /// A ReplicaSet whose name is taken by another template: the collision count was raised,
    /// the next sync tries another name.
    #[error("replicasets.apps \"{0}\" already exists")]
    HashCollision(String),
}

/// A Deployment being synced: its working copy and the APIs it writes through.
pub struct Rollout<'a> {
    pub(super) ctx: &'a Context,
    pub(super) d: Deployment,
    pub(super) deployments: Api<Deployment>,
    pub(super) sets: Api<ReplicaSet>,
}

/// What a sync asks of the queue: come back after this long (a rollout that may time out).
pub type Requeue = Option<Duration>;

impl<'a> Rollout<'a> {
    pub fn new(d: Deployment, ctx: &'a Context) -> Rollout<'a> {
        let namespace = d.namespace().unwrap_or_default();
        Rollout {
            deployments: Api::namespaced(ctx.client.clone(), &namespace),
            sets: Api::namespaced(ctx.client.clone(), &namespace),
            ctx,
            d,
        }
    }

    pub fn deployment(&self) -> &Deployment {
        &self.d
    }

    pub fn paused(&self) -> bool {
        spec::paused(&self.d)
    }

    pub fn strategy(&self) -> &str {
        spec::strategy_type(&self.d)
    }

    /// `getReplicaSetsForDeployment`: the namespace's ReplicaSets this Deployment owns or
    /// adopts, releasing the ones it owns that its selector no longer matches.
    pub async fn claim_replica_sets(
        &mut self,
        selector: &Selector,
    ) -> Result<Vec<ReplicaSet>, ReconcileError> {
        let listed = self.sets.list(&ListParams::default()).await?.items;
        let candidates: Vec<&ReplicaSet> = listed.iter().collect();
        Ok(ownership::claim_all(&self.d, selector, &candidates, &self.sets).await?)
    }

    /// Writes the working copy's status, keeping what the API returned.
    pub(super) async fn update_status(&mut self) -> Result<(), ReconcileError> {
        let name = self.d.name_any();
        let params = PostParams::default();
        self.d = self
            .deployments
            .replace_status(&name, &params, &self.d)
            .await?;
        Ok(())
    }

    pub(super) fn status(&self) -> DeploymentStatus {
        spec::status(&self.d)
    }

    pub(super) fn set_status(&mut self, status: DeploymentStatus) {
        self.d.status = Some(status);
    }

    /// `syncStatusOnly`: a Deployment being deleted only has its status brought up to date.
    pub async fn sync_status_only(
        &mut self,
        sets: &[ReplicaSet],
    ) -> Result<Requeue, ReconcileError> {
        let (new_rs, old) = self.all_replica_sets_and_sync_revision(sets, false).await?;
        self.sync_deployment_status(new_rs.as_ref(), &old).await?;
        Ok(None)
    }

    /// `sync`: a paused Deployment, or one whose replicas changed, is scaled (proportionally
    /// in a rolling update) without rolling anything.
    pub async fn sync(&mut self, sets: &[ReplicaSet]) -> Result<Requeue, ReconcileError> {
        let (new_rs, old) = self.all_replica_sets_and_sync_revision(sets, false).await?;
        let (new_rs, old) = self.scale(new_rs, old).await?;
        // A rollback in flight may need the old ReplicaSet the cleanup would delete.
        if self.paused() && rollback_to(&self.d).is_none() {
            self.cleanup(&old).await?;
        }
        self.sync_deployment_status(new_rs.as_ref(), &old).await?;
        Ok(None)
    }

    /// `checkPausedConditions`: the Progressing condition says when a Deployment is paused
    /// or resumed, so a long pause never reads as a lack of progress.
    pub async fn check_paused_conditions(&mut self) -> Result<(), ReconcileError> {
        let now = Timestamp::now();
        if let Some(status) = status::paused_condition(&self.d, &self.status(), now) {
            self.set_status(status);
            self.update_status().await?;
        }
        Ok(())
    }

    /// `isScalingEvent`: an active ReplicaSet's desired-replicas annotation differs from the
    /// Deployment's replicas.
    pub async fn is_scaling_event(&mut self, sets: &[ReplicaSet]) -> Result<bool, ReconcileError> {
        let (new_rs, old) = self.all_replica_sets_and_sync_revision(sets, false).await?;
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs.as_ref()).collect();
        Ok(status::is_scaling_event(&self.d, &all))
    }

    /// `cleanupDeployment`: old ReplicaSets beyond revisionHistoryLimit, emptied and
    /// observed, are deleted oldest revision first.
    pub(super) async fn cleanup(&self, old: &[ReplicaSet]) -> Result<(), ReconcileError> {
        let old: Vec<&ReplicaSet> = old.iter().collect();
        for rs in status::history_to_delete(&self.d, &old) {
            match self
                .sets
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// `syncDeploymentStatus`: the status calculated from the ReplicaSets, written when it
    /// changed.
    pub(super) async fn sync_deployment_status(
        &mut self,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<(), ReconcileError> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
        let calculated = status::calculate_status(&all, new_rs, &self.d, Timestamp::now());
        if self.d.status.as_ref() != Some(&calculated) {
            self.set_status(calculated);
            self.update_status().await?;
        }
        Ok(())
    }

    /// `syncRolloutStatus`: the status with the Progressing condition judged against the
    /// progress deadline, written when it changed; otherwise when to come back to judge it.
    pub(super) async fn sync_rollout_status(
        &mut self,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<Requeue, ReconcileError> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
        let now = Timestamp::now();
        let calculated = status::calculate_status(&all, new_rs, &self.d, now);
        let (judged, requeue) = progress::rollout_status(&self.d, new_rs, &all, calculated, now);
        if self.d.status.as_ref() == Some(&judged) {
            return Ok(requeue);
        }
        self.set_status(judged);
        self.update_status().await?;
        Ok(None)
    }
}
