//! kube-apiserver's `registry/rest/resttest` for peapod: every kind kept in the store goes
//! through the same checks against the real router (create, read, list, Table, update, status,
//! patch, watch, selectors, paging, dry run, delete, finalizers), expecting the status codes,
//! reasons and messages of kube-apiserver 1.32.

use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use peapod_apis::NodeInfo;
use peapod_apiserver::authn::User;
use peapod_apiserver::registry::{Backend, Kind};
use peapod_apiserver::ApiServer;
use peapod_store::{Store, StoreOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

/// The namespace namespaced kinds are tested in.
const NAMESPACE: &str = "conformance";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
const PARTIAL_LIST: &str = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const FINALIZER: &str = "example.com/hold";
/// The longest a test waits for one watch event (the watches end after 2 s anyway).
const EVENT_WAIT: Duration = Duration::from_secs(5);

/// How a kind's delete proceeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deletion {
    /// Removed at once and answered with a Success `Status`.
    Immediate,
    /// Marked with a deletionTimestamp and answered with the object: its kubelet removes it.
    Graceful,
    /// Marked Terminating and answered with the object: the namespace controller finalizes it.
    Finalized,
    /// Marked with the `orphan` finalizer and answered with the object: the garbage collector
    /// orphans its dependents, then removes it (batch/v1 Jobs' default propagation).
    Orphaned,
}

/// A valid object of one stored kind, and what the suite must know about the kind.
struct Sample {
    /// The kind, qualified by its group outside the core group (`Lease.coordination.k8s.io`).
    kind: &'static str,
    /// The object without kind, apiVersion and metadata.
    fields: &'static str,
    /// A valid status other than the one set at creation (kinds with a status subresource).
    status: Option<&'static str>,
    deletion: Deletion,
    delete_collection: bool,
}

/// One line per stored kind: a kind without one fails every test.
const SAMPLES: &[Sample] = &[
    Sample {
        kind: "Namespace",
        fields: "{}",
        status: Some(
            r#"{"phase":"Active","conditions":[{"type":"NamespaceContentRemaining","status":"False","reason":"ContentRemoved","message":"conformance"}]}"#,
        ),
        deletion: Deletion::Finalized,
        delete_collection: false,
    },
    Sample {
        kind: "Pod",
        fields: r#"{"spec":{"containers":[{"name":"app","image":"busybox"}]}}"#,
        status: Some(r#"{"phase":"Pending","message":"conformance","qosClass":"BestEffort"}"#),
        deletion: Deletion::Graceful,
        delete_collection: true,
    },
    Sample {
        kind: "Node",
        fields: r#"{"spec":{}}"#,
        status: Some(r#"{"addresses":[{"type":"InternalIP","address":"10.0.0.1"}]}"#),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Event",
        fields: r#"{"involvedObject":{"kind":"Pod","name":"web","namespace":"conformance"},"reason":"Started","message":"started","type":"Normal"}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "ConfigMap",
        fields: r#"{"data":{"key":"value"}}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Secret",
        fields: r#"{"type":"Opaque","data":{"key":"dmFsdWU="}}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "ServiceAccount",
        fields: "{}",
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "PersistentVolume",
        fields: r#"{"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"hostPath":{"path":"/tmp/conformance"}}}"#,
        status: Some(r#"{"phase":"Available"}"#),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "PersistentVolumeClaim",
        fields: r#"{"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}"#,
        status: Some(
            r#"{"phase":"Bound","accessModes":["ReadWriteOnce"],"capacity":{"storage":"1Gi"}}"#,
        ),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Service",
        fields: r#"{"spec":{"selector":{"app":"web"},"ports":[{"port":80}]}}"#,
        status: Some(
            r#"{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-01-01T00:00:00Z","reason":"Serving","message":""}]}"#,
        ),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Endpoints",
        fields: r#"{"subsets":[{"addresses":[{"ip":"10.42.0.5"}],"ports":[{"port":80}]}]}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "EndpointSlice.discovery.k8s.io",
        fields: r#"{"addressType":"IPv4","endpoints":[{"addresses":["10.42.0.5"]}],"ports":[{"port":80}]}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "ReplicaSet.apps",
        fields: r#"{"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"busybox"}]}}}}"#,
        status: Some(
            r#"{"replicas":2,"fullyLabeledReplicas":2,"readyReplicas":1,"availableReplicas":1,"observedGeneration":1}"#,
        ),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Deployment.apps",
        fields: r#"{"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"busybox"}]}}}}"#,
        status: Some(
            r#"{"replicas":2,"updatedReplicas":2,"readyReplicas":1,"availableReplicas":1,"unavailableReplicas":1,"observedGeneration":1}"#,
        ),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "DaemonSet.apps",
        fields: r#"{"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"busybox"}]}}}}"#,
        status: Some(
            r#"{"currentNumberScheduled":1,"numberMisscheduled":0,"desiredNumberScheduled":1,"numberReady":1,"updatedNumberScheduled":1,"numberAvailable":1,"observedGeneration":1}"#,
        ),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "StatefulSet.apps",
        fields: r#"{"spec":{"selector":{"matchLabels":{"app":"web"}},"serviceName":"web","template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"busybox"}]}}}}"#,
        status: Some(
            r#"{"replicas":2,"readyReplicas":1,"currentReplicas":2,"updatedReplicas":2,"availableReplicas":1,"observedGeneration":1}"#,
        ),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "ControllerRevision.apps",
        fields: r#"{"data":{"spec":{"template":{"$patch":"replace"}}},"revision":1}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Job.batch",
        fields: r#"{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"app","image":"busybox"}]}}}}"#,
        status: Some(r#"{"active":1,"ready":1,"startTime":"2024-05-01T10:00:00Z"}"#),
        deletion: Deletion::Orphaned,
        delete_collection: true,
    },
    Sample {
        kind: "CronJob.batch",
        fields: r#"{"spec":{"schedule":"*/5 * * * *","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"app","image":"busybox"}]}}}}}}"#,
        status: Some(r#"{"lastScheduleTime":"2024-05-01T10:00:00Z"}"#),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "HorizontalPodAutoscaler.autoscaling",
        fields: r#"{"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"minReplicas":1,"maxReplicas":3}}"#,
        status: Some(r#"{"currentReplicas":1,"desiredReplicas":2}"#),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Event.events.k8s.io",
        fields: r#"{"eventTime":"2024-05-01T10:00:00.000000Z","reportingController":"example.com/conformance","reportingInstance":"conformance-1","action":"Starting","reason":"Started","note":"started","type":"Normal","regarding":{"kind":"Pod","name":"web","namespace":"conformance"}}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Lease.coordination.k8s.io",
        fields: r#"{"spec":{"holderIdentity":"conformance-node","leaseDurationSeconds":40}}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "PodDisruptionBudget.policy",
        fields: r#"{"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"web"}}}}"#,
        status: Some(
            r#"{"observedGeneration":1,"disruptionsAllowed":1,"currentHealthy":2,"desiredHealthy":1,"expectedPods":2}"#,
        ),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Ingress.networking.k8s.io",
        fields: r#"{"spec":{"defaultBackend":{"service":{"name":"web","port":{"number":80}}}}}"#,
        status: Some(r#"{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}"#),
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "IngressClass.networking.k8s.io",
        fields: r#"{"spec":{"controller":"example.com/conformance"}}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "PriorityClass.scheduling.k8s.io",
        fields: r#"{"value":1000}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "StorageClass.storage.k8s.io",
        fields: r#"{"provisioner":"example.com/conformance"}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "Role.rbac.authorization.k8s.io",
        fields: r#"{"rules":[{"verbs":["get"],"apiGroups":[""],"resources":["pods"]}]}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "ClusterRole.rbac.authorization.k8s.io",
        fields: r#"{"rules":[{"verbs":["get"],"apiGroups":[""],"resources":["pods"]}]}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "RoleBinding.rbac.authorization.k8s.io",
        fields: r#"{"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}]}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
    Sample {
        kind: "ClusterRoleBinding.rbac.authorization.k8s.io",
        fields: r#"{"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}]}"#,
        status: None,
        deletion: Deletion::Immediate,
        delete_collection: true,
    },
];

// ---------------------------------------------------------------------------------------------
// The kinds under test

fn node() -> NodeInfo {
    NodeInfo {
        name: "conformance-node".into(),
        addresses: || vec![Ipv4Addr::LOCALHOST],
    }
}

/// One stored kind with its sample.
#[derive(Clone)]
struct Case {
    kind: Arc<Kind>,
    sample: &'static Sample,
}

/// Every stored kind of `builtin()`; panics naming the kinds without a sample.
fn cases() -> Vec<Case> {
    let registry = peapod_apis::builtin(node());
    let stored = registry
        .kinds()
        .iter()
        .filter(|kind| matches!(kind.backend, Backend::Store(_)));
    let (mut cases, mut missing) = (Vec::new(), Vec::new());
    for kind in stored {
        match SAMPLES.iter().find(|s| s.kind == group_kind(kind)) {
            Some(sample) => cases.push(Case {
                kind: kind.clone(),
                sample,
            }),
            None => missing.push(group_kind(kind)),
        }
    }
    assert!(
        missing.is_empty(),
        "stored kinds without a sample in SAMPLES: {missing:?}"
    );
    cases
}

/// `Pod`, `Lease.coordination.k8s.io`: a kind as kube's `GroupKind` prints it.
fn group_kind(kind: &Kind) -> String {
    match kind.gvk.group.as_str() {
        "" => kind.gvk.kind.clone(),
        group => format!("{}.{group}", kind.gvk.kind),
    }
}

impl Case {
    fn kind(&self) -> &str {
        &self.kind.gvk.kind
    }

    fn plural(&self) -> &str {
        self.kind.plural
    }

    fn namespaced(&self) -> bool {
        self.kind.namespaced
    }

    fn has_status(&self) -> bool {
        self.kind.has_subresource("status")
    }

    fn group_version_path(&self) -> String {
        let gvk = &self.kind.gvk;
        if gvk.group.is_empty() {
            format!("/api/{}", gvk.version)
        } else {
            format!("/apis/{}/{}", gvk.group, gvk.version)
        }
    }

    fn collection_in(&self, namespace: &str) -> String {
        let base = self.group_version_path();
        if self.namespaced() {
            format!("{base}/namespaces/{namespace}/{}", self.plural())
        } else {
            format!("{base}/{}", self.plural())
        }
    }

    fn collection(&self) -> String {
        self.collection_in(NAMESPACE)
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.collection())
    }

    /// `<resource> "<name>"`, as kube's error messages name an object.
    fn named(&self, name: &str) -> String {
        format!("{} \"{name}\"", self.kind.qualified_resource())
    }

    fn object_with_metadata(&self, metadata: Value) -> Value {
        let mut object: Value = serde_json::from_str(self.sample.fields).expect("sample JSON");
        object["kind"] = json!(self.kind());
        object["apiVersion"] = json!(self.kind.api_version());
        object["metadata"] = metadata;
        object
    }

    fn object(&self, name: &str) -> Value {
        self.object_with_metadata(json!({"name": name}))
    }

    fn labelled(&self, name: &str, labels: Value) -> Value {
        self.object_with_metadata(json!({"name": name, "labels": labels}))
    }

    fn status(&self) -> Value {
        serde_json::from_str(self.sample.status.expect("a status sample")).expect("status JSON")
    }
}

// ---------------------------------------------------------------------------------------------
// The client

/// The router of a fresh API server, called in-process as the admin user.
#[derive(Clone)]
struct Client {
    app: Router,
}

/// A response read whole.
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Client {
    /// A server over a new in-memory store keeping `watch_history` changes, with the test
    /// namespace when `case` needs one.
    async fn start(case: &Case, watch_history: usize) -> Client {
        let options = StoreOptions {
            watch_history,
            ..Default::default()
        };
        let store = Store::open_with(None, options).expect("an in-memory store");
        let api = Arc::new(ApiServer::new(peapod_apis::builtin(node()), store));
        let client = Client { app: api.router() };
        if case.namespaced() {
            let namespace = json!({"metadata": {"name": NAMESPACE}});
            let created = client.post("/api/v1/namespaces", &namespace).await;
            assert_eq!(
                created.status, 201,
                "creating the test namespace: {}",
                created.text
            );
        }
        client
    }

    async fn respond(&self, mut request: Request<Body>, user: Option<User>) -> Response {
        if let Some(user) = user {
            request.extensions_mut().insert(user);
        }
        let Ok(response) = self.app.clone().oneshot(request).await;
        response
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let request = build(method, uri, headers, body);
        read_reply(self.respond(request, Some(User::admin())).await).await
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, &[], Vec::new()).await
    }

    async fn get_as(&self, uri: &str, accept: &str) -> Reply {
        self.send(Method::GET, uri, &[("accept", accept)], Vec::new())
            .await
    }

    async fn get_anonymously(&self, uri: &str) -> Reply {
        let request = build(Method::GET, uri, &[], Vec::new());
        read_reply(self.respond(request, None).await).await
    }

    async fn post(&self, uri: &str, body: &Value) -> Reply {
        self.post_raw(uri, to_bytes(body)).await
    }

    async fn post_raw(&self, uri: &str, body: Vec<u8>) -> Reply {
        let json = [("content-type", "application/json")];
        self.send(Method::POST, uri, &json, body).await
    }

    async fn put(&self, uri: &str, body: &Value) -> Reply {
        let json = [("content-type", "application/json")];
        self.send(Method::PUT, uri, &json, to_bytes(body)).await
    }

    async fn patch(&self, uri: &str, content_type: &str, body: &Value) -> Reply {
        let headers = [("content-type", content_type)];
        self.send(Method::PATCH, uri, &headers, to_bytes(body))
            .await
    }

    async fn delete(&self, uri: &str) -> Reply {
        self.send(Method::DELETE, uri, &[], Vec::new()).await
    }

    async fn delete_with(&self, uri: &str, options: &Value) -> Reply {
        let json = [("content-type", "application/json")];
        self.send(Method::DELETE, uri, &json, to_bytes(options))
            .await
    }

    /// Opens a watch; a non-200 answer is an error naming it.
    async fn watch(&self, uri: &str) -> Result<Watch, String> {
        let request = build(Method::GET, uri, &[], Vec::new());
        let response = self.respond(request, Some(User::admin())).await;
        if response.status() != 200 {
            let reply = read_reply(response).await;
            return Err(format!("watch {uri}: {} {}", reply.status, reply.text));
        }
        Ok(Watch {
            body: response.into_body(),
            pending: Vec::new(),
        })
    }

    /// Creates `object` in `case`'s collection, expecting 201.
    async fn create(&self, case: &Case, object: &Value) -> Result<Value, String> {
        let created = self.post(&case.collection(), object).await;
        expect(&created, 201, "create")?;
        Ok(created.json)
    }
}

fn build(method: Method, uri: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body)).expect("a valid request")
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON")
}

async fn read_reply(response: Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a readable body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// A chunked watch body, read one JSON line at a time.
struct Watch {
    body: Body,
    pending: Vec<u8>,
}

impl Watch {
    /// The next event; `None` once the stream ends or stays silent for [`EVENT_WAIT`].
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).unwrap_or_else(
                    |err| json!({"type": "UNREADABLE", "object": {"error": err.to_string()}}),
                ));
            }
            let frame = tokio::time::timeout(EVENT_WAIT, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.pending.extend_from_slice(&data);
            }
        }
    }

    /// Up to `count` events (fewer when the stream ends first).
    async fn take(&mut self, count: usize) -> Vec<Value> {
        let mut events = Vec::new();
        while events.len() < count {
            match self.next().await {
                Some(event) => events.push(event),
                None => break,
            }
        }
        events
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

type Check = Result<(), String>;

macro_rules! ensure {
    ($condition:expr, $($why:tt)+) => {
        if !$condition {
            return Err(format!($($why)+));
        }
    };
}

/// Runs `check` for every stored kind, each on a fresh server, and fails naming every kind
/// that failed.
async fn for_every_kind<F, Fut>(check: F)
where
    F: Fn(Client, Case) -> Fut,
    Fut: Future<Output = Check>,
{
    for_every_kind_keeping(4096, check).await;
}

/// [`for_every_kind`] over stores keeping `watch_history` changes for watches.
async fn for_every_kind_keeping<F, Fut>(watch_history: usize, check: F)
where
    F: Fn(Client, Case) -> Fut,
    Fut: Future<Output = Check>,
{
    let mut failures = Vec::new();
    for case in cases() {
        let client = Client::start(&case, watch_history).await;
        if let Err(why) = check(client, case.clone()).await {
            failures.push(format!("{}: {why}", group_kind(&case.kind)));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

fn expect(reply: &Reply, code: u16, what: &str) -> Check {
    ensure!(
        reply.status == code,
        "{what}: expected {code}, got {} {}",
        reply.status,
        reply.text
    );
    Ok(())
}

/// A failure `Status` with `code` and `reason`.
fn expect_failure(reply: &Reply, code: u16, reason: &str, what: &str) -> Check {
    expect(reply, code, what)?;
    let status = &reply.json;
    ensure!(
        status["kind"] == "Status" && status["status"] == "Failure" && status["code"] == code,
        "{what}: not a failure Status: {}",
        reply.text
    );
    ensure!(
        status["reason"] == reason,
        "{what}: expected reason {reason}, got {}",
        status["reason"]
    );
    Ok(())
}

fn expect_message(reply: &Reply, expected: &str, what: &str) -> Check {
    let message = reply.json["message"].as_str().unwrap_or_default();
    ensure!(
        message == expected,
        "{what}: expected message {expected:?}, got {message:?}"
    );
    Ok(())
}

fn expect_message_containing(reply: &Reply, part: &str, what: &str) -> Check {
    let message = reply.json["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains(part),
        "{what}: expected a message containing {part:?}, got {message:?}"
    );
    Ok(())
}

fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object["metadata"][field].as_str().unwrap_or_default()
}

fn resource_version(object: &Value) -> String {
    meta_str(object, "resourceVersion").to_owned()
}

fn is_deleting(object: &Value) -> bool {
    object["metadata"]["deletionTimestamp"].is_string()
}

/// The item names of a list, sorted.
fn item_names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| meta_str(item, "name").to_owned())
        .collect();
    names.sort();
    names
}

/// `TYPE name` of each event, for messages.
fn summary(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().unwrap_or("?"),
                meta_str(&e["object"], "name")
            )
        })
        .collect()
}

/// Whether every field of `expected` is in `actual` with the same value.
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => expected
            .iter()
            .all(|(key, value)| actual.get(key).is_some_and(|a| contains(a, value))),
        _ => actual == expected,
    }
}

/// A query value, percent-encoded.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Expects `name` to be gone (404 NotFound).
async fn expect_gone(client: &Client, case: &Case, name: &str, what: &str) -> Check {
    let got = client.get(&case.path(name)).await;
    expect_failure(&got, 404, "NotFound", what)?;
    expect_message(&got, &format!("{} not found", case.named(name)), what)
}

/// Expects `name` to exist and not be marked for deletion; answers it.
async fn expect_untouched(
    client: &Client,
    case: &Case,
    name: &str,
    what: &str,
) -> Result<Value, String> {
    let got = client.get(&case.path(name)).await;
    expect(&got, 200, what)?;
    ensure!(
        !is_deleting(&got.json),
        "{what}: {name} is marked for deletion"
    );
    Ok(got.json)
}

// ---------------------------------------------------------------------------------------------
// The registry

#[test]
fn every_stored_kind_has_a_sample() {
    let cases = cases();
    for sample in SAMPLES {
        assert!(
            cases.iter().any(|c| group_kind(&c.kind) == sample.kind),
            "sample {} names no stored kind",
            sample.kind
        );
    }
}

// ---------------------------------------------------------------------------------------------
// create, get, list

#[tokio::test]
async fn create_answers_the_stored_object_with_system_fields() {
    for_every_kind(|client, case| async move {
        let created = client
            .post(&case.collection(), &case.object("created"))
            .await;
        expect(&created, 201, "create")?;
        for field in ["uid", "resourceVersion", "creationTimestamp"] {
            ensure!(
                !meta_str(&created.json, field).is_empty(),
                "create: metadata.{field} is not set"
            );
        }
        ensure!(
            created.json["kind"] == case.kind(),
            "create: kind is {}",
            created.json["kind"]
        );
        ensure!(
            created.json["apiVersion"] == case.kind.api_version(),
            "create: apiVersion is {}",
            created.json["apiVersion"]
        );
        let got = client.get(&case.path("created")).await;
        expect(&got, 200, "get")?;
        ensure!(
            got.json == created.json,
            "get differs from create:\n{}\n{}",
            got.text,
            created.text
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn list_answers_the_kind_list() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("listed")).await?;
        let list = client.get(&case.collection()).await;
        expect(&list, 200, "list")?;
        let expected_kind = format!("{}List", case.kind());
        ensure!(
            list.json["kind"] == expected_kind.as_str(),
            "list: kind is {}",
            list.json["kind"]
        );
        ensure!(
            list.json["apiVersion"] == case.kind.api_version(),
            "list: apiVersion is {}",
            list.json["apiVersion"]
        );
        ensure!(
            !resource_version(&list.json).is_empty(),
            "list: no metadata.resourceVersion"
        );
        ensure!(
            list.json["items"] == json!([created]),
            "list: items are {}",
            list.json["items"]
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn list_as_table_has_one_name_column_and_one_cell_per_column() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("tabled")).await?;
        let table = client.get_as(&case.collection(), TABLE).await;
        expect(&table, 200, "list as Table")?;
        let table = &table.json;
        ensure!(
            table["kind"] == "Table" && table["apiVersion"] == "meta.k8s.io/v1",
            "not a Table: {table}"
        );
        let columns = table["columnDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let name_columns = columns.iter().filter(|c| c["format"] == "name").count();
        ensure!(
            name_columns == 1,
            "{name_columns} columns of format name (kube: exactly one, first but for Event's last): {columns:?}"
        );
        let rows = table["rows"].as_array().cloned().unwrap_or_default();
        ensure!(rows.len() == 1, "expected one row, got {rows:?}");
        let cells = rows[0]["cells"].as_array().map_or(0, Vec::len);
        ensure!(
            cells == columns.len(),
            "{cells} cells for {} columns: {}",
            columns.len(),
            rows[0]["cells"]
        );
        let object = &rows[0]["object"];
        ensure!(
            object["kind"] == "PartialObjectMetadata",
            "row object is {object}"
        );
        ensure!(
            meta_str(object, "name") == "tabled",
            "row object is {object}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn list_as_table_includes_the_object_when_asked() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("tabled")).await?;
        let uri = format!("{}?includeObject=Object", case.collection());
        let table = client.get_as(&uri, TABLE).await;
        expect(&table, 200, "list as Table")?;
        let object = &table.json["rows"][0]["object"];
        ensure!(*object == created, "row object is {object}, not {created}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn list_as_partial_object_metadata() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("partial")).await?;
        let list = client.get_as(&case.collection(), PARTIAL_LIST).await;
        expect(&list, 200, "list as PartialObjectMetadataList")?;
        let list = &list.json;
        ensure!(
            list["kind"] == "PartialObjectMetadataList" && list["apiVersion"] == "meta.k8s.io/v1",
            "not a PartialObjectMetadataList: {list}"
        );
        ensure!(item_names(list) == ["partial"], "items: {}", list["items"]);
        let item = &list["items"][0];
        ensure!(
            item.get("spec").is_none() && item.get("data").is_none(),
            "item has more than metadata: {item}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn get_as_yaml() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("yaml")).await?;
        let got = client.get_as(&case.path("yaml"), "application/yaml").await;
        expect(&got, 200, "get as YAML")?;
        let content_type = got
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        ensure!(
            content_type == Some("application/yaml"),
            "content-type is {content_type:?}"
        );
        let kind_line = format!("kind: {}", case.kind());
        ensure!(
            got.text.lines().any(|l| l == kind_line) && got.text.contains("name: yaml"),
            "not the object in YAML:\n{}",
            got.text
        );
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// create errors

#[tokio::test]
async fn create_twice_is_already_exists() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("twice")).await?;
        let again = client.post(&case.collection(), &case.object("twice")).await;
        expect_failure(&again, 409, "AlreadyExists", "second create")?;
        expect_message(
            &again,
            &format!("{} already exists", case.named("twice")),
            "second create",
        )
    })
    .await;
}

#[tokio::test]
async fn create_with_generate_name_names_the_object() {
    for_every_kind(|client, case| async move {
        let object = case.object_with_metadata(json!({"generateName": "gen-"}));
        let created = client.create(&case, &object).await?;
        let name = meta_str(&created, "name");
        ensure!(
            name.starts_with("gen-") && name.len() > 4,
            "generated name is {name:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn create_without_name_is_invalid() {
    for_every_kind(|client, case| async move {
        let object = case.object_with_metadata(json!({}));
        let created = client.post(&case.collection(), &object).await;
        expect_failure(&created, 422, "Invalid", "create without name")?;
        let causes = created.json["details"]["causes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ensure!(
            causes.iter().any(|c| c["field"] == "metadata.name"),
            "no cause for metadata.name: {}",
            created.text
        );
        expect_message_containing(
            &created,
            "name or generateName is required",
            "create without name",
        )
    })
    .await;
}

#[tokio::test]
async fn create_of_another_kind_is_bad_request() {
    for_every_kind(|client, case| async move {
        let other = if case.kind() == "ConfigMap" {
            "Secret"
        } else {
            "ConfigMap"
        };
        let body = json!({"apiVersion": "v1", "kind": other, "metadata": {"name": "other"}});
        let created = client.post(&case.collection(), &body).await;
        expect_failure(&created, 400, "BadRequest", "create of another kind")
    })
    .await;
}

#[tokio::test]
async fn create_of_malformed_json_is_bad_request() {
    for_every_kind(|client, case| async move {
        let created = client
            .post_raw(&case.collection(), b"{\"kind\":".to_vec())
            .await;
        expect_failure(&created, 400, "BadRequest", "create of malformed JSON")
    })
    .await;
}

#[tokio::test]
async fn strict_field_validation_refuses_unknown_fields() {
    for_every_kind(|client, case| async move {
        let mut object = case.object("strict");
        object["bogusField"] = json!(1);
        let uri = format!("{}?fieldValidation=Strict", case.collection());
        let created = client.post(&uri, &object).await;
        expect_failure(&created, 400, "BadRequest", "strict create")?;
        expect_message_containing(
            &created,
            r#"strict decoding error: unknown field "bogusField""#,
            "strict create",
        )
    })
    .await;
}

#[tokio::test]
async fn warn_field_validation_accepts_unknown_fields_with_a_warning() {
    for_every_kind(|client, case| async move {
        let mut object = case.object("warned");
        object["bogusField"] = json!(1);
        let uri = format!("{}?fieldValidation=Warn", case.collection());
        let created = client.post(&uri, &object).await;
        expect(&created, 201, "create with fieldValidation=Warn")?;
        let warnings: Vec<&str> = created
            .headers
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        ensure!(
            warnings
                .iter()
                .any(|w| w.starts_with("299 ") && w.contains(r#"unknown field \"bogusField\""#)),
            "warnings: {warnings:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn create_over_three_mebibytes_is_too_large() {
    for_every_kind(|client, case| async move {
        let big = "x".repeat(3 * 1024 * 1024 + 1);
        let object = case.object_with_metadata(json!({"name": "big", "annotations": {"big": big}}));
        let created = client.post(&case.collection(), &object).await;
        expect_failure(&created, 413, "RequestEntityTooLarge", "create over 3 MiB")
    })
    .await;
}

#[tokio::test]
async fn create_in_a_missing_namespace_is_not_found() {
    for_every_kind(|client, case| async move {
        if !case.namespaced() {
            return Ok(());
        }
        let created = client
            .post(&case.collection_in("missing"), &case.object("lost"))
            .await;
        expect_failure(&created, 404, "NotFound", "create in a missing namespace")?;
        expect_message(
            &created,
            r#"namespaces "missing" not found"#,
            "create in a missing namespace",
        )
    })
    .await;
}

#[tokio::test]
async fn create_with_another_namespace_in_the_body_is_bad_request() {
    for_every_kind(|client, case| async move {
        if !case.namespaced() {
            return Ok(());
        }
        let object = case.object_with_metadata(json!({"name": "elsewhere", "namespace": "other"}));
        let created = client.post(&case.collection(), &object).await;
        expect_failure(&created, 400, "BadRequest", "create with another namespace")?;
        expect_message_containing(
            &created,
            "the namespace of the provided object does not match the namespace sent on the request",
            "create with another namespace",
        )
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// update

/// `object` with `labels[key] = value`.
fn with_label(mut object: Value, key: &str, value: &str) -> Value {
    object["metadata"]["labels"][key] = json!(value);
    object
}

#[tokio::test]
async fn update_with_the_current_version_writes_a_new_version() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("updated")).await?;
        let updated = client
            .put(
                &case.path("updated"),
                &with_label(created.clone(), "put", "yes"),
            )
            .await;
        expect(&updated, 200, "update")?;
        ensure!(
            updated.json["metadata"]["labels"]["put"] == "yes",
            "update lost the label: {}",
            updated.text
        );
        ensure!(
            resource_version(&updated.json) != resource_version(&created),
            "update kept resourceVersion {}",
            resource_version(&created)
        );
        Ok(())
    })
    .await;
}

/// kube's BeforeUpdate: an update without uid and creationTimestamp (as `kubectl replace -f`
/// sends it) keeps the stored ones; another uid is refused as immutable.
#[tokio::test]
async fn update_without_system_fields_keeps_the_stored_ones() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("replaced")).await?;
        let mut bare = with_label(created.clone(), "replaced", "yes");
        let metadata = bare["metadata"].as_object_mut().expect("metadata");
        metadata.remove("uid");
        metadata.remove("creationTimestamp");
        let updated = client.put(&case.path("replaced"), &bare).await;
        expect(&updated, 200, "update without uid")?;
        for field in ["uid", "creationTimestamp"] {
            ensure!(
                updated.json["metadata"][field] == created["metadata"][field],
                "update changed {field}: {}",
                updated.text
            );
        }
        let mut other = updated.json.clone();
        other["metadata"]["uid"] = json!("another-uid");
        let refused = client.put(&case.path("replaced"), &other).await;
        expect(&refused, 422, "update with another uid")?;
        Ok(())
    })
    .await;
}

/// kube 1.32's generation: the kinds whose strategy keeps one (workloads) start at 1 and move
/// with `spec`; the others (ConfigMap, Pod, Namespace, ...) have none. A client's is ignored.
#[tokio::test]
async fn only_kinds_that_track_a_generation_have_one() {
    for_every_kind(|client, case| async move {
        let tracked = case.kind.strategy().is_some_and(|s| s.tracks_generation());
        let expected = if tracked { json!(1) } else { Value::Null };
        let object = case.object_with_metadata(json!({"name": "generated", "generation": 7}));
        let created = client.create(&case, &object).await?;
        ensure!(
            created["metadata"]["generation"] == expected,
            "create with generation 7: generation {}",
            created["metadata"]["generation"]
        );
        let mut relabelled = with_label(created, "put", "yes");
        relabelled["metadata"]["generation"] = json!(9);
        let updated = client.put(&case.path("generated"), &relabelled).await;
        expect(&updated, 200, "update")?;
        ensure!(
            updated.json["metadata"]["generation"] == expected,
            "update with generation 9: generation {}",
            updated.json["metadata"]["generation"]
        );
        Ok(())
    })
    .await;
}

/// kube's Deployment strategy also starts a generation when annotations change (they are
/// copied to its ReplicaSets); the other kinds' annotations leave it; a status write never
/// moves it.
#[tokio::test]
async fn annotations_move_the_generation_of_deployments_only() {
    for_every_kind(|client, case| async move {
        let Some(strategy) = case.kind.strategy().filter(|s| s.tracks_generation()) else {
            return Ok(());
        };
        let expected = if strategy.annotations_bump_generation() {
            2
        } else {
            1
        };
        ensure!(
            strategy.annotations_bump_generation() == (case.kind.gvk.kind == "Deployment"),
            "{} moves its generation on annotations",
            case.kind.gvk.kind
        );
        let created = client.create(&case, &case.object("annotated")).await?;
        let mut annotated = created.clone();
        annotated["metadata"]["annotations"] = json!({"note": "changed"});
        let updated = client.put(&case.path("annotated"), &annotated).await;
        expect(&updated, 200, "annotate")?;
        ensure!(
            updated.json["metadata"]["generation"] == json!(expected),
            "annotated: generation {}",
            updated.json["metadata"]["generation"]
        );
        if !case.has_status() {
            return Ok(());
        }
        let mut by_status = updated.json.clone();
        by_status["metadata"]["annotations"] = json!({"note": "by status"});
        let status_path = format!("{}/status", case.path("annotated"));
        let written = client.put(&status_path, &by_status).await;
        expect(&written, 200, "status write")?;
        ensure!(
            written.json["metadata"]["generation"] == json!(expected),
            "status write: generation {}",
            written.json["metadata"]["generation"]
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn update_with_a_stale_version_is_a_conflict() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("stale")).await?;
        let first = client.put(&case.path("stale"), &with_label(created.clone(), "n", "1")).await;
        expect(&first, 200, "first update")?;
        let second = client.put(&case.path("stale"), &with_label(created, "n", "2")).await;
        expect_failure(&second, 409, "Conflict", "update with a stale resourceVersion")?;
        let why = "the object has been modified; please apply your changes to the latest version and try again";
        let expected = format!("Operation cannot be fulfilled on {}: {why}", case.named("stale"));
        expect_message(&second, &expected, "update with a stale resourceVersion")
    })
    .await;
}

#[tokio::test]
async fn update_under_another_name_is_bad_request() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("named")).await?;
        let updated = client.put(&case.path("renamed"), &created).await;
        expect_failure(&updated, 400, "BadRequest", "update under another name")?;
        expect_message(
            &updated,
            "the name of the object (named) does not match the name on the URL (renamed)",
            "update under another name",
        )
    })
    .await;
}

#[tokio::test]
async fn update_of_the_resource_keeps_the_status() {
    for_every_kind(|client, case| async move {
        if !case.has_status() {
            return Ok(());
        }
        let created = client.create(&case, &case.object("main")).await?;
        let mut changed = with_label(created.clone(), "put", "main");
        changed["status"] = case.status();
        let updated = client.put(&case.path("main"), &changed).await;
        expect(&updated, 200, "update")?;
        ensure!(
            updated.json["metadata"]["labels"]["put"] == "main",
            "update lost the label: {}",
            updated.text
        );
        ensure!(
            updated.json["status"] == created["status"],
            "update changed the status from {} to {}",
            created["status"],
            updated.json["status"]
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn update_of_the_status_changes_the_status_and_the_metadata_the_kind_lets_it() {
    for_every_kind(|client, case| async move {
        if !case.has_status() {
            return Ok(());
        }
        let created = client.create(&case, &case.object("status")).await?;
        let mut changed = with_label(created.clone(), "put", "status");
        changed["metadata"]["annotations"]["patchedstatus"] = json!("true");
        let owner = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "6b5c3e8e-0d4f-4d53-9a47-3f1c2a7e9b10"}]);
        changed["metadata"]["ownerReferences"] = owner.clone();
        changed["status"] = case.status();
        let uri = format!("{}/status", case.path("status"));
        let updated = client.put(&uri, &changed).await;
        expect(&updated, 200, "update of the status")?;
        ensure!(
            contains(&updated.json["status"], &case.status()),
            "status is {}, expected {}",
            updated.json["status"],
            case.status()
        );
        ensure!(
            updated.json["metadata"]["annotations"]["patchedstatus"] == "true",
            "a status update dropped its annotation: {}",
            updated.json["metadata"]
        );
        // kube's status strategies reset the spec; a Deployment's its labels too, a Pod's its
        // owners.
        let labels = match case.kind() {
            "Deployment" => &created["metadata"]["labels"],
            _ => &changed["metadata"]["labels"],
        };
        ensure!(
            &updated.json["metadata"]["labels"] == labels,
            "labels after a status update: {}, expected {labels}",
            updated.json["metadata"]["labels"]
        );
        let owners = match case.kind() {
            "Pod" => &created["metadata"]["ownerReferences"],
            _ => &owner,
        };
        ensure!(
            &updated.json["metadata"]["ownerReferences"] == owners,
            "owners after a status update: {}, expected {owners}",
            updated.json["metadata"]["ownerReferences"]
        );
        let got = client.get(&uri).await;
        expect(&got, 200, "get of the status")?;
        ensure!(
            got.json == updated.json,
            "GET status differs from the update's answer"
        );
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// patch

async fn patch_changes(
    client: &Client,
    case: &Case,
    content_type: &str,
    patch: Value,
    pointer: &str,
) -> Check {
    client.create(case, &case.object("patched")).await?;
    let patched = client
        .patch(&case.path("patched"), content_type, &patch)
        .await;
    expect(&patched, 200, content_type)?;
    ensure!(
        patched.json.pointer(pointer) == Some(&json!("yes")),
        "{content_type}: {pointer} is not set: {}",
        patched.text
    );
    let got = client.get(&case.path("patched")).await;
    ensure!(
        got.json == patched.json,
        "{content_type}: GET differs from the patch's answer"
    );
    Ok(())
}

#[tokio::test]
async fn merge_patch_adds_a_label() {
    for_every_kind(|client, case| async move {
        let patch = json!({"metadata": {"labels": {"merged": "yes"}}});
        patch_changes(&client, &case, MERGE, patch, "/metadata/labels/merged").await
    })
    .await;
}

#[tokio::test]
async fn json_patch_adds_an_annotation() {
    for_every_kind(|client, case| async move {
        let patch =
            json!([{"op": "add", "path": "/metadata/annotations", "value": {"patched": "yes"}}]);
        patch_changes(
            &client,
            &case,
            JSON_PATCH,
            patch,
            "/metadata/annotations/patched",
        )
        .await
    })
    .await;
}

#[tokio::test]
async fn strategic_merge_patch_adds_a_label() {
    for_every_kind(|client, case| async move {
        let patch = json!({"metadata": {"labels": {"strategic": "yes"}}});
        patch_changes(
            &client,
            &case,
            STRATEGIC,
            patch,
            "/metadata/labels/strategic",
        )
        .await
    })
    .await;
}

#[tokio::test]
async fn patch_with_a_stale_version_is_a_conflict() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("stale")).await?;
        let first = client.patch(&case.path("stale"), MERGE, &json!({"metadata": {"labels": {"n": "1"}}})).await;
        expect(&first, 200, "first patch")?;
        let stale = json!({"metadata": {"resourceVersion": resource_version(&created), "labels": {"n": "2"}}});
        let second = client.patch(&case.path("stale"), MERGE, &stale).await;
        expect_failure(&second, 409, "Conflict", "patch with a stale resourceVersion")
    })
    .await;
}

#[tokio::test]
async fn json_patch_with_a_failing_test_is_invalid() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("tested")).await?;
        let patch = json!([{"op": "test", "path": "/metadata/name", "value": "wrong"}]);
        let patched = client.patch(&case.path("tested"), JSON_PATCH, &patch).await;
        expect_failure(&patched, 422, "Invalid", "JSON patch whose test fails")
    })
    .await;
}

#[tokio::test]
async fn patch_of_a_missing_object_is_not_found() {
    for_every_kind(|client, case| async move {
        let patch = json!({"metadata": {"labels": {"a": "b"}}});
        let patched = client.patch(&case.path("absent"), MERGE, &patch).await;
        expect_failure(&patched, 404, "NotFound", "patch of a missing object")?;
        expect_message(
            &patched,
            &format!("{} not found", case.named("absent")),
            "patch of a missing object",
        )
    })
    .await;
}

#[tokio::test]
async fn patch_in_an_unsupported_content_type_is_refused() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("typed")).await?;
        let patch = json!({"metadata": {"labels": {"a": "b"}}});
        let patched = client
            .patch(&case.path("typed"), "application/json", &patch)
            .await;
        expect_failure(
            &patched,
            415,
            "UnsupportedMediaType",
            "patch as application/json",
        )
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// watch

fn watch_uri(case: &Case, query: &str) -> String {
    format!("{}?watch=true&timeoutSeconds=2&{query}", case.collection())
}

/// The event a delete causes: DELETED, or MODIFIED with a deletionTimestamp for the kinds
/// whose objects linger.
fn expect_delete_event(case: &Case, event: &Value) -> Check {
    match case.sample.deletion {
        Deletion::Immediate => ensure!(
            event["type"] == "DELETED",
            "expected DELETED, got {}",
            event["type"]
        ),
        Deletion::Graceful | Deletion::Finalized | Deletion::Orphaned => ensure!(
            event["type"] == "MODIFIED" && is_deleting(&event["object"]),
            "expected MODIFIED with a deletionTimestamp, got {event}"
        ),
    }
    Ok(())
}

#[tokio::test]
async fn watch_from_a_version_sees_the_update_then_the_delete() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("watched")).await?;
        let rv = resource_version(&created);
        let mut watch = client
            .watch(&watch_uri(&case, &format!("resourceVersion={rv}")))
            .await?;
        let patch = json!({"metadata": {"labels": {"watched": "yes"}}});
        expect(
            &client.patch(&case.path("watched"), MERGE, &patch).await,
            200,
            "patch",
        )?;
        expect(&client.delete(&case.path("watched")).await, 200, "delete")?;
        let events = watch.take(2).await;
        ensure!(
            events.len() == 2,
            "expected 2 events, got {:?}",
            summary(&events)
        );
        ensure!(
            events[0]["type"] == "MODIFIED"
                && events[0]["object"]["metadata"]["labels"]["watched"] == "yes",
            "expected MODIFIED with the label, got {}",
            events[0]
        );
        ensure!(
            events[0]["object"]["kind"] == case.kind(),
            "event object kind is {}",
            events[0]["object"]["kind"]
        );
        expect_delete_event(&case, &events[1])
    })
    .await;
}

#[tokio::test]
async fn watch_without_a_version_starts_with_the_existing_objects() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("existing")).await?;
        let mut watch = client.watch(&watch_uri(&case, "")).await?;
        let events = watch.take(1).await;
        ensure!(
            summary(&events) == ["ADDED existing"],
            "expected ADDED existing, got {:?}",
            summary(&events)
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn watch_from_a_compacted_version_is_expired() {
    for_every_kind_keeping(4, |client, case| async move {
        let created = client.create(&case, &case.object("churned")).await?;
        for n in 0..8 {
            let patch = json!({"metadata": {"labels": {"n": n.to_string()}}});
            expect(
                &client.patch(&case.path("churned"), MERGE, &patch).await,
                200,
                "patch",
            )?;
        }
        let uri = watch_uri(
            &case,
            &format!("resourceVersion={}", resource_version(&created)),
        );
        let events = client.watch(&uri).await?.take(1).await;
        ensure!(
            events.len() == 1 && events[0]["type"] == "ERROR",
            "expected ERROR, got {:?}",
            summary(&events)
        );
        let status = &events[0]["object"];
        ensure!(
            status["kind"] == "Status" && status["code"] == 410 && status["reason"] == "Expired",
            "expected a 410 Expired Status, got {status}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn watch_with_initial_events_ends_them_with_a_bookmark() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("initial")).await?;
        let query =
            "allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan";
        let events = client.watch(&watch_uri(&case, query)).await?.take(2).await;
        ensure!(
            events.len() == 2,
            "expected 2 events, got {:?}",
            summary(&events)
        );
        ensure!(
            summary(&events[..1]) == ["ADDED initial"],
            "expected ADDED initial, got {}",
            events[0]
        );
        let bookmark = &events[1];
        ensure!(
            bookmark["type"] == "BOOKMARK",
            "expected BOOKMARK, got {bookmark}"
        );
        let object = &bookmark["object"];
        ensure!(
            object["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true",
            "bookmark without k8s.io/initial-events-end: {object}"
        );
        ensure!(
            object["kind"] == case.kind(),
            "bookmark object kind is {}",
            object["kind"]
        );
        ensure!(
            !resource_version(object).is_empty(),
            "bookmark without resourceVersion"
        );
        Ok(())
    })
    .await;
}

async fn unlabelled_object_leaves_the_watch(
    client: Client,
    case: Case,
    from_version: bool,
) -> Check {
    let created = client
        .create(&case, &case.labelled("labelled", json!({"app": "a"})))
        .await?;
    let mut query = format!("labelSelector={}", encode("app=a"));
    if from_version {
        query.push_str(&format!("&resourceVersion={}", resource_version(&created)));
    }
    let mut watch = client.watch(&watch_uri(&case, &query)).await?;
    let unlabel = json!({"metadata": {"labels": {"app": null}}});
    expect(
        &client.patch(&case.path("labelled"), MERGE, &unlabel).await,
        200,
        "patch",
    )?;
    let expected: &[&str] = if from_version {
        &["DELETED labelled"]
    } else {
        &["ADDED labelled", "DELETED labelled"]
    };
    let events = watch.take(expected.len()).await;
    ensure!(
        summary(&events) == expected,
        "expected {expected:?}, got {:?}",
        summary(&events)
    );
    Ok(())
}

#[tokio::test]
async fn label_selector_watch_sees_an_object_losing_its_label_as_deleted() {
    for_every_kind(|client, case| unlabelled_object_leaves_the_watch(client, case, false)).await;
}

#[tokio::test]
async fn label_selector_watch_from_a_version_sees_an_object_losing_its_label_as_deleted() {
    for_every_kind(|client, case| unlabelled_object_leaves_the_watch(client, case, true)).await;
}

// ---------------------------------------------------------------------------------------------
// list filters and paging

/// Creates `sel-a` (app=a), `sel-b` (app=b) and `sel-none` (no label).
async fn create_labelled_trio(client: &Client, case: &Case) -> Check {
    client
        .create(case, &case.labelled("sel-a", json!({"app": "a"})))
        .await?;
    client
        .create(case, &case.labelled("sel-b", json!({"app": "b"})))
        .await?;
    client.create(case, &case.object("sel-none")).await?;
    Ok(())
}

async fn expect_selected(client: &Client, case: &Case, query: &str, expected: &[&str]) -> Check {
    let list = client.get(&format!("{}?{query}", case.collection())).await;
    expect(&list, 200, query)?;
    let names = item_names(&list.json);
    ensure!(
        names == expected,
        "{query}: expected {expected:?}, got {names:?}"
    );
    Ok(())
}

#[tokio::test]
async fn label_selectors_filter_lists() {
    for_every_kind(|client, case| async move {
        create_labelled_trio(&client, &case).await?;
        let selectors: [(&str, &[&str]); 3] = [
            ("app=a", &["sel-a"]),
            ("app in (a,b)", &["sel-a", "sel-b"]),
            ("!app", &["sel-none"]),
        ];
        for (selector, expected) in selectors {
            let query = format!("labelSelector={}", encode(selector));
            expect_selected(&client, &case, &query, expected).await?;
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn field_selector_on_the_name_filters_lists() {
    for_every_kind(|client, case| async move {
        create_labelled_trio(&client, &case).await?;
        let query = format!("fieldSelector={}", encode("metadata.name=sel-b"));
        expect_selected(&client, &case, &query, &["sel-b"]).await
    })
    .await;
}

#[tokio::test]
async fn unsupported_field_label_is_bad_request() {
    for_every_kind(|client, case| async move {
        let uri = format!(
            "{}?fieldSelector={}",
            case.collection(),
            encode("spec.foo=bar")
        );
        let list = client.get(&uri).await;
        expect_failure(&list, 400, "BadRequest", "unsupported field label")?;
        expect_message(
            &list,
            "field label not supported: spec.foo",
            "unsupported field label",
        )
    })
    .await;
}

#[tokio::test]
async fn limit_and_continue_page_through_everything() {
    for_every_kind(|client, case| async move {
        create_labelled_trio(&client, &case).await?;
        let mut names = Vec::new();
        let mut uri = format!("{}?limit=1", case.collection());
        for _ in 0..10 {
            let page = client.get(&uri).await;
            expect(&page, 200, &uri)?;
            let items = item_names(&page.json);
            ensure!(items.len() == 1, "{uri}: expected one item, got {items:?}");
            names.extend(items);
            let token = page.json["metadata"]["continue"]
                .as_str()
                .unwrap_or_default();
            if token.is_empty() {
                break;
            }
            uri = format!("{}?limit=1&continue={}", case.collection(), encode(token));
        }
        ensure!(
            names == ["sel-a", "sel-b", "sel-none"],
            "paged through {names:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_bad_continue_token_is_bad_request() {
    for_every_kind(|client, case| async move {
        let list = client
            .get(&format!("{}?limit=1&continue=garbage", case.collection()))
            .await;
        expect_failure(&list, 400, "BadRequest", "list with a bad continue token")
    })
    .await;
}

/// etcd's paged lists: every page is read at the first page's revision, so changes made
/// between the pages do not show (the objects are as they were, the new ones absent).
#[tokio::test]
async fn later_pages_show_the_list_as_it_was_at_the_first_page() {
    for_every_kind(|client, case| async move {
        create_labelled_trio(&client, &case).await?;
        let first = client.get(&format!("{}?limit=1", case.collection())).await;
        expect(&first, 200, "first page")?;
        let token = first.json["metadata"]["continue"]
            .as_str()
            .unwrap_or_default();
        let relabel = json!({"metadata": {"labels": {"app": "changed"}}});
        let patched = client.patch(&case.path("sel-b"), MERGE, &relabel).await;
        expect(&patched, 200, "relabel sel-b")?;
        expect(
            &client.delete(&case.path("sel-none")).await,
            200,
            "delete sel-none",
        )?;
        client.create(&case, &case.object("sel-new")).await?;

        let rest_uri = format!("{}?limit=5&continue={}", case.collection(), encode(token));
        let rest = client.get(&rest_uri).await;
        expect(&rest, 200, "second page")?;
        let names = item_names(&rest.json);
        ensure!(names == ["sel-b", "sel-none"], "second page: {names:?}");
        let items = rest.json["items"].as_array().cloned().unwrap_or_default();
        ensure!(
            items[0]["metadata"]["labels"]["app"] == "b",
            "sel-b is not as it was: {}",
            items[0]
        );
        ensure!(
            !is_deleting(&items[1]),
            "sel-none shows its deletion: {}",
            items[1]
        );
        ensure!(
            rest.json["metadata"]["resourceVersion"] == first.json["metadata"]["resourceVersion"],
            "second page at {}, first at {}",
            rest.json["metadata"]["resourceVersion"],
            first.json["metadata"]["resourceVersion"]
        );
        Ok(())
    })
    .await;
}

/// A continue token older than the kept history (etcd's compaction) is 410 Expired, with a
/// token in the Status that goes on at the latest revision.
#[tokio::test]
async fn a_continue_token_older_than_the_history_is_expired() {
    for_every_kind_keeping(2, |client, case| async move {
        create_labelled_trio(&client, &case).await?;
        let first = client.get(&format!("{}?limit=1", case.collection())).await;
        expect(&first, 200, "first page")?;
        let token = first.json["metadata"]["continue"]
            .as_str()
            .unwrap_or_default();
        for name in ["sel-c", "sel-d", "sel-e"] {
            client.create(&case, &case.object(name)).await?;
        }
        let uri = format!("{}?limit=10&continue={}", case.collection(), encode(token));
        let expired = client.get(&uri).await;
        expect_failure(
            &expired,
            410,
            "Expired",
            "a continue token past the history",
        )?;
        expect_message(
            &expired,
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter, or use the continue \
             token in this response to retrieve the remainder of the results. Continuing with \
             the provided token results in an inconsistent list - objects that were created, \
             modified, or deleted between the time the first chunk was returned and now may \
             show up in the list.",
            "expired continue",
        )?;
        let inconsistent = expired.json["metadata"]["continue"]
            .as_str()
            .unwrap_or_default();
        ensure!(
            !inconsistent.is_empty(),
            "no continue token: {}",
            expired.text
        );
        let uri = format!(
            "{}?limit=10&continue={}",
            case.collection(),
            encode(inconsistent)
        );
        let rest = client.get(&uri).await;
        expect(&rest, 200, "going on inconsistently")?;
        let names = item_names(&rest.json);
        let expected = ["sel-b", "sel-c", "sel-d", "sel-e", "sel-none"];
        ensure!(
            names == expected,
            "the rest at the latest revision: {names:?}"
        );
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// dry run

#[tokio::test]
async fn dry_run_create_stores_nothing() {
    for_every_kind(|client, case| async move {
        let uri = format!("{}?dryRun=All", case.collection());
        let created = client.post(&uri, &case.object("dry")).await;
        expect(&created, 201, "dry-run create")?;
        ensure!(
            meta_str(&created.json, "name") == "dry",
            "dry-run create answered {}",
            created.text
        );
        expect_gone(&client, &case, "dry", "get after a dry-run create").await
    })
    .await;
}

#[tokio::test]
async fn dry_run_update_changes_nothing() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("dry")).await?;
        let uri = format!("{}?dryRun=All", case.path("dry"));
        let updated = client
            .put(&uri, &with_label(created.clone(), "dry", "yes"))
            .await;
        expect(&updated, 200, "dry-run update")?;
        ensure!(
            updated.json["metadata"]["labels"]["dry"] == "yes",
            "dry-run update answered {}",
            updated.text
        );
        let got = expect_untouched(&client, &case, "dry", "get after a dry-run update").await?;
        ensure!(got == created, "a dry-run update changed the object: {got}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn dry_run_delete_changes_nothing() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("dry")).await?;
        let deleted = client
            .delete(&format!("{}?dryRun=All", case.path("dry")))
            .await;
        expect(&deleted, 200, "dry-run delete")?;
        let got = expect_untouched(&client, &case, "dry", "get after a dry-run delete").await?;
        ensure!(got == created, "a dry-run delete changed the object: {got}");
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// delete

async fn expect_success_status(case: &Case, deleted: &Reply, created: &Value) -> Check {
    let status = &deleted.json;
    ensure!(
        status["kind"] == "Status" && status["status"] == "Success",
        "expected a Success Status, got {}",
        deleted.text
    );
    let details = &status["details"];
    ensure!(
        details["name"] == created["metadata"]["name"]
            && details["kind"] == case.plural()
            && details["uid"] == created["metadata"]["uid"],
        "Status details are {details}"
    );
    Ok(())
}

#[tokio::test]
async fn delete_answers_as_the_kind_deletes() {
    for_every_kind(|client, case| async move {
        let created = client.create(&case, &case.object("deleted")).await?;
        let deleted = client.delete(&case.path("deleted")).await;
        expect(&deleted, 200, "delete")?;
        if case.sample.deletion == Deletion::Immediate {
            expect_success_status(&case, &deleted, &created).await?;
            return expect_gone(&client, &case, "deleted", "get after delete").await;
        }
        let object = &deleted.json;
        ensure!(
            object["kind"] == case.kind() && is_deleting(object),
            "expected the object being deleted, got {object}"
        );
        if case.sample.deletion == Deletion::Finalized {
            ensure!(
                object["status"]["phase"] == "Terminating",
                "status.phase is {}",
                object["status"]["phase"]
            );
        }
        if case.sample.deletion == Deletion::Orphaned {
            ensure!(
                object["metadata"]["finalizers"] == json!(["orphan"]),
                "finalizers are {}",
                object["metadata"]["finalizers"]
            );
        }
        let got = client.get(&case.path("deleted")).await;
        expect(&got, 200, "get after delete")
    })
    .await;
}

#[tokio::test]
async fn delete_with_a_failing_precondition_is_a_conflict() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("guarded")).await?;
        let options = json!({"preconditions": {"uid": "wrong"}});
        let deleted = client.delete_with(&case.path("guarded"), &options).await;
        expect_failure(
            &deleted,
            409,
            "Conflict",
            "delete with a wrong uid precondition",
        )?;
        expect_message_containing(
            &deleted,
            "Precondition failed: UID in precondition: wrong",
            "delete precondition",
        )?;
        expect_untouched(&client, &case, "guarded", "get after a refused delete").await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_removed() {
    for_every_kind(|client, case| async move {
        let object = case.object_with_metadata(json!({"name": "held", "finalizers": [FINALIZER]}));
        client.create(&case, &object).await?;
        let deleted = client.delete(&case.path("held")).await;
        expect(&deleted, 200, "delete")?;
        ensure!(
            is_deleting(&deleted.json),
            "delete did not answer the marked object: {}",
            deleted.text
        );
        let held = client.get(&case.path("held")).await;
        expect(&held, 200, "get of the held object")?;
        ensure!(
            is_deleting(&held.json),
            "the held object is not marked: {}",
            held.text
        );
        let rv = resource_version(&held.json);
        let mut watch = client
            .watch(&watch_uri(&case, &format!("resourceVersion={rv}")))
            .await?;
        let release = json!({"metadata": {"finalizers": null}});
        expect(
            &client.patch(&case.path("held"), MERGE, &release).await,
            200,
            "patch removing the finalizer",
        )?;
        if case.sample.deletion == Deletion::Finalized {
            let got = client.get(&case.path("held")).await;
            expect(
                &got,
                200,
                "get after the finalizer went (spec.finalizers still hold it)",
            )?;
            return Ok(());
        }
        if case.sample.deletion == Deletion::Graceful {
            // kube's ShouldDeleteDuringUpdate: a graceful deletion under way is ended by the
            // kubelet, not by its last finalizer going.
            let got = client.get(&case.path("held")).await;
            expect(
                &got,
                200,
                "get after the finalizer went (grace period running)",
            )?;
            return Ok(());
        }
        expect_gone(&client, &case, "held", "get after the finalizer went").await?;
        let events = watch.take(1).await;
        ensure!(
            summary(&events) == ["DELETED held"],
            "expected DELETED held, got {:?}",
            summary(&events)
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn delete_options_in_the_query_are_accepted() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("quick")).await?;
        let deleted = client
            .delete(&format!("{}?gracePeriodSeconds=0", case.path("quick")))
            .await;
        expect(&deleted, 200, "delete with gracePeriodSeconds=0")?;
        match case.sample.deletion {
            Deletion::Immediate => expect_gone(&client, &case, "quick", "get after delete").await,
            Deletion::Graceful => {
                let grace = &deleted.json["metadata"]["deletionGracePeriodSeconds"];
                ensure!(*grace == 0, "deletionGracePeriodSeconds is {grace}");
                Ok(())
            }
            Deletion::Finalized | Deletion::Orphaned => Ok(()),
        }
    })
    .await;
}

#[tokio::test]
async fn an_invalid_propagation_policy_is_invalid() {
    for_every_kind(|client, case| async move {
        client.create(&case, &case.object("kept")).await?;
        let deleted = client
            .delete(&format!("{}?propagationPolicy=Bogus", case.path("kept")))
            .await;
        expect_failure(
            &deleted,
            422,
            "Invalid",
            "delete with propagationPolicy=Bogus",
        )?;
        expect_message(
            &deleted,
            r#"DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Bogus": supported values: "Foreground", "Background", "Orphan", "nil""#,
            "delete with propagationPolicy=Bogus",
        )?;
        expect_untouched(&client, &case, "kept", "get after a refused delete").await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn delete_collection_removes_only_the_selected() {
    for_every_kind(|client, case| async move {
        client
            .create(&case, &case.labelled("doomed", json!({"app": "a"})))
            .await?;
        client
            .create(&case, &case.labelled("spared", json!({"app": "b"})))
            .await?;
        let uri = format!("{}?labelSelector={}", case.collection(), encode("app=a"));
        let deleted = client.delete(&uri).await;
        if !case.sample.delete_collection {
            return expect_failure(&deleted, 405, "MethodNotAllowed", "deletecollection");
        }
        expect(&deleted, 200, "deletecollection")?;
        match case.sample.deletion {
            Deletion::Immediate => {
                expect_gone(&client, &case, "doomed", "get of a deleted object").await?
            }
            _ => {
                let got = client.get(&case.path("doomed")).await;
                ensure!(
                    is_deleting(&got.json),
                    "the selected object is not marked: {}",
                    got.text
                );
            }
        }
        expect_untouched(&client, &case, "spared", "get of an unselected object").await?;
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// authentication and discovery

#[tokio::test]
async fn requests_without_a_user_are_unauthorized() {
    for_every_kind(|client, case| async move {
        let list = client.get_anonymously(&case.collection()).await;
        expect_failure(&list, 401, "Unauthorized", "anonymous list")
    })
    .await;
}

#[tokio::test]
async fn discovery_lists_every_kind() {
    for_every_kind(|client, case| async move {
        let list = client.get(&case.group_version_path()).await;
        expect(&list, 200, "discovery")?;
        ensure!(
            list.json["kind"] == "APIResourceList",
            "not an APIResourceList: {}",
            list.text
        );
        let resources = list.json["resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let find = |name: &str| resources.iter().find(|r| r["name"] == name).cloned();
        let Some(resource) = find(case.plural()) else {
            return Err(format!("{} is not listed", case.plural()));
        };
        ensure!(
            resource["kind"] == case.kind() && resource["namespaced"] == case.namespaced(),
            "listed as {resource}"
        );
        let has_delete_collection = resource["verbs"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("deletecollection")));
        ensure!(
            has_delete_collection == case.sample.delete_collection,
            "deletecollection listed: {has_delete_collection}, expected {}",
            case.sample.delete_collection
        );
        if case.has_status() {
            ensure!(
                find(&format!("{}/status", case.plural())).is_some(),
                "{}/status is not listed",
                case.plural()
            );
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn discovery_and_version_answer() {
    let case = cases().remove(0);
    let client = Client::start(&case, 16).await;
    let api = client.get("/api").await;
    assert_eq!(api.status, 200, "{}", api.text);
    assert_eq!(api.json["kind"], "APIVersions");
    assert!(
        api.json["versions"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("v1"))),
        "{}",
        api.text
    );
    let apis = client.get("/apis").await;
    assert_eq!(apis.status, 200, "{}", apis.text);
    assert_eq!(apis.json["kind"], "APIGroupList");
    let core = client.get("/api/v1").await;
    assert_eq!(core.status, 200, "{}", core.text);
    assert_eq!(core.json["groupVersion"], "v1");
    let version = client.get("/version").await;
    assert_eq!(version.status, 200, "{}", version.text);
    assert_eq!(version.json["major"], "1");
    assert_eq!(version.json["minor"], "32");
    let unknown = client.get("/api/v1/foos").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.json["reason"], "NotFound");
}

/// The Pod case, for the pod-only subresources.
fn pod_case() -> Case {
    cases()
        .into_iter()
        .find(|case| case.kind() == "Pod")
        .expect("Pod is served")
}

#[tokio::test]
async fn a_binding_assigns_an_unbound_pod_once() {
    let case = pod_case();
    let client = Client::start(&case, 4096).await;
    client.create(&case, &case.object("web")).await.unwrap();
    let binding = |node: &str| {
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
    };
    let path = format!("{}/binding", case.path("web"));
    let other = client.post(&path, &binding("elsewhere")).await;
    expect_failure(&other, 422, "Invalid", "a binding to another node").unwrap();
    let bound = client.post(&path, &binding("conformance-node")).await;
    expect(&bound, 201, "a binding").unwrap();
    assert_eq!(bound.json["status"], "Success");
    let pod = client.get(&case.path("web")).await.json;
    assert_eq!(pod["spec"]["nodeName"], "conformance-node");
    let scheduled = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["status"] == "True");
    assert!(scheduled, "{pod}");
    let again = client.post(&path, &binding("conformance-node")).await;
    expect_failure(&again, 409, "Conflict", "a second binding").unwrap();
    expect_message(
        &again,
        r#"Operation cannot be fulfilled on pods "web": pod web is already assigned to node "conformance-node""#,
        "a second binding",
    )
    .unwrap();
}

#[tokio::test]
async fn an_eviction_deletes_the_pod_with_its_options() {
    let case = pod_case();
    let client = Client::start(&case, 4096).await;
    client.create(&case, &case.object("web")).await.unwrap();
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                          "metadata": {"name": "web", "namespace": NAMESPACE},
                          "deleteOptions": {"gracePeriodSeconds": 7}});
    let path = format!("{}/eviction", case.path("web"));
    let evicted = client.post(&path, &eviction).await;
    expect(&evicted, 201, "an eviction").unwrap();
    let pod = client.get(&case.path("web")).await.json;
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 7, "{pod}");
    let wrong =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}});
    let refused = client.post(&path, &wrong).await;
    expect_failure(
        &refused,
        400,
        "BadRequest",
        "an eviction naming another pod",
    )
    .unwrap();
}
