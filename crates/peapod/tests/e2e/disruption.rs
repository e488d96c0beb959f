//! PodDisruptionBudgets through the real kubectl, as kube's test/e2e/apps/disruption.go drives
//! them on one node: the disruption controller's counts for a Deployment (`kubectl get pdb`),
//! `kubectl drain` evicting through pods/eviction one pod at a time within the budget and
//! timing out, the node left cordoned, where the budget allows nothing; pods the budget does
//! not count (Pending, unready under a healthy budget) evicted regardless; bare pods needing
//! `--force`. Every test uncordons the node and ends with the leak check.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

const SETTLE_WITHIN: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_millis(200);
const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: busybox\n        command: [sleep, '3600']\n"
    )
}

/// A budget over the pods labelled `app: <app>`; `bound` is its `minAvailable: 2`-like line.
fn budget(name: &str, app: &str, bound: &str) -> String {
    format!(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {name}\nspec:\n  {bound}\n  selector:\n    matchLabels: {{app: {app}}}\n"
    )
}

/// A bare pod labelled `app: <app>`; `probe` (indented by 4) is added to its container.
fn bare_pod(name: &str, app: &str, probe: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {app}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n{probe}"
    )
}

/// A Job whose pod is labelled `app: <app>`.
fn job(name: &str, app: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  template:\n    metadata:\n      labels: {{app: {app}}}\n    spec:\n      restartPolicy: Never\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: busybox\n        command: [sleep, '3600']\n"
    )
}

fn node_name(kubectl: &Kubectl) -> String {
    kubectl.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"])
}

/// The pods labelled `app: <app>`, their uids added to `seen`.
fn pods(kubectl: &Kubectl, app: &str, seen: &mut BTreeSet<String>) -> Vec<Value> {
    let selector = format!("app={app}");
    let list = kubectl.json(&["get", "pods", "-l", &selector]);
    let items = list["items"].as_array().cloned().unwrap_or_default();
    for pod in &items {
        seen.insert(
            pod["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    items
}

fn running(pods: &[Value]) -> usize {
    let live = |p: &&Value| p["metadata"]["deletionTimestamp"].is_null();
    pods.iter().filter(live).filter(|p| all_running(p)).count()
}

fn wait_running(kubectl: &Kubectl, app: &str, count: usize, seen: &mut BTreeSet<String>) {
    let what = format!("{count} running pods of {app}");
    wait_until(SETTLE_WITHIN, &what, || {
        running(&pods(kubectl, app, seen)) == count
    });
}

/// Waits for the budget's status to satisfy `done`, and returns it.
fn wait_budget(kubectl: &Kubectl, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let pdb = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "pdb", name]),
        |pdb| done(&pdb["status"]),
    );
    assert!(done(&pdb["status"]), "{pdb:#}");
    pdb["status"].clone()
}

/// disruptionsAllowed, currentHealthy, desiredHealthy, expectedPods, as the status says.
fn counts(status: &Value) -> [i64; 4] {
    [
        "disruptionsAllowed",
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
    ]
    .map(|field| status[field].as_i64().unwrap_or(-1))
}

fn has_counts(expected: [i64; 4], generation: i64) -> impl Fn(&Value) -> bool {
    move |status| counts(status) == expected && status["observedGeneration"] == generation
}

/// A line of kubectl's table split on its column gaps.
fn columns(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// POSTs an Eviction for pod `name` as `kubectl create --raw` does.
fn evict(kubectl: &Kubectl, name: &str) -> std::process::Output {
    let path = format!("/api/v1/namespaces/default/pods/{name}/eviction");
    let eviction = format!(
        "{{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"default\"}}}}"
    );
    kubectl.run(&["create", "--raw", &path, "-f", "-"], Some(&eviction))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Deletes what the test made, uncordons the node and checks nothing of any pod is left.
fn clean_up(
    agent: &Agent,
    kubectl: &Kubectl,
    node: &str,
    objects: &[&str],
    seen: &BTreeSet<String>,
) {
    kubectl.ok(&["uncordon", node]);
    let mut args = vec!["delete", "--wait=true", "--ignore-not-found"];
    args.extend(objects);
    kubectl.ok(&args);
    wait_until(SETTLE_WITHIN, "the test's pods to go", || {
        kubectl.ok(&["get", "pods", "-o", "name"]).is_empty()
    });
    let restored = kubectl.json(&["get", "node", node]);
    assert!(restored["spec"]["unschedulable"] != true, "{restored}");
    for uid in seen {
        agent.leak_check(uid);
    }
}

#[test]
fn a_budget_counts_a_deployments_pods() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    kubectl.apply(&deployment("web", 3));
    // `kubectl create pdb` posts a protobuf body, as client-go's typed client does.
    let created = kubectl.ok(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=2",
    ]);
    assert_eq!(created.trim(), "poddisruptionbudget.policy/web created");
    wait_running(&kubectl, "web", 3, &mut seen);
    let status = wait_budget(&kubectl, "web", has_counts([1, 3, 2, 3], 1));
    let condition = &status["conditions"][0];
    assert_eq!(condition["type"], "DisruptionAllowed", "{status:#}");
    assert_eq!(condition["status"], "True", "{status:#}");
    assert_eq!(condition["reason"], "SufficientPods", "{status:#}");
    let table = kubectl.ok(&["get", "pdb"]);
    let lines: Vec<&str> = table.lines().collect();
    let header = [
        "NAME",
        "MIN AVAILABLE",
        "MAX UNAVAILABLE",
        "ALLOWED DISRUPTIONS",
        "AGE",
    ];
    assert_eq!(columns(lines[0]), header, "{table}");
    assert_eq!(columns(lines[1])[..4], ["web", "2", "N/A", "1"], "{table}");

    // maxUnavailable counts against the Deployment's scale: 50% of 3 rounds up to 2.
    let patch = r#"{"spec":{"minAvailable":null,"maxUnavailable":"50%"}}"#;
    kubectl.ok(&["patch", "pdb", "web", "--type=merge", "-p", patch]);
    wait_budget(&kubectl, "web", has_counts([2, 3, 1, 3], 2));
    let table = kubectl.ok(&["get", "pdb", "web", "--no-headers"]);
    assert_eq!(columns(&table)[..4], ["web", "N/A", "50%", "2"], "{table}");

    // A Job's pod among them has no scale to count: the budget fails safe.
    kubectl.apply(&job("stray", "web"));
    let failed = wait_budget(&kubectl, "web", |s| {
        s["conditions"][0]["reason"] == "SyncFailed"
    });
    assert_eq!(failed["disruptionsAllowed"], 0, "{failed:#}");
    assert_eq!(
        failed["conditions"][0]["message"], "jobs.batch does not implement the scale subresource",
        "{failed:#}"
    );
    pods(&kubectl, "web", &mut seen);
    clean_up(
        &agent,
        &kubectl,
        &node,
        &["deployment/web", "pdb/web", "job/stray"],
        &seen,
    );
}

#[test]
fn drain_evicts_within_the_budget_and_times_out_at_it() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    kubectl.apply(&deployment("web", 3));
    kubectl.apply(&budget("web", "web", "minAvailable: 2"));
    wait_running(&kubectl, "web", 3, &mut seen);
    wait_budget(&kubectl, "web", has_counts([1, 3, 2, 3], 1));

    let drain = [
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=25s",
    ];
    let out = kubectl.run(&drain, None);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("node/{node} cordoned")),
        "{stdout}"
    );
    let evicted = stdout.lines().filter(|l| l.ends_with(" evicted")).count();
    assert_eq!(evicted, 1, "one pod evicted:\n{stdout}\n{stderr}");
    assert!(stderr.contains(VIOLATION), "{stderr}");
    assert!(stderr.contains("(will retry after 5s)"), "{stderr}");
    assert!(stderr.contains("global timeout reached: 25s"), "{stderr}");
    assert!(
        stderr.contains(&format!("unable to drain node \"{node}\"")),
        "{stderr}"
    );

    // Never below minAvailable: the replacement cannot land on the cordoned node.
    let now = pods(&kubectl, "web", &mut seen);
    assert_eq!(running(&now), 2, "{now:#?}");
    let pending = now
        .iter()
        .filter(|p| p["status"]["phase"] == "Pending")
        .count();
    assert_eq!(pending, 1, "{now:#?}");
    let cordoned = kubectl.json(&["get", "node", &node]);
    assert_eq!(cordoned["spec"]["unschedulable"], true, "{cordoned}");
    wait_budget(&kubectl, "web", has_counts([0, 2, 2, 3], 1));

    // With maxUnavailable 0 nothing goes: drain times out and the node stays cordoned.
    kubectl.ok(&["uncordon", &node]);
    wait_running(&kubectl, "web", 3, &mut seen);
    let patch = r#"{"spec":{"minAvailable":null,"maxUnavailable":0}}"#;
    kubectl.ok(&["patch", "pdb", "web", "--type=merge", "-p", patch]);
    wait_budget(&kubectl, "web", has_counts([0, 3, 3, 3], 2));
    let drain = ["drain", &node, "--ignore-daemonsets", "--timeout=8s"];
    let out = kubectl.run(&drain, None);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains(" evicted"), "{stdout}");
    assert!(stderr.contains(VIOLATION), "{stderr}");
    assert!(stderr.contains("global timeout reached: 8s"), "{stderr}");
    let cordoned = kubectl.json(&["get", "node", &node]);
    assert_eq!(cordoned["spec"]["unschedulable"], true, "{cordoned}");
    assert_eq!(running(&pods(&kubectl, "web", &mut seen)), 3);
    clean_up(
        &agent,
        &kubectl,
        &node,
        &["deployment/web", "pdb/web"],
        &seen,
    );
}

#[test]
fn pods_the_budget_does_not_count_are_evicted_and_bare_pods_need_force() {
    let (agent, kubectl) = start_with_kubectl();
    let node = node_name(&kubectl);
    let mut seen = BTreeSet::new();
    let never_ready =
        "    readinessProbe:\n      exec: {command: ['false']}\n      periodSeconds: 1\n";
    kubectl.apply(&bare_pod("ready", "lone", ""));
    kubectl.apply(&bare_pod("unready", "lone", never_ready));
    kubectl.apply(&budget("lone", "lone", "minAvailable: 1"));
    wait_running(&kubectl, "lone", 2, &mut seen);
    wait_budget(&kubectl, "lone", has_counts([0, 1, 1, 2], 1));

    let refused = evict(&kubectl, "ready");
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains(VIOLATION),
        "{}",
        text(&refused.stderr)
    );
    // IfHealthyBudget: the budget has its healthy pod, so the unready one may go.
    let evicted = evict(&kubectl, "unready");
    assert!(evicted.status.success(), "{}", text(&evicted.stderr));

    kubectl.ok(&["cordon", &node]);
    kubectl.apply(&bare_pod("waiting", "lone", ""));
    pods(&kubectl, "lone", &mut seen);
    let evicted = evict(&kubectl, "waiting");
    assert!(
        evicted.status.success(),
        "a Pending pod: {}",
        text(&evicted.stderr)
    );
    wait_until(SETTLE_WITHIN, "the evicted pods to go", || {
        pods(&kubectl, "lone", &mut seen).len() == 1
    });

    kubectl.ok(&["delete", "pdb", "lone"]);
    let out = kubectl.run(&["drain", &node, "--timeout=20s"], None);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot delete Pods that declare no controller (use --force to override): default/ready"),
        "{stderr}"
    );
    let out = kubectl.run(&["drain", &node, "--force", "--timeout=20s"], None);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Warning: deleting Pods that declare no controller: default/ready"),
        "{stderr}"
    );
    assert!(stdout.contains("pod/ready evicted"), "{stdout}");
    assert!(stdout.contains(&format!("node/{node} drained")), "{stdout}");
    clean_up(&agent, &kubectl, &node, &["pod/ready"], &seen);
}
