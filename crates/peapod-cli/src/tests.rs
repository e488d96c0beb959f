//! Verbs end to end against a scripted fake agent on a temporary Unix socket.

pub mod fake;
mod kinds;
mod streams;
mod yaml11;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use hyper::body::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::{run_with, Client, ClientCommand, Console};
use fake::{Buf, Fake, Recorded, Reply};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: ClientCommand,
}

struct Outcome {
    code: i32,
    out: String,
    err: String,
}

async fn run_at(socket: &std::path::Path, args: &[&str], stdin: &[u8]) -> Outcome {
    let cli = Cli::try_parse_from(std::iter::once("peapod").chain(args.iter().copied())).unwrap();
    let (out, err) = (Buf::default(), Buf::default());
    let mut console = Console::new(
        Box::new(out.clone()),
        Box::new(err.clone()),
        Box::new(std::io::Cursor::new(stdin.to_vec())),
    );
    let code = run_with(
        &Client::new(socket.to_path_buf()),
        cli.command,
        &mut console,
    )
    .await;
    Outcome {
        code,
        out: out.text(),
        err: err.text(),
    }
}

async fn run(fake: &Fake, args: &[&str]) -> Outcome {
    run_at(&fake.socket, args, b"").await
}

fn pod(name: &str, namespace: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                     "resourceVersion": "7", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "app", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2024-01-01T00:00:01Z"}}}]}
    })
}

fn pod_list(items: Vec<Value>) -> Value {
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "5"}, "items": items})
}

const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: NAME}\nspec:\n  containers: [{name: c, image: busybox}]\n";

fn manifest(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| MANIFEST.replace("NAME", n))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The stored object a POST or PUT answers with: the body sent, at `resource_version`.
fn stored(req: &Recorded, resource_version: &str) -> Value {
    let mut object: Value = serde_json::from_slice(&req.body).unwrap();
    object["metadata"]["resourceVersion"] = json!(resource_version);
    object
}

/// A 2xx answer carrying `body` and one `Warning` header per warning.
fn written(status: u16, body: Value, warnings: &[&str]) -> Reply {
    let mut headers = vec![("content-type", "application/json".to_string())];
    for warning in warnings {
        let value = format!("299 - {}", serde_json::to_string(warning).unwrap());
        headers.push(("warning", value));
    }
    Reply::Full {
        status,
        headers,
        body: body.to_string().into_bytes(),
    }
}

#[tokio::test]
async fn apply_prints_each_result_and_the_warnings() {
    // a is new; b is live and changes (resourceVersion 7 → 8); c is live and does not.
    let fake = Fake::start(|req| {
        let name = req.path().rsplit('/').next().unwrap();
        match (req.method.as_str(), name) {
            ("GET", "a") => Reply::not_found("pods", "a"),
            ("GET", _) => Reply::json(200, pod(name, "dev")),
            ("POST", _) => written(201, stored(req, "1"), &[]),
            ("PUT", "b") => written(200, stored(req, "8"), &[r#"unknown field "spec.x""#]),
            ("PUT", _) => written(200, stored(req, "7"), &[]),
            _ => Reply::json(405, json!({})),
        }
    });
    let o = run_at(
        &fake.socket,
        &["apply", "-f", "-", "-n", "dev"],
        manifest(&["a", "b", "c"]).as_bytes(),
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(o.out, "pod/a created\npod/b configured\npod/c unchanged\n");
    assert_eq!(o.err, "Warning: unknown field \"spec.x\"\n");
    assert_eq!(
        fake.uris(),
        vec![
            "GET /api/v1/namespaces/dev/pods/a",
            "POST /api/v1/namespaces/dev/pods?fieldValidation=Strict",
            "GET /api/v1/namespaces/dev/pods/b",
            "PUT /api/v1/namespaces/dev/pods/b?fieldValidation=Strict",
            "GET /api/v1/namespaces/dev/pods/c",
            "PUT /api/v1/namespaces/dev/pods/c?fieldValidation=Strict",
        ]
    );
    let requests = fake.requests();
    assert_eq!(requests[1].header("content-type"), "application/json");
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(body["metadata"]["name"], "a");
    // The PUT is the live object (its uid and resourceVersion, the precondition) with the
    // manifest's spec.
    assert_eq!(requests[3].header("content-type"), "application/json");
    let body: Value = serde_json::from_slice(&requests[3].body).unwrap();
    assert_eq!(body["metadata"]["uid"], "uid-b");
    assert_eq!(body["metadata"]["resourceVersion"], "7");
    assert_eq!(
        body["spec"],
        json!({"containers": [{"name": "c", "image": "busybox"}]})
    );
}

#[tokio::test]
async fn apply_again_of_an_unchanged_object_prints_unchanged() {
    // An API server holding one pod: a PUT must carry the stored resourceVersion, and bumps
    // it only when labels, annotations or spec change.
    let store: Arc<Mutex<Option<Value>>> = Arc::default();
    let fake = Fake::start(move |req| {
        let mut store = store.lock().unwrap();
        match (req.method.as_str(), store.clone()) {
            ("GET", Some(live)) => Reply::json(200, live),
            ("GET", None) => Reply::not_found("pods", "p"),
            ("POST", None) => {
                let object = stored(req, "1");
                *store = Some(object.clone());
                written(201, object, &[])
            }
            ("PUT", Some(live)) => {
                let sent: Value = serde_json::from_slice(&req.body).unwrap();
                let version = |o: &Value| {
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                };
                if version(&sent) != version(&live) {
                    return Reply::json(
                        409,
                        json!({"kind": "Status", "code": 409, "reason": "Conflict",
                        "message": "the object has been modified"}),
                    );
                }
                let same = ["/metadata/labels", "/metadata/annotations", "/spec"]
                    .iter()
                    .all(|field| sent.pointer(field) == live.pointer(field));
                let next = if same {
                    version(&live)
                } else {
                    (version(&live).parse::<u64>().unwrap() + 1).to_string()
                };
                let object = stored(req, &next);
                *store = Some(object.clone());
                written(200, object, &[])
            }
            _ => Reply::json(405, json!({})),
        }
    });
    let input = manifest(&["p"]);
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(
        (o.code, o.out.as_str()),
        (0, "pod/p created\n"),
        "{}",
        o.err
    );
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(
        (o.code, o.out.as_str()),
        (0, "pod/p unchanged\n"),
        "{}",
        o.err
    );
    assert_eq!(o.err, "");
    let labelled = input.replace("{name: p}", "{name: p, labels: {app: web}}");
    let o = run_at(&fake.socket, &["apply", "-f", "-"], labelled.as_bytes()).await;
    assert_eq!(
        (o.code, o.out.as_str()),
        (0, "pod/p configured\n"),
        "{}",
        o.err
    );
    let o = run_at(&fake.socket, &["apply", "-f", "-"], labelled.as_bytes()).await;
    assert_eq!(
        (o.code, o.out.as_str()),
        (0, "pod/p unchanged\n"),
        "{}",
        o.err
    );
    let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(
        methods,
        ["GET", "POST", "GET", "PUT", "GET", "PUT", "GET", "PUT"]
    );
}

#[tokio::test]
async fn apply_to_a_bound_pod_keeps_its_node() {
    let fake = Fake::start(|req| match req.method.as_str() {
        "GET" => {
            let mut live = pod("p", "default");
            live["spec"]["nodeName"] = json!("node-1");
            Reply::json(200, live)
        }
        _ => written(200, stored(req, "8"), &[]),
    });
    let input = MANIFEST.replace("{name: NAME}", "{name: p, labels: {app: web}}");
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(o.out, "pod/p configured\n");
    let requests = fake.requests();
    assert_eq!(requests[1].method, "PUT");
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(
        body["spec"],
        json!({"containers": [{"name": "c", "image": "busybox"}], "nodeName": "node-1"})
    );
    assert_eq!(body["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        body["status"]["phase"], "Running",
        "the live status is kept"
    );
}

#[tokio::test]
async fn apply_sends_nothing_when_any_document_fails_to_decode() {
    let fake = Fake::start(|_| Reply::json(200, json!({})));
    let input = format!(
        "{}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n",
        manifest(&["a"])
    );
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(o.code, 1);
    assert!(
        o.err
            .starts_with("error: error parsing STDIN: document 1: yaml"),
        "{}",
        o.err
    );
    assert_eq!(o.err.lines().count(), 1);
    assert!(fake.requests().is_empty());
}

/// A pod `p` whose container carries `extra` (YAML flow-mapping entries).
fn pod_manifest(extra: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - {{name: c, image: busybox, {extra}}}\n")
}

/// The API server's answers to applying a new pod: not found, then created with `warnings`.
fn created(req: &Recorded, warnings: &[&str]) -> Reply {
    match req.method.as_str() {
        "GET" => Reply::not_found("pods", req.path().rsplit('/').next().unwrap()),
        _ => written(201, stored(req, "1"), warnings),
    }
}

#[tokio::test]
async fn apply_refuses_an_unknown_field_as_kubectls_default_strict_validation_does() {
    let fake = Fake::start(|req| created(req, &[]));
    let input = format!("{}---\n{}", manifest(&["a"]), pod_manifest("comand: [sh]"));
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        "Error from server (BadRequest): error when creating \"STDIN\": Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.containers[0].comand\"\n"
    );
    assert!(fake.requests().is_empty(), "nothing is sent");
}

#[tokio::test]
async fn apply_refuses_a_key_given_twice_naming_its_line() {
    let fake = Fake::start(|req| created(req, &[]));
    let input = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  name: q\nspec:\n  containers:\n  - name: c\n    image: busybox\n    image: nginx\n";
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        "Error from server (BadRequest): error when creating \"STDIN\": Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: yaml: unmarshal errors:\n  line 5: key \"name\" already set in map\n  line 10: key \"image\" already set in map\n"
    );
    assert!(fake.requests().is_empty(), "nothing is sent");
}

#[tokio::test]
async fn apply_refuses_a_key_given_twice_in_json_naming_its_path() {
    let fake = Fake::start(|req| created(req, &[]));
    let input = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "image": "nginx"}]}}"#;
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(o.code, 1);
    assert!(
        o.err
            .ends_with("strict decoding error: duplicate field \"spec.containers[0].image\"\n"),
        "{}",
        o.err
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn apply_with_validate_warn_sends_the_object_and_warns_of_what_strict_refuses() {
    let fake = Fake::start(|req| created(req, &[r#"unknown field "spec.containers[0].comand""#]));
    let input = pod_manifest("comand: [sh], image: nginx");
    let o = run_at(
        &fake.socket,
        &["apply", "--validate=warn", "-f", "-"],
        input.as_bytes(),
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(o.out, "pod/p created\n");
    assert_eq!(
        o.err,
        "Warning: line 7: key \"image\" already set in map\nWarning: unknown field \"spec.containers[0].comand\"\n"
    );
    assert_eq!(
        fake.uris(),
        vec![
            "GET /api/v1/namespaces/default/pods/p",
            "POST /api/v1/namespaces/default/pods?fieldValidation=Warn",
        ]
    );
    let requests = fake.requests();
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(
        body["spec"]["containers"][0]["image"], "nginx",
        "the last value wins"
    );
}

#[tokio::test]
async fn apply_with_validate_false_drops_unknown_fields_silently() {
    let fake = Fake::start(|req| {
        created(
            req,
            &[
                r#"unknown field "spec.containers[0].comand""#,
                "spec.affinity: not supported by peapod, ignored",
            ],
        )
    });
    let input = pod_manifest("comand: [sh]");
    let o = run_at(
        &fake.socket,
        &["apply", "--validate=false", "-f", "-"],
        input.as_bytes(),
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.err,
        "Warning: spec.affinity: not supported by peapod, ignored\n"
    );
    assert_eq!(o.out, "pod/p created\n");
    assert_eq!(
        fake.uris(),
        vec![
            "GET /api/v1/namespaces/default/pods/p",
            "POST /api/v1/namespaces/default/pods?fieldValidation=Ignore",
        ]
    );
}

#[tokio::test]
async fn apply_refuses_what_the_runtime_could_not_run_naming_the_field() {
    let fake = Fake::start(|req| created(req, &[]));
    let input = format!(
        "{}  volumes: [{{name: v, emptyDir: {{}}}}]\n",
        pod_manifest(r#"volumeMounts: [{name: v, mountPath: /proc}], args: ["a\0b"]"#)
    );
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        "The Pod \"p\" is invalid: [spec.containers[0].args[0]: Invalid value: \"a\\x00b\": must not contain a NUL byte, spec.containers[0].volumeMounts[0].mountPath: Invalid value: \"/proc\": must not be /proc or below it: the container runtime mounts procfs there]\n"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn apply_refuses_a_deep_flow_nest_at_once() {
    let fake = Fake::start(|req| created(req, &[]));
    let input = format!("apiVersion: v1\nkind: Pod\nspec: {}", "[".repeat(100_000));
    let started = std::time::Instant::now();
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        "error: error parsing STDIN: document 0: yaml: line 3, column 135: recursion limit exceeded: more than 128 nested collections\n"
    );
}

#[tokio::test]
async fn apply_server_errors_continue_with_the_next_object() {
    let fake = Fake::start(|req| {
        let name = serde_json::from_slice::<Value>(&req.body)
            .map(|body| body["metadata"]["name"].clone())
            .unwrap_or_default();
        if req.method == "POST" && name == "a" {
            Reply::json(
                422,
                json!({"kind": "Status", "status": "Failure", "reason": "Invalid", "code": 422,
                "message": "Pod \"a\" is invalid: spec.containers[0].image: Required value"}),
            )
        } else {
            created(req, &[])
        }
    });
    let o = run_at(
        &fake.socket,
        &["apply", "-f", "-"],
        manifest(&["a", "b"]).as_bytes(),
    )
    .await;
    assert_eq!(o.code, 1);
    assert_eq!(o.out, "pod/b created\n");
    assert_eq!(
        o.err,
        "The Pod \"a\" is invalid: spec.containers[0].image: Required value\n"
    );
    assert_eq!(
        fake.uris(),
        vec![
            "GET /api/v1/namespaces/default/pods/a",
            "POST /api/v1/namespaces/default/pods?fieldValidation=Strict",
            "GET /api/v1/namespaces/default/pods/b",
            "POST /api/v1/namespaces/default/pods?fieldValidation=Strict",
        ]
    );
}

#[tokio::test]
async fn get_missing_pod_is_kubectls_not_found() {
    let fake = Fake::start(|req| match req.path().rsplit('/').next() {
        Some("web") => Reply::json(200, pod("web", "default")),
        _ => Reply::not_found("pods", "x"),
    });
    let o = run(&fake, &["get", "pod", "x"]).await;
    assert_eq!(o.code, 1);
    assert_eq!(o.out, "");
    assert_eq!(
        o.err,
        "Error from server (NotFound): pods \"x\" not found\n"
    );

    let o = run(&fake, &["get", "pods", "web", "x"]).await;
    assert_eq!(o.code, 1);
    assert!(o.out.starts_with("NAME "), "{}", o.out);
    assert!(o.out.contains("\nweb "), "{}", o.out);
    assert_eq!(
        o.err,
        "Error from server (NotFound): pods \"x\" not found\n"
    );
}

#[tokio::test]
async fn get_lists_a_table() {
    let fake = Fake::start(|_| {
        Reply::json(
            200,
            pod_list(vec![pod("web", "default"), pod("db", "default")]),
        )
    });
    let o = run(&fake, &["get", "pods"]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    let lines: Vec<&str> = o.out.lines().collect();
    assert_eq!(lines.len(), 3);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "1/1", "Running", "0"]);
    assert_eq!(fake.uris(), vec!["GET /api/v1/namespaces/default/pods"]);
}

#[tokio::test]
async fn get_all_namespaces_and_selector_shape_the_request() {
    let fake = Fake::start(|_| Reply::json(200, pod_list(vec![pod("web", "team")])));
    let o = run(&fake, &["get", "po", "-A", "-l", "app=web,tier in (a,b)"]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(o.out.starts_with("NAMESPACE "), "{}", o.out);
    assert!(o.out.contains("\nteam "), "{}", o.out);
    let o = run(&fake, &["get", "pods", "-n", "kube-system", "-o", "wide"]).await;
    assert!(o.out.contains("NOMINATED NODE"), "{}", o.out);
    assert_eq!(
        fake.uris(),
        vec![
            "GET /api/v1/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29",
            "GET /api/v1/namespaces/kube-system/pods",
        ]
    );
}

#[tokio::test]
async fn get_output_json_and_name() {
    let fake = Fake::start(|req| {
        if req.path().ends_with("/pods") {
            Reply::json(
                200,
                pod_list(vec![pod("web", "default"), pod("db", "default")]),
            )
        } else {
            Reply::json(200, pod("web", "default"))
        }
    });
    let o = run(&fake, &["get", "pods", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["metadata"], json!({"resourceVersion": ""}));
    assert_eq!(list["items"][1]["metadata"]["name"], "db");
    assert_eq!(list["items"][1]["kind"], "Pod");
    assert!(o.out.starts_with("{\n    \"apiVersion\""), "{}", o.out);

    let o = run(&fake, &["get", "pod/web", "-o", "json"]).await;
    let one: Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(
        (one["kind"].as_str(), one["apiVersion"].as_str()),
        (Some("Pod"), Some("v1"))
    );

    let o = run(&fake, &["get", "pods", "-o", "name"]).await;
    assert_eq!(o.out, "pod/web\npod/db\n");
    let o = run(&fake, &["get", "pods", "-o", "yaml"]).await;
    assert!(
        o.out
            .starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n"),
        "{}",
        o.out
    );
}

#[tokio::test]
async fn get_empty_namespace_says_so_on_stderr() {
    let fake = Fake::start(|_| Reply::json(200, pod_list(vec![])));
    let o = run(&fake, &["get", "pods", "-n", "dev"]).await;
    assert_eq!((o.code, o.out.as_str()), (0, ""));
    assert_eq!(o.err, "No resources found in dev namespace.\n");
    let o = run(&fake, &["get", "pods", "-A"]).await;
    assert_eq!(o.err, "No resources found\n");
    let o = run(&fake, &["get", "pods", "-o", "json"]).await;
    assert_eq!(o.err, "");
    assert_eq!(
        serde_json::from_str::<Value>(&o.out).unwrap()["items"],
        json!([])
    );
}

#[tokio::test]
async fn get_watch_prints_a_row_per_event() {
    // The server's Table events: column definitions in the first only.
    let mut later = fake::pod_table(&pod("db", "default"));
    later["columnDefinitions"] = json!([]);
    let events = [
        json!({"type": "MODIFIED", "object": fake::pod_table(&pod("web", "default"))}),
        json!({"type": "ADDED", "object": later}),
    ];
    let stream = Mutex::new(Some(events.map(|e| format!("{e}\n"))));
    let fake = Fake::start(move |req| {
        if req.uri.contains("watch=true") {
            let (tx, rx) = mpsc::channel(4);
            let lines = stream.lock().unwrap().take().unwrap();
            tokio::spawn(async move {
                // One event split across chunks, the other whole.
                let (head, tail) = lines[0].split_at(10);
                for chunk in [head.to_string(), tail.to_string(), lines[1].clone()] {
                    tx.send(Bytes::from(chunk)).await.unwrap();
                }
            });
            Reply::Stream(rx)
        } else {
            Reply::json(200, pod_list(vec![pod("web", "default")]))
        }
    });
    let o = run(&fake, &["get", "pods", "-w"]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    let names: Vec<&str> = o
        .out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["NAME", "web", "web", "db"]);
    assert_eq!(
        fake.uris()[1],
        "GET /api/v1/namespaces/default/pods?watch=true&resourceVersion=5"
    );
}

#[tokio::test]
async fn describe_fetches_the_pods_events_by_uid() {
    let fake = Fake::start(|req| {
        if req.path().ends_with("/events") {
            Reply::json(
                200,
                json!({"kind": "EventList", "items": [{
                "metadata": {"name": "e1", "namespace": "default"},
                "involvedObject": {"kind": "Pod", "name": "web", "uid": "uid-web"},
                "reason": "Pulled", "message": "image pulled", "type": "Normal", "count": 1,
                "lastTimestamp": "2024-01-01T00:00:00Z", "firstTimestamp": "2024-01-01T00:00:00Z"}]}),
            )
        } else {
            Reply::json(200, pod("web", "default"))
        }
    });
    let o = run(&fake, &["describe", "pod/web"]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(o.out.starts_with("Name:"), "{}", o.out);
    assert!(o.out.contains("Pulled"), "{}", o.out);
    assert_eq!(
        fake.uris(),
        vec![
            "GET /api/v1/namespaces/default/pods/web",
            "GET /api/v1/namespaces/default/events?fieldSelector=involvedObject.uid%3Duid-web",
        ]
    );
}

#[tokio::test]
async fn delete_prints_then_waits_for_not_found() {
    let polls = Arc::new(AtomicUsize::new(0));
    let seen = polls.clone();
    let fake = Fake::start(move |req| match (req.method.as_str(), req.path()) {
        ("DELETE", "/api/v1/namespaces/default/pods/missing") => {
            Reply::not_found("pods", "missing")
        }
        ("DELETE", _) => Reply::json(200, pod("web", "default")),
        _ if seen.fetch_add(1, Ordering::SeqCst) < 2 => Reply::json(200, pod("web", "default")),
        _ => Reply::not_found("pods", "web"),
    });
    let started = std::time::Instant::now();
    let o = run(
        &fake,
        &["delete", "pod", "missing", "web", "--grace-period=5"],
    )
    .await;
    assert_eq!(o.code, 1);
    assert_eq!(o.out, "pod \"web\" deleted\n");
    assert_eq!(
        o.err,
        "Error from server (NotFound): pods \"missing\" not found\n"
    );
    assert_eq!(polls.load(Ordering::SeqCst), 3);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let uris = fake.uris();
    assert_eq!(
        uris[1],
        "DELETE /api/v1/namespaces/default/pods/web?gracePeriodSeconds=5"
    );
    assert_eq!(uris[2], "GET /api/v1/namespaces/default/pods/web");
}

#[tokio::test]
async fn delete_all_lists_then_deletes_without_waiting() {
    let fake = Fake::start(|req| match req.method.as_str() {
        "GET" => Reply::json(200, pod_list(vec![pod("a", "dev"), pod("b", "dev")])),
        _ => Reply::json(200, json!({})),
    });
    let o = run(
        &fake,
        &["delete", "pods", "--all", "-n", "dev", "--wait=false"],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(o.out, "pod \"a\" deleted\npod \"b\" deleted\n");
    assert_eq!(
        fake.uris(),
        vec![
            "GET /api/v1/namespaces/dev/pods",
            "DELETE /api/v1/namespaces/dev/pods/a",
            "DELETE /api/v1/namespaces/dev/pods/b",
        ]
    );
    let o = run(&fake, &["delete", "pods"]).await;
    assert_eq!(
        o.err,
        "error: resource(s) were provided, but no name was specified\n"
    );
}

#[tokio::test]
async fn logs_stream_as_they_arrive() {
    let out = Buf::default();
    let seen = out.clone();
    let fake = Fake::start(move |_| {
        let (tx, rx) = mpsc::channel(4);
        let seen = seen.clone();
        tokio::spawn(async move {
            tx.send(Bytes::from("line 1\n")).await.unwrap();
            // The second chunk only goes out once the first reached stdout.
            while !seen.text().contains("line 1\n") {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tx.send(Bytes::from("line 2\n")).await.unwrap();
        });
        Reply::Stream(rx)
    });
    let cli = Cli::try_parse_from([
        "peapod",
        "logs",
        "pod/web",
        "-c",
        "app",
        "-f",
        "-p",
        "--tail=3",
        "--timestamps",
    ])
    .unwrap();
    let mut console = Console::new(
        Box::new(out.clone()),
        Box::new(Buf::default()),
        Box::new(std::io::empty()),
    );
    let code = tokio::time::timeout(
        Duration::from_secs(5),
        run_with(&Client::new(fake.socket.clone()), cli.command, &mut console),
    )
    .await
    .expect("logs did not stream");
    assert_eq!(code, 0);
    assert_eq!(out.text(), "line 1\nline 2\n");
    assert_eq!(
        fake.uris(),
        vec!["GET /api/v1/namespaces/default/pods/web/log?container=app&follow=true&previous=true&tailLines=3&timestamps=true"]
    );
}

#[tokio::test]
async fn logs_server_error_is_printed() {
    let fake = Fake::start(|_| {
        Reply::json(
            400,
            json!({"kind": "Status", "code": 400, "reason": "BadRequest",
        "message": "a container name must be specified for pod web, choose one of: [a b]"}),
        )
    });
    let o = run(&fake, &["logs", "web"]).await;
    assert_eq!(o.code, 1);
    assert_eq!(o.err, "Error from server (BadRequest): a container name must be specified for pod web, choose one of: [a b]\n");
}

#[tokio::test]
async fn events_table_and_empty_message() {
    let fake = Fake::start(|req| {
        if req.uri.starts_with("/api/v1/events") {
            Reply::json(
                200,
                json!({"kind": "EventList", "items": [{
                "metadata": {"name": "e1", "namespace": "team"},
                "involvedObject": {"kind": "Pod", "name": "web"},
                "reason": "Started", "message": "Started container app", "type": "Normal",
                "lastTimestamp": "2024-01-01T00:00:00Z"}]}),
            )
        } else {
            Reply::json(200, json!({"kind": "EventList", "items": []}))
        }
    });
    let o = run(&fake, &["events"]).await;
    assert_eq!(
        (o.out.as_str(), o.err.as_str()),
        ("", "No events found in default namespace.\n")
    );
    let o = run(&fake, &["events", "-A"]).await;
    assert!(o.out.starts_with("NAMESPACE "), "{}", o.out);
    assert!(o.out.contains("pod/web"), "{}", o.out);
}

#[tokio::test]
async fn images_table_rmi_and_load() {
    let fake = Fake::start(|req: &Recorded| match (req.method.as_str(), req.path()) {
        ("GET", _) => Reply::json(
            200,
            json!([{"id": "sha256:0123456789abcdef", "names": ["docker.io/library/busybox:1.36"],
            "size": 2_150_000, "layers": [], "manifestDigest": "sha256:ff"}]),
        ),
        ("POST", _) => Reply::json(
            200,
            json!([{"id": "sha256:aa", "names": ["x:1"], "size": 1}, {"id": "sha256:bb", "names": []}]),
        ),
        ("DELETE", "/apis/images.peapod.io/v1/images/missing") => Reply::json(
            404,
            json!({"kind": "Status", "code": 404, "reason": "NotFound", "message": "image \"missing\" not found"}),
        ),
        _ => Reply::json(200, json!({})),
    });
    let o = run(&fake, &["images"]).await;
    assert_eq!(o.out, "IMAGE                       TAG    IMAGE ID        SIZE\ndocker.io/library/busybox   1.36   0123456789abc   2.15MB\n");

    let o = run(&fake, &["rmi", "docker.io/library/busybox:1.36", "missing"]).await;
    assert_eq!(o.code, 1);
    assert_eq!(o.out, "Deleted: docker.io/library/busybox:1.36\n");
    assert_eq!(
        o.err,
        "Error from server (NotFound): image \"missing\" not found\n"
    );
    assert!(fake.uris().contains(
        &"DELETE /apis/images.peapod.io/v1/images/docker.io%2Flibrary%2Fbusybox%3A1.36".to_string()
    ));

    let o = run(&fake, &["load", "-i", "some/archive.tar"]).await;
    assert_eq!(o.out, "Loaded image: x:1\nLoaded image ID: sha256:bb\n");
    let body: Value = serde_json::from_slice(&fake.requests().last().unwrap().body).unwrap();
    let expected = std::env::current_dir().unwrap().join("some/archive.tar");
    assert_eq!(body, json!({"path": expected}));
}

#[tokio::test]
async fn import_from_stdin_buffers_to_a_file_the_agent_can_read() {
    let fake = Fake::start(|req| {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let content = std::fs::read(body["path"].as_str().unwrap()).unwrap();
        assert_eq!(content, b"tarball bytes");
        assert_eq!(body["name"], "app:1");
        assert_eq!(body["config"]["env"], json!(["A=1"]));
        assert_eq!(body["config"]["cmd"], json!(["sh"]));
        Reply::json(
            200,
            json!({"id": "sha256:abc", "names": ["app:1"], "size": 3}),
        )
    });
    let o = run_at(
        &fake.socket,
        &[
            "import",
            "-",
            "app:1",
            "--change",
            "ENV A=1",
            "--change",
            "CMD [\"sh\"]",
        ],
        b"tarball bytes",
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(o.out, "sha256:abc\n");
    assert_eq!(
        fake.uris(),
        vec!["POST /apis/images.peapod.io/v1/images/import"]
    );
}

#[test]
fn run_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let cli = Cli::try_parse_from(["peapod", "exec", "-it", "web", "--", "sh"]).unwrap();
    assert_send(&crate::run(
        std::path::PathBuf::from("/nonexistent"),
        cli.command,
    ));
}

#[tokio::test]
async fn unreachable_agent_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("peapod.sock");
    let o = run_at(&socket, &["get", "pods"], b"").await;
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        format!(
            "error: cannot reach the peapod agent at {}: No such file or directory (os error 2) (is \"peapod serve\" running?)\n",
            socket.display()
        )
    );
}

fn ndjson(lines: &[Value]) -> Vec<u8> {
    lines
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn pull_streams_quiet_lines_and_fails_with_one_line() {
    const LAYER: &str = "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
    let fake = Fake::start(|req: &Recorded| {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let lines = match body["reference"].as_str().unwrap() {
            "busybox:1.36" => ndjson(&[
                json!({"type": "resolved", "reference": "docker.io/library/busybox:1.36",
                       "manifestDigest": "sha256:m", "layers": [{"digest": LAYER, "size": 2_150_000, "cached": false}]}),
                json!({"type": "progress", "digest": LAYER, "received": 1000, "total": 2_150_000}),
                json!({"type": "layerReady", "digest": LAYER, "cached": false}),
                json!({"type": "done", "image": {"id": "sha256:feedface", "names": ["docker.io/library/busybox:1.36"], "size": 2_150_500}}),
            ]),
            "bad::ref" => {
                return Reply::json(
                    400,
                    json!({"kind": "Status", "code": 400, "reason": "BadRequest", "message": "invalid reference format \"bad::ref\""}),
                )
            }
            "truncated" => {
                ndjson(&[json!({"type": "progress", "digest": LAYER, "received": 1, "total": 2})])
            }
            _ => ndjson(&[
                json!({"type": "error", "message": "failed to pull and unpack image \"docker.io/library/nope:1\": not found"}),
            ]),
        };
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            // Split mid-line to exercise the line buffer.
            let (a, b) = lines.split_at(lines.len() / 2);
            tx.send(Bytes::copy_from_slice(a)).await.unwrap();
            tx.send(Bytes::copy_from_slice(b)).await.unwrap();
        });
        Reply::Stream(rx)
    });
    let o = run(&fake, &["pull", "busybox:1.36"]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        "Pulling docker.io/library/busybox:1.36\nsha256:abcdef012345: done 2.15MB\nImage is up to date for sha256:feedface\n"
    );
    let body: Value = serde_json::from_slice(&fake.requests()[0].body).unwrap();
    assert_eq!(body, json!({"reference": "busybox:1.36"}));
    assert_eq!(
        fake.uris(),
        vec!["POST /apis/images.peapod.io/v1/images/pull"]
    );

    let o = run(&fake, &["pull", "nope:1"]).await;
    assert_eq!(o.code, 1);
    assert_eq!(o.out, "");
    assert_eq!(
        o.err,
        "error: failed to pull and unpack image \"docker.io/library/nope:1\": not found\n"
    );

    let o = run(&fake, &["pull", "bad::ref"]).await;
    assert_eq!(
        (o.code, o.err.as_str()),
        (1, "error: invalid reference format \"bad::ref\"\n")
    );

    let o = run(&fake, &["pull", "truncated"]).await;
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            1,
            "error: the agent ended the pull of truncated without a result\n"
        )
    );
}

#[tokio::test]
async fn image_prune_lists_what_went() {
    let fake = Fake::start(|_| {
        Reply::json(
            200,
            json!([{"id": "sha256:aa", "names": ["docker.io/library/busybox:latest"], "size": 2_000_000},
                   {"id": "sha256:bb", "names": [], "size": 150_000}]),
        )
    });
    let o = run(&fake, &["image", "prune"]).await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(
        o.out,
        "Deleted: docker.io/library/busybox:latest\nDeleted: sha256:bb\nTotal reclaimed space: 2.15MB\n"
    );
    assert_eq!(
        fake.uris(),
        vec!["POST /apis/images.peapod.io/v1/images/prune"]
    );
}
