//! The Job controller's decisions, as kube-controller-manager 1.32's (pkg/controller/job,
//! with JobManagedBy, JobPodReplacementPolicy, JobSuccessPolicy, JobBackoffLimitPerIndex and
//! PodIndexLabel on) takes them, over k8s-openapi types and without I/O, and [`controller`],
//! the loop that runs them:
//!
//! - [`spec`]: the Job's spec with batch/v1's defaults;
//! - [`pods`]: what a pod is to the controller (tracked, failed, terminating, finished when);
//! - [`indexes`]: completion indexes and their interval lists;
//! - [`backoff`]: the pod failure backoff before replacements;
//! - [`failure_policy`] and [`success_policy`]: `podFailurePolicy` and `successPolicy`;
//! - [`conditions`]: conditions and events in kube's words;
//! - [`state`]: one sync's counts and its verdict (failed, succeeded, deadline);
//! - [`manage`]: how many pods run, which go first, which indexes are next;
//! - [`template`]: the pod a create sends;
//! - [`tracking`]: counting finished pods exactly once through the tracking finalizer;
//! - [`pod_control`]: the creates, deletes and finalizer removals, with their events;
//! - [`orphans`]: finalizers released from pods no running Job will count.
//!
//! A reconcile of one Job, as `syncJob`:
//!
//! 1. Read it from the API (gone: its backoff record is dropped); skip it if another
//!    controller manages it, it finished, or its completion mode is unknown.
//! 2. List the namespace's pods and claim them (adopted ones get the tracking finalizer).
//! 3. [`state::SyncState::new`] counts them; [`state::SyncState::judge`] decides whether the
//!    Job failed (FailureTarget first) or met its success policy, and when the active
//!    deadline falls.
//! 4. A finishing Job has its active pods deleted; a running one is managed (suspend deletes
//!    every pod; too many pods are deleted; missing ones are created after the backoff), then
//!    is found complete (SuccessCriteriaMet first) or gets its Suspended condition.
//! 5. [`tracking`] writes the finished pods into the status, removes their finalizers, counts
//!    them, and sets Complete or Failed once no pod is uncounted or terminating.
//!
//! kube's expectations are not kept: reads go to the API in process, which is consistent, so a
//! sync always sees the writes of the one before.

pub mod backoff;
pub mod conditions;
pub mod controller;
pub mod failure_policy;
pub mod indexes;
pub mod manage;
pub mod orphans;
pub mod pod_control;
pub mod pods;
pub mod spec;
pub mod state;
pub mod success_policy;
pub mod template;
pub mod tracking;

#[cfg(test)]
mod fixtures;
