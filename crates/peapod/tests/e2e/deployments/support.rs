//! What the Deployment controller's tests share: the manifests, reading Deployments,
//! ReplicaSets and pods through kubectl, watches recording every change during a rollout,
//! and the end of every test (everything deleted, every pod seen leak-checked).

use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::Kubectl;
pub use crate::common::kubectl::Watch;
use crate::common::*;

/// How long pods get to start, or to go, and a rollout to finish.
pub const SETTLE_WITHIN: Duration = Duration::from_secs(60);

/// A Deployment `name` of `replicas` busybox pods that stop within a second, labelled
/// `app: name`; `spec` is more of its spec (indented by two spaces), e.g. a strategy.
pub fn deployment(name: &str, replicas: i32, spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n{spec}  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: busybox\n        command: [sleep, '3600']\n"
    )
}

pub fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn uid(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

/// The deployment.kubernetes.io/revision of a Deployment or ReplicaSet.
pub fn revision(object: &Value) -> String {
    annotation(object, "deployment.kubernetes.io/revision")
        .unwrap_or_default()
        .to_owned()
}

pub fn replicas(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap_or_default()
}

pub fn image(object: &Value) -> String {
    object["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn controller_uid(object: &Value) -> String {
    let owners = object["metadata"]["ownerReferences"].as_array().cloned();
    let controller = owners
        .unwrap_or_default()
        .into_iter()
        .find(|o| o["controller"] == true);
    controller.map_or_else(String::new, |o| uid(&serde_json::json!({"metadata": o})))
}

/// The ReplicaSets labelled `app=<app>`, oldest revision first.
pub fn replica_sets(kubectl: &Kubectl, app: &str) -> Vec<Value> {
    let listed = kubectl.json(&["get", "rs", "-l", &format!("app={app}")]);
    let mut sets = listed["items"].as_array().cloned().unwrap_or_default();
    sets.sort_by_key(|rs| revision(rs).parse::<i64>().unwrap_or_default());
    sets
}

/// The pods labelled `app=<app>`, terminating ones included.
pub fn pods(kubectl: &Kubectl, app: &str) -> Vec<Value> {
    let listed = kubectl.json(&["get", "pods", "-l", &format!("app={app}")]);
    listed["items"].as_array().cloned().unwrap_or_default()
}

pub fn condition_reason(d: &Value, type_: &str) -> String {
    condition(d, type_)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `kubectl rollout status` of `d`, bounded by kubectl's own timeout.
pub fn rollout_status(kubectl: &Kubectl, d: &str) -> Output {
    kubectl.run(
        &["rollout", "status", &format!("deploy/{d}"), "--timeout=90s"],
        None,
    )
}

/// Waits for `kubectl rollout status` to say `d` rolled out.
pub fn rolled_out(kubectl: &Kubectl, d: &str) {
    let out = rollout_status(kubectl, d);
    assert!(
        out.status.success(),
        "rollout status: {}\n{}\n{:#}",
        text(&out.stdout),
        text(&out.stderr),
        Value::Array(replica_sets(kubectl, d))
    );
    assert!(
        text(&out.stdout).contains(&format!("deployment \"{d}\" successfully rolled out")),
        "{}",
        text(&out.stdout)
    );
}

/// The `ScalingReplicaSet` messages of Deployment `d`'s events, oldest first.
pub fn scaling_events(kubectl: &Kubectl, d: &str) -> Vec<String> {
    let events = kubectl.json(&["get", "events"]);
    let mut items = events["items"].as_array().cloned().unwrap_or_default();
    items.retain(|e| {
        e["reason"] == "ScalingReplicaSet"
            && e["involvedObject"]["kind"] == "Deployment"
            && e["involvedObject"]["name"] == d
    });
    items.sort_by_key(|e| e["eventTime"].as_str().unwrap_or_default().to_owned());
    items
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Deletes Deployment `d` (its ReplicaSets and pods following), waits for its pods to go and
/// leak-checks every pod the watches saw.
pub fn delete_and_leak_check(agent: &Agent, kubectl: &Kubectl, d: &str, watches: &[&Watch]) {
    let mut seen: BTreeSet<String> = pods(kubectl, d).iter().map(uid).collect();
    let deleted = kubectl.ok(&["delete", "deploy", d]);
    assert_eq!(deleted.trim(), format!("deployment.apps \"{d}\" deleted"));
    wait_until(SETTLE_WITHIN, "the pods to go", || {
        pods(kubectl, d).is_empty() && replica_sets(kubectl, d).is_empty()
    });
    seen.extend(watches.iter().flat_map(|w| w.uids()));
    assert!(!seen.is_empty(), "the watches saw pods");
    for uid in &seen {
        agent.leak_check(uid);
    }
}
