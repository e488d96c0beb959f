//! events.k8s.io/v1 Event as kube-apiserver serves it: the core/v1 events of the store seen
//! through another version. An event written through either version reads, lists, watches and
//! selects through the other with its fields converted; writes through events.k8s.io/v1 are
//! validated strictly, with kube's words; the table, discovery and OpenAPI list the kind.

mod common;

use common::{Api, DISCOVERY_V2, NAMESPACE, TABLE};
use serde_json::{json, Value};

const CORE: &str = "/api/v1/namespaces/demo/events";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/demo/events";
/// kube's IsQualifiedName message for a name part that is not one.
const QUALIFIED_NAME: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// A core/v1 event with every field the conversion renames.
fn core_event(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "involvedObject": {"kind": "Pod", "namespace": NAMESPACE, "name": "web", "uid": "u-1",
                           "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
        "related": {"kind": "Node", "name": "node"},
        "reason": "Pulled",
        "message": "Container image pulled",
        "type": "Normal",
        "source": {"component": "kubelet", "host": "node"},
        "firstTimestamp": "2024-05-01T10:00:00Z",
        "lastTimestamp": "2024-05-01T10:05:00Z",
        "count": 3,
        "eventTime": "2024-05-01T10:00:00.000000Z",
        "series": {"count": 2, "lastObservedTime": "2024-05-01T10:05:00.000000Z"},
        "action": "Pulling",
        "reportingComponent": "kubelet",
        "reportingInstance": "node",
    })
}

/// An events.k8s.io/v1 event that passes its strict validation.
fn new_event(name: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2024-05-01T11:00:00.000000Z",
        "series": {"count": 2, "lastObservedTime": "2024-05-01T11:01:00.000000Z"},
        "reportingController": "example.com/scheduler",
        "reportingInstance": "scheduler-1",
        "action": "Binding",
        "reason": "Scheduled",
        "note": "Assigned demo/web to node",
        "type": "Normal",
        "regarding": {"kind": "Pod", "namespace": NAMESPACE, "name": "web"},
        "related": {"kind": "Node", "name": "node"},
    })
}

fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn an_event_created_through_core_v1_reads_through_events_k8s_io() {
    let api = Api::start().await;
    let created = api.post(CORE, &core_event("web.1")).await.expect(201);
    let event = api.get(&format!("{EVENTS}/web.1")).await.expect(200);
    assert_eq!(event["apiVersion"], "events.k8s.io/v1");
    assert_eq!(event["kind"], "Event");
    assert_eq!(event["metadata"], created["metadata"]);
    let core = core_event("web.1");
    let renamed = [
        ("regarding", "involvedObject"),
        ("note", "message"),
        ("reportingController", "reportingComponent"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ];
    for (field, core_field) in renamed {
        assert_eq!(event[field], core[core_field], "{field}");
    }
    for field in [
        "related",
        "reason",
        "type",
        "eventTime",
        "series",
        "action",
        "reportingInstance",
    ] {
        assert_eq!(event[field], core[field], "{field}");
    }
    assert_eq!(
        keys(&event),
        [
            "action",
            "apiVersion",
            "deprecatedCount",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedSource",
            "eventTime",
            "kind",
            "metadata",
            "note",
            "reason",
            "regarding",
            "related",
            "reportingController",
            "reportingInstance",
            "series",
            "type",
        ]
    );
}

#[tokio::test]
async fn an_event_created_through_events_k8s_io_reads_through_core_v1() {
    let api = Api::start().await;
    let created = api.post(EVENTS, &new_event("web.2")).await.expect(201);
    assert_eq!(created["apiVersion"], "events.k8s.io/v1");
    assert_eq!(created["note"], "Assigned demo/web to node");
    let event = api.get(&format!("{CORE}/web.2")).await.expect(200);
    assert_eq!(event["apiVersion"], "v1");
    assert_eq!(event["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(event["involvedObject"], new_event("")["regarding"]);
    assert_eq!(event["message"], "Assigned demo/web to node");
    assert_eq!(event["reportingComponent"], "example.com/scheduler");
    assert_eq!(event["reportingInstance"], "scheduler-1");
    assert_eq!(event["action"], "Binding");
    assert_eq!(event["eventTime"], "2024-05-01T11:00:00.000000Z");
    assert_eq!(
        event["series"],
        json!({"count": 2, "lastObservedTime": "2024-05-01T11:01:00.000000Z"})
    );
    assert_eq!(event["related"], json!({"kind": "Node", "name": "node"}));
    for gone in [
        "note",
        "regarding",
        "reportingController",
        "deprecatedSource",
    ] {
        assert!(event.get(gone).is_none(), "{gone} in {event}");
    }
}

#[tokio::test]
async fn both_versions_list_the_same_events() {
    let api = Api::start().await;
    api.post(CORE, &core_event("web.1")).await.expect(201);
    api.post(EVENTS, &new_event("web.2")).await.expect(201);
    for (path, api_version) in [(CORE, "v1"), (EVENTS, "events.k8s.io/v1")] {
        let list = api.get(path).await.expect(200);
        assert_eq!(list["kind"], "EventList");
        assert_eq!(list["apiVersion"], api_version);
        let items = list["items"].as_array().unwrap();
        let names: Vec<&str> = items
            .iter()
            .map(|e| e["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["web.1", "web.2"], "{path}");
        assert!(items.iter().all(|e| e["apiVersion"] == api_version));
    }
    let everywhere = api.get("/apis/events.k8s.io/v1/events").await.expect(200);
    assert_eq!(everywhere["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_watch_through_events_k8s_io_sees_core_v1_changes_converted() {
    let api = Api::start().await;
    let list = api.get(EVENTS).await.expect(200);
    let from = list["metadata"]["resourceVersion"].as_str().unwrap();
    api.post(CORE, &core_event("web.1")).await.expect(201);
    let mut changed = api.get(&format!("{CORE}/web.1")).await.expect(200);
    changed["message"] = json!("Pulled again");
    api.put(&format!("{CORE}/web.1"), &changed)
        .await
        .expect(200);
    let watch = format!("{EVENTS}?resourceVersion={from}");
    let events = api.watch(&watch, 2).await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            let object = &e["object"];
            assert_eq!(object["apiVersion"], "events.k8s.io/v1", "{e}");
            (
                e["type"].as_str().unwrap(),
                object["note"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED", "Container image pulled"),
            ("MODIFIED", "Pulled again")
        ]
    );
}

#[tokio::test]
async fn field_selectors_use_the_events_k8s_io_labels() {
    let api = Api::start().await;
    api.post(CORE, &core_event("web.1")).await.expect(201);
    let names = |list: Value| -> Vec<String> {
        let items = list["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .map(|e| e["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (selector, expected) in [
        ("regarding.name=web", vec!["web.1"]),
        ("regarding.name=other", vec![]),
        ("reportingController=kubelet,type=Normal", vec!["web.1"]),
        ("source=kubelet", vec!["web.1"]),
    ] {
        let uri = format!("{EVENTS}?fieldSelector={}", selector.replace('=', "%3D"));
        assert_eq!(
            names(api.get(&uri).await.expect(200)),
            expected,
            "{selector}"
        );
    }
    let refused = api
        .get(&format!("{EVENTS}?fieldSelector=involvedObject.name%3Dweb"))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        refused.message(),
        "field label not supported: involvedObject.name"
    );
    let core = api
        .get(&format!("{CORE}?fieldSelector=involvedObject.name%3Dweb"))
        .await
        .expect(200);
    assert_eq!(names(core), ["web.1"]);
}

#[tokio::test]
async fn events_k8s_io_creates_are_validated_as_kube_words_it() {
    let api = Api::start().await;
    let mut no_time = new_event("bad");
    no_time.as_object_mut().unwrap().remove("eventTime");
    let refused = api.post(EVENTS, &no_time).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.json["reason"], "Invalid");
    assert_eq!(
        refused.message(),
        r#"Event "bad" is invalid: eventTime: Required value"#
    );
    assert_eq!(refused.json["details"]["kind"], "Event");
    assert_eq!(refused.json["details"]["group"], "");

    let mut bare = new_event("bad");
    for field in ["reportingController", "reportingInstance", "action"] {
        bare.as_object_mut().unwrap().remove(field);
    }
    bare["note"] = json!("x".repeat(1025));
    bare["type"] = json!("Info");
    let refused = api.post(EVENTS, &bare).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(
        refused.message(),
        format!(
            "Event \"bad\" is invalid: [reportingController: Required value, \
             reportingController: Invalid value: \"\": name part must be non-empty, \
             reportingController: Invalid value: \"\": {QUALIFIED_NAME}, \
             reportingInstance: Required value, action: Required value, \
             message: Invalid value: \"\": can have at most 1024 characters, \
             type: Invalid value: \"\": has invalid value: Info]"
        )
    );

    let mut deprecated = new_event("bad");
    deprecated["deprecatedCount"] = json!(2);
    deprecated["deprecatedSource"] = json!({"component": "kubelet"});
    deprecated["series"] = json!({"count": 1, "lastObservedTime": "2024-05-01T11:01:00.000000Z"});
    let refused = api.post(EVENTS, &deprecated).await;
    assert_eq!(
        refused.message(),
        "Event \"bad\" is invalid: [series.count: Invalid value: \"\": should be at least 2, \
         count: Invalid value: \"\": needs to be unset, \
         source: Invalid value: \"\": needs to be unset]"
    );
    assert_eq!(api.get(&format!("{CORE}/bad")).await.status, 404);
}

#[tokio::test]
async fn core_v1_creates_keep_the_legacy_rules_in_core_words() {
    let api = Api::start().await;
    let mut new_style = core_event("bad");
    new_style
        .as_object_mut()
        .unwrap()
        .remove("reportingComponent");
    let refused = api.post(CORE, &new_style).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(
        refused.message(),
        format!(
            "Event \"bad\" is invalid: [reportingComponent: Required value, \
             reportingComponent: Invalid value: \"\": name part must be non-empty, \
             reportingComponent: Invalid value: \"\": {QUALIFIED_NAME}]"
        )
    );
    let mut elsewhere = core_event("bad");
    elsewhere.as_object_mut().unwrap().remove("eventTime");
    elsewhere["involvedObject"]["namespace"] = json!("other");
    let refused = api.post(CORE, &elsewhere).await;
    assert_eq!(
        refused.message(),
        r#"Event "bad" is invalid: involvedObject.namespace: Invalid value: "other": does not match event.namespace"#
    );
}

#[tokio::test]
async fn events_k8s_io_updates_keep_the_event_immutable() {
    let api = Api::start().await;
    api.post(EVENTS, &new_event("web.2")).await.expect(201);
    let path = format!("{EVENTS}/web.2");
    let mut event = api.get(&path).await.expect(200);
    event["metadata"]["labels"] = json!({"seen": "yes"});
    event["series"]["count"] = json!(3);
    let updated = api.put(&path, &event).await.expect(200);
    assert_eq!(updated["series"]["count"], 3);
    assert_eq!(updated["metadata"]["labels"]["seen"], "yes");

    let mut changed = updated.clone();
    changed["note"] = json!("rewritten");
    let refused = api.put(&path, &changed).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(
        refused.message(),
        r#"Event "web.2" is invalid: message: Invalid value: "rewritten": field is immutable"#
    );
    let core_path = format!("{CORE}/web.2");
    let mut through_core = api.get(&core_path).await.expect(200);
    through_core["message"] = json!("rewritten");
    api.put(&core_path, &through_core).await.expect(200);
    assert_eq!(api.get(&path).await.expect(200)["note"], "rewritten");
}

#[tokio::test]
async fn deletes_through_one_version_remove_the_event_of_both() {
    let api = Api::start().await;
    api.post(CORE, &core_event("web.1")).await.expect(201);
    let deleted = api
        .send(
            axum::http::Method::DELETE,
            &format!("{EVENTS}/web.1"),
            &[],
            None,
            Some(peapod_apiserver::authn::User::admin()),
        )
        .await
        .expect(200);
    assert_eq!(deleted["status"], "Success");
    assert_eq!(deleted["details"]["group"], "events.k8s.io");
    let gone = api.get(&format!("{CORE}/web.1")).await;
    assert_eq!(gone.status, 404);
    let gone = api.get(&format!("{EVENTS}/web.1")).await;
    assert_eq!(gone.message(), r#"events.events.k8s.io "web.1" not found"#);
}

#[tokio::test]
async fn the_table_has_kubes_event_columns() {
    let api = Api::start().await;
    api.post(EVENTS, &new_event("web.2")).await.expect(201);
    let table = api.get_as(EVENTS, TABLE).await.expect(200);
    let columns: Vec<(&str, i64)> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    let shown: Vec<&str> = columns
        .iter()
        .filter(|(_, p)| *p == 0)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(shown, ["Last Seen", "Type", "Reason", "Object", "Message"]);
    let cells = table["rows"][0]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), columns.len());
    assert_eq!(cells[1], "Normal");
    assert_eq!(cells[2], "Scheduled");
    assert_eq!(cells[3], "pod/web");
    assert_eq!(cells[6], "Assigned demo/web to node");
    assert_eq!(cells[9], "web.2");
}

#[tokio::test]
async fn discovery_and_openapi_list_events_k8s_io() {
    let api = Api::start().await;
    let groups = api.get("/apis").await.expect(200);
    let group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "events.k8s.io")
        .cloned()
        .expect("events.k8s.io in /apis");
    assert_eq!(
        group["preferredVersion"],
        json!({"groupVersion": "events.k8s.io/v1", "version": "v1"})
    );
    let resources = api.get("/apis/events.k8s.io/v1").await.expect(200);
    assert_eq!(
        resources["resources"],
        json!([{
            "name": "events", "singularName": "event", "namespaced": true, "kind": "Event",
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": ["ev"],
        }])
    );
    let aggregated = api.get_as("/apis", DISCOVERY_V2).await.expect(200);
    let events = aggregated["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "events.k8s.io")
        .cloned()
        .expect("events.k8s.io in aggregated discovery");
    assert_eq!(events["versions"][0]["resources"][0]["resource"], "events");

    let index = api.get("/openapi/v3").await.expect(200);
    let url = index["paths"]["apis/events.k8s.io/v1"]["serverRelativeURL"]
        .as_str()
        .expect("an events.k8s.io/v1 document");
    let document = api.get(url).await.expect(200);
    let schema = &document["components"]["schemas"]["io.k8s.api.events.v1.Event"];
    assert_eq!(
        schema["x-kubernetes-group-version-kind"],
        json!([{"group": "events.k8s.io", "kind": "Event", "version": "v1"}])
    );
    assert!(schema["properties"]["note"].is_object(), "{schema}");
    let paths = &document["paths"];
    assert!(
        paths["/apis/events.k8s.io/v1/namespaces/{namespace}/events/{name}"]["patch"].is_object()
    );
    assert!(paths["/apis/events.k8s.io/v1/events"]["get"].is_object());
}
