//! kube's `TestAnnotationUtils`, `TestReplicasAnnotationsNeedUpdate` and
//! `TestGetNonNegativeInt32FromAnnotation` (deployment_util_test.go), and the revision helpers.

use super::*;
use crate::controllers::deployment::fixtures::{generate_deployment, generate_rs, labels, rs};
use crate::controllers::deployment::replicas::is_saturated;

fn with_annotations(mut set: ReplicaSet, pairs: &[(&str, &str)]) -> ReplicaSet {
    set.metadata.annotations = Some(labels(pairs));
    set
}

#[test]
fn revisions_parse_and_default_to_zero() {
    let none = rs("a", 1, None);
    assert_eq!(revision(&none.metadata), Ok(0));
    let three = with_annotations(rs("b", 1, None), &[(REVISION_ANNOTATION, "3")]);
    assert_eq!(revision(&three.metadata), Ok(3));
    let bad = with_annotations(rs("c", 1, None), &[(REVISION_ANNOTATION, "x")]);
    let err = revision(&bad.metadata).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid revision \"x\": invalid digit found in string"
    );
}

#[test]
fn max_and_last_revision_skip_unparsable_ones() {
    let sets: Vec<ReplicaSet> = ["2", "7", "x", "5"]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            with_annotations(rs(&format!("rs-{i}"), 1, None), &[(REVISION_ANNOTATION, r)])
        })
        .collect();
    let refs: Vec<&ReplicaSet> = sets.iter().collect();
    assert_eq!(max_revision(&refs), 7);
    assert_eq!(last_revision(&refs), 5);
    assert_eq!(max_revision(&[]), 0);
    assert_eq!(last_revision(&refs[..1]), 0);
}

#[test]
fn set_new_replica_set_annotations_keeps_a_bounded_history() {
    let mut d = generate_deployment("nginx");
    d.metadata.annotations = Some(labels(&[(REVISION_ANNOTATION, "1")]));
    let mut set = generate_rs(&d, "nginx-1");
    for i in 10..20 {
        let next = (i + 1).to_string();
        set_new_replica_set_annotations(&d, &mut set, &next, true, 5);
        if i >= 12 {
            let history = annotation(&set.metadata, REVISION_HISTORY_ANNOTATION);
            assert_eq!(
                history,
                Some(format!("{},{}", i - 1, i).as_str()),
                "after {next}"
            );
        }
        assert_eq!(
            annotation(&set.metadata, REVISION_ANNOTATION),
            Some(next.as_str())
        );
    }
    assert!(set_replicas_annotations(&mut set, 10, 11));
    assert_eq!(
        annotation(&set.metadata, DESIRED_REPLICAS_ANNOTATION),
        Some("10")
    );
    assert_eq!(
        annotation(&set.metadata, MAX_REPLICAS_ANNOTATION),
        Some("11")
    );
    assert!(!set_replicas_annotations(&mut set, 10, 11));

    set.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(DESIRED_REPLICAS_ANNOTATION.into(), "1".into());
    set.spec.as_mut().unwrap().replicas = Some(1);
    set.status = Some(k8s_openapi::api::apps::v1::ReplicaSetStatus {
        available_replicas: Some(1),
        ..Default::default()
    });
    assert!(is_saturated(&d, &set));
}

#[test]
fn an_older_revision_never_replaces_a_newer_one() {
    let d = generate_deployment("nginx");
    let mut set = with_annotations(generate_rs(&d, "nginx-1"), &[(REVISION_ANNOTATION, "4")]);
    assert!(!set_new_replica_set_annotations(
        &d, &mut set, "3", true, 100
    ));
    assert_eq!(annotation(&set.metadata, REVISION_ANNOTATION), Some("4"));
    assert_eq!(annotation(&set.metadata, REVISION_HISTORY_ANNOTATION), None);
    let mut broken = with_annotations(generate_rs(&d, "nginx-2"), &[(REVISION_ANNOTATION, "x")]);
    assert!(!set_new_replica_set_annotations(
        &d,
        &mut broken,
        "3",
        true,
        100
    ));
    assert!(!set_new_replica_set_annotations(
        &d, &mut set, "y", true, 100
    ));
}

#[test]
fn a_set_about_to_be_created_gets_the_deployment_annotations_and_replicas() {
    let mut d = generate_deployment("nginx");
    d.spec.as_mut().unwrap().replicas = Some(4);
    d.metadata.annotations = Some(labels(&[
        ("team", "web"),
        (REVISION_ANNOTATION, "9"),
        (LAST_APPLIED_CONFIG_ANNOTATION, "{}"),
        (DEPRECATED_ROLLBACK_TO, "2"),
    ]));
    let mut set = generate_rs(&d, "nginx-1");
    assert!(set_new_replica_set_annotations(
        &d,
        &mut set,
        "1",
        false,
        MAX_REV_HISTORY_LENGTH_IN_CHARS
    ));
    // The default strategy: 25% of 4 rounded up is one surge replica.
    let expected = labels(&[
        ("team", "web"),
        (REVISION_ANNOTATION, "1"),
        (DESIRED_REPLICAS_ANNOTATION, "4"),
        (MAX_REPLICAS_ANNOTATION, "5"),
    ]);
    assert_eq!(set.metadata.annotations, Some(expected));
    assert!(!copy_deployment_annotations_to_replica_set(&d, &mut set));
}

#[test]
fn replicas_annotations_need_update_table() {
    let cases = [
        ("test Annotations nil", None, true),
        ("test desiredReplicas update", Some([("8", "20")]), true),
        ("test maxReplicas update", Some([("10", "16")]), true),
        ("test needn't update", Some([("10", "20")]), false),
    ];
    for (name, values, expected) in cases {
        let mut set = rs("hello", 1, None);
        if let Some([(desired, max)]) = values {
            set = with_annotations(
                set,
                &[
                    (DESIRED_REPLICAS_ANNOTATION, desired),
                    (MAX_REPLICAS_ANNOTATION, max),
                ],
            );
        }
        assert_eq!(
            replicas_annotations_need_update(&set, 10, 20),
            expected,
            "{name}"
        );
    }
}

#[test]
fn replicas_annotations_are_non_negative_int32s() {
    let cases = [
        ("invalid empty", None, None),
        ("invalid", Some("invalid"), None),
        ("invalid negative", Some("-1"), None),
        ("invalid plus sign", Some("+1"), None),
        ("valid zero", Some("0"), Some(0)),
        ("valid", Some("13"), Some(13)),
        ("valid max", Some("2147483647"), Some(i32::MAX)),
        ("invalid max out of range", Some("2147483648"), None),
        ("invalid max out of range 2", Some("4294967296"), None),
    ];
    for (name, value, expected) in cases {
        let mut set = rs("hello", 1, None);
        if let Some(value) = value {
            set = with_annotations(
                set,
                &[
                    (DESIRED_REPLICAS_ANNOTATION, value),
                    (MAX_REPLICAS_ANNOTATION, value),
                ],
            );
        }
        assert_eq!(desired_replicas_annotation(&set), expected, "{name}");
        assert_eq!(max_replicas_annotation(&set), expected, "{name}");
    }
}
