//! The Deployment controller's loop: kube-runtime's Controller over the in-process API,
//! triggered by Deployments, by ReplicaSets (their controlling Deployment, orphans to the
//! Deployments that select them) and by the pods of Recreate Deployments (which wait for old
//! pods to be gone); each reconcile is kube's `syncDeployment` on a fresh read, in the
//! [shared loop](crate::controllers::reconciler).

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use peapod_api::selector::LabelSelector as Selector;

use super::rollback::rollback_to;
use super::rollout::{ReconcileError, Rollout};
use crate::controllers::events::{Event, Events};
use crate::controllers::ownership;
use crate::controllers::reconciler::{self, Reconciler};

/// The controller's name, in its events and as its field manager.
pub const NAME: &str = "deployment-controller";

/// What every reconcile shares: the client and the event recorder.
pub struct Context {
    pub(super) client: Client,
    pub(super) events: Events,
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
    type Object = Deployment;
    type Error = ReconcileError;
    const LOG_NAME: &'static str = "deployment controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, d: Deployment) -> Result<Action, ReconcileError> {
        let requeue = sync_deployment(d, self).await?;
        Ok(requeue.map_or_else(Action::await_change, Action::requeue))
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
    let controller = controller
        .watches(sets, watcher::Config::default(), move |rs| {
            ownership::controllers_to_sync(&cache, &rs)
        })
        .watches(pods, watcher::Config::default(), move |pod| {
            recreate_deployment_of_pod(&pod_cache, &set_cache, &pod)
        });
    tokio::join!(
        set_reflector,
        reconciler::run(controller, Context::new(client))
    );
}

/// The Recreate Deployment whose ReplicaSet controls `pod`: such a Deployment waits for its
/// old pods to be gone, which no ReplicaSet change announces.
fn recreate_deployment_of_pod(
    deployments: &Store<Deployment>,
    sets: &Store<ReplicaSet>,
    pod: &Pod,
) -> Option<ObjectRef<Deployment>> {
    let set = ownership::controller_ref_of::<ReplicaSet>(&pod.metadata)?;
    let rs = sets.get(&set)?;
    let reference = ownership::controller_ref_of::<Deployment>(&rs.metadata)?;
    let deployment = deployments.get(&reference)?;
    let strategy = deployment.spec.as_ref().and_then(|s| s.strategy.as_ref());
    let recreate = strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate");
    recreate.then_some(reference)
}

/// `syncDeployment`: what to do, in kube's order of precedence — a selector selecting
/// everything, a deletion, a pause, a deprecated rollback, a scaling event, then the
/// strategy's rollout.
async fn sync_deployment(
    d: Deployment,
    ctx: &Context,
) -> Result<Option<std::time::Duration>, ReconcileError> {
    let Some(selector) = ownership::valid_selector(&d) else {
        return Ok(None);
    };
    if selector.is_empty() {
        return selecting_all(d, ctx).await;
    }
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
