//! kube's `TestSortingActivePodsWithRanks` (controller_utils_test.go) and `TestGetPodsToDelete`
//! (replica_set_test.go).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::controllers::replicaset::pods::fixtures::{pod, set_ready};

fn hours(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

/// kube's `pod(podName, nodeName, phase, ready, restarts, readySince, created, annotations)`.
#[allow(clippy::too_many_arguments)]
fn ranked_pod(
    name: &str,
    node: &str,
    phase: &str,
    ready: bool,
    restarts: i32,
    ready_since: Option<Timestamp>,
    created: Option<Timestamp>,
    cost: Option<&str>,
) -> Pod {
    let mut p = pod(name, node, phase);
    p.metadata.uid = None;
    p.metadata.creation_timestamp = created.map(Time);
    if let Some(cost) = cost {
        p.metadata.annotations = Some([(DELETION_COST.to_string(), cost.to_string())].into());
    }
    if ready {
        set_ready(&mut p, true, ready_since);
        p.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            restart_count: restarts,
            ..ContainerStatus::default()
        }]);
    }
    p
}

struct Pods {
    now: Timestamp,
    unscheduled: Pod,
    scheduled_pending: Pod,
    unknown_phase: Pod,
    running_not_ready: Pod,
    ready_no_transition_time: Pod,
    ready_now: Pod,
    ready_then: Pod,
    ready_now_high_restarts: Pod,
    ready_now_created_then: Pod,
    low_deletion_cost: Pod,
    high_deletion_cost: Pod,
    unscheduled_5_hours: Pod,
    unscheduled_8_hours: Pod,
    ready_2_hours: Pod,
    ready_5_hours: Pod,
    ready_8_hours: Pod,
}

fn table() -> Pods {
    let now: Timestamp = "2026-06-15T12:00:00Z".parse().unwrap();
    let month = Some(now - hours(24 * 30));
    let (h2, h5, h8) = (
        Some(now - hours(2)),
        Some(now - hours(5)),
        Some(now - hours(8)),
    );
    let n = Some(now);
    Pods {
        now,
        unscheduled: ranked_pod("unscheduled", "", "Pending", false, 0, None, None, None),
        scheduled_pending: ranked_pod("pending", "node", "Pending", false, 0, None, None, None),
        unknown_phase: ranked_pod(
            "unknown-phase",
            "node",
            "Unknown",
            false,
            0,
            None,
            None,
            None,
        ),
        running_not_ready: ranked_pod("not-ready", "node", "Running", false, 0, None, None, None),
        ready_no_transition_time: ranked_pod(
            "ready-no-ltt",
            "node",
            "Running",
            true,
            0,
            None,
            None,
            None,
        ),
        ready_now: ranked_pod("ready-now", "node", "Running", true, 0, n, n, None),
        ready_then: ranked_pod("ready-then", "node", "Running", true, 0, month, month, None),
        ready_now_high_restarts: ranked_pod(
            "ready-high-restarts",
            "node",
            "Running",
            true,
            9001,
            n,
            n,
            None,
        ),
        ready_now_created_then: ranked_pod(
            "ready-now-created-then",
            "node",
            "Running",
            true,
            0,
            n,
            month,
            None,
        ),
        low_deletion_cost: ranked_pod("low-cost", "node", "Running", true, 0, n, month, Some("10")),
        high_deletion_cost: ranked_pod(
            "high-cost",
            "node",
            "Running",
            true,
            0,
            n,
            month,
            Some("100"),
        ),
        unscheduled_5_hours: ranked_pod(
            "unscheduled-5-hours",
            "",
            "Pending",
            false,
            0,
            h5,
            h5,
            None,
        ),
        unscheduled_8_hours: ranked_pod(
            "unscheduled-8-hours",
            "",
            "Pending",
            false,
            0,
            h8,
            h8,
            None,
        ),
        ready_2_hours: ranked_pod("ready-2-hours", "", "Running", true, 0, h2, month, None),
        ready_5_hours: ranked_pod("ready-5-hours", "", "Running", true, 0, h5, month, None),
        ready_8_hours: ranked_pod("ready-8-hours", "", "Running", true, 0, h8, month, None),
    }
}

fn ranked(pod: &Pod, rank: usize) -> RankedPod<'_> {
    RankedPod { pod, rank }
}

#[test]
fn equal_pods_are_not_less_than_each_other() {
    let t = table();
    let pairs = [
        (&t.unscheduled, &t.unscheduled),
        (&t.scheduled_pending, &t.scheduled_pending),
        (&t.unknown_phase, &t.unknown_phase),
        (&t.running_not_ready, &t.running_not_ready),
        (&t.ready_now_created_then, &t.ready_now_created_then),
        (&t.ready_now, &t.ready_now),
        (&t.ready_then, &t.ready_then),
        (&t.ready_now_high_restarts, &t.ready_now_high_restarts),
        (&t.unscheduled_5_hours, &t.unscheduled_8_hours),
        (&t.ready_5_hours, &t.ready_8_hours),
    ];
    for (a, b) in pairs {
        let (a, b) = (ranked(a, 1), ranked(b, 1));
        let name = a.pod.metadata.name.as_deref().unwrap();
        assert!(!deleted_before(&a, &b, t.now), "{name} before its equal");
        assert!(!deleted_before(&b, &a, t.now), "{name} after its equal");
    }
}

#[test]
fn lesser_pods_are_deleted_first() {
    let t = table();
    let cases = [
        ((&t.unscheduled, 1), (&t.scheduled_pending, 2)),
        ((&t.unscheduled, 2), (&t.scheduled_pending, 1)),
        ((&t.scheduled_pending, 1), (&t.unknown_phase, 2)),
        ((&t.unknown_phase, 1), (&t.running_not_ready, 2)),
        ((&t.running_not_ready, 1), (&t.ready_no_transition_time, 1)),
        ((&t.ready_no_transition_time, 1), (&t.ready_now, 1)),
        ((&t.ready_now, 2), (&t.ready_no_transition_time, 1)),
        ((&t.ready_now, 1), (&t.ready_then, 1)),
        ((&t.ready_now, 2), (&t.ready_then, 1)),
        ((&t.ready_now_high_restarts, 1), (&t.ready_now, 1)),
        ((&t.ready_now, 2), (&t.ready_now_high_restarts, 1)),
        ((&t.ready_now, 1), (&t.ready_now_created_then, 1)),
        ((&t.ready_now_created_then, 2), (&t.ready_now, 1)),
        ((&t.low_deletion_cost, 2), (&t.high_deletion_cost, 1)),
        ((&t.ready_2_hours, 1), (&t.ready_5_hours, 1)),
    ];
    for ((lesser, lesser_rank), (greater, greater_rank)) in cases {
        let (a, b) = (ranked(lesser, lesser_rank), ranked(greater, greater_rank));
        let names = (&lesser.metadata.name, &greater.metadata.name);
        assert!(
            deleted_before(&a, &b, t.now),
            "{names:?} (ranks {lesser_rank}, {greater_rank})"
        );
        assert!(!deleted_before(&b, &a, t.now), "{names:?} reversed");
    }
}

#[test]
fn deletion_cost_annotations_parse_as_kube_does() {
    let cost = |value: &str| {
        let p = ranked_pod("p", "node", "Running", false, 0, None, None, Some(value));
        deletion_cost(&p)
    };
    assert_eq!(cost("100"), 100);
    assert_eq!(cost("-5"), -5);
    assert_eq!(cost("0"), 0);
    assert_eq!(cost("+10"), 0);
    assert_eq!(cost("010"), 0);
    assert_eq!(cost("abc"), 0);
    assert_eq!(cost("99999999999"), 0);
    assert_eq!(deletion_cost(&pod("p", "node", "Running")), 0);
}

#[test]
fn sidecar_restarts_break_ties_between_container_restarts() {
    let with_sidecar = |name: &str, restarts: i32| {
        let mut p = pod(name, "node", "Running");
        p.spec = Some(PodSpec {
            node_name: Some("node".into()),
            init_containers: Some(vec![Container {
                name: "proxy".into(),
                restart_policy: Some("Always".into()),
                ..Container::default()
            }]),
            ..PodSpec::default()
        });
        p.status.as_mut().unwrap().init_container_statuses = Some(vec![ContainerStatus {
            name: "proxy".into(),
            restart_count: restarts,
            ..ContainerStatus::default()
        }]);
        p
    };
    let (flaky, steady) = (with_sidecar("flaky", 3), with_sidecar("steady", 0));
    let now = Timestamp::UNIX_EPOCH;
    assert!(deleted_before(&ranked(&flaky, 0), &ranked(&steady, 0), now));
    assert!(!deleted_before(
        &ranked(&steady, 0),
        &ranked(&flaky, 0),
        now
    ));
}

/// The pods of `TestGetPodsToDelete`.
struct Fleet {
    unscheduled_pending: Pod,
    scheduled_pending: Pod,
    not_ready: Pod,
    ready_on_node_1: Pod,
    ready_on_node_2: Pod,
}

fn fleet() -> Fleet {
    let ready = |name: &str, node: &str| {
        let mut p = pod(name, node, "Running");
        set_ready(&mut p, true, None);
        p
    };
    let mut not_ready = pod("scheduled-running-not-ready", "fake-node", "Running");
    set_ready(&mut not_ready, false, None);
    Fleet {
        unscheduled_pending: pod("unscheduled-pending", "", "Pending"),
        scheduled_pending: pod("scheduled-pending", "fake-node", "Pending"),
        not_ready,
        ready_on_node_1: ready("ready-on-node-1", "fake-node-1"),
        ready_on_node_2: ready("ready-on-node-2", "fake-node-2"),
    }
}

fn names(pods: &[&Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect()
}

#[test]
fn pods_to_delete_follow_kube_order() {
    let f = fleet();
    let now = Timestamp::UNIX_EPOCH;
    type Case<'a> = (
        &'a str,
        Vec<&'a Pod>,
        Option<Vec<&'a Pod>>,
        usize,
        Vec<&'a Pod>,
    );
    let all = vec![
        &f.ready_on_node_1,
        &f.ready_on_node_1,
        &f.ready_on_node_2,
        &f.not_ready,
        &f.scheduled_pending,
        &f.unscheduled_pending,
    ];
    let cases: Vec<Case> = vec![
        ("no pods", vec![], None, 0, vec![]),
        (
            "diff = len(pods)",
            vec![&f.not_ready, &f.ready_on_node_1],
            None,
            2,
            vec![&f.not_ready, &f.ready_on_node_1],
        ),
        (
            "diff < len(pods)",
            vec![&f.ready_on_node_1, &f.not_ready],
            None,
            1,
            vec![&f.not_ready],
        ),
        (
            "all phases, diff = len(pods)",
            all.clone(),
            None,
            6,
            all.clone(),
        ),
        (
            "all phases, no related pods",
            all.clone(),
            Some(vec![]),
            6,
            all.clone(),
        ),
        (
            "scheduled vs unscheduled",
            vec![&f.scheduled_pending, &f.unscheduled_pending],
            None,
            1,
            vec![&f.unscheduled_pending],
        ),
        (
            "ready vs not ready",
            vec![&f.ready_on_node_1, &f.not_ready, &f.not_ready],
            None,
            2,
            vec![&f.not_ready, &f.not_ready],
        ),
        (
            "colocated with another ready pod vs not",
            vec![&f.ready_on_node_1, &f.ready_on_node_2],
            Some(vec![
                &f.ready_on_node_1,
                &f.ready_on_node_2,
                &f.ready_on_node_2,
            ]),
            1,
            vec![&f.ready_on_node_2],
        ),
        (
            "pending vs running",
            vec![&f.scheduled_pending, &f.not_ready],
            None,
            1,
            vec![&f.scheduled_pending],
        ),
        (
            "all phases, diff < len(pods)",
            vec![
                &f.ready_on_node_1,
                &f.ready_on_node_2,
                &f.not_ready,
                &f.scheduled_pending,
                &f.unscheduled_pending,
            ],
            None,
            3,
            vec![&f.unscheduled_pending, &f.scheduled_pending, &f.not_ready],
        ),
    ];
    for (name, active, related, count, want) in cases {
        let related = related.unwrap_or_else(|| active.clone());
        let got = pods_to_delete(&active, &related, count, now);
        assert_eq!(names(&got), names(&want), "{name}");
    }
}

#[test]
fn sorting_is_stable_under_shuffles_and_never_panics() {
    let t = table();
    let all = [
        &t.unscheduled,
        &t.scheduled_pending,
        &t.unknown_phase,
        &t.running_not_ready,
        &t.ready_no_transition_time,
        &t.ready_now,
        &t.ready_now_high_restarts,
        &t.ready_then,
    ];
    let want = [
        "unscheduled",
        "pending",
        "unknown-phase",
        "not-ready",
        "ready-no-ltt",
        "ready-high-restarts",
        "ready-now",
        "ready-then",
    ];
    for seed in 0..20usize {
        let mut shuffled: Vec<&Pod> = all.to_vec();
        shuffled.rotate_left(seed % all.len());
        if seed % 2 == 1 {
            shuffled.reverse();
        }
        let mut ranked_pods = rank_by_colocation(&shuffled, &[]);
        sort_for_deletion(&mut ranked_pods, t.now);
        let got: Vec<&Pod> = ranked_pods.iter().map(|r| r.pod).collect();
        assert_eq!(names(&got), want, "shuffle {seed}");
    }
}
