//! The CronJob controller, as kube-controller-manager's cronjob controller v2
//! (pkg/controller/cronjob) runs it: Jobs started at each schedule time, over k8s-openapi types,
//! the decisions without I/O and [`controller`], the loop that carries them out:
//!
//! - [`times`]: the most recent unmet start time, missed starts, the wait for the next one;
//! - [`jobs`]: the Job of a start time, finished Jobs, `status.active`, the history limits;
//! - [`decisions`]: what the Jobs change in the status and whether a Job starts now, with the
//!   events kube records.
//!
//! A reconcile of one CronJob, as kube's `sync`:
//!
//! 1. Read it from the API (gone: done). A new schedule or zone waits for its next time
//!    ([`decisions::wait_for_new_schedule`]), as kube's update handler requeues it.
//! 2. List the namespace's Jobs whose controller bears its name; delete (in the background) the
//!    finished ones [`jobs::past_history_limits`] lets go (SuccessfulDelete).
//! 3. [`decisions::account_for_jobs`]: finished Jobs leave `status.active` (SawCompletedJob)
//!    and move `lastSuccessfulTime`; active Jobs that are gone leave too (MissingJob).
//! 4. [`decisions::decide`] with the agent's zone for CronJobs without `timeZone`: nothing
//!    (deleting, suspended, bad zone or schedule), a requeue at the next start time, or a
//!    start — Replace deletes the active Jobs first; the Job of [`jobs::job_from_template`] is
//!    created (SuccessfulCreate) and listed, `lastScheduleTime` set.
//! 5. The status is written once, if anything changed it.
//!
//! Reads go to the API in process, which is consistent, so kube's re-read of the CronJob
//! before reporting an UnexpectedJob is not needed.

pub mod controller;
pub mod decisions;
pub mod jobs;
pub mod times;
