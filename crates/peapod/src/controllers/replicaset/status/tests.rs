//! kube's `TestCalculateStatus` and `TestCalculateStatusConditions` (replica_set_utils_test.go),
//! then the write and requeue rules of `syncReplicaSet`.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use k8s_openapi::api::apps::v1::ReplicaSetSpec;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::*;
use crate::controllers::replicaset::pods::fixtures::{pod, set_ready};

fn label_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// kube's `newReplicaSet`: the selector given, the template labelled name=foo,type=production.
pub(crate) fn new_replica_set(replicas: i32, selector: &[(&str, &str)]) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some("foobar".into()),
            namespace: Some("default".into()),
            uid: Some("rs-uid".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(label_map(selector)),
                ..LabelSelector::default()
            },
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(label_map(&[("name", "foo"), ("type", "production")])),
                    ..ObjectMeta::default()
                }),
                spec: None,
            }),
            ..ReplicaSetSpec::default()
        }),
        status: None,
    }
}

/// kube's `newPod`: the selector's labels; Running pods are Ready (zero transition time).
fn new_pod(name: &str, rs: &ReplicaSet, phase: &str) -> Pod {
    let mut p = pod(name, "node", phase);
    p.metadata.labels = rs.spec.as_ref().unwrap().selector.match_labels.clone();
    if phase == "Running" {
        set_ready(&mut p, true, None);
    }
    p
}

fn now() -> Timestamp {
    "2026-06-15T12:00:00Z".parse().unwrap()
}

fn counts(status: &ReplicaSetStatus) -> [i32; 4] {
    [
        status.replicas,
        status.fully_labeled_replicas.unwrap_or(0),
        status.ready_replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
    ]
}

#[test]
fn counts_follow_kube_table() {
    let not_fully_labelled = new_replica_set(1, &[("name", "foo")]);
    let fully_labelled = new_replica_set(2, &[("name", "foo"), ("type", "production")]);
    let mut long_min_ready = new_replica_set(1, &[("name", "foo"), ("type", "production")]);
    long_min_ready.spec.as_mut().unwrap().min_ready_seconds = Some(3600);
    let (full, partial) = (&fully_labelled, &not_fully_labelled);
    let cases: Vec<(&str, &ReplicaSet, Vec<Pod>, [i32; 4])> = vec![
        (
            "1 fully labelled pod",
            full,
            vec![new_pod("pod1", full, "Running")],
            [1, 1, 1, 1],
        ),
        (
            "1 not fully labelled pod",
            partial,
            vec![new_pod("pod1", partial, "Running")],
            [1, 0, 1, 1],
        ),
        (
            "2 fully labelled pods",
            full,
            vec![
                new_pod("pod1", full, "Running"),
                new_pod("pod2", full, "Running"),
            ],
            [2, 2, 2, 2],
        ),
        (
            "2 not fully labelled pods",
            partial,
            vec![
                new_pod("pod1", partial, "Running"),
                new_pod("pod2", partial, "Running"),
            ],
            [2, 0, 2, 2],
        ),
        (
            "1 fully labelled pod, 1 not fully labelled pod",
            partial,
            vec![
                new_pod("pod1", partial, "Running"),
                new_pod("pod2", full, "Running"),
            ],
            [2, 1, 2, 2],
        ),
        (
            "1 non-ready pod",
            full,
            vec![new_pod("pod1", full, "Pending")],
            [1, 1, 0, 0],
        ),
        (
            "1 ready but non-available pod",
            &long_min_ready,
            vec![new_pod("pod1", &long_min_ready, "Running")],
            [1, 1, 1, 0],
        ),
    ];
    for (name, rs, pods, want) in cases {
        let active: Vec<&Pod> = pods.iter().collect();
        let status = calculate_status(rs, &active, None, now());
        assert_eq!(counts(&status), want, "{name}");
        assert_eq!(status.conditions, None, "{name}");
    }
}

fn failure(reason: Option<&str>, message: Option<&str>) -> ReplicaSetCondition {
    ReplicaSetCondition {
        type_: REPLICA_FAILURE.into(),
        status: "True".into(),
        reason: reason.map(str::to_owned),
        message: message.map(str::to_owned),
        last_transition_time: None,
    }
}

#[test]
fn the_replica_failure_condition_follows_kube_table() {
    let rs = new_replica_set(2, &[("name", "foo")]);
    let mut failing = new_replica_set(10, &[("name", "foo")]);
    failing.status = Some(ReplicaSetStatus {
        conditions: Some(vec![failure(None, None)]),
        ..ReplicaSetStatus::default()
    });
    let fake = Some("fake manageReplicasErr");
    type Case<'a> = (
        &'a str,
        &'a ReplicaSet,
        usize,
        Option<&'a str>,
        Option<ReplicaSetCondition>,
    );
    let cases: Vec<Case> = vec![
        (
            "error, no condition, diff < 0",
            &rs,
            1,
            fake,
            Some(failure(Some(FAILED_CREATE), fake)),
        ),
        (
            "error, no condition, diff > 0",
            &rs,
            3,
            fake,
            Some(failure(Some(FAILED_DELETE), fake)),
        ),
        ("no error, condition", &failing, 1, None, None),
        (
            "error, condition",
            &failing,
            1,
            fake,
            Some(failure(None, None)),
        ),
        ("no error, no condition", &rs, 1, None, None),
    ];
    for (name, rs, pod_count, error, want) in cases {
        let pods: Vec<Pod> = (0..pod_count)
            .map(|i| new_pod(&format!("pod{i}"), rs, "Running"))
            .collect();
        let active: Vec<&Pod> = pods.iter().collect();
        let mut status = calculate_status(rs, &active, error, now());
        for c in status.conditions.iter_mut().flatten() {
            c.last_transition_time = None;
        }
        assert_eq!(status.conditions, want.map(|c| vec![c]), "{name}");
    }
}

#[test]
fn a_new_failure_condition_is_stamped_now() {
    let rs = new_replica_set(2, &[("name", "foo")]);
    let status = calculate_status(&rs, &[], Some("quota exceeded"), now());
    let condition = condition(&status, REPLICA_FAILURE).unwrap();
    assert_eq!(condition.last_transition_time, Some(Time(now())));
}

#[test]
fn status_is_written_only_when_something_changed() {
    let mut rs = new_replica_set(1, &[("name", "foo")]);
    let p = new_pod("pod1", &rs, "Running");
    let status = calculate_status(&rs, &[&p], None, now());
    let written = status_update(&rs, status.clone()).expect("generation 1 not yet observed");
    assert_eq!(written.observed_generation, Some(1));
    rs.status = Some(written);
    assert_eq!(
        status_update(&rs, calculate_status(&rs, &[&p], None, now())),
        None
    );
    rs.metadata.generation = Some(2);
    let bumped = status_update(&rs, calculate_status(&rs, &[&p], None, now())).unwrap();
    assert_eq!(bumped.observed_generation, Some(2));
    rs.metadata.generation = Some(1);
    let gone = status_update(&rs, calculate_status(&rs, &[], None, now())).unwrap();
    assert_eq!(gone.replicas, 0);
}

#[test]
fn a_sync_comes_back_when_the_first_ready_pod_turns_available() {
    let mut rs = new_replica_set(2, &[("name", "foo")]);
    rs.spec.as_mut().unwrap().min_ready_seconds = Some(30);
    let mut early = new_pod("early", &rs, "Running");
    set_ready(
        &mut early,
        true,
        Some(now() - SignedDuration::from_secs(20)),
    );
    let mut late = new_pod("late", &rs, "Running");
    set_ready(&mut late, true, Some(now() - SignedDuration::from_secs(5)));
    let active = [&early, &late];
    rs.status = Some(calculate_status(&rs, &active, None, now()));
    assert_eq!(counts(rs.status.as_ref().unwrap()), [2, 0, 2, 0]);
    let requeue = availability_requeue(&rs, &active, false, now());
    assert_eq!(requeue, Some(Duration::from_secs(10)));
    assert_eq!(availability_requeue(&rs, &active, true, now()), None);

    let mut unknown_since = new_pod("unknown", &rs, "Running");
    set_ready(&mut unknown_since, true, None);
    assert_eq!(
        availability_requeue(&rs, &[&unknown_since], false, now()),
        Some(Duration::from_secs(30))
    );

    let later = now() + SignedDuration::from_secs(60);
    rs.status = Some(calculate_status(&rs, &active, None, later));
    assert_eq!(counts(rs.status.as_ref().unwrap()), [2, 0, 2, 2]);
    assert_eq!(availability_requeue(&rs, &active, false, later), None);
}
