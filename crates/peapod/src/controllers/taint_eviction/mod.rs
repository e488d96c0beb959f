//! The taint-eviction controller, as kube-controller-manager's (pkg/controller/tainteviction):
//! pods bound to a node with NoExecute taints they do not tolerate are deleted; pods that
//! tolerate them for `tolerationSeconds` are deleted when the shortest runs out, unless the
//! taints go first. Watches of pods and nodes drive it; a timer fires the earliest eviction.

pub mod decision;
pub mod eviction;

use std::collections::{HashMap, HashSet};
use std::fmt;

use futures::{stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tokio::time::Instant;

use crate::controllers::events::Events;
use decision::{decide, no_execute_taints, Decision, Scheduled};

/// A pod's namespace and name, shown as kube's `NamespacedName`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the controller reads of a bound pod.
#[derive(Debug, Clone, PartialEq)]
struct BoundPod {
    uid: String,
    node: String,
    tolerations: Vec<Toleration>,
}

enum Update {
    Pod(Box<watcher::Event<Pod>>),
    Node(Box<watcher::Event<Node>>),
}

struct Controller {
    client: Client,
    events: Events,
    tainted_nodes: HashMap<String, Vec<Taint>>,
    pods: HashMap<PodKey, BoundPod>,
    scheduled: HashMap<PodKey, (Scheduled, String)>,
    relisted_pods: HashSet<PodKey>,
    relisted_nodes: HashSet<String>,
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let pods = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(|event| event.map(|e| Update::Pod(Box::new(e))));
    let nodes = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(|event| event.map(|e| Update::Node(Box::new(e))));
    let mut updates = std::pin::pin!(stream::select(pods, nodes));
    let mut controller = Controller {
        events: Events::new(client.clone(), eviction::NAME),
        client,
        tainted_nodes: HashMap::new(),
        pods: HashMap::new(),
        scheduled: HashMap::new(),
        relisted_pods: HashSet::new(),
        relisted_nodes: HashSet::new(),
    };
    loop {
        let next = controller.scheduled.values().map(|(s, _)| s.fire_at).min();
        tokio::select! {
            update = updates.next() => match update {
                Some(Ok(Update::Pod(event))) => controller.on_pod_event(*event),
                Some(Ok(Update::Node(event))) => controller.on_node_event(*event),
                Some(Err(err)) => tracing::debug!(%err, "taint-eviction controller watch"),
                None => return,
            },
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                controller.fire_due(Instant::now());
            }
        }
    }
}

impl Controller {
    fn on_pod_event(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Init => self.relisted_pods.clear(),
            watcher::Event::InitApply(pod) => {
                self.relisted_pods.insert(key_of(&pod));
                self.pod_seen(&pod);
            }
            watcher::Event::InitDone => {
                let gone: Vec<PodKey> = (self.pods.keys())
                    .filter(|key| !self.relisted_pods.contains(*key))
                    .cloned()
                    .collect();
                gone.iter().for_each(|key| self.pod_gone(key));
            }
            watcher::Event::Apply(pod) => self.pod_seen(&pod),
            watcher::Event::Delete(pod) => self.pod_gone(&key_of(&pod)),
        }
    }

    fn on_node_event(&mut self, event: watcher::Event<Node>) {
        match event {
            watcher::Event::Init => self.relisted_nodes.clear(),
            watcher::Event::InitApply(node) => {
                self.relisted_nodes.insert(node.name_any());
                self.node_seen(&node);
            }
            watcher::Event::InitDone => {
                let relisted = &self.relisted_nodes;
                self.tainted_nodes.retain(|name, _| relisted.contains(name));
            }
            watcher::Event::Apply(node) => self.node_seen(&node),
            watcher::Event::Delete(node) => {
                self.tainted_nodes.remove(&node.name_any());
            }
        }
    }

    /// `PodUpdated` and `handlePodUpdate`: only a new binding or new tolerations matter.
    fn pod_seen(&mut self, pod: &Pod) {
        let key = key_of(pod);
        let spec = pod.spec.as_ref();
        let Some(node) = spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty())
        else {
            return;
        };
        let bound = BoundPod {
            uid: pod.uid().unwrap_or_default(),
            node,
            tolerations: spec.and_then(|s| s.tolerations.clone()).unwrap_or_default(),
        };
        if self.pods.get(&key) == Some(&bound) {
            return;
        }
        self.pods.insert(key.clone(), bound);
        self.process(&key, Instant::now());
    }

    fn pod_gone(&mut self, key: &PodKey) {
        self.pods.remove(key);
        self.cancel(key);
    }

    /// `NodeUpdated` and `handleNodeUpdate`: new NoExecute taints re-decide every pod on it.
    fn node_seen(&mut self, node: &Node) {
        let name = node.name_any();
        let spec = node.spec.as_ref();
        let taints = no_execute_taints(spec.and_then(|s| s.taints.as_deref()).unwrap_or_default());
        let known = self.tainted_nodes.get(&name).map(Vec::as_slice);
        if known.unwrap_or_default() == taints.as_slice() {
            return;
        }
        let on_node: Vec<PodKey> = (self.pods.iter())
            .filter(|(_, pod)| pod.node == name)
            .map(|(key, _)| key.clone())
            .collect();
        if taints.is_empty() {
            self.tainted_nodes.remove(&name);
            on_node.iter().for_each(|key| self.cancel(key));
            return;
        }
        self.tainted_nodes.insert(name, taints);
        let now = Instant::now();
        on_node.iter().for_each(|key| self.process(key, now));
    }

    /// `processPodOnNode`.
    fn process(&mut self, key: &PodKey, now: Instant) {
        let Some(pod) = self.pods.get(key) else {
            return;
        };
        let Some(taints) = self.tainted_nodes.get(&pod.node) else {
            return;
        };
        let scheduled = self.scheduled.get(key).map(|(s, _)| s);
        let uid = pod.uid.clone();
        match decide(taints, &pod.tolerations, scheduled, now) {
            Decision::Keep => {}
            Decision::Cancel => self.cancel(key),
            Decision::EvictNow => {
                self.cancel(key);
                self.evict(key.clone(), uid);
            }
            Decision::Schedule(next) => {
                self.cancel(key);
                self.scheduled.insert(key.clone(), (next, uid));
            }
        }
    }

    /// `cancelWorkWithEvent`.
    fn cancel(&mut self, key: &PodKey) {
        if let Some((_, uid)) = self.scheduled.remove(key) {
            eviction::record_cancel(&self.events, key, &uid);
        }
    }

    fn fire_due(&mut self, now: Instant) {
        let due: Vec<PodKey> = (self.scheduled.iter())
            .filter(|(_, (scheduled, _))| scheduled.fire_at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Some((_, uid)) = self.scheduled.remove(&key) {
                self.evict(key, uid);
            }
        }
    }

    fn evict(&self, key: PodKey, uid: String) {
        let (client, events) = (self.client.clone(), self.events.clone());
        tokio::spawn(eviction::evict(client, events, key, uid));
    }
}

fn key_of(pod: &Pod) -> PodKey {
    PodKey {
        namespace: pod.namespace().unwrap_or_default(),
        name: pod.name_any(),
    }
}
