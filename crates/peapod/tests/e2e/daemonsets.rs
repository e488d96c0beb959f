//! apps/v1 DaemonSets through the real kubectl, as test/e2e/apps/daemon_set.go drives them on
//! one node.
//!
//! Served: api-resources lists daemonsets (`ds`) and controllerrevisions, kubectl's tables; a
//! condition written through the status subresource stays; `delete -l` deletes a labelled one.
//! Controlled: one pod on the node, with the controller's tolerations and node affinity, its
//! revision hash and template generation; a deleted pod is replaced; a nodeSelector the node
//! misses asks for no pod until `kubectl label node` gives it the label, and the pod goes
//! when the label does (or the nodeSelector changes; a required node affinity alike); a
//! NoSchedule taint keeps new pods off unless tolerated (a running one stays); `set image`
//! rolls the pod (RollingUpdate: the old pod first, or with maxSurge the new one beside it
//! until it is available), OnDelete waits for the user's delete; a pod marked Failed is
//! killed and replaced; `rollout status`, `rollout history` and `rollout undo` read and
//! restore the ControllerRevisions. Every test restores the node and ends with the leak check.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// How long pods get to start, or to go.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_millis(200);

/// A DaemonSet `name` whose pods (labelled `app: <name>`) sleep and stop within a second;
/// `extra` is added to the pod spec (indented by 6).
fn daemon_set(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n{extra}      containers:\n      - name: app\n        image: busybox\n        command: [sleep, '3600']\n"
    )
}

fn columns(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn node_name(kubectl: &Kubectl) -> String {
    kubectl.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"])
}

/// The pods of DaemonSet `name`, terminating ones included.
fn pods_of(kubectl: &Kubectl, name: &str) -> Vec<Value> {
    let pods = kubectl.json(&["get", "pods", "-l", &format!("app={name}")]);
    pods["items"].as_array().cloned().unwrap_or_default()
}

/// Waits for exactly one pod of `name`, running and not terminating, that `accept`s; and
/// for the DaemonSet's status to count it (up to date or not), observed at its generation.
fn wait_for_pod(kubectl: &Kubectl, name: &str, accept: impl Fn(&Value) -> bool) -> Value {
    wait_for_pod_counted(kubectl, name, 1, accept)
}

fn wait_for_pod_counted(
    kubectl: &Kubectl,
    name: &str,
    updated: i64,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let settled = |pods: &Vec<Value>| {
        pods.len() == 1
            && all_running(&pods[0])
            && pods[0]["metadata"]["deletionTimestamp"].is_null()
            && accept(&pods[0])
    };
    let pods = poll(SETTLE_WITHIN, INTERVAL, || pods_of(kubectl, name), settled);
    assert!(settled(&pods), "one running pod of {name}: {pods:#?}");
    wait_for_status(kubectl, name, 1, updated);
    pods[0].clone()
}

/// Waits until the status of `name`, observed at its generation, desires `desired` pods and
/// counts `updated` of them up to date (and all of them ready and available).
fn wait_for_status(kubectl: &Kubectl, name: &str, desired: i64, updated: i64) -> Value {
    let counted = |ds: &Value| {
        let status = &ds["status"];
        status["observedGeneration"] == ds["metadata"]["generation"]
            && status["desiredNumberScheduled"] == desired
            && status["currentNumberScheduled"] == desired
            && status["numberReady"] == desired
            && status["numberAvailable"].as_i64().unwrap_or(0) == desired
            && status["updatedNumberScheduled"].as_i64().unwrap_or(0) == updated
    };
    let ds = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "ds", name]),
        counted,
    );
    assert!(
        counted(&ds),
        "status of {name}: {desired} desired, {updated} updated: {ds}"
    );
    ds
}

fn wait_for_no_pods(kubectl: &Kubectl, name: &str) {
    wait_until(SETTLE_WITHIN, &format!("the pods of {name} to go"), || {
        pods_of(kubectl, name).is_empty()
    });
}

fn uid(object: &Value) -> String {
    text(&object["metadata"]["uid"])
}

fn hash(pod: &Value) -> String {
    text(&pod["metadata"]["labels"]["controller-revision-hash"])
}

/// Deletes the DaemonSets, waits for their pods to go, and checks nothing of them is left.
fn delete_and_check(agent: &Agent, kubectl: &Kubectl, names: &[&str], seen: &BTreeSet<String>) {
    for name in names {
        let deleted = kubectl.ok(&["delete", "ds", name]);
        assert_eq!(
            deleted.trim(),
            format!(r#"daemonset.apps "{name}" deleted"#)
        );
    }
    for name in names {
        wait_for_no_pods(kubectl, name);
    }
    for uid in seen {
        agent.leak_check(uid);
    }
}

#[test]
fn a_daemon_set_runs_one_pod_on_the_node() {
    let (agent, kubectl) = start_with_kubectl();
    let resources = kubectl.ok(&["api-resources", "--api-group=apps"]);
    for expected in [
        ["daemonsets", "ds", "apps/v1", "true", "DaemonSet"].as_slice(),
        &[
            "controllerrevisions",
            "apps/v1",
            "true",
            "ControllerRevision",
        ],
    ] {
        let found = resources
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == expected);
        assert!(found, "{expected:?} in:\n{resources}");
    }
    let node = node_name(&kubectl);
    let created = kubectl.apply(&daemon_set("agent", ""));
    assert_eq!(created.trim(), "daemonset.apps/agent created");
    let ds = kubectl.json(&["get", "ds", "agent"]);
    let pod = wait_for_pod(&kubectl, "agent", |_| true);
    placed_as_kube_places_it(&pod, &ds, &node);
    tables(&kubectl, &hash(&pod));
    let status = kubectl.ok(&["rollout", "status", "ds/agent", "--timeout=30s"]);
    assert!(
        status.contains(r#"daemon set "agent" successfully rolled out"#),
        "{status}"
    );

    // test/e2e's "should verify changes to a daemon set status": a condition written
    // through the status subresource stays across the controller's own status writes, and
    // the annotation written with it is kept (kube's status strategy resets only the spec).
    let patched = r#"{"metadata":{"annotations":{"patchedstatus":"true"}},"status":{"conditions":[{"type":"StatusPatched","status":"True"}]}}"#;
    let patch = [
        "patch",
        "ds",
        "agent",
        "--subresource=status",
        "--type=merge",
        "-p",
        patched,
    ];
    kubectl.ok(&patch);
    let mut seen = BTreeSet::from([uid(&pod)]);
    kubectl.ok(&["delete", "pod", &text(&pod["metadata"]["name"])]);
    let replacement = wait_for_pod(&kubectl, "agent", |p| uid(p) != uid(&pod));
    seen.insert(uid(&replacement));
    failed_pods_are_replaced(&kubectl, &replacement, &node, &mut seen);
    let status = kubectl.json(&["get", "ds", "agent", "--subresource=status"]);
    assert_eq!(
        status["status"]["conditions"],
        json!([{"type": "StatusPatched", "status": "True"}]),
        "{status}"
    );
    assert_eq!(
        status["metadata"]["annotations"]["patchedstatus"], "true",
        "{status}"
    );
    // test/e2e's "should list and delete a collection of DaemonSets".
    kubectl.ok(&["label", "ds", "agent", "e2e=collection"]);
    let deleted = kubectl.ok(&["delete", "ds", "-l", "e2e=collection"]);
    assert_eq!(deleted.trim(), r#"daemonset.apps "agent" deleted"#);
    wait_for_no_pods(&kubectl, "agent");
    for uid in &seen {
        agent.leak_check(uid);
    }
    wait_until(SETTLE_WITHIN, "the revisions to go", || {
        let revisions = kubectl.json(&["get", "controllerrevisions"]);
        revisions["items"].as_array().is_none_or(Vec::is_empty)
    });
}

/// The pod carries the revision labels, the controller reference, the node affinity that
/// pins it to the node, and the controller's default tolerations.
fn placed_as_kube_places_it(pod: &Value, ds: &Value, node: &str) {
    assert_eq!(pod["spec"]["nodeName"], node);
    assert_eq!(pod["metadata"]["labels"]["pod-template-generation"], "1");
    assert_eq!(
        pod["metadata"]["ownerReferences"],
        json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": uid(ds),
                "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(
        pod["spec"]["affinity"],
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}})
    );
    let tolerations: Vec<String> = pod["spec"]["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}:{}:{}",
                text(&t["key"]),
                text(&t["operator"]),
                text(&t["effect"])
            )
        })
        .collect();
    assert_eq!(
        tolerations,
        [
            "node.kubernetes.io/not-ready:Exists:NoExecute",
            "node.kubernetes.io/unreachable:Exists:NoExecute",
            "node.kubernetes.io/disk-pressure:Exists:NoSchedule",
            "node.kubernetes.io/memory-pressure:Exists:NoSchedule",
            "node.kubernetes.io/pid-pressure:Exists:NoSchedule",
            "node.kubernetes.io/unschedulable:Exists:NoSchedule",
        ]
    );
}

/// test/e2e's "should retry creating failed daemon pods": a pod marked Failed is killed, with
/// kube's warning, and replaced.
fn failed_pods_are_replaced(
    kubectl: &Kubectl,
    failed: &Value,
    node: &str,
    seen: &mut BTreeSet<String>,
) {
    kubectl.ok(&[
        "patch",
        "pod",
        &text(&failed["metadata"]["name"]),
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Failed"}}"#,
    ]);
    let revived = wait_for_pod(kubectl, "agent", |p| uid(p) != uid(failed));
    seen.insert(uid(&revived));
    let described = kubectl.ok(&["describe", "ds", "agent"]);
    let killed = format!(
        "Found failed daemon pod default/{} on node {node}, will try to kill it",
        text(&failed["metadata"]["name"])
    );
    for expected in [
        "FailedDaemonPod",
        killed.as_str(),
        "SuccessfulCreate",
        "Created pod: agent-",
        "Desired Number of Nodes Scheduled: 1",
    ] {
        assert!(
            described.contains(expected),
            "{expected:?} in:\n{described}"
        );
    }
}

fn tables(kubectl: &Kubectl, hash: &str) {
    let wide = kubectl.ok(&["get", "ds", "agent", "-o", "wide"]);
    let lines: Vec<&str> = wide.lines().collect();
    assert_eq!(
        columns(lines[0]),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE SELECTOR",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let cells = columns(lines[1]);
    assert_eq!(cells[..7], ["agent", "1", "1", "1", "1", "1", "<none>"]);
    assert_eq!(cells[8..], ["app", "busybox", "app=agent"]);
    let revisions = kubectl.ok(&["get", "controllerrevisions"]);
    let lines: Vec<&str> = revisions.lines().collect();
    assert_eq!(columns(lines[0]), ["NAME", "CONTROLLER", "REVISION", "AGE"]);
    let name = format!("agent-{hash}");
    assert_eq!(
        columns(lines[1])[..3],
        [name.as_str(), "daemonset.apps/agent", "1"]
    );
    let all = kubectl.ok(&["get", "all"]);
    assert!(all.contains("daemonset.apps/agent"), "{all}");
}

#[test]
fn node_labels_and_taints_decide_where_the_daemon_runs() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    kubectl.apply(&daemon_set("picky", "      nodeSelector: {disk: ssd}\n"));
    let ds = wait_for_status(&kubectl, "picky", 0, 0);
    assert_eq!(ds["status"]["numberMisscheduled"], 0);
    assert!(pods_of(&kubectl, "picky").is_empty());
    let wide = kubectl.ok(&["get", "ds", "picky"]);
    assert!(
        wide.lines().nth(1).is_some_and(|l| l.contains("disk=ssd")),
        "{wide}"
    );

    let labelled = kubectl.ok(&["label", "node", &node, "disk=ssd"]);
    assert_eq!(labelled.trim(), format!("node/{node} labeled"));
    let pod = wait_for_pod(&kubectl, "picky", |_| true);
    seen.insert(uid(&pod));
    kubectl.ok(&["label", "node", &node, "disk-"]);
    wait_for_no_pods(&kubectl, "picky");
    wait_for_status(&kubectl, "picky", 0, 0);
    selector_and_affinity_changes(&kubectl, &node, &mut seen);

    let taint = "dedicated=infra:NoSchedule";
    let tainted = kubectl.ok(&["taint", "node", &node, taint]);
    assert_eq!(tainted.trim(), format!("node/{node} tainted"));
    kubectl.apply(&daemon_set("intolerant", ""));
    let tolerating = "      tolerations:\n      - {key: dedicated, operator: Equal, value: infra, effect: NoSchedule}\n";
    kubectl.apply(&daemon_set("tolerant", tolerating));
    let pod = wait_for_pod(&kubectl, "tolerant", |_| true);
    seen.insert(uid(&pod));
    wait_for_status(&kubectl, "intolerant", 0, 0);
    assert!(pods_of(&kubectl, "intolerant").is_empty());
    kubectl.ok(&["taint", "node", &node, &format!("{taint}-")]);
    let pod = wait_for_pod(&kubectl, "intolerant", |_| true);
    seen.insert(uid(&pod));

    // A pod already running stays when a NoSchedule taint comes (only NoExecute evicts); it
    // is then misscheduled, as the node should run no new one.
    kubectl.ok(&["taint", "node", &node, taint]);
    let misscheduled = |ds: &Value| {
        ds["status"]["desiredNumberScheduled"] == 0 && ds["status"]["numberMisscheduled"] == 1
    };
    let ds = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "ds", "intolerant"]),
        misscheduled,
    );
    assert!(misscheduled(&ds), "{ds}");
    let staying = pods_of(&kubectl, "intolerant");
    assert_eq!(staying.len(), 1, "{staying:#?}");
    assert_eq!(uid(&staying[0]), uid(&pod));
    assert!(staying[0]["metadata"]["deletionTimestamp"].is_null());
    kubectl.ok(&["taint", "node", &node, &format!("{taint}-")]);
    let restored = kubectl.json(&["get", "node", &node]);
    assert!(
        restored["spec"]["taints"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{restored}"
    );
    let labels = &restored["metadata"]["labels"];
    assert!(
        labels["disk"].is_null() && labels["color"].is_null(),
        "{restored}"
    );
    delete_and_check(
        &agent,
        &kubectl,
        &["picky", "intolerant", "tolerant"],
        &seen,
    );
}

/// test/e2e's "complex daemon" cases: a changed nodeSelector moves the daemon onto the node
/// and off it again, and a required node affinity places it as a nodeSelector does.
fn selector_and_affinity_changes(kubectl: &Kubectl, node: &str, seen: &mut BTreeSet<String>) {
    kubectl.ok(&["label", "node", node, "color=blue"]);
    let select = |color: &str| {
        let patch = json!({"spec": {"template": {"spec": {"nodeSelector": {"disk": null, "color": color}}}}});
        kubectl.ok(&[
            "patch",
            "ds",
            "picky",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ]);
    };
    select("blue");
    let pod = wait_for_pod(kubectl, "picky", |_| true);
    seen.insert(uid(&pod));
    select("green");
    wait_for_no_pods(kubectl, "picky");
    wait_for_status(kubectl, "picky", 0, 0);

    let affinity = "      affinity:\n        nodeAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n            nodeSelectorTerms:\n            - matchExpressions:\n              - {key: color, operator: In, values: [blue]}\n";
    kubectl.apply(&daemon_set("affine", affinity));
    let pod = wait_for_pod(kubectl, "affine", |_| true);
    seen.insert(uid(&pod));
    let terms = &pod["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    assert_eq!(
        terms,
        &json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]),
        "the controller's term replaces the template's"
    );
    kubectl.ok(&["label", "node", node, "color-"]);
    wait_for_no_pods(kubectl, "affine");
    wait_for_status(kubectl, "affine", 0, 0);
    kubectl.ok(&["delete", "ds", "affine"]);
}

#[test]
fn updates_roll_out_wait_for_deletes_and_roll_back() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    kubectl.apply(&daemon_set("agent", ""));
    let first = wait_for_pod(&kubectl, "agent", |_| true);
    seen.insert(uid(&first));

    kubectl.ok(&["set", "image", "ds/agent", "app=busybox:latest"]);
    let status = kubectl.ok(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    assert!(
        status.contains(r#"daemon set "agent" successfully rolled out"#),
        "{status}"
    );
    let second = wait_for_pod(&kubectl, "agent", |p| hash(p) != hash(&first));
    seen.insert(uid(&second));
    assert_eq!(second["metadata"]["labels"]["pod-template-generation"], "2");
    assert_eq!(second["spec"]["containers"][0]["image"], "busybox:latest");
    let described = kubectl.ok(&["describe", "ds", "agent"]);
    assert!(described.contains("Deleted pod: "), "{described}");
    history(&kubectl, &["1", "2"]);

    let undone = kubectl.ok(&["rollout", "undo", "ds/agent"]);
    assert_eq!(undone.trim(), "daemonset.apps/agent rolled back");
    let third = wait_for_pod(&kubectl, "agent", |p| hash(p) == hash(&first));
    seen.insert(uid(&third));
    assert_eq!(third["spec"]["containers"][0]["image"], "busybox");
    history(&kubectl, &["2", "3"]);
    let skipped = kubectl.ok(&["rollout", "undo", "ds/agent", "--to-revision=3"]);
    assert_eq!(
        skipped.trim(),
        "daemonset.apps/agent skipped rollback (current template already matches revision 3)"
    );

    on_delete(&kubectl, &third, &mut seen);
    delete_and_check(&agent, &kubectl, &["agent"], &seen);
}

/// `rollout history` lists these revisions, oldest first.
fn history(kubectl: &Kubectl, revisions: &[&str]) {
    let listed = kubectl.ok(&["rollout", "history", "ds/agent"]);
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected: Vec<Vec<&str>> = revisions.iter().map(|r| vec![*r, "<none>"]).collect();
    assert_eq!(rows, expected, "{listed}");
}

/// With OnDelete, a new template waits until the user deletes the pod.
fn on_delete(kubectl: &Kubectl, running: &Value, seen: &mut BTreeSet<String>) {
    kubectl.ok(&[
        "patch",
        "ds",
        "agent",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"OnDelete"}}}"#,
    ]);
    let refused = kubectl.fails(&["rollout", "status", "ds/agent", "--timeout=5s"]);
    assert!(
        refused.contains("rollout status is only available for RollingUpdate strategy type"),
        "{refused}"
    );
    kubectl.ok(&["set", "image", "ds/agent", "app=busybox:latest"]);
    wait_for_status(kubectl, "agent", 1, 0);
    std::thread::sleep(Duration::from_secs(2));
    let kept = wait_for_pod_counted(kubectl, "agent", 0, |_| true);
    assert_eq!(uid(&kept), uid(running), "OnDelete keeps the pod");
    kubectl.ok(&["delete", "pod", &text(&running["metadata"]["name"])]);
    let updated = wait_for_pod(kubectl, "agent", |p| uid(p) != uid(running));
    assert_ne!(hash(&updated), hash(running));
    assert_eq!(updated["spec"]["containers"][0]["image"], "busybox:latest");
    seen.insert(uid(&updated));
}

#[test]
fn a_surge_starts_the_new_pod_before_the_old_one_goes() {
    let (agent, kubectl) = start_with_kubectl();
    // The new pod is available 3 s after it is ready: the old one runs until then.
    let surge = "  minReadySeconds: 3\n  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n";
    let manifest =
        daemon_set("agent", "").replace("  template:\n", &format!("{surge}  template:\n"));
    kubectl.apply(&manifest);
    let old = wait_for_pod(&kubectl, "agent", |_| true);
    let mut seen = BTreeSet::from([uid(&old)]);
    kubectl.ok(&["set", "image", "ds/agent", "app=busybox:latest"]);
    // Both pods run side by side before the old one is deleted.
    let side_by_side = |pods: &Vec<Value>| {
        pods.len() == 2
            && pods.iter().all(all_running)
            && pods
                .iter()
                .any(|p| uid(p) == uid(&old) && p["metadata"]["deletionTimestamp"].is_null())
    };
    let pods = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || pods_of(&kubectl, "agent"),
        side_by_side,
    );
    assert!(side_by_side(&pods), "{pods:#?}");
    seen.extend(pods.iter().map(uid));
    let new = wait_for_pod(&kubectl, "agent", |p| uid(p) != uid(&old));
    assert_eq!(new["spec"]["containers"][0]["image"], "busybox:latest");
    seen.insert(uid(&new));
    delete_and_check(&agent, &kubectl, &["agent"], &seen);
}
