//! kube's `TestResolveFenceposts`, `TestNewRSNewReplicas`, `TestMaxUnavailable`,
//! `TestMinAvailable`, `TestGetReplicaSetFraction`, `TestGetReplicaCountForReplicaSets`
//! (deployment_util_test.go), `TestScale` (sync_test.go) and the scale-downs of rolling_test.go.

use k8s_openapi::api::apps::v1::{DeploymentStatus, ReplicaSetStatus};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::{Int, String as Str};

use super::*;
use crate::controllers::deployment::fixtures::{deployment, plan, rs, rs_with_status};
use crate::controllers::deployment::revision::set_replicas_annotations;

fn percent(text: &str) -> IntOrString {
    Str(text.into())
}

#[test]
fn resolve_fenceposts_table() {
    let cases = [
        (Some("0%"), Some("0%"), 0, Ok((0, 1))),
        (Some("39%"), Some("39%"), 10, Ok((4, 3))),
        (
            Some("oops"),
            Some("39%"),
            10,
            Err(FencepostError::NotAPercentage),
        ),
        (
            Some("55%"),
            Some("urg"),
            10,
            Err(FencepostError::NotAPercentage),
        ),
        (None, Some("39%"), 10, Ok((0, 3))),
        (Some("39%"), None, 10, Ok((4, 0))),
        (None, None, 10, Ok((0, 1))),
    ];
    for (i, (surge, unavailable, desired, expected)) in cases.into_iter().enumerate() {
        let surge = surge.map(percent);
        let unavailable = unavailable.map(percent);
        let got = resolve_fenceposts(surge.as_ref(), unavailable.as_ref(), desired);
        assert_eq!(got, expected, "case {i}");
    }
    let err = resolve_fenceposts(Some(&percent("x%")), None, 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for IntOrString: invalid value \"x%\": strconv.Atoi: parsing \"x\": invalid syntax"
    );
}

fn strategy(d: &mut Deployment, type_: &str) {
    d.spec.as_mut().unwrap().strategy.as_mut().unwrap().type_ = Some(type_.into());
}

#[test]
fn new_rs_new_replicas_table() {
    let cases = [
        (
            "can not scale up - to newRSReplicas",
            "RollingUpdate",
            1,
            5,
            1,
            5,
        ),
        ("scale up - to depReplicas", "RollingUpdate", 6, 2, 10, 6),
        ("recreate - to depReplicas", "Recreate", 3, 1, 1, 3),
    ];
    let rs5 = rs("rs5", 5, None);
    for (name, type_, replicas, new_replicas, surge, expected) in cases {
        let mut d = deployment("nginx", replicas, Some(Int(surge)), Some(Int(1)), &[]);
        strategy(&mut d, type_);
        let new_rs = rs("new", new_replicas, None);
        assert_eq!(
            new_rs_new_replicas(&d, &[&rs5], &new_rs),
            Ok(expected),
            "{name}"
        );
    }
    let mut d = deployment("nginx", 1, None, None, &[]);
    strategy(&mut d, "BlueGreen");
    let err = new_rs_new_replicas(&d, &[], &rs5).unwrap_err();
    assert_eq!(err.to_string(), "deployment type BlueGreen isn't supported");
}

#[test]
fn initial_replicas_fill_the_surge_allowance() {
    let d = deployment("foo", 10, Some(Int(2)), Some(Int(0)), &[]);
    let old = rs("old", 10, None);
    assert_eq!(initial_replicas(&d, &[&old]), Ok(2));
    assert_eq!(initial_replicas(&d, &[]), Ok(10));
}

#[test]
fn max_unavailable_and_min_available_tables() {
    let cases = [
        ("less than replicas", 10, Int(5), 5, 5),
        ("equal replicas", 10, Int(10), 10, 0),
        ("greater than replicas", 5, Int(10), 5, 0),
        ("replicas is 0", 0, Int(10), 0, 0),
        ("less than replicas with percents", 10, percent("50%"), 5, 5),
        ("60 percent", 10, percent("60%"), 6, 4),
        ("equal replicas with percents", 10, percent("100%"), 10, 0),
        (
            "greater than replicas with percents",
            5,
            percent("100%"),
            5,
            0,
        ),
    ];
    for (name, replicas, unavailable, max, min) in cases {
        let d = deployment("foo", replicas, Some(Int(1)), Some(unavailable), &[]);
        assert_eq!(max_unavailable(&d), max, "maxUnavailable {name}");
        assert_eq!(min_available(&d), min, "minAvailable {name}");
    }
    let mut recreate = deployment("foo", 10, None, None, &[]);
    strategy(&mut recreate, "Recreate");
    assert_eq!(
        (
            max_unavailable(&recreate),
            min_available(&recreate),
            max_surge(&recreate)
        ),
        (0, 0, 0)
    );
}

#[test]
fn replica_set_fraction_table() {
    let cases = [
        (
            "empty deployment always scales to 0",
            0,
            0,
            0,
            10,
            None,
            -10,
        ),
        (
            "unsynced deployment, annotation missing",
            10,
            0,
            0,
            5,
            None,
            0,
        ),
        (
            "unsynced deployment, annotation 0",
            10,
            0,
            0,
            5,
            Some("0"),
            0,
        ),
        (
            "scale up by 1/5, annotation missing",
            120,
            100,
            0,
            50,
            None,
            10,
        ),
        (
            "scale up by 1/5, annotation 0",
            120,
            100,
            0,
            50,
            Some("0"),
            10,
        ),
        ("scale up by 1/5", 120, 0, 0, 50, Some("100"), 10),
        (
            "scale up with maxSurge by about 1/5",
            120,
            0,
            10,
            50,
            Some("110"),
            9,
        ),
        ("scale down by 1/6", 10, 0, 0, 6, Some("12"), -1),
        (
            "scale down with maxSurge by about 1/6",
            100,
            0,
            10,
            50,
            Some("130"),
            -8,
        ),
    ];
    for (name, replicas, status_replicas, surge, rs_replicas, max, expected) in cases {
        let mut d = deployment("nginx", replicas, Some(Int(surge)), Some(Int(1)), &[]);
        d.status = Some(DeploymentStatus {
            replicas: Some(status_replicas),
            ..DeploymentStatus::default()
        });
        let mut set = rs("nginx-1", rs_replicas, None);
        if let Some(max) = max {
            set.metadata.annotations =
                Some([(MAX_REPLICAS_ANNOTATION_KEY.to_string(), max.to_string())].into());
        }
        assert_eq!(replica_set_fraction(&set, &d), expected, "{name}");
    }
}

const MAX_REPLICAS_ANNOTATION_KEY: &str =
    crate::controllers::deployment::revision::MAX_REPLICAS_ANNOTATION;

fn counted(name: &str, spec: i32, replicas: i32, observed: i64) -> ReplicaSet {
    let mut set = rs(name, spec, None);
    set.status = Some(ReplicaSetStatus {
        replicas,
        observed_generation: (observed != 0).then_some(observed),
        ready_replicas: Some(replicas),
        available_replicas: Some(replicas),
        ..ReplicaSetStatus::default()
    });
    set
}

/// (name, sets, spec replicas, status replicas)
type CountCase<'a> = (&'static str, Vec<&'a ReplicaSet>, i32, i32);

#[test]
fn replica_counts_table() {
    let rs1 = counted("foo-rs", 1, 2, 1);
    let rs2 = counted("bar-rs", 2, 3, 0);
    let rs3 = counted("unsynced-rs", 3, 0, 0);
    let rs4 = counted("dropped-rs", 1, 1, 1);
    let cases: [CountCase; 6] = [
        ("scaling down rs1", vec![&rs1], 1, 2),
        ("scaling down rs1 and rs2", vec![&rs1, &rs2], 3, 5),
        ("scaling up rs3", vec![&rs3], 3, 0),
        (
            "scaling down rs1 and rs2 and scaling up rs3",
            vec![&rs1, &rs2, &rs3],
            6,
            5,
        ),
        ("rs4", vec![&rs4], 1, 1),
        (
            "rs4 with rs1, rs2 and rs3",
            vec![&rs1, &rs2, &rs3, &rs4],
            7,
            6,
        ),
    ];
    for (name, sets, count, actual) in cases {
        assert_eq!(replica_count(&sets), count, "{name}");
        assert_eq!(actual_replica_count(&sets), actual, "{name}");
        assert_eq!(ready_replica_count(&sets), actual, "{name}");
        assert_eq!(available_replica_count(&sets), actual, "{name}");
    }
}

#[test]
fn active_or_latest() {
    let new_rs = rs("new", 0, Some("2016-05-20T02:00:00Z"));
    let old = rs("old", 0, Some("2016-05-20T01:00:00Z"));
    let older = rs("older", 0, Some("2016-05-20T00:00:00Z"));
    let pick = |new: Option<&ReplicaSet>, old: &[&ReplicaSet]| {
        find_active_or_latest(new, old).map(|rs| name(&rs.metadata).to_owned())
    };
    assert_eq!(pick(None, &[]), None);
    assert_eq!(pick(Some(&new_rs), &[&older, &old]).as_deref(), Some("new"));
    assert_eq!(pick(None, &[&older, &old]).as_deref(), Some("old"));
    let active_old = rs("old", 2, Some("2016-05-20T01:00:00Z"));
    assert_eq!(
        pick(Some(&new_rs), &[&older, &active_old]).as_deref(),
        Some("old")
    );
    let active_new = rs("new", 1, Some("2016-05-20T02:00:00Z"));
    assert_eq!(pick(Some(&active_new), &[&older, &active_old]), None);
}

const NEW: &str = "2016-05-20T02:00:00Z";
const OLD: &str = "2016-05-20T01:00:00Z";
const OLDER: &str = "2016-05-20T00:00:00Z";

struct ScaleCase {
    name: &'static str,
    deployment: Deployment,
    old_deployment: Deployment,
    new_rs: Option<ReplicaSet>,
    old_rss: Vec<ReplicaSet>,
    expected: Vec<(&'static str, i32)>,
    desired_annotations: Vec<(&'static str, i32)>,
}

fn foo(replicas: i32, surge: Option<i32>, unavailable: Option<i32>) -> Deployment {
    deployment("foo", replicas, surge.map(Int), unavailable.map(Int), &[])
}

fn scale_cases() -> Vec<ScaleCase> {
    let case = |name, deployment, old_deployment, new_rs, old_rss, expected| ScaleCase {
        name,
        deployment,
        old_deployment,
        new_rs,
        old_rss,
        expected,
        desired_annotations: vec![],
    };
    let mut updated_template = foo(14, None, None);
    let template_meta = updated_template
        .spec
        .as_mut()
        .unwrap()
        .template
        .metadata
        .as_mut()
        .unwrap();
    template_meta
        .labels
        .get_or_insert_default()
        .insert("another".into(), "label".into());
    let mut broken = rs("foo-v2", 2, Some(NEW));
    broken.status = Some(ReplicaSetStatus::default());
    vec![
        case(
            "normal scaling event: 10 -> 12",
            foo(12, None, None),
            foo(10, None, None),
            Some(rs("foo-v1", 10, Some(NEW))),
            vec![],
            vec![("foo-v1", 12)],
        ),
        case(
            "normal scaling event: 10 -> 5",
            foo(5, None, None),
            foo(10, None, None),
            Some(rs("foo-v1", 10, Some(NEW))),
            vec![],
            vec![("foo-v1", 5)],
        ),
        case(
            "proportional scaling: 5 -> 10",
            foo(10, None, None),
            foo(5, None, None),
            Some(rs("foo-v2", 2, Some(NEW))),
            vec![rs("foo-v1", 3, Some(OLD))],
            vec![("foo-v2", 4), ("foo-v1", 6)],
        ),
        case(
            "proportional scaling: 5 -> 3",
            foo(3, None, None),
            foo(5, None, None),
            Some(rs("foo-v2", 2, Some(NEW))),
            vec![rs("foo-v1", 3, Some(OLD))],
            vec![("foo-v2", 1), ("foo-v1", 2)],
        ),
        case(
            "proportional scaling: 9 -> 4",
            foo(4, None, None),
            foo(9, None, None),
            Some(rs("foo-v2", 8, Some(NEW))),
            vec![rs("foo-v1", 1, Some(OLD))],
            vec![("foo-v2", 4), ("foo-v1", 0)],
        ),
        case(
            "proportional scaling: 7 -> 10",
            foo(10, None, None),
            foo(7, None, None),
            Some(rs("foo-v3", 2, Some(NEW))),
            vec![rs("foo-v2", 3, Some(OLD)), rs("foo-v1", 2, Some(OLDER))],
            vec![("foo-v3", 3), ("foo-v2", 4), ("foo-v1", 3)],
        ),
        case(
            "proportional scaling: 13 -> 8",
            foo(8, None, None),
            foo(13, None, None),
            Some(rs("foo-v3", 2, Some(NEW))),
            vec![rs("foo-v2", 8, Some(OLD)), rs("foo-v1", 3, Some(OLDER))],
            vec![("foo-v3", 1), ("foo-v2", 5), ("foo-v1", 2)],
        ),
        case(
            "leftover distribution: 3 -> 4",
            foo(4, None, None),
            foo(3, None, None),
            Some(rs("foo-v3", 1, Some(NEW))),
            vec![rs("foo-v2", 1, Some(OLD)), rs("foo-v1", 1, Some(OLDER))],
            vec![("foo-v3", 2), ("foo-v2", 1), ("foo-v1", 1)],
        ),
        case(
            "leftover distribution: 3 -> 2",
            foo(2, None, None),
            foo(3, None, None),
            Some(rs("foo-v3", 1, Some(NEW))),
            vec![rs("foo-v2", 1, Some(OLD)), rs("foo-v1", 1, Some(OLDER))],
            vec![("foo-v3", 1), ("foo-v2", 1), ("foo-v1", 0)],
        ),
        case(
            "proportional scaling (no new rs): 4 -> 5",
            foo(5, None, None),
            foo(4, None, None),
            None,
            vec![rs("foo-v2", 2, Some(OLD)), rs("foo-v1", 2, Some(OLDER))],
            vec![("foo-v2", 3), ("foo-v1", 2)],
        ),
        case(
            "proportional scaling: 6 -> 0",
            foo(0, None, None),
            foo(6, None, None),
            Some(rs("foo-v3", 3, Some(NEW))),
            vec![rs("foo-v2", 2, Some(OLD)), rs("foo-v1", 1, Some(OLDER))],
            vec![("foo-v3", 0), ("foo-v2", 0), ("foo-v1", 0)],
        ),
        case(
            "proportional scaling: 0 -> 6",
            foo(6, None, None),
            foo(6, None, None),
            Some(rs("foo-v3", 0, Some(NEW))),
            vec![rs("foo-v2", 0, Some(OLD)), rs("foo-v1", 0, Some(OLDER))],
            vec![("foo-v3", 6), ("foo-v2", 0), ("foo-v1", 0)],
        ),
        ScaleCase {
            desired_annotations: vec![("foo-v2", 3)],
            ..case(
                "failed rs update",
                foo(5, None, None),
                foo(5, None, None),
                Some(rs("foo-v3", 2, Some(NEW))),
                vec![rs("foo-v2", 1, Some(OLD)), rs("foo-v1", 1, Some(OLDER))],
                vec![("foo-v3", 2), ("foo-v2", 2), ("foo-v1", 1)],
            )
        },
        case(
            "deployment with surge pods",
            foo(20, Some(2), None),
            foo(10, Some(2), None),
            Some(rs("foo-v2", 6, Some(NEW))),
            vec![rs("foo-v1", 6, Some(OLD))],
            vec![("foo-v2", 11), ("foo-v1", 11)],
        ),
        case(
            "change both surge and size",
            foo(50, Some(6), None),
            foo(10, Some(3), None),
            Some(rs("foo-v2", 5, Some(NEW))),
            vec![rs("foo-v1", 8, Some(OLD))],
            vec![("foo-v2", 22), ("foo-v1", 34)],
        ),
        case(
            "change both size and template",
            updated_template,
            foo(10, None, None),
            None,
            vec![rs("foo-v2", 7, Some(NEW)), rs("foo-v1", 3, Some(OLD))],
            vec![("foo-v2", 10), ("foo-v1", 4)],
        ),
        case(
            "saturated but broken new replica set does not affect old pods",
            foo(2, Some(1), Some(1)),
            foo(2, Some(1), Some(1)),
            Some(broken),
            vec![rs("foo-v1", 1, Some(OLD))],
            vec![("foo-v2", 2), ("foo-v1", 1)],
        ),
    ]
}

#[test]
fn scale_table() {
    for mut case in scale_cases() {
        let annotate = |set: &mut ReplicaSet, case: &ScaleCase| {
            let set_name = name(&set.metadata).to_owned();
            let desired = case
                .desired_annotations
                .iter()
                .find(|(n, _)| *n == set_name)
                .map_or(deployment_replicas(&case.old_deployment), |(_, d)| *d);
            set_replicas_annotations(set, desired, desired + max_surge(&case.old_deployment));
        };
        let mut sets: Vec<ReplicaSet> = case.new_rs.iter().chain(&case.old_rss).cloned().collect();
        for set in &mut sets {
            annotate(set, &case);
        }
        let (new_rs, old) = match case.new_rs.take() {
            Some(_) => (Some(&sets[0]), sets[1..].iter().collect::<Vec<_>>()),
            None => (None, sets.iter().collect()),
        };
        let steps = scale_plan(&case.deployment, new_rs, &old);
        for (set_name, expected) in &case.expected {
            let before = sets
                .iter()
                .find(|s| name(&s.metadata) == *set_name)
                .map(rs_replicas);
            let after = steps
                .iter()
                .rev()
                .find(|s| s.name == *set_name)
                .map(|s| s.replicas)
                .or(before);
            assert_eq!(after, Some(*expected), "{}: {set_name}", case.name);
        }
    }
}

#[test]
fn scale_plans_name_only_the_sets_that_change() {
    let d = foo(5, None, None);
    let mut v3 = rs("foo-v3", 2, Some(NEW));
    let mut v2 = rs("foo-v2", 1, Some(OLD));
    let mut v1 = rs("foo-v1", 1, Some(OLDER));
    set_replicas_annotations(&mut v3, 5, 5);
    set_replicas_annotations(&mut v2, 3, 3);
    set_replicas_annotations(&mut v1, 5, 5);
    let steps = scale_plan(&d, Some(&v3), &[&v2, &v1]);
    let expected = ScaleStep {
        name: "foo-v2".into(),
        replicas: 2,
        operation: Some("up"),
    };
    assert_eq!(steps, [expected]);
    // Sizes already right, annotations stale: written at the same size.
    let steps = scale_plan(&foo(4, None, None), Some(&v3), &[&v2, &v1]);
    let names: Vec<_> = steps
        .iter()
        .map(|s| (s.name.as_str(), s.replicas, s.operation))
        .collect();
    // Unsorted when nothing is to add: the old sets, then the new one.
    assert_eq!(
        names,
        [
            ("foo-v2", 1, Some("")),
            ("foo-v1", 1, Some("")),
            ("foo-v3", 2, Some(""))
        ]
    );
    // A single active set is scaled with an event.
    let steps = scale_plan(&foo(7, None, None), Some(&v3), &[]);
    assert_eq!(steps[0].operation, None);
}

#[test]
fn a_saturated_new_set_scales_the_old_ones_to_zero() {
    let d = foo(3, Some(1), Some(1));
    let mut new_rs = rs_with_status("foo-v2", 3, 3, 3);
    set_replicas_annotations(&mut new_rs, 3, 4);
    let old = rs("foo-v1", 1, Some(OLD));
    let empty = rs("foo-v0", 0, Some(OLDER));
    let steps = scale_plan(&d, Some(&new_rs), &[&old, &empty]);
    assert_eq!(
        steps,
        [ScaleStep {
            name: "foo-v1".into(),
            replicas: 0,
            operation: None
        }]
    );
}

fn old_with_available(name: &str, replicas: i32, available: i32) -> ReplicaSet {
    let mut set = rs(name, replicas, None);
    set.status = Some(ReplicaSetStatus {
        replicas,
        available_replicas: Some(available),
        ..ReplicaSetStatus::default()
    });
    set
}

#[test]
fn reconcile_old_replica_sets_table() {
    // (replicas, maxUnavailable, old, new, old available, new available, expected steps)
    let cases = [
        (10, 0, 10, 0, 10, 0, plan(&[("foo-old", 9)])),
        (10, 2, 10, 0, 10, 0, plan(&[("foo-old", 8)])),
        (10, 2, 10, 0, 8, 0, plan(&[("foo-old", 8)])),
        (10, 2, 10, 0, 9, 0, plan(&[("foo-old", 9), ("foo-old", 8)])),
        (10, 2, 8, 2, 8, 0, plan(&[])),
    ];
    for (i, (replicas, unavailable, old_n, new_n, old_ready, new_ready, expected)) in
        cases.into_iter().enumerate()
    {
        let d = deployment(
            "foo",
            replicas,
            Some(Int(0)),
            Some(Int(unavailable)),
            &[("foo", "new")],
        );
        let new_rs = old_with_available("foo-new", new_n, new_ready);
        let old = old_with_available("foo-old", old_n, old_ready);
        assert_eq!(
            old_replicas_to_scale_down(&d, &[&old], &new_rs),
            expected,
            "case {i}"
        );
    }
}

#[test]
fn a_set_with_more_available_than_wanted_stops_the_cleanup() {
    let d = deployment("foo", 10, Some(Int(0)), Some(Int(2)), &[]);
    let unhealthy = rs_with_status("a", 5, 5, 4);
    let mut over = rs_with_status("b", 2, 3, 3);
    over.metadata.creation_timestamp = unhealthy.metadata.creation_timestamp.clone();
    let new_rs = old_with_available("new", 3, 3);
    assert_eq!(
        cleanup_unhealthy(&[&unhealthy, &over], 5),
        plan(&[("a", 4)])
    );
    // kube's error ends reconcileOldReplicaSets before the scale-down.
    assert_eq!(
        old_replicas_to_scale_down(&d, &[&unhealthy, &over], &new_rs),
        plan(&[("a", 4)])
    );
}

#[test]
fn cleanup_unhealthy_replicas_table() {
    // (old replicas, available, max cleanup, expected cleaned up)
    let cases = [(10, 8, 1, 1), (10, 8, 3, 2), (10, 8, 0, 0), (10, 10, 3, 0)];
    for (i, (replicas, available, max, cleaned)) in cases.into_iter().enumerate() {
        let old = old_with_available("foo-v2", replicas, available);
        let steps = cleanup_unhealthy(&[&old], max);
        let expected = if cleaned == 0 {
            vec![]
        } else {
            plan(&[("foo-v2", replicas - cleaned)])
        };
        assert_eq!(steps, expected, "case {i}");
    }
}

#[test]
fn scale_down_old_replica_sets_for_rolling_update_table() {
    // (replicas, maxUnavailable, available, old replicas, expected old replicas)
    let cases = [
        (10, 0, 10, 10, Some(9)),
        (10, 2, 10, 10, Some(8)),
        (10, 2, 8, 10, None),
        (10, 2, 10, 0, None),
        (10, 2, 1, 10, None),
    ];
    for (i, (replicas, unavailable, available, old_replicas, expected)) in
        cases.into_iter().enumerate()
    {
        let d = deployment(
            "foo",
            replicas,
            Some(Int(0)),
            Some(Int(unavailable)),
            &[("foo", "bar")],
        );
        let old = old_with_available("foo-v2", old_replicas, available);
        let steps = scale_down_old_for_rolling_update(&[&old], &[&old], &d);
        let expected: Vec<Scale> = expected
            .map(|r| ("foo-v2".to_string(), r))
            .into_iter()
            .collect();
        assert_eq!(steps, expected, "case {i}");
    }
}

#[test]
fn old_sets_scale_down_oldest_first() {
    let d = deployment("foo", 4, Some(Int(0)), Some(Int(0)), &[]);
    let mut older = old_with_available("older", 2, 2);
    older.metadata.creation_timestamp = rs("x", 0, Some(OLDER)).metadata.creation_timestamp;
    let mut newer = old_with_available("newer", 2, 2);
    newer.metadata.creation_timestamp = rs("x", 0, Some(OLD)).metadata.creation_timestamp;
    let new_rs = old_with_available("new", 3, 2);
    let all = [&newer, &older, &new_rs];
    let steps = scale_down_old_for_rolling_update(&all, &[&newer, &older], &d);
    assert_eq!(steps, plan(&[("older", 0), ("newer", 1)]));
}

#[test]
fn saturation_needs_the_annotation_the_size_and_availability() {
    let d = foo(3, None, None);
    let mut set = rs_with_status("foo-v1", 3, 3, 3);
    assert!(!is_saturated(&d, &set));
    set_replicas_annotations(&mut set, 3, 3);
    assert!(is_saturated(&d, &set));
    set.status.as_mut().unwrap().available_replicas = Some(2);
    assert!(!is_saturated(&d, &set));
    assert_eq!(filter_active(&[&set, &rs("empty", 0, None)]).len(), 1);
}
