//! The revisions' data, names and cleanup, with kube's TestDaemonSetHistoryCleanup-style
//! cases and the patch bytes kubectl's `rollout undo` compares.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use serde_json::json;

use super::*;

fn daemon_set(image: &str) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid",
                     "annotations": {"deprecated.daemonset.template.generation": "1"}},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}},
    }))
    .unwrap()
}

#[test]
fn the_data_is_the_patch_go_would_write() {
    let data = revision_data(&daemon_set("busybox"));
    assert_eq!(
        data.to_string(),
        r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"agent"}},"spec":{"containers":[{"image":"busybox","name":"app","resources":{}}]}}}}"#
    );
}

#[test]
fn a_snapshot_is_named_after_the_template_and_owned_by_the_daemon_set() {
    let ds = daemon_set("busybox");
    let revision = snapshot(&ds, 3);
    let hash = template_hash(&ds);
    assert_eq!(revision.metadata.name, Some(format!("agent-{hash}")));
    assert_eq!(revision.revision, 3);
    assert_eq!(hash_of(&revision), hash);
    assert_eq!(revision.metadata.labels.as_ref().unwrap()["app"], "agent");
    assert_eq!(revision.metadata.annotations, ds.metadata.annotations);
    let owner = &revision.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("DaemonSet", "ds-uid", Some(true))
    );
    assert!(matches(&ds, &revision));
    assert!(!matches(&daemon_set("nginx"), &revision));
    let mut collided = ds.clone();
    collided.status = Some(
        serde_json::from_value(
            json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0,
        "numberMisscheduled": 0, "numberReady": 0, "collisionCount": 1}),
        )
        .unwrap(),
    );
    assert_ne!(template_hash(&collided), hash);
}

fn revision(name: &str, number: i64, hash: &str) -> ControllerRevision {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"controller-revision-hash": hash}},
        "revision": number,
    }))
    .unwrap()
}

#[test]
fn the_newest_revision_is_kept_and_old_ones_go_oldest_first_unless_live() {
    let old = [
        revision("r3", 3, "h3"),
        revision("r1", 1, "h1"),
        revision("r2", 2, "h2"),
        revision("r4", 4, "h4"),
    ];
    assert_eq!(max_revision(&old), 4);
    assert_eq!(max_revision(&[]), 0);
    let none = BTreeSet::new();
    assert_eq!(history_to_delete(&old, 2, &none), ["r1", "r2"]);
    assert_eq!(history_to_delete(&old, 10, &none), Vec::<String>::new());
    assert_eq!(history_to_delete(&old, 0, &none), ["r1", "r2", "r3", "r4"]);
    let live = BTreeSet::from(["h1".to_owned()]);
    assert_eq!(history_to_delete(&old, 2, &live), ["r2", "r3"]);
    let current = [
        revision("a", 2, "ha"),
        revision("b", 5, "hb"),
        revision("c", 5, "hc"),
    ];
    assert_eq!(
        newest(&current).unwrap().metadata.name.as_deref(),
        Some("c")
    );
    assert!(newest(&[]).is_none());
}
