//! The DaemonSet controller's loop: kube-runtime's Controller over the in-process API,
//! triggered by DaemonSets, by pods (their controlling DaemonSet; orphans, the DaemonSets
//! that select them), by ControllerRevisions (likewise) and by nodes (the DaemonSets whose
//! placement on the node changed with its labels or taints); each reconcile is kube's
//! `syncDaemonSet` on a fresh read, as the [module doc](super) spells it out, in the
//! [shared loop](crate::controllers::reconciler).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use peapod_api::label_selector;
use peapod_api::selector::LabelSelector as Selector;
use peapod_apis::apps::v1::daemonset::ROLLING_UPDATE;

use super::backoff::FailedPodsBackoff;
use super::pod_sync::NodeSync;
use super::update;
use super::{placement, pods, revisions, status};
use crate::controllers::events::{Event, Events};
use crate::controllers::ownership::{self, AdoptionError};
use crate::controllers::reconciler::{self, Reconciler};

/// The controller's name, in its events and as its field manager.
pub const NAME: &str = "daemonset-controller";
/// `SelectingAllReason`.
pub const SELECTING_ALL: &str = "SelectingAll";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Adoption(#[from] AdoptionError),
    #[error("failed to construct revisions of DaemonSet: {0}")]
    History(String),
    #[error(transparent)]
    Bounds(#[from] update::BoundsError),
    /// The creates and deletes that failed, as kube's aggregate error reads.
    #[error("{0}")]
    Sync(String),
}

/// What every reconcile shares: the client, the event recorder and the failed-pod backoff of
/// each node.
pub struct Context {
    pub(super) client: Client,
    pub(super) events: Events,
    failed_pods: FailedPodsBackoff,
}

impl Context {
    pub fn new(client: Client) -> Context {
        Context {
            events: Events::new(client.clone(), NAME),
            client,
            failed_pods: FailedPodsBackoff::default(),
        }
    }
}

impl Reconciler for Context {
    type Object = DaemonSet;
    type Error = ReconcileError;
    const LOG_NAME: &'static str = "daemonset controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, ds: DaemonSet) -> Result<Action, ReconcileError> {
        sync(&ds, self).await
    }
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let controller = Controller::new(Api::<DaemonSet>::all(client.clone()), Default::default());
    let (pod_cache, revision_cache, node_cache) =
        (controller.store(), controller.store(), controller.store());
    let seen_nodes = SeenNodes::default();
    let controller = controller
        .watches(
            Api::<Pod>::all(client.clone()),
            Default::default(),
            move |pod| ownership::controllers_to_sync(&pod_cache, &pod),
        )
        .watches(
            Api::<ControllerRevision>::all(client.clone()),
            Default::default(),
            move |revision| ownership::controllers_to_sync(&revision_cache, &revision),
        )
        .watches(
            Api::<Node>::all(client.clone()),
            Default::default(),
            move |node: Node| seen_nodes.daemon_sets_for(&node_cache, node),
        );
    reconciler::run(controller, Context::new(client)).await;
}

/// The nodes as last seen, to tell which DaemonSets a node's change concerns (kube's
/// `addNode` and `updateNode`): a new node, the DaemonSets that should run on it; a changed
/// one, those whose placement there changed; labels and taints unchanged (a status
/// heartbeat), none.
#[derive(Default)]
struct SeenNodes(Mutex<HashMap<String, Node>>);

impl SeenNodes {
    fn daemon_sets_for(&self, cache: &Store<DaemonSet>, node: Node) -> Vec<ObjectRef<DaemonSet>> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let old = seen.insert(name, node.clone());
        let placement_fields = |n: &Node| {
            let taints = n.spec.as_ref().and_then(|s| s.taints.clone());
            (n.metadata.labels.clone(), taints)
        };
        if old
            .as_ref()
            .is_some_and(|old| placement_fields(old) == placement_fields(&node))
        {
            return Vec::new();
        }
        let concerned = |ds: &DaemonSet| match &old {
            None => placement::node_should_run(&node, ds).should_run,
            Some(old) => {
                placement::node_should_run(old, ds) != placement::node_should_run(&node, ds)
            }
        };
        cache
            .state()
            .iter()
            .filter(|ds| concerned(ds))
            .map(|ds| ObjectRef::from_obj(ds.as_ref()))
            .collect()
    }
}

/// `syncDaemonSet` for a fresh read of the DaemonSet.
async fn sync(ds: &DaemonSet, ctx: &Context) -> Result<Action, ReconcileError> {
    let Some(selector) = ownership::valid_selector(ds) else {
        return Ok(Action::await_change());
    };
    let given = ds.spec.as_ref().map(|s| &s.selector);
    if given.is_some_and(label_selector::is_empty) {
        let message = "This daemon set is selecting all pods. A non-empty selector is required.";
        ctx.events
            .record(ds, Event::warning(SELECTING_ALL, message.to_owned()))
            .await;
        return Ok(Action::await_change());
    }
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let nodes = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let (current, old) = revisions::construct_history(ds, &selector, ctx).await?;
    let hash = current
        .labels()
        .get(super::history::REVISION_HASH_LABEL)
        .cloned()
        .unwrap_or_default();
    let sync = NodeSync {
        ds,
        hash: &hash,
        ctx,
    };
    let updated = update_daemon_set(&sync, &selector, &nodes, &old).await;
    let claimed = claim_pods(ds, &selector, ctx).await?;
    let claimed: Vec<&Pod> = claimed.iter().collect();
    let by_node = pods::nodes_to_daemon_pods(&claimed, false);
    let counts = status::counts(ds, &nodes, &by_node, &hash, Timestamp::now());
    if let Some(new_status) = status::status_update(ds, counts, true) {
        write_status(ds, new_status, ctx).await?;
    }
    let retry_after = updated?;
    let availability = status::availability_requeue(ds, &claimed, counts, Timestamp::now());
    let requeue = [retry_after, availability].into_iter().flatten().min();
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// `updateDaemonSet`: manage, then (once manage has nothing left to do, as kube's
/// expectations would have it) the rolling update, then the history cleanup; answers when
/// to come back for a failed pod held by its backoff.
async fn update_daemon_set(
    sync: &NodeSync<'_>,
    selector: &Selector,
    nodes: &[Node],
    old: &[ControllerRevision],
) -> Result<Option<Duration>, ReconcileError> {
    let (ds, ctx) = (sync.ds, sync.ctx);
    ctx.failed_pods.gc(Instant::now());
    let claimed = claim_pods(ds, selector, ctx).await?;
    let claimed: Vec<&Pod> = claimed.iter().collect();
    let by_node = pods::nodes_to_daemon_pods(&claimed, false);
    let managed = manage(sync, nodes, &by_node).await?;
    let strategy = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    let rolling = strategy.and_then(|s| s.type_.as_deref()) == Some(ROLLING_UPDATE);
    if !managed.acted && rolling {
        rolling_update(sync, nodes, by_node).await?;
    }
    let with_terminal = pods::nodes_to_daemon_pods(&claimed, true);
    revisions::cleanup_history(ds, old, &with_terminal, ctx).await?;
    Ok(managed.retry_after)
}

/// What `manage` did: whether it sent creates or deletes, and when a backoff ends.
struct Managed {
    acted: bool,
    retry_after: Option<Duration>,
}

/// `manage`: a pod for each node that needs one, none where none belongs.
async fn manage(
    sync: &NodeSync<'_>,
    nodes: &[Node],
    by_node: &std::collections::BTreeMap<String, Vec<&Pod>>,
) -> Result<Managed, ReconcileError> {
    let (ds, ctx) = (sync.ds, sync.ctx);
    let (mut create_on, mut delete) = (Vec::new(), Vec::new());
    let mut retry_after: Option<Duration> = None;
    let (instant, now) = (Instant::now(), Timestamp::now());
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let on_node = by_node.get(&name).map(Vec::as_slice).unwrap_or_default();
        let placement = placement::node_should_run(node, ds);
        let failed = (&ctx.failed_pods, instant);
        let work =
            pods::pods_should_be_on_node(node, placement, on_node, ds, sync.hash, failed, now);
        for event in work.events {
            ctx.events.record(ds, event).await;
        }
        if work.needs_pod {
            create_on.push(name);
        }
        delete.extend(work.to_delete);
        retry_after = [retry_after, work.retry_after].into_iter().flatten().min();
    }
    delete.extend(pods::unscheduled_pods_without_node(nodes, by_node));
    let acted = !create_on.is_empty() || !delete.is_empty();
    sync.sync_nodes(&delete, &create_on).await?;
    Ok(Managed { acted, retry_after })
}

/// `rollingUpdate`: every node that should run the daemon counts, with or without a pod.
async fn rolling_update(
    sync: &NodeSync<'_>,
    nodes: &[Node],
    mut by_node: std::collections::BTreeMap<String, Vec<&Pod>>,
) -> Result<(), ReconcileError> {
    let ds = sync.ds;
    let should_run = |name: &str| {
        let node = nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name));
        node.is_some_and(|n| placement::node_should_run(n, ds).should_run)
    };
    let mut desired = 0;
    for node in nodes
        .iter()
        .filter(|n| placement::node_should_run(n, ds).should_run)
    {
        desired += 1;
        by_node
            .entry(node.metadata.name.clone().unwrap_or_default())
            .or_default();
    }
    let bounds = update::bounds(ds, desired)?;
    let step = update::rolling_update(
        ds,
        &by_node,
        sync.hash,
        bounds,
        &should_run,
        Timestamp::now(),
    );
    sync.sync_nodes(&step.delete, &step.create_on).await
}

/// `getDaemonPods`: the namespace's pods the DaemonSet owns or adopts.
async fn claim_pods(
    ds: &DaemonSet,
    selector: &Selector,
    ctx: &Context,
) -> Result<Vec<Pod>, ReconcileError> {
    let namespace = ds.namespace().unwrap_or_default();
    let pod_api = Api::<Pod>::namespaced(ctx.client.clone(), &namespace);
    let all = pod_api.list(&ListParams::default()).await?.items;
    let all: Vec<&Pod> = all.iter().collect();
    Ok(ownership::claim_all(ds, selector, &all, &pod_api).await?)
}

async fn write_status(
    ds: &DaemonSet,
    new_status: DaemonSetStatus,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let namespace = ds.namespace().unwrap_or_default();
    let sets = Api::<DaemonSet>::namespaced(ctx.client.clone(), &namespace);
    let mut updated = ds.clone();
    updated.status = Some(new_status);
    sets.replace_status(&ds.name_any(), &PostParams::default(), &updated)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use kube::runtime::{reflector, watcher};
    use serde_json::json;

    use super::*;

    fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).expect("a valid object")
    }

    #[test]
    fn nodes_trigger_the_daemon_sets_whose_placement_changed() {
        let (cache, mut writer) = reflector::store::<DaemonSet>();
        for (name, selector) in [("everywhere", json!({})), ("ssd", json!({"disk": "ssd"}))] {
            writer.apply_watcher_event(&watcher::Event::Apply(object(json!({
                "metadata": {"namespace": "team", "name": name},
                "spec": {"selector": {"matchLabels": {"app": name}},
                         "template": {"spec": {"nodeSelector": selector, "containers": []}}},
            }))));
        }
        let seen = SeenNodes::default();
        let names = |node: serde_json::Value| -> Vec<String> {
            let node: Node = object(node);
            let mut names: Vec<String> = seen
                .daemon_sets_for(&cache, node)
                .iter()
                .map(|r| r.name.clone())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(json!({"metadata": {"name": "n1"}})), ["everywhere"]);
        let heartbeat = json!({"metadata": {"name": "n1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(names(heartbeat).is_empty());
        assert_eq!(
            names(json!({"metadata": {"name": "n1", "labels": {"disk": "ssd"}}})),
            ["ssd"]
        );
        let tainted = json!({"metadata": {"name": "n1", "labels": {"disk": "ssd"}},
                             "spec": {"taints": [{"key": "k", "effect": "NoExecute"}]}});
        assert_eq!(names(tainted), ["everywhere", "ssd"]);
    }
}
