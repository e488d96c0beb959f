//! kube-apiserver's `mutatePodAffinity` on pod creation: each pod (anti-)affinity term's
//! `matchLabelKeys` and `mismatchLabelKeys` become `key In (value)` / `key NotIn (value)`
//! requirements of its labelSelector, the values taken from the pod's own labels, so the
//! scheduler reads one selector (a term without a selector matches nothing and stays so).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

pub fn merge_into_selectors(pod: &mut Pod) {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let Some(affinity) = pod.spec.as_mut().and_then(|s| s.affinity.as_mut()) else {
        return;
    };
    if let Some(affinity) = affinity.pod_affinity.as_mut() {
        let required = &mut affinity.required_during_scheduling_ignored_during_execution;
        let preferred = &mut affinity.preferred_during_scheduling_ignored_during_execution;
        merge_terms(required, preferred, &labels);
    }
    if let Some(affinity) = affinity.pod_anti_affinity.as_mut() {
        let required = &mut affinity.required_during_scheduling_ignored_during_execution;
        let preferred = &mut affinity.preferred_during_scheduling_ignored_during_execution;
        merge_terms(required, preferred, &labels);
    }
}

fn merge_terms(
    required: &mut Option<Vec<PodAffinityTerm>>,
    preferred: &mut Option<Vec<WeightedPodAffinityTerm>>,
    labels: &BTreeMap<String, String>,
) {
    let preferred = preferred
        .iter_mut()
        .flatten()
        .map(|w| &mut w.pod_affinity_term);
    required
        .iter_mut()
        .flatten()
        .chain(preferred)
        .for_each(|term| merge(term, labels));
}

fn merge(term: &mut PodAffinityTerm, labels: &BTreeMap<String, String>) {
    let Some(selector) = term.label_selector.as_mut() else {
        return;
    };
    let keys = [
        (term.match_label_keys.iter().flatten(), "In"),
        (term.mismatch_label_keys.iter().flatten(), "NotIn"),
    ];
    for (keys, operator) in keys {
        for key in keys {
            if let Some(value) = labels.get(key) {
                selector
                    .match_expressions
                    .get_or_insert_with(Vec::new)
                    .push(LabelSelectorRequirement {
                        key: key.clone(),
                        operator: operator.into(),
                        values: Some(vec![value.clone()]),
                    });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_keys_become_requirements_with_the_pod_s_values() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"app": "web", "rev": "2"}},
            "spec": {"containers": [{"name": "c"}], "affinity": {
                "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "web"}},
                     "matchLabelKeys": ["rev", "absent"]},
                    {"topologyKey": "zone", "matchLabelKeys": ["rev"]}]},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "podAffinityTerm": {"topologyKey": "zone",
                     "labelSelector": {}, "mismatchLabelKeys": ["app"]}}]}}},
        }))
        .unwrap();
        merge_into_selectors(&mut pod);
        let affinity = serde_json::to_value(&pod.spec.unwrap().affinity).unwrap();
        let required = &affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        assert_eq!(
            required[0]["labelSelector"],
            json!({"matchLabels": {"app": "web"},
                   "matchExpressions": [{"key": "rev", "operator": "In", "values": ["2"]}]})
        );
        assert!(required[1].get("labelSelector").is_none());
        assert_eq!(
            affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
                ["podAffinityTerm"]["labelSelector"],
            json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]})
        );
    }
}
