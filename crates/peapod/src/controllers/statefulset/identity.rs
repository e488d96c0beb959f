//! A set's pods and claims by ordinal, as kube's stateful_set_utils.go names and builds them:
//! pod `<set>-<ordinal>` with hostname = pod name and subdomain = serviceName, the
//! `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
//! `controller-revision-hash` labels, and per volumeClaimTemplate a claim
//! `<template>-<set>-<ordinal>` (the selector's labels added) mounted as the template's volume.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};

use crate::controllers::daemonset::history::REVISION_HASH_LABEL;
use crate::controllers::ownership;
use crate::controllers::replicaset::pod_template::pod_from_template;

/// `apps.StatefulSetPodNameLabel`.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// `apps.PodIndexLabel`.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or_default()
}

/// `getPodName`.
pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set_name(set))
}

/// `getParentNameAndOrdinal`: the ordinal of a pod named `<set>-<n>` of this set.
pub fn ordinal_of(set: &StatefulSet, pod: &Pod) -> Option<i32> {
    let name = pod.metadata.name.as_deref()?;
    let (parent, ordinal) = name.rsplit_once('-')?;
    let digits = !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit());
    (parent == set_name(set) && digits)
        .then(|| ordinal.parse().ok())
        .flatten()
}

/// `getStartOrdinal` and `getEndOrdinal` + 1: the ordinals the set should have.
pub fn ordinal_range(set: &StatefulSet) -> std::ops::Range<i32> {
    let spec = set.spec.as_ref();
    let start = spec
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0);
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    start..start + replicas
}

/// `getPersistentVolumeClaimName`.
pub fn claim_name(set: &StatefulSet, template: &str, ordinal: i32) -> String {
    format!("{template}-{}-{ordinal}", set_name(set))
}

/// `getPersistentVolumeClaims`: the claims of the pod at `ordinal`, by template name.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<(String, PersistentVolumeClaim)> {
    let spec = set.spec.clone().unwrap_or_default();
    let match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    let templates = spec.volume_claim_templates.unwrap_or_default();
    templates
        .into_iter()
        .map(|mut claim| {
            let template = claim.metadata.name.clone().unwrap_or_default();
            claim.metadata.name = Some(claim_name(set, &template, ordinal));
            claim.metadata.namespace = set.metadata.namespace.clone();
            let labels = claim.metadata.labels.get_or_insert_with(Default::default);
            labels.extend(match_labels.clone());
            claim.status = None;
            (template, claim)
        })
        .collect()
}

/// `newVersionedStatefulSetPod`: the pod at `ordinal` from `template` at revision `hash`.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, hash: &str) -> Pod {
    let name = pod_name(set, ordinal);
    let mut pod = pod_from_template(
        template,
        set_name(set),
        Some(ownership::controller_ref(set)),
    );
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = set.metadata.namespace.clone();
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.to_owned(), name.clone());
    labels.insert(POD_INDEX_LABEL.to_owned(), ordinal.to_string());
    labels.insert(REVISION_HASH_LABEL.to_owned(), hash.to_owned());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    let service = set.spec.as_ref().and_then(|s| s.service_name.clone());
    spec.subdomain = service.filter(|s| !s.is_empty());
    update_storage(set, &mut pod, ordinal);
    pod
}

/// `updateStorage`: each claim template mounted through its claim, replacing a template
/// volume of the same name.
fn update_storage(set: &StatefulSet, pod: &mut Pod, ordinal: i32) {
    let claims = claims_for(set, ordinal);
    if claims.is_empty() {
        return;
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(template, claim)| Volume {
            name: template.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.metadata.name.clone().unwrap_or_default(),
                read_only: Some(false),
            }),
            ..Volume::default()
        })
        .collect();
    let kept = spec.volumes.take().unwrap_or_default().into_iter();
    volumes.extend(kept.filter(|v| !claims.iter().any(|(t, _)| *t == v.name)));
    spec.volumes = Some(volumes);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn web() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {
                "replicas": 2, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                             "spec": {"containers": [{"name": "c", "image": "i"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"]}}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_has_its_ordinal_identity_and_claim() {
        let set = web();
        let template = set.spec.clone().unwrap().template;
        let pod = new_pod(&set, &template, 1, "abc");
        let value = serde_json::to_value(&pod).unwrap();
        assert_eq!(value["metadata"]["name"], "web-1");
        assert_eq!(
            value["metadata"]["labels"],
            json!({"app": "nginx", "statefulset.kubernetes.io/pod-name": "web-1",
                   "apps.kubernetes.io/pod-index": "1", "controller-revision-hash": "abc"})
        );
        assert_eq!(value["spec"]["hostname"], "web-1");
        assert_eq!(value["spec"]["subdomain"], "nginx");
        assert_eq!(
            value["spec"]["volumes"],
            json!([{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1", "readOnly": false}}])
        );
        assert_eq!(
            value["metadata"]["ownerReferences"][0]["kind"],
            "StatefulSet"
        );
    }

    #[test]
    fn claims_carry_the_selector_labels() {
        let claims = claims_for(&web(), 0);
        let claim = &claims[0].1;
        assert_eq!(claim.metadata.name.as_deref(), Some("www-web-0"));
        assert_eq!(claim.metadata.labels.as_ref().unwrap()["app"], "nginx");
    }

    #[test]
    fn ordinals_are_read_from_names_of_this_set_only() {
        let set = web();
        let pod = |name: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
        };
        assert_eq!(ordinal_of(&set, &pod("web-3")), Some(3));
        assert_eq!(ordinal_of(&set, &pod("web-x")), None);
        assert_eq!(ordinal_of(&set, &pod("webby-1")), None);
        let mut started = set.clone();
        started.spec.as_mut().unwrap().ordinals =
            serde_json::from_value(json!({"start": 5})).unwrap();
        assert_eq!(ordinal_range(&started), 5..7);
    }
}
