//! The collector against the real API server over an in-memory store: ConfigMaps (and pods,
//! which no kubelet removes here) owning ConfigMaps, deleted with each propagation.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use peapod_apiserver::authn::User;
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::ApiServer;
use peapod_store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;

const CMS: &str = "/api/v1/namespaces/dev/configmaps";
const PODS: &str = "/api/v1/namespaces/dev/pods";
const WAIT: Duration = Duration::from_secs(5);

/// An API server over a fresh store with namespaces `dev` and `prod`, and its collector.
struct Cluster {
    router: Router,
    store: Store,
    registry: Arc<peapod_apiserver::registry::Registry>,
    collector: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(collector) = self.collector.take() {
            collector.abort();
        }
    }
}

impl Cluster {
    async fn start(collect: bool) -> Cluster {
        let store = Store::open_in_memory().unwrap();
        let node = peapod_apis::NodeInfo {
            name: "gc-node".into(),
            addresses: Vec::new,
        };
        let api = Arc::new(ApiServer::new(peapod_apis::builtin(node), store.clone()));
        let registry = api.registry().clone();
        let router = api.router();
        let mut cluster = Cluster {
            router,
            store,
            registry,
            collector: None,
        };
        for namespace in ["dev", "prod"] {
            let body = json!({"metadata": {"name": namespace}});
            cluster.call(Method::POST, "/api/v1/namespaces", body).await;
        }
        if collect {
            cluster.collect();
        }
        cluster
    }

    /// Starts the collector, which lists every object there is before it works.
    fn collect(&mut self) {
        let client = LocalClient::new(self.router.clone());
        let registry = self.registry.clone();
        let collector = GarbageCollector::new(client, registry, self.store.clone());
        self.collector = Some(tokio::spawn(collector.run()));
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let content_type = if method == Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(match body {
                Value::Null => Body::empty(),
                body => Body::from(body.to_string()),
            })
            .unwrap();
        request.extensions_mut().insert(User::admin());
        let response = self.router.clone().oneshot(request).await.unwrap();
        let code = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn create(&self, collection: &str, object: Value) -> Value {
        let (code, created) = self.call(Method::POST, collection, object).await;
        assert_eq!(code, StatusCode::CREATED, "{created}");
        created
    }

    /// A ConfigMap in `dev` owned by `owners`.
    async fn config_map(&self, name: &str, owners: Value) -> Value {
        let object = json!({"metadata": {"name": name, "ownerReferences": owners}});
        self.create(CMS, object).await
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let (code, object) = self.call(Method::GET, path, Value::Null).await;
        (code == StatusCode::OK).then_some(object)
    }

    async fn delete(&self, path: &str, options: Value) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, options).await
    }

    async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !check().await {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn gone(&self, path: &str) {
        self.eventually(path, || async { self.get(path).await.is_none() })
            .await;
    }
}

/// An ownerReference to `owner` (as created), blocking its foreground deletion when asked.
fn owned_by(owner: &Value, block: bool) -> Value {
    json!({
        "apiVersion": owner["apiVersion"].as_str().unwrap_or("v1"),
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    })
}

fn cm(name: &str) -> String {
    format!("{CMS}/{name}")
}

fn finalizers(object: &Value) -> Vec<String> {
    graph::finalizers(object)
}

#[tokio::test]
async fn background_deletion_collects_the_dependents() {
    let cluster = Cluster::start(true).await;
    let owner = cluster.config_map("owner", json!([])).await;
    cluster
        .config_map("one", json!([owned_by(&owner, false)]))
        .await;
    cluster
        .config_map("two", json!([owned_by(&owner, true)]))
        .await;
    let (code, status) = cluster.delete(&cm("owner"), json!({})).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(status["kind"], "Status");
    cluster.gone(&cm("one")).await;
    cluster.gone(&cm("two")).await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let cluster = Cluster::start(true).await;
    let owner = cluster.config_map("owner", json!([])).await;
    let held = json!({"metadata": {
        "name": "held", "finalizers": ["example.com/hold"],
        "ownerReferences": [owned_by(&owner, true)],
    }});
    cluster.create(CMS, held).await;
    cluster
        .config_map("free", json!([owned_by(&owner, false)]))
        .await;
    let options = json!({"propagationPolicy": "Foreground"});
    let (code, deleted) = cluster.delete(&cm("owner"), options).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(finalizers(&deleted), ["foregroundDeletion"]);
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    cluster.gone(&cm("free")).await;
    // `held` is deleted but kept by its own finalizer, and keeps its owner.
    cluster
        .eventually("held marked", || async {
            cluster.get(&cm("held")).await.unwrap()["metadata"]["deletionTimestamp"].is_string()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = cluster.get(&cm("owner")).await.expect("the owner waits");
    assert_eq!(finalizers(&waiting), ["foregroundDeletion"]);
    let release = json!({"metadata": {"finalizers": null}});
    cluster.call(Method::PATCH, &cm("held"), release).await;
    cluster.gone(&cm("held")).await;
    cluster.gone(&cm("owner")).await;
}

#[tokio::test]
async fn orphan_deletion_strips_the_references_and_keeps_the_dependents() {
    let cluster = Cluster::start(true).await;
    let owner = cluster.config_map("owner", json!([])).await;
    let other = cluster.config_map("other", json!([])).await;
    let both = json!([owned_by(&owner, true), owned_by(&other, false)]);
    cluster.config_map("kept", both).await;
    cluster
        .config_map("alone", json!([owned_by(&owner, false)]))
        .await;
    let (code, deleted) = cluster
        .delete(&cm("owner"), json!({"propagationPolicy": "Orphan"}))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(finalizers(&deleted), ["orphan"]);
    cluster.gone(&cm("owner")).await;
    let alone = cluster
        .get(&cm("alone"))
        .await
        .expect("orphaned, not collected");
    assert!(
        alone["metadata"].get("ownerReferences").is_none(),
        "{alone}"
    );
    let kept = cluster.get(&cm("kept")).await.unwrap();
    let refs = kept["metadata"]["ownerReferences"].as_array().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["name"], "other");
}

#[tokio::test]
async fn a_dependent_lives_while_one_of_its_owners_does() {
    let cluster = Cluster::start(true).await;
    let first = cluster.config_map("first", json!([])).await;
    let second = cluster.config_map("second", json!([])).await;
    let owners = json!([owned_by(&first, false), owned_by(&second, false)]);
    cluster.config_map("shared", owners).await;
    cluster.delete(&cm("first"), json!({})).await;
    cluster
        .eventually("the reference to the gone owner dropped", || async {
            let shared = cluster.get(&cm("shared")).await.expect("still owned");
            shared["metadata"]["ownerReferences"]
                .as_array()
                .unwrap()
                .len()
                == 1
        })
        .await;
    cluster.delete(&cm("second"), json!({})).await;
    cluster.gone(&cm("shared")).await;
}

#[tokio::test]
async fn a_reference_with_a_stale_uid_or_from_another_namespace_is_absent() {
    let cluster = Cluster::start(true).await;
    let owner = cluster.config_map("owner", json!([])).await;
    let mut stale = owned_by(&owner, false);
    stale["uid"] = json!("00000000-0000-0000-0000-000000000000");
    cluster.config_map("stale", json!([stale])).await;
    cluster.gone(&cm("stale")).await;

    let across = json!({"metadata": {
        "name": "across", "ownerReferences": [owned_by(&owner, false)],
    }});
    let across = cluster
        .create("/api/v1/namespaces/prod/configmaps", across)
        .await;
    cluster
        .gone("/api/v1/namespaces/prod/configmaps/across")
        .await;
    let uid = across["metadata"]["uid"].as_str().unwrap().to_owned();
    let events = cluster.store.list_events(Some("prod"), Some(&uid)).unwrap();
    let event = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("OwnerRefInvalidNamespace"))
        .expect("an OwnerRefInvalidNamespace event");
    let expected = format!(
        "ownerRef [v1/ConfigMap, namespace: prod, name: owner, uid: {}] does not exist in namespace \"prod\"",
        owner["metadata"]["uid"].as_str().unwrap()
    );
    assert_eq!(event.message.as_deref(), Some(expected.as_str()));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(cluster.get(&cm("owner")).await.is_some());
}

#[tokio::test]
async fn dependents_created_before_the_collector_started_are_collected() {
    let mut cluster = Cluster::start(false).await;
    let owner = cluster.config_map("owner", json!([])).await;
    cluster
        .config_map("kept", json!([owned_by(&owner, false)]))
        .await;
    let mut gone = owned_by(&owner, false);
    gone["name"] = json!("nobody");
    gone["uid"] = json!("nobody-uid");
    cluster.config_map("orphan", json!([gone])).await;
    cluster.collect();
    cluster.gone(&cm("orphan")).await;
    assert!(cluster.get(&cm("kept")).await.is_some());
}

#[tokio::test]
async fn a_pod_dependent_blocks_its_owner_until_the_kubelet_removes_it() {
    let mut cluster = Cluster::start(false).await;
    let owner = cluster.config_map("owner", json!([])).await;
    let pod = json!({
        "metadata": {"name": "web", "ownerReferences": [owned_by(&owner, true)]},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    });
    cluster.create(PODS, pod).await;
    // Listed before the delete: the pod and the owner's deletion come on two watches, whose
    // order no collector (kube's included) can know.
    cluster.collect();
    let options = json!({"propagationPolicy": "Foreground"});
    cluster.delete(&cm("owner"), options).await;
    let pod_path = format!("{PODS}/web");
    cluster
        .eventually("the pod marked for deletion", || async {
            let pod = cluster.get(&pod_path).await.unwrap();
            pod["metadata"]["deletionTimestamp"].is_string()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(cluster.get(&cm("owner")).await.is_some(), "the owner waits");
    // What the kubelet does once the containers are gone.
    cluster.store.delete::<Pod>("dev", "web").unwrap();
    cluster.gone(&cm("owner")).await;
}

#[tokio::test]
async fn a_pod_owner_deleted_with_orphan_keeps_its_dependents() {
    let mut cluster = Cluster::start(false).await;
    let pod = json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    });
    let pod = cluster.create(PODS, pod).await;
    cluster
        .config_map("config", json!([owned_by(&pod, true)]))
        .await;
    // Listed before the delete, as in the test above.
    cluster.collect();
    let pod_path = format!("{PODS}/web");
    let (code, marked) = cluster
        .delete(&pod_path, json!({"propagationPolicy": "Orphan"}))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(finalizers(&marked), ["orphan"]);
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    cluster
        .eventually("the orphan finalizer removed", || async {
            let pod = cluster.get(&pod_path).await.unwrap();
            finalizers(&pod).is_empty()
        })
        .await;
    let config = cluster.get(&cm("config")).await.unwrap();
    assert!(config["metadata"].get("ownerReferences").is_none());
    cluster.store.delete::<Pod>("dev", "web").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(cluster.get(&cm("config")).await.is_some());
}

#[tokio::test]
async fn delete_options_set_the_finalizers_as_kube_apiserver_does() {
    let cluster = Cluster::start(false).await;
    cluster.config_map("a", json!([])).await;
    let (code, marked) = cluster
        .delete(&cm("a"), json!({"propagationPolicy": "Foreground"}))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(finalizers(&marked), ["foregroundDeletion"]);
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
    // Deleting again may switch the finalizer (the kind is not graceful).
    let (_, switched) = cluster
        .delete(&cm("a"), json!({"propagationPolicy": "Orphan"}))
        .await;
    assert_eq!(finalizers(&switched), ["orphan"]);
    // And Background drops it, which removes the object.
    let (code, removed) = cluster
        .delete(&cm("a"), json!({"propagationPolicy": "Background"}))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(removed["kind"], "Status");
    assert!(cluster.get(&cm("a")).await.is_none());

    // orphanDependents=false: kept by another finalizer, answered 202.
    let held = json!({"metadata": {"name": "b", "finalizers": ["example.com/hold"]}});
    cluster.create(CMS, held).await;
    let (code, kept) = cluster
        .delete(&format!("{}?orphanDependents=false", cm("b")), Value::Null)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{kept}");
    assert_eq!(finalizers(&kept), ["example.com/hold"]);
    // orphanDependents=true is the orphan finalizer.
    cluster.config_map("c", json!([])).await;
    let (code, kept) = cluster
        .delete(&cm("c"), json!({"orphanDependents": true}))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(finalizers(&kept), ["orphan"]);
    // An object's own finalizer is honoured when the options say nothing.
    let own = json!({"metadata": {"name": "d", "finalizers": ["foregroundDeletion"]}});
    cluster.create(CMS, own).await;
    let (_, kept) = cluster.delete(&cm("d"), json!({})).await;
    assert_eq!(finalizers(&kept), ["foregroundDeletion"]);
    assert!(kept["metadata"]["deletionTimestamp"].is_string());
}

#[tokio::test]
async fn a_dry_run_delete_writes_no_finalizer() {
    let cluster = Cluster::start(false).await;
    cluster.config_map("a", json!([])).await;
    let options = json!({"propagationPolicy": "Foreground", "dryRun": ["All"]});
    let (code, answer) = cluster.delete(&cm("a"), options).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(finalizers(&answer), ["foregroundDeletion"]);
    let stored = cluster.get(&cm("a")).await.unwrap();
    assert!(finalizers(&stored).is_empty() && stored["metadata"]["deletionTimestamp"].is_null());
}

#[tokio::test]
async fn a_pending_graceful_deletion_keeps_its_finalizers() {
    let cluster = Cluster::start(false).await;
    let pod = json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    });
    cluster.create(PODS, pod).await;
    let pod_path = format!("{PODS}/web");
    let (_, marked) = cluster.delete(&pod_path, json!({})).await;
    assert!(finalizers(&marked).is_empty());
    let (code, again) = cluster
        .delete(&pod_path, json!({"propagationPolicy": "Foreground"}))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert!(finalizers(&again).is_empty(), "{again}");
    // A shorter grace period is a new deletion, finalizers included.
    let options = json!({"propagationPolicy": "Foreground", "gracePeriodSeconds": 5});
    let (_, shorter) = cluster.delete(&pod_path, options).await;
    assert_eq!(finalizers(&shorter), ["foregroundDeletion"]);
    assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 5);
}

#[tokio::test]
async fn a_namespace_deleted_in_the_foreground_carries_the_finalizer() {
    let cluster = Cluster::start(false).await;
    let options = json!({"propagationPolicy": "Foreground"});
    let (code, marked) = cluster.delete("/api/v1/namespaces/prod", options).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(finalizers(&marked), ["foregroundDeletion"]);
    assert_eq!(marked["status"]["phase"], "Terminating");
}

#[tokio::test]
async fn owner_references_are_validated_on_create() {
    let cluster = Cluster::start(false).await;
    let object = json!({"metadata": {"name": "bad", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "1", "controller": true},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "controller": true},
    ]}});
    let (code, status) = cluster.call(Method::POST, CMS, object).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with("ConfigMap \"bad\" is invalid: [metadata.ownerReferences[1].uid: Required value: must not be empty, metadata.ownerReferences: Invalid value: "),
        "{message}"
    );
    assert!(
        message.ends_with("Only one reference can have Controller set to true. Found \"true\" in references for ConfigMap/a and ConfigMap/b]"),
        "{message}"
    );
}
