//! Priority and preemption on the one node (S16), through the real kubectl: PriorityClasses
//! (the system ones listed and kept from deletion, one global default, immutable values),
//! Priority admission (a class's priority given to pods, an unknown class refused), a
//! high-priority pod preempting just enough lower ones (DisruptionTarget, a Preempted event,
//! the preemptor nominated then bound, a pod its PodDisruptionBudget protects spared), and a
//! `preemptionPolicy: Never` class waiting instead.
//! Every test ends with the leak check.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

const SETTLE_WITHIN: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_millis(200);

fn priority_class(name: &str, value: i64, extra: &str) -> String {
    format!(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\nvalue: {value}\n{extra}"
    )
}

/// A pod `name` (labelled `app: <name>`) asking for `millicpu`, of class `class` if any;
/// busybox's sleep as pid 1
/// ignores SIGTERM, so a deleted pod stays Terminating for its `grace` seconds.
fn pod(name: &str, class: Option<&str>, millicpu: i64, grace: u32) -> String {
    let class = class.map_or(String::new(), |c| format!("  priorityClassName: {c}\n"));
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  terminationGracePeriodSeconds: {grace}\n{class}  containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n    resources:\n      requests: {{cpu: {millicpu}m}}\n"
    )
}

fn node_name(kubectl: &Kubectl) -> String {
    kubectl.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"])
}

fn allocatable_millicpu(kubectl: &Kubectl, node: &str) -> i64 {
    let path = "jsonpath={.status.allocatable.cpu}";
    let cpu = kubectl.ok(&["get", "node", node, "-o", path]);
    match cpu.strip_suffix('m') {
        Some(milli) => milli.parse().unwrap(),
        None => cpu.parse::<i64>().unwrap() * 1000,
    }
}

fn uid(kubectl: &Kubectl, name: &str) -> String {
    kubectl.ok(&["get", "pod", name, "-o", "jsonpath={.metadata.uid}"])
}

fn condition(pod: &Value, type_: &str) -> Value {
    let conditions = pod["status"]["conditions"].as_array();
    let found = conditions.and_then(|c| c.iter().find(|c| c["type"] == type_));
    found.cloned().unwrap_or(Value::Null)
}

fn wait_pod(kubectl: &Kubectl, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let pod = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "pod", name]),
        &done,
    );
    assert!(done(&pod), "{name} {what}: {pod:#}");
    pod
}

fn wait_running(kubectl: &Kubectl, name: &str, node: &str) -> Value {
    let pod = wait_pod(kubectl, name, "running", all_running);
    assert_eq!(pod["spec"]["nodeName"], node, "{pod:#}");
    pod
}

fn events_of(kubectl: &Kubectl, name: &str) -> Vec<Value> {
    let events = kubectl.json(&["get", "events"]);
    let all = events["items"].as_array().cloned().unwrap_or_default();
    all.into_iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .collect()
}

fn wait_event(kubectl: &Kubectl, name: &str, reason: &str, message: &str) {
    let found = |events: &Vec<Value>| {
        events
            .iter()
            .any(|e| e["reason"] == reason && e["message"] == message)
    };
    let events = poll(SETTLE_WITHIN, INTERVAL, || events_of(kubectl, name), found);
    assert!(found(&events), "{name}: {reason} {message:?}: {events:#?}");
}

/// `kubectl apply` of `manifest` refused; its stderr.
fn refused(kubectl: &Kubectl, manifest: &str) -> String {
    let out = kubectl.run(&["apply", "-f", "-"], Some(manifest));
    assert!(!out.status.success(), "{manifest} should be refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn delete_and_check(agent: &Agent, kubectl: &Kubectl, pods: &[&str], seen: &BTreeSet<String>) {
    let mut args = vec!["delete", "pod", "--wait=true"];
    args.extend(pods);
    kubectl.ok(&args);
    for uid in seen {
        agent.leak_check(uid);
    }
}

#[test]
fn a_high_priority_pod_preempts_just_enough_lower_pods() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    kubectl.apply(&priority_class("high", 1000, ""));
    let share = allocatable_millicpu(&kubectl, &node) / 3 - 10;
    let lows = ["low-1", "low-2", "low-3"];
    for low in lows {
        kubectl.apply(&pod(low, None, share, 5));
        seen.insert(uid(&kubectl, low));
        let running = wait_running(&kubectl, low, &node);
        assert_eq!(running["spec"]["priority"], 0, "{running:#}");
        // Distinct start times: the latest started is the least important.
        std::thread::sleep(Duration::from_millis(1100));
    }

    kubectl.apply(&pod("high", Some("high"), share, 1));
    let high_uid = uid(&kubectl, "high");
    seen.insert(high_uid.clone());
    let nominated = wait_pod(&kubectl, "high", "nominated", |p| {
        p["status"]["nominatedNodeName"] == node.as_str()
    });
    assert_eq!(nominated["spec"]["priority"], 1000, "{nominated:#}");
    assert_eq!(
        nominated["spec"]["preemptionPolicy"], "PreemptLowerPriority",
        "{nominated:#}"
    );
    let victim = wait_pod(&kubectl, "low-3", "preempted", |p| {
        !condition(p, "DisruptionTarget").is_null()
    });
    let disruption = condition(&victim, "DisruptionTarget");
    assert_eq!(disruption["status"], "True", "{victim:#}");
    assert_eq!(disruption["reason"], "PreemptionByScheduler", "{victim:#}");
    assert_eq!(
        disruption["message"],
        "default-scheduler: preempting to accommodate a higher priority pod"
    );
    let preempted = format!("Preempted by pod {high_uid} on node {node}");
    wait_event(&kubectl, "low-3", "Preempted", &preempted);
    let insufficient = "0/1 nodes are available: 1 Insufficient cpu.";
    wait_event(&kubectl, "high", "FailedScheduling", insufficient);

    wait_running(&kubectl, "high", &node);
    let gone = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.run(&["get", "pod", "low-3"], None),
        |out| !out.status.success(),
    );
    assert!(!gone.status.success(), "low-3 gone");
    for low in &lows[..2] {
        let kept = kubectl.json(&["get", "pod", low]);
        assert!(all_running(&kept), "{low} kept: {kept:#}");
        assert!(condition(&kept, "DisruptionTarget").is_null(), "{kept:#}");
    }
    delete_and_check(&agent, &kubectl, &["high", "low-1", "low-2"], &seen);
    kubectl.ok(&["delete", "priorityclass", "high"]);
}

#[test]
fn a_never_preempting_class_waits_for_room_instead() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    kubectl.apply(&priority_class(
        "patient",
        1000,
        "preemptionPolicy: Never\n",
    ));
    let most = allocatable_millicpu(&kubectl, &node) - 100;
    kubectl.apply(&pod("hog", None, most, 1));
    seen.insert(uid(&kubectl, "hog"));
    wait_running(&kubectl, "hog", &node);

    kubectl.apply(&pod("patient", Some("patient"), 500, 1));
    seen.insert(uid(&kubectl, "patient"));
    let never = "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to \
                 preemptionPolicy=Never.";
    let waiting = wait_pod(&kubectl, "patient", "unschedulable", |p| {
        condition(p, "PodScheduled")["message"] == never
    });
    assert_eq!(waiting["spec"]["priority"], 1000, "{waiting:#}");
    assert_eq!(waiting["spec"]["preemptionPolicy"], "Never", "{waiting:#}");
    assert!(
        waiting["status"]["nominatedNodeName"].is_null(),
        "{waiting:#}"
    );
    wait_event(&kubectl, "patient", "FailedScheduling", never);
    std::thread::sleep(Duration::from_secs(2));
    let hog = kubectl.json(&["get", "pod", "hog"]);
    assert!(all_running(&hog), "hog kept: {hog:#}");
    assert!(hog["metadata"]["deletionTimestamp"].is_null(), "{hog:#}");

    kubectl.ok(&["delete", "pod", "hog", "--wait=true"]);
    wait_running(&kubectl, "patient", &node);
    delete_and_check(&agent, &kubectl, &["patient"], &seen);
    kubectl.ok(&["delete", "priorityclass", "patient"]);
}

#[test]
fn priority_classes_and_priority_admission_through_kubectl() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    let resources = kubectl.ok(&["api-resources", "--api-group=scheduling.k8s.io"]);
    assert_eq!(
        columns(&resources, 1),
        [
            "priorityclasses",
            "pc",
            "scheduling.k8s.io/v1",
            "false",
            "PriorityClass"
        ],
        "{resources}"
    );
    let table = kubectl.ok(&["get", "pc"]);
    assert_eq!(
        columns(&table, 0),
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE"]
    );
    assert_eq!(
        columns(&table, 1)[..3],
        ["system-cluster-critical", "2000000000", "false"]
    );
    assert_eq!(
        columns(&table, 2)[..3],
        ["system-node-critical", "2000001000", "false"]
    );
    let wide = kubectl.ok(&["get", "pc", "-o", "wide"]);
    assert_eq!(columns(&wide, 0)[4], "PREEMPTIONPOLICY", "{wide}");
    assert_eq!(columns(&wide, 1)[4], "PreemptLowerPriority", "{wide}");
    let kept = kubectl.fails(&["delete", "pc", "system-node-critical"]);
    assert_eq!(
        kept.trim(),
        "Error from server (Forbidden): priorityclasses.scheduling.k8s.io \
         \"system-node-critical\" is forbidden: this is a system priority class and cannot \
         be deleted"
    );

    let unknown = refused(&kubectl, &pod("orphan", Some("foo"), 10, 1));
    assert!(
        unknown.contains("pods \"orphan\" is forbidden: no PriorityClass with name foo was found"),
        "{unknown}"
    );
    let huge = refused(&kubectl, &priority_class("huge", 2_000_000_000, ""));
    assert!(
        huge.contains(
            "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
        ),
        "{huge}"
    );

    kubectl.apply(&priority_class("everyone", 10, "globalDefault: true\n"));
    let second = refused(
        &kubectl,
        &priority_class("everyone-too", 20, "globalDefault: true\n"),
    );
    assert!(
        second.contains(
            "priorityclasses.scheduling.k8s.io \"everyone-too\" is forbidden: PriorityClass \
             everyone is already marked as default. Only one default can exist"
        ),
        "{second}"
    );
    let changed = kubectl.fails(&["patch", "pc", "everyone", "-p", r#"{"value": 11}"#]);
    assert!(
        changed.contains("value: Forbidden: may not be changed in an update."),
        "{changed}"
    );

    kubectl.apply(&pod("plain", None, 10, 1));
    seen.insert(uid(&kubectl, "plain"));
    let plain = wait_running(&kubectl, "plain", &node);
    assert_eq!(plain["spec"]["priorityClassName"], "everyone", "{plain:#}");
    assert_eq!(plain["spec"]["priority"], 10, "{plain:#}");
    delete_and_check(&agent, &kubectl, &["plain"], &seen);
    kubectl.ok(&["delete", "pc", "everyone"]);
}

#[test]
fn preemption_spares_a_pod_its_disruption_budget_protects() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    kubectl.apply(&priority_class("high", 1000, ""));
    let share = allocatable_millicpu(&kubectl, &node) / 2 - 10;
    // "guarded" starts last: without its budget, it would be the victim.
    for low in ["plain", "guarded"] {
        kubectl.apply(&pod(low, None, share, 5));
        seen.insert(uid(&kubectl, low));
        wait_running(&kubectl, low, &node);
        std::thread::sleep(Duration::from_millis(1100));
    }
    let budget = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: guard\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels: {app: guarded}\n";
    kubectl.apply(budget);
    let settled = |pdb: &Value| {
        pdb["status"]["currentHealthy"] == 1 && pdb["status"]["disruptionsAllowed"] == 0
    };
    let pdb = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "pdb", "guard"]),
        settled,
    );
    assert!(settled(&pdb), "{pdb:#}");
    std::thread::sleep(Duration::from_secs(1));

    kubectl.apply(&pod("high", Some("high"), share, 1));
    seen.insert(uid(&kubectl, "high"));
    wait_pod(&kubectl, "plain", "preempted", |p| {
        !condition(p, "DisruptionTarget").is_null()
    });
    wait_running(&kubectl, "high", &node);
    let guarded = kubectl.json(&["get", "pod", "guarded"]);
    assert!(all_running(&guarded), "guarded kept: {guarded:#}");
    assert!(
        condition(&guarded, "DisruptionTarget").is_null(),
        "{guarded:#}"
    );
    delete_and_check(&agent, &kubectl, &["high", "guarded"], &seen);
    kubectl.ok(&["delete", "pdb", "guard"]);
    kubectl.ok(&["delete", "priorityclass", "high"]);
}
