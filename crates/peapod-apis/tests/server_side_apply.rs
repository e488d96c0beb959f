//! Server-side apply and managedFields through the real router, with the requests kubectl and
//! client-go send: `PATCH application/apply-patch+yaml?fieldManager=...&force=...`, creates
//! and updates recorded under the User-Agent's manager, conflicts worded as kube-apiserver
//! words them, kubectl's migration from client-side apply.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use peapod_apis::NodeInfo;
use peapod_apiserver::authn::User;
use peapod_apiserver::ApiServer;
use peapod_store::{Store, StoreOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const CMS: &str = "/api/v1/namespaces/ssa/configmaps";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

struct Reply {
    status: u16,
    text: String,
    json: Value,
    warnings: Vec<String>,
}

struct Client {
    app: Router,
}

impl Client {
    async fn start() -> Client {
        let store = Store::open_with(None, StoreOptions::default()).expect("an in-memory store");
        let node = NodeInfo {
            name: "node".into(),
            addresses: || vec![Ipv4Addr::LOCALHOST],
        };
        let api = Arc::new(ApiServer::new(peapod_apis::builtin(node), store));
        let client = Client { app: api.router() };
        let namespace = json!({"metadata": {"name": "ssa"}});
        let created = client
            .send(Method::POST, "/api/v1/namespaces", &[], Some(&namespace))
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        client
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        self.send_raw(method, uri, headers, bytes).await
    }

    async fn send_raw(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        let mut has_type = false;
        for (name, value) in headers {
            has_type |= name.eq_ignore_ascii_case("content-type");
            builder = builder.header(*name, *value);
        }
        if !has_type {
            builder = builder.header("content-type", "application/json");
        }
        let mut request = builder.body(Body::from(body)).unwrap();
        request.extensions_mut().insert(User::admin());
        let Ok(response) = self.app.clone().oneshot(request).await;
        let status = response.status().as_u16();
        let warnings = response
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            text,
            json,
            warnings,
        }
    }

    /// What `kubectl apply --server-side` sends: the manifest as JSON, as an apply patch.
    async fn apply(&self, name: &str, query: &str, body: &Value) -> Reply {
        let uri = format!("{CMS}/{name}?{query}");
        self.send(Method::PATCH, &uri, &[("content-type", APPLY)], Some(body))
            .await
    }

    async fn get(&self, name: &str) -> Reply {
        self.send(Method::GET, &format!("{CMS}/{name}"), &[], None)
            .await
    }
}

fn cm(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "ssa"}, "data": data})
}

/// (manager, operation, fieldsV1) of each managedFields entry.
fn managers(object: &Value) -> Vec<(String, String, Value)> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let text = |n: &str| e[n].as_str().unwrap_or_default().to_owned();
                    (text("manager"), text("operation"), e["fieldsV1"].clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn entry(manager: &str, operation: &str, fields: Value) -> (String, String, Value) {
    (manager.to_owned(), operation.to_owned(), fields)
}

#[tokio::test]
async fn apply_creates_configures_conflicts_and_forces() {
    let client = Client::start().await;
    let kubectl = "fieldManager=kubectl&fieldValidation=Strict&force=false";

    let created = client
        .apply("cm", kubectl, &cm("cm", json!({"a": "1", "b": "2"})))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["data"], json!({"a": "1", "b": "2"}));
    let first = &created.json["metadata"]["managedFields"][0];
    assert_eq!(first["manager"], "kubectl");
    assert_eq!(first["operation"], "Apply");
    assert_eq!(first["apiVersion"], "v1");
    assert_eq!(first["fieldsType"], "FieldsV1");
    assert!(first["time"].is_string());
    assert_eq!(first["fieldsV1"], json!({"f:data": {"f:a": {}, "f:b": {}}}));

    // Applied again without b and with a new c: b is removed.
    let configured = client
        .apply("cm", kubectl, &cm("cm", json!({"a": "1", "c": "3"})))
        .await;
    assert_eq!(configured.status, 200, "{}", configured.text);
    assert_eq!(configured.json["data"], json!({"a": "1", "c": "3"}));

    // Unchanged: nothing is written.
    let rv = configured.json["metadata"]["resourceVersion"].clone();
    let same = client
        .apply("cm", kubectl, &cm("cm", json!({"a": "1", "c": "3"})))
        .await;
    assert_eq!(same.status, 200);
    assert_eq!(same.json["metadata"]["resourceVersion"], rv);

    // kubectl patch changes a: an Update entry for kubectl-patch takes it.
    let patched = client
        .send(
            Method::PATCH,
            &format!("{CMS}/cm?fieldManager=kubectl-patch"),
            &[("content-type", MERGE)],
            Some(&json!({"data": {"a": "patched"}})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        managers(&patched.json),
        [
            entry("kubectl", "Apply", json!({"f:data": {"f:c": {}}})),
            entry("kubectl-patch", "Update", json!({"f:data": {"f:a": {}}})),
        ]
    );

    // Another applier changing a conflicts with kubectl-patch.
    let other = "fieldManager=other&force=false";
    let refused = client
        .apply("cm", other, &cm("cm", json!({"a": "mine"})))
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.json["reason"], "Conflict");
    assert_eq!(
        refused.json["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.a"
    );
    assert_eq!(
        refused.json["details"]["causes"],
        json!([{"reason": "FieldManagerConflict",
                "message": "conflict with \"kubectl-patch\" using v1", "field": ".data.a"}])
    );

    // Forced, it takes a over; the same value applied by kubectl is shared.
    let forced = client
        .apply(
            "cm",
            "fieldManager=other&force=true",
            &cm("cm", json!({"a": "mine"})),
        )
        .await;
    assert_eq!(forced.status, 200, "{}", forced.text);
    assert_eq!(forced.json["data"], json!({"a": "mine", "c": "3"}));
    assert_eq!(
        managers(&forced.json),
        [
            entry("kubectl", "Apply", json!({"f:data": {"f:c": {}}})),
            entry("other", "Apply", json!({"f:data": {"f:a": {}}})),
        ]
    );
    let shared = client
        .apply("cm", kubectl, &cm("cm", json!({"a": "mine", "c": "3"})))
        .await;
    assert_eq!(shared.status, 200, "{}", shared.text);
    assert_eq!(
        managers(&shared.json)[0].2,
        json!({"f:data": {"f:a": {}, "f:c": {}}})
    );

    // kubectl stops applying a: other still owns it, so it stays.
    let kept = client
        .apply("cm", kubectl, &cm("cm", json!({"c": "3"})))
        .await;
    assert_eq!(kept.json["data"], json!({"a": "mine", "c": "3"}));
    assert_eq!(
        client.get("cm").await.json["data"],
        json!({"a": "mine", "c": "3"})
    );
}

#[tokio::test]
async fn apply_refusals_read_as_kubes() {
    let client = Client::start().await;
    let missing = client
        .apply("cm", "force=false", &cm("cm", json!({})))
        .await;
    assert_eq!(missing.status, 422, "{}", missing.text);
    assert_eq!(
        missing.json["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );

    let mut unknown = cm("cm", json!({"a": "1"}));
    unknown["spec"] = json!({"replicas": 1});
    let refused = client
        .apply("cm", "fieldManager=m&fieldValidation=Strict", &unknown)
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        refused.json["message"],
        "failed to create typed patch object (ssa/cm; /v1, Kind=ConfigMap): .spec: field not declared in schema"
    );

    let yaml =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: \"1\"\n  a: \"2\"\n";
    let uri = format!("{CMS}/cm?fieldManager=m&fieldValidation=Strict");
    let headers = [("content-type", APPLY)];
    let strict = client
        .send_raw(Method::PATCH, &uri, &headers, yaml.into())
        .await;
    assert_eq!(strict.status, 400, "{}", strict.text);
    assert_eq!(
        strict.json["message"],
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key \"a\" already set in map"
    );
    let uri = format!("{CMS}/cm?fieldManager=m&fieldValidation=Warn");
    let warned = client
        .send_raw(Method::PATCH, &uri, &headers, yaml.into())
        .await;
    assert_eq!(warned.status, 201, "{}", warned.text);
    assert_eq!(warned.warnings.len(), 1, "{:?}", warned.warnings);
    assert!(
        warned.warnings[0].contains("error converting YAML to JSON: yaml: unmarshal errors:"),
        "{:?}",
        warned.warnings
    );

    let wrong = client
        .apply("other", "fieldManager=m", &cm("cm", json!({})))
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json["message"],
        "the name of the object (cm) does not match the name on the URL (other)"
    );

    let cbor = client
        .send_raw(
            Method::PATCH,
            &format!("{CMS}/cm?fieldManager=m"),
            &[("content-type", "application/apply-patch+cbor")],
            vec![0xa0],
        )
        .await;
    assert_eq!(cbor.status, 415, "{}", cbor.text);

    let forced = client
        .send(
            Method::PATCH,
            &format!("{CMS}/cm?force=true"),
            &[("content-type", MERGE)],
            Some(&json!({"data": {"b": "1"}})),
        )
        .await;
    assert_eq!(forced.status, 422, "{}", forced.text);
}

#[tokio::test]
async fn dry_run_apply_stores_nothing() {
    let client = Client::start().await;
    let query = "fieldManager=kubectl&dryRun=All&force=true";
    let dry = client
        .apply("dry", query, &cm("dry", json!({"a": "1"})))
        .await;
    assert_eq!(dry.status, 201, "{}", dry.text);
    assert_eq!(dry.json["data"], json!({"a": "1"}));
    assert_eq!(client.get("dry").await.status, 404);
}

#[tokio::test]
async fn every_write_records_its_manager() {
    let client = Client::start().await;
    let agent = [(
        "user-agent",
        "kubectl-create/v1.32.4 (linux/amd64) kubernetes/abcdef",
    )];
    let created = client
        .send(Method::POST, CMS, &agent, Some(&cm("w", json!({"a": "1"}))))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        managers(&created.json),
        [entry(
            "kubectl-create",
            "Update",
            json!({"f:data": {".": {}, "f:a": {}}})
        )]
    );

    // A PUT with no user agent and no fieldManager is "unknown"'s.
    let mut edited = created.json.clone();
    edited["data"]["b"] = json!("2");
    let updated = client
        .send(Method::PUT, &format!("{CMS}/w"), &[], Some(&edited))
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(
        managers(&updated.json)[1],
        entry("unknown", "Update", json!({"f:data": {"f:b": {}}}))
    );

    // `[{}]` clears them; an object nobody tracks is not tracked on update.
    let mut reset = updated.json.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    let cleared = client
        .send(Method::PUT, &format!("{CMS}/w"), &[], Some(&reset))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert!(
        cleared.json["metadata"].get("managedFields").is_none(),
        "{}",
        cleared.text
    );
    let label = json!({"metadata": {"labels": {"x": "y"}}});
    let labelled = client
        .send(
            Method::PATCH,
            &format!("{CMS}/w?fieldManager=kubectl-label"),
            &[("content-type", MERGE)],
            Some(&label),
        )
        .await;
    assert!(labelled.json["metadata"].get("managedFields").is_none());

    // Applying to it then makes what exists "before-first-apply"'s.
    let applied = client
        .apply("w", "fieldManager=kubectl", &cm("w", json!({"c": "3"})))
        .await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    let names: Vec<String> = managers(&applied.json).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["kubectl", "before-first-apply"]);

    // Status writes are recorded with their subresource.
    let pods = "/api/v1/namespaces/ssa/pods";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"containers": [{"name": "app", "image": "busybox"}]}});
    let created = client
        .send(
            Method::POST,
            &format!("{pods}?fieldManager=kubectl-run"),
            &[],
            Some(&pod),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let status = json!({"status": {"message": "hello"}});
    let patched = client
        .send(
            Method::PATCH,
            &format!("{pods}/p/status?fieldManager=kubelet"),
            &[("content-type", MERGE)],
            Some(&status),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let kubelet = patched.json["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kubelet")
        .cloned()
        .unwrap_or_else(|| panic!("no kubelet entry: {}", patched.text));
    assert_eq!(kubelet["subresource"], "status");
    assert_eq!(kubelet["fieldsV1"], json!({"f:status": {"f:message": {}}}));
}

#[tokio::test]
async fn kubectl_migrates_from_client_side_apply() {
    let client = Client::start().await;
    // `kubectl apply` (client-side) created it with its annotation.
    let manifest = cm("mig", json!({"a": "1", "b": "2"}));
    let mut annotated = manifest.clone();
    let last = format!("{}\n", serde_json::to_string(&manifest).unwrap());
    annotated["metadata"]["annotations"] = json!({ LAST_APPLIED: last });
    let created = client
        .send(
            Method::POST,
            &format!("{CMS}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"),
            &[],
            Some(&annotated),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    // `kubectl apply --server-side` with a changed value: no conflict with client-side apply,
    // whose last-applied configuration set the value the object still holds.
    let changed = cm("mig", json!({"a": "changed", "b": "2"}));
    let applied = client
        .apply(
            "mig",
            "fieldManager=kubectl&fieldValidation=Strict&force=false",
            &changed,
        )
        .await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    assert_eq!(applied.json["data"], json!({"a": "changed", "b": "2"}));
    let annotation = applied.json["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(annotation.contains("\"changed\""), "{annotation}");

    // Its second apply: the annotation alone, as kubectl-last-applied, without force.
    let only = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "mig", "namespace": "ssa",
                                   "annotations": {LAST_APPLIED: annotation}}});
    let saved = client
        .apply("mig", "fieldManager=kubectl-last-applied", &only)
        .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    let owners: Vec<String> = managers(&saved.json)
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

    // Then its JSON patch moving client-side apply's fields to kubectl (csaupgrade), which
    // the server keeps as sent.
    let mut entries = saved.json["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .clone();
    entries.retain(|e| e["manager"] != "kubectl-client-side-apply");
    let patch = json!([
        {"op": "test", "path": "/metadata/resourceVersion",
         "value": saved.json["metadata"]["resourceVersion"]},
        {"op": "replace", "path": "/metadata/managedFields", "value": entries},
    ]);
    let upgraded = client
        .send(
            Method::PATCH,
            &format!("{CMS}/mig?fieldManager=kubectl"),
            &[("content-type", JSON_PATCH)],
            Some(&patch),
        )
        .await;
    assert_eq!(upgraded.status, 200, "{}", upgraded.text);
    let names: Vec<String> = managers(&upgraded.json).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["kubectl-last-applied", "kubectl"]);
}

#[tokio::test]
async fn pods_apply_by_container_and_status_applies_alone() {
    let client = Client::start().await;
    let pods = "/api/v1/namespaces/ssa/pods";
    let pod = |image: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ssa"},
               "spec": {"containers": [{"name": "app", "image": image,
                                        "ports": [{"containerPort": 80}]}]}})
    };
    let apply = |query: &str, body: Value| {
        let uri = format!("{pods}/p?{query}");
        let client = &client;
        async move {
            client
                .send(Method::PATCH, &uri, &[("content-type", APPLY)], Some(&body))
                .await
        }
    };
    let created = apply("fieldManager=deployer", pod("busybox")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.json["spec"]["dnsPolicy"], "ClusterFirst",
        "defaulted"
    );
    assert_eq!(
        created.json["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
            ".": {}, "f:image": {}, "f:name": {},
            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}})
    );
    let conflict = apply("fieldManager=other", pod("nginx")).await;
    assert_eq!(conflict.status, 409, "{}", conflict.text);
    assert_eq!(
        conflict.json["message"],
        "Apply failed with 1 conflict: conflict with \"deployer\": .spec.containers[name=\"app\"].image"
    );

    // A status apply owns only status, recorded with its subresource.
    let status = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                        "status": {"message": "applied"}});
    let uri = format!("{pods}/p/status?fieldManager=kubelet&force=true");
    let applied = client
        .send(
            Method::PATCH,
            &uri,
            &[("content-type", APPLY)],
            Some(&status),
        )
        .await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    assert_eq!(applied.json["status"]["message"], "applied");
    let kubelet = applied.json["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "kubelet")
        .cloned()
        .unwrap();
    assert_eq!(kubelet["operation"], "Apply");
    assert_eq!(kubelet["subresource"], "status");
    assert_eq!(kubelet["fieldsV1"], json!({"f:status": {"f:message": {}}}));
    let mut absent = status.clone();
    absent["metadata"]["name"] = json!("absent");
    let missing = client
        .send(
            Method::PATCH,
            &format!("{pods}/absent/status?fieldManager=kubelet"),
            &[("content-type", APPLY)],
            Some(&absent),
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
}
