//! The ReplicaSet controller's loop: kube-runtime's Controller over the in-process API,
//! triggered by ReplicaSets and by pods (mapped to their controlling ReplicaSet, orphans to
//! the ReplicaSets of their namespace that select them), each reconcile a `syncReplicaSet`
//! as the [module doc](super) spells it out, in the [shared loop](crate::controllers::reconciler).
//! Reads go to the API, which is consistent, so no expectations are kept.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::batches::{self, Scale, BURST_REPLICAS, SLOW_START_INITIAL_BATCH_SIZE};
use super::{pod_control, pod_template, pods, ranking, status};
use crate::controllers::api_errors::{error_message, namespace_terminating};
use crate::controllers::events::Events;
use crate::controllers::ownership::{self, AdoptionError};
use crate::controllers::reconciler::{self, Reconciler};

/// The controller's name, in its events and as its field manager.
pub const NAME: &str = "replicaset-controller";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Adoption(#[from] AdoptionError),
    /// What `manageReplicas` failed with, already in the ReplicaFailure condition.
    #[error("{0}")]
    Manage(String),
}

/// What every reconcile shares: the client and the event recorder.
pub struct Context {
    client: Client,
    events: Events,
}

impl Context {
    pub fn new(client: Client) -> Context {
        Context {
            events: Events::new(client.clone(), NAME),
            client,
        }
    }
}

impl Reconciler for Context {
    type Object = ReplicaSet;
    type Error = ReconcileError;
    const LOG_NAME: &'static str = "replicaset controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, rs: ReplicaSet) -> Result<Action, ReconcileError> {
        sync(&rs, self).await
    }
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let sets = Api::<ReplicaSet>::all(client.clone());
    let pods = Api::<Pod>::all(client.clone());
    let controller = Controller::new(sets, watcher::Config::default());
    let cache = controller.store();
    let controller = controller.watches(pods, watcher::Config::default(), move |pod| {
        ownership::controllers_to_sync(&cache, &pod)
    });
    reconciler::run(controller, Context::new(client)).await;
}

/// `syncReplicaSet` for a fresh read of the ReplicaSet.
async fn sync(rs: &ReplicaSet, ctx: &Context) -> Result<Action, ReconcileError> {
    let Some(selector) = ownership::valid_selector(rs) else {
        return Ok(Action::await_change());
    };
    let namespace = rs.namespace().unwrap_or_default();
    let pod_api = Api::<Pod>::namespaced(ctx.client.clone(), &namespace);
    let all = pod_api.list(&ListParams::default()).await?.items;
    let all: Vec<&Pod> = all.iter().collect();
    let active = pods::filter_active(&all);
    let claimed = ownership::claim_all(rs, &selector, &active, &pod_api).await?;
    let claimed: Vec<&Pod> = claimed.iter().collect();
    let manage_error = match rs.metadata.deletion_timestamp {
        Some(_) => None,
        None => manage(rs, &claimed, &all, &pod_api, ctx).await?,
    };
    let now = Timestamp::now();
    let new_status = status::calculate_status(rs, &claimed, manage_error.as_deref(), now);
    let written = match status::status_update(rs, new_status) {
        Some(new_status) => write_status(rs, new_status, ctx).await?,
        None => rs.clone(),
    };
    if let Some(err) = manage_error {
        return Err(ReconcileError::Manage(err));
    }
    let requeue = status::availability_requeue(&written, &claimed, false, now);
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

async fn write_status(
    rs: &ReplicaSet,
    new_status: k8s_openapi::api::apps::v1::ReplicaSetStatus,
    ctx: &Context,
) -> Result<ReplicaSet, ReconcileError> {
    let namespace = rs.namespace().unwrap_or_default();
    let sets = Api::<ReplicaSet>::namespaced(ctx.client.clone(), &namespace);
    let mut updated = rs.clone();
    updated.status = Some(new_status);
    Ok(sets
        .replace_status(&rs.name_any(), &PostParams::default(), &updated)
        .await?)
}

/// `manageReplicas`: creates or deletes pods toward `spec.replicas`; the error (if any)
/// becomes the ReplicaFailure condition and a retry.
async fn manage(
    rs: &ReplicaSet,
    claimed: &[&Pod],
    all: &[&Pod],
    pod_api: &Api<Pod>,
    ctx: &Context,
) -> Result<Option<String>, ReconcileError> {
    let desired = status::desired_replicas(rs);
    match batches::scale(claimed.len(), desired, BURST_REPLICAS) {
        Scale::Create(count) => Ok(create_pods(rs, count, pod_api, ctx).await),
        Scale::Delete(count) => {
            let related = related_pods(rs, all, ctx).await?;
            let doomed = ranking::pods_to_delete(claimed, &related, count, Timestamp::now());
            Ok(delete_pods(rs, &doomed, pod_api, ctx).await)
        }
        Scale::Steady => Ok(None),
    }
}

/// Creates `count` pods in slow-start batches; the first error stops them.
async fn create_pods(
    rs: &ReplicaSet,
    count: usize,
    pod_api: &Api<Pod>,
    ctx: &Context,
) -> Option<String> {
    let pod = match pod_template::pod_for(rs) {
        Ok(pod) => pod,
        Err(err) => return Some(err.to_string()),
    };
    let create = || create_pod(rs, &pod, pod_api, ctx);
    let (_, error) = batches::slow_start_batch(count, SLOW_START_INITIAL_BATCH_SIZE, create).await;
    error
}

async fn create_pod(
    rs: &ReplicaSet,
    pod: &Pod,
    pod_api: &Api<Pod>,
    ctx: &Context,
) -> Result<(), String> {
    match pod_api.create(&PostParams::default(), pod).await {
        Ok(created) => {
            ctx.events
                .record(rs, pod_control::created(&created.name_any()))
                .await;
            Ok(())
        }
        Err(kube::Error::Api(status)) if namespace_terminating(&status) => Ok(()),
        Err(err) => {
            let message = error_message(&err);
            ctx.events
                .record(rs, pod_control::create_failed(&message))
                .await;
            Err(message)
        }
    }
}

/// Deletes the chosen pods at once; a pod already gone is no failure.
async fn delete_pods(
    rs: &ReplicaSet,
    doomed: &[&Pod],
    pod_api: &Api<Pod>,
    ctx: &Context,
) -> Option<String> {
    let deletes = doomed.iter().map(|pod| async move {
        let name = pod.name_any();
        match pod_api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                ctx.events.record(rs, pod_control::deleted(&name)).await;
                None
            }
            Err(kube::Error::Api(status)) if status.is_not_found() => None,
            Err(err) => {
                let message = error_message(&err);
                ctx.events
                    .record(rs, pod_control::delete_failed(&message))
                    .await;
                Some(pod_control::delete_error(&message))
            }
        }
    });
    futures::future::join_all(deletes)
        .await
        .into_iter()
        .flatten()
        .next()
}

/// The pods of the ReplicaSets sharing this one's controller (none without a controller),
/// which rank the pods to delete by colocation.
async fn related_pods<'a>(
    rs: &ReplicaSet,
    all: &[&'a Pod],
    ctx: &Context,
) -> Result<Vec<&'a Pod>, ReconcileError> {
    let Some(owner) = ownership::controller_of(&rs.metadata) else {
        return Ok(Vec::new());
    };
    let namespace = rs.namespace().unwrap_or_default();
    let sets = Api::<ReplicaSet>::namespaced(ctx.client.clone(), &namespace);
    let siblings: Vec<String> = sets
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|other| {
            ownership::controller_of(&other.metadata).is_some_and(|o| o.uid == owner.uid)
        })
        .filter_map(|other| other.metadata.uid)
        .collect();
    Ok(all
        .iter()
        .copied()
        .filter(|pod| {
            ownership::controller_of(&pod.metadata).is_some_and(|o| siblings.contains(&o.uid))
        })
        .collect())
}
