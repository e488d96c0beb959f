//! kube's TestSetDefaultStatefulSet, TestValidateStatefulSet, TestValidateStatefulSetUpdate,
//! TestValidateStatefulSetStatus and the printer's TestPrintStatefulSet, in part.

use k8s_openapi::api::apps::v1::StatefulSet;
use peapod_apiserver::registry::KindStrategy;
use serde_json::{json, Value};

use super::validation::SPEC_FIELDS_FORBIDDEN;
use super::StatefulSetStrategy;

fn stateful_set(spec: Value) -> StatefulSet {
    let mut sts: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "abc", "namespace": "default"},
        "spec": spec,
    }))
    .unwrap();
    StatefulSetStrategy.default(&mut sts);
    sts
}

fn valid_spec() -> Value {
    json!({
        "selector": {"matchLabels": {"a": "b"}},
        "serviceName": "abc",
        "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "abc", "image": "image",
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}
        },
        "volumeClaimTemplates": [{"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    })
}

fn with(pointer: &str, value: Value) -> Value {
    let mut spec = valid_spec();
    let (parent, field) = pointer.rsplit_once('/').unwrap();
    spec.pointer_mut(parent).unwrap()[field] = value;
    spec
}

fn errors(sts: &StatefulSet) -> Vec<String> {
    let errors = StatefulSetStrategy.validate(sts);
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn an_empty_spec_gets_apps_v1_defaults() {
    let value = serde_json::to_value(stateful_set(json!({}))).unwrap();
    let spec = &value["spec"];
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
}

#[test]
fn on_delete_gets_no_rolling_update_and_claim_templates_their_defaults() {
    let sts = stateful_set(with("/updateStrategy", json!({"type": "OnDelete"})));
    let value = serde_json::to_value(&sts).unwrap();
    assert_eq!(value["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    let claim = &value["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
}

#[test]
fn a_valid_set_with_mounts_of_its_claim_templates_passes() {
    assert_eq!(errors(&stateful_set(valid_spec())), Vec::<String>::new());
}

#[test]
fn invalid_specs_get_kubes_messages() {
    let cases = [
        (with("/selector", json!({"matchLabels": {"a": "c"}})),
            "spec.template.metadata.labels: Invalid value: {\"a\":\"b\"}: `selector` does not match template `labels`"),
        (with("/replicas", json!(-1)), "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        (with("/podManagementPolicy", json!("Sometimes")),
            "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'"),
        (with("/updateStrategy", json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}})),
            "spec.updateStrategy.rollingUpdate: Invalid value: {\"partition\":1}: only allowed for updateStrategy 'RollingUpdate'"),
        (with("/updateStrategy", json!({"type": "RollingUpdate", "rollingUpdate": {"partition": -1}})),
            "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0"),
        (with("/persistentVolumeClaimRetentionPolicy", json!({"whenDeleted": "Keep", "whenScaled": "Retain"})),
            "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Delete\", \"Retain\""),
        (with("/ordinals", json!({"start": -2})), "spec.ordinals.start: Invalid value: -2: must be greater than or equal to 0"),
        (with("/template/spec/restartPolicy", json!("Never")),
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""),
    ];
    for (spec, expected) in cases {
        let got = errors(&stateful_set(spec));
        assert!(
            got.contains(&expected.to_owned()),
            "{expected}\n got {got:?}"
        );
    }
}

#[test]
fn a_name_that_is_no_dns_label_is_refused() {
    let mut sts = stateful_set(valid_spec());
    sts.metadata.name = Some("a.b".to_owned());
    let got = errors(&sts);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("metadata.name: Invalid value: \"a.b\""));
}

#[test]
fn only_kubes_mutable_fields_may_change() {
    let old = stateful_set(valid_spec());
    let mut new = old.clone();
    let spec = new.spec.as_mut().unwrap();
    spec.replicas = Some(3);
    spec.min_ready_seconds = Some(5);
    spec.template.spec.as_mut().unwrap().containers[0].image = Some("other".to_owned());
    assert!(StatefulSetStrategy.validate_update(&new, &old).is_empty());
    new.spec.as_mut().unwrap().service_name = Some("other".to_owned());
    let got: Vec<String> = StatefulSetStrategy
        .validate_update(&new, &old)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        vec![format!("spec: Forbidden: {SPEC_FIELDS_FORBIDDEN}")]
    );
}

#[test]
fn status_counts_are_bounded_by_replicas() {
    let old = stateful_set(valid_spec());
    let mut new = old.clone();
    new.status =
        serde_json::from_value(json!({"replicas": 1, "readyReplicas": 2, "availableReplicas": 1}))
            .unwrap();
    let got: Vec<String> = StatefulSetStrategy
        .validate_update(&new, &old)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        vec!["status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"]
    );
}

#[test]
fn the_table_shows_ready_of_desired() {
    let mut sts = stateful_set(valid_spec());
    sts.status = serde_json::from_value(json!({"replicas": 1, "readyReplicas": 1})).unwrap();
    let cells = StatefulSetStrategy.cells(&sts);
    assert_eq!(cells[1], json!("1/1"));
    assert_eq!(cells[3], json!("abc"));
    assert_eq!(cells[4], json!("image"));
    let names: Vec<String> = StatefulSetStrategy
        .columns()
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(names, ["Name", "Ready", "Age", "Containers", "Images"]);
}
