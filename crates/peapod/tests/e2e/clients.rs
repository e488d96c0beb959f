//! Real Kubernetes clients other than kubectl against an agent, with nothing but its admin
//! kubeconfig: kube-rs (the Rust client, and its runtime's watcher) and Debian's
//! python3-kubernetes. Each creates, reads, lists by label, patches, watches and deletes
//! ConfigMaps, and reads the server's version and namespaces.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::kubectl::free_port;
use crate::common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

fn start() -> (Agent, PathBuf) {
    let listen = format!("127.0.0.1:{}", free_port());
    let agent = Agent::start_with_env(&[("PEAPOD_API_LISTEN", &listen)]);
    let kubeconfig = agent.path().join("var/lib/peapod/kubeconfig.yaml");
    wait_until(Duration::from_secs(10), "the kubeconfig", || {
        kubeconfig.exists()
    });
    (agent, kubeconfig)
}

#[test]
fn kube_rs_reads_writes_and_watches() {
    let (agent, kubeconfig) = start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = Kubeconfig::read_from(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(
            (version.major.as_str(), version.minor.as_str()),
            ("1", "32")
        );
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let names: Vec<String> = namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        assert!(names.contains(&"default".to_owned()), "{names:?}");

        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "rs", "labels": {"client": "kube-rs"}},
            "data": {"a": "1"},
        }))
        .unwrap();
        let created = cms.create(&PostParams::default(), &cm).await.unwrap();
        let rv = created.metadata.resource_version.clone().unwrap();
        let listed = cms
            .list(&ListParams::default().labels("client=kube-rs"))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
        assert!(cms
            .list(&ListParams::default().labels("client=other"))
            .await
            .unwrap()
            .items
            .is_empty());

        let mut events = cms
            .watch(&WatchParams::default().fields("metadata.name=rs"), &rv)
            .await
            .unwrap()
            .boxed();
        let patch = json!({"data": {"b": "2"}});
        cms.patch("rs", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await {
            Ok(Ok(Some(WatchEvent::Modified(cm)))) => {
                assert_eq!(cm.data.unwrap().get("b").map(String::as_str), Some("2"))
            }
            other => panic!("expected MODIFIED, got {other:?}"),
        }
        cms.delete("rs", &DeleteParams::default()).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await {
            Ok(Ok(Some(WatchEvent::Deleted(_)))) => {}
            other => panic!("expected DELETED, got {other:?}"),
        }
        let gone = cms.get_opt("rs").await.unwrap();
        assert!(gone.is_none());

        // kube-runtime's watcher: list, then watch, as every controller does.
        let watcher =
            kube::runtime::watcher(cms.clone(), kube::runtime::watcher::Config::default());
        let mut watcher = watcher.boxed();
        let first = tokio::time::timeout(Duration::from_secs(10), watcher.try_next()).await;
        assert!(
            matches!(first, Ok(Ok(Some(kube::runtime::watcher::Event::Init)))),
            "{first:?}"
        );
    });
    drop(agent);
}

const PYTHON_CLIENT: &str = r#"
import sys
from kubernetes import client, config, watch
config.load_kube_config(sys.argv[1])
core = client.CoreV1Api()
names = [n.metadata.name for n in core.list_namespace().items]
assert "default" in names, names
cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py", labels={"client": "python"}), data={"a": "1"})
created = core.create_namespaced_config_map("default", cm)
assert created.metadata.uid
listed = core.list_namespaced_config_map("default", label_selector="client=python")
assert [c.metadata.name for c in listed.items] == ["py"], listed
core.patch_namespaced_config_map("py", "default", {"data": {"b": "2"}})
assert core.read_namespaced_config_map("py", "default").data == {"a": "1", "b": "2"}
w = watch.Watch()
for event in w.stream(core.list_namespaced_config_map, "default", field_selector="metadata.name=py", timeout_seconds=5):
    assert event["type"] == "ADDED" and event["object"].data["b"] == "2", event
    w.stop()
core.delete_namespaced_config_map("py", "default")
try:
    core.read_namespaced_config_map("py", "default")
    raise SystemExit("py still exists")
except client.exceptions.ApiException as e:
    assert e.status == 404, e
print("ok")
"#;

#[test]
fn python_kubernetes_reads_writes_and_watches() {
    let (agent, kubeconfig) = start();
    // Debian's python3 carries python3-kubernetes (scripts/install-deps.sh installs it).
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(PYTHON_CLIENT)
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .output()
        .expect("running /usr/bin/python3");
    assert!(
        out.status.success(),
        "python3-kubernetes: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).trim(), "ok");
    drop(agent);
}
