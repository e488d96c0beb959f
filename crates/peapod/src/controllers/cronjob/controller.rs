//! The CronJob controller's loop: kube-runtime's Controller over the in-process API, triggered
//! by CronJobs and by the Jobs they control, each reconcile kube's `sync` on a fresh read
//! (history cleanup, then `syncCronJob`, then one status write) in the
//! [shared loop](crate::controllers::reconciler), coming back at the next schedule time it
//! computes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::decisions::{self, outcomes, Step};
use super::jobs::{self, UnknownZone};
use crate::controllers::api_errors::{error_message, namespace_terminating};
use crate::controllers::events::{Event, Events};
use crate::controllers::ownership;
use crate::controllers::reconciler::{self, Reconciler};

/// The controller's name, in its events and as its field manager.
pub const NAME: &str = "cronjob-controller";

/// The longest wait before a sync: kube-runtime's timer wheel panics past about two years,
/// which a leap-day schedule reaches; a sync with nothing due just waits again.
const MAX_REQUEUE: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Zone(#[from] UnknownZone),
    #[error("could not replace job {namespace}/{name}")]
    Replace { namespace: String, name: String },
}

/// What every reconcile shares: the client, the event recorder, the agent's zone, and the
/// schedules last seen.
pub struct Context {
    client: Client,
    events: Events,
    local: TimeZone,
    schedules: SeenSchedules,
}

impl Context {
    pub fn new(client: Client) -> Context {
        Context {
            events: Events::new(client.clone(), NAME),
            client,
            local: TimeZone::system(),
            schedules: SeenSchedules::default(),
        }
    }
}

impl Reconciler for Context {
    type Object = CronJob;
    type Error = ReconcileError;
    const LOG_NAME: &'static str = "cronjob controller";

    fn client(&self) -> &Client {
        &self.client
    }

    /// A new schedule or zone waits for its next time, as kube's `updateCronJob` has it;
    /// otherwise kube's `sync`.
    async fn sync(&self, cron_job: CronJob) -> Result<Action, ReconcileError> {
        if self.schedules.changed(&cron_job) {
            return Ok(wait_for_new_schedule(&cron_job, self).await);
        }
        sync(cron_job, self).await
    }

    fn forget(&self, gone: &CronJob) {
        self.schedules.forget(gone);
    }
}

/// The schedule and zone each CronJob (by uid) was last seen with: a new one waits for its
/// next time instead of syncing, as kube's `updateCronJob` has it.
#[derive(Default)]
struct SeenSchedules(Mutex<HashMap<String, (String, Option<String>)>>);

impl SeenSchedules {
    /// Notes the CronJob's schedule and zone; true when they differ from the last seen.
    fn changed(&self, cron_job: &CronJob) -> bool {
        let spec = cron_job.spec.as_ref();
        let seen = (
            spec.map(|s| s.schedule.clone()).unwrap_or_default(),
            spec.and_then(|s| s.time_zone.clone()),
        );
        let uid = cron_job.metadata.uid.clone().unwrap_or_default();
        let mut schedules = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let previous = schedules.insert(uid, seen.clone());
        previous.is_some_and(|previous| previous != seen)
    }

    fn forget(&self, cron_job: &CronJob) {
        let uid = cron_job.metadata.uid.as_deref().unwrap_or_default();
        let mut schedules = self.0.lock().unwrap_or_else(|e| e.into_inner());
        schedules.remove(uid);
    }
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let cron_jobs = Api::<CronJob>::all(client.clone());
    let jobs = Api::<Job>::all(client.clone());
    let controller = Controller::new(cron_jobs, watcher::Config::default()).watches(
        jobs,
        watcher::Config::default(),
        |job| cron_job_of(&job),
    );
    reconciler::run(controller, Context::new(client)).await;
}

/// The CronJob a Job's change concerns: its controller, if of kind CronJob.
fn cron_job_of(job: &Job) -> Option<ObjectRef<CronJob>> {
    let owner = ownership::controller_of(&job.metadata)?;
    let namespace = job.metadata.namespace.as_deref().unwrap_or_default();
    (owner.kind == "CronJob").then(|| ObjectRef::new(&owner.name).within(namespace))
}

async fn wait_for_new_schedule(cron_job: &CronJob, ctx: &Context) -> Action {
    match decisions::wait_for_new_schedule(cron_job, Timestamp::now(), &ctx.local) {
        Ok(wait) => requeue_after(wait),
        Err(event) => {
            ctx.events.record(cron_job, event).await;
            Action::await_change()
        }
    }
}

fn requeue_after(wait: Duration) -> Action {
    Action::requeue(wait.min(MAX_REQUEUE))
}

/// kube's `sync`: the finished Jobs past the history limits go, `syncCronJob` runs on the
/// same copy, and the status is written once if either changed it.
async fn sync(cron_job: CronJob, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = cron_job.namespace().unwrap_or_default();
    let mut run = Sync {
        job_api: Api::namespaced(ctx.client.clone(), &namespace),
        cron_job,
        status_changed: false,
        ctx,
    };
    let owned = run.owned_jobs().await?;
    run.clean_up_finished_jobs(&owned).await;
    let outcome = run.sync_cron_job(&owned).await;
    if run.status_changed {
        let cron_jobs = Api::<CronJob>::namespaced(ctx.client.clone(), &namespace);
        let name = run.cron_job.name_any();
        cron_jobs
            .replace_status(&name, &PostParams::default(), &run.cron_job)
            .await?;
    }
    Ok(outcome?.map_or_else(Action::await_change, requeue_after))
}

/// One sync of one CronJob: the copy its changes go to, and whether its status changed.
struct Sync<'a> {
    job_api: Api<Job>,
    cron_job: CronJob,
    status_changed: bool,
    ctx: &'a Context,
}

impl Sync<'_> {
    /// `getJobsToBeReconciled`: the namespace's Jobs whose controller bears the CronJob's name.
    async fn owned_jobs(&self) -> Result<Vec<Job>, ReconcileError> {
        let name = self.cron_job.name_any();
        let listed = self.job_api.list(&ListParams::default()).await?.items;
        Ok(listed
            .into_iter()
            .filter(|job| ownership::controller_of(&job.metadata).is_some_and(|o| o.name == name))
            .collect())
    }

    async fn record(&self, event: Event) {
        self.ctx.events.record(&self.cron_job, event).await;
    }

    async fn record_all(&self, events: Vec<Event>) {
        for event in events {
            self.record(event).await;
        }
    }

    /// `cleanupFinishedJobs`.
    async fn clean_up_finished_jobs(&mut self, owned: &[Job]) {
        let owned: Vec<&Job> = owned.iter().collect();
        for job in jobs::past_history_limits(&self.cron_job, &owned) {
            self.status_changed |= self.delete_job(job).await;
        }
    }

    /// `deleteJob`: the Job goes, with its pods in the background, and leaves the active list.
    async fn delete_job(&mut self, job: &Job) -> bool {
        let name = job.name_any();
        match self
            .job_api
            .delete(&name, &DeleteParams::background())
            .await
        {
            Ok(_) => {
                let uid = job.metadata.uid.as_deref().unwrap_or_default();
                jobs::delete_from_active_list(&mut self.cron_job, uid);
                self.record(outcomes::deleted(&name)).await;
                true
            }
            Err(err) => {
                tracing::warn!(job = %name, %err, "cronjob controller: deleting a job");
                self.record(outcomes::delete_failed(&error_message(&err)))
                    .await;
                false
            }
        }
    }

    /// `syncCronJob`: the Jobs accounted for, then the start the decision calls for.
    async fn sync_cron_job(&mut self, owned: &[Job]) -> Result<Option<Duration>, ReconcileError> {
        let now = Timestamp::now();
        let owned: Vec<&Job> = owned.iter().collect();
        let accounted = decisions::account_for_jobs(&mut self.cron_job, &owned);
        self.status_changed |= accounted.status_changed;
        self.record_all(accounted.events).await;
        for reference in accounted.unaccounted {
            self.drop_if_missing(&reference).await?;
        }
        let decision = decisions::decide(&self.cron_job, now, &self.ctx.local);
        self.record_all(decision.events).await;
        match decision.step {
            Step::Stop => Ok(None),
            Step::RequeueAfter(wait) => Ok(Some(wait)),
            Step::Start {
                scheduled,
                replace,
                requeue,
            } => {
                if replace {
                    self.replace_active().await?;
                }
                let started = self.start(scheduled).await?;
                Ok(started.then_some(requeue))
            }
        }
    }

    /// An active Job not among the listed ones is looked up; gone, it leaves the list.
    async fn drop_if_missing(&mut self, reference: &ObjectReference) -> Result<(), ReconcileError> {
        let name = reference.name.as_deref().unwrap_or_default();
        if self.job_api.get_opt(name).await?.is_some() {
            return Ok(());
        }
        self.record(decisions::missing_job(name)).await;
        let uid = reference.uid.as_deref().unwrap_or_default();
        jobs::delete_from_active_list(&mut self.cron_job, uid);
        self.status_changed = true;
        Ok(())
    }

    /// Replace: every active Job is deleted before the new one starts.
    async fn replace_active(&mut self) -> Result<(), ReconcileError> {
        for reference in jobs::active(&self.cron_job).to_vec() {
            let name = reference.name.clone().unwrap_or_default();
            let job = match self.job_api.get(&name).await {
                Ok(job) => job,
                Err(err) => {
                    self.record(outcomes::get_failed(&error_message(&err)))
                        .await;
                    return Err(err.into());
                }
            };
            if !self.delete_job(&job).await {
                let namespace = job.namespace().unwrap_or_default();
                return Err(ReconcileError::Replace { namespace, name });
            }
            self.status_changed = true;
        }
        Ok(())
    }

    /// Creates the Job of `scheduled` and lists it as active; false when a Job of that name
    /// exists that another controller owns or that is already listed (no requeue, as kube).
    async fn start(&mut self, scheduled: Timestamp) -> Result<bool, ReconcileError> {
        let job = jobs::job_from_template(&self.cron_job, scheduled)?;
        let name = job.name_any();
        let created = match self.job_api.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.record(outcomes::created(&name)).await;
                created
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                let existing = self.job_api.get(&name).await?;
                let uid = self.cron_job.metadata.uid.as_deref().unwrap_or_default();
                let ours =
                    ownership::controller_of(&existing.metadata).is_some_and(|o| o.uid == uid);
                let existing_uid = existing.metadata.uid.as_deref().unwrap_or_default();
                if !ours || jobs::in_active_list(&self.cron_job, existing_uid) {
                    return Ok(false);
                }
                tracing::info!(job = %name, "cronjob controller: job already exists");
                existing
            }
            Err(kube::Error::Api(status)) if namespace_terminating(&status) => {
                return Err(kube::Error::Api(status).into());
            }
            Err(err) => {
                self.record(outcomes::create_failed(&error_message(&err)))
                    .await;
                return Err(err.into());
            }
        };
        let status = self.cron_job.status.get_or_insert_with(Default::default);
        let active = status.active.get_or_insert_with(Vec::new);
        active.push(jobs::reference_of(&created));
        status.last_schedule_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            scheduled,
        ));
        self.status_changed = true;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(owner: Option<(&str, &str)>) -> Job {
        let owners: Vec<_> = owner
            .into_iter()
            .map(|(kind, name)| {
                json!({"apiVersion": "batch/v1", "kind": kind, "name": name, "uid": "u",
                       "controller": true})
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"namespace": "team", "name": "j", "ownerReferences": owners},
        }))
        .expect("a job")
    }

    fn cron_job(uid: &str, schedule: &str, time_zone: Option<&str>) -> CronJob {
        serde_json::from_value(json!({
            "metadata": {"namespace": "team", "name": "nightly", "uid": uid},
            "spec": {"schedule": schedule, "timeZone": time_zone, "jobTemplate": {}},
        }))
        .expect("a cron job")
    }

    #[test]
    fn a_new_schedule_or_zone_is_a_change_and_a_first_sight_is_not() {
        let seen = SeenSchedules::default();
        assert!(!seen.changed(&cron_job("a", "0 * * * *", None)));
        assert!(!seen.changed(&cron_job("a", "0 * * * *", None)));
        assert!(seen.changed(&cron_job("a", "*/5 * * * *", None)));
        assert!(seen.changed(&cron_job("a", "*/5 * * * *", Some("Europe/Rome"))));
        assert!(!seen.changed(&cron_job("b", "@hourly", None)));
        seen.forget(&cron_job("a", "", None));
        assert!(!seen.changed(&cron_job("a", "@daily", None)));
    }

    #[test]
    fn jobs_trigger_the_cron_job_that_controls_them() {
        let owner = cron_job_of(&job(Some(("CronJob", "nightly")))).expect("its cron job");
        assert_eq!(
            (owner.name.as_str(), owner.namespace.as_deref()),
            ("nightly", Some("team"))
        );
        assert!(cron_job_of(&job(Some(("Workflow", "nightly")))).is_none());
        assert!(cron_job_of(&job(None)).is_none());
    }
}
