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
    let deployment_watch = Watch::start(&kubectl, &["deploy", "--field-selector", "metadata.name=web"]);
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
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], new_hash.as_str());
        assert_eq!(controller_uid(&pod), uid(new), "{pod}");
    }

    assert_bounds(&sets_watch, &deployment_watch, 4 + 1, 4 - 1);
    let events = scaling_events(&kubectl, "web");
    assert!(
        events.contains(&format!("Scaled up replica set web-{new_hash} to 1")),
        "{events:#?}"
    );
    assert!(
        events.contains(&format!("Scaled down replica set web-{first_hash} to 0 from 1"))
            || events.contains(&format!("Scaled down replica set web-{first_hash} to 0 from 2")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with(&format!("Scaled up replica set web-{new_hash} to 4 from "))),
        "{events:#?}"
    );
    delete_and_leak_check(&agent, &kubectl, "web", pods_seen);
}

pub fn template_hash(rs: &Value) -> String {
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
        let available = d["status"]["availableReplicas"].as_i64().unwrap_or_default();
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
