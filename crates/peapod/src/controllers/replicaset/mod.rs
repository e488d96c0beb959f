//! The ReplicaSet controller's decisions, as kube-controller-manager's
//! (pkg/controller/replicaset, controller_utils.go) takes them, over k8s-openapi types and
//! without any I/O, and [`controller`], the loop that runs them:
//!
//! - [`pods`]: what a pod is to the controller (active, ready, available);
//! - [`batches`]: how many pods one sync creates or deletes, in slow-start batches;
//! - [`ranking`]: which pods go first on scale-down;
//! - [`pod_template`]: the pod a create sends;
//! - [`pod_control`]: the events and errors of creates and deletes;
//! - [`status`]: the status written back, and when to come back for availability.
//!
//! A reconcile of one ReplicaSet, as `syncReplicaSet`:
//!
//! 1. Read it from the API (gone: done); [`peapod_api::label_selector::as_selector`] on
//!    `spec.selector` (an error is logged and not retried, as kube does).
//! 2. List the namespace's pods, keep [`pods::filter_active`], and claim them
//!    ([`crate::controllers::ownership::claim_all`]: adopt orphans, release strays).
//! 3. Unless the ReplicaSet is being deleted, [`batches::scale`] with
//!    [`batches::BURST_REPLICAS`]: create in [`batches::slow_start_batch`]es posting
//!    [`pod_template::pod_for`] (a NamespaceTerminating refusal counts as success), or delete
//!    the [`ranking::pods_to_delete`] all at once (a 404 is no failure); record
//!    [`pod_control`] events.
//! 4. [`status::calculate_status`] with the manage error, written when
//!    [`status::status_update`] says so.
//! 5. [`status::availability_requeue`] tells when to sync again for pods turning available;
//!    a manage error is returned, so the queue retries with backoff.
//!
//! kube's expectations are not kept: reads go to the API in process, which is consistent, so a
//! sync always sees the creates and deletes of the one before.

pub mod batches;
pub mod controller;
pub mod pod_control;
pub mod pod_template;
pub mod pods;
pub mod ranking;
pub mod status;
