//! Where a daemon pod belongs, as kube's DaemonSet controller decides it
//! (`NodeShouldRunDaemonPod`, `predicates`, pkg/controller/daemon/util): the template's
//! nodeName, nodeSelector and required node affinity against the node, the node's taints
//! against the pod's tolerations plus the controller's defaults, the affinity term that pins
//! a created pod to its node, and the node a pod is meant for.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};

/// `metav1.ObjectNameField`: the one node field a node selector term may match.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";
const NO_EXECUTE: &str = "NoExecute";
const NO_SCHEDULE: &str = "NoSchedule";

/// Whether a daemon pod should be created on the node, and whether one there may stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub should_run: bool,
    pub should_continue_running: bool,
}

/// `NodeShouldRunDaemonPod`: a node the template names otherwise, or whose labels the
/// template's selector or required affinity refuse, runs nothing; an untolerated NoSchedule
/// taint stops new pods, an untolerated NoExecute one the running pod too.
pub fn node_should_run(node: &Node, ds: &DaemonSet) -> Placement {
    const NOWHERE: Placement = Placement {
        should_run: false,
        should_continue_running: false,
    };
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    let mut spec = template_spec(ds);
    let named = spec.node_name.as_deref().unwrap_or_default();
    if !named.is_empty() && named != node_name {
        return NOWHERE;
    }
    add_default_tolerations(&mut spec);
    if !fits_node_affinity(&spec, node) {
        return NOWHERE;
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let tolerations = spec.tolerations.unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        taints
            .iter()
            .filter(|t| effects.contains(&t.effect.as_str()))
            .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
    };
    if untolerated(&[NO_EXECUTE, NO_SCHEDULE]) {
        return Placement {
            should_run: false,
            should_continue_running: !untolerated(&[NO_EXECUTE]),
        };
    }
    Placement {
        should_run: true,
        should_continue_running: true,
    }
}

fn template_spec(ds: &DaemonSet) -> PodSpec {
    let template = ds.spec.as_ref().map(|s| &s.template);
    template.and_then(|t| t.spec.clone()).unwrap_or_default()
}

/// `Toleration.ToleratesTaint`.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        "Exists" => true,
        _ => false,
    }
}

/// `AddOrUpdateDaemonPodTolerations`: daemon pods survive node problems and cordons.
pub fn add_default_tolerations(spec: &mut PodSpec) {
    let mut defaults = vec![
        ("node.kubernetes.io/not-ready", NO_EXECUTE),
        ("node.kubernetes.io/unreachable", NO_EXECUTE),
        ("node.kubernetes.io/disk-pressure", NO_SCHEDULE),
        ("node.kubernetes.io/memory-pressure", NO_SCHEDULE),
        ("node.kubernetes.io/pid-pressure", NO_SCHEDULE),
        ("node.kubernetes.io/unschedulable", NO_SCHEDULE),
    ];
    if spec.host_network == Some(true) {
        defaults.push(("node.kubernetes.io/network-unavailable", NO_SCHEDULE));
    }
    for (key, effect) in defaults {
        add_or_update_toleration(
            spec,
            Toleration {
                key: Some(key.to_owned()),
                operator: Some("Exists".to_owned()),
                effect: Some(effect.to_owned()),
                ..Toleration::default()
            },
        );
    }
}

/// `AddOrUpdateTolerationInPodSpec`: a toleration of the same key, operator, value and effect
/// is replaced in place; otherwise it is appended.
fn add_or_update_toleration(spec: &mut PodSpec, toleration: Toleration) {
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    let same = |t: &Toleration| {
        t.key == toleration.key
            && t.effect == toleration.effect
            && t.operator.as_deref().unwrap_or_default()
                == toleration.operator.as_deref().unwrap_or_default()
            && t.value.as_deref().unwrap_or_default()
                == toleration.value.as_deref().unwrap_or_default()
    };
    match tolerations.iter_mut().find(|t| same(t)) {
        Some(existing) => *existing = toleration,
        None => tolerations.push(toleration),
    }
}

/// `GetRequiredNodeAffinity(pod).Match(node)`: the nodeSelector's labels, then any term of
/// the required node affinity.
pub fn fits_node_affinity(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector = spec.node_selector.clone().unwrap_or_default();
    if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let Some(required) = required else {
        return true;
    };
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let terms = &required.node_selector_terms;
    terms.iter().any(|term| term_matches(term, &labels, name))
}

/// A term matches when it has requirements and all hold; one that does not parse fails.
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions.iter().all(|r| label_requirement(r, labels))
        && fields.iter().all(|r| field_requirement(r, name))
}

fn label_requirement(
    requirement: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let value = labels.get(&requirement.key);
    let number = |text: &str| text.parse::<i64>().ok();
    let compare = |ordering: std::cmp::Ordering| match (values, value) {
        ([bound], Some(value)) => match (number(value), number(bound)) {
            (Some(value), Some(bound)) => value.cmp(&bound) == ordering,
            _ => false,
        },
        _ => false,
    };
    match requirement.operator.as_str() {
        "In" => !values.is_empty() && value.is_some_and(|v| values.contains(v)),
        "NotIn" => !values.is_empty() && value.is_none_or(|v| !values.contains(v)),
        "Exists" => values.is_empty() && value.is_some(),
        "DoesNotExist" => values.is_empty() && value.is_none(),
        "Gt" => compare(std::cmp::Ordering::Greater),
        "Lt" => compare(std::cmp::Ordering::Less),
        _ => false,
    }
}

/// A node field requirement: `metadata.name`, In or NotIn, exactly one value.
fn field_requirement(requirement: &NodeSelectorRequirement, name: &str) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    if requirement.key != OBJECT_NAME_FIELD || values.len() != 1 {
        return false;
    }
    match requirement.operator.as_str() {
        "In" => values[0] == name,
        "NotIn" => values[0] != name,
        _ => false,
    }
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes the one
/// term `metadata.name In [node]`, other affinities kept (the controller already checked
/// the template's own terms).
pub fn pin_to_node(affinity: Option<Affinity>, node_name: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: OBJECT_NAME_FIELD.to_owned(),
                operator: "In".to_owned(),
                values: Some(vec![node_name.to_owned()]),
            }]),
            match_expressions: None,
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    match node_affinity
        .required_during_scheduling_ignored_during_execution
        .as_mut()
    {
        Some(required) => required.node_selector_terms = selector.node_selector_terms,
        None => node_affinity.required_during_scheduling_ignored_during_execution = Some(selector),
    }
    affinity
}

/// `GetTargetNodeName`: the node a pod is bound to, else the one its `metadata.name In`
/// field term names; `None` when neither says.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name.to_owned());
    }
    let required = spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    let fields = required
        .node_selector_terms
        .iter()
        .flat_map(|term| term.match_fields.iter().flatten());
    for field in fields {
        if field.key == OBJECT_NAME_FIELD && field.operator == "In" {
            let values = field.values.as_deref().unwrap_or_default();
            return match values {
                [name] => Some(name.clone()),
                _ => None,
            };
        }
    }
    None
}

#[cfg(test)]
mod tests;
