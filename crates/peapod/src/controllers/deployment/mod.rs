//! The Deployment controller's decisions, as kube-controller-manager's
//! (pkg/controller/deployment and its util package) takes them, over k8s-openapi types and
//! without any I/O:
//!
//! - [`spec`]: the fields read, with the API server's defaults;
//! - [`order`]: the orders ReplicaSets are sorted in;
//! - [`hash`]: the pod-template-hash naming a template's ReplicaSet;
//! - [`revision`]: the revision and replicas annotations on the ReplicaSets;
//! - [`template`]: the new and old ReplicaSets, and the one to create;
//! - [`replicas`]: surge and unavailability, counts, and the scaling plans;
//! - [`conditions`]: the condition types, reasons and update rules;
//! - [`status`]: the calculated status, scaling events, pauses and history cleanup;
//! - [`progress`]: completion, progress and deadline, and the rollout status.
//!
//! A sync of a Deployment with its owned ReplicaSets `sets`, as `syncDeployment`:
//!
//! 1. The new set is [`template::find_new_replica_set`], the old ones
//!    [`template::find_old_replica_sets`]; the next revision is
//!    [`revision::max_revision`] of the old + 1. An existing new set gets
//!    [`revision::set_new_replica_set_annotations`] (`exists: true`,
//!    [`revision::MAX_REV_HISTORY_LENGTH_IN_CHARS`]) and the Deployment's minReadySeconds; a
//!    missing one (when rolling out) is [`template::new_replica_set_with_annotations`] (or
//!    [`template::new_replica_set`] then the annotations with `exists: false`) named by
//!    [`hash::compute_hash`] of the template and status.collisionCount, sized by
//!    [`replicas::initial_replicas`].
//! 2. Being deleted: only the status, [`status::calculate_status`], written when it changed.
//! 3. [`status::paused_condition`]: write it when `Some`.
//! 4. Paused or [`status::is_scaling_event`]: apply [`replicas::scale_plan`], then when paused
//!    (and no rollback in flight) delete [`status::history_to_delete`], then write
//!    [`status::calculate_status`] if changed.
//!    Between the two, a Deployment annotated for a deprecated rollback
//!    ([`rollback::rollback_to`]) takes that revision's template, the annotation cleared.
//! 5. Recreate: scale the active old sets to 0; once no old pod runs, the new set to
//!    [`replicas::new_rs_new_replicas`].
//! 6. RollingUpdate: the new set to [`replicas::new_rs_new_replicas`] (down to the replicas
//!    when above); if nothing scaled up, apply [`replicas::old_replicas_to_scale_down`] (or
//!    its parts: [`replicas::max_scaled_down`], [`replicas::cleanup_unhealthy`],
//!    [`replicas::scale_down_old_for_rolling_update`]). If nothing scaled and
//!    [`progress::deployment_complete`], delete [`status::history_to_delete`].
//! 7. After 5 or 6, [`progress::rollout_status`] on [`status::calculate_status`]: write the
//!    status when it differs from the Deployment's, else requeue after the duration it gives.
//!
//! Every scale of a set also sets [`revision::set_replicas_annotations`] with the
//! Deployment's replicas and replicas + [`replicas::max_surge`], as kube's `scaleReplicaSet`.

pub mod conditions;
pub mod controller;
pub mod hash;
pub mod order;
pub mod progress;
mod recreate;
mod replica_sets;
pub mod replicas;
pub mod revision;
pub mod rollback;
mod rolling;
mod rollout;
pub mod spec;
pub mod status;
pub mod template;

#[cfg(test)]
pub(crate) mod fixtures;
