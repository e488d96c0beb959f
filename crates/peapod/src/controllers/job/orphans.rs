//! kube's orphan pod queue (`syncOrphanPod`): a pod holding the Job tracking finalizer whose
//! Job is gone, finished or no longer its controller would never be deleted, as no sync of a
//! running Job will count it; its finalizer is removed. Pods of another kind of controller,
//! and of a Job another controller manages, keep theirs. As kube's, it judges the pod as the
//! watch last saw it (the controller's role may not get pods) and its Job as the API has it.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::conditions::is_finished;
use super::pod_control::remove_finalizer;
use super::pods::has_tracking_finalizer;
use super::spec::managed_elsewhere;
use crate::controllers::ownership;
use crate::controllers::retries::{key_of, Retries};

/// What decides a pod's finalizer: its controlling Job, as the API has it now.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// No controller reference.
    None,
    /// A controller that is not a batch/v1 Job.
    OtherKind,
    /// A batch/v1 Job: the one of that name and uid, if it exists.
    Job(Option<&'a Job>),
}

/// Whether the orphan cleaner removes the pod's tracking finalizer.
pub fn releases(pod: &Pod, owner: Owner<'_>) -> bool {
    if !has_tracking_finalizer(pod) {
        return false;
    }
    match owner {
        Owner::None | Owner::Job(None) => true,
        Owner::OtherKind => false,
        Owner::Job(Some(job)) => managed_elsewhere(job).is_none() && is_finished(job),
    }
}

#[derive(Debug, thiserror::Error)]
enum ReleaseError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("removing tracking finalizer: {0}")]
    Finalizer(String),
}

struct Context {
    client: Client,
    retries: Retries,
}

/// Watches every pod; those holding the finalizer are checked against their Job.
pub async fn run(client: Client) {
    let pods = Api::<Pod>::all(client.clone());
    let context = Arc::new(Context {
        client,
        retries: Retries::default(),
    });
    Controller::new(pods, watcher::Config::default())
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "job controller: orphan pods");
            }
        })
        .await;
}

async fn reconcile(cached: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, ReleaseError> {
    if !has_tracking_finalizer(&cached) {
        return Ok(Action::await_change());
    }
    let pod = cached.as_ref();
    let namespace = pod.namespace().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &namespace);
    let job = match ownership::controller_of(&pod.metadata) {
        Some(owner) if ownership::controlled_by_kind::<Job>(&pod.metadata) => {
            let jobs = Api::<Job>::namespaced(ctx.client.clone(), &namespace);
            let job = jobs.get_opt(&owner.name).await?;
            Some(job.filter(|j| j.metadata.uid.as_deref() == Some(owner.uid.as_str())))
        }
        _ => None,
    };
    let owner = match (&job, ownership::controller_of(&pod.metadata)) {
        (Some(job), _) => Owner::Job(job.as_ref()),
        (None, Some(_)) => Owner::OtherKind,
        (None, None) => Owner::None,
    };
    if releases(pod, owner) {
        let removed = remove_finalizer(&pods, pod).await;
        removed.map_err(ReleaseError::Finalizer)?;
    }
    ctx.retries.succeeded(&key_of(pod));
    Ok(Action::await_change())
}

fn error_policy(pod: Arc<Pod>, err: &ReleaseError, ctx: Arc<Context>) -> Action {
    let key = key_of(pod.as_ref());
    tracing::info!(pod = %key, %err, "job controller: releasing an orphan pod failed");
    Action::requeue(
        ctx.retries
            .failed(&key)
            .saturating_mul(200)
            .min(std::time::Duration::from_secs(60)),
    )
}

#[cfg(test)]
mod tests;
