//! kube's `TestClaimPods` (controller_ref_manager_test.go) with a ReplicaSet claiming pods,
//! the patches, and the recheck.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::json;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;

use super::*;
use crate::controllers::replicaset::pods::fixtures::pod;

fn replica_set() -> ReplicaSet {
    let mut rs = ReplicaSet::default();
    rs.metadata.name = Some("web".into());
    rs.metadata.namespace = Some("default".into());
    rs.metadata.uid = Some("123".into());
    rs
}

fn selector() -> Selector {
    peapod_api::label_selector::as_selector(&LabelSelector {
        match_labels: Some([("foo".to_string(), "bar".to_string())].into()),
        ..LabelSelector::default()
    })
    .unwrap()
}

/// kube's `newPod(podName, label, owner)`.
fn new_pod(name: &str, label: &str, owner: Option<&ReplicaSet>) -> Pod {
    let mut p = pod(name, "", "Running");
    p.metadata.labels = Some([("foo".to_string(), label.to_string())].into());
    if let Some(owner) = owner {
        p.metadata.owner_references = Some(vec![controller_ref(owner)]);
    }
    p
}

fn deleted() -> Option<Time> {
    Some(Time("2026-06-15T12:00:00Z".parse::<Timestamp>().unwrap()))
}

fn is_adopt(claim: &Claim) -> bool {
    matches!(claim, Claim::Adopt(_))
}

#[test]
fn claims_follow_kube_table() {
    let rs = replica_set();
    let mut deleting_rs = replica_set();
    deleting_rs.metadata.deletion_timestamp = deleted();
    let mut other = replica_set();
    other.metadata.uid = Some("other".into());
    let s = selector();

    let orphan = new_pod("pod1", "bar", None);
    let not_matching = new_pod("pod2", "baz", None);
    assert!(
        is_adopt(&claim(&rs, &s, &orphan)),
        "claim pods with correct label"
    );
    assert_eq!(claim(&rs, &s, &not_matching), Claim::Ignore, "wrong label");

    assert_eq!(
        claim(&deleting_rs, &s, &orphan),
        Claim::Ignore,
        "deleted controller adopts nothing"
    );
    let owned = new_pod("pod1", "bar", Some(&rs));
    assert_eq!(
        claim(&deleting_rs, &s, &owned),
        Claim::Owned,
        "deleted controller keeps its pods"
    );

    let mut deleting_orphan = new_pod("pod1", "bar", None);
    deleting_orphan.metadata.deletion_timestamp = deleted();
    assert_eq!(
        claim(&rs, &s, &deleting_orphan),
        Claim::Ignore,
        "pod being deleted"
    );
    let mut deleting_owned = new_pod("pod1", "bar", Some(&rs));
    deleting_owned.metadata.deletion_timestamp = deleted();
    assert_eq!(
        claim(&rs, &s, &deleting_owned),
        Claim::Owned,
        "owned pod being deleted"
    );

    let theirs = new_pod("pod1", "bar", Some(&other));
    assert_eq!(
        claim(&rs, &s, &theirs),
        Claim::Ignore,
        "owned by another controller"
    );

    let stale = new_pod("pod2", "baz", Some(&rs));
    assert_eq!(
        claim(&rs, &s, &stale),
        Claim::Release(release_patch("123", "uid-pod2")),
        "release owned pods that no longer match"
    );
    assert_eq!(
        claim(&deleting_rs, &s, &stale),
        Claim::Ignore,
        "no release while deleted"
    );

    let mut elsewhere = new_pod("pod1", "bar", None);
    elsewhere.metadata.namespace = Some("other".into());
    assert_eq!(claim(&rs, &s, &elsewhere), Claim::Ignore, "other namespace");
}

#[test]
fn a_non_controller_owner_leaves_the_pod_an_orphan() {
    let rs = replica_set();
    let mut p = new_pod("pod1", "bar", None);
    p.metadata.owner_references = Some(vec![OwnerReference {
        controller: None,
        ..controller_ref(&replica_set())
    }]);
    assert!(is_adopt(&claim(&rs, &selector(), &p)));
}

#[test]
fn patches_are_kube_bytes() {
    let rs = replica_set();
    assert_eq!(
        adopt_patch(&rs, "pod-uid"),
        json!({"metadata": {
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "123",
                "controller": true, "blockOwnerDeletion": true
            }],
            "uid": "pod-uid"
        }})
    );
    assert_eq!(
        release_patch("123", "pod-uid"),
        json!({"metadata": {"uid": "pod-uid", "ownerReferences": [{"$patch": "delete", "uid": "123"}]}})
    );
    assert!(adoption_failure_ignored(404) && !adoption_failure_ignored(422));
    assert!(release_failure_ignored(404) && release_failure_ignored(422));
    assert!(!release_failure_ignored(409));
}

#[test]
fn adoption_is_rechecked_against_a_fresh_read() {
    let original = replica_set();
    assert_eq!(can_adopt(&original, &replica_set()), Ok(()));

    let mut replaced = replica_set();
    replaced.metadata.uid = Some("456".into());
    let gone = can_adopt(&original, &replaced).unwrap_err();
    assert_eq!(
        gone.to_string(),
        "can't recheck DeletionTimestamp: original ReplicaSet default/web is gone: got uid 456, wanted 123"
    );

    let mut deleting = replica_set();
    deleting.metadata.deletion_timestamp = deleted();
    let refused = can_adopt(&original, &deleting).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "default/web has just been deleted at 2026-06-15 12:00:00 +0000 UTC"
    );
    let p = new_pod("pod1", "bar", None);
    assert_eq!(
        cannot_adopt(&p, refused).to_string(),
        "can't adopt Pod default/pod1 (uid-pod1): default/web has just been deleted at \
         2026-06-15 12:00:00 +0000 UTC"
    );
}

#[test]
fn the_controller_is_the_reference_marked_controller() {
    let mut p = new_pod("web-1", "bar", None);
    assert!(controller_of(&p.metadata).is_none());
    p.metadata.owner_references = Some(vec![
        OwnerReference {
            name: "other".into(),
            ..OwnerReference::default()
        },
        OwnerReference {
            name: "web".into(),
            controller: Some(true),
            ..controller_ref(&replica_set())
        },
    ]);
    assert_eq!(controller_of(&p.metadata).unwrap().name, "web");
    assert!(controlled_by_kind::<ReplicaSet>(&p.metadata));
    assert!(!controlled_by_kind::<Pod>(&p.metadata));
}
