//! apps/v1 StatefulSets through the real kubectl, as test/e2e/apps/statefulset.go drives them
//! on one node: `web` of 2 with a readiness probe makes web-0 Running and Ready before web-1
//! exists, each pod's hostname is its name; a file web-0 writes to its claim (from the
//! volumeClaimTemplate) survives deleting web-0, recreated with the same claim; scaling down
//! removes web-1 and keeps its claim; a RollingUpdate with partition 1 updates only web-1;
//! `rollout status` and `rollout history` read the revisions; `delete --cascade=orphan` leaves
//! the pods, which a new set adopts, and a cascading delete removes them; `rollout undo`
//! restores the previous template; OnDelete waits for the user's delete. The claims are
//! deleted at the end, the storage directory left empty, and every pod leak-checked. A
//! Parallel set with Delete retention policies loses a scaled-down pod's claim, and the others
//! with the set. A set with `maxUnavailable: 2` replaces two pods at a time, never more.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::{start_with_kubectl, Kubectl, Watch};
use crate::common::*;

const SETTLE_WITHIN: Duration = Duration::from_secs(90);
const INTERVAL: Duration = Duration::from_millis(100);

/// `web`: pods ready two seconds after they start, a `data` claim mounted at /data.
const WEB: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: busybox
        command: [sh, -c, 'sleep 2; touch /tmp/ready; exec sleep 3600']
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
";

fn pod(kubectl: &Kubectl, name: &str) -> Option<Value> {
    let out = kubectl.ok(&["get", "pod", name, "-o", "json", "--ignore-not-found"]);
    (!out.trim().is_empty()).then(|| serde_json::from_str(&out).expect("kubectl -o json"))
}

fn is_ready(pod: &Value) -> bool {
    let conditions = pod["status"]["conditions"].as_array();
    conditions
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
        && pod["metadata"]["deletionTimestamp"].is_null()
}

fn ready_transition(pod: &Value) -> String {
    let conditions = pod["status"]["conditions"].as_array();
    let ready = conditions
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    ready.map_or(String::new(), |c| {
        c["lastTransitionTime"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    })
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn revision(pod: &Value) -> String {
    let label = &pod["metadata"]["labels"]["controller-revision-hash"];
    label.as_str().unwrap_or_default().to_owned()
}

fn wait_ready(kubectl: &Kubectl, name: &str) -> Value {
    let found = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || pod(kubectl, name),
        |p| p.as_ref().is_some_and(is_ready),
    );
    found.unwrap_or_else(|| panic!("{name} never became ready"))
}

fn wait_gone(kubectl: &Kubectl, name: &str) {
    wait_until(SETTLE_WITHIN, &format!("{name} to go"), || {
        pod(kubectl, name).is_none()
    });
}

/// Waits until the set's status, observed at its generation, counts `ready` ready pods.
fn wait_status(kubectl: &Kubectl, ready: i64) -> Value {
    let settled = |sts: &Value| {
        sts["status"]["observedGeneration"] == sts["metadata"]["generation"]
            && sts["status"]["readyReplicas"] == ready
            && sts["status"]["replicas"] == ready
    };
    let sts = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "sts", "web"]),
        settled,
    );
    assert!(settled(&sts), "status of web: {sts:#}");
    sts
}

fn storage_entries(agent: &Agent) -> Vec<String> {
    let dir = agent.path().join("var/lib/peapod/storage");
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// web-0 Running and Ready before web-1 exists; hostnames are the pod names.
fn ordered_start(agent: &Agent, kubectl: &Kubectl, seen: &mut BTreeSet<String>) {
    assert_eq!(kubectl.apply(WEB).trim(), "statefulset.apps/web created");
    let first = poll(
        SETTLE_WITHIN,
        Duration::from_millis(50),
        || {
            let web0 = pod(kubectl, "web-0");
            let web1 = pod(kubectl, "web-1");
            if let Some(web1) = &web1 {
                let web0_ready = web0.as_ref().is_some_and(is_ready);
                assert!(
                    web0_ready,
                    "web-1 exists before web-0 is ready: {web0:#?}\n{web1:#}"
                );
            }
            web0
        },
        |web0| web0.as_ref().is_some_and(is_ready),
    );
    let web0 = first.expect("web-0");
    let web1 = wait_ready(kubectl, "web-1");
    assert!(
        web1["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            >= ready_transition(&web0).as_str(),
        "web-1 made before web-0 was ready"
    );
    for (name, pod) in [("web-0", &web0), ("web-1", &web1)] {
        seen.insert(uid(pod));
        assert_eq!(pod["spec"]["hostname"], name);
        assert_eq!(pod["spec"]["subdomain"], "nginx");
        assert_eq!(
            pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
            name
        );
        let (code, hostname, err) = agent.exec(name, "app", &["hostname"]);
        assert_eq!((code, hostname.trim()), (0, name), "{err}");
    }
    let sts = wait_status(kubectl, 2);
    assert_eq!(
        sts["status"]["currentRevision"],
        sts["status"]["updateRevision"]
    );
    assert_eq!(
        revision(&web0),
        sts["status"]["updateRevision"].as_str().unwrap()
    );
    let table = kubectl.ok(&["get", "sts", "web", "-o", "wide"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        [row[0], row[1], row[3], row[4]],
        ["web", "2/2", "app", "busybox"],
        "{table}"
    );
    let claims = kubectl.ok(&["get", "pvc", "-l", "app=web", "-o", "name"]);
    assert_eq!(
        claims.lines().collect::<Vec<_>>(),
        [
            "persistentvolumeclaim/data-web-0",
            "persistentvolumeclaim/data-web-1"
        ]
    );
}

/// A file web-0 wrote survives its pod; scaling down removes web-1 and keeps its claim.
fn claims_outlive_pods(agent: &Agent, kubectl: &Kubectl, seen: &mut BTreeSet<String>) {
    let (code, _, err) = agent.exec("web-0", "app", &["sh", "-c", "echo kept > /data/file"]);
    assert_eq!(code, 0, "{err}");
    let old = uid(&pod(kubectl, "web-0").unwrap());
    kubectl.ok(&["delete", "pod", "web-0"]);
    agent.leak_check(&old);
    let again = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || pod(kubectl, "web-0"),
        |p| p.as_ref().is_some_and(|p| is_ready(p) && uid(p) != old),
    )
    .expect("web-0 recreated");
    seen.insert(uid(&again));
    let (code, data, err) = agent.exec("web-0", "app", &["cat", "/data/file"]);
    assert_eq!((code, data.as_str()), (0, "kept\n"), "{err}");

    kubectl.ok(&["scale", "sts", "web", "--replicas=1"]);
    wait_gone(kubectl, "web-1");
    assert!(pod(kubectl, "web-0").is_some_and(|p| is_ready(&p)));
    wait_status(kubectl, 1);
    let kept = kubectl.ok(&["get", "pvc", "data-web-1", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(kept, "Bound");
    kubectl.ok(&["scale", "sts", "web", "--replicas=2"]);
    seen.insert(uid(&wait_ready(kubectl, "web-1")));
    wait_status(kubectl, 2);
}

/// With partition 1, a template change reaches web-1 only.
fn partitioned_rolling_update(kubectl: &Kubectl, seen: &mut BTreeSet<String>) {
    let before = kubectl.json(&["get", "sts", "web"]);
    let old_revision = before["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_owned();
    let partition = r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}}}}"#;
    kubectl.ok(&["patch", "sts", "web", "-p", partition]);
    let change = r#"{"spec":{"template":{"metadata":{"annotations":{"change":"2"}}}}}"#;
    kubectl.ok(&["patch", "sts", "web", "-p", change]);
    let updated = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "sts", "web"]),
        |sts| {
            sts["status"]["updatedReplicas"] == 1
                && sts["status"]["readyReplicas"] == 2
                && sts["status"]["observedGeneration"] == sts["metadata"]["generation"]
        },
    );
    let new_revision = updated["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_revision, old_revision, "{updated:#}");
    assert_eq!(updated["status"]["currentRevision"], old_revision.as_str());
    let web1 = wait_ready(kubectl, "web-1");
    seen.insert(uid(&web1));
    assert_eq!(revision(&web1), new_revision);
    assert_eq!(web1["metadata"]["annotations"]["change"], "2");
    assert_eq!(revision(&pod(kubectl, "web-0").unwrap()), old_revision);
    let history = kubectl.ok(&["rollout", "history", "sts/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let status = kubectl.ok(&["rollout", "status", "sts/web", "--timeout=30s"]);
    assert!(
        status.contains("partitioned roll out complete: 1 new pods have been updated"),
        "{status}"
    );
}

/// `rollout undo` restores the previous template: web-1 goes back to the old revision,
/// which is renumbered as the newest.
fn undo(kubectl: &Kubectl, seen: &mut BTreeSet<String>) {
    let before = kubectl.json(&["get", "sts", "web"]);
    let old_revision = before["status"]["currentRevision"]
        .as_str()
        .unwrap()
        .to_owned();
    let undone = kubectl.ok(&["rollout", "undo", "sts/web"]);
    assert_eq!(undone.trim(), "statefulset.apps/web rolled back");
    let web1 = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || pod(kubectl, "web-1"),
        |p| {
            p.as_ref()
                .is_some_and(|p| is_ready(p) && revision(p) == old_revision)
        },
    )
    .expect("web-1 rolled back");
    seen.insert(uid(&web1));
    let sts = wait_status(kubectl, 2);
    assert_eq!(sts["status"]["updateRevision"], old_revision.as_str());
    let history = kubectl.ok(&["rollout", "history", "sts/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
}

/// OnDelete: a template change waits for the user's delete of each pod.
fn on_delete(kubectl: &Kubectl, seen: &mut BTreeSet<String>) {
    let strategy = r#"{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}"#;
    kubectl.ok(&["patch", "sts", "web", "-p", strategy]);
    let change = r#"{"spec":{"template":{"metadata":{"annotations":{"change":"3"}}}}}"#;
    kubectl.ok(&["patch", "sts", "web", "-p", change]);
    let waiting = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || kubectl.json(&["get", "sts", "web"]),
        |sts| sts["status"]["observedGeneration"] == sts["metadata"]["generation"],
    );
    let new_revision = waiting["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_owned();
    let web0 = pod(kubectl, "web-0").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(uid(&pod(kubectl, "web-0").unwrap()), uid(&web0));
    assert_ne!(revision(&web0), new_revision);
    kubectl.ok(&["delete", "pod", "web-0"]);
    let replaced = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || pod(kubectl, "web-0"),
        |p| {
            p.as_ref()
                .is_some_and(|p| is_ready(p) && uid(p) != uid(&web0))
        },
    )
    .expect("web-0 recreated");
    seen.insert(uid(&replaced));
    assert_eq!(revision(&replaced), new_revision);
    assert_ne!(revision(&pod(kubectl, "web-1").unwrap()), new_revision);
}

/// An orphaning delete leaves the pods (a new set adopts them); a cascading one removes them.
fn orphan_then_cascade(kubectl: &Kubectl) {
    let deleted = kubectl.ok(&["delete", "sts", "web", "--cascade=orphan"]);
    assert_eq!(deleted.trim(), r#"statefulset.apps "web" deleted"#);
    wait_until(SETTLE_WITHIN, "the pods to be orphaned", || {
        ["web-0", "web-1"].iter().all(|name| {
            pod(kubectl, name)
                .is_some_and(|p| p["metadata"]["ownerReferences"].is_null() && is_ready(&p))
        })
    });
    kubectl.apply(WEB);
    wait_until(SETTLE_WITHIN, "the pods to be adopted", || {
        ["web-0", "web-1"].iter().all(|name| {
            pod(kubectl, name).is_some_and(|p| p["metadata"]["ownerReferences"][0]["name"] == "web")
        })
    });
    kubectl.ok(&["delete", "sts", "web"]);
    wait_gone(kubectl, "web-0");
    wait_gone(kubectl, "web-1");
}

#[test]
fn a_stateful_set_keeps_order_identity_and_claims() {
    let (agent, kubectl) = start_with_kubectl();
    let resources = kubectl.ok(&["api-resources", "--api-group=apps"]);
    let expected = ["statefulsets", "sts", "apps/v1", "true", "StatefulSet"];
    assert!(
        resources
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == expected),
        "{resources}"
    );
    let mut seen = BTreeSet::new();
    ordered_start(&agent, &kubectl, &mut seen);
    claims_outlive_pods(&agent, &kubectl, &mut seen);
    partitioned_rolling_update(&kubectl, &mut seen);
    undo(&kubectl, &mut seen);
    on_delete(&kubectl, &mut seen);
    orphan_then_cascade(&kubectl);
    for uid in &seen {
        agent.leak_check(uid);
    }
    kubectl.ok(&["delete", "pvc", "data-web-0", "data-web-1"]);
    wait_until(SETTLE_WITHIN, "the claims' directories to go", || {
        storage_entries(&agent).is_empty()
    });
}

/// `logs`: Parallel, its claims deleted with the set and when scaled down.
const LOGS: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: logs
spec:
  serviceName: logs
  replicas: 2
  podManagementPolicy: Parallel
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}
  selector:
    matchLabels: {app: logs}
  template:
    metadata:
      labels: {app: logs}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: busybox
        command: [sleep, '3600']
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
";

fn claim(kubectl: &Kubectl, name: &str) -> Option<Value> {
    let out = kubectl.ok(&["get", "pvc", name, "-o", "json", "--ignore-not-found"]);
    (!out.trim().is_empty()).then(|| serde_json::from_str(&out).expect("kubectl -o json"))
}

#[test]
fn delete_retention_policies_take_the_claims_with_the_set_and_when_scaled_down() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(LOGS);
    let first = wait_ready(&kubectl, "logs-0");
    let second = wait_ready(&kubectl, "logs-1");
    let owners = |name: &str| {
        let claim = claim(&kubectl, name).unwrap_or_default();
        claim["metadata"]["ownerReferences"].clone()
    };
    let owned = owners("data-logs-0");
    assert_eq!(owned[0]["kind"], "StatefulSet", "{owned}");
    assert!(owned[0]["controller"].is_null(), "{owned}");

    kubectl.ok(&["scale", "sts", "logs", "--replicas=1"]);
    wait_gone(&kubectl, "logs-1");
    wait_until(SETTLE_WITHIN, "the scaled-down claim to go", || {
        claim(&kubectl, "data-logs-1").is_none()
    });
    assert!(claim(&kubectl, "data-logs-0").is_some());

    kubectl.ok(&["delete", "sts", "logs"]);
    wait_gone(&kubectl, "logs-0");
    wait_until(SETTLE_WITHIN, "the set's claim to go", || {
        claim(&kubectl, "data-logs-0").is_none()
    });
    for pod in [first, second] {
        agent.leak_check(&uid(&pod));
    }
    wait_until(SETTLE_WITHIN, "the claims' directories to go", || {
        storage_entries(&agent).is_empty()
    });
}

/// `wide`: Parallel, four pods ready two seconds after they start, updated two at a time.
const WIDE: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: wide
spec:
  serviceName: wide
  replicas: 4
  podManagementPolicy: Parallel
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 2}
  selector:
    matchLabels: {app: wide}
  template:
    metadata:
      labels: {app: wide}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: busybox
        command: [sh, -c, 'sleep 2; touch /tmp/ready; exec sleep 3600']
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
";

/// How many of `wide`'s four ordinals have no ready, running pod now.
fn wide_unavailable(kubectl: &Kubectl, seen: &mut BTreeSet<String>) -> usize {
    let pods = kubectl.json(&["get", "pods", "-l", "app=wide"]);
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    seen.extend(items.iter().map(uid));
    let available = items
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && is_ready(p))
        .count();
    4 - available.min(4)
}

#[test]
fn max_unavailable_rolls_as_many_pods_as_it_allows() {
    let (agent, kubectl) = start_with_kubectl();
    let mut seen = BTreeSet::new();
    kubectl.apply(WIDE);
    kubectl.ok(&["rollout", "status", "sts/wide", "--timeout=60s"]);
    let before = kubectl.json(&["get", "sts", "wide"]);
    let old_revision = before["status"]["updateRevision"].clone();
    let change = r#"{"spec":{"template":{"metadata":{"annotations":{"change":"2"}}}}}"#;
    kubectl.ok(&["patch", "sts", "wide", "-p", change]);
    let mut counts = Vec::new();
    let rolled = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || {
            counts.push(wide_unavailable(&kubectl, &mut seen));
            kubectl.json(&["get", "sts", "wide"])
        },
        |sts| {
            sts["status"]["observedGeneration"] == sts["metadata"]["generation"]
                && sts["status"]["updateRevision"] != old_revision
                && sts["status"]["updatedReplicas"] == 4
                && sts["status"]["readyReplicas"] == 4
                && sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
        },
    );
    assert_eq!(rolled["status"]["updatedReplicas"], 4, "{rolled:#}");
    let most = counts.iter().max().copied().unwrap_or_default();
    assert_eq!(
        most, 2,
        "at most maxUnavailable pods down at once, and that many: {counts:?}"
    );
    kubectl.ok(&["delete", "sts", "wide"]);
    wait_until(SETTLE_WITHIN, "wide's pods to go", || {
        wide_unavailable(&kubectl, &mut seen) == 4
            && kubectl.json(&["get", "pods", "-l", "app=wide"])["items"]
                .as_array()
                .is_none_or(Vec::is_empty)
    });
    for uid in &seen {
        agent.leak_check(uid);
    }
}

/// The pods of `web` a watch saw, by name, with every uid each name had.
fn uids_by_name(watches: &[&Watch]) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let mut seen: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for (_, pod) in watches.iter().flat_map(|w| w.objects()) {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        seen.entry(name.to_owned()).or_default().insert(uid(&pod));
    }
    seen
}

/// As kube's controllers rebuild their view from the API: a scale-up from 1 to 3 interrupted by
/// a SIGKILLed agent ends with web-0, web-1 and web-2 once each, the pods made before the kill
/// kept, each pod's containers running once, and one claim per ordinal.
#[test]
fn a_scale_up_survives_an_agent_kill_without_duplicates_or_losses() {
    let (mut agent, kubectl) = start_with_kubectl();
    kubectl.apply(&WEB.replace("replicas: 2", "replicas: 1"));
    let web0 = uid(&wait_ready(&kubectl, "web-0"));
    let before = Watch::pods(&kubectl, "web");
    kubectl.ok(&["scale", "sts", "web", "--replicas=3"]);
    let web1 = poll(
        SETTLE_WITHIN,
        INTERVAL,
        || pod(&kubectl, "web-1"),
        |p| p.is_some(),
    )
    .map(|p| uid(&p))
    .expect("web-1 created");
    agent.kill_and_restart();
    let after = Watch::pods(&kubectl, "web");
    wait_status(&kubectl, 3);

    let seen = uids_by_name(&[&before, &after]);
    let names: Vec<&String> = seen.keys().collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"], "{seen:#?}");
    assert_eq!(seen["web-0"], BTreeSet::from([web0.clone()]), "web-0 kept");
    assert_eq!(seen["web-1"], BTreeSet::from([web1.clone()]), "web-1 kept");
    assert_eq!(seen["web-2"].len(), 1, "web-2 made once: {seen:#?}");
    let claims = kubectl.ok(&["get", "pvc", "-o", "name"]);
    let mut claims: Vec<&str> = claims.lines().collect();
    claims.sort_unstable();
    assert_eq!(
        claims,
        [
            "persistentvolumeclaim/data-web-0",
            "persistentvolumeclaim/data-web-1",
            "persistentvolumeclaim/data-web-2"
        ]
    );
    let all: BTreeSet<String> = seen.values().flatten().cloned().collect();
    for pod in &all {
        agent.assert_single_instances(pod);
    }
    kubectl.ok(&["delete", "sts", "web"]);
    for name in ["web-0", "web-1", "web-2"] {
        wait_gone(&kubectl, name);
    }
    for pod in &all {
        agent.leak_check(pod);
    }
    kubectl.ok(&["delete", "pvc", "data-web-0", "data-web-1", "data-web-2"]);
    wait_until(SETTLE_WITHIN, "the claims' directories to go", || {
        storage_entries(&agent).is_empty()
    });
}
