//! What `manage` decides for each node (kube's `podsShouldBeOnNode`,
//! `getNodesToDaemonPods`, `getUnscheduledPodsWithoutNode`) and the pod a create sends
//! (`CreatePodTemplate` with the node pinned), over k8s-openapi types and without I/O.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};

use super::backoff::{self, FailedPodsBackoff};
use super::history::REVISION_HASH_LABEL;
use super::placement::{self, Placement};
use super::update::{allows_surge, min_ready_seconds};
use crate::controllers::events::Event;
use crate::controllers::ownership;
use crate::controllers::replicaset::pod_template::pod_from_template;
use crate::controllers::replicaset::pods::{self, node_name, phase};

/// `extensions.DaemonSetTemplateGenerationKey`.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// `FailedDaemonPodReason`.
pub const FAILED_DAEMON_POD: &str = "FailedDaemonPod";

/// The daemon pods of each node, by the node they are bound or pinned to; a terminal pod
/// being deleted only counts when `include_deleted_terminal`.
pub fn nodes_to_daemon_pods<'a>(
    claimed: &[&'a Pod],
    include_deleted_terminal: bool,
) -> BTreeMap<String, Vec<&'a Pod>> {
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for pod in claimed {
        let terminal = matches!(phase(pod), "Succeeded" | "Failed");
        if !include_deleted_terminal && terminal && pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(node) = placement::target_node(pod) {
            by_node.entry(node).or_default().push(pod);
        }
    }
    by_node
}

/// `podByCreationTimestampAndPhase`: bound pods first, then oldest, then by name.
pub fn by_creation_and_phase(a: &&Pod, b: &&Pod) -> Ordering {
    let bound = |p: &Pod| !node_name(p).is_empty();
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    bound(b)
        .cmp(&bound(a))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// What one node needs: a new pod, pods deleted, events recorded, a sync after a backoff.
#[derive(Debug, Default, PartialEq)]
pub struct NodeWork {
    pub needs_pod: bool,
    pub to_delete: Vec<String>,
    pub events: Vec<Event>,
    pub retry_after: Option<std::time::Duration>,
}

/// `podsShouldBeOnNode` for one node and the daemon pods there.
pub fn pods_should_be_on_node(
    node: &Node,
    placement: Placement,
    daemon_pods: &[&Pod],
    ds: &DaemonSet,
    hash: &str,
    failed: (&FailedPodsBackoff, Instant),
    now: Timestamp,
) -> NodeWork {
    let mut work = NodeWork::default();
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if placement.should_run && daemon_pods.is_empty() {
        work.needs_pod = true;
        return work;
    }
    if !placement.should_continue_running {
        let live = daemon_pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none());
        work.to_delete = live.map(|p| name(p)).collect();
        return work;
    }
    let mut running = Vec::new();
    for pod in daemon_pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        match phase(pod) {
            "Failed" => failed_pod(pod, node_name, ds, failed, &mut work),
            "Succeeded" => work.to_delete.push(name(pod)),
            _ => running.push(*pod),
        }
    }
    running.sort_by(by_creation_and_phase);
    if !allows_surge(ds) {
        work.to_delete
            .extend(running.iter().skip(1).map(|p| name(p)));
        return work;
    }
    if running.is_empty() {
        work.needs_pod = placement.should_run;
        return work;
    }
    work.to_delete
        .extend(surplus_while_surging(&running, ds, hash, now));
    work
}

/// A failed pod is deleted (with a warning) unless the node's backoff holds it.
fn failed_pod(
    pod: &Pod,
    node_name: &str,
    ds: &DaemonSet,
    (backoff, instant): (&FailedPodsBackoff, Instant),
    work: &mut NodeWork,
) {
    let uid = ds.metadata.uid.as_deref().unwrap_or_default();
    let observed = ds
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    let key = backoff::key(uid, observed, node_name);
    if let Some(delay) = backoff.in_backoff(&key, instant) {
        work.retry_after = Some(work.retry_after.map_or(delay, |d| d.min(delay)));
        return;
    }
    backoff.next(&key, instant);
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    work.events.push(Event::warning(
        FAILED_DAEMON_POD,
        format!(
            "Found failed daemon pod {namespace}/{} on node {node_name}, will try to kill it",
            name(pod)
        ),
    ));
    work.to_delete.push(name(pod));
}

/// With surge, a node keeps the oldest new pod and the oldest old one; the old one goes
/// once it is not ready or the new one is available.
fn surplus_while_surging(
    running: &[&Pod],
    ds: &DaemonSet,
    hash: &str,
    now: Timestamp,
) -> Vec<String> {
    let mut doomed = Vec::new();
    let (mut oldest_new, mut oldest_old): (Option<&Pod>, Option<&Pod>) = (None, None);
    for pod in running {
        let is_new = pods::labels(pod)
            .get(REVISION_HASH_LABEL)
            .map(String::as_str)
            == Some(hash);
        let slot = if is_new {
            &mut oldest_new
        } else {
            &mut oldest_old
        };
        match slot {
            None => *slot = Some(pod),
            Some(_) => doomed.push(name(pod)),
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
        let replace = !pods::is_ready(old) || pods::is_available(new, min_ready_seconds(ds), now);
        if replace {
            doomed.push(name(old));
        }
    }
    doomed
}

/// `getUnscheduledPodsWithoutNode`: unbound pods pinned to nodes that do not exist.
pub fn unscheduled_pods_without_node(
    nodes: &[Node],
    by_node: &BTreeMap<String, Vec<&Pod>>,
) -> Vec<String> {
    let known: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    by_node
        .iter()
        .filter(|(node, _)| !known.contains(node.as_str()))
        .flat_map(|(_, pods)| pods.iter())
        .filter(|pod| node_name(pod).is_empty())
        .map(|pod| name(pod))
        .collect()
}

/// `CreatePodTemplate` and `GetPodFromTemplate` for `node`: the template with the daemon
/// tolerations, the generation and hash labels, the controller reference, and the node
/// affinity pinning it to `node`.
pub fn pod_for_node(ds: &DaemonSet, hash: &str, node: &str) -> Pod {
    let mut template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let spec = template.spec.get_or_insert_with(Default::default);
    placement::add_default_tolerations(spec);
    spec.affinity = Some(placement::pin_to_node(spec.affinity.take(), node));
    let labels = template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    if let Some(generation) = peapod_apis::apps::v1::daemonset::template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.to_owned(), generation.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_HASH_LABEL.to_owned(), hash.to_owned());
    }
    let ds_name = ds.metadata.name.as_deref().unwrap_or_default();
    pod_from_template(&template, ds_name, Some(ownership::controller_ref(ds)))
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests;
