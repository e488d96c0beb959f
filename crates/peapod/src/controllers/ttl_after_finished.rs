//! The TTL-after-finished controller, as kube-controller-manager's
//! (pkg/controller/ttlafterfinished): a finished Job with `ttlSecondsAfterFinished` is deleted
//! (propagation Foreground, so its pods go first; precondition on its uid) once that long has
//! passed since its Complete or Failed condition turned True, after a fresh read confirms it;
//! until then it comes back when the time is up.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::controllers::retries::{key_of, Retries};

/// The controller's name, its field manager.
pub const NAME: &str = "ttl-after-finished-controller";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    #[error("unable to find the time when the Job {namespace}/{name} finished")]
    NoFinishTime { namespace: String, name: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Ttl(#[from] TtlError),
}

/// What `processTTL` makes of a Job at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Being deleted, unfinished, or without a TTL: nothing to do.
    NotApplicable,
    /// The TTL runs out after this long.
    In(Duration),
    /// The TTL ran out: delete it.
    Expired,
}

/// `processTTL` / `timeLeft`.
pub fn expiry(job: &Job, now: Timestamp) -> Result<Expiry, TtlError> {
    let ttl = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished);
    let Some(ttl) = ttl.filter(|_| job.metadata.deletion_timestamp.is_none()) else {
        return Ok(Expiry::NotApplicable);
    };
    if !crate::controllers::job::conditions::is_finished(job) {
        return Ok(Expiry::NotApplicable);
    }
    let finished = finish_time(job)?;
    if finished > now {
        tracing::info!(job = %key_of(job), "found a Job finished in the future; clock skew?");
    }
    let expires = finished + SignedDuration::from_secs(i64::from(ttl));
    let left = expires.duration_since(now);
    Ok(match Duration::try_from(left) {
        Ok(left) if !left.is_zero() => Expiry::In(left),
        _ => Expiry::Expired,
    })
}

/// `jobFinishTime`: when the Complete or Failed condition turned True.
fn finish_time(job: &Job) -> Result<Timestamp, TtlError> {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref());
    let finished = conditions
        .unwrap_or_default()
        .iter()
        .find(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True");
    let time = finished.and_then(|c| c.last_transition_time.as_ref());
    time.map(|t| t.0).ok_or_else(|| TtlError::NoFinishTime {
        namespace: job.namespace().unwrap_or_default(),
        name: job.name_any(),
    })
}

struct Context {
    client: Client,
    retries: Retries,
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let jobs = Api::<Job>::all(client.clone());
    let context = Arc::new(Context {
        client,
        retries: Retries::default(),
    });
    Controller::new(jobs, watcher::Config::default())
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "ttl-after-finished controller");
            }
        })
        .await;
}

async fn reconcile(cached: Arc<Job>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let key = key_of(cached.as_ref());
    let action = match expiry(&cached, Timestamp::now())? {
        Expiry::NotApplicable => Action::await_change(),
        Expiry::In(left) => Action::requeue(left),
        Expiry::Expired => clean_up(&cached, &ctx).await?,
    };
    ctx.retries.succeeded(&key);
    Ok(action)
}

/// The TTL may be stale: a fresh read decides, then the Job is deleted if it still expired.
async fn clean_up(cached: &Job, ctx: &Context) -> Result<Action, ReconcileError> {
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &cached.namespace().unwrap_or_default());
    let Some(fresh) = jobs.get_opt(&cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    match expiry(&fresh, Timestamp::now())? {
        Expiry::NotApplicable => return Ok(Action::await_change()),
        Expiry::In(left) => return Ok(Action::requeue(left)),
        Expiry::Expired => {}
    }
    tracing::info!(job = %key_of(&fresh), "cleaning up Job");
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(kube::api::Preconditions {
            uid: fresh.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match jobs.delete(&fresh.name_any(), &params).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(Action::await_change()),
        Err(err) => Err(err.into()),
    }
}

fn error_policy(job: Arc<Job>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let key = key_of(job.as_ref());
    tracing::info!(job = %key, %err, "ttl-after-finished controller: sync failed");
    Action::requeue(ctx.retries.failed(&key))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(ttl: Option<i32>, finished: Option<(&str, &str)>, deleting: bool) -> Job {
        let mut job: Job = serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": "pi"},
            "spec": {"template": {}},
        }))
        .unwrap();
        job.spec.as_mut().unwrap().ttl_seconds_after_finished = ttl;
        if let Some((type_, at)) = finished {
            job.status = Some(
                serde_json::from_value(json!({"conditions": [
                    {"type": type_, "status": "True", "lastTransitionTime": at},
                ]}))
                .unwrap(),
            );
        }
        if deleting {
            job.metadata.deletion_timestamp =
                Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
        }
        job
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// kube's `TestTimeLeft` and `processTTL` cases.
    #[test]
    fn a_finished_job_expires_its_ttl_after_the_finish() {
        let now = at("2026-01-01T00:00:10Z");
        let complete = Some(("Complete", "2026-01-01T00:00:00Z"));
        assert_eq!(
            expiry(&job(None, complete, false), now),
            Ok(Expiry::NotApplicable)
        );
        assert_eq!(
            expiry(&job(Some(0), None, false), now),
            Ok(Expiry::NotApplicable)
        );
        assert_eq!(
            expiry(&job(Some(0), complete, true), now),
            Ok(Expiry::NotApplicable)
        );
        assert_eq!(
            expiry(&job(Some(15), complete, false), now),
            Ok(Expiry::In(Duration::from_secs(5)))
        );
        assert_eq!(
            expiry(&job(Some(10), complete, false), now),
            Ok(Expiry::Expired)
        );
        let failed = Some(("Failed", "2026-01-01T00:00:08Z"));
        assert_eq!(
            expiry(&job(Some(3), failed, false), now),
            Ok(Expiry::In(Duration::from_secs(1)))
        );
        let future = Some(("Complete", "2026-01-01T00:00:20Z"));
        assert_eq!(
            expiry(&job(Some(0), future, false), now),
            Ok(Expiry::In(Duration::from_secs(10)))
        );
    }

    #[test]
    fn a_finished_job_without_a_transition_time_is_an_error() {
        let mut finished = job(Some(1), Some(("Complete", "2026-01-01T00:00:00Z")), false);
        let status = finished.status.as_mut().unwrap();
        status.conditions.as_mut().unwrap()[0].last_transition_time = None;
        let err = expiry(&finished, at("2026-01-01T00:00:10Z")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find the time when the Job ns/pi finished"
        );
    }
}
