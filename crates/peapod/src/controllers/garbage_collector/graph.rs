//! The garbage collector's owner graph (kube's `GraphBuilder`): every stored object by uid, its
//! ownerReferences, and for every owner uid the objects that name it. Changes come in as
//! [`Graph::upsert`] and [`Graph::remove`], which answer the work they make due ([`Task`]); the
//! decisions taken on live objects are [`verdict`] and [`collect_policy`]. Nothing here talks
//! to the API.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

/// `metav1.FinalizerOrphanDependents`.
pub const ORPHAN: &str = "orphan";
/// `metav1.FinalizerDeleteDependents`.
pub const FOREGROUND: &str = "foregroundDeletion";

/// Who an object is: its kind's coordinates, where it lives and its API path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    /// "" for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The object's URL on the API server.
    pub path: String,
}

/// kube's `objectReference` wording: `[v1/ConfigMap, namespace: dev, name: a, uid: 1]`.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// One object as the collector sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: Identity,
    pub owners: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    /// Whether it has a deletionTimestamp.
    pub deleting: bool,
}

impl Node {
    /// The node of a stored object whose identity (but uid) is `id`; `None` without a uid.
    pub fn of(mut id: Identity, object: &Value) -> Option<Node> {
        let metadata = object.get("metadata")?;
        id.uid = metadata.get("uid")?.as_str()?.to_owned();
        Some(Node {
            id,
            owners: owner_references(object),
            finalizers: finalizers(object),
            deleting: metadata
                .get("deletionTimestamp")
                .is_some_and(|t| !t.is_null()),
        })
    }

    pub fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    /// Deleted in the foreground: kept until its blocking dependents are gone.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    /// Deleted with its dependents orphaned.
    pub fn orphaning(&self) -> bool {
        self.deleting && self.has_finalizer(ORPHAN)
    }

    /// Whether its reference to `owner` has `blockOwnerDeletion: true`.
    pub fn blocks(&self, owner: &str) -> bool {
        self.owners
            .iter()
            .any(|r| r.uid == owner && r.block_owner_deletion == Some(true))
    }
}

/// `metadata.ownerReferences` of an object (malformed ones left out).
pub fn owner_references(object: &Value) -> Vec<OwnerReference> {
    let refs = object.pointer("/metadata/ownerReferences").cloned();
    refs.and_then(|refs| serde_json::from_value(refs).ok())
        .unwrap_or_default()
}

/// `metadata.finalizers` of an object.
pub fn finalizers(object: &Value) -> Vec<String> {
    let list = object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Work the graph makes due, by uid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    /// kube's attemptToDelete: collect the object if none of its owners is left, or, for an
    /// owner deleted in the foreground, drive its dependents' deletion.
    Delete(String),
    /// kube's attemptToOrphan: strip the references to the owner from its dependents, then
    /// its `orphan` finalizer.
    Orphan(String),
    /// Warn that `dependent` names a namespaced owner of another namespace.
    InvalidNamespace { dependent: String, owner: String },
}

/// Every object by uid and every owner uid's dependents.
#[derive(Default, Debug)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// The uids of the objects of one kind, for a relist.
    pub fn uids_of_kind(&self, group: &str, kind: &str) -> Vec<String> {
        let of_kind = |id: &Identity| id.kind == kind && group_of(&id.api_version) == group;
        self.nodes
            .values()
            .filter(|node| of_kind(&node.id))
            .map(|node| node.id.uid.clone())
            .collect()
    }

    /// The objects whose ownerReferences name `owner`.
    pub fn dependents(&self, owner: &str) -> Vec<&Node> {
        let uids = self.dependents.get(owner).into_iter().flatten();
        uids.filter_map(|uid| self.nodes.get(uid)).collect()
    }

    /// The dependents of `owner` that keep it while deleting in the foreground.
    pub fn blocking_dependents(&self, owner: &str) -> Vec<&Node> {
        let mut blocking = self.dependents(owner);
        blocking.retain(|dependent| dependent.blocks(owner));
        blocking
    }

    /// An object added or changed (kube's `processGraphChanges` for add and update events).
    pub fn upsert(&mut self, node: Node) -> Vec<Task> {
        let uid = node.id.uid.clone();
        let old = self.nodes.remove(&uid);
        let mut tasks = Vec::new();
        let owners_changed = old.as_ref().is_none_or(|old| old.owners != node.owners);
        if owners_changed {
            let old_owners = old.as_ref().map(|o| o.owners.as_slice()).unwrap_or(&[]);
            tasks.extend(self.relink(&node, old_owners));
        }
        if old.is_none() {
            tasks.extend(self.check_dependents_of_new_owner(&node));
        }
        tasks.extend(transitions(old.as_ref(), &node));
        if node.deleting_dependents() && !old.as_ref().is_some_and(Node::deleting_dependents) {
            let dependents = self.dependents(&uid);
            tasks.extend(dependents.iter().map(|d| Task::Delete(d.id.uid.clone())));
        }
        self.nodes.insert(uid, node);
        tasks
    }

    /// An object removed; `last` is its last state.
    pub fn remove(&mut self, last: &Node) -> Vec<Task> {
        let uid = &last.id.uid;
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        for owner in &node.owners {
            self.unlink(&owner.uid, uid);
        }
        let mut tasks = Vec::new();
        if last.orphaning() || node.orphaning() {
            // Removed while its orphan finalizer was still there (the kubelet removes pods
            // whatever their finalizers): its dependents are orphaned, not collected.
            tasks.push(Task::Orphan(uid.clone()));
        } else {
            let dependents = self.dependents(uid);
            tasks.extend(dependents.iter().map(|d| Task::Delete(d.id.uid.clone())));
        }
        tasks.extend(self.waiting_owners(&node.owners));
        tasks
    }

    /// Moves `node` from its old owners' dependents to its new ones'; the tasks that makes due:
    /// the node itself when one of its owners is not known solid, and owners it no longer
    /// blocks.
    fn relink(&mut self, node: &Node, old_owners: &[OwnerReference]) -> Vec<Task> {
        let uid = &node.id.uid;
        for owner in old_owners {
            self.unlink(&owner.uid, uid);
        }
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        let mut tasks = Vec::new();
        for owner in &node.owners {
            if let Some(found) = self.nodes.get(&owner.uid) {
                if found.id.uid != *uid && in_other_namespace(node, found) {
                    tasks.push(Task::InvalidNamespace {
                        dependent: uid.clone(),
                        owner: owner.uid.clone(),
                    });
                }
            }
        }
        if node.owners.iter().any(|owner| !self.solid(node, owner)) {
            tasks.push(Task::Delete(uid.clone()));
        }
        let unblocked = old_owners
            .iter()
            .filter(|old| old.block_owner_deletion == Some(true))
            .filter(|old| !node.blocks(&old.uid))
            .cloned()
            .collect::<Vec<_>>();
        tasks.extend(self.waiting_owners(&unblocked));
        tasks
    }

    /// A new object whose uid dependents already name: those in another namespace (or naming
    /// other coordinates) are checked, and warned about.
    fn check_dependents_of_new_owner(&self, owner: &Node) -> Vec<Task> {
        let mut tasks = Vec::new();
        for dependent in self.dependents(&owner.id.uid) {
            if in_other_namespace(dependent, owner) {
                tasks.push(Task::InvalidNamespace {
                    dependent: dependent.id.uid.clone(),
                    owner: owner.id.uid.clone(),
                });
            }
            let matches = dependent
                .owners
                .iter()
                .filter(|r| r.uid == owner.id.uid)
                .all(|r| names(r, &owner.id));
            if !matches || in_other_namespace(dependent, owner) {
                tasks.push(Task::Delete(dependent.id.uid.clone()));
            }
        }
        tasks
    }

    /// The owners among `refs` deleting in the foreground, to check again.
    fn waiting_owners(&self, refs: &[OwnerReference]) -> Vec<Task> {
        refs.iter()
            .filter(|r| {
                self.nodes
                    .get(&r.uid)
                    .is_some_and(Node::deleting_dependents)
            })
            .map(|r| Task::Delete(r.uid.clone()))
            .collect()
    }

    /// Whether `owner` is known present (same uid and coordinates, where `dependent` may see
    /// it) and not waiting for its dependents' deletion.
    fn solid(&self, dependent: &Node, owner: &OwnerReference) -> bool {
        self.nodes.get(&owner.uid).is_some_and(|found| {
            names(owner, &found.id)
                && !in_other_namespace(dependent, found)
                && !found.deleting_dependents()
        })
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }
}

/// kube's `processTransitions`: an object that starts being deleted with the `orphan`
/// finalizer gets its dependents orphaned; one with `foregroundDeletion` is checked.
fn transitions(old: Option<&Node>, new: &Node) -> Option<Task> {
    let starts = |test: fn(&Node) -> bool| test(new) && !old.is_some_and(test);
    if starts(Node::orphaning) {
        return Some(Task::Orphan(new.id.uid.clone()));
    }
    starts(Node::deleting_dependents).then(|| Task::Delete(new.id.uid.clone()))
}

/// Whether `dependent` names namespaced `owner` from another namespace.
fn in_other_namespace(dependent: &Node, owner: &Node) -> bool {
    !owner.id.namespace.is_empty() && owner.id.namespace != dependent.id.namespace
}

/// Whether `reference` names `owner` (kind, group and name; versions may differ).
fn names(reference: &OwnerReference, owner: &Identity) -> bool {
    reference.kind == owner.kind
        && reference.name == owner.name
        && group_of(&reference.api_version) == group_of(&owner.api_version)
}

/// The group of an apiVersion ("" for the core group).
pub fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// What an owner reference of a live object points at (kube's `classifyReferences`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists and is not deleting in the foreground.
    Solid,
    /// No owner of that name, or one with another uid.
    Dangling,
    /// The owner is deleting in the foreground, waiting for its dependents.
    Waiting,
}

/// What to do with an object whose owner references were looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An owner is left and nothing points at gone or waiting owners.
    Keep,
    /// An owner is left: drop the references to these (gone or waiting) owners.
    Strip(Vec<String>),
    /// Every owner is gone or waiting, and the object has dependents of its own: delete it
    /// in the foreground too.
    DeleteForeground,
    /// Every owner is gone or waiting: delete it (see [`collect_policy`]).
    Collect,
}

/// kube's `attemptToDeleteItem` decision over classified references.
pub fn verdict(states: &[(OwnerReference, OwnerState)], has_dependents: bool) -> Verdict {
    let uids = |wanted: OwnerState| {
        states
            .iter()
            .filter(move |(_, state)| *state == wanted)
            .map(|(r, _)| r.uid.clone())
    };
    let solid = uids(OwnerState::Solid).count();
    let mut stale: Vec<String> = uids(OwnerState::Dangling).collect();
    let waiting: Vec<String> = uids(OwnerState::Waiting).collect();
    if solid > 0 {
        stale.extend(waiting);
        return if stale.is_empty() {
            Verdict::Keep
        } else {
            Verdict::Strip(stale)
        };
    }
    if !waiting.is_empty() && has_dependents {
        return Verdict::DeleteForeground;
    }
    Verdict::Collect
}

/// The propagation of a collected object's own dependents: what its finalizers already say,
/// else Background.
pub fn collect_policy(finalizers: &[String]) -> &'static str {
    if finalizers.iter().any(|f| f == ORPHAN) {
        "Orphan"
    } else if finalizers.iter().any(|f| f == FOREGROUND) {
        "Foreground"
    } else {
        "Background"
    }
}

#[cfg(test)]
mod tests;
