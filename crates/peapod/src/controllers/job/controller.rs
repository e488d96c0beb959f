//! The Job controller's loop: kube-runtime's Controller over the in-process API, triggered by
//! Jobs and by pods (mapped to their controlling Job, orphans to the Jobs of their namespace
//! that select them), each reconcile a `syncJob` as the [module doc](super) spells it out.
//! Reads go to the API, which is consistent, so no expectations are kept; the
//! [shared loop](crate::controllers::reconciler) brings failed syncs back with kube's job
//! queue backoff (1 s doubled, at most a minute).

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::backoff::Records;
use super::conditions::{self as cond, SUCCESS_CRITERIA_MET, SUSPENDED};
use super::pod_control::{self, Deletion};
use super::pods::{count, has_tracking_finalizer, TRACKING_FINALIZER};
use super::state::SyncState;
use super::{manage, orphans, spec, tracking};
use crate::controllers::events::{Event, Events};
use crate::controllers::ownership::{self, AdoptionError};
use crate::controllers::reconciler::{self, Reconciler};
use crate::controllers::retries::key_of;

/// The controller's name, in its events and as its field manager.
pub const NAME: &str = "job-controller";
/// `syncJobBatchPeriod`: the shortest wait before a sync the controller asks for itself.
const SYNC_BATCH_PERIOD: Duration = Duration::from_secs(1);
/// `MaxJobApiBackOff`.
const MAX_API_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Adoption(#[from] AdoptionError),
    #[error("couldn't convert Job selector: {0}")]
    Selector(String),
    /// What `manageJob` failed with; the status was written all the same.
    #[error("{0}")]
    Manage(String),
    #[error("tracking status: {0}")]
    Tracking(String),
}

/// What every reconcile shares: the client, the event recorder and each Job's pod failure
/// backoff record.
pub struct Context {
    pub(super) client: Client,
    pub(super) events: Events,
    backoffs: Records,
}

impl Context {
    pub fn new(client: Client) -> Context {
        Context {
            events: Events::new(client.clone(), NAME),
            client,
            backoffs: Records::default(),
        }
    }
}

impl Reconciler for Context {
    type Object = Job;
    type Error = ReconcileError;
    const LOG_NAME: &'static str = "job controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, job: Job) -> Result<Action, ReconcileError> {
        sync(job, self).await
    }

    fn forget(&self, gone: &Job) {
        self.backoffs.remove(&key_of(gone));
    }

    /// kube's job queue: 1 s doubled per failure (200 times the default limiter's 5 ms), at
    /// most a minute.
    fn retry_after(&self, backoff: Duration) -> Duration {
        backoff.saturating_mul(200).min(MAX_API_BACKOFF)
    }
}

/// Runs the controller (and its cleaner of orphaned pods' finalizers) until aborted.
pub async fn run(client: Client) {
    let jobs = Api::<Job>::all(client.clone());
    let pods = Api::<Pod>::all(client.clone());
    let controller = Controller::new(jobs, watcher::Config::default());
    let cache = controller.store();
    let controller = controller.watches(pods, watcher::Config::default(), move |pod| {
        ownership::controllers_to_sync(&cache, &pod)
    });
    let jobs = reconciler::run(controller, Context::new(client.clone()));
    tokio::join!(jobs, orphans::run(client));
}

/// `syncJob` for a fresh read of the Job.
async fn sync(job: Job, ctx: &Context) -> Result<Action, ReconcileError> {
    let key = key_of(&job);
    if let Some(other) = spec::managed_elsewhere(&job) {
        tracing::debug!(job = %key, controller = other, "managed by another controller");
        return Ok(Action::await_change());
    }
    if cond::is_finished(&job) {
        ctx.backoffs.remove(&key);
        return Ok(Action::await_change());
    }
    if !matches!(spec::completion_mode(&job), "NonIndexed" | "Indexed") {
        let message = "Skipped Job sync because completion mode is unknown";
        let event = Event::warning("UnknownCompletionMode", message.to_owned());
        ctx.events.record(&job, event).await;
        return Ok(Action::await_change());
    }
    let pods = pods_for_job(&job, ctx).await?;
    let now = Timestamp::now();
    let mut state = SyncState::new(job, pods.iter().collect(), ctx.backoffs.get(&key), now);
    let mut requeue = state.judge(now);
    let outcome = match state.finished.is_some() {
        true => finish(&mut state, ctx).await,
        false => run_pods(&mut state, ctx, now).await,
    };
    requeue = earliest(requeue, outcome.requeue);
    let status = state.status();
    let needs_update = outcome.suspension_changed
        || outcome.active != status.active.unwrap_or(0)
        || Some(state.ready) != status.ready
        || Some(state.terminating) != status.terminating;
    let (active, ready, terminating) = (outcome.active, state.ready, state.terminating);
    let status = state.status_mut();
    status.active = (active != 0).then_some(active);
    status.ready = Some(ready);
    status.terminating = Some(terminating);
    track(&mut state, needs_update, ctx, &key, now).await?;
    if let Some(err) = outcome.error {
        return Err(ReconcileError::Manage(err));
    }
    Ok(requeue.map_or_else(Action::await_change, |after| {
        Action::requeue(after.max(SYNC_BATCH_PERIOD))
    }))
}

/// What the pod-managing half of a sync leaves: the active count, whether the Suspended
/// condition changed, its error, and when it wants to run again.
#[derive(Debug, Default)]
pub struct Outcome {
    pub active: i32,
    pub suspension_changed: bool,
    pub error: Option<String>,
    pub requeue: Option<Duration>,
}

/// A finishing Job: every active pod is deleted (finalizers kept until counted); unless all
/// went, the Job is not finished in this sync.
async fn finish(state: &mut SyncState<'_>, ctx: &Context) -> Outcome {
    let active = count(state.active.iter());
    let doomed = state.active.clone();
    let deletion = pod_control::delete_all(&state.job, &doomed, false, ctx).await;
    if deletion.deleted != active {
        state.finished = None;
    }
    apply_deletion(state, &deletion);
    Outcome {
        active: active - deletion.deleted,
        error: deletion.error,
        ..Outcome::default()
    }
}

fn apply_deletion(state: &mut SyncState<'_>, deletion: &Deletion) {
    state.terminating += deletion.deleted;
    state.ready -= deletion.deleted_ready;
}

/// A running Job: `manageJob` (unless it is being deleted), then Complete or the Suspended
/// condition.
async fn run_pods(state: &mut SyncState<'_>, ctx: &Context, now: Timestamp) -> Outcome {
    let managed = state.job.metadata.deletion_timestamp.is_none();
    let mut outcome = match managed {
        true => manage_job(state, ctx, now).await,
        false => Outcome {
            active: count(state.active.iter()),
            ..Outcome::default()
        },
    };
    if state.complete(outcome.active) {
        state.finished = Some(cond::true_condition(SUCCESS_CRITERIA_MET, "", "", now));
    } else if managed {
        outcome.suspension_changed = suspension(state, ctx, now).await;
    }
    outcome
}

/// `manageJob`: deletes pods when suspended or too many run (repeated indexes too), else
/// creates the missing ones once the failure backoff allows.
async fn manage_job(state: &mut SyncState<'_>, ctx: &Context, now: Timestamp) -> Outcome {
    let active = count(state.active.iter());
    let doomed = match spec::suspended(&state.job) {
        true => manage::pods_for_removal(state, state.active.len()),
        false => {
            let want = manage::want_active(state, active);
            let at_least = usize::try_from(active - want).unwrap_or(0);
            let mut doomed = manage::pods_for_removal(state, at_least);
            doomed.truncate(manage::MAX_POD_CREATE_DELETE_PER_SYNC);
            doomed
        }
    };
    if spec::suspended(&state.job) || !doomed.is_empty() {
        let deletion = pod_control::delete_all(&state.job, &doomed, true, ctx).await;
        apply_deletion(state, &deletion);
        return Outcome {
            active: active - deletion.deleted,
            error: deletion.error,
            ..Outcome::default()
        };
    }
    let want = manage::want_active(state, active);
    let missing = want - manage::terminating_in_place(state) - active;
    let missing = usize::try_from(missing).unwrap_or(0);
    if missing == 0 {
        return Outcome {
            active,
            ..Outcome::default()
        };
    }
    pod_control::create_missing(state, missing, active, ctx, now).await
}

/// The Suspended condition (and its event) follows `spec.suspend`; a resumed Job starts its
/// active deadline again.
async fn suspension(state: &mut SyncState<'_>, ctx: &Context, now: Timestamp) -> bool {
    let suspended = spec::suspended(&state.job);
    let (status, reason, message) = match suspended {
        true => ("True", "JobSuspended", "Job suspended"),
        false => ("False", "JobResumed", "Job resumed"),
    };
    let job_status = state.status_mut();
    let mut conditions = job_status.conditions.take().unwrap_or_default();
    let changed = cond::ensure(&mut conditions, SUSPENDED, status, reason, message, now);
    job_status.conditions = (!conditions.is_empty()).then_some(conditions);
    if !changed {
        return false;
    }
    let event = match suspended {
        true => cond::suspended_event(),
        false => {
            state.status_mut().start_time = Some(Time(now));
            cond::resumed_event()
        }
    };
    ctx.events.record(&state.job, event).await;
    true
}

/// `trackJobStatusAndRemoveFinalizers` with its writes: the status recording the finished
/// pods, the finalizers removed, the counters moved, and the terminal condition.
async fn track(
    state: &mut SyncState<'_>,
    needs_update: bool,
    ctx: &Context,
    key: &str,
    now: Timestamp,
) -> Result<(), ReconcileError> {
    let tracked = tracking::plan(state, needs_update, now);
    let mut with_finalizer = tracked.with_finalizer;
    if tracked.needs_flush {
        write_status(state, ctx).await?;
        ctx.backoffs.set(key, state.backoff);
    }
    let (removed, error) = pod_control::remove_finalizers(&tracked.remove_finalizer, ctx).await;
    for uid in removed {
        with_finalizer.remove(&uid);
    }
    let mut needs_flush = tracking::clean_uncounted(state.status_mut(), &with_finalizer);
    if let Some(error) = error {
        if needs_flush {
            write_status(state, ctx).await?;
        }
        return Err(ReconcileError::Tracking(error));
    }
    let finished = !tracked.reached_max && tracking::enact_finished(state, now);
    needs_flush |= finished;
    if needs_flush {
        write_status(state, ctx).await?;
    }
    if let Some(condition) = state.finished.clone().filter(|_| finished) {
        for event in cond::finished_events(&state.job, &condition) {
            ctx.events.record(&state.job, event).await;
        }
    }
    Ok(())
}

async fn write_status(state: &mut SyncState<'_>, ctx: &Context) -> Result<(), ReconcileError> {
    let namespace = state.job.namespace().unwrap_or_default();
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &namespace);
    let name = state.job.name_any();
    state.job = jobs
        .replace_status(&name, &PostParams::default(), &state.job)
        .await?;
    Ok(())
}

/// `getPodsForJob`: the namespace's pods the Job owns or adopts (all phases), releasing those
/// that no longer match; an adopted pod gets the tracking finalizer.
async fn pods_for_job(job: &Job, ctx: &Context) -> Result<Vec<Pod>, ReconcileError> {
    let selector = ownership::selector_of(job).map_err(ReconcileError::Selector)?;
    let pod_api = Api::<Pod>::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let all = pod_api.list(&ListParams::default()).await?.items;
    let job_uid = job.metadata.uid.clone().unwrap_or_default();
    let owned: BTreeSet<String> = all
        .iter()
        .filter(|p| ownership::controller_of(&p.metadata).is_some_and(|o| o.uid == job_uid))
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    let candidates: Vec<&Pod> = all.iter().collect();
    let claimed = ownership::claim_all(job, &selector, &candidates, &pod_api).await?;
    let mut pods = Vec::with_capacity(claimed.len());
    for pod in claimed {
        let adopted = !owned.contains(pod.metadata.uid.as_deref().unwrap_or_default());
        if !adopted || has_tracking_finalizer(&pod) {
            pods.push(pod);
            continue;
        }
        let patch = json!({"metadata": {"finalizers": [TRACKING_FINALIZER]}});
        let params = PatchParams::default();
        match pod_api
            .patch(&pod.name_any(), &params, &Patch::Strategic(patch))
            .await
        {
            Ok(patched) => pods.push(patched),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(pods)
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests;
