//! kube's TestStatefulSetControl scenarios that apply: OrderedReady creation waits for each
//! pod, scale down from the highest ordinal, Parallel acts at once, failed pods are replaced,
//! and the RollingUpdate honours its partition and OnDelete.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::*;

fn set(replicas: i32, extra: Value) -> StatefulSet {
    let mut spec = json!({
        "replicas": replicas, "serviceName": "web", "podManagementPolicy": "OrderedReady",
        "selector": {"matchLabels": {"app": "web"}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": spec}))
        .unwrap()
}

fn pod(ordinal: i32, phase: &str, ready: bool, revision: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("web-{ordinal}"),
                     "labels": {"controller-revision-hash": revision}},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
    }))
    .unwrap()
}

fn ready(ordinal: i32) -> Pod {
    pod(ordinal, "Running", true, "web-1")
}

const REVISIONS: Revisions = Revisions {
    current: "web-1",
    update: "web-1",
};

fn steps(set: &StatefulSet, pods: &[Pod], revisions: &Revisions) -> Vec<Step> {
    let pods: Vec<&Pod> = pods.iter().collect();
    plan(set, &pods, revisions, Timestamp::now()).steps
}

#[test]
fn ordered_ready_creates_the_next_ordinal_only_after_the_previous_is_ready() {
    let set = set(3, json!({}));
    assert_eq!(
        steps(&set, &[], &REVISIONS),
        [Step::Create(0, Revision::Update)]
    );
    let pending = pod(0, "Pending", false, "web-1");
    assert!(steps(&set, &[pending], &REVISIONS).is_empty());
    let not_ready = pod(0, "Running", false, "web-1");
    assert!(steps(&set, &[not_ready], &REVISIONS).is_empty());
    assert_eq!(
        steps(&set, &[ready(0)], &REVISIONS),
        [Step::Create(1, Revision::Update)]
    );
}

#[test]
fn parallel_creates_every_missing_ordinal_at_once() {
    let set = set(3, json!({"podManagementPolicy": "Parallel"}));
    assert_eq!(
        steps(&set, &[pod(1, "Pending", false, "web-1")], &REVISIONS),
        [
            Step::Create(0, Revision::Update),
            Step::Create(2, Revision::Update)
        ]
    );
}

#[test]
fn ordinals_start_where_the_spec_says() {
    let set = set(2, json!({"ordinals": {"start": 3}}));
    assert_eq!(
        steps(&set, &[], &REVISIONS),
        [Step::Create(3, Revision::Update)]
    );
}

#[test]
fn scale_down_removes_the_highest_ordinal_first_one_at_a_time() {
    let set = set(1, json!({}));
    let pods = [ready(0), ready(1), ready(2)];
    assert_eq!(
        steps(&set, &pods, &REVISIONS),
        [Step::Delete("web-2".into())]
    );
    let parallel = self::set(1, json!({"podManagementPolicy": "Parallel"}));
    assert_eq!(
        steps(&parallel, &pods, &REVISIONS),
        [Step::Delete("web-2".into()), Step::Delete("web-1".into())]
    );
}

#[test]
fn a_failed_pod_is_deleted_to_be_recreated() {
    let set = set(2, json!({}));
    let pods = [ready(0), pod(1, "Failed", false, "web-1")];
    assert_eq!(
        steps(&set, &pods, &REVISIONS),
        [Step::Delete("web-1".into())]
    );
}

#[test]
fn rolling_update_goes_from_the_highest_ordinal_down_to_the_partition() {
    let revisions = Revisions {
        current: "web-1",
        update: "web-2",
    };
    let pods = [ready(0), ready(1), ready(2)];
    let set0 = set(3, json!({}));
    assert_eq!(
        steps(&set0, &pods, &revisions),
        [Step::Delete("web-2".into())]
    );
    let updated = [ready(0), ready(1), pod(2, "Running", true, "web-2")];
    assert_eq!(
        steps(&set0, &updated, &revisions),
        [Step::Delete("web-1".into())]
    );
    let partitioned = set(
        3,
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
    );
    assert!(steps(&partitioned, &updated, &revisions).is_empty());
    assert_eq!(
        steps(&partitioned, &[ready(0), ready(1)], &revisions),
        [Step::Create(2, Revision::Update)]
    );
    assert_eq!(
        steps(&partitioned, &[], &revisions),
        [Step::Create(0, Revision::Current)]
    );
}

#[test]
fn on_delete_never_deletes_for_an_update() {
    let revisions = Revisions {
        current: "web-1",
        update: "web-2",
    };
    let set = set(2, json!({"updateStrategy": {"type": "OnDelete"}}));
    assert!(steps(&set, &[ready(0), ready(1)], &revisions).is_empty());
}

#[test]
fn an_unready_updated_pod_holds_the_rollout() {
    let revisions = Revisions {
        current: "web-1",
        update: "web-2",
    };
    let set = set(2, json!({"podManagementPolicy": "Parallel"}));
    let pods = [ready(0), pod(1, "Running", false, "web-2")];
    assert!(steps(&set, &pods, &revisions).is_empty());
}

#[test]
fn pending_pods_get_their_missing_claims_made_again() {
    let pods = [ready(0), pod(1, "Pending", false, "web-1")];
    let pods: Vec<&Pod> = pods.iter().collect();
    let without = set(2, json!({}));
    assert!(plan(&without, &pods, &REVISIONS, Timestamp::now())
        .missing_claims
        .is_empty());
    let claims = json!({"volumeClaimTemplates": [{"metadata": {"name": "data"}}]});
    let with = set(2, claims);
    let decided = plan(&with, &pods, &REVISIONS, Timestamp::now());
    assert_eq!(decided.missing_claims, [1]);
    assert!(decided.steps.is_empty());
}

/// kube's TestStatefulSetAvailability / MaxUnavailable cases: as many outdated pods from the
/// top as the unavailable ones leave room for, never below the partition.
#[test]
fn max_unavailable_rolls_several_pods_at_once() {
    let revisions = Revisions {
        current: "web-1",
        update: "web-2",
    };
    let strategy = |max: Value, partition: i32| {
        json!({"updateStrategy": {"type": "RollingUpdate",
            "rollingUpdate": {"partition": partition, "maxUnavailable": max}}})
    };
    let pods: Vec<Pod> = (0..5).map(ready).collect();
    let two = set(5, strategy(json!(2), 0));
    assert_eq!(
        steps(&two, &pods, &revisions),
        [Step::Delete("web-4".into()), Step::Delete("web-3".into())]
    );
    // 40% of 5 is 2; an unavailable pod takes one of the two places.
    let percent = set(5, strategy(json!("40%"), 0));
    let mut one_down = pods.clone();
    one_down[4] = pod(4, "Running", true, "web-2");
    one_down[0] = pod(0, "Running", false, "web-1");
    let parallel = |mut s: StatefulSet| {
        s.spec.as_mut().unwrap().pod_management_policy = Some("Parallel".into());
        s
    };
    assert_eq!(
        steps(&parallel(percent), &one_down, &revisions),
        [Step::Delete("web-3".into())]
    );
    // A small percentage still lets one pod go; the partition holds the rest.
    let small = set(5, strategy(json!("10%"), 3));
    assert_eq!(
        steps(&small, &pods, &revisions),
        [Step::Delete("web-4".into())]
    );
    let above_partition = set(5, strategy(json!(5), 3));
    assert_eq!(
        steps(&above_partition, &pods, &revisions),
        [Step::Delete("web-4".into()), Step::Delete("web-3".into())]
    );
}
