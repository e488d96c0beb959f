//! Who owns what: an orphan ReplicaSet the selector matches is adopted (and rolled over), a
//! Deployment deleted with `--cascade=orphan` leaves its ReplicaSets and pods to the next
//! Deployment to adopt, a cascading delete takes them; and an agent killed in the middle of a
//! rollout finishes it after its restart, no pod lost or doubled.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::support::*;
use crate::common::kubectl::start_with_kubectl;
use crate::common::*;

/// A ReplicaSet of `app: web` pods of another image than the Deployment's, with no owner.
const ORPHAN: &str = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: orphan\n  labels: {app: web}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: busybox:latest\n        command: [sleep, '3600']\n";

fn uids(values: &[serde_json::Value]) -> BTreeSet<String> {
    values.iter().map(uid).collect()
}

#[test]
fn deployments_adopt_orphans_and_orphan_or_cascade_on_delete_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let pods_seen = Watch::pods(&kubectl, "web");
    kubectl.apply(ORPHAN);
    wait_until(SETTLE_WITHIN, "the orphan's pod", || {
        pods(&kubectl, "web").iter().any(all_running)
    });
    kubectl.apply(&deployment("web", 2, ""));
    rolled_out(&kubectl, "web");
    let web = kubectl.json(&["get", "deploy", "web"]);
    let orphan = kubectl.json(&["get", "rs", "orphan"]);
    assert_eq!(
        orphan["metadata"]["ownerReferences"],
        json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": uid(&web),
                "controller": true, "blockOwnerDeletion": true}]),
    );
    // kube numbers the ReplicaSets it creates; an adopted one has no revision.
    assert_eq!((replicas(&orphan), revision(&orphan)), (0, String::new()));
    let sets = replica_sets(&kubectl, "web");
    assert_eq!(sets.len(), 2, "{sets:#?}");
    assert_eq!(
        (revision(&sets[1]), replicas(&sets[1])),
        ("1".to_owned(), 2)
    );
    assert_eq!(revision(&web), "1");
    wait_until(SETTLE_WITHIN, "the orphan's pod to go", || {
        pods(&kubectl, "web").len() == 2
    });

    let deleted = kubectl.ok(&["delete", "deploy", "web", "--cascade=orphan"]);
    assert_eq!(deleted.trim(), r#"deployment.apps "web" deleted"#);
    let left = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || replica_sets(&kubectl, "web"),
        |sets| sets.iter().all(|rs| controller_uid(rs).is_empty()),
    );
    assert_eq!(uids(&left), uids(&sets), "the ReplicaSets stay");
    assert!(
        left.iter().all(|rs| controller_uid(rs).is_empty()),
        "{left:#?}"
    );
    let running = uids(&pods(&kubectl, "web"));
    assert_eq!(running.len(), 2);

    kubectl.apply(&deployment("web", 2, ""));
    rolled_out(&kubectl, "web");
    let web = kubectl.json(&["get", "deploy", "web"]);
    let adopted = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || replica_sets(&kubectl, "web"),
        |sets| sets.iter().all(|rs| controller_uid(rs) == uid(&web)),
    );
    assert_eq!(uids(&adopted), uids(&sets), "adopted, none created");
    assert!(
        adopted.iter().all(|rs| controller_uid(rs) == uid(&web)),
        "{adopted:#?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(uids(&pods(&kubectl, "web")), running, "no pod replaced");
    delete_and_leak_check(&agent, &kubectl, "web", &[&pods_seen]);
}

#[test]
fn a_rollout_survives_an_agent_restart_as_kube_controllers_do() {
    let (mut agent, kubectl) = start_with_kubectl();
    let before = Watch::pods(&kubectl, "web");
    let spec =
        "  minReadySeconds: 2\n  strategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}\n";
    kubectl.apply(&deployment("web", 4, spec));
    rolled_out(&kubectl, "web");
    kubectl.ok(&["set", "image", "deploy/web", "app=busybox:latest"]);
    wait_until(SETTLE_WITHIN, "the rollout to start", || {
        replica_sets(&kubectl, "web").len() == 2
    });
    std::thread::sleep(Duration::from_millis(1500));
    let mid = replica_sets(&kubectl, "web");
    assert!(replicas(&mid[0]) > 0, "killed mid-rollout: {mid:#?}");
    let new_pods: BTreeSet<String> = pods(&kubectl, "web")
        .iter()
        .filter(|p| controller_uid(p) == uid(&mid[1]))
        .map(uid)
        .collect();
    agent.kill_and_restart();
    let after = Watch::pods(&kubectl, "web");
    rolled_out(&kubectl, "web");

    let sets = replica_sets(&kubectl, "web");
    assert_eq!(sets.iter().map(replicas).collect::<Vec<_>>(), [0, 4]);
    let new_rs = uid(&sets[1]);
    let settled = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || pods(&kubectl, "web"),
        |pods| pods.len() == 4 && pods.iter().all(|p| controller_uid(p) == new_rs),
    );
    assert_eq!(settled.len(), 4, "{settled:#?}");
    for pod in &settled {
        assert!(all_running(pod), "{pod:#}");
        assert_eq!(controller_uid(pod), new_rs, "{pod:#}");
        agent.assert_single_instances(&uid(pod));
    }
    let names: BTreeSet<String> = settled.iter().map(name).collect();
    assert_eq!(names.len(), 4);
    let kept: BTreeSet<String> = settled.iter().map(uid).collect();
    assert!(
        new_pods.is_subset(&kept),
        "the new ReplicaSet's pods of before the restart are kept: {new_pods:?} in {kept:?}"
    );
    delete_and_leak_check(&agent, &kubectl, "web", &[&before, &after]);
}
