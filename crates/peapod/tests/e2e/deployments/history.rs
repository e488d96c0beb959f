//! A Deployment's revisions as kubectl reads them: `rollout history` with the change causes
//! copied to the ReplicaSets, `rollout undo` reusing an old ReplicaSet as the next revision
//! (to the previous one or `--to-revision`, an unknown one refused), and revisionHistoryLimit
//! deleting the oldest emptied ReplicaSets.

use std::time::Duration;

use super::support::*;
use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// `deployment` with a change cause and another image.
fn caused(name: &str, cause: &str, image: &str) -> String {
    deployment(name, 2, "")
        .replace(
            &format!("metadata:\n  name: {name}\n"),
            &format!("metadata:\n  name: {name}\n  annotations: {{kubernetes.io/change-cause: {cause}}}\n"),
        )
        .replace("image: busybox\n", &format!("image: {image}\n"))
}

/// The (revision, change cause) rows of `kubectl rollout history`.
fn history(kubectl: &Kubectl, d: &str) -> Vec<(String, String)> {
    let out = kubectl.ok(&["rollout", "history", &format!("deploy/{d}")]);
    let mut lines = out.lines().skip_while(|l| !l.starts_with("REVISION"));
    assert!(lines.next().is_some(), "{out}");
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (revision, cause) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (revision.to_owned(), cause.trim().to_owned())
        })
        .collect()
}

fn rows(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(r, c)| (r.to_string(), c.to_string()))
        .collect()
}

#[test]
fn rollout_history_and_undo_reuse_old_replica_sets_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let pods_seen = Watch::pods(&kubectl, "web");
    kubectl.apply(&caused("web", "first", "busybox"));
    rolled_out(&kubectl, "web");
    kubectl.apply(&caused("web", "second", "busybox:latest"));
    rolled_out(&kubectl, "web");
    let sets = replica_sets(&kubectl, "web");
    let (first, second) = (uid(&sets[0]), uid(&sets[1]));
    for (rs, cause) in sets.iter().zip(["first", "second"]) {
        assert_eq!(
            annotation(rs, "kubernetes.io/change-cause"),
            Some(cause),
            "{rs:#}"
        );
    }
    assert_eq!(
        history(&kubectl, "web"),
        rows(&[("1", "first"), ("2", "second")])
    );

    let undone = kubectl.ok(&["rollout", "undo", "deploy/web"]);
    assert_eq!(undone.trim(), "deployment.apps/web rolled back");
    rolled_out(&kubectl, "web");
    let sets = replica_sets(&kubectl, "web");
    assert_eq!(sets.len(), 2, "the old ReplicaSet is reused: {sets:#?}");
    let (back, previous) = (&sets[1], &sets[0]);
    assert_eq!((uid(back), revision(back)), (first.clone(), "3".to_owned()));
    assert_eq!(
        annotation(back, "deployment.kubernetes.io/revision-history"),
        Some("1")
    );
    assert_eq!((uid(previous), replicas(previous)), (second.clone(), 0));
    assert_eq!(replicas(back), 2);
    let web = kubectl.json(&["get", "deploy", "web"]);
    assert_eq!(
        (revision(&web), image(&web)),
        ("3".to_owned(), "busybox".to_owned())
    );
    assert_eq!(
        history(&kubectl, "web"),
        rows(&[("2", "second"), ("3", "first")])
    );
    let third = kubectl.ok(&["rollout", "history", "deploy/web", "--revision=3"]);
    assert!(
        third.contains("deployment.apps/web with revision #3")
            && third.contains("Image:\tbusybox\n"),
        "{third}"
    );

    let unknown = kubectl.fails(&["rollout", "undo", "deploy/web", "--to-revision=9"]);
    assert!(
        unknown.contains("unable to find specified revision 9 in history"),
        "{unknown}"
    );
    let undone = kubectl.ok(&["rollout", "undo", "deploy/web", "--to-revision=2"]);
    assert_eq!(undone.trim(), "deployment.apps/web rolled back");
    rolled_out(&kubectl, "web");
    let sets = replica_sets(&kubectl, "web");
    assert_eq!(sets.len(), 2, "{sets:#?}");
    assert_eq!(
        (uid(&sets[1]), revision(&sets[1])),
        (second, "4".to_owned())
    );
    assert_eq!(
        annotation(&sets[1], "deployment.kubernetes.io/revision-history"),
        Some("2")
    );
    assert_eq!(
        image(&kubectl.json(&["get", "deploy", "web"])),
        "busybox:latest"
    );
    assert_eq!(
        history(&kubectl, "web"),
        rows(&[("3", "first"), ("4", "second")])
    );
    delete_and_leak_check(&agent, &kubectl, "web", &[&pods_seen]);
}

/// The revisions of the ReplicaSets of `d` once they number `count`.
fn revisions_once(kubectl: &Kubectl, d: &str, count: usize) -> Vec<String> {
    let sets = poll(
        SETTLE_WITHIN,
        Duration::from_millis(200),
        || replica_sets(kubectl, d),
        |sets| sets.len() == count,
    );
    sets.iter().map(revision).collect()
}

#[test]
fn revision_history_limit_deletes_the_oldest_replica_sets_as_kube_does() {
    let (agent, kubectl) = start_with_kubectl();
    let none_seen = Watch::pods(&kubectl, "none");
    let two_seen = Watch::pods(&kubectl, "two");
    kubectl.apply(&deployment("none", 1, "  revisionHistoryLimit: 0\n"));
    kubectl.apply(&deployment("two", 1, "  revisionHistoryLimit: 2\n"));
    for d in ["none", "two"] {
        rolled_out(&kubectl, d);
    }
    kubectl.ok(&["set", "image", "deploy/none", "app=busybox:latest"]);
    rolled_out(&kubectl, "none");
    assert_eq!(revisions_once(&kubectl, "none", 1), ["2"]);

    for n in 1..=3 {
        kubectl.ok(&["set", "env", "deploy/two", &format!("N={n}")]);
        rolled_out(&kubectl, "two");
    }
    assert_eq!(revisions_once(&kubectl, "two", 3), ["2", "3", "4"]);
    let history: Vec<String> = history(&kubectl, "two")
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(history, ["2", "3", "4"]);
    delete_and_leak_check(&agent, &kubectl, "none", &[&none_seen]);
    delete_and_leak_check(&agent, &kubectl, "two", &[&two_seen]);
}
