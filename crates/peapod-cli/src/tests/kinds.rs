//! The verbs on kinds other than Pod, found through discovery: get's tables, apply's
//! create and replace, delete and describe.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::fake::{Fake, Recorded, Reply};
use super::{run, run_at, stored, written};

/// The server's ConfigMap Table (Name, Data, Age) of `(namespace, name, entries)`.
fn config_map_table(rows: &[(&str, &str, i64)]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|(ns, name, count)| {
            json!({"cells": [name, count, "5m"],
                   "object": {"metadata": {"name": name, "namespace": ns}}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "9"},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "priority": 0},
            {"name": "Data", "type": "string", "format": "", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "priority": 0}],
        "rows": rows})
}

fn config_map(name: &str, namespace: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                        "resourceVersion": "3"}, "data": {"a": "1"}})
}

#[tokio::test]
async fn get_prints_the_servers_columns_for_any_type() {
    let fake = Fake::start(|req| match req.path() {
        "/api/v1/namespaces/team/configmaps" => {
            Reply::json(200, config_map_table(&[("team", "settings", 2)]))
        }
        "/api/v1/configmaps" => Reply::json(
            200,
            config_map_table(&[("team", "settings", 2), ("dev", "x", 0)]),
        ),
        _ => Reply::json(200, config_map_table(&[])),
    });
    let o = run(&fake, &["get", "cm", "-n", "team"]).await;
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(o.out, "NAME       DATA   AGE\nsettings   2      5m\n");
    let request = &fake.requests()[0];
    assert!(
        request
            .header("accept")
            .starts_with("application/json;as=Table;v=v1;g=meta.k8s.io"),
        "{}",
        request.header("accept")
    );
    let o = run(&fake, &["get", "ConfigMaps", "-A"]).await;
    assert_eq!(
        o.out,
        "NAMESPACE   NAME       DATA   AGE\nteam        settings   2      5m\ndev         x          0      5m\n"
    );
    let o = run(&fake, &["get", "secrets"]).await;
    assert_eq!(o.err, "No resources found in default namespace.\n");
    let o = run(&fake, &["get", "ns"]).await;
    assert_eq!(o.err, "No resources found\n");
    let o = run(&fake, &["get", "services"]).await;
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            1,
            "error: the server doesn't have a resource type \"services\"\n"
        )
    );
    assert_eq!(
        fake.uris()[2..],
        [
            "GET /api/v1/namespaces/default/secrets",
            "GET /api/v1/namespaces"
        ]
    );
}

#[tokio::test]
async fn get_of_several_types_names_the_kind_in_each_table() {
    let fake = Fake::start(|req| match req.path() {
        "/api/v1/namespaces/default/pods" => {
            Reply::json(200, super::pod_list(vec![super::pod("web", "default")]))
        }
        "/api/v1/namespaces/default/configmaps/settings" => {
            Reply::json(200, config_map("settings", "default"))
        }
        _ => Reply::json(200, config_map_table(&[("default", "settings", 1)])),
    });
    let o = run(&fake, &["get", "pods,cm"]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    let (pods, config_maps) = o.out.split_once("\n\n").expect("a blank line between");
    assert!(pods.starts_with("NAME      READY "), "{pods}");
    assert!(pods.contains("\npod/web   1/1 "), "{pods}");
    assert_eq!(
        config_maps,
        "NAME                 DATA   AGE\nconfigmap/settings   1      5m\n"
    );
    let o = run(&fake, &["get", "cm/settings", "-o", "name"]).await;
    assert_eq!(o.out, "configmap/settings\n");
}

#[tokio::test]
async fn get_yaml_names_the_kind_of_each_item() {
    let fake = Fake::start(|req| match req.path().rsplit('/').next() {
        Some("secrets") => Reply::json(
            200,
            json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "4"},
                   "items": [{"metadata": {"name": "creds"}, "type": "Opaque"}]}),
        ),
        _ => Reply::json(
            200,
            json!({"metadata": {"name": "team"}, "status": {"phase": "Active"}}),
        ),
    });
    let o = run(&fake, &["get", "secrets", "-o", "yaml"]).await;
    let list: Value = serde_yaml_ng::from_str(&o.out).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["kind"], "Secret");
    assert_eq!(list["items"][0]["apiVersion"], "v1");
    assert_eq!(fake.requests()[0].header("accept"), "");
    let o = run(&fake, &["get", "namespace", "team", "-o", "json"]).await;
    let one: Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(
        (one["kind"].as_str(), one["status"]["phase"].as_str()),
        (Some("Namespace"), Some("Active"))
    );
    assert_eq!(fake.uris()[1], "GET /api/v1/namespaces/team");
}

const CONFIG: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: team}\ndata: {a: \"1\"}\n";

#[tokio::test]
async fn apply_creates_then_replaces_any_kind_keeping_status() {
    let live: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = live.clone();
    let fake = Fake::start(move |req: &Recorded| {
        let mut store = store.lock().unwrap();
        let name = req.path().rsplit('/').next().unwrap().to_string();
        let found = store
            .iter()
            .find(|o| o["metadata"]["name"] == name.as_str())
            .cloned();
        match (req.method.as_str(), found) {
            ("GET", Some(object)) => Reply::json(200, object),
            ("GET", None) => Reply::not_found("configmaps", &name),
            ("POST", _) => {
                let mut object = stored(req, "1");
                object["status"] = json!({"phase": "Active"});
                store.push(object.clone());
                written(201, object, &[])
            }
            _ => written(200, stored(req, "2"), &[]),
        }
    });
    let o = run_at(&fake.socket, &["apply", "-f", "-"], CONFIG.as_bytes()).await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        "namespace/team created\nconfigmap/settings created\n"
    );
    let changed = CONFIG.replace("{a: \"1\"}", "{a: \"2\"}");
    let o = run_at(
        &fake.socket,
        &["apply", "-f", "-", "-n", "team"],
        changed.as_bytes(),
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        "namespace/team configured\nconfigmap/settings configured\n"
    );
    assert_eq!(
        fake.uris(),
        [
            "GET /api/v1/namespaces/team",
            "POST /api/v1/namespaces?fieldValidation=Strict",
            "GET /api/v1/namespaces/team/configmaps/settings",
            "POST /api/v1/namespaces/team/configmaps?fieldValidation=Strict",
            "GET /api/v1/namespaces/team",
            "PUT /api/v1/namespaces/team?fieldValidation=Strict",
            "GET /api/v1/namespaces/team/configmaps/settings",
            "PUT /api/v1/namespaces/team/configmaps/settings?fieldValidation=Strict",
        ]
    );
    let put: Value = serde_json::from_slice(&fake.requests()[7].body).unwrap();
    assert_eq!(put["data"], json!({"a": "2"}), "the manifest's object");
    assert_eq!(put["metadata"]["resourceVersion"], "1", "the live version");
    assert_eq!(put["status"], json!({"phase": "Active"}), "the live status");
}

#[tokio::test]
async fn apply_refuses_a_kind_the_agent_does_not_serve_before_sending_anything() {
    let fake = Fake::start(|_| Reply::json(500, json!({})));
    let input =
        format!("{CONFIG}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\n");
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(o.code, 1);
    assert_eq!(o.err, "error: resource mapping not found for name: \"d\" namespace: \"default\" from \"STDIN\" (document 2): no matches for kind \"Deployment\" in version \"apps/v1\"\n");
    let dup = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: x\n  a: y\n";
    let o = run_at(&fake.socket, &["apply", "-f", "-"], dup.as_bytes()).await;
    assert_eq!(o.err, "Error from server (BadRequest): error when creating \"STDIN\": ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: yaml: unmarshal errors:\n  line 6: key \"a\" already set in map\n");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn delete_any_kind_from_files_or_by_selection_and_wait() {
    let polls: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = polls.clone();
    let fake = Fake::start(move |req| match req.method.as_str() {
        "DELETE" => Reply::json(
            200,
            json!({"kind": "Status", "status": "Success",
            "details": {"name": "x", "uid": "uid-x"}}),
        ),
        _ if req.path().ends_with("/configmaps") => Reply::json(
            200,
            json!({"kind": "ConfigMapList", "items": [config_map("a", "dev"), config_map("b", "dev")]}),
        ),
        _ => {
            seen.lock().unwrap().push(req.path().to_string());
            Reply::not_found("configmaps", "x")
        }
    });
    let o = run_at(&fake.socket, &["delete", "-f", "-"], CONFIG.as_bytes()).await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        "namespace \"team\" deleted\nconfigmap \"settings\" deleted\n"
    );
    assert_eq!(
        *polls.lock().unwrap(),
        [
            "/api/v1/namespaces/team",
            "/api/v1/namespaces/team/configmaps/settings"
        ],
        "waited for each"
    );
    let o = run(
        &fake,
        &["delete", "cm", "-l", "app=x", "-n", "dev", "--wait=false"],
    )
    .await;
    assert_eq!(o.out, "configmap \"a\" deleted\nconfigmap \"b\" deleted\n");
    assert_eq!(
        fake.uris()[4..],
        [
            "GET /api/v1/namespaces/dev/configmaps?labelSelector=app%3Dx",
            "DELETE /api/v1/namespaces/dev/configmaps/a",
            "DELETE /api/v1/namespaces/dev/configmaps/b",
        ]
    );
}

#[tokio::test]
async fn describe_a_config_map_with_its_events() {
    let fake = Fake::start(|req| {
        if req.path().ends_with("/events") {
            Reply::json(200, json!({"kind": "EventList", "items": []}))
        } else {
            Reply::json(200, config_map("settings", "team"))
        }
    });
    let o = run(&fake, &["describe", "configmap", "settings", "-n", "team"]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(o.out, "Name:         settings\nNamespace:    team\nLabels:       <none>\nAnnotations:  <none>\n\nData\n====\na:\n----\n1\n\n\nBinaryData\n====\n\nEvents:  <none>\n");
    assert_eq!(
        fake.uris(),
        [
            "GET /api/v1/namespaces/team/configmaps/settings",
            "GET /api/v1/namespaces/team/events?fieldSelector=involvedObject.uid%3Duid-settings",
        ]
    );
}
