//! kube-scheduler's PodTopologySpread filter for this one node: each `DoNotSchedule`
//! constraint's skew (matching pods in the node's domain, plus the pod itself if it matches,
//! less the smallest domain's count) must stay within `maxSkew`. With one node there is one
//! domain, so the skew is the pod's own match, except when `minDomains` asks for more domains
//! than exist: the global minimum is then 0, as kube counts it, and the domain fills up to
//! `maxSkew`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use peapod_api::label_selector;

use super::filters::{self, Code, Refusal};
use crate::controllers::daemonset::placement::fits_node_affinity;

const NOT_MATCHED: &str = "node(s) didn't match pod topology spread constraints";
const MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// PodTopologySpread's Filter over the pod's hard constraints.
pub fn filter(pod: &Pod, node: &Node, bound: &[&Pod]) -> Result<(), Refusal> {
    let constraints = hard_constraints(pod);
    if constraints.is_empty() {
        return Ok(());
    }
    let node_labels = node.metadata.labels.clone().unwrap_or_default();
    // kube counts a node only when it carries every constraint's topology key.
    let node_counted = constraints
        .iter()
        .all(|c| node_labels.contains_key(&c.topology_key));
    let own_labels = pod.metadata.labels.clone().unwrap_or_default();
    for constraint in &constraints {
        if !node_labels.contains_key(&constraint.topology_key) {
            return refuse(Code::UnschedulableAndUnresolvable, MISSING_LABEL);
        }
        let selector = selector_with_match_label_keys(constraint, &own_labels);
        let counted = node_counted && includes_node(constraint, pod, node);
        let matching = if counted {
            count_matching(selector.as_ref(), pod, bound)
        } else {
            0
        };
        let domains = usize::from(counted);
        // criticalPaths start at MaxInt32: no counted domain leaves the minimum there.
        let mut minimum = if counted { matching } else { i32::MAX as usize };
        if (domains as i32) < constraint.min_domains.unwrap_or(1) {
            minimum = 0;
        }
        let own = usize::from(matches(selector.as_ref(), &own_labels));
        let skew = (matching + own) as i64 - minimum as i64;
        if skew > i64::from(constraint.max_skew) {
            return refuse(Code::Unschedulable, NOT_MATCHED);
        }
    }
    Ok(())
}

fn refuse(code: Code, reason: &str) -> Result<(), Refusal> {
    Err(Refusal {
        plugin: "PodTopologySpread",
        code,
        reasons: vec![reason.to_owned()],
        pre_filter: false,
    })
}

/// The constraints the filter enforces (`whenUnsatisfiable: DoNotSchedule`); kube's default
/// constraints are all ScheduleAnyway, scoring only.
fn hard_constraints(pod: &Pod) -> Vec<TopologySpreadConstraint> {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.topology_spread_constraints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
        .collect()
}

/// The constraint's selector with `matchLabelKeys` added as `key In (the pod's value)`, for
/// the keys the pod has (kube's scheduler merges them so). None: no selector, which matches
/// nothing (`labels.Nothing()`).
fn selector_with_match_label_keys(
    constraint: &TopologySpreadConstraint,
    own_labels: &BTreeMap<String, String>,
) -> Option<LabelSelector> {
    let mut selector = constraint.label_selector.clone()?;
    for key in constraint.match_label_keys.iter().flatten() {
        if let Some(value) = own_labels.get(key) {
            selector
                .match_expressions
                .get_or_insert_with(Vec::new)
                .push(LabelSelectorRequirement {
                    key: key.clone(),
                    operator: "In".into(),
                    values: Some(vec![value.clone()]),
                });
        }
    }
    Some(selector)
}

fn matches(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_some_and(|s| label_selector::matches(s, labels))
}

/// `matchNodeInclusionPolicies`: nodeAffinityPolicy Honor (the default) counts only nodes the
/// pod's nodeSelector and required affinity accept; nodeTaintsPolicy Honor only nodes whose
/// NoSchedule/NoExecute taints the pod tolerates (default Ignore).
fn includes_node(constraint: &TopologySpreadConstraint, pod: &Pod, node: &Node) -> bool {
    let spec = pod.spec.clone().unwrap_or_default();
    let affinity_policy = constraint
        .node_affinity_policy
        .as_deref()
        .unwrap_or("Honor");
    if affinity_policy == "Honor" && !fits_node_affinity(&spec, node) {
        return false;
    }
    constraint.node_taints_policy.as_deref() != Some("Honor")
        || filters::untolerated_taint(pod, node, &["NoSchedule", "NoExecute"]).is_none()
}

/// `countPodsMatchSelector`: bound pods of the pod's namespace, not terminating, matching.
fn count_matching(selector: Option<&LabelSelector>, pod: &Pod, bound: &[&Pod]) -> usize {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    bound
        .iter()
        .filter(|other| other.metadata.uid != pod.metadata.uid)
        .filter(|other| other.metadata.deletion_timestamp.is_none())
        .filter(|other| other.metadata.namespace.as_deref().unwrap_or("default") == namespace)
        .filter(|other| {
            let labels = other.metadata.labels.clone().unwrap_or_default();
            matches(selector, &labels)
        })
        .count()
}

#[cfg(test)]
mod tests;
