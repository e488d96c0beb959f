//! Rollouts as kube's test/e2e/apps/deployment.go drives them: a RollingUpdate within its
//! maxSurge and maxUnavailable, a pause holding a template change back until resumed, a
//! restart, Recreate emptying the old pods before any new one, and a rollover (an update in
//! the middle of a rollout) won by the newest template.

use std::collections::BTreeMap;

use serde_json::Value;

use super::support::*;
use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

const SURGE_1_UNAVAILABLE_1: &str =
    "  strategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}\n";

#[test]
fn a_rolling_update_stays_within_surge_and_unavailability_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let pods_seen = Watch::pods(&kubectl, "web");
    let created = kubectl.apply(&deployment("web", 4, SURGE_1_UNAVAILABLE_1));
    assert_eq!(created.trim(), "deployment.apps/web created");
    rolled_out(&kubectl, "web");
    let first = replica_sets(&kubectl, "web").remove(0);
    let first_hash = template_hash(&first);
    assert_eq!(name(&first), format!("web-{first_hash}"));
    assert_eq!(revision(&first), "1");
    assert_eq!(
        scaling_events(&kubectl, "web"),
        [format!("Scaled up replica set web-{first_hash} to 4")]
    );

    let sets_watch = Watch::start(&kubectl, &["rs", "-l", "app=web"]);
    let deployment_watch = Watch::start(
        &kubectl,
        &["deploy", "--field-selector", "metadata.name=web"],
    );
    let updated = kubectl.ok(&["set", "image", "deploy/web", "app=busybox:latest"]);
    assert_eq!(updated.trim(), "deployment.apps/web image updated");
    rolled_out(&kubectl, "web");

    let sets = replica_sets(&kubectl, "web");
    assert_eq!(sets.len(), 2, "the old ReplicaSet is kept: {sets:#?}");
    let (old, new) = (&sets[0], &sets[1]);
    assert_eq!(uid(old), uid(&first));
    assert_eq!((replicas(old), revision(old).as_str()), (0, "1"));
    let new_hash = template_hash(new);
    assert_ne!(new_hash, first_hash);
    assert_eq!(name(new), format!("web-{new_hash}"));
    assert_eq!((replicas(new), revision(new).as_str()), (4, "2"));
    assert_eq!(image(new), "busybox:latest");
    let web = kubectl.json(&["get", "deploy", "web"]);
    assert_eq!(revision(&web), "2");
    assert_eq!(controller_uid(new), uid(&web));
    wait_until(SETTLE_WITHIN, "the old pods to go", || {
        pods_by_template(&kubectl, "web", &new_hash) == (0, 4)
    });
    for pod in pods(&kubectl, "web") {
        assert_eq!(
            pod["metadata"]["labels"]["pod-template-hash"],
            new_hash.as_str()
        );
        assert_eq!(controller_uid(&pod), uid(new), "{pod}");
    }

    assert_bounds(&sets_watch, &deployment_watch, 4 + 1, 4 - 1);
    let events = scaling_events(&kubectl, "web");
    assert!(
        events.contains(&format!("Scaled up replica set web-{new_hash} to 1")),
        "{events:#?}"
    );
    assert!(
        events.contains(&format!(
            "Scaled down replica set web-{first_hash} to 0 from 1"
        )) || events.contains(&format!(
            "Scaled down replica set web-{first_hash} to 0 from 2"
        )),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with(&format!("Scaled up replica set web-{new_hash} to 4 from "))),
        "{events:#?}"
    );
    delete_and_leak_check(&agent, &kubectl, "web", &[&pods_seen]);
}

fn template_hash(rs: &Value) -> String {
    rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// kube's `WaitForDeploymentCompleteAndCheckRolling`: at every change the watches saw, the
/// ReplicaSets ask for at most `max_created` pods and the Deployment counts at least
/// `min_available` available.
fn assert_bounds(sets: &Watch, deployment: &Watch, max_created: i64, min_available: i64) {
    let mut sizes = BTreeMap::new();
    let changes = sets.objects();
    assert!(changes.len() > 2, "the watch saw the rollout: {changes:#?}");
    for (_, rs) in &changes {
        sizes.insert(name(rs), replicas(rs));
        let total: i64 = sizes.values().sum();
        assert!(
            total <= max_created,
            "{total} pods asked for, more than {max_created}: {sizes:?}"
        );
    }
    for (_, d) in deployment.objects() {
        let available = d["status"]["availableReplicas"]
            .as_i64()
            .unwrap_or_default();
        assert!(
            available >= min_available,
            "{available} available, fewer than {min_available}: {:#}",
            d["status"]
        );
    }
}

/// Pods of `app` and whether each is of the ReplicaSet with hash `hash`.
fn pods_by_template(kubectl: &Kubectl, app: &str, hash: &str) -> (usize, usize) {
    let pods = pods(kubectl, app);
    let new = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["pod-template-hash"] == hash)
        .count();
    (pods.len() - new, new)
}

#[test]
fn a_paused_deployment_rolls_only_when_resumed_and_restarts_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let pods_seen = Watch::pods(&kubectl, "web");
    // A shell as the pod's first process stops on SIGTERM only if it traps it.
    let created = kubectl.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
        "--",
        "sh",
        "-c",
        "trap exit TERM; sleep 3600 & wait",
    ]);
    assert_eq!(created.trim(), "deployment.apps/web created");
    rolled_out(&kubectl, "web");
    let watch = Watch::start(
        &kubectl,
        &["deploy", "--field-selector", "metadata.name=web"],
    );

    let paused = kubectl.ok(&["rollout", "pause", "deploy/web"]);
    assert_eq!(paused.trim(), "deployment.apps/web paused");
    let web = wait_for_progressing(&kubectl, "web", "DeploymentPaused");
    let progressing = condition(&web, "Progressing");
    assert_eq!(progressing["status"], "Unknown", "{web:#}");
    assert_eq!(progressing["message"], "Deployment is paused", "{web:#}");
    kubectl.ok(&["set", "image", "deploy/web", "busybox=busybox:latest"]);
    let web = poll(
        SETTLE_WITHIN,
        std::time::Duration::from_millis(200),
        || kubectl.json(&["get", "deploy", "web"]),
        |d| d["status"]["observedGeneration"] == d["metadata"]["generation"],
    );
    assert_eq!(
        web["status"]["observedGeneration"],
        web["metadata"]["generation"]
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        replica_sets(&kubectl, "web").len(),
        1,
        "no rollout while paused"
    );
    assert_eq!(revision(&web), "1");

    let resumed = kubectl.ok(&["rollout", "resume", "deploy/web"]);
    assert_eq!(resumed.trim(), "deployment.apps/web resumed");
    rolled_out(&kubectl, "web");
    let sets = replica_sets(&kubectl, "web");
    assert_eq!(sets.len(), 2, "{sets:#?}");
    assert_eq!(
        (revision(&sets[1]), replicas(&sets[1])),
        ("2".to_owned(), 2)
    );
    assert_eq!(image(&sets[1]), "busybox:latest");
    let reasons: Vec<String> = watch
        .objects()
        .iter()
        .map(|(_, d)| condition_reason(d, "Progressing"))
        .collect();
    let resumed_at = reasons.iter().position(|r| r == "DeploymentResumed");
    assert!(
        resumed_at.is_some_and(|at| reasons[..at].contains(&"DeploymentPaused".to_owned())),
        "{reasons:?}"
    );

    let restarted = kubectl.ok(&["rollout", "restart", "deploy/web"]);
    assert_eq!(restarted.trim(), "deployment.apps/web restarted");
    rolled_out(&kubectl, "web");
    let sets = replica_sets(&kubectl, "web");
    assert_eq!(sets.len(), 3, "{sets:#?}");
    let newest = &sets[2];
    assert_eq!((revision(newest), replicas(newest)), ("3".to_owned(), 2));
    let restarted_at =
        &newest["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"];
    assert!(restarted_at.is_string(), "{newest:#}");
    assert_eq!(image(newest), "busybox:latest");
    let web = kubectl.json(&["get", "deploy", "web"]);
    assert_eq!(
        condition_reason(&web, "Progressing"),
        "NewReplicaSetAvailable"
    );
    delete_and_leak_check(&agent, &kubectl, "web", &[&pods_seen]);
}

/// Polls Deployment `d` until its Progressing condition has `reason`.
fn wait_for_progressing(kubectl: &Kubectl, d: &str, reason: &str) -> Value {
    let web = poll(
        SETTLE_WITHIN,
        std::time::Duration::from_millis(200),
        || kubectl.json(&["get", "deploy", d]),
        |web| condition_reason(web, "Progressing") == reason,
    );
    assert_eq!(condition_reason(&web, "Progressing"), reason, "{web:#}");
    web
}

#[test]
fn recreate_stops_every_old_pod_before_starting_a_new_one_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let pods_seen = Watch::pods(&kubectl, "web");
    kubectl.apply(&deployment("web", 3, "  strategy: {type: Recreate}\n"));
    rolled_out(&kubectl, "web");
    let old_hash = template_hash(&replica_sets(&kubectl, "web")[0]);
    let deployment_watch = Watch::start(
        &kubectl,
        &["deploy", "--field-selector", "metadata.name=web"],
    );
    kubectl.ok(&["set", "image", "deploy/web", "app=busybox:latest"]);
    rolled_out(&kubectl, "web");
    let sets = replica_sets(&kubectl, "web");
    assert_eq!(sets.iter().map(replicas).collect::<Vec<_>>(), [0, 3]);
    let new_hash = template_hash(&sets[1]);

    let mut running_old = BTreeMap::new();
    let mut new_pods = 0;
    for (type_, pod) in pods_seen.objects() {
        let hash = pod["metadata"]["labels"]["pod-template-hash"].clone();
        let terminal = matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        if hash == old_hash.as_str() {
            if type_ == "DELETED" || terminal {
                running_old.remove(&uid(&pod));
            } else {
                running_old.insert(uid(&pod), name(&pod));
            }
        } else if hash == new_hash.as_str() {
            assert!(
                running_old.is_empty(),
                "new pod {} beside old ones still running: {running_old:?}",
                name(&pod)
            );
            new_pods += 1;
        }
    }
    assert!(new_pods >= 3, "the watch saw the new pods");
    for (_, d) in deployment_watch.objects() {
        let status = &d["status"];
        let updated = status["updatedReplicas"].as_i64().unwrap_or_default();
        let replicas = status["replicas"].as_i64().unwrap_or_default();
        assert!(
            updated == 0 || updated == replicas,
            "new pods running alongside old ones: {status:#}"
        );
    }
    delete_and_leak_check(&agent, &kubectl, "web", &[&pods_seen]);
}

#[test]
fn an_update_during_a_rollout_rolls_over_to_the_newest_template_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let pods_seen = Watch::pods(&kubectl, "web");
    let strategy = "  strategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n";
    kubectl.apply(&deployment("web", 2, strategy));
    rolled_out(&kubectl, "web");
    kubectl.ok(&["set", "image", "deploy/web", "app=busybox-does-not-exist:1"]);
    let stuck = poll(
        SETTLE_WITHIN,
        std::time::Duration::from_millis(200),
        || replica_sets(&kubectl, "web"),
        |sets| sets.len() == 2 && replicas(&sets[1]) == 1,
    );
    assert_eq!(stuck.iter().map(replicas).collect::<Vec<_>>(), [2, 1]);
    let half_done = name(&stuck[1]);

    kubectl.ok(&["set", "image", "deploy/web", "app=busybox:latest"]);
    rolled_out(&kubectl, "web");
    let sets = replica_sets(&kubectl, "web");
    let summary: Vec<(String, i64, String)> = sets
        .iter()
        .map(|rs| (revision(rs), replicas(rs), image(rs)))
        .collect();
    assert_eq!(
        summary,
        [
            ("1".to_owned(), 0, "busybox".to_owned()),
            ("2".to_owned(), 0, "busybox-does-not-exist:1".to_owned()),
            ("3".to_owned(), 2, "busybox:latest".to_owned()),
        ]
    );
    assert_eq!(name(&sets[1]), half_done);
    let events = scaling_events(&kubectl, "web");
    assert!(
        events.contains(&format!("Scaled down replica set {half_done} to 0 from 1")),
        "{events:#?}"
    );
    delete_and_leak_check(&agent, &kubectl, "web", &[&pods_seen]);
}
