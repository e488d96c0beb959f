//! kube's TestSetDefaultDaemonSetSpec, TestValidateDaemonSet, TestValidateDaemonSetUpdate,
//! TestValidateDaemonSetStatusUpdate, the strategy's TestDaemonsetDefaultGarbageCollection
//! neighbours (generations) and the printer's TestPrintDaemonSet, ported.

use k8s_openapi::api::apps::v1::DaemonSet;
use peapod_apiserver::registry::KindStrategy;
use serde_json::{json, Value};

use super::{DaemonSetStrategy, TEMPLATE_GENERATION};

/// A DaemonSet named `name` in `default` from `spec`, defaulted as the API server does.
fn daemon_set(spec: Value) -> DaemonSet {
    let mut ds: DaemonSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "abc", "namespace": "default"},
        "spec": spec,
    }))
    .unwrap();
    DaemonSetStrategy.default(&mut ds);
    ds
}

/// kube's validSelector and validPodTemplate.
fn valid_spec() -> Value {
    json!({
        "selector": {"matchLabels": {"a": "b"}},
        "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                     "containers": [{"name": "abc", "image": "image", "imagePullPolicy": "IfNotPresent",
                                     "terminationMessagePolicy": "File"}]}
        }
    })
}

fn valid_with(pointer: &str, value: Value) -> Value {
    let mut spec = valid_spec();
    let (parent, field) = pointer.rsplit_once('/').unwrap();
    spec.pointer_mut(parent).unwrap()[field] = value;
    spec
}

fn errors(ds: &DaemonSet) -> Vec<String> {
    messages(DaemonSetStrategy.validate(ds))
}

fn messages(errors: Vec<peapod_api::validation::FieldError>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn an_empty_spec_gets_apps_v1_defaults() {
    let value = serde_json::to_value(daemon_set(json!({}))).unwrap();
    let spec = &value["spec"];
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
    let on_delete =
        daemon_set(json!({"updateStrategy": {"type": "OnDelete"}, "revisionHistoryLimit": 3}));
    let value = serde_json::to_value(on_delete).unwrap();
    assert_eq!(value["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    assert_eq!(value["spec"]["revisionHistoryLimit"], 3);
    assert!(DaemonSetStrategy.tracks_generation());
}

#[test]
fn valid_daemon_sets_pass() {
    assert_eq!(errors(&daemon_set(valid_spec())), Vec::<String>::new());
    let on_delete = valid_with("/selector", json!({"matchLabels": {"a": "b"}}));
    let mut on_delete = on_delete;
    on_delete["updateStrategy"] = json!({"type": "OnDelete"});
    assert_eq!(errors(&daemon_set(on_delete)), Vec::<String>::new());
    let mut surge = valid_spec();
    surge["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"}});
    assert_eq!(errors(&daemon_set(surge)), Vec::<String>::new());
}

#[test]
fn invalid_specs_fail_with_kube_messages() {
    let cases = [
        (
            valid_with("/template/metadata/labels", json!({"a": "c"})),
            "spec.template.metadata.labels: Invalid value: {\"a\":\"c\"}: `selector` does not match template `labels`",
        ),
        (
            valid_with("/selector", json!({"matchLabels": {}})),
            "spec.selector: Invalid value: {\"matchLabels\":{}}: empty selector is invalid for daemonset",
        ),
        (
            valid_with("/template/spec/restartPolicy", json!("OnFailure")),
            "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
        ),
        (
            valid_with("/template/spec/activeDeadlineSeconds", json!(5)),
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported",
        ),
    ];
    for (spec, expected) in cases {
        let found = errors(&daemon_set(spec));
        assert!(found.iter().any(|e| e == expected), "{expected}\n{found:?}");
    }
    let mut negative = valid_spec();
    negative["minReadySeconds"] = json!(-1);
    negative["revisionHistoryLimit"] = json!(-1);
    assert_eq!(
        errors(&daemon_set(negative)),
        [
            "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
            "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
        ]
    );
}

#[test]
fn update_strategies_are_checked_as_kube_does() {
    let with_strategy = |strategy: Value| {
        let mut spec = valid_spec();
        spec["updateStrategy"] = strategy;
        errors(&daemon_set(spec))
    };
    assert_eq!(
        with_strategy(json!({"type": "Recreate"})),
        ["spec.updateStrategy: Unsupported value: {\"type\":\"Recreate\"}: supported values: \"RollingUpdate\", \"OnDelete\""]
    );
    assert_eq!(
        with_strategy(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})),
        ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]
    );
    assert_eq!(
        with_strategy(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}})),
        ["spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: may not be set when maxUnavailable is non-zero"]
    );
    assert_eq!(
        with_strategy(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%", "maxSurge": 0}})),
        ["spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%"]
    );
    assert_eq!(
        with_strategy(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": -1, "maxSurge": 0}})),
        ["spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"]
    );
}

/// A stored DaemonSet as the server keeps it: created, with a resource version.
fn stored(spec: Value) -> DaemonSet {
    let mut ds = daemon_set(spec);
    ds.metadata.resource_version = Some("1".into());
    ds.metadata.uid = Some("uid".into());
    DaemonSetStrategy.prepare_for_create(&mut ds);
    ds
}

fn annotation(ds: &DaemonSet) -> Option<&str> {
    let annotations = ds.metadata.annotations.as_ref()?;
    annotations.get(TEMPLATE_GENERATION).map(String::as_str)
}

#[test]
fn template_changes_bump_the_template_generation_and_nothing_else_does() {
    let old = stored(valid_spec());
    assert_eq!(annotation(&old), Some("1"));
    let mut new = old.clone();
    new.spec.as_mut().unwrap().min_ready_seconds = Some(5);
    new.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(TEMPLATE_GENERATION.into(), "7".into());
    DaemonSetStrategy.prepare_for_update(&mut new, &old);
    assert_eq!(annotation(&new), Some("1"));
    let mut changed = old.clone();
    let template = &mut changed.spec.as_mut().unwrap().template;
    template.spec.as_mut().unwrap().containers[0].image = Some("other".into());
    DaemonSetStrategy.prepare_for_update(&mut changed, &old);
    assert_eq!(annotation(&changed), Some("2"));
    assert!(DaemonSetStrategy.validate_update(&changed, &old).is_empty());
}

#[test]
fn updates_keep_the_selector_and_the_collision_count() {
    let old = stored(valid_spec());
    let mut new = stored(valid_with(
        "/selector",
        json!({"matchLabels": {"a": "b", "c": "d"}}),
    ));
    new.spec
        .as_mut()
        .unwrap()
        .template
        .metadata
        .as_mut()
        .unwrap()
        .labels = Some([("a".into(), "b".into()), ("c".into(), "d".into())].into());
    let found = messages(DaemonSetStrategy.validate_update(&new, &old));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("spec.selector: Invalid value"),
        "{found:?}"
    );
    let mut counted = old.clone();
    counted.status = Some(serde_json::from_value(json!({"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1, "numberReady": 1, "collisionCount": 2})).unwrap());
    let mut fewer = counted.clone();
    fewer.status.as_mut().unwrap().collision_count = Some(1);
    fewer.status.as_mut().unwrap().number_ready = -1;
    assert_eq!(
        messages(DaemonSetStrategy.validate_update(&fewer, &counted)),
        [
            "status.numberReady: Invalid value: -1: must be greater than or equal to 0",
            "status.collisionCount: Invalid value: 1: cannot be decremented",
        ]
    );
}

#[test]
fn the_table_shows_counts_and_the_node_selector() {
    let mut ds = daemon_set(valid_with(
        "/template/spec/nodeSelector",
        json!({"disk": "ssd", "arch": "amd64"}),
    ));
    ds.status = Some(serde_json::from_value(json!({"currentNumberScheduled": 2, "numberMisscheduled": 0, "desiredNumberScheduled": 3, "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1})).unwrap());
    let cells = DaemonSetStrategy.cells(&ds);
    assert_eq!(
        cells[1..7],
        [
            json!(3),
            json!(2),
            json!(1),
            json!(2),
            json!(1),
            json!("arch=amd64,disk=ssd")
        ]
    );
    assert_eq!(cells[8..], [json!("abc"), json!("image"), json!("a=b")]);
    let plain = DaemonSetStrategy.cells(&daemon_set(valid_spec()));
    assert_eq!(plain[6], "<none>");
    let names: Vec<&str> = DaemonSetStrategy.columns().iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
}
