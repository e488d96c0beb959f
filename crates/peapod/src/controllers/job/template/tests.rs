use serde_json::json;

use super::*;
use crate::controllers::job::fixtures::{build_pod, indexed, job};

#[test]
fn a_pod_carries_the_finalizer_and_the_controller_reference() {
    let pi = job(json!({}));
    let template = sync_template(&pi);
    let pod = pod_for(&pi, &template, None, None).unwrap();
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-"));
    assert_eq!(
        pod.metadata.finalizers,
        Some(vec![TRACKING_FINALIZER.to_owned()])
    );
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.api_version.as_str()),
        ("Job", "batch/v1")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    let env = &pod.spec.as_ref().unwrap().containers[0].env;
    assert_eq!(*env, None);
    assert_eq!(
        sync_template(&pi)
            .metadata
            .unwrap()
            .finalizers
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_indexed_pod_knows_its_index() {
    let pi = indexed(3, json!({}));
    let template = sync_template(&pi);
    let pod = pod_for(&pi, &template, Some(2), None).unwrap();
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
    assert_eq!(
        pod.metadata.annotations.as_ref().unwrap()[COMPLETION_INDEX],
        "2"
    );
    assert_eq!(pod.metadata.labels.as_ref().unwrap()[COMPLETION_INDEX], "2");
    let spec = pod.spec.unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
    let env = spec.containers[0].env.clone().unwrap();
    assert_eq!(
        serde_json::to_value(&env).unwrap(),
        json!([{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}}])
    );
    assert!(!pod
        .metadata
        .annotations
        .unwrap()
        .contains_key(INDEX_FAILURE_COUNT));
}

#[test]
fn a_replacement_within_an_index_carries_its_failure_count() {
    let pi = indexed(3, json!({"backoffLimitPerIndex": 2}));
    let template = sync_template(&pi);
    let first = pod_for(&pi, &template, Some(0), None).unwrap();
    assert_eq!(
        first.metadata.annotations.unwrap()[INDEX_FAILURE_COUNT],
        "0"
    );
    let failed = build_pod()
        .index("0")
        .index_failure_count("1")
        .phase("Failed")
        .pod();
    let second = pod_for(&pi, &template, Some(0), Some(&failed)).unwrap();
    assert_eq!(
        second.metadata.annotations.unwrap()[INDEX_FAILURE_COUNT],
        "2"
    );
}

#[test]
fn a_container_setting_the_index_variable_keeps_its_own() {
    let mut pi = indexed(1, json!({}));
    let containers = &mut pi
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers;
    containers[0].env = Some(vec![EnvVar {
        name: COMPLETION_INDEX_ENV.into(),
        value: Some("mine".into()),
        value_from: None,
    }]);
    let template = sync_template(&pi);
    let env = template.spec.unwrap().containers[0].env.clone().unwrap();
    assert_eq!(env.len(), 1);
    assert_eq!(env[0].value.as_deref(), Some("mine"));
}
