//! Rollouts that cannot finish, as kube's test/e2e/apps/deployment.go checks them: a template
//! whose image does not exist stalls its rollout, which times out after
//! progressDeadlineSeconds (kubectl's `rollout status` failing) while the old pods serve; a
//! Deployment scaled in the middle of such a rollout shares the new replicas out across its
//! ReplicaSets in proportion to their sizes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::support::*;
use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

const BAD_IMAGE: &str = "app=busybox-does-not-exist:1";

/// The (spec.replicas, desired-replicas, max-replicas) of the ReplicaSets of `d` once they are
/// `expected`, oldest first.
fn sizes_once(kubectl: &Kubectl, d: &str, expected: &[i64]) -> Vec<(i64, String, String)> {
    let sets = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || replica_sets(kubectl, d),
        |sets| sets.iter().map(replicas).collect::<Vec<_>>() == expected,
    );
    let of = |rs: &serde_json::Value, key: &str| {
        annotation(rs, &format!("deployment.kubernetes.io/{key}"))
            .unwrap_or_default()
            .to_owned()
    };
    sets.iter()
        .map(|rs| {
            (
                replicas(rs),
                of(rs, "desired-replicas"),
                of(rs, "max-replicas"),
            )
        })
        .collect()
}

#[test]
fn a_bad_image_exceeds_the_progress_deadline_while_old_pods_serve_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let pods_seen = Watch::pods(&kubectl, "web");
    kubectl.apply(&deployment("web", 2, "  progressDeadlineSeconds: 10\n"));
    rolled_out(&kubectl, "web");
    let serving: BTreeSet<String> = pods(&kubectl, "web").iter().map(uid).collect();

    kubectl.ok(&["set", "image", "deploy/web", BAD_IMAGE]);
    let updated_at = Instant::now();
    let out = rollout_status(&kubectl, "web");
    let waited = updated_at.elapsed();
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(r#"error: deployment "web" exceeded its progress deadline"#),
        "{}",
        text(&out.stderr)
    );
    assert!(
        waited >= Duration::from_secs(9),
        "timed out after {waited:?}"
    );

    let sets = replica_sets(&kubectl, "web");
    let web = kubectl.json(&["get", "deploy", "web"]);
    let progressing = condition(&web, "Progressing");
    assert_eq!(progressing["status"], "False", "{web:#}");
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded", "{web:#}");
    assert_eq!(
        progressing["message"],
        format!(
            "ReplicaSet \"{}\" has timed out progressing.",
            name(&sets[1])
        ),
    );
    assert_eq!(
        condition_reason(&web, "Available"),
        "MinimumReplicasAvailable"
    );
    assert_eq!(web["status"]["availableReplicas"], 2, "{web:#}");
    assert_eq!(sets.iter().map(replicas).collect::<Vec<_>>(), [2, 1]);
    let still: BTreeSet<String> = pods(&kubectl, "web")
        .iter()
        .filter(|p| all_running(p))
        .map(uid)
        .collect();
    assert_eq!(still, serving, "the old pods keep serving");

    let undone = kubectl.ok(&["rollout", "undo", "deploy/web"]);
    assert_eq!(undone.trim(), "deployment.apps/web rolled back");
    rolled_out(&kubectl, "web");
    let web = kubectl.json(&["get", "deploy", "web"]);
    assert_eq!(
        condition_reason(&web, "Progressing"),
        "NewReplicaSetAvailable"
    );
    let sets = replica_sets(&kubectl, "web");
    assert_eq!(sets.iter().map(replicas).collect::<Vec<_>>(), [0, 2]);
    delete_and_leak_check(&agent, &kubectl, "web", &[&pods_seen]);
}

/// kube's "deployment should support proportional scaling": 10 replicas, maxSurge 3,
/// maxUnavailable 2, stuck on a bad image at 8 old and 5 new; scaled to 30 they become 20
/// and 13.
#[test]
fn scaling_a_stuck_rollout_shares_the_replicas_out_proportionally_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let pods_seen = Watch::pods(&kubectl, "web");
    let strategy = "  strategy:\n    rollingUpdate: {maxSurge: 3, maxUnavailable: 2}\n";
    kubectl.apply(&deployment("web", 10, strategy));
    rolled_out(&kubectl, "web");
    kubectl.ok(&["set", "image", "deploy/web", BAD_IMAGE]);
    let stuck = sizes_once(&kubectl, "web", &[8, 5]);
    assert_eq!(stuck.iter().map(|s| s.0).collect::<Vec<_>>(), [8, 5]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        replica_sets(&kubectl, "web")
            .iter()
            .map(replicas)
            .collect::<Vec<_>>(),
        [8, 5],
        "the rollout stays stuck"
    );

    let scaled = kubectl.ok(&["scale", "deploy/web", "--replicas=30"]);
    assert_eq!(scaled.trim(), "deployment.apps/web scaled");
    let sizes = sizes_once(&kubectl, "web", &[20, 13]);
    let expected = |n: i64| (n, "30".to_owned(), "33".to_owned());
    assert_eq!(sizes, [expected(20), expected(13)]);
    let events = scaling_events(&kubectl, "web");
    let sets = replica_sets(&kubectl, "web");
    for (rs, from, to) in [(&sets[0], 8, 20), (&sets[1], 5, 13)] {
        let message = format!("Scaled up replica set {} to {to} from {from}", name(rs));
        assert!(events.contains(&message), "{message:?} in {events:#?}");
    }
    delete_and_leak_check(&agent, &kubectl, "web", &[&pods_seen]);
}
