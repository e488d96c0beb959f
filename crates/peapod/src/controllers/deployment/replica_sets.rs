//! The ReplicaSets a sync writes (kube's `sync.go`): the new ReplicaSet found or created
//! with its revision (a hash collision raising the collision count), and every scale, each
//! recorded as a `ScalingReplicaSet` event with the replicas annotations kept current.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::PostParams;
use kube::ResourceExt;

use super::conditions::{self, FAILED_RS_CREATE, FOUND_NEW_RS, NEW_RS_CREATED, PROGRESSING};
use super::rollout::{ReconcileError, Rollout};
use super::{hash, order, progress, replicas, revision, spec, template};
use crate::controllers::api_errors::namespace_terminating;
use crate::controllers::events::Event;
use crate::controllers::ownership;

/// kube's `maxRevHistoryLengthInChars`: the revision-history annotation's cap.
const MAX_REV_HISTORY_LENGTH_IN_CHARS: usize = 2000;
/// The reason of the events recording each scale.
const SCALING_REPLICA_SET: &str = "ScalingReplicaSet";

impl Rollout<'_> {
    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when `create` and
    /// missing) with its revision synced, and all the old ones.
    pub(super) async fn all_replica_sets_and_sync_revision(
        &mut self,
        sets: &[ReplicaSet],
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), ReconcileError> {
        let refs: Vec<&ReplicaSet> = sets.iter().collect();
        let new_rs = template::find_new_replica_set(&self.d, &refs).cloned();
        let (_, old) = template::find_old_replica_sets(&self.d, &refs, new_rs.as_ref());
        let old: Vec<ReplicaSet> = old.into_iter().cloned().collect();
        let new_rs = self.new_replica_set(new_rs, &old, create).await?;
        Ok((new_rs, old))
    }

    /// `getNewReplicaSet`: the existing new ReplicaSet with its annotations and
    /// minReadySeconds synced (and the Deployment's revision), else a created one.
    async fn new_replica_set(
        &mut self,
        existing: Option<ReplicaSet>,
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>, ReconcileError> {
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        let new_revision = (revision::max_revision(&old_refs) + 1).to_string();
        if let Some(existing) = existing {
            return self.sync_existing(existing, &new_revision).await.map(Some);
        }
        if !create {
            return Ok(None);
        }
        self.create_new(old, &new_revision).await.map(Some)
    }

    async fn sync_existing(
        &mut self,
        mut rs: ReplicaSet,
        new_revision: &str,
    ) -> Result<ReplicaSet, ReconcileError> {
        let annotations_updated = revision::set_new_replica_set_annotations(
            &self.d,
            &mut rs,
            new_revision,
            true,
            MAX_REV_HISTORY_LENGTH_IN_CHARS,
        );
        let min_ready = spec::min_ready_seconds(&self.d);
        let rs_spec = rs.spec.get_or_insert_with(Default::default);
        if annotations_updated || rs_spec.min_ready_seconds.unwrap_or(0) != min_ready {
            rs_spec.min_ready_seconds = Some(min_ready);
            let name = rs.name_any();
            return Ok(self
                .sets
                .replace(&name, &PostParams::default(), &rs)
                .await?);
        }
        let annotations = rs.metadata.annotations.as_ref();
        let rs_revision = annotations.and_then(|a| a.get(revision::REVISION_ANNOTATION));
        let rs_revision = rs_revision.cloned().unwrap_or_default();
        let mut needs_update = set_deployment_revision(&mut self.d, &rs_revision);
        let mut status = self.status();
        let has_progressing = conditions::condition(&status, PROGRESSING).is_some();
        if progress::has_progress_deadline(&self.d) && !has_progressing {
            let message = format!("Found new replica set \"{}\"", rs.name_any());
            let found = conditions::new_condition(
                PROGRESSING,
                "True",
                FOUND_NEW_RS,
                &message,
                Timestamp::now(),
            );
            conditions::set_condition(&mut status, found);
            self.set_status(status);
            needs_update = true;
        }
        if needs_update {
            self.update_status().await?;
        }
        Ok(rs)
    }

    async fn create_new(
        &mut self,
        old: &[ReplicaSet],
        new_revision: &str,
    ) -> Result<ReplicaSet, ReconcileError> {
        let template = spec::template(&self.d);
        let collisions = self.status().collision_count;
        let pod_template_hash = hash::compute_hash(&template, collisions);
        let mut rs = template::new_replica_set(&self.d, &pod_template_hash, 0);
        let all: Vec<&ReplicaSet> = old.iter().chain([&rs]).collect();
        let count = replicas::new_rs_new_replicas(&self.d, &all, &rs)?;
        rs.spec.get_or_insert_with(Default::default).replicas = Some(count);
        revision::set_new_replica_set_annotations(
            &self.d,
            &mut rs,
            new_revision,
            false,
            MAX_REV_HISTORY_LENGTH_IN_CHARS,
        );
        let (created, already_existed) = match self.sets.create(&PostParams::default(), &rs).await {
            Ok(created) => (created, false),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                (self.adopt_existing_or_collide(&rs).await?, true)
            }
            Err(kube::Error::Api(status)) if namespace_terminating(&status) => {
                return Err(kube::Error::Api(status).into())
            }
            Err(err) => return Err(self.creation_failed(&rs, err).await),
        };
        if !already_existed && count > 0 {
            let message = format!("Scaled up replica set {} to {count}", created.name_any());
            let event = Event::normal(SCALING_REPLICA_SET, message);
            self.ctx.events.record(&self.d, event).await;
        }
        self.record_created(&created, new_revision, already_existed)
            .await?;
        Ok(created)
    }

    /// A ReplicaSet of the new one's name exists: ours if we control it and its template is
    /// ours; otherwise a hash collision, counted in the status so the next name differs.
    async fn adopt_existing_or_collide(
        &mut self,
        rs: &ReplicaSet,
    ) -> Result<ReplicaSet, ReconcileError> {
        let name = rs.name_any();
        let existing = self.sets.get(&name).await?;
        let ours = ownership::controller_of(&existing.metadata)
            .is_some_and(|o| Some(&o.uid) == self.d.metadata.uid.as_ref());
        let same_template = template::equal_ignore_hash(
            &spec::template(&self.d),
            &existing
                .spec
                .clone()
                .unwrap_or_default()
                .template
                .unwrap_or_default(),
        );
        if ours && same_template {
            return Ok(existing);
        }
        let mut status = self.status();
        let count = status.collision_count.unwrap_or(0);
        status.collision_count = Some(count.saturating_add(1));
        self.set_status(status);
        if let Err(err) = self.update_status().await {
            tracing::debug!(%err, "deployment controller: raising the collision count");
        }
        Err(ReconcileError::HashCollision(name))
    }

    /// A create refused: the Progressing condition says so (with a deadline), and an event.
    async fn creation_failed(&mut self, rs: &ReplicaSet, err: kube::Error) -> ReconcileError {
        let reason = match &err {
            kube::Error::Api(status) => status.message.clone(),
            other => other.to_string(),
        };
        let message = format!(
            "Failed to create new replica set \"{}\": {reason}",
            rs.name_any()
        );
        if progress::has_progress_deadline(&self.d) {
            let mut status = self.status();
            let failed = conditions::new_condition(
                PROGRESSING,
                "False",
                FAILED_RS_CREATE,
                &message,
                Timestamp::now(),
            );
            conditions::set_condition(&mut status, failed);
            self.set_status(status);
            if let Err(err) = self.update_status().await {
                tracing::debug!(%err, "deployment controller: recording a failed create");
            }
        }
        let event = Event::warning(FAILED_RS_CREATE, message);
        self.ctx.events.record(&self.d, event).await;
        err.into()
    }

    async fn record_created(
        &mut self,
        created: &ReplicaSet,
        new_revision: &str,
        already_existed: bool,
    ) -> Result<(), ReconcileError> {
        let mut needs_update = set_deployment_revision(&mut self.d, new_revision);
        if !already_existed && progress::has_progress_deadline(&self.d) {
            let message = format!("Created new replica set \"{}\"", created.name_any());
            let mut status = self.status();
            let condition = conditions::new_condition(
                PROGRESSING,
                "True",
                NEW_RS_CREATED,
                &message,
                Timestamp::now(),
            );
            conditions::set_condition(&mut status, condition);
            self.set_status(status);
            needs_update = true;
        }
        if needs_update {
            self.update_status().await?;
        }
        Ok(())
    }

    /// `scaleReplicaSetAndRecordEvent`: scales `rs` to `new_scale` unless already there.
    pub(super) async fn scale_replica_set_and_record_event(
        &self,
        rs: &ReplicaSet,
        new_scale: i32,
    ) -> Result<(bool, ReplicaSet), ReconcileError> {
        let current = spec::rs_replicas(rs);
        if current == new_scale {
            return Ok((false, rs.clone()));
        }
        let operation = if current < new_scale { "up" } else { "down" };
        self.scale_replica_set(rs, new_scale, operation).await
    }

    /// `scaleReplicaSet`: writes the size and the replicas annotations when either differs.
    pub(super) async fn scale_replica_set(
        &self,
        rs: &ReplicaSet,
        new_scale: i32,
        operation: &str,
    ) -> Result<(bool, ReplicaSet), ReconcileError> {
        let desired = spec::deployment_replicas(&self.d);
        let max = desired + replicas::max_surge(&self.d);
        let old_scale = spec::rs_replicas(rs);
        let size_changes = old_scale != new_scale;
        if !size_changes && !revision::replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let mut scaled = rs.clone();
        scaled.spec.get_or_insert_with(Default::default).replicas = Some(new_scale);
        revision::set_replicas_annotations(&mut scaled, desired, max);
        let name = scaled.name_any();
        let updated = self
            .sets
            .replace(&name, &PostParams::default(), &scaled)
            .await?;
        if size_changes {
            let message =
                format!("Scaled {operation} replica set {name} to {new_scale} from {old_scale}");
            let event = Event::normal(SCALING_REPLICA_SET, message);
            self.ctx.events.record(&self.d, event).await;
        }
        Ok((size_changes, updated))
    }

    /// `scale`: the Deployment's replicas changed (or it is paused): the only active
    /// ReplicaSet takes them all, old ones go to zero once the new one is saturated, and a
    /// rolling update shares the difference out proportionally.
    pub(super) async fn scale(
        &self,
        new_rs: Option<ReplicaSet>,
        old: Vec<ReplicaSet>,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), ReconcileError> {
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        let plan = replicas::scale_plan(&self.d, new_rs.as_ref(), &old_refs);
        let mut new_rs = new_rs;
        let mut old = old;
        for step in plan {
            let target = new_rs
                .iter_mut()
                .chain(old.iter_mut())
                .find(|rs| rs.name_any() == step.name);
            let Some(target) = target else { continue };
            let (_, updated) = match step.operation {
                Some(operation) => {
                    self.scale_replica_set(target, step.replicas, operation)
                        .await?
                }
                None => {
                    self.scale_replica_set_and_record_event(target, step.replicas)
                        .await?
                }
            };
            *target = updated;
        }
        order::sort_by_creation(&mut old);
        Ok((new_rs, old))
    }
}

/// `SetDeploymentRevision`: the Deployment's revision annotation, true when it changed.
fn set_deployment_revision(d: &mut Deployment, new_revision: &str) -> bool {
    let annotations = d.metadata.annotations.get_or_insert_with(Default::default);
    let current = annotations.get(revision::REVISION_ANNOTATION);
    if current.map(String::as_str) == Some(new_revision) {
        return false;
    }
    annotations.insert(
        revision::REVISION_ANNOTATION.to_owned(),
        new_revision.to_owned(),
    );
    true
}
