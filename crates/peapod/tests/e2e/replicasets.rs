//! apps/v1 ReplicaSets through the real kubectl, as test/e2e/apps/replica_set.go drives them.
//!
//! Served: api-resources lists them, a ReplicaSet is applied, read as kubectl's table (and
//! `-o wide`), described, scaled with `kubectl scale` and through its `scale` subresource (an
//! autoscaling/v1 Scale, a stale resourceVersion and negative replicas refused with kube's
//! messages), refused when its selector misses the template's labels or changes, and deleted.
//! Its pods name a service account that does not exist, so the API refuses every one: the
//! counts stay at zero, the controller says why (FailedCreate, ReplicaFailure) and backs off.
//!
//! Controlled: the pods of a ReplicaSet run, owned by it; they follow `kubectl scale` up and
//! down (the newest going first), a deleted one is replaced, an orphan that matches is adopted,
//! one relabelled out of the selector is released and replaced, and `kubectl delete rs` takes
//! the pods with it, leaving nothing of them behind.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// How long pods get to start, or to go.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);
/// The service account the first test's pods name, which no namespace has.
const GHOST: &str = "    spec:\n      serviceAccountName: ghost\n      containers:";

fn replica_set(name: &str, replicas: i32, selector: &str, labels: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {selector}\n  template:\n    metadata:\n      labels: {labels}\n    spec:\n      containers:\n      - name: app\n        image: busybox\n        command: [sleep, '3600']\n"
    )
}

/// A line of kubectl's table split on its column gaps.
fn columns(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn replica_sets_are_served_scaled_and_refused_as_a_cluster_does() {
    let (agent, kubectl) = start_with_kubectl();
    let resources = kubectl.ok(&["api-resources", "--api-group=apps"]);
    let row = resources
        .lines()
        .find(|line| line.starts_with("replicasets"))
        .unwrap_or_else(|| panic!("no replicasets in api-resources:\n{resources}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["replicasets", "rs", "apps/v1", "true", "ReplicaSet"]
    );

    let refused_pods = replica_set("web", 2, "{app: web}", "{app: web}")
        .replace("    spec:\n      containers:", GHOST);
    let created = kubectl.apply(&refused_pods);
    assert_eq!(created.trim(), "replicaset.apps/web created");
    tables_and_describe(&kubectl);
    scaling(&kubectl);
    refusals(&kubectl);
    template_warnings(&kubectl);

    failed_creations(&kubectl);
    let deleted = kubectl.ok(&["delete", "rs", "web"]);
    assert_eq!(deleted.trim(), r#"replicaset.apps "web" deleted"#);
    let gone = kubectl.fails(&["get", "rs", "web"]);
    assert!(
        gone.contains(r#"replicasets.apps "web" not found"#),
        "{gone}"
    );
    drop(agent);
}

fn tables_and_describe(kubectl: &Kubectl) {
    let table = kubectl.ok(&["get", "rs"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        columns(lines[0]),
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    );
    assert_eq!(columns(lines[1])[..4], ["web", "2", "0", "0"]);

    let wide = kubectl.ok(&["get", "rs", "web", "-o", "wide"]);
    let lines: Vec<&str> = wide.lines().collect();
    assert_eq!(
        columns(lines[0]),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let cells = columns(lines[1]);
    assert_eq!(cells[..4], ["web", "2", "0", "0"]);
    assert_eq!(cells[5..], ["app", "busybox", "app=web"]);

    let all = kubectl.ok(&["get", "all"]);
    assert!(all.contains("replicaset.apps/web"), "{all}");

    let described = kubectl.ok(&["describe", "rs", "web"]);
    for expected in [
        "Name:         web",
        "Namespace:    default",
        "Selector:     app=web",
        "Replicas:     0 current / 2 desired",
        "Pods Status:  0 Running / 0 Waiting / 0 Succeeded / 0 Failed",
        "    Image:      busybox",
    ] {
        assert!(
            described.contains(expected),
            "{expected:?} in:\n{described}"
        );
    }
}

fn scaling(kubectl: &Kubectl) {
    let scaled = kubectl.ok(&["scale", "rs/web", "--replicas=3"]);
    assert_eq!(scaled.trim(), "replicaset.apps/web scaled");
    // Once the controller has written the status of generation 2, the object rests.
    let rs = poll(
        SETTLE_WITHIN,
        Duration::from_millis(100),
        || kubectl.json(&["get", "rs", "web"]),
        |rs| rs["status"]["observedGeneration"] == 2,
    );
    assert_eq!(rs["spec"]["replicas"], 3);
    assert_eq!(rs["metadata"]["generation"], 2, "a spec change: {rs}");

    let scale = kubectl.json(&["get", "rs/web", "--subresource=scale"]);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["metadata"]["name"], "web");
    assert_eq!(scale["metadata"]["uid"], rs["metadata"]["uid"]);
    assert_eq!(
        scale["metadata"]["resourceVersion"],
        rs["metadata"]["resourceVersion"]
    );
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(
        scale["status"],
        serde_json::json!({"replicas": 0, "selector": "app=web"})
    );

    let negative = kubectl.fails(&[
        "patch",
        "rs",
        "web",
        "--subresource=scale",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":-1}}"#,
    ]);
    assert!(
        negative.contains(r#"The Scale "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#),
        "{negative}"
    );

    let stale = kubectl.fails(&[
        "patch",
        "rs",
        "web",
        "--subresource=scale",
        "--type=merge",
        "-p",
        r#"{"metadata":{"resourceVersion":"1"},"spec":{"replicas":5}}"#,
    ]);
    assert!(
        stale.contains(r#"Operation cannot be fulfilled on replicasets.apps "web": the object has been modified; please apply your changes to the latest version and try again"#),
        "{stale}"
    );
    let mut fresh = scale;
    fresh["spec"]["replicas"] = Value::from(1);
    let replaced = kubectl.with_manifest(
        &[
            "replace",
            "--raw",
            "/apis/apps/v1/namespaces/default/replicasets/web/scale",
        ],
        &fresh.to_string(),
    );
    let replaced: Value = serde_json::from_str(&replaced).unwrap();
    assert_eq!(replaced["kind"], "Scale");
    assert_eq!(replaced["spec"]["replicas"], 1);
    let rs = kubectl.json(&["get", "rs", "web"]);
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(rs["metadata"]["generation"], 3);
}

fn refusals(kubectl: &Kubectl) {
    let out = kubectl.run(
        &["apply", "-f", "-"],
        Some(&replica_set("bad", 1, "{app: web}", "{app: other}")),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(r#"The ReplicaSet "bad" is invalid: spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`"#),
        "{}",
        text(&out.stderr)
    );

    let unselected = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: bare\nspec:\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - {name: app, image: busybox}\n";
    let out = kubectl.run(&["apply", "-f", "-"], Some(unselected));
    assert!(!out.status.success());
    let refused = text(&out.stderr);
    assert!(
        refused.contains(r#"The ReplicaSet "bare" is invalid:"#)
            && refused.contains("* spec.selector: Required value")
            && refused.contains(r#"* spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`"#),
        "{refused}"
    );

    let moved = replica_set(
        "web",
        1,
        "{app: web, tier: front}",
        "{app: web, tier: front}",
    );
    let out = kubectl.run(&["apply", "-f", "-"], Some(&moved));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(r#"spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"front"}}: field is immutable"#),
        "{}",
        text(&out.stderr)
    );
}

/// A template field peapod ignores warns under `spec.template`, as it does for a pod.
fn template_warnings(kubectl: &Kubectl) {
    let manifest = replica_set("warned", 0, "{app: warned}", "{app: warned}").replace(
        "    spec:\n      containers:",
        "    spec:\n      runtimeClassName: kata\n      containers:",
    );
    let out = kubectl.run(&["apply", "-f", "-"], Some(&manifest));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "Warning: spec.template.spec.runtimeClassName: not supported by peapod, ignored"
        ),
        "{}",
        text(&out.stderr)
    );
    kubectl.ok(&["delete", "rs", "warned"]);
}

/// The API refuses the pods: no pod appears, the ReplicaSet says why in a FailedCreate event
/// and its ReplicaFailure condition, and the controller retries with a growing backoff, not in
/// a loop.
fn failed_creations(kubectl: &Kubectl) {
    let refusal = r#"pods "web-" is forbidden: error looking up service account default/ghost: serviceaccount "ghost" not found"#;
    let failure = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || kubectl.json(&["get", "rs", "web"]),
        |rs| !replica_failure(rs).is_null(),
    );
    let condition = replica_failure(&failure);
    assert_eq!(condition["status"], "True", "{failure}");
    assert_eq!(condition["reason"], "FailedCreate", "{failure}");
    assert_eq!(condition["message"], refusal, "{failure}");
    let pods = kubectl.run(&["get", "pods"], None);
    assert!(
        text(&pods.stderr).contains("No resources found in default namespace."),
        "the API refuses every pod: {}",
        text(&pods.stdout)
    );
    let described = kubectl.ok(&["describe", "rs", "web"]);
    assert!(
        described.contains(&format!("Error creating: {refusal}")),
        "{described}"
    );
    let before = failed_creates(kubectl);
    std::thread::sleep(Duration::from_secs(2));
    let after = failed_creates(kubectl);
    assert!(
        before >= 1 && after - before <= 8,
        "failed creations backed off: {before} then {after} two seconds later"
    );
}

fn replica_failure(rs: &Value) -> Value {
    let conditions = rs["status"]["conditions"].as_array().cloned();
    conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c["type"] == "ReplicaFailure")
        .unwrap_or(Value::Null)
}

/// How many creations of web's pods failed, as its events count them.
fn failed_creates(kubectl: &Kubectl) -> u64 {
    let events = kubectl.json(&["get", "events.events.k8s.io"]);
    let items = events["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter(|e| e["regarding"]["name"] == "web" && e["reason"] == "FailedCreate")
        .map(|e| e["series"]["count"].as_u64().unwrap_or(1))
        .sum()
}

/// A ReplicaSet whose pods stop within a second.
fn quick_replica_set(name: &str, replicas: i32) -> String {
    replica_set(
        name,
        replicas,
        &format!("{{app: {name}}}"),
        &format!("{{app: {name}}}"),
    )
    .replace(
        "    spec:\n      containers:",
        "    spec:\n      terminationGracePeriodSeconds: 1\n      containers:",
    )
}

/// The pods `selector` selects, terminating ones included.
fn pods_of(kubectl: &Kubectl, selector: &str) -> Vec<Value> {
    let pods = kubectl.json(&["get", "pods", "-l", selector]);
    pods["items"].as_array().cloned().unwrap_or_default()
}

fn uid(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until exactly `count` pods are selected, all running and owned by `rs`, and the
/// ReplicaSet's status counts them ready and available.
fn wait_for_pods(kubectl: &Kubectl, rs: &str, count: usize) -> Vec<Value> {
    let selector = format!("app={rs}");
    let settled = |pods: &Vec<Value>| {
        pods.len() == count && pods.iter().all(|p| all_running(p) && owner_name(p) == rs)
    };
    let pods = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || pods_of(kubectl, &selector),
        settled,
    );
    assert!(settled(&pods), "{count} running pods of {rs}: {pods:#?}");
    let want = json!(count);
    let counted = |set: &Value| {
        let status = &set["status"];
        count == 0
            || (status["replicas"] == want
                && status["readyReplicas"] == want
                && status["availableReplicas"] == want)
    };
    let set = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || kubectl.json(&["get", "rs", rs]),
        counted,
    );
    assert!(counted(&set), "status counts {count}: {set}");
    pods
}

fn owner_name(pod: &Value) -> String {
    let owners = pod["metadata"]["ownerReferences"].as_array().cloned();
    let controller = owners
        .unwrap_or_default()
        .into_iter()
        .find(|o| o["controller"] == true);
    controller.map_or_else(String::new, |o| {
        o["name"].as_str().unwrap_or_default().to_owned()
    })
}

#[test]
fn a_replica_set_keeps_its_pods_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    kubectl.apply(&quick_replica_set("web", 2));
    let rs = kubectl.json(&["get", "rs", "web"]);
    let first = wait_for_pods(&kubectl, "web", 2);
    for pod in &first {
        assert_eq!(
            pod["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                    "uid": uid(&rs), "controller": true, "blockOwnerDeletion": true}]),
            "{pod}"
        );
        assert!(name(pod).starts_with("web-"), "{pod}");
    }
    let originals: BTreeSet<String> = first.iter().map(uid).collect();
    seen.extend(originals.clone());

    // Pods ready for times in the same power-of-two bucket go in uid order (kube's
    // LogarithmicScaleDown); ready at least twice as long as the newer ones (ready times
    // count in whole seconds), the originals are sure to be kept.
    std::thread::sleep(Duration::from_secs(5));
    let scaled = kubectl.ok(&["scale", "rs", "web", "--replicas=4"]);
    assert_eq!(scaled.trim(), "replicaset.apps/web scaled");
    seen.extend(wait_for_pods(&kubectl, "web", 4).iter().map(uid));
    kubectl.ok(&["scale", "rs", "web", "--replicas=1"]);
    let survivor = wait_for_pods(&kubectl, "web", 1).remove(0);
    assert!(originals.contains(&uid(&survivor)), "{survivor}");
    let described = kubectl.ok(&["describe", "rs", "web"]);
    assert!(described.contains("SuccessfulCreate"), "{described}");
    assert!(described.contains("Deleted pod: web-"), "{described}");

    kubectl.ok(&["delete", "pod", &name(&survivor)]);
    let replacement = wait_for_pods(&kubectl, "web", 1).remove(0);
    assert_ne!(uid(&replacement), uid(&survivor));
    seen.insert(uid(&replacement));

    adoption_and_release(&kubectl, &mut seen);

    for rs in ["web", "adopter"] {
        let deleted = kubectl.ok(&["delete", "rs", rs]);
        assert_eq!(deleted.trim(), format!(r#"replicaset.apps "{rs}" deleted"#));
    }
    wait_until(
        SETTLE_WITHIN,
        "the garbage collector to delete the pods",
        || pods_of(&kubectl, "app in (web, adopter)").is_empty(),
    );
    for uid in &seen {
        agent.leak_check(uid);
    }
}

/// An orphan matching a new ReplicaSet is adopted instead of a pod being created; relabelled
/// out of its selector, it is released and replaced.
fn adoption_and_release(kubectl: &Kubectl, seen: &mut BTreeSet<String>) {
    kubectl.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: orphan\n  labels: {app: adopter}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n",
    );
    let orphan = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || kubectl.json(&["get", "pod", "orphan"]),
        all_running,
    );
    seen.insert(uid(&orphan));
    kubectl.apply(&quick_replica_set("adopter", 1));
    let adopted = wait_for_pods(kubectl, "adopter", 1).remove(0);
    assert_eq!(name(&adopted), "orphan", "adopted, not replaced: {adopted}");
    assert_eq!(uid(&adopted), uid(&orphan));

    kubectl.ok(&["label", "pod", "orphan", "app=released", "--overwrite"]);
    let released = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || kubectl.json(&["get", "pod", "orphan"]),
        |pod| {
            pod["metadata"]["ownerReferences"]
                .as_array()
                .is_none_or(Vec::is_empty)
        },
    );
    assert!(owner_name(&released).is_empty(), "released: {released}");
    let replacement = wait_for_pods(kubectl, "adopter", 1).remove(0);
    assert_ne!(name(&replacement), "orphan");
    seen.insert(uid(&replacement));
    kubectl.ok(&["delete", "pod", "orphan"]);
}
