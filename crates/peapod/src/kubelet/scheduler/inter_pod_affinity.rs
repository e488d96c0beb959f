//! kube-scheduler's InterPodAffinity filter for this one node: the pod's required pod
//! affinity (a matching pod in the node's topology domain, or the first pod of a group that
//! matches its own terms), its required anti-affinity, and the anti-affinity of the pods
//! already bound, each term read as kube's `AffinityTerm` (namespaces, namespaceSelector and
//! labelSelector; the node's label for `topologyKey` naming the domain).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm};
use peapod_api::label_selector;

use super::filters::{Code, Refusal};

/// Namespace name → its labels, for terms with a namespaceSelector.
pub type NamespaceLabels = HashMap<String, BTreeMap<String, String>>;

const EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
const AFFINITY: &str = "node(s) didn't match pod affinity rules";
const ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";

/// A `PodAffinityTerm` as kube's framework reads it.
struct Term<'a> {
    term: &'a PodAffinityTerm,
    /// The pod the term belongs to (its namespace is the default one).
    owner_namespace: &'a str,
}

impl Term<'_> {
    /// kube's `AffinityTerm.Matches`: the pod's namespace is among the term's (listed, or
    /// selected by namespaceSelector), and its labels match the term's selector (a missing
    /// selector matches nothing).
    fn matches(&self, pod: &Pod, namespaces: &NamespaceLabels) -> bool {
        let namespace = namespace_of(pod);
        let listed = self.term.namespaces.as_deref().unwrap_or_default();
        let in_namespace = if listed.is_empty() && self.term.namespace_selector.is_none() {
            namespace == self.owner_namespace
        } else {
            listed.iter().any(|n| n == namespace)
                || self.term.namespace_selector.as_ref().is_some_and(|s| {
                    label_selector::matches(
                        s,
                        namespaces.get(namespace).unwrap_or(&BTreeMap::new()),
                    )
                })
        };
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        in_namespace
            && self
                .term
                .label_selector
                .as_ref()
                .is_some_and(|s| label_selector::matches(s, &labels))
    }

    /// The node's value for the term's topology key: the domain the node is in, if any.
    fn domain<'n>(&self, node: &'n Node) -> Option<&'n String> {
        node.metadata.labels.as_ref()?.get(&self.term.topology_key)
    }
}

/// InterPodAffinity's Filter: the pod's affinity, its anti-affinity, then the bound pods'
/// anti-affinity, with kube's reasons and codes.
pub fn filter(
    pod: &Pod,
    node: &Node,
    bound: &[&Pod],
    namespaces: &NamespaceLabels,
) -> Result<(), Refusal> {
    let others: Vec<&Pod> = bound
        .iter()
        .copied()
        .filter(|other| other.metadata.uid != pod.metadata.uid)
        .collect();
    if !satisfies_affinity(pod, node, &others, namespaces) {
        return refuse(Code::UnschedulableAndUnresolvable, AFFINITY);
    }
    if !satisfies_anti_affinity(pod, node, &others, namespaces) {
        return refuse(Code::Unschedulable, ANTI_AFFINITY);
    }
    if !satisfies_existing_anti_affinity(pod, node, &others, namespaces) {
        return refuse(Code::Unschedulable, EXISTING_ANTI_AFFINITY);
    }
    Ok(())
}

fn refuse(code: Code, reason: &str) -> Result<(), Refusal> {
    Err(Refusal {
        plugin: "InterPodAffinity",
        code,
        reasons: vec![reason.to_owned()],
        pre_filter: false,
    })
}

/// Every required affinity term has its topology on the node and a bound pod matching all
/// the terms there; or no pod anywhere matches them and the pod matches its own terms (the
/// first of a group with affinity to itself).
fn satisfies_affinity(
    pod: &Pod,
    node: &Node,
    others: &[&Pod],
    namespaces: &NamespaceLabels,
) -> bool {
    let terms = required_terms(pod, Affinity::Pod);
    if terms.is_empty() {
        return true;
    }
    if terms.iter().any(|t| t.domain(node).is_none()) {
        return false;
    }
    let matches_all = |other: &Pod| terms.iter().all(|t| t.matches(other, namespaces));
    if others.iter().any(|other| matches_all(other)) {
        return true;
    }
    matches_all(pod)
}

/// No bound pod in the node's domain of a required anti-affinity term matches it.
fn satisfies_anti_affinity(
    pod: &Pod,
    node: &Node,
    others: &[&Pod],
    namespaces: &NamespaceLabels,
) -> bool {
    required_terms(pod, Affinity::PodAnti)
        .iter()
        .filter(|t| t.domain(node).is_some())
        .all(|t| !others.iter().any(|other| t.matches(other, namespaces)))
}

/// No bound pod has a required anti-affinity term that the pod matches, in a domain the node
/// is in.
fn satisfies_existing_anti_affinity(
    pod: &Pod,
    node: &Node,
    others: &[&Pod],
    namespaces: &NamespaceLabels,
) -> bool {
    others.iter().all(|other| {
        required_terms(other, Affinity::PodAnti)
            .iter()
            .filter(|t| t.domain(node).is_some())
            .all(|t| !t.matches(pod, namespaces))
    })
}

#[derive(Clone, Copy)]
enum Affinity {
    Pod,
    PodAnti,
}

/// The required (during scheduling) terms of the pod's affinity or anti-affinity.
fn required_terms(pod: &Pod, which: Affinity) -> Vec<Term<'_>> {
    let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let terms = match which {
        Affinity::Pod => affinity
            .and_then(|a| a.pod_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        Affinity::PodAnti => affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
    };
    let owner_namespace = namespace_of(pod);
    terms
        .into_iter()
        .flatten()
        .map(|term| Term {
            term,
            owner_namespace,
        })
        .collect()
}

fn namespace_of(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

#[cfg(test)]
mod tests;
