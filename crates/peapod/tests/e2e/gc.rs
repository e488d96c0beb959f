//! The garbage collector in a real agent: ConfigMaps owning ConfigMaps deleted with each
//! propagation policy (background, foreground, orphan), a dependent with two owners, a
//! stale-uid reference, a foreground owner waiting for its pod to terminate, and the real
//! kubectl's `delete --cascade=background|foreground|orphan`.

use std::time::Duration;

use crate::common::kubectl::start_with_kubectl;
use crate::common::*;
use serde_json::{json, Value};

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";
const GONE_WITHIN: Duration = Duration::from_secs(15);

fn cm(name: &str) -> String {
    format!("{CMS}/{name}")
}

/// Creates ConfigMap `name` in `default`, owned by `owners`.
fn config_map(agent: &Agent, name: &str, owners: Value) -> Value {
    let object = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": owners},
        "data": {"k": "v"},
    });
    agent.api_post(CMS, &object)
}

/// An ownerReference to `owner` (as the API answered it).
fn owned_by(owner: &Value, block: bool) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    })
}

fn gone(agent: &Agent, path: &str) {
    wait_until(GONE_WITHIN, &format!("{path} to go"), || {
        agent.api_try_get(path).is_none()
    });
}

fn finalizers(object: &Value) -> Vec<&str> {
    let list = object["metadata"]["finalizers"].as_array();
    list.into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn owner_names(object: &Value) -> Vec<&str> {
    let refs = object["metadata"]["ownerReferences"].as_array();
    refs.into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect()
}

#[test]
fn config_maps_follow_their_owners_by_propagation_policy() {
    let agent = Agent::start();

    let owner = config_map(&agent, "bg-owner", json!([]));
    config_map(&agent, "bg-one", json!([owned_by(&owner, false)]));
    config_map(&agent, "bg-two", json!([owned_by(&owner, true)]));
    let (code, status) = agent.api_delete(&cm("bg-owner"), &json!({}));
    assert_eq!((code, status["status"].as_str()), (200, Some("Success")));
    gone(&agent, &cm("bg-one"));
    gone(&agent, &cm("bg-two"));

    let owner = config_map(&agent, "fg-owner", json!([]));
    config_map(&agent, "fg-dep", json!([owned_by(&owner, true)]));
    let foreground = json!({"propagationPolicy": "Foreground"});
    let (code, marked) = agent.api_delete(&cm("fg-owner"), &foreground);
    assert_eq!(code, 200, "{marked}");
    assert_eq!(finalizers(&marked), ["foregroundDeletion"]);
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    gone(&agent, &cm("fg-dep"));
    gone(&agent, &cm("fg-owner"));

    let owner = config_map(&agent, "or-owner", json!([]));
    let other = config_map(&agent, "or-other", json!([]));
    config_map(&agent, "or-dep", json!([owned_by(&owner, true)]));
    let both = json!([owned_by(&owner, false), owned_by(&other, false)]);
    config_map(&agent, "or-both", both);
    let (code, marked) = agent.api_delete(&cm("or-owner"), &json!({"orphanDependents": true}));
    assert_eq!((code, finalizers(&marked)), (200, vec!["orphan"]));
    gone(&agent, &cm("or-owner"));
    let orphan = agent.api_get(&cm("or-dep"));
    assert!(owner_names(&orphan).is_empty(), "{orphan}");
    assert_eq!(owner_names(&agent.api_get(&cm("or-both"))), ["or-other"]);
}

#[test]
fn shared_and_stale_references() {
    let agent = Agent::start();
    let first = config_map(&agent, "first", json!([]));
    let second = config_map(&agent, "second", json!([]));
    let owners = json!([owned_by(&first, false), owned_by(&second, false)]);
    config_map(&agent, "shared", owners);
    agent.api_delete(&cm("first"), &json!({}));
    wait_until(GONE_WITHIN, "the reference to first dropped", || {
        owner_names(&agent.api_get(&cm("shared"))) == ["second"]
    });
    agent.api_delete(&cm("second"), &json!({}));
    gone(&agent, &cm("shared"));

    // Same name, another uid: the owner the reference names is gone.
    let owner = config_map(&agent, "owner", json!([]));
    let mut stale = owned_by(&owner, false);
    stale["uid"] = json!("6a1f0c8e-0000-4000-8000-000000000000");
    config_map(&agent, "stale", json!([stale]));
    gone(&agent, &cm("stale"));
    assert!(agent.api_try_get(&cm("owner")).is_some());
}

/// A pod ignoring SIGTERM (its PID 1 has no handler), so it terminates at its grace period.
fn pod_owned_by(owner: &Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "ownerReferences": [owned_by(owner, true)]},
        "spec": {
            "terminationGracePeriodSeconds": 3,
            "containers": [{
                "name": "app", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
            }],
        },
    })
}

#[test]
fn a_foreground_owner_waits_for_its_pod_to_terminate() {
    let agent = Agent::start();
    let owner = config_map(&agent, "owner", json!([]));
    let pod = agent.api_post(PODS, &pod_owned_by(&owner));
    config_map(&agent, "config", json!([owned_by(&pod, false)]));
    agent.wait_running("web");
    let uid = agent.uid("web");

    let foreground = json!({"propagationPolicy": "Foreground"});
    let (code, _) = agent.api_delete(&cm("owner"), &foreground);
    assert_eq!(code, 200);
    // The pod terminates (its grace period is 3 s) while the owner waits for it.
    agent.wait_pod("web", "the pod terminating", GONE_WITHIN, |pod| {
        pod["metadata"]["deletionTimestamp"].is_string()
    });
    let waiting = agent.api_get(&cm("owner"));
    assert_eq!(finalizers(&waiting), ["foregroundDeletion"], "{waiting}");
    assert!(waiting["metadata"]["deletionTimestamp"].is_string());
    // The pod's own dependent goes too (the pod, having one, was deleted in the foreground).
    gone(&agent, &cm("config"));
    gone(&agent, &format!("{PODS}/web"));
    gone(&agent, &cm("owner"));
    agent.leak_check(&uid);
}

#[test]
fn kubectl_delete_cascades() {
    let (agent, kubectl) = start_with_kubectl();
    for cascade in ["background", "foreground", "orphan"] {
        let owner = config_map(&agent, &format!("{cascade}-owner"), json!([]));
        let dependent = format!("{cascade}-dep");
        config_map(&agent, &dependent, json!([owned_by(&owner, true)]));
        let out = kubectl.ok(&[
            "delete",
            "cm",
            &format!("{cascade}-owner"),
            &format!("--cascade={cascade}"),
            "--timeout=30s",
        ]);
        assert_eq!(
            out.trim(),
            format!("configmap \"{cascade}-owner\" deleted"),
            "{cascade}"
        );
        // kubectl waits for the owner to go: by then a foreground deletion has removed the
        // blocking dependent, and an orphan one has stripped its reference.
        assert!(agent
            .api_try_get(&cm(&format!("{cascade}-owner")))
            .is_none());
        match cascade {
            "foreground" => assert!(agent.api_try_get(&cm(&dependent)).is_none()),
            "orphan" => {
                let kept = kubectl.ok(&["get", "cm", &dependent, "-o", "json"]);
                let kept: Value = serde_json::from_str(&kept).unwrap();
                assert!(owner_names(&kept).is_empty(), "{kept}");
            }
            _ => gone(&agent, &cm(&dependent)),
        }
    }
}
