//! The pod a ReplicaSet creates: kube's `GetPodFromTemplate` (the template's labels,
//! annotations, finalizers and spec, generateName `<name>-`, the controller reference) and
//! the checks `RealPodControl.createPods` makes before sending it.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::controllers::ownership;

/// The longest DNS-1123 subdomain, which a generateName must leave a pod name within.
const MAX_NAME_LENGTH: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unable to create pods, no labels")]
    NoLabels,
    #[error("unable to create pods, no template")]
    NoTemplate,
}

/// The pod to create for `rs`, checked as `createPods` checks it.
pub fn pod_for(rs: &ReplicaSet) -> Result<Pod, TemplateError> {
    let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
    let template = template.ok_or(TemplateError::NoTemplate)?;
    let name = rs.metadata.name.as_deref().unwrap_or_default();
    let pod = pod_from_template(template, name, Some(ownership::controller_ref(rs)));
    if pod.metadata.labels.is_none() {
        return Err(TemplateError::NoLabels);
    }
    Ok(pod)
}

/// `GetPodFromTemplate`: copies of the template's metadata and spec; nothing else of it
/// (name, namespace, ownerReferences) is carried over.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    owner_name: &str,
    controller_ref: Option<OwnerReference>,
) -> Pod {
    let metadata = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            labels: metadata.labels.filter(|l| !l.is_empty()),
            annotations: metadata.annotations.filter(|a| !a.is_empty()),
            finalizers: metadata.finalizers.filter(|f| !f.is_empty()),
            generate_name: Some(generate_name(owner_name)),
            owner_references: controller_ref.map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// `getPodsPrefix`: `<name>-`, or the bare name when the dash would make it too long.
fn generate_name(owner_name: &str) -> String {
    if owner_name.len() + 1 > MAX_NAME_LENGTH {
        return owner_name.to_owned();
    }
    format!("{owner_name}-")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;

    fn replica_set(labels: Option<BTreeMap<String, String>>) -> ReplicaSet {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = Some("frontend".into());
        rs.metadata.namespace = Some("default".into());
        rs.metadata.uid = Some("rs-uid".into());
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                name: Some("ignored".into()),
                namespace: Some("ignored".into()),
                labels,
                annotations: Some([("note".to_string(), "kept".to_string())].into()),
                finalizers: Some(vec!["example.com/hold".into()]),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "php-redis".into(),
                    image: Some("registry.k8s.io/gb-frontend:v5".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        };
        rs.spec = Some(ReplicaSetSpec {
            template: Some(template),
            ..ReplicaSetSpec::default()
        });
        rs
    }

    /// kube's `TestCreatePodsWithGenerateName` / `TestGetPodFromTemplate` checks.
    #[test]
    fn the_pod_carries_the_template_and_the_controller_reference() {
        let labels: BTreeMap<String, String> =
            [("tier".to_string(), "frontend".to_string())].into();
        let rs = replica_set(Some(labels.clone()));
        let pod = pod_for(&rs).unwrap();
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("frontend-"));
        assert_eq!(pod.metadata.name, None);
        assert_eq!(pod.metadata.namespace, None);
        assert_eq!(pod.metadata.labels, Some(labels));
        assert_eq!(pod.metadata.annotations.unwrap()["note"], "kept");
        assert_eq!(
            pod.metadata.finalizers,
            Some(vec!["example.com/hold".to_string()])
        );
        let owners = pod.metadata.owner_references.unwrap();
        assert_eq!(
            owners,
            [OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "frontend".into(),
                uid: "rs-uid".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        );
        let spec = rs.spec.unwrap().template.unwrap().spec;
        assert_eq!(pod.spec, spec);
    }

    #[test]
    fn a_template_without_labels_creates_nothing() {
        let refused = pod_for(&replica_set(None)).unwrap_err();
        assert_eq!(refused.to_string(), "unable to create pods, no labels");
        assert_eq!(
            pod_for(&replica_set(Some(BTreeMap::new()))),
            Err(TemplateError::NoLabels)
        );
        assert_eq!(
            pod_for(&ReplicaSet::default()),
            Err(TemplateError::NoTemplate)
        );
    }

    #[test]
    fn a_name_at_the_limit_is_its_own_prefix() {
        let long = "a".repeat(MAX_NAME_LENGTH);
        assert_eq!(generate_name(&long), long);
        let fits = "a".repeat(MAX_NAME_LENGTH - 1);
        assert_eq!(generate_name(&fits), format!("{fits}-"));
        let template = PodTemplateSpec::default();
        let orphan = pod_from_template(&template, "web", None);
        assert_eq!(orphan.metadata.owner_references, None);
        assert_eq!(orphan.metadata.labels, None);
    }
}
