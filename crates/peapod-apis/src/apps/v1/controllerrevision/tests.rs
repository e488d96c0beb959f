//! kube's TestValidateControllerRevision and TestValidateControllerRevisionUpdate, and the
//! printer's TestPrintControllerRevision, ported.

use k8s_openapi::api::apps::v1::ControllerRevision;
use peapod_apiserver::registry::KindStrategy;
use serde_json::{json, Value};

use super::ControllerRevisionStrategy;

fn revision(value: Value) -> ControllerRevision {
    let mut object = json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "validname", "namespace": "validns", "resourceVersion": "1"},
        "data": {"spec": {"template": {"$patch": "replace"}}},
        "revision": 0,
    });
    for (key, value) in value.as_object().unwrap() {
        object[key] = value.clone();
    }
    serde_json::from_value(object).unwrap()
}

fn messages(errors: Vec<peapod_api::validation::FieldError>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn valid_revisions_pass_and_bad_ones_name_the_field() {
    let strategy = ControllerRevisionStrategy;
    assert!(strategy.validate(&revision(json!({}))).is_empty());
    assert_eq!(
        messages(strategy.validate(&revision(json!({"data": null})))),
        ["data: Required value: data is mandatory"]
    );
    assert_eq!(
        messages(strategy.validate(&revision(json!({"revision": -1})))),
        ["revision: Invalid value: -1: must be greater than or equal to 0"]
    );
    let bad_name = revision(
        json!({"metadata": {"name": "NoUppercaseOrSpecialCharsLike=Equals", "namespace": "validns"}}),
    );
    assert_eq!(strategy.validate(&bad_name).len(), 1);
    let no_namespace = revision(json!({"metadata": {"name": "validname"}}));
    assert_eq!(strategy.validate(&no_namespace).len(), 1);
}

#[test]
fn updates_may_move_the_revision_but_not_the_data() {
    let strategy = ControllerRevisionStrategy;
    let old = revision(json!({"revision": 1}));
    let renumbered = revision(json!({"revision": 2}));
    assert!(strategy.validate_update(&renumbered, &old).is_empty());
    let changed = revision(json!({"data": {"spec": {"template": {"metadata": {}}}}}));
    let errors = messages(strategy.validate_update(&changed, &old));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("data: Invalid value"), "{errors:?}");
    assert!(errors[0].ends_with("field is immutable"), "{errors:?}");
}

#[test]
fn the_table_names_the_controller_with_its_kind_and_group() {
    let strategy = ControllerRevisionStrategy;
    let mut owned = revision(json!({"revision": 3}));
    owned.metadata.owner_references = Some(vec![serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd",
        "uid": "u", "controller": true,
    }))
    .unwrap()]);
    let cells = strategy.cells(&owned);
    assert_eq!(cells[1], "daemonset.apps/fluentd");
    assert_eq!(cells[2], 3);
    assert_eq!(strategy.cells(&revision(json!({})))[1], "<none>");
    let columns: Vec<&str> = strategy.columns().iter().map(|c| c.name).collect();
    assert_eq!(columns, ["Name", "Controller", "Revision", "Age"]);
}
