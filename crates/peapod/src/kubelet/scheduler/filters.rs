//! kube-scheduler's Filter plugins for one node, in its default order (NodeUnschedulable,
//! NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, then
//! [`topology_spread`] and [`inter_pod_affinity`]), each a pure function of the pod, the Node
//! object and the pods bound to the node, with kube's reason strings.
//! The first plugin that refuses decides, as `RunFilterPlugins` stops there; NodeAffinity's
//! PreFilter (a pod pinned to named nodes) comes before them all.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

use super::inter_pod_affinity::{self, NamespaceLabels};
use super::{claims_of, topology_spread, PortClaim};
use crate::controllers::daemonset::placement::{fits_node_affinity, tolerates, OBJECT_NAME_FIELD};
use crate::kubelet::pod_cgroup::PodAmounts;
use crate::runtime::resources::Amounts;

/// `v1.TaintNodeUnschedulable`.
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Whether preemption might help (`framework.Unschedulable`) or not
/// (`UnschedulableAndUnresolvable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unschedulable,
    UnschedulableAndUnresolvable,
}

/// The status of the plugin that refused the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub plugin: &'static str,
    pub code: Code,
    pub reasons: Vec<String>,
    /// Refused at PreFilter: kube's FitError prints the reasons without a node count.
    pub pre_filter: bool,
}

type Filtered = Result<(), Refusal>;

fn refuse(plugin: &'static str, code: Code, reason: impl Into<String>) -> Filtered {
    Err(Refusal {
        plugin,
        code,
        reasons: vec![reason.into()],
        pre_filter: false,
    })
}

/// Every filter in kube's order; the first refusal. `namespaces` holds the labels of the
/// namespaces, for pod affinity terms with a namespaceSelector.
pub fn run(pod: &Pod, node: &Node, bound: &[&Pod], namespaces: &NamespaceLabels) -> Filtered {
    node_affinity_pre_filter(pod, node)?;
    node_unschedulable(pod, node)?;
    node_name(pod, node)?;
    taint_toleration(pod, node)?;
    node_affinity(pod, node)?;
    node_ports(pod, bound)?;
    node_resources_fit(pod, node, bound)?;
    topology_spread::filter(pod, node, bound)?;
    inter_pod_affinity::filter(pod, node, bound, namespaces)
}

/// NodeUnschedulable: a cordoned node takes only pods tolerating its unschedulable taint.
pub fn node_unschedulable(pod: &Pod, node: &Node) -> Filtered {
    if node.spec.as_ref().and_then(|s| s.unschedulable) != Some(true) {
        return Ok(());
    }
    let taint = Taint {
        key: UNSCHEDULABLE_TAINT.into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    };
    if tolerations(pod).iter().any(|t| tolerates(t, &taint)) {
        return Ok(());
    }
    refuse(
        "NodeUnschedulable",
        Code::UnschedulableAndUnresolvable,
        "node(s) were unschedulable",
    )
}

/// NodeName: a pod naming a node fits that node only.
pub fn node_name(pod: &Pod, node: &Node) -> Filtered {
    let wanted = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    match wanted {
        Some(name) if !name.is_empty() && Some(name) != node.metadata.name.as_deref() => refuse(
            "NodeName",
            Code::UnschedulableAndUnresolvable,
            "node(s) didn't match the requested node name",
        ),
        _ => Ok(()),
    }
}

/// TaintToleration: the node's first NoSchedule or NoExecute taint the pod does not tolerate.
pub fn taint_toleration(pod: &Pod, node: &Node) -> Filtered {
    match untolerated_taint(pod, node, &["NoSchedule", "NoExecute"]) {
        Some(taint) => refuse(
            "TaintToleration",
            Code::UnschedulableAndUnresolvable,
            format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or_default()
            ),
        ),
        None => Ok(()),
    }
}

/// The node's first taint of one of `effects` that the pod does not tolerate.
pub fn untolerated_taint<'a>(pod: &Pod, node: &'a Node, effects: &[&str]) -> Option<&'a Taint> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref());
    let tolerations = tolerations(pod);
    taints.unwrap_or_default().iter().find(|taint| {
        effects.contains(&taint.effect.as_str()) && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

/// NodeAffinity: the nodeSelector and the required node affinity against the node.
pub fn node_affinity(pod: &Pod, node: &Node) -> Filtered {
    let spec = pod.spec.clone().unwrap_or_default();
    if fits_node_affinity(&spec, node) {
        return Ok(());
    }
    refuse(
        "NodeAffinity",
        Code::UnschedulableAndUnresolvable,
        "node(s) didn't match Pod's node affinity/selector",
    )
}

/// NodeAffinity's PreFilter: when every required term names nodes (`metadata.name In`,
/// ANDed within a term, ORed across terms), only those nodes are candidates; names that
/// cancel out conflict.
pub fn node_affinity_pre_filter(pod: &Pod, node: &Node) -> Filtered {
    let Some(names) = pinned_node_names(pod) else {
        return Ok(());
    };
    let (reason, pre_filter) = if names.is_empty() {
        ("pod affinity terms conflict", true)
    } else if names.contains(node.metadata.name.as_deref().unwrap_or_default()) {
        return Ok(());
    } else {
        ("node(s) didn't satisfy plugin(s) [NodeAffinity]", false)
    };
    Err(Refusal {
        plugin: "NodeAffinity",
        code: Code::UnschedulableAndUnresolvable,
        reasons: vec![reason.into()],
        pre_filter,
    })
}

/// The node names the required terms allow, or None when some term allows any node.
fn pinned_node_names(pod: &Pod) -> Option<BTreeSet<String>> {
    let affinity = pod
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?;
    let terms = &affinity
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    if terms.is_empty() {
        return None;
    }
    let mut names = BTreeSet::new();
    for term in terms {
        let by_name = term
            .match_fields
            .iter()
            .flatten()
            .filter(|r| r.key == OBJECT_NAME_FIELD && r.operator == "In");
        let mut term_names: Option<BTreeSet<String>> = None;
        for requirement in by_name {
            let values: BTreeSet<String> = requirement.values.iter().flatten().cloned().collect();
            term_names = Some(match term_names {
                None => values,
                Some(before) => before.intersection(&values).cloned().collect(),
            });
        }
        names.extend(term_names?);
    }
    Some(names)
}

/// NodePorts: a host port another bound pod holds (kube's reason, with the port and holder
/// named).
pub fn node_ports(pod: &Pod, bound: &[&Pod]) -> Filtered {
    match port_conflict(pod, bound) {
        Some(conflict) => refuse("NodePorts", Code::Unschedulable, conflict.reason()),
        None => Ok(()),
    }
}

/// The first of the pod's host ports a bound pod holds, and that pod.
pub fn port_conflict(pod: &Pod, bound: &[&Pod]) -> Option<super::Conflict> {
    let wanted = claims_of(pod);
    bound
        .iter()
        .filter(|other| other.metadata.uid != pod.metadata.uid)
        .find_map(|other| {
            let held = claims_of(other);
            let clash = |claim: &&PortClaim| held.iter().any(|h| h.conflicts_with(claim));
            wanted.iter().find(clash).map(|claim| super::Conflict {
                claim: claim.clone(),
                holder: super::namespaced_name(other),
            })
        })
}

/// NodeResourcesFit: the pod count, then cpu and memory requested (init containers' largest,
/// sidecars and overhead counted) against the node's allocatable less the bound pods'.
pub fn node_resources_fit(pod: &Pod, node: &Node, bound: &[&Pod]) -> Filtered {
    let short = insufficient_resources(pod, node, bound);
    if short.is_empty() {
        return Ok(());
    }
    Err(Refusal {
        plugin: "NodeResourcesFit",
        code: Code::Unschedulable,
        reasons: short.iter().map(Insufficient::reason).collect(),
        pre_filter: false,
    })
}

/// A resource the node has too little of for the pod (kube's `InsufficientResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insufficient {
    /// `pods`, `cpu` or `memory`.
    pub resource: &'static str,
    /// Pods: 1; cpu in millicores; memory in bytes.
    pub requested: i64,
    /// What the bound pods take of it.
    pub used: i64,
    /// The node's allocatable amount.
    pub capacity: i64,
}

impl Insufficient {
    /// The scheduler's reason: "Too many pods", "Insufficient cpu".
    pub fn reason(&self) -> String {
        match self.resource {
            "pods" => "Too many pods".to_owned(),
            resource => format!("Insufficient {resource}"),
        }
    }
}

/// `fitsRequest`: every resource the node lacks for the pod, in kube's order (pods, cpu,
/// memory).
pub fn insufficient_resources(pod: &Pod, node: &Node, bound: &[&Pod]) -> Vec<Insufficient> {
    let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let capacity = Amounts::from_list(allocatable);
    let allowed_pods = allocatable
        .and_then(|a| a.get("pods"))
        .and_then(|q| q.0.parse::<i64>().ok())
        .unwrap_or(0);
    let mut short = Vec::new();
    let count = bound.len() as i64;
    if count + 1 > allowed_pods {
        let (requested, used, capacity) = (1, count, allowed_pods);
        short.push(Insufficient {
            resource: "pods",
            requested,
            used,
            capacity,
        });
    }
    let wanted = requests(pod);
    let used = bound
        .iter()
        .map(|p| requests(p))
        .fold((0, 0), |(cpu, memory), (c, m)| (cpu + c, memory + m));
    let amounts = [
        ("cpu", wanted.0, used.0, capacity.cpu.unwrap_or(0)),
        ("memory", wanted.1, used.1, capacity.memory.unwrap_or(0)),
    ];
    for (resource, requested, used, capacity) in amounts {
        if requested > 0 && requested > capacity - used {
            short.push(Insufficient {
                resource,
                requested,
                used,
                capacity,
            });
        }
    }
    short
}

/// The pod's cpu (millicores) and memory (bytes) requests, as `PodRequests` sums them.
fn requests(pod: &Pod) -> (i64, i64) {
    let spec = pod.spec.clone().unwrap_or_default();
    let requests = PodAmounts::of(&spec).requests;
    (requests.cpu.unwrap_or(0), requests.memory.unwrap_or(0))
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
