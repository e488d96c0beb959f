//! kube-scheduler's filters on the one node, through the real kubectl: a pod asking for more
//! cpu than is left stays Pending with FailedScheduling until another pod goes; a nodeSelector
//! waits for `kubectl label node`; a NoSchedule taint keeps untolerating pods off until
//! untainted; `kubectl cordon` keeps new pods off until `uncordon`; a pod for another
//! scheduler stays Pending, without events, until bound through pods/binding by a user whose
//! RBAC allows it; pod (anti-)affinity and topology spread judged on the one node; a NoExecute
//! taint evicts running pods that do not tolerate it, at once or after their
//! `tolerationSeconds`. Every test restores the node and ends with the leak check.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

const SETTLE_WITHIN: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_millis(200);
const NOT_HELPFUL: &str =
    "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";

/// A pod `name` that sleeps and stops within a second; `extra` is added to its spec
/// (indented by 2) and `resources` to its container (indented by 4).
fn pod(name: &str, extra: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n{extra}  containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n{resources}"
    )
}

fn node_name(kubectl: &Kubectl) -> String {
    kubectl.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"])
}

fn uid(kubectl: &Kubectl, name: &str) -> String {
    kubectl.ok(&["get", "pod", name, "-o", "jsonpath={.metadata.uid}"])
}

fn scheduled_condition(pod: &Value) -> Value {
    let conditions = pod["status"]["conditions"].as_array();
    let found = conditions.and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled"));
    found.cloned().unwrap_or(Value::Null)
}

/// Waits for pod `name` to be refused with `message`: Pending, unbound, PodScheduled=False
/// Unschedulable, and a FailedScheduling event from default-scheduler that describe shows.
fn wait_unschedulable(kubectl: &Kubectl, name: &str, message: &str) {
    let refused = |pod: &Value| scheduled_condition(pod)["message"] == message;
    let pod = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "pod", name]),
        refused,
    );
    let condition = scheduled_condition(&pod);
    assert!(refused(&pod), "{name} refused with {message:?}: {pod:#}");
    assert_eq!(condition["status"], "False", "{pod:#}");
    assert_eq!(condition["reason"], "Unschedulable", "{pod:#}");
    assert_eq!(pod["status"]["phase"], "Pending", "{pod:#}");
    assert!(pod["spec"]["nodeName"].is_null(), "not bound: {pod:#}");
    let event = |events: &Vec<Value>| {
        events.iter().any(|e| {
            e["reason"] == "FailedScheduling"
                && e["type"] == "Warning"
                && e["message"] == message
                && e["source"]["component"] == "default-scheduler"
        })
    };
    let events = poll(SETTLE_WITHIN, INTERVAL, || events_of(kubectl, name), event);
    assert!(event(&events), "FailedScheduling {message:?}: {events:#?}");
    let describe = kubectl.ok(&["describe", "pod", name]);
    let section = describe.split("\nEvents:").nth(1).unwrap_or_default();
    assert!(
        section
            .lines()
            .any(|l| l.contains("FailedScheduling") && l.contains(message)),
        "{describe}"
    );
}

fn events_of(kubectl: &Kubectl, name: &str) -> Vec<Value> {
    let events = kubectl.json(&["get", "events"]);
    let all = events["items"].as_array().cloned().unwrap_or_default();
    all.into_iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .collect()
}

/// Waits for pod `name` to run on the node, bound with PodScheduled=True.
fn wait_running(kubectl: &Kubectl, name: &str, node: &str) -> Value {
    let pod = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "pod", name]),
        all_running,
    );
    assert!(all_running(&pod), "{name} running: {pod:#}");
    assert_eq!(pod["spec"]["nodeName"], node, "{pod:#}");
    assert_eq!(scheduled_condition(&pod)["status"], "True", "{pod:#}");
    pod
}

/// Deletes the pods, then checks nothing of any pod seen is left.
fn delete_and_check(agent: &Agent, kubectl: &Kubectl, names: &[&str], seen: &BTreeSet<String>) {
    let mut args = vec!["delete", "pod", "--wait=true"];
    args.extend(names);
    kubectl.ok(&args);
    for uid in seen {
        agent.leak_check(uid);
    }
}

/// The node as it was: no test label, taint or cordon left.
fn assert_node_restored(kubectl: &Kubectl, node: &str) {
    // The node controller lifts the cordon's taint a moment after the uncordon.
    let untainted = |node: &Value| node["spec"]["taints"].as_array().is_none_or(Vec::is_empty);
    let restored = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "node", node]),
        untainted,
    );
    assert!(untainted(&restored), "{restored}");
    assert!(restored["spec"]["unschedulable"] != true, "{restored}");
    assert!(
        restored["metadata"]["labels"]["disk"].is_null(),
        "{restored}"
    );
}

fn allocatable_millicpu(kubectl: &Kubectl, node: &str) -> i64 {
    let cpu = kubectl.ok(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.allocatable.cpu}",
    ]);
    match cpu.strip_suffix('m') {
        Some(milli) => milli.parse().unwrap(),
        None => cpu.parse::<i64>().unwrap() * 1000,
    }
}

#[test]
fn a_pod_asking_for_more_cpu_than_is_left_waits_for_another_to_go() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    let requests = |cpu: String| format!("    resources:\n      requests: {{cpu: {cpu}}}\n");

    let too_big = format!("{}m", allocatable_millicpu(&kubectl, &node) + 1000);
    kubectl.apply(&pod("huge", "", &requests(too_big)));
    seen.insert(uid(&kubectl, "huge"));
    let insufficient = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are \
                        available: 1 No preemption victims found for incoming pod.";
    wait_unschedulable(&kubectl, "huge", insufficient);
    let table = kubectl.ok(&["get", "pod", "huge"]);
    assert_eq!(columns(&table, 1)[2], "Pending", "{table}");

    let most = format!("{}m", allocatable_millicpu(&kubectl, &node) - 100);
    kubectl.apply(&pod("hog", "", &requests(most)));
    seen.insert(uid(&kubectl, "hog"));
    wait_running(&kubectl, "hog", &node);
    kubectl.apply(&pod("late", "", &requests("500m".into())));
    seen.insert(uid(&kubectl, "late"));
    wait_unschedulable(&kubectl, "late", insufficient);

    kubectl.ok(&["delete", "pod", "hog", "--wait=true"]);
    wait_running(&kubectl, "late", &node);
    let scheduled = events_of(&kubectl, "late");
    let expected = format!("Successfully assigned default/late to {node}");
    assert!(
        scheduled
            .iter()
            .any(|e| e["reason"] == "Scheduled" && e["message"] == expected),
        "{scheduled:#?}"
    );
    let still = kubectl.json(&["get", "pod", "huge"]);
    assert_eq!(still["status"]["phase"], "Pending", "{still:#}");
    delete_and_check(&agent, &kubectl, &["huge", "late"], &seen);
}

#[test]
fn a_node_selector_waits_for_the_node_label() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    kubectl.apply(&pod("picky", "  nodeSelector: {disk: ssd}\n", ""));
    seen.insert(uid(&kubectl, "picky"));
    // DefaultTolerationSeconds: five minutes' grace on a node that goes not-ready or away.
    let tolerations = kubectl.json(&["get", "pod", "picky"])["spec"]["tolerations"].clone();
    let default = |key: &str| {
        serde_json::json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                           "tolerationSeconds": 300})
    };
    assert_eq!(
        tolerations,
        serde_json::json!([
            default("node.kubernetes.io/not-ready"),
            default("node.kubernetes.io/unreachable")
        ])
    );
    let unmatched = format!(
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. {NOT_HELPFUL}"
    );
    wait_unschedulable(&kubectl, "picky", &unmatched);

    let affinity = "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - {key: disk, operator: In, values: [ssd, nvme]}\n";
    kubectl.apply(&pod("affine", affinity, ""));
    seen.insert(uid(&kubectl, "affine"));
    wait_unschedulable(&kubectl, "affine", &unmatched);

    kubectl.ok(&["label", "node", &node, "disk=ssd"]);
    wait_running(&kubectl, "picky", &node);
    wait_running(&kubectl, "affine", &node);
    // IgnoredDuringExecution: the label going leaves the running pods be.
    kubectl.ok(&["label", "node", &node, "disk-"]);
    std::thread::sleep(Duration::from_secs(1));
    wait_running(&kubectl, "picky", &node);
    assert_node_restored(&kubectl, &node);
    delete_and_check(&agent, &kubectl, &["picky", "affine"], &seen);
}

#[test]
fn taints_and_cordons_keep_new_pods_off_until_lifted() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    let taint = "dedicated=infra:NoSchedule";
    let tainted = kubectl.ok(&["taint", "node", &node, taint]);
    assert_eq!(tainted.trim(), format!("node/{node} tainted"));
    kubectl.apply(&pod("intolerant", "", ""));
    seen.insert(uid(&kubectl, "intolerant"));
    let untolerated = format!(
        "0/1 nodes are available: 1 node(s) had untolerated taint {{dedicated: infra}}. {NOT_HELPFUL}"
    );
    wait_unschedulable(&kubectl, "intolerant", &untolerated);
    let tolerating =
        "  tolerations:\n  - {key: dedicated, operator: Equal, value: infra, effect: NoSchedule}\n";
    kubectl.apply(&pod("tolerant", tolerating, ""));
    seen.insert(uid(&kubectl, "tolerant"));
    wait_running(&kubectl, "tolerant", &node);
    kubectl.ok(&["taint", "node", &node, &format!("{taint}-")]);
    wait_running(&kubectl, "intolerant", &node);

    let cordoned = kubectl.ok(&["cordon", &node]);
    assert_eq!(cordoned.trim(), format!("node/{node} cordoned"));
    // As on a cluster, the node controller taints a cordoned node (TaintNodesByCondition).
    let has_cordon_taint = |node: &Value| {
        let taints = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        taints.iter().any(|t| {
            t["key"] == "node.kubernetes.io/unschedulable"
                && t["effect"] == "NoSchedule"
                && t["timeAdded"].is_string()
        })
    };
    let tainted = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "node", &node]),
        has_cordon_taint,
    );
    assert!(has_cordon_taint(&tainted), "{tainted:#}");
    kubectl.apply(&pod("blocked", "", ""));
    seen.insert(uid(&kubectl, "blocked"));
    let unschedulable =
        format!("0/1 nodes are available: 1 node(s) were unschedulable. {NOT_HELPFUL}");
    wait_unschedulable(&kubectl, "blocked", &unschedulable);
    let cordon_tolerating = "  tolerations:\n  - {key: node.kubernetes.io/unschedulable, operator: Exists, effect: NoSchedule}\n";
    kubectl.apply(&pod("cordon-proof", cordon_tolerating, ""));
    seen.insert(uid(&kubectl, "cordon-proof"));
    wait_running(&kubectl, "cordon-proof", &node);
    let uncordoned = kubectl.ok(&["uncordon", &node]);
    assert_eq!(uncordoned.trim(), format!("node/{node} uncordoned"));
    wait_running(&kubectl, "blocked", &node);

    assert_node_restored(&kubectl, &node);
    let names = ["intolerant", "tolerant", "blocked", "cordon-proof"];
    delete_and_check(&agent, &kubectl, &names, &seen);
}

const SCHEDULER_RBAC: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: binder\nrules:\n- apiGroups: ['']\n  resources: [pods/binding]\n  verbs: [create]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: binder\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: binder\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: my-scheduler\n";

#[test]
fn a_pod_for_another_scheduler_waits_for_its_binding() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    kubectl.apply(&pod("custom", "  schedulerName: my-scheduler\n", ""));
    seen.insert(uid(&kubectl, "custom"));
    std::thread::sleep(Duration::from_secs(2));
    let waiting = kubectl.json(&["get", "pod", "custom"]);
    assert_eq!(waiting["status"]["phase"], "Pending", "{waiting:#}");
    assert!(waiting["spec"]["nodeName"].is_null(), "{waiting:#}");
    assert!(scheduled_condition(&waiting).is_null(), "{waiting:#}");
    let events = events_of(&kubectl, "custom");
    assert!(events.is_empty(), "no scheduler touched it: {events:#?}");

    let binding = format!(
        r#"{{"apiVersion": "v1", "kind": "Binding", "metadata": {{"name": "custom"}}, "target": {{"apiVersion": "v1", "kind": "Node", "name": "{node}"}}}}"#
    );
    let path = "/api/v1/namespaces/default/pods/custom/binding";
    let bind = ["create", "--raw", path, "-f", "-", "--as=my-scheduler"];
    let refused = kubectl.run(&bind, Some(&binding));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("Forbidden") || stderr.contains("forbidden"),
        "{stderr}"
    );
    kubectl.apply(SCHEDULER_RBAC);
    let bound = kubectl.run(&bind, Some(&binding));
    assert!(
        bound.status.success(),
        "{}",
        String::from_utf8_lossy(&bound.stderr)
    );
    wait_running(&kubectl, "custom", &node);

    kubectl.ok(&["delete", "rolebinding,role", "binder"]);
    delete_and_check(&agent, &kubectl, &["custom"], &seen);
}

const NO_VICTIMS: &str =
    "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";

/// A pod like [`pod`] with `labels` (a YAML flow map) in `namespace`.
fn labelled(name: &str, namespace: &str, labels: &str, extra: &str) -> String {
    pod(name, extra, "").replacen(
        &format!("  name: {name}\n"),
        &format!("  name: {name}\n  namespace: {namespace}\n  labels: {labels}\n"),
        1,
    )
}

/// A required pod (anti-)affinity `kind` with one term on the node's hostname label.
fn affinity(kind: &str, term: &str) -> String {
    format!(
        "  affinity:\n    {kind}:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - topologyKey: kubernetes.io/hostname\n{term}"
    )
}

/// Applies `manifest`, checking that no field is reported as ignored.
fn apply_unwarned(kubectl: &Kubectl, manifest: &str) {
    let out = kubectl.run(&["apply", "-f", "-"], Some(manifest));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("ignored"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pod_anti_affinity_keeps_matching_pods_apart() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    let apart = affinity(
        "podAntiAffinity",
        "        labelSelector: {matchLabels: {app: solo}}\n",
    );
    apply_unwarned(
        &kubectl,
        &labelled("solo-1", "default", "{app: solo}", &apart),
    );
    seen.insert(uid(&kubectl, "solo-1"));
    wait_running(&kubectl, "solo-1", &node);
    apply_unwarned(
        &kubectl,
        &labelled("solo-2", "default", "{app: solo}", &apart),
    );
    seen.insert(uid(&kubectl, "solo-2"));
    let refused = format!(
        "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules. {NO_VICTIMS}"
    );
    wait_unschedulable(&kubectl, "solo-2", &refused);
    // A pod without affinity of its own is kept off by the running pod's anti-affinity.
    kubectl.apply(&labelled("intruder", "default", "{app: solo}", ""));
    seen.insert(uid(&kubectl, "intruder"));
    let existing = format!(
        "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules. \
         {NO_VICTIMS}"
    );
    wait_unschedulable(&kubectl, "intruder", &existing);
    kubectl.ok(&["delete", "pod", "intruder", "--wait=true"]);

    kubectl.ok(&["delete", "pod", "solo-1", "--wait=true"]);
    wait_running(&kubectl, "solo-2", &node);
    delete_and_check(&agent, &kubectl, &["solo-2"], &seen);
}

#[test]
fn pod_affinity_waits_for_a_matching_pod_in_a_selected_namespace() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    let near_db = affinity(
        "podAffinity",
        "        labelSelector: {matchLabels: {app: db}}\n        namespaceSelector: {matchLabels: {team: data}}\n",
    );
    apply_unwarned(
        &kubectl,
        &labelled("web", "default", "{app: web}", &near_db),
    );
    seen.insert(uid(&kubectl, "web"));
    let refused = format!(
        "0/1 nodes are available: 1 node(s) didn't match pod affinity rules. {NOT_HELPFUL}"
    );
    wait_unschedulable(&kubectl, "web", &refused);
    // The first pod of a group with affinity to itself is not kept waiting for itself.
    let self_affine = affinity(
        "podAffinity",
        "        labelSelector: {matchLabels: {app: cache}}\n",
    );
    kubectl.apply(&labelled("cache", "default", "{app: cache}", &self_affine));
    seen.insert(uid(&kubectl, "cache"));
    wait_running(&kubectl, "cache", &node);

    kubectl.ok(&["create", "namespace", "data"]);
    kubectl.apply(&labelled("db", "data", "{app: db}", ""));
    let db = kubectl.ok(&[
        "get",
        "pod",
        "db",
        "-n",
        "data",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    seen.insert(db);
    std::thread::sleep(Duration::from_secs(1));
    let still = kubectl.json(&["get", "pod", "web"]);
    assert!(
        still["spec"]["nodeName"].is_null(),
        "not selected yet: {still:#}"
    );
    kubectl.ok(&["label", "namespace", "data", "team=data"]);
    wait_running(&kubectl, "web", &node);
    kubectl.ok(&["delete", "namespace", "data", "--wait=true"]);
    delete_and_check(&agent, &kubectl, &["web", "cache"], &seen);
}

#[test]
fn topology_spread_counts_the_one_node_as_one_domain() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    let spread = |key: &str| {
        format!(
            "  topologySpreadConstraints:\n  - maxSkew: 1\n    minDomains: 2\n    topologyKey: {key}\n    whenUnsatisfiable: DoNotSchedule\n    labelSelector: {{matchLabels: {{app: spread}}}}\n"
        )
    };
    let by_host = spread("kubernetes.io/hostname");
    apply_unwarned(
        &kubectl,
        &labelled("spread-1", "default", "{app: spread}", &by_host),
    );
    seen.insert(uid(&kubectl, "spread-1"));
    wait_running(&kubectl, "spread-1", &node);
    // Two domains wanted, one exists: its minimum counts as 0 and one pod is the skew allowed.
    apply_unwarned(
        &kubectl,
        &labelled("spread-2", "default", "{app: spread}", &by_host),
    );
    seen.insert(uid(&kubectl, "spread-2"));
    let skewed = format!(
        "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints. \
         {NO_VICTIMS}"
    );
    wait_unschedulable(&kubectl, "spread-2", &skewed);
    let by_zone = spread("topology.kubernetes.io/zone");
    kubectl.apply(&labelled("zoned", "default", "{app: zoned}", &by_zone));
    seen.insert(uid(&kubectl, "zoned"));
    let unlabelled = format!(
        "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints \
         (missing required label). {NOT_HELPFUL}"
    );
    wait_unschedulable(&kubectl, "zoned", &unlabelled);
    kubectl.ok(&["delete", "pod", "spread-1", "--wait=true"]);
    wait_running(&kubectl, "spread-2", &node);
    delete_and_check(&agent, &kubectl, &["spread-2", "zoned"], &seen);
}

/// Waits for pod `name` to be rejected by the kubelet: Failed with `reason` and `message`.
fn wait_rejected(kubectl: &Kubectl, name: &str, reason: &str, message: &str) {
    let rejected = |pod: &Value| pod["status"]["phase"] == "Failed";
    let pod = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "pod", name]),
        rejected,
    );
    assert_eq!(pod["status"]["reason"], reason, "{pod:#}");
    assert_eq!(
        pod["status"]["message"],
        format!("Pod was rejected: {message}"),
        "{pod:#}"
    );
}

#[test]
fn the_kubelet_rejects_a_directly_bound_pod_that_does_not_fit() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let capacity = allocatable_millicpu(&kubectl, &node);
    let mut seen = BTreeSet::new();
    let bound = format!("  nodeName: {node}\n");
    let too_big = format!(
        "    resources: {{requests: {{cpu: {}m}}}}\n",
        capacity + 1000
    );
    kubectl.apply(&pod("direct", &bound, &too_big));
    seen.insert(uid(&kubectl, "direct"));
    let message = format!(
        "Node didn't have enough resource: cpu, requested: {}, used: 0, capacity: {capacity}",
        capacity + 1000
    );
    wait_rejected(&kubectl, "direct", "OutOfcpu", &message);

    let picky = format!("{bound}  nodeSelector: {{disk: ssd}}\n");
    kubectl.apply(&pod("picky-direct", &picky, ""));
    seen.insert(uid(&kubectl, "picky-direct"));
    let unmatched =
        "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector";
    wait_rejected(&kubectl, "picky-direct", "NodeAffinity", unmatched);
    delete_and_check(&agent, &kubectl, &["direct", "picky-direct"], &seen);
}

/// Pod `name` as JSON, or `None` once it is gone.
fn pod_if_present(kubectl: &Kubectl, name: &str) -> Option<Value> {
    let out = kubectl.ok(&["get", "pod", name, "-o", "json", "--ignore-not-found"]);
    (!out.trim().is_empty()).then(|| serde_json::from_str(&out).unwrap())
}

/// Asserts pod `name`, if still terminating, is marked as disrupted by the taint manager.
fn assert_taint_disrupted(pod: Option<&Value>) {
    let Some(pod) = pod.filter(|p| !p["metadata"]["deletionTimestamp"].is_null()) else {
        return;
    };
    let conditions = pod["status"]["conditions"].as_array().cloned();
    let disrupted = conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c["type"] == "DisruptionTarget");
    let disrupted = disrupted.unwrap_or(Value::Null);
    assert_eq!(disrupted["status"], "True", "{pod:#}");
    assert_eq!(disrupted["reason"], "DeletionByTaintManager", "{pod:#}");
    assert_eq!(
        disrupted["message"], "Taint manager: deleting due to NoExecute taint",
        "{pod:#}"
    );
}

/// Waits for pod `name` to be gone, checking it is marked while it shows terminating.
fn wait_evicted(kubectl: &Kubectl, name: &str) {
    let fetch = || {
        let pod = pod_if_present(kubectl, name);
        assert_taint_disrupted(pod.as_ref());
        pod
    };
    let gone = poll(SETTLE_WITHIN, INTERVAL, fetch, Option::is_none);
    assert!(gone.is_none(), "{name} evicted: {gone:#?}");
}

/// Waits for the taint manager's event `message` on pod `name`.
fn wait_taint_event(kubectl: &Kubectl, name: &str, message: &str) {
    let recorded = |events: &Vec<Value>| {
        events.iter().any(|e| {
            e["reason"] == "TaintManagerEviction"
                && e["type"] == "Normal"
                && e["message"] == message
        })
    };
    let events = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || events_of(kubectl, name),
        recorded,
    );
    assert!(recorded(&events), "{message:?}: {events:#?}");
}

#[test]
fn a_no_execute_taint_evicts_the_pods_that_do_not_tolerate_it() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    let toleration = |seconds: &str| {
        format!("  tolerations:\n  - {{key: evict, operator: Equal, value: now, effect: NoExecute{seconds}}}\n")
    };
    let pods = [
        ("doomed", String::new()),
        ("patient", toleration(", tolerationSeconds: 5")),
        ("reprieved", toleration(", tolerationSeconds: 600")),
        ("steadfast", toleration("")),
    ];
    // A finalizer holds the untolerating pod terminating, so its condition can be read.
    let held = |manifest: String| {
        manifest.replacen("\nspec:", "\n  finalizers: [example.com/hold]\nspec:", 1)
    };
    for (name, extra) in &pods {
        let manifest = pod(name, extra, "");
        kubectl.apply(&if *name == "doomed" {
            held(manifest)
        } else {
            manifest
        });
        seen.insert(uid(&kubectl, name));
    }
    for (name, _) in &pods {
        wait_running(&kubectl, name, &node);
    }

    let tainted = kubectl.ok(&["taint", "node", &node, "evict=now:NoExecute"]);
    let tainted_at = std::time::Instant::now();
    assert_eq!(tainted.trim(), format!("node/{node} tainted"));
    std::thread::sleep(Duration::from_secs(4).saturating_sub(tainted_at.elapsed()));
    let patient = pod_if_present(&kubectl, "patient").expect("patient still there after 4 s");
    assert!(
        patient["metadata"]["deletionTimestamp"].is_null(),
        "{patient:#}"
    );
    let deleting = |pod: &Option<Value>| {
        pod.as_ref()
            .is_some_and(|p| !p["metadata"]["deletionTimestamp"].is_null())
    };
    let doomed = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || pod_if_present(&kubectl, "doomed"),
        deleting,
    );
    assert!(deleting(&doomed), "doomed marked for deletion: {doomed:#?}");
    assert_taint_disrupted(doomed.as_ref());
    let release = r#"[{"op": "remove", "path": "/metadata/finalizers"}]"#;
    kubectl.ok(&["patch", "pod", "doomed", "--type=json", "-p", release]);
    wait_evicted(&kubectl, "doomed");
    wait_taint_event(
        &kubectl,
        "doomed",
        "Marking for deletion Pod default/doomed",
    );
    wait_evicted(&kubectl, "patient");
    wait_taint_event(
        &kubectl,
        "patient",
        "Marking for deletion Pod default/patient",
    );
    wait_running(&kubectl, "steadfast", &node);
    wait_running(&kubectl, "reprieved", &node);

    let untainted = kubectl.ok(&["taint", "node", &node, "evict-"]);
    assert_eq!(untainted.trim(), format!("node/{node} untainted"));
    wait_taint_event(
        &kubectl,
        "reprieved",
        "Cancelling deletion of Pod default/reprieved",
    );
    assert_node_restored(&kubectl, &node);
    delete_and_check(&agent, &kubectl, &["reprieved", "steadfast"], &seen);
}
