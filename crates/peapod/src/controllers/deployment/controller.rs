//! The Deployment controller's loop: kube-runtime's Controller over the in-process API,
//! triggered by Deployments, by ReplicaSets (their controlling Deployment, orphans to the
//! Deployments that select them) and by the pods of Recreate Deployments (which wait for old
//! pods to be gone); each reconcile is kube's `syncDeployment` on a fresh read.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use peapod_api::label_selector::as_selector;
use peapod_api::selector::LabelSelector as Selector;

use super::rollback::rollback_to;
use super::rollout::{ReconcileError, Rollout};
use crate::controllers::events::{Event, Events};
use crate::controllers::ownership;
use crate::controllers::retries::{key_of, Retries};

/// The controller's name, in its events and as its field manager.
pub const NAME: &str = "deployment-controller";

/// What every reconcile shares: the client, the event recorder, and each Deployment's
/// consecutive failures (for the backoff).
pub struct Context {
    pub(super) client: Client,
    pub(super) events: Events,
    retries: Retries,
}

impl Context {
    pub fn new(client: Client) -> Context {
        Context {
            events: Events::new(client.clone(), NAME),
            client,
            retries: Retries::default(),
        }
    }
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let deployments = Api::<Deployment>::all(client.clone());
    let sets = Api::<ReplicaSet>::all(client.clone());
    let pods = Api::<Pod>::all(client.clone());
    let (set_cache, set_writer) = reflector::store();
    let set_reflector = reflector::reflector(set_writer, watcher(sets.clone(), Default::default()))
        .touched_objects()
        .for_each(|_| futures::future::ready(()));
    let controller = Controller::new(deployments, watcher::Config::default());
    let cache = controller.store();
    let pod_cache = cache.clone();
    let loop_ = controller
        .watches(sets, watcher::Config::default(), move |rs| {
            deployments_of_set(&cache, &rs)
        })
        .watches(pods, watcher::Config::default(), move |pod| {
            recreate_deployment_of_pod(&pod_cache, &set_cache, &pod)
        })
        .run(reconcile, error_policy, Arc::new(Context::new(client)))
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "deployment controller");
            }
        });
    tokio::join!(set_reflector, loop_);
}

/// The Deployments a ReplicaSet's change concerns: its controller if a Deployment; for an
/// orphan, those of its namespace whose selector matches it (to adopt it).
fn deployments_of_set(cache: &Store<Deployment>, rs: &ReplicaSet) -> Vec<ObjectRef<Deployment>> {
    let namespace = rs.metadata.namespace.as_deref().unwrap_or_default();
    if let Some(owner) = ownership::controller_of(&rs.metadata) {
        return match ownership::controlled_by_kind::<Deployment>(&rs.metadata) {
            true => vec![ObjectRef::new(&owner.name).within(namespace)],
            false => Vec::new(),
        };
    }
    if rs.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let labels = rs.metadata.labels.clone().unwrap_or_default();
    cache
        .state()
        .iter()
        .filter(|d| d.metadata.namespace.as_deref() == Some(namespace))
        .filter(|d| selector_of(d).is_ok_and(|s| !s.is_empty() && s.matches(&labels)))
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

/// The Recreate Deployment whose ReplicaSet controls `pod`: such a Deployment waits for its
/// old pods to be gone, which no ReplicaSet change announces.
fn recreate_deployment_of_pod(
    deployments: &Store<Deployment>,
    sets: &Store<ReplicaSet>,
    pod: &Pod,
) -> Option<ObjectRef<Deployment>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let owner = ownership::controller_of(&pod.metadata)?;
    if !ownership::controlled_by_kind::<ReplicaSet>(&pod.metadata) {
        return None;
    }
    let rs = sets.get(&ObjectRef::new(&owner.name).within(namespace))?;
    let deployment_owner = ownership::controller_of(&rs.metadata)?;
    if !ownership::controlled_by_kind::<Deployment>(&rs.metadata) {
        return None;
    }
    let reference = ObjectRef::new(&deployment_owner.name).within(namespace);
    let deployment = deployments.get(&reference)?;
    let strategy = deployment.spec.as_ref().and_then(|s| s.strategy.as_ref());
    let recreate = strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate");
    recreate.then_some(reference)
}

pub(super) fn selector_of(d: &Deployment) -> Result<Selector, String> {
    let selector = d
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    as_selector(&selector).map_err(|err| err.to_string())
}

async fn reconcile(cached: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = cached.namespace().unwrap_or_default();
    let deployments = Api::<Deployment>::namespaced(ctx.client.clone(), &namespace);
    let key = key_of(cached.as_ref());
    let Some(d) = deployments.get_opt(&cached.name_any()).await? else {
        ctx.retries.succeeded(&key);
        return Ok(Action::await_change());
    };
    let requeue = sync_deployment(d, &ctx).await?;
    ctx.retries.succeeded(&key);
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

fn error_policy(d: Arc<Deployment>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let key = key_of(d.as_ref());
    tracing::info!(deployment = %key, %err, "deployment controller: sync failed");
    Action::requeue(ctx.retries.failed(&key))
}

/// `syncDeployment`: what to do, in kube's order of precedence — a selector selecting
/// everything, a deletion, a pause, a deprecated rollback, a scaling event, then the
/// strategy's rollout.
async fn sync_deployment(
    d: Deployment,
    ctx: &Context,
) -> Result<Option<std::time::Duration>, ReconcileError> {
    let selector = match selector_of(&d) {
        Ok(selector) if !selector.is_empty() => selector,
        Ok(_) => return selecting_all(d, ctx).await,
        Err(err) => {
            tracing::warn!(deployment = %key_of(&d), %err, "invalid selector; not retried");
            return Ok(None);
        }
    };
    let mut rollout = Rollout::new(d, ctx);
    let sets = rollout.claim_replica_sets(&selector).await?;
    if rollout.deployment().metadata.deletion_timestamp.is_some() {
        return rollout.sync_status_only(&sets).await;
    }
    rollout.check_paused_conditions().await?;
    if rollout.paused() {
        return rollout.sync(&sets).await;
    }
    if let Some(to) = rollback_to(rollout.deployment()) {
        return rollout.rollback(&sets, to).await;
    }
    if rollout.is_scaling_event(&sets).await? {
        return rollout.sync(&sets).await;
    }
    match rollout.strategy() {
        "Recreate" => {
            let pods = pods_of(rollout.deployment(), &selector, &sets, ctx).await?;
            rollout.rollout_recreate(&sets, &pods).await
        }
        _ => rollout.rollout_rolling(&sets).await,
    }
}

/// A Deployment whose selector is empty selects every pod: kube refuses to act on it and
/// says so, only recording that it saw this generation.
async fn selecting_all(
    mut d: Deployment,
    ctx: &Context,
) -> Result<Option<std::time::Duration>, ReconcileError> {
    let message = "This deployment is selecting all pods. A non-empty selector is required.";
    let event = Event::warning("SelectingAll", message.to_owned());
    ctx.events.record(&d, event).await;
    let generation = d.metadata.generation.unwrap_or_default();
    let status = d.status.get_or_insert_with(Default::default);
    if status.observed_generation.unwrap_or_default() < generation {
        status.observed_generation = Some(generation);
        let namespace = d.namespace().unwrap_or_default();
        let deployments = Api::<Deployment>::namespaced(ctx.client.clone(), &namespace);
        deployments
            .replace_status(&d.name_any(), &Default::default(), &d)
            .await?;
    }
    Ok(None)
}

/// `getPodMapForDeployment`: the pods the Deployment's selector covers, kept only when
/// controlled by one of its ReplicaSets.
async fn pods_of(
    d: &Deployment,
    selector: &Selector,
    sets: &[ReplicaSet],
    ctx: &Context,
) -> Result<Vec<Pod>, ReconcileError> {
    let namespace = d.namespace().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &namespace);
    let listed = pods.list(&ListParams::default()).await?.items;
    let uids: Vec<&str> = sets
        .iter()
        .filter_map(|rs| rs.metadata.uid.as_deref())
        .collect();
    Ok(listed
        .into_iter()
        .filter(|pod| selector.matches(pod.metadata.labels.as_ref().unwrap_or(&Default::default())))
        .filter(|pod| {
            ownership::controller_of(&pod.metadata).is_some_and(|o| uids.contains(&o.uid.as_str()))
        })
        .collect())
}
