//! kube's `TestEqualIgnoreHash`, `TestFindNewReplicaSet` and `TestFindOldReplicaSets`
//! (deployment_util_test.go), and the ReplicaSet getNewReplicaSet creates.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, Time};

use super::*;
use crate::controllers::deployment::fixtures::{generate_deployment, generate_rs, labels, ts};
use crate::controllers::deployment::revision::{
    DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, REVISION_ANNOTATION,
};

fn pod_template(
    name: &str,
    node: &str,
    annotations: &[(&str, &str)],
    label_pairs: &[(&str, &str)],
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            name: Some(name.into()),
            annotations: Some(labels(annotations)),
            labels: Some(labels(label_pairs)),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            ..PodSpec::default()
        }),
    }
}

#[test]
fn equal_ignore_hash_table() {
    let h = DEFAULT_LABEL_KEY;
    let cases = [
        ("Same spec, same labels", pod_template("foo", "foo-node", &[], &[(h, "value-1"), ("something", "else")]), pod_template("foo", "foo-node", &[], &[(h, "value-1"), ("something", "else")]), true),
        ("Same spec, only pod-template-hash label value is different", pod_template("foo", "foo-node", &[], &[(h, "value-1"), ("something", "else")]), pod_template("foo", "foo-node", &[], &[(h, "value-2"), ("something", "else")]), true),
        ("Same spec, the former doesn't have pod-template-hash label", pod_template("foo", "foo-node", &[], &[("something", "else")]), pod_template("foo", "foo-node", &[], &[(h, "value-2"), ("something", "else")]), true),
        ("Same spec, the label is different, the former doesn't have pod-template-hash label, same number of labels", pod_template("foo", "foo-node", &[], &[("something", "else")]), pod_template("foo", "foo-node", &[], &[(h, "value-2")]), false),
        ("Same spec, the label is different, the latter doesn't have pod-template-hash label, same number of labels", pod_template("foo", "foo-node", &[], &[(h, "value-1")]), pod_template("foo", "foo-node", &[], &[("something", "else")]), false),
        ("Same spec, the label is different, and the pod-template-hash label value is the same", pod_template("foo", "foo-node", &[], &[(h, "value-1")]), pod_template("foo", "foo-node", &[], &[(h, "value-1"), ("something", "else")]), false),
        ("Different spec, same labels", pod_template("foo", "foo-node", &[("former", "value")], &[(h, "value-1"), ("something", "else")]), pod_template("foo", "foo-node", &[("latter", "value")], &[(h, "value-1"), ("something", "else")]), false),
        ("Different spec, different pod-template-hash label value", pod_template("foo-1", "foo-node", &[], &[(h, "value-1"), ("something", "else")]), pod_template("foo-2", "foo-node", &[], &[(h, "value-2"), ("something", "else")]), false),
        ("Different spec, the former doesn't have pod-template-hash label", pod_template("foo-1", "foo-node-1", &[], &[("something", "else")]), pod_template("foo-2", "foo-node-2", &[], &[(h, "value-2"), ("something", "else")]), false),
        ("Different spec, different labels", pod_template("foo", "foo-node-1", &[], &[("something", "else")]), pod_template("foo", "foo-node-2", &[], &[("nothing", "else")]), false),
    ];
    for (name, former, latter, expected) in cases {
        assert_eq!(equal_ignore_hash(&former, &latter), expected, "{name}");
        assert_eq!(
            equal_ignore_hash(&latter, &former),
            expected,
            "{name} (reverse order)"
        );
    }
}

#[test]
fn unset_and_empty_parts_are_equal() {
    let only_hash = pod_template("", "", &[], &[(DEFAULT_LABEL_KEY, "abc")]);
    let mut bare = only_hash.clone();
    bare.metadata.as_mut().unwrap().labels = None;
    bare.metadata.as_mut().unwrap().annotations = None;
    assert!(equal_ignore_hash(&only_hash, &bare));
}

fn with_hash_label(mut set: ReplicaSet, hash: &str) -> ReplicaSet {
    set.metadata
        .labels
        .get_or_insert_default()
        .insert(DEFAULT_LABEL_KEY.into(), hash.into());
    set
}

fn created(mut set: ReplicaSet, at: &str) -> ReplicaSet {
    set.metadata.creation_timestamp = Some(Time(ts(at)));
    set
}

fn names(sets: &[&ReplicaSet]) -> Vec<String> {
    sets.iter()
        .map(|rs| name(&rs.metadata).to_owned())
        .collect()
}

const NOW: &str = "2026-01-01T00:01:00Z";
const LATER: &str = "2026-01-01T00:02:00Z";
const BEFORE: &str = "2026-01-01T00:00:00Z";

#[test]
fn find_new_replica_set_table() {
    let d = generate_deployment("nginx");
    let new_rs = created(with_hash_label(generate_rs(&d, "new"), "hash"), LATER);
    let new_dup = created(
        with_hash_label(generate_rs(&d, "new-dup"), "different-hash"),
        NOW,
    );
    let mut old_d = generate_deployment("nginx");
    old_d
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .name = "nginx-old-1".into();
    let old_rs = generate_rs(&old_d, "old");
    let found = |sets: &[&ReplicaSet]| {
        find_new_replica_set(&d, sets).map(|rs| name(&rs.metadata).to_owned())
    };
    assert_eq!(
        found(&[&new_rs, &old_rs]).as_deref(),
        Some("new"),
        "same template, other hash"
    );
    assert_eq!(
        found(&[&new_rs, &old_rs, &new_dup]).as_deref(),
        Some("new-dup"),
        "the oldest of two"
    );
    assert_eq!(found(&[&old_rs]), None, "none");
}

/// (name, sets, all old, old with pods)
type OldCase<'a> = (
    &'static str,
    Vec<&'a ReplicaSet>,
    Vec<&'static str>,
    Vec<&'static str>,
);

#[test]
fn find_old_replica_sets_table() {
    let d = generate_deployment("nginx");
    let mut new_rs = created(with_hash_label(generate_rs(&d, "new"), "hash"), LATER);
    new_rs.spec.as_mut().unwrap().replicas = Some(1);
    let new_dup = created(
        with_hash_label(generate_rs(&d, "new-dup"), "different-hash"),
        NOW,
    );
    let mut old_d = generate_deployment("nginx");
    old_d
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .name = "nginx-old-1".into();
    let old_rs = created(generate_rs(&old_d, "old"), BEFORE);
    let cases: [OldCase; 4] = [
        (
            "Get old ReplicaSets",
            vec![&new_rs, &old_rs],
            vec!["old"],
            vec![],
        ),
        (
            "Get old ReplicaSets with no new ReplicaSet",
            vec![&old_rs],
            vec!["old"],
            vec![],
        ),
        (
            "only the oldest new ReplicaSet is new",
            vec![&old_rs, &new_rs, &new_dup],
            vec!["old", "new"],
            vec!["new"],
        ),
        ("Get empty old ReplicaSets", vec![&new_rs], vec![], vec![]),
    ];
    for (case, sets, all, with_pods) in cases {
        let new = find_new_replica_set(&d, &sets);
        let (required, every) = find_old_replica_sets(&d, &sets, new);
        assert_eq!(names(&every), all, "{case}");
        assert_eq!(names(&required), with_pods, "{case}");
    }
}

#[test]
fn the_created_replica_set_is_named_labelled_and_owned() {
    let mut d = generate_deployment("web");
    let spec = d.spec.as_mut().unwrap();
    spec.min_ready_seconds = Some(5);
    spec.selector.match_expressions = Some(vec![LabelSelectorRequirement {
        key: "tier".into(),
        operator: "Exists".into(),
        values: None,
    }]);
    let rs = new_replica_set_with_annotations(&d, "5d9c7f", "3", 1);
    assert_eq!(rs.metadata.name.as_deref(), Some("web-5d9c7f"));
    assert_eq!(rs.metadata.namespace.as_deref(), Some("default"));
    let expected_labels = labels(&[("name", "web"), (DEFAULT_LABEL_KEY, "5d9c7f")]);
    assert_eq!(rs.metadata.labels.as_ref(), Some(&expected_labels));
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str()
        ),
        ("apps/v1", "Deployment", "web", "uid-web")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!((spec.replicas, spec.min_ready_seconds), (Some(1), Some(5)));
    assert_eq!(spec.selector.match_labels.as_ref(), Some(&expected_labels));
    assert_eq!(
        spec.selector.match_expressions.as_ref().unwrap()[0].key,
        "tier"
    );
    let template_labels = spec
        .template
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref();
    assert_eq!(template_labels, Some(&expected_labels));
    assert!(equal_ignore_hash(
        spec.template.as_ref().unwrap(),
        &d.spec.as_ref().unwrap().template
    ));
    let annotations = rs.metadata.annotations.as_ref().unwrap();
    assert_eq!(
        annotations.get(REVISION_ANNOTATION).map(String::as_str),
        Some("3")
    );
    assert_eq!(
        annotations
            .get(DESIRED_REPLICAS_ANNOTATION)
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        annotations.get(MAX_REPLICAS_ANNOTATION).map(String::as_str),
        Some("2")
    );
    // The Deployment's own selector is untouched.
    assert_eq!(
        d.spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()
            .len(),
        1
    );
}
