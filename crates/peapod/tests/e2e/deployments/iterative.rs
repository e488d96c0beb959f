//! kube's "iterative rollouts should eventually progress": twenty changes in a pseudo-random
//! (but fixed) order — new templates, deprecated rollbacks (the
//! `deprecated.deployment.rollback.to` annotation), scaling, pausing and resuming, deleting
//! pods — and the Deployment still completes, its history within revisionHistoryLimit.

use std::time::Duration;

use serde_json::json;

use super::support::*;
use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// A linear congruential generator: the same sequence of changes in every run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % sides
    }

    /// kube's `randomScale`: up or down by one (never below one) or unchanged.
    fn scale(&mut self, replicas: i64) -> i64 {
        match self.roll(10) {
            0..=2 => replicas + 1,
            3..=5 if replicas > 1 => replicas - 1,
            _ => replicas,
        }
    }
}

fn patch(kubectl: &Kubectl, patch: serde_json::Value) {
    kubectl.ok(&["patch", "deploy", "web", "-p", &patch.to_string()]);
}

/// One of kube's five changes, as `i`th of the run; answers the replicas and whether paused.
fn change(kubectl: &Kubectl, dice: &mut Dice, i: u64, replicas: i64, paused: bool) -> (i64, bool) {
    let kind = dice.roll(5);
    eprintln!("{i:02}: change {kind} of 5, {replicas} replicas, paused: {paused}");
    match kind {
        0 => {
            let replicas = dice.scale(replicas);
            let env = json!([{"name": format!("A{i}"), "value": i.to_string()}]);
            let containers = json!([{"name": "app", "env": env}]);
            patch(
                kubectl,
                json!({"spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}}}),
            );
            (replicas, paused)
        }
        1 => {
            kubectl.ok(&[
                "annotate",
                "deploy",
                "web",
                "deprecated.deployment.rollback.to=0",
                "--overwrite",
            ]);
            (replicas, paused)
        }
        2 => {
            let replicas = dice.scale(replicas);
            kubectl.ok(&["scale", "deploy", "web", &format!("--replicas={replicas}")]);
            (replicas, paused)
        }
        3 => {
            let replicas = dice.scale(replicas);
            patch(
                kubectl,
                json!({"spec": {"paused": !paused, "replicas": replicas}}),
            );
            (replicas, !paused)
        }
        _ => {
            for pod in pods(kubectl, "web") {
                if dice.roll(2) == 0 {
                    kubectl.ok(&[
                        "delete",
                        "pod",
                        &name(&pod),
                        "--wait=false",
                        "--ignore-not-found",
                    ]);
                }
            }
            (replicas, paused)
        }
    }
}

#[test]
fn iterative_rollouts_eventually_progress_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let pods_seen = Watch::pods(&kubectl, "web");
    kubectl.apply(&deployment(
        "web",
        6,
        "  revisionHistoryLimit: 2\n  progressDeadlineSeconds: 300\n",
    ));
    let mut dice = Dice(15);
    let (mut replicas, mut paused) = (6, false);
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(dice.roll(4) * 250));
        (replicas, paused) = change(&kubectl, &mut dice, i, replicas, paused);
    }
    if paused {
        kubectl.ok(&["rollout", "resume", "deploy/web"]);
    }
    rolled_out(&kubectl, "web");
    let web = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || kubectl.json(&["get", "deploy", "web"]),
        |d| {
            d["status"]["observedGeneration"] == d["metadata"]["generation"]
                && condition_reason(d, "Progressing") == "NewReplicaSetAvailable"
        },
    );
    assert_eq!(
        condition_reason(&web, "Progressing"),
        "NewReplicaSetAvailable",
        "{web:#}"
    );
    assert_eq!(web["spec"]["replicas"], replicas);
    assert_eq!(web["status"]["availableReplicas"], replicas, "{web:#}");
    let sets = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || replica_sets(&kubectl, "web"),
        |sets| sets.len() <= 3,
    );
    assert!(sets.len() <= 3, "at most two old ReplicaSets: {sets:#?}");
    let newest = sets.last().unwrap();
    assert_eq!(revision(newest), revision(&web));
    let running = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || pods(&kubectl, "web"),
        |pods| {
            pods.len() as i64 == replicas && pods.iter().all(|p| controller_uid(p) == uid(newest))
        },
    );
    assert_eq!(running.len() as i64, replicas, "{running:#?}");
    assert!(running.iter().all(all_running), "{running:#?}");
    delete_and_leak_check(&agent, &kubectl, "web", &[&pods_seen]);
}
