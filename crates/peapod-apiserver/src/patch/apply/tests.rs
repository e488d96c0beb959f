//! structured-merge-diff's merge tests (`merge/{leaf,set,multiple_appliers,nested,key}_test.go`)
//! over a small schema, then the field manager over k8s-openapi's ConfigMap, Pod and Event.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use schemars::{Schema, SchemaGenerator};
use serde_json::{json, Value};

use super::managed::{self, Managers};
use super::path::{path_string, Pe};
use super::set::Set;
use super::typed::Walker;
use super::types::TypeSchema;
use super::update::{Conflicts, Updater};
use super::*;

// ----- the SMD fixture -------------------------------------------------------------------------

fn test_schema() -> TypeSchema {
    let element = json!({"type": "object", "properties": {
        "name": {"type": "string"}, "value": {"type": "number"}}});
    let definitions = json!({
        "root": {"type": "object", "properties": {
            "numeric": {"type": "number"},
            "string": {"type": "string"},
            "bool": {"type": "boolean"},
            "list": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "keyed": {"type": "array", "items": {"$ref": "#/components/schemas/element"},
                      "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
            "atomic": {"type": "array", "items": {"type": "string"}},
            "struct": {"$ref": "#/components/schemas/element"},
            "selector": {"$ref": "#/components/schemas/element", "x-kubernetes-map-type": "atomic"},
            "mapOfMaps": {"type": "object", "additionalProperties":
                {"type": "object", "additionalProperties": {"type": "string"}}},
        }},
        "element": element,
    });
    let Value::Object(definitions) = definitions else {
        unreachable!()
    };
    TypeSchema::from_json(
        "Widget",
        json!({"$ref": "#/components/schemas/root"}),
        definitions,
    )
}

/// SMD's `fixture.State`: the live object and the managers after each operation.
struct State<'s> {
    updater: Updater<'s>,
    live: Value,
    managers: Managers,
}

impl<'s> State<'s> {
    fn new(schema: &'s TypeSchema) -> State<'s> {
        State {
            updater: Updater {
                walker: Walker::new(schema),
                ignored: Set::new(),
            },
            live: json!({}),
            managers: Managers::new(),
        }
    }

    fn apply(&mut self, manager: &str, config: Value) -> Result<(), Conflicts> {
        self.apply_with(manager, config, false)
    }

    fn force_apply(&mut self, manager: &str, config: Value) {
        self.apply_with(manager, config, true)
            .expect("a forced apply");
    }

    fn apply_with(&mut self, manager: &str, config: Value, force: bool) -> Result<(), Conflicts> {
        let mut managers = self.managers.clone();
        let new = self
            .updater
            .apply(&self.live, &config, "v1", &mut managers, manager, force)?;
        self.managers = managers;
        if let Some(new) = new {
            self.live = new;
        }
        Ok(())
    }

    fn update(&mut self, manager: &str, object: Value) {
        self.updater
            .update_managers(&self.live, &object, "v1", &mut self.managers, manager);
        self.live = object;
    }

    /// Each manager's paths, as `.a.b` strings.
    fn owned(&self) -> Vec<(String, Vec<String>)> {
        self.managers
            .iter()
            .map(|(m, v)| {
                (
                    m.clone(),
                    v.set.paths().iter().map(|p| path_string(p)).collect(),
                )
            })
            .collect()
    }
}

fn owned(expected: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = expected
        .iter()
        .map(|(m, paths)| {
            let mut paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            paths.sort();
            (m.to_string(), paths)
        })
        .collect();
    out.sort();
    out
}

fn sorted(mut owned: Vec<(String, Vec<String>)>) -> Vec<(String, Vec<String>)> {
    for (_, paths) in &mut owned {
        paths.sort();
    }
    owned
}

fn conflict(manager: &str, path: &str) -> (String, String) {
    (manager.to_owned(), path.to_owned())
}

fn conflicts_of(result: Result<(), Conflicts>) -> Vec<(String, String)> {
    let Err(conflicts) = result else {
        panic!("expected conflicts")
    };
    conflicts
        .0
        .iter()
        .map(|(m, p)| (m.clone(), path_string(p)))
        .collect()
}

// ----- leaf_test.go ----------------------------------------------------------------------------

#[test]
fn leaf_apply_twice() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply("default", json!({"numeric": 1, "string": "string"}))
        .unwrap();
    s.apply(
        "default",
        json!({"numeric": 2, "string": "string", "bool": false}),
    )
    .unwrap();
    assert_eq!(
        s.live,
        json!({"numeric": 2, "string": "string", "bool": false})
    );
    assert_eq!(
        sorted(s.owned()),
        owned(&[("default", &[".numeric", ".string", ".bool"])])
    );
}

#[test]
fn leaf_apply_update_apply_no_conflict() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply("default", json!({"numeric": 1, "string": "string"}))
        .unwrap();
    s.update(
        "controller",
        json!({"numeric": 1, "string": "string", "bool": true}),
    );
    s.apply("default", json!({"numeric": 2, "string": "string"}))
        .unwrap();
    assert_eq!(
        s.live,
        json!({"numeric": 2, "string": "string", "bool": true})
    );
    assert_eq!(
        sorted(s.owned()),
        owned(&[
            ("default", &[".numeric", ".string"]),
            ("controller", &[".bool"])
        ])
    );
}

#[test]
fn leaf_apply_update_apply_with_conflict_then_force() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply("default", json!({"numeric": 1, "string": "string"}))
        .unwrap();
    s.update(
        "controller",
        json!({"numeric": 1, "string": "controller string", "bool": true}),
    );
    let config = json!({"numeric": 2, "string": "user string"});
    assert_eq!(
        conflicts_of(s.apply("default", config.clone())),
        [conflict("controller", ".string")]
    );
    assert_eq!(s.live["string"], "controller string", "nothing written");
    s.force_apply("default", config);
    assert_eq!(
        s.live,
        json!({"numeric": 2, "string": "user string", "bool": true})
    );
    assert_eq!(
        sorted(s.owned()),
        owned(&[
            ("default", &[".numeric", ".string"]),
            ("controller", &[".bool"])
        ])
    );
}

#[test]
fn leaf_apply_twice_removes_what_is_no_longer_applied() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply(
        "default",
        json!({"numeric": 1, "string": "string", "bool": false}),
    )
    .unwrap();
    s.apply("default", json!({"string": "new string"})).unwrap();
    assert_eq!(s.live, json!({"string": "new string"}));
    assert_eq!(sorted(s.owned()), owned(&[("default", &[".string"])]));
}

#[test]
fn leaf_update_keeps_a_field_the_applier_omits() {
    // update_apply_omits: the controller's update takes the field, the applier's empty
    // configuration then removes nothing it no longer owns.
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply("default", json!({"numeric": 2})).unwrap();
    s.update("controller", json!({"numeric": 1}));
    s.apply("default", json!({})).unwrap();
    assert_eq!(s.live, json!({"numeric": 1}));
    assert_eq!(sorted(s.owned()), owned(&[("controller", &[".numeric"])]));
}

#[test]
fn leaf_update_takes_the_changed_field_and_apply_remove_empties_managers() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply("default", json!({"string": "string"})).unwrap();
    s.update("controller", json!({"string": "new string"}));
    assert_eq!(sorted(s.owned()), owned(&[("controller", &[".string"])]));

    let mut s = State::new(&schema);
    s.apply("default", json!({"string": "string"})).unwrap();
    s.apply("default", json!({})).unwrap();
    assert_eq!(s.live, json!({}));
    assert!(s.managers.is_empty());
}

// ----- set_test.go -----------------------------------------------------------------------------

#[test]
fn set_apply_update_apply_keeps_the_order_and_the_updaters_values() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply("default", json!({"list": ["a", "c"]})).unwrap();
    s.update("controller", json!({"list": ["a", "b", "c", "d"]}));
    s.apply("default", json!({"list": ["a", "aprime", "c", "cprime"]}))
        .unwrap();
    assert_eq!(
        s.live,
        json!({"list": ["a", "b", "aprime", "c", "d", "cprime"]})
    );
    assert_eq!(
        sorted(s.owned()),
        owned(&[
            (
                "default",
                &[
                    ".list[=\"a\"]",
                    ".list[=\"aprime\"]",
                    ".list[=\"c\"]",
                    ".list[=\"cprime\"]"
                ]
            ),
            ("controller", &[".list[=\"b\"]", ".list[=\"d\"]"]),
        ])
    );
}

#[test]
fn set_shared_ownership_of_an_equal_member() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply("default", json!({"list": ["a", "c"]})).unwrap();
    s.update("controller", json!({"list": ["a", "b", "c", "d"]}));
    s.apply("default", json!({"list": ["a", "b", "c"]}))
        .unwrap();
    assert_eq!(s.live, json!({"list": ["a", "b", "c", "d"]}));
    assert_eq!(
        sorted(s.owned()),
        owned(&[
            (
                "default",
                &[".list[=\"a\"]", ".list[=\"b\"]", ".list[=\"c\"]"]
            ),
            ("controller", &[".list[=\"b\"]", ".list[=\"d\"]"]),
        ])
    );
}

// ----- multiple_appliers_test.go (associative lists) ---------------------------------------------

#[test]
fn keyed_remove_one_keeps_the_other_appliers_entries() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply(
        "apply-one",
        json!({"keyed": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
    )
    .unwrap();
    s.apply(
        "apply-two",
        json!({"keyed": [{"name": "c"}, {"name": "d"}]}),
    )
    .unwrap();
    s.apply("apply-one", json!({"keyed": [{"name": "a"}]}))
        .unwrap();
    assert_eq!(
        s.live,
        json!({"keyed": [{"name": "a"}, {"name": "c"}, {"name": "d"}]})
    );
    assert_eq!(
        sorted(s.owned()),
        owned(&[
            (
                "apply-one",
                &[".keyed[name=\"a\"]", ".keyed[name=\"a\"].name"]
            ),
            (
                "apply-two",
                &[
                    ".keyed[name=\"c\"]",
                    ".keyed[name=\"c\"].name",
                    ".keyed[name=\"d\"]",
                    ".keyed[name=\"d\"].name"
                ]
            ),
        ])
    );
}

#[test]
fn keyed_same_value_is_shared_a_different_one_conflicts() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    let config = json!({"keyed": [{"name": "a", "value": 0}]});
    s.apply("apply-one", config.clone()).unwrap();
    s.apply("apply-two", config).unwrap();
    assert_eq!(s.managers.len(), 2);
    assert_eq!(s.managers["apply-one"].set, s.managers["apply-two"].set);

    let mut s = State::new(&schema);
    s.apply("apply-one", json!({"keyed": [{"name": "a", "value": 0}]}))
        .unwrap();
    let changed = s.apply("apply-two", json!({"keyed": [{"name": "a", "value": 1}]}));
    assert_eq!(
        conflicts_of(changed),
        [conflict("apply-one", ".keyed[name=\"a\"].value")]
    );
    assert_eq!(s.live, json!({"keyed": [{"name": "a", "value": 0}]}));
}

#[test]
fn keyed_removing_obsolete_applied_structs() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply("default", json!({"keyed": [{"name": "a", "value": 1}]}))
        .unwrap();
    s.apply("default", json!({"keyed": [{"name": "b", "value": 2}]}))
        .unwrap();
    assert_eq!(s.live, json!({"keyed": [{"name": "b", "value": 2}]}));
}

// ----- atomic lists and maps -------------------------------------------------------------------

#[test]
fn atomic_list_and_struct_are_owned_and_replaced_whole() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply(
        "default",
        json!({"atomic": ["a", "b"], "selector": {"name": "x", "value": 1}}),
    )
    .unwrap();
    assert_eq!(
        sorted(s.owned()),
        owned(&[("default", &[".atomic", ".selector"])])
    );
    s.update(
        "controller",
        json!({"atomic": ["a", "b", "c"], "selector": {"name": "x", "value": 1}}),
    );
    assert_eq!(
        sorted(s.owned()),
        owned(&[("default", &[".selector"]), ("controller", &[".atomic"])])
    );
    let changed = s.apply(
        "default",
        json!({"atomic": ["z"], "selector": {"name": "x"}}),
    );
    assert_eq!(conflicts_of(changed), [conflict("controller", ".atomic")]);
    s.force_apply(
        "default",
        json!({"atomic": ["z"], "selector": {"name": "x"}}),
    );
    assert_eq!(s.live, json!({"atomic": ["z"], "selector": {"name": "x"}}));
    assert_eq!(
        sorted(s.owned()),
        owned(&[("default", &[".atomic", ".selector"])])
    );
}

// ----- nested_test.go --------------------------------------------------------------------------

#[test]
fn nested_map_of_maps_change_key_and_value() {
    let schema = test_schema();
    let mut s = State::new(&schema);
    s.apply("default", json!({"mapOfMaps": {"a": {"b": "x", "c": "y"}}}))
        .unwrap();
    s.apply("default", json!({"mapOfMaps": {"b": {"a": "x", "c": "z"}}}))
        .unwrap();
    assert_eq!(s.live, json!({"mapOfMaps": {"b": {"a": "x", "c": "z"}}}));
    assert_eq!(
        sorted(s.owned()),
        owned(&[(
            "default",
            &[".mapOfMaps.b", ".mapOfMaps.b.a", ".mapOfMaps.b.c"]
        )])
    );
}

#[test]
fn nested_struct_remove_all_dangling_and_took_over() {
    let schema = test_schema();
    // struct_apply_remove_all
    let mut s = State::new(&schema);
    s.apply("default", json!({"struct": {"name": "a", "value": 1}}))
        .unwrap();
    s.apply("default", json!({})).unwrap();
    assert_eq!(s.live, json!({}));
    assert!(s.managers.is_empty());
    // struct_apply_remove_dangling
    let mut s = State::new(&schema);
    s.apply("default", json!({"struct": {"name": "a"}}))
        .unwrap();
    s.apply("default", json!({"struct": null})).unwrap();
    assert_eq!(s.live, json!({"struct": null}));
    assert_eq!(sorted(s.owned()), owned(&[("default", &[".struct"])]));
    // struct_apply_update_dict_null
    let mut s = State::new(&schema);
    s.apply("default", json!({"struct": {"name": "a"}}))
        .unwrap();
    s.update("controller", json!({"struct": {"name": "a", "value": 1}}));
    s.apply("default", json!({"struct": null})).unwrap();
    assert_eq!(s.live, json!({"struct": {"value": 1}}));
    // struct_apply_update_took_over
    let mut s = State::new(&schema);
    s.apply("default", json!({"struct": {"name": "a"}}))
        .unwrap();
    s.update("controller", json!({"struct": {"name": "b", "value": 1}}));
    s.apply("default", json!({"struct": null})).unwrap();
    assert_eq!(s.live, json!({"struct": {"name": "b", "value": 1}}));
}

// ----- field sets, FieldsV1, validation ---------------------------------------------------------

#[test]
fn fields_v1_round_trips_with_members_that_have_children() {
    let fields = json!({
        "f:data": {".": {}, "f:a": {}},
        "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}},
                   "f:list": {"v:\"x\"": {}}},
    });
    let set = Set::from_fields_v1(&fields).unwrap();
    assert!(set.has(&[Pe::field("data")]));
    assert!(set.has(&[
        Pe::field("spec"),
        Pe::field("containers"),
        Pe::Key(vec![("name".into(), json!("c"))]),
        Pe::field("image"),
    ]));
    assert!(!set.has(&[Pe::field("spec")]));
    assert_eq!(set.to_fields_v1(), fields);
    let paths: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
    assert_eq!(
        paths,
        [
            ".data",
            ".data.a",
            ".spec.containers[name=\"c\"]",
            ".spec.containers[name=\"c\"].image",
            ".spec.containers[name=\"c\"].name",
            ".spec.list[=\"x\"]",
        ]
    );
}

#[test]
fn validation_refuses_undeclared_fields_and_bad_entries() {
    let schema = test_schema();
    let walker = Walker::new(&schema);
    assert_eq!(
        walker.validate(&json!({"numeric": 1, "foo": 2, "struct": {"bar": 1}})),
        [
            ".foo: field not declared in schema",
            ".struct.bar: field not declared in schema"
        ]
    );
    assert_eq!(
        walker.validate(&json!({"keyed": [{"value": 1}, {"name": "a"}, {"name": "a"}]})),
        [
            ".keyed: element 0: associative list with keys has an element that omits all key \
             fields [\"name\"] (and doesn't have default values for any key fields)",
            ".keyed: duplicate entries for key [name=\"a\"]"
        ]
    );
    assert!(walker
        .validate(&json!({"mapOfMaps": {"any": {"thing": "x"}}}))
        .is_empty());
}

// ----- the field manager on Kubernetes kinds ------------------------------------------------------

fn configmap_schema(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<ConfigMap>()
}

fn pod_schema(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<Pod>()
}

fn event_schema(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<Event>()
}

fn configmaps() -> FieldManager {
    let schema = Arc::new(TypeSchema::new("ConfigMap", Some(configmap_schema)));
    FieldManager::with(schema, "", "v1", "ConfigMap", false, None)
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "cm", "namespace": "default"}, "data": data})
}

/// An object as the store gives it back (system metadata set).
fn stored(mut object: Value) -> Value {
    object["metadata"]["uid"] = json!("0b7c5a35-3c8f-4d5e-9f00-000000000001");
    object["metadata"]["resourceVersion"] = json!("7");
    object
}

fn entries(object: &Value) -> Vec<(String, String, Value)> {
    object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |n: &str| e[n].as_str().unwrap_or_default().to_owned();
            (text("manager"), text("operation"), e["fieldsV1"].clone())
        })
        .collect()
}

#[test]
fn a_create_records_an_update_entry_like_kube() {
    let manager = configmaps();
    let mut created = cm(json!({"a": "1"}));
    created["metadata"]["labels"] = json!({"app": "web"});
    manager.update(None, &mut created, "kubectl-create");
    let entry = &created["metadata"]["managedFields"][0];
    assert_eq!(entry["manager"], "kubectl-create");
    assert_eq!(entry["operation"], "Update");
    assert_eq!(entry["apiVersion"], "v1");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert!(entry["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}},
               "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );

    // An update by another manager takes what it changes; unchanged writes add nothing.
    let live = stored(created);
    let mut edited = live.clone();
    edited["data"]["a"] = json!("2");
    edited["data"]["b"] = json!("3");
    manager.update(Some(&live), &mut edited, "kubectl-edit");
    assert_eq!(
        entries(&edited)
            .iter()
            .map(|(m, _, f)| (m.as_str(), f.clone()))
            .collect::<Vec<_>>(),
        [
            (
                "kubectl-create",
                json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
            ),
            ("kubectl-edit", json!({"f:data": {"f:a": {}, "f:b": {}}})),
        ]
    );
    let live = stored(edited);
    let mut same = live.clone();
    manager.update(Some(&live), &mut same, "other");
    assert_eq!(
        same["metadata"]["managedFields"],
        live["metadata"]["managedFields"]
    );

    // `[{}]` clears them; an untracked object stays untracked.
    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    manager.update(Some(&live), &mut reset, "kubectl-edit");
    assert!(reset["metadata"].get("managedFields").is_none());
    let untracked = reset.clone();
    let mut again = untracked.clone();
    again["data"]["c"] = json!("4");
    manager.update(Some(&untracked), &mut again, "kubectl-edit");
    assert!(again["metadata"].get("managedFields").is_none());
}

#[test]
fn apply_creates_owns_removes_and_conflicts_with_kubes_words() {
    let manager = configmaps();
    let applied = manager
        .apply(None, &cm(json!({"a": "1", "b": "2"})), "kubectl", false)
        .unwrap();
    assert_eq!(applied["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(
        entries(&applied),
        [(
            "kubectl".to_owned(),
            "Apply".to_owned(),
            json!({"f:data": {"f:a": {}, "f:b": {}}})
        )]
    );
    assert!(applied["metadata"]["managedFields"][0]
        .get("subresource")
        .is_none());

    // Another manager changes `a` and adds `c`.
    let live = stored(applied);
    let mut edited = live.clone();
    edited["data"]["a"] = json!("changed");
    edited["data"]["c"] = json!("3");
    manager.update(Some(&live), &mut edited, "kubectl-client-side-apply");
    let live = stored(edited);

    // kubectl no longer applies `b` (removed), applies `a` unchanged... but `a` now differs.
    let err = manager
        .apply(Some(&live), &cm(json!({"a": "1"})), "kubectl", false)
        .unwrap_err();
    assert_eq!(err.code, StatusCode::CONFLICT);
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.a"
    );
    assert_eq!(
        err.details.unwrap()["causes"],
        json!([{"reason": "FieldManagerConflict",
                "message": "conflict with \"kubectl-client-side-apply\" using v1",
                "field": ".data.a"}])
    );

    let forced = manager
        .apply(Some(&live), &cm(json!({"a": "1"})), "kubectl", true)
        .unwrap();
    assert_eq!(forced["data"], json!({"a": "1", "c": "3"}));
    assert_eq!(
        entries(&forced)
            .iter()
            .map(|(m, o, f)| (m.as_str(), o.as_str(), f.clone()))
            .collect::<Vec<_>>(),
        [
            ("kubectl", "Apply", json!({"f:data": {"f:a": {}}})),
            (
                "kubectl-client-side-apply",
                "Update",
                json!({"f:data": {"f:c": {}}})
            ),
        ]
    );
}

#[test]
fn conflicts_with_several_managers_are_grouped() {
    let manager = configmaps();
    let live = stored(
        manager
            .apply(None, &cm(json!({"a": "1", "b": "1"})), "one", false)
            .unwrap(),
    );
    let live = stored(
        manager
            .apply(Some(&live), &cm(json!({"b": "1", "c": "1"})), "two", false)
            .unwrap(),
    );
    let err = manager
        .apply(
            Some(&live),
            &cm(json!({"a": "2", "b": "2", "c": "2"})),
            "three",
            false,
        )
        .unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 4 conflicts: conflicts with \"one\":\n- .data.a\n- .data.b\n\
         conflicts with \"two\":\n- .data.b\n- .data.c"
    );
}

#[test]
fn apply_refuses_what_kube_refuses() {
    let manager = configmaps();
    let mut unknown = cm(json!({"a": "1"}));
    unknown["spec"] = json!({"x": 1});
    let err = manager.apply(None, &unknown, "m", false).unwrap_err();
    assert_eq!(err.code, StatusCode::BAD_REQUEST);
    assert_eq!(
        err.message,
        "failed to create typed patch object (default/cm; /v1, Kind=ConfigMap): \
         .spec: field not declared in schema"
    );
    let mut wrong = cm(json!({}));
    wrong["kind"] = json!("Secret");
    assert_eq!(
        manager.apply(None, &wrong, "m", false).unwrap_err().message,
        "invalid object type: /v1, Kind=Secret"
    );
    let mut managed = cm(json!({}));
    managed["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        manager
            .apply(None, &managed, "m", false)
            .unwrap_err()
            .message,
        "metadata.managedFields must be nil"
    );
    let err = check_options("PatchOptions", Some(true), None, Some(false)).unwrap_err();
    assert_eq!(err.code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let err = check_options("PatchOptions", Some(false), Some("m"), Some(true)).unwrap_err();
    assert_eq!(
        err.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    assert!(check_options("CreateOptions", None, Some("kubectl-create"), None).is_ok());
}

#[test]
fn the_first_apply_to_an_untracked_object_meets_before_first_apply() {
    let manager = configmaps();
    let live = stored(cm(json!({"a": "1"})));
    let err = manager
        .apply(Some(&live), &cm(json!({"a": "2"})), "m", false)
        .unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.a"
    );
}

#[test]
fn kubectl_takes_over_what_its_last_applied_configuration_holds() {
    let manager = configmaps();
    // Client-side apply: a create with the annotation, by kubectl-client-side-apply.
    let mut created = cm(json!({"a": "1", "b": "2"}));
    let annotation = "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"1\",\"b\":\"2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"cm\",\"namespace\":\"default\"}}\n";
    created["metadata"]["annotations"] = json!({ LAST_APPLIED: annotation });
    manager.update(None, &mut created, "kubectl-client-side-apply");
    let live = stored(created);

    // `kubectl apply --server-side` changing `a` and dropping `b`: no conflict, as the
    // annotation shows client-side apply set `a` as the live object still holds it.
    let applied = manager
        .apply(Some(&live), &cm(json!({"a": "new"})), KUBECTL, false)
        .unwrap();
    assert_eq!(applied["data"], json!({"a": "new", "b": "2"}));
    let annotation = applied["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        annotation,
        "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"new\"},\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm\",\"namespace\":\"default\"}}\n"
    );
    // Any other manager conflicts.
    let err = manager
        .apply(Some(&live), &cm(json!({"a": "new"})), "other", false)
        .unwrap_err();
    assert!(err.message.contains(".data.a"), "{}", err.message);

    // kubectl's second apply (fieldManager kubectl-last-applied) shares the annotation.
    let live = stored(applied);
    let mut only = cm(Value::Null);
    only.as_object_mut().unwrap().remove("data");
    only["metadata"]["annotations"] = json!({ LAST_APPLIED: annotation });
    let saved = manager
        .apply(Some(&live), &only, "kubectl-last-applied", false)
        .unwrap();
    let owners: Vec<String> = entries(&saved)
        .into_iter()
        .filter(|(_, _, f)| {
            f.pointer(
                "/f:metadata/f:annotations/f:kubectl.kubernetes.io~1last-applied-configuration",
            )
            .is_some()
        })
        .map(|(m, o, _)| format!("{m}/{o}"))
        .collect();
    assert_eq!(
        owners,
        [
            "kubectl-last-applied/Apply",
            "kubectl-client-side-apply/Update"
        ]
    );
    assert_eq!(saved["data"], json!({"a": "new", "b": "2"}));
}

#[test]
fn pod_lists_merge_by_their_keys_and_atomic_structs_stay_whole() {
    let schema = Arc::new(TypeSchema::new("Pod", Some(pod_schema)));
    let manager = FieldManager::with(schema, "", "v1", "Pod", true, None);
    let pod = |containers: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": containers,
                        "imagePullSecrets": [{"name": "s"}]},
               "status": {"phase": "Running"}})
    };
    let applied = manager
        .apply(
            None,
            &pod(json!([{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}])),
            "m",
            false,
        )
        .unwrap();
    assert_eq!(
        applied["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {
            "f:containers": {"k:{\"name\":\"c\"}": {
                ".": {}, "f:image": {}, "f:name": {},
                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}},
            "f:imagePullSecrets": {"k:{\"name\":\"s\"}": {}}}})
    );
    // A second container from another applier lands after the first; the first stays.
    let live = stored(applied);
    let two = manager
        .apply(
            Some(&live),
            &pod(json!([{"name": "d", "image": "nginx"}])),
            "n",
            false,
        )
        .unwrap();
    let names: Vec<&str> = two["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c", "d"]);

    // Events: involvedObject is an atomic ObjectReference.
    let schema = Arc::new(TypeSchema::new("Event", Some(event_schema)));
    let events = FieldManager::with(schema, "", "v1", "Event", false, None);
    let mut event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                           "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "x"});
    events.update(None, &mut event, "kubelet");
    assert_eq!(
        event["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:involvedObject": {}, "f:reason": {}})
    );
}

#[test]
fn status_is_ignored_on_the_main_resource_and_alone_on_status() {
    let schema = Arc::new(TypeSchema::new("Pod", Some(pod_schema)));
    let main = FieldManager::with(schema.clone(), "", "v1", "Pod", true, None);
    let status = FieldManager::with(schema, "", "v1", "Pod", true, Some("status"));
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                     "status": {"phase": "Pending"}});
    let applied = main.apply(None, &pod, "m", false).unwrap();
    let fields = &applied["metadata"]["managedFields"][0]["fieldsV1"];
    assert!(fields.get("f:status").is_none(), "{fields}");
    let live = stored(applied);
    let mut updated = live.clone();
    updated["status"]["phase"] = json!("Running");
    status.update(Some(&live), &mut updated, "kubelet");
    let kubelet = updated["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kubelet")
        .unwrap()
        .clone();
    assert_eq!(kubelet["subresource"], "status");
    assert_eq!(kubelet["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
}

#[test]
fn managers_and_user_agents() {
    assert_eq!(
        manager_or_user_agent(
            None,
            Some("kubectl-client-side-apply/v1.32.4 (linux/amd64) kubernetes/abc")
        ),
        "kubectl-client-side-apply"
    );
    assert_eq!(
        manager_or_user_agent(Some("mine"), Some("kubectl/v1")),
        "mine"
    );
    assert_eq!(manager_or_user_agent(None, None), "");
    assert_eq!(
        managed::print_manager(&managed::identifier("kubelet", "Update", "v1", "status")),
        "\"kubelet\" with subresource \"status\" using v1"
    );
    assert_eq!(
        managed::print_manager(&managed::identifier("kubectl", "Apply", "v1", "")),
        "\"kubectl\""
    );
}

#[test]
fn update_managers_are_capped_at_ten() {
    let manager = configmaps();
    let mut live = stored(cm(json!({"k0": "v"})));
    manager.update(None, &mut live, "m0");
    for i in 1..=12 {
        let mut next = live.clone();
        next["data"][format!("k{i}")] = json!("v");
        manager.update(Some(&live), &mut next, &format!("m{i}"));
        live = stored(next);
    }
    let managers: Vec<String> = entries(&live).into_iter().map(|(m, _, _)| m).collect();
    assert_eq!(managers.len(), 10, "{managers:?}");
    assert!(
        managers.contains(&"ancient-changes".to_owned()),
        "{managers:?}"
    );
}

#[test]
fn a_pod_create_owns_its_fields_but_not_the_structs_every_pod_has() {
    let schema = Arc::new(TypeSchema::new("Pod", Some(pod_schema)));
    assert_eq!(
        schema.zero_object(),
        json!({"metadata": {}, "spec": {"containers": null}, "status": {}})
    );
    let manager = FieldManager::with(schema, "", "v1", "Pod", true, None);
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                  "restartPolicy": "Always"}});
    manager.update(None, &mut pod, "kubectl-run");
    assert_eq!(
        pod["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {
            "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}},
            "f:restartPolicy": {}}})
    );
}

#[test]
fn empty_optional_lists_and_maps_are_omitted_as_go_omits_them() {
    let schema = TypeSchema::new("Pod", Some(pod_schema));
    let mut pod = json!({"metadata": {"name": "p", "labels": {}, "annotations": {"a": "b"},
                                      "finalizers": [], "managedFields": []},
                         "spec": {"containers": [{"name": "c", "env": [], "args": ["x"],
                                                  "resources": {}, "securityContext": {}}],
                                  "nodeSelector": {}, "volumes": [{"name": "v", "emptyDir": {}}]},
                         "status": {"conditions": []}});
    schema.omit_empty(&mut pod);
    assert_eq!(
        pod,
        json!({"metadata": {"name": "p", "annotations": {"a": "b"}, "managedFields": []},
               "spec": {"containers": [{"name": "c", "args": ["x"],
                                        "resources": {}, "securityContext": {}}],
                        "volumes": [{"name": "v", "emptyDir": {}}]},
               "status": {}})
    );
    let mut empty = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
    schema.omit_empty(&mut empty);
    assert_eq!(
        empty["spec"],
        json!({"containers": []}),
        "a required list stays"
    );
}
