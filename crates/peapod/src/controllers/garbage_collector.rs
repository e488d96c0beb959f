//! The garbage collector, as kube-controller-manager's `garbagecollector` runs it: it watches
//! every stored kind (events excepted), keeps an owner graph (uid → dependents, in [`graph`])
//! and works through the API server in-process:
//!
//! - an object whose owners are all gone (no object of that kind, name and uid where the
//!   dependent may see it: same namespace, or cluster-scoped) is deleted, its own dependents
//!   following the policy its finalizers name, else Background;
//! - an owner deleted in the foreground (`foregroundDeletion`) has its dependents deleted,
//!   and loses the finalizer once no dependent with `blockOwnerDeletion: true` is left;
//! - an owner deleted with the `orphan` finalizer has its references stripped from every
//!   dependent, then loses the finalizer.
//!
//! Decisions are taken on live objects (a GET of the item and of each owner), deletes carry
//! uid and resourceVersion preconditions, and finalizers and references go with JSON merge
//! patches carrying the object's resourceVersion, retried on conflict. A dependent naming a
//! namespaced owner of another namespace gets an `OwnerRefInvalidNamespace` warning event and
//! that owner counts as absent; a cluster-scoped object naming a namespaced owner is left
//! alone, as kube does.

mod graph;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::registry::{Backend, Kind, Registry};
use peapod_apiserver::status::ApiError;
use peapod_store::{Store, StoreError, WatchEvent, WatchEventType, WatchStream};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use graph::{
    collect_policy, group_of, owner_references, verdict, Graph, Identity, Node, OwnerState, Task,
    Verdict, FOREGROUND, ORPHAN,
};

/// Delay before a failed task is tried again, doubled per failure up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Delay before listing a kind again after its watch failed.
const RELIST: Duration = Duration::from_secs(1);
/// Attempts of one read-modify-patch before a conflict is given up (for a later retry).
const CONFLICT_ATTEMPTS: usize = 5;
/// The component its events name, as kube-controller-manager's.
const COMPONENT: &str = "garbage-collector-controller";

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("{action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: ApiError,
    },
    #[error("watching {resource}: {source}")]
    Store {
        resource: String,
        #[source]
        source: StoreError,
    },
    #[error("listing {resource}: {message}")]
    Blocking { resource: String, message: String },
    #[error("{action} {object}: still conflicting after {CONFLICT_ATTEMPTS} attempts")]
    Conflict {
        action: &'static str,
        object: String,
    },
}

/// Collects orphans and drives foreground and orphan deletions.
#[derive(Clone)]
pub struct GarbageCollector {
    inner: Arc<Inner>,
}

struct Inner {
    client: LocalClient,
    store: Store,
    kinds: Kinds,
    graph: Mutex<Graph>,
    queue: Mutex<Queue>,
    wake: Notify,
}

impl GarbageCollector {
    pub fn new(client: LocalClient, registry: Arc<Registry>, store: Store) -> GarbageCollector {
        GarbageCollector {
            inner: Arc::new(Inner {
                client,
                store,
                kinds: Kinds::new(&registry),
                graph: Mutex::default(),
                queue: Mutex::default(),
                wake: Notify::new(),
            }),
        }
    }

    /// Lists every kind, then follows their changes and works the queue until dropped.
    pub async fn run(self) {
        let streams = loop {
            match self.sync().await {
                Ok(streams) => break streams,
                Err(err) => tracing::warn!(%err, "garbage collector: listing objects"),
            }
            tokio::time::sleep(RELIST).await;
        };
        // Dropping the set (when `run` is aborted) stops the followers.
        let mut followers = tokio::task::JoinSet::new();
        for (kind, stream) in streams {
            followers.spawn(self.clone().follow(kind, stream));
        }
        tracing::info!("garbage collector synced");
        self.work().await;
    }

    /// The whole graph before any work (kube's GC waits for its monitors to sync, so that
    /// no owner is orphaned with dependents it has not seen).
    async fn sync(&self) -> Result<Vec<(Arc<Kind>, WatchStream)>, GcError> {
        let mut streams = Vec::new();
        for kind in &self.inner.kinds.watched {
            let (items, stream) = list_watch(&self.inner.store, kind).await?;
            self.reconcile(kind, &items);
            streams.push((kind.clone(), stream));
        }
        Ok(streams)
    }

    /// Applies one kind's changes to the graph; lists again when its watch ends.
    async fn follow(self, kind: Arc<Kind>, mut stream: WatchStream) {
        loop {
            while let Some(Ok(event)) = stream.next().await {
                self.apply(&kind, &event);
            }
            stream = loop {
                tokio::time::sleep(RELIST).await;
                match list_watch(&self.inner.store, &kind).await {
                    Ok((items, stream)) => {
                        self.reconcile(&kind, &items);
                        break stream;
                    }
                    Err(err) => tracing::warn!(%err, "garbage collector"),
                }
            };
        }
    }

    fn apply(&self, kind: &Kind, event: &WatchEvent) {
        let Some(node) = Node::of(identity(kind, &event.object), &event.object) else {
            return;
        };
        let tasks = match event.kind {
            WatchEventType::Deleted => self.graph().remove(&node),
            WatchEventType::Added | WatchEventType::Modified => self.graph().upsert(node),
            WatchEventType::Bookmark => Vec::new(),
        };
        self.enqueue(tasks);
    }

    /// Makes the graph's objects of `kind` those of a fresh list.
    fn reconcile(&self, kind: &Kind, items: &[Value]) {
        let nodes: Vec<Node> = items
            .iter()
            .filter_map(|item| Node::of(identity(kind, item), item))
            .collect();
        let listed: HashSet<&str> = nodes.iter().map(|n| n.id.uid.as_str()).collect();
        let mut tasks = Vec::new();
        let mut graph = self.graph();
        for uid in graph.uids_of_kind(&kind.gvk.group, &kind.gvk.kind) {
            if !listed.contains(uid.as_str()) {
                if let Some(gone) = graph.node(&uid).cloned() {
                    tasks.extend(graph.remove(&gone));
                }
            }
        }
        for node in nodes {
            tasks.extend(graph.upsert(node));
        }
        drop(graph);
        self.enqueue(tasks);
    }

    fn graph(&self) -> MutexGuard<'_, Graph> {
        self.inner.graph.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enqueue(&self, tasks: impl IntoIterator<Item = Task>) {
        let mut queue = self.queue();
        let mut added = false;
        for task in tasks {
            added |= queue.push(task);
        }
        drop(queue);
        if added {
            self.inner.wake.notify_one();
        }
    }

    /// The worker: one task at a time, failures retried with a growing delay.
    async fn work(&self) {
        loop {
            let next = self.queue().pop(Instant::now());
            let task = match next {
                Ok(task) => task,
                Err(Some(at)) => {
                    let _ = tokio::time::timeout_at(at, self.inner.wake.notified()).await;
                    continue;
                }
                Err(None) => {
                    self.inner.wake.notified().await;
                    continue;
                }
            };
            let result = self.process(&task).await;
            let mut queue = self.queue();
            match result {
                Ok(()) => queue.succeeded(&task),
                Err(err) => {
                    tracing::warn!(%err, "garbage collector");
                    queue.failed(task, Instant::now());
                }
            }
        }
    }

    async fn process(&self, task: &Task) -> Result<(), GcError> {
        match task {
            Task::Delete(uid) => self.attempt_to_delete(uid).await,
            Task::Orphan(uid) => self.attempt_to_orphan(uid).await,
            Task::InvalidNamespace { dependent, owner } => {
                self.report_invalid_namespace(dependent, owner).await;
                Ok(())
            }
        }
    }

    /// kube's `attemptToDeleteItem`: collects the object when none of its owners is left.
    async fn attempt_to_delete(&self, uid: &str) -> Result<(), GcError> {
        let Some(node) = self.graph().node(uid).cloned() else {
            return Ok(());
        };
        if node.deleting_dependents() {
            return self.finish_foreground(&node).await;
        }
        if node.deleting {
            // Being deleted is a one-way trip: its dependents are handled once it is gone.
            return Ok(());
        }
        let Some(latest) = self.live(&node.id).await? else {
            return Ok(());
        };
        let owners = owner_references(&latest);
        if owners.is_empty() {
            return Ok(());
        }
        let mut states = Vec::new();
        for owner in &owners {
            let Some(state) = self.owner_state(&node.id, owner).await? else {
                return Ok(());
            };
            states.push((owner.clone(), state));
        }
        let has_dependents = !self.graph().dependents(uid).is_empty();
        match verdict(&states, has_dependents) {
            Verdict::Keep => Ok(()),
            Verdict::Strip(uids) => self.strip_owner_references(&node.id, &uids).await,
            Verdict::DeleteForeground => {
                if self
                    .graph()
                    .dependents(uid)
                    .iter()
                    .any(|d| d.deleting_dependents())
                {
                    // kube's cycle guard: it may no longer block its waiting owners.
                    self.unblock_owners(&node.id).await?;
                }
                self.delete(&node.id, &latest, "Foreground").await
            }
            Verdict::Collect => {
                let policy = collect_policy(&graph::finalizers(&latest));
                self.delete(&node.id, &latest, policy).await
            }
        }
    }

    /// kube's `processDeletingDependentsItem`: the owner loses `foregroundDeletion` once no
    /// blocking dependent is left; until then they are deleted.
    async fn finish_foreground(&self, owner: &Node) -> Result<(), GcError> {
        let waiting: Option<Vec<Task>> = {
            let graph = self.graph();
            let blocking = graph.blocking_dependents(&owner.id.uid);
            (!blocking.is_empty()).then(|| {
                let left = blocking.iter().filter(|d| !d.deleting_dependents());
                left.map(|d| Task::Delete(d.id.uid.clone())).collect()
            })
        };
        match waiting {
            None => self.remove_finalizer(&owner.id, FOREGROUND).await,
            Some(tasks) => {
                self.enqueue(tasks);
                Ok(())
            }
        }
    }

    /// kube's `attemptToOrphanWorker`: strips the owner from its dependents' references, then
    /// drops its `orphan` finalizer.
    async fn attempt_to_orphan(&self, uid: &str) -> Result<(), GcError> {
        let dependents: Vec<Identity> = self
            .graph()
            .dependents(uid)
            .iter()
            .map(|dependent| dependent.id.clone())
            .collect();
        let mut failed = None;
        for dependent in &dependents {
            let owner = [uid.to_owned()];
            if let Err(err) = self.strip_owner_references(dependent, &owner).await {
                failed = Some(err);
            }
        }
        if let Some(err) = failed {
            return Err(err);
        }
        let owner = self.graph().node(uid).cloned();
        match owner {
            Some(owner) if owner.orphaning() => self.remove_finalizer(&owner.id, ORPHAN).await,
            _ => Ok(()),
        }
    }

    /// The state of `reference`'s owner as `item` sees it; `None` when it cannot be resolved
    /// (an unknown kind, or a namespaced owner of a cluster-scoped item).
    async fn owner_state(
        &self,
        item: &Identity,
        reference: &OwnerReference,
    ) -> Result<Option<OwnerState>, GcError> {
        let Some(kind) = self
            .inner
            .kinds
            .resolve(&reference.api_version, &reference.kind)
        else {
            tracing::debug!(%item, kind = %reference.kind, "owner of a kind not served");
            return Ok(None);
        };
        if item.namespace.is_empty() && kind.namespaced {
            tracing::debug!(%item, "a cluster-scoped object cannot refer to namespaced owners");
            return Ok(None);
        }
        let path = kind.path(Some(&item.namespace), Some(&reference.name));
        let owner = match self.inner.client.get(&path).await {
            Ok(owner) => owner,
            Err(err) if err.reason == "NotFound" => return Ok(Some(OwnerState::Dangling)),
            Err(source) => return Err(api_error("getting the owner of", item, source)),
        };
        let uid = owner.pointer("/metadata/uid").and_then(Value::as_str);
        if uid != Some(reference.uid.as_str()) {
            return Ok(Some(OwnerState::Dangling));
        }
        let deleting = owner.pointer("/metadata/deletionTimestamp").is_some();
        let foreground = graph::finalizers(&owner).iter().any(|f| f == FOREGROUND);
        Ok(Some(if deleting && foreground {
            OwnerState::Waiting
        } else {
            OwnerState::Solid
        }))
    }

    /// The live object `id` names, `None` once gone (or replaced by one with another uid).
    async fn live(&self, id: &Identity) -> Result<Option<Value>, GcError> {
        match self.inner.client.get(&id.path).await {
            Ok(object) if object.pointer("/metadata/uid") == Some(&json!(id.uid)) => {
                Ok(Some(object))
            }
            Ok(_) => Ok(None),
            Err(err) if err.reason == "NotFound" => Ok(None),
            Err(source) => Err(api_error("getting", id, source)),
        }
    }

    /// kube's `deleteObject`: uid and resourceVersion preconditions; on a conflict where the
    /// ownerReferences did not change, once more with the uid alone.
    async fn delete(&self, id: &Identity, latest: &Value, policy: &str) -> Result<(), GcError> {
        tracing::info!(object = %id, policy, "garbage collector: deleting");
        let rv = latest.pointer("/metadata/resourceVersion").cloned();
        let options = |rv: Option<Value>| {
            let mut preconditions = json!({"uid": id.uid});
            if let Some(rv) = rv {
                preconditions["resourceVersion"] = rv;
            }
            json!({"propagationPolicy": policy, "preconditions": preconditions})
        };
        let client = &self.inner.client;
        let err = match client.delete(&id.path, options(rv)).await {
            Ok(_) => return Ok(()),
            Err(err) if err.reason == "NotFound" => return Ok(()),
            Err(err) if err.reason != "Conflict" => return Err(api_error("deleting", id, err)),
            Err(err) => err,
        };
        let live = self.live(id).await?;
        let Some(live) = live else {
            return Ok(());
        };
        if owner_references(&live) != owner_references(latest) {
            return Err(api_error("deleting", id, err));
        }
        match client.delete(&id.path, options(None)).await {
            Ok(_) => Ok(()),
            Err(err) if err.reason == "NotFound" => Ok(()),
            Err(err) => Err(api_error("deleting", id, err)),
        }
    }

    async fn remove_finalizer(&self, id: &Identity, finalizer: &str) -> Result<(), GcError> {
        tracing::info!(object = %id, finalizer, "garbage collector: removing finalizer");
        self.patch_live(id, "removing a finalizer of", |object| {
            let finalizers = graph::finalizers(object);
            if !finalizers.iter().any(|f| f == finalizer) {
                return None;
            }
            let left: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
            let left = if left.is_empty() {
                Value::Null
            } else {
                json!(left)
            };
            Some(json!({"metadata": {"finalizers": left}}))
        })
        .await
    }

    /// Drops the references to `owners` from `id` (kube's `deleteOwnerRefJSONMergePatch`).
    async fn strip_owner_references(
        &self,
        id: &Identity,
        owners: &[String],
    ) -> Result<(), GcError> {
        self.patch_live(id, "removing ownerReferences of", |object| {
            let refs = raw_owner_references(object);
            let keep = |r: &&Value| !owners.iter().any(|uid| r["uid"] == json!(uid));
            let left: Vec<&Value> = refs.iter().filter(keep).collect();
            if left.len() == refs.len() {
                return None;
            }
            let left = if left.is_empty() {
                Value::Null
            } else {
                json!(left)
            };
            Some(json!({"metadata": {"ownerReferences": left, "uid": id.uid}}))
        })
        .await
    }

    /// Sets `blockOwnerDeletion: false` on every reference of `id` (kube's
    /// `unblockOwnerReferencesJSONMergePatch`).
    async fn unblock_owners(&self, id: &Identity) -> Result<(), GcError> {
        self.patch_live(id, "unblocking the owners of", |object| {
            let mut refs = raw_owner_references(object);
            let blocking = |r: &Value| r["blockOwnerDeletion"] == json!(true);
            if !refs.iter().any(blocking) {
                return None;
            }
            for reference in refs.iter_mut().filter(|r| blocking(r)) {
                reference["blockOwnerDeletion"] = json!(false);
            }
            Some(json!({"metadata": {"ownerReferences": refs, "uid": id.uid}}))
        })
        .await
    }

    /// Read, build a merge patch (`None`: nothing to do), send it with the object's
    /// resourceVersion as a precondition; again on conflict.
    async fn patch_live(
        &self,
        id: &Identity,
        action: &'static str,
        patch_of: impl Fn(&Value) -> Option<Value>,
    ) -> Result<(), GcError> {
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(object) = self.live(id).await? else {
                return Ok(());
            };
            let Some(mut patch) = patch_of(&object) else {
                return Ok(());
            };
            let rv = object.pointer("/metadata/resourceVersion").cloned();
            patch["metadata"]["resourceVersion"] = rv.unwrap_or(Value::Null);
            match self.inner.client.merge_patch(&id.path, patch).await {
                Ok(_) => return Ok(()),
                Err(err) if err.reason == "NotFound" => return Ok(()),
                Err(err) if err.reason == "Conflict" => continue,
                Err(source) => return Err(api_error(action, id, source)),
            }
        }
        Err(GcError::Conflict {
            action,
            object: id.to_string(),
        })
    }

    /// kube's `reportInvalidNamespaceOwnerRef`: a warning event on the dependent.
    async fn report_invalid_namespace(&self, dependent: &str, owner: &str) {
        let Some(node) = self.graph().node(dependent).cloned() else {
            return;
        };
        let Some(reference) = node.owners.iter().find(|r| r.uid == owner) else {
            return;
        };
        let invalid = Identity {
            api_version: reference.api_version.clone(),
            kind: reference.kind.clone(),
            namespace: node.id.namespace.clone(),
            name: reference.name.clone(),
            uid: reference.uid.clone(),
            path: String::new(),
        };
        let message = format!(
            "ownerRef {invalid} does not exist in namespace {:?}",
            node.id.namespace
        );
        tracing::info!(object = %node.id, %message, "garbage collector");
        let event = warning(&node.id, "OwnerRefInvalidNamespace", &message);
        let store = self.inner.store.clone();
        let recorded = tokio::task::spawn_blocking(move || store.record_event(event)).await;
        if let Ok(Err(err)) = recorded {
            tracing::warn!(%err, "garbage collector: recording an event");
        }
    }
}

/// The stored kinds: those watched, and every one by group and kind for owner lookups.
struct Kinds {
    watched: Vec<Arc<Kind>>,
    by_group_kind: HashMap<(String, String), Arc<Kind>>,
}

impl Kinds {
    fn new(registry: &Registry) -> Kinds {
        let mut watched: Vec<Arc<Kind>> = Vec::new();
        let mut by_group_kind = HashMap::new();
        let stored = registry
            .kinds()
            .iter()
            .filter(|kind| matches!(kind.backend, Backend::Store(_)));
        for kind in stored {
            let key = (kind.gvk.group.clone(), kind.gvk.kind.clone());
            by_group_kind.entry(key).or_insert_with(|| kind.clone());
            let storage = kind.storage.storage_kind();
            let seen = watched.iter().any(|w| w.storage.storage_kind() == storage);
            // kube's GC ignores events (DefaultIgnoredResources).
            if !seen && kind.gvk.kind != "Event" {
                watched.push(kind.clone());
            }
        }
        Kinds {
            watched,
            by_group_kind,
        }
    }

    /// The kind an ownerReference names (any served version of its group and kind).
    fn resolve(&self, api_version: &str, kind: &str) -> Option<&Arc<Kind>> {
        let key = (group_of(api_version).to_owned(), kind.to_owned());
        self.by_group_kind.get(&key)
    }
}

/// The identity of `object` of `kind`, its uid left for [`Node::of`].
fn identity(kind: &Kind, object: &Value) -> Identity {
    let field = |name: &str| {
        let value = object.pointer(&format!("/metadata/{name}"));
        value.and_then(Value::as_str).unwrap_or_default().to_owned()
    };
    let name = field("name");
    let namespace = if kind.namespaced {
        field("namespace")
    } else {
        String::new()
    };
    Identity {
        api_version: kind.api_version(),
        kind: kind.gvk.kind.clone(),
        path: kind.path(Some(&namespace), Some(&name)),
        namespace,
        name,
        uid: String::new(),
    }
}

/// Lists `kind` (everywhere) and watches it from there, on the blocking pool.
async fn list_watch(store: &Store, kind: &Kind) -> Result<(Vec<Value>, WatchStream), GcError> {
    let (store, key) = (store.clone(), kind.storage.clone());
    let listed = tokio::task::spawn_blocking(move || store.list_watch_raw(&key, None, None)).await;
    let resource = kind.qualified_resource();
    match listed {
        Ok(Ok((list, stream))) => Ok((list.items, stream)),
        Ok(Err(source)) => Err(GcError::Store { resource, source }),
        Err(join) => Err(GcError::Blocking {
            resource,
            message: join.to_string(),
        }),
    }
}

fn raw_owner_references(object: &Value) -> Vec<Value> {
    let refs = object.pointer("/metadata/ownerReferences");
    refs.and_then(Value::as_array).cloned().unwrap_or_default()
}

fn api_error(action: &'static str, id: &Identity, source: ApiError) -> GcError {
    GcError::Api {
        action,
        object: id.to_string(),
        source,
    }
}

/// A warning event about `object` from the collector.
fn warning(object: &Identity, reason: &str, message: &str) -> Event {
    let now = Time(jiff::Timestamp::now());
    let namespace = (!object.namespace.is_empty()).then(|| object.namespace.clone());
    Event {
        metadata: ObjectMeta {
            namespace: namespace.clone(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(object.api_version.clone()),
            kind: Some(object.kind.clone()),
            name: Some(object.name.clone()),
            namespace,
            uid: Some(object.uid.clone()),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some("Warning".into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Default::default()
    }
}

/// The worker's queue: each task at most once, failed ones back after a growing delay.
#[derive(Default)]
struct Queue {
    ready: VecDeque<Task>,
    queued: HashSet<Task>,
    later: Vec<(Instant, Task)>,
    failures: HashMap<Task, u32>,
}

impl Queue {
    /// Queues `task` unless it is already; whether it was added.
    fn push(&mut self, task: Task) -> bool {
        if !self.queued.insert(task.clone()) {
            return false;
        }
        self.ready.push_back(task);
        true
    }

    /// The next task, or when the next delayed one is due.
    fn pop(&mut self, now: Instant) -> Result<Task, Option<Instant>> {
        let (due, waiting): (Vec<_>, Vec<_>) = self.later.drain(..).partition(|(at, _)| *at <= now);
        self.later = waiting;
        for (_, task) in due {
            self.push(task);
        }
        match self.ready.pop_front() {
            Some(task) => {
                self.queued.remove(&task);
                Ok(task)
            }
            None => Err(self.later.iter().map(|(at, _)| *at).min()),
        }
    }

    fn succeeded(&mut self, task: &Task) {
        self.failures.remove(task);
    }

    fn failed(&mut self, task: Task, now: Instant) {
        let failures = self.failures.entry(task.clone()).or_default();
        let delay = BACKOFF.saturating_mul(2u32.saturating_pow(*failures));
        *failures = failures.saturating_add(1);
        self.later.push((now + delay.min(MAX_BACKOFF), task));
    }
}

#[cfg(test)]
mod tests;
