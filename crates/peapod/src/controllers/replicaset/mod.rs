//! The ReplicaSet controller's decisions, as kube-controller-manager's
//! (pkg/controller/replicaset, controller_utils.go, controller_ref_manager.go) takes them,
//! over k8s-openapi types and without any I/O, and [`controller`], the loop that runs them:
//!
//! - [`pods`]: what a pod is to the controller (active, ready, available, its key);
//! - [`claims`]: which pods the ReplicaSet owns, adopts or releases, and the patches;
//! - [`batches`]: how many pods one sync creates or deletes, in slow-start batches;
//! - [`ranking`]: which pods go first on scale-down;
//! - [`pod_template`]: the pod a create sends;
//! - [`pod_control`]: the events and errors of creates and deletes;
//! - [`status`]: the status written back, and when to come back for availability;
//! - [`expectations`]: the creates and deletes still to be seen through the watch (for a loop
//!   reading a cache; [`controller`] reads through the API, which is consistent).
//!
//! A reconcile of the ReplicaSet under `key` (`namespace/name`), as `syncReplicaSet`:
//!
//! 1. The ReplicaSet is gone: [`expectations::Expectations::delete`], done. Otherwise note
//!    whether it may manage pods: [`expectations::Expectations::satisfied`].
//! 2. [`peapod_api::label_selector::as_selector`] on `spec.selector`; an error is logged and the sync ends
//!    without a retry, as kube does.
//! 3. List the namespace's pods, keep [`pods::filter_active`], and [`claims::claim`] each:
//!    send the adopt and release patches (checking [`claims::can_adopt`] with a fresh read
//!    once before the first adoption); the owned and adopted pods are the ones managed.
//! 4. If it may manage pods and is not being deleted, [`batches::scale`] with
//!    [`batches::BURST_REPLICAS`]:
//!    - `Create(n)`: [`expectations::Expectations::expect_creations`], then
//!      [`batches::slow_start_batch`] posting [`pod_template::pod_for`] (a
//!      NamespaceTerminating refusal counts as success); lower the expectations once per
//!      [`batches::SlowStart::skipped`] creation; record [`pod_control`] events.
//!    - `Delete(n)`: [`ranking::pods_to_delete`] (the related pods being those of the
//!      ReplicaSets sharing this one's controller), [`expectations::Expectations::expect_deletions`]
//!      with their [`pods::key`]s, delete them all at once; a failed delete is
//!      [`expectations::Expectations::deletion_observed`] right away, and unless a 404 it is
//!      the manage error ([`pod_control::delete_error`]).
//! 5. [`status::calculate_status`] with the manage error, then [`status::status_update`]
//!    decides whether to write it (a failed write is retried with backoff).
//! 6. [`status::availability_requeue`] tells when to sync again for pods turning available;
//!    a manage error is returned, so the queue retries with backoff.
//!
//! The watch feeds the expectations: a pod created with our controller reference is
//! [`expectations::Expectations::creation_observed`]; a pod deleted, or updated with a
//! deletionTimestamp, is [`expectations::Expectations::deletion_observed`].

pub mod batches;
pub mod claims;
pub mod controller;
pub mod expectations;
pub mod pod_control;
pub mod pod_template;
pub mod pods;
pub mod ranking;
pub mod status;
