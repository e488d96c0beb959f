//! kube's indexed_job_utils_test.go tables.

use serde_json::json;

use super::*;
use crate::controllers::job::fixtures::{build_pod, indexed};

fn intervals(pairs: &[(usize, usize)]) -> Intervals {
    Intervals(
        pairs
            .iter()
            .map(|&(first, last)| Interval { first, last })
            .collect(),
    )
}

/// `hollowPodsWithIndexPhase`: "-" is a pod without an index.
fn hollow(pods: &[(&str, &str)]) -> Vec<Pod> {
    pods.iter()
        .map(|(index, phase)| {
            let pod = build_pod().phase(phase).tracking_finalizer();
            match *index {
                "-" => pod.pod(),
                index => pod.index(index).pod(),
            }
        })
        .collect()
}

fn refs(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter().collect()
}

#[test]
fn calculate_succeeded_indexes() {
    /// Name, `status.completedIndexes`, pods (index, phase), completions, the previous
    /// intervals, all of them.
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        i32,
        &'a [(usize, usize)],
        &'a [(usize, usize)],
    );
    let cases: &[Case] = &[
        ("one index", "", &[("1", "Succeeded")], 2, &[], &[(1, 1)]),
        (
            "two separate",
            "",
            &[
                ("2", "Failed"),
                ("5", "Succeeded"),
                ("5", "Succeeded"),
                ("10", "Failed"),
                ("10", "Succeeded"),
            ],
            11,
            &[],
            &[(5, 5), (10, 10)],
        ),
        (
            "two intervals",
            "",
            &[
                ("0", "Running"),
                ("1", "Pending"),
                ("2", "Succeeded"),
                ("3", "Succeeded"),
                ("5", "Succeeded"),
                ("6", "Succeeded"),
                ("7", "Succeeded"),
            ],
            8,
            &[],
            &[(2, 3), (5, 7)],
        ),
        (
            "one index and one interval",
            "",
            &[
                ("0", "Succeeded"),
                ("1", "Failed"),
                ("2", "Succeeded"),
                ("3", "Succeeded"),
                ("4", "Succeeded"),
                ("5", "Succeeded"),
                ("-", "Succeeded"),
                ("-2", "Succeeded"),
            ],
            6,
            &[],
            &[(0, 0), (2, 5)],
        ),
        (
            "out of range",
            "",
            &[
                ("0", "Succeeded"),
                ("1", "Succeeded"),
                ("2", "Succeeded"),
                ("3", "Failed"),
                ("4", "Succeeded"),
                ("5", "Succeeded"),
                ("-", "Succeeded"),
                ("-2", "Succeeded"),
            ],
            5,
            &[],
            &[(0, 2), (4, 4)],
        ),
        (
            "prev interval out of range",
            "0-5,8-10",
            &[],
            8,
            &[(0, 5)],
            &[(0, 5)],
        ),
        (
            "prev interval partially out of range",
            "0-5,8-10",
            &[],
            10,
            &[(0, 5), (8, 9)],
            &[(0, 5), (8, 9)],
        ),
        (
            "prev and new separate",
            "0,4,5,10-12",
            &[("2", "Succeeded"), ("7", "Succeeded"), ("8", "Succeeded")],
            13,
            &[(0, 0), (4, 5), (10, 12)],
            &[(0, 0), (2, 2), (4, 5), (7, 8), (10, 12)],
        ),
        (
            "prev between new",
            "3,4,6",
            &[("2", "Succeeded"), ("7", "Succeeded"), ("8", "Succeeded")],
            9,
            &[(3, 4), (6, 6)],
            &[(2, 4), (6, 8)],
        ),
        (
            "new between prev",
            "2,7,8",
            &[("3", "Succeeded"), ("4", "Succeeded"), ("6", "Succeeded")],
            9,
            &[(2, 2), (7, 8)],
            &[(2, 4), (6, 8)],
        ),
        (
            "new within prev",
            "2-7",
            &[
                ("0", "Succeeded"),
                ("3", "Succeeded"),
                ("5", "Succeeded"),
                ("9", "Succeeded"),
            ],
            10,
            &[(2, 7)],
            &[(0, 0), (2, 7), (9, 9)],
        ),
        (
            "corrupted interval",
            "0,1-foo,bar",
            &[("3", "Succeeded")],
            4,
            &[(0, 0)],
            &[(0, 0), (3, 3)],
        ),
    ];
    for (name, previous, pods, completions, want_status, want) in cases {
        let status = JobStatus {
            completed_indexes: Some(previous.to_string()),
            ..JobStatus::default()
        };
        let pods = hollow(pods);
        let (got_status, got) = succeeded(&status, &refs(&pods), *completions);
        assert_eq!(got_status, intervals(want_status), "{name}");
        assert_eq!(got, intervals(want), "{name}");
    }
}

#[test]
fn calculate_failed_indexes() {
    let failed_pod = |count: &str, index: &str| {
        build_pod()
            .index_failure_count(count)
            .phase("Failed")
            .index(index)
            .tracking_finalizer()
            .pod()
    };
    let job = |limit: i32, previous: Option<&str>| {
        let mut job = indexed(2, json!({"backoffLimitPerIndex": limit}));
        job.status = Some(JobStatus {
            failed_indexes: previous.map(str::to_owned),
            ..JobStatus::default()
        });
        job
    };
    let untracked = build_pod()
        .index_failure_count("0")
        .phase("Failed")
        .index("0")
        .pod();
    let cases: Vec<(&str, Job, Vec<Pod>, Intervals)> = vec![
        (
            "one new index failed",
            job(1, None),
            vec![failed_pod("0", "0"), failed_pod("1", "1")],
            intervals(&[(1, 1)]),
        ),
        (
            "pod without finalizer is ignored",
            job(0, None),
            vec![untracked],
            intervals(&[]),
        ),
        (
            "pod outside completions is ignored",
            job(0, None),
            vec![failed_pod("0", "3")],
            intervals(&[]),
        ),
        (
            "extend the failed indexes",
            job(0, Some("0")),
            vec![failed_pod("0", "1")],
            intervals(&[(0, 1)]),
        ),
        (
            "prev failed indexes empty",
            job(0, Some("")),
            vec![failed_pod("0", "1")],
            intervals(&[(1, 1)]),
        ),
        (
            "prev failed indexes outside the completions",
            job(0, Some("9")),
            vec![failed_pod("0", "1")],
            intervals(&[(1, 1)]),
        ),
    ];
    for (name, job, pods, want) in cases {
        let limit = job.spec.as_ref().unwrap().backoff_limit_per_index.unwrap();
        assert_eq!(failed(&job, &refs(&pods), limit), want, "{name}");
    }
}

#[test]
fn is_index_failed_by_limit_or_fail_index_rule() {
    let job = indexed(2, json!({"backoffLimitPerIndex": 0}));
    let pod = build_pod()
        .index_failure_count("0")
        .phase("Failed")
        .index("0")
        .tracking_finalizer()
        .pod();
    assert!(is_index_failed(&job, &pod, 0));
    let pod = build_pod()
        .index_failure_count("1")
        .phase("Failed")
        .index("1")
        .tracking_finalizer()
        .pod();
    assert!(is_index_failed(&job, &pod, 1));
    assert!(!is_index_failed(&job, &pod, 2));
    let job = indexed(
        2,
        json!({"backoffLimitPerIndex": 1, "podFailurePolicy": {"rules": [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}}]}}),
    );
    let pod = build_pod()
        .index_failure_count("0")
        .phase("Failed")
        .exited("c", 3, "2026-01-01T00:00:00Z")
        .index("0")
        .pod();
    assert!(is_index_failed(&job, &pod, 1));
}

#[test]
fn new_failure_counts_of_a_replacement() {
    let job = indexed(2, json!({}));
    assert_eq!(new_failure_counts(&job, None), (0, 0));
    let pod = build_pod()
        .index_failure_count("0")
        .phase("Failed")
        .index("0")
        .pod();
    assert_eq!(new_failure_counts(&job, Some(&pod)), (1, 0));
    let pod = build_pod()
        .index_failure_count("3")
        .phase("Failed")
        .index("0")
        .pod();
    assert_eq!(new_failure_counts(&job, Some(&pod)), (4, 0));
    let job = indexed(
        4,
        json!({"podFailurePolicy": {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}}),
    );
    let pod = build_pod()
        .index_failure_count("3")
        .phase("Failed")
        .condition("DisruptionTarget", "True", None)
        .index("3")
        .pod();
    assert_eq!(new_failure_counts(&job, Some(&pod)), (3, 1));
}

#[test]
fn intervals_have_index() {
    let two = intervals(&[(2, 4), (6, 8)]);
    assert!(!intervals(&[]).has(4));
    assert!(!intervals(&[(2, 4), (5, 7)]).has(1));
    assert!(!two.has(9));
    assert!(!two.has(5));
    assert!(two.has(2));
    assert!(two.has(8));
}

#[test]
fn intervals_print_as_kube_does() {
    assert_eq!(intervals(&[]).to_string(), "");
    assert_eq!(intervals(&[(0, 2), (4, 4)]).to_string(), "0-2,4");
    assert_eq!(
        intervals(&[(1, 2), (5, 7), (9, 9)]).to_string(),
        "1,2,5-7,9"
    );
    assert_eq!(Intervals::parse("0-2,4", 10).to_string(), "0-2,4");
    assert_eq!(
        intervals(&[(0, 1)]).merge(&intervals(&[(2, 2), (4, 5)])),
        intervals(&[(0, 2), (4, 5)])
    );
}

#[test]
fn first_pending_indexes() {
    type Case<'a> = (
        &'a str,
        usize,
        i32,
        &'a [(&'a str, &'a str)],
        &'a [(usize, usize)],
        Option<&'a [(usize, usize)]>,
        &'a [usize],
    );
    let cases: &[Case] = &[
        (
            "cnt greater than completions",
            5,
            3,
            &[],
            &[],
            None,
            &[0, 1, 2],
        ),
        ("cnt less than completions", 2, 5, &[], &[], None, &[0, 1]),
        (
            "first pods active",
            3,
            10,
            &[("0", "Running"), ("1", "Pending")],
            &[],
            None,
            &[2, 3, 4],
        ),
        (
            "last pods active or succeeded",
            6,
            6,
            &[("6", "Pending")],
            &[(4, 5)],
            None,
            &[0, 1, 2, 3],
        ),
        (
            "mixed",
            5,
            20,
            &[
                ("3", "Pending"),
                ("5", "Running"),
                ("8", "Pending"),
                ("-", "Running"),
                ("-3", "Running"),
            ],
            &[(2, 4), (9, 9)],
            None,
            &[0, 1, 6, 7, 10],
        ),
        (
            "with failed indexes",
            5,
            20,
            &[("3", "Pending"), ("9", "Pending")],
            &[(1, 1), (5, 5), (9, 9)],
            Some(&[(2, 2), (6, 7)]),
            &[0, 4, 8, 10, 11],
        ),
    ];
    for (name, count, completions, active, succeeded, failed, want) in cases {
        let pods = hollow(active);
        let active = indexes_of(&refs(&pods));
        let failed = failed.map(intervals);
        let got = first_pending(
            &active,
            None,
            &intervals(succeeded),
            failed.as_ref(),
            *count,
            *completions,
        );
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn duplicated_index_pods_for_removal() {
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
    );
    let cases: &[Case] = &[
        (
            "all unique",
            &[
                ("-", "Pending"),
                ("2", "Pending"),
                ("5", "Running"),
                ("6", "Running"),
            ],
            &[("-", "Pending"), ("6", "Running")],
            &[("2", "Pending"), ("5", "Running")],
        ),
        (
            "all with index",
            &[
                ("5", "Pending"),
                ("0", "Running"),
                ("3", "Pending"),
                ("0", "Running"),
                ("3", "Running"),
                ("0", "Pending"),
                ("6", "Running"),
                ("6", "Pending"),
            ],
            &[
                ("0", "Pending"),
                ("0", "Running"),
                ("3", "Pending"),
                ("6", "Running"),
                ("6", "Pending"),
            ],
            &[("0", "Running"), ("3", "Running"), ("5", "Pending")],
        ),
        (
            "mixed",
            &[
                ("-", "Pending"),
                ("invalid", "Running"),
                ("-2", "Running"),
                ("0", "Pending"),
                ("1", "Pending"),
                ("1", "Pending"),
                ("1", "Running"),
            ],
            &[
                ("-", "Pending"),
                ("invalid", "Running"),
                ("-2", "Running"),
                ("1", "Pending"),
                ("1", "Pending"),
            ],
            &[("0", "Pending"), ("1", "Running")],
        ),
    ];
    let described = |pods: Vec<&Pod>| -> Vec<(String, String)> {
        pods.iter()
            .map(|p| {
                let annotations = p.metadata.annotations.clone().unwrap_or_default();
                let index = annotations
                    .get(COMPLETION_INDEX)
                    .cloned()
                    .unwrap_or("-".into());
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default();
                (index, phase)
            })
            .collect()
    };
    let owned = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(i, p)| (i.to_string(), p.to_string()))
            .collect()
    };
    for (name, pods, want_remove, want_keep) in cases {
        let pods = hollow(pods);
        let (remove, keep) = split_duplicates(&refs(&pods), 6);
        assert_eq!(described(remove), owned(want_remove), "{name}");
        assert_eq!(described(keep), owned(want_keep), "{name}");
    }
}

#[test]
fn generate_name_with_the_index() {
    assert_eq!(generate_name_with_index("indexed-job", 1), "indexed-job-1-");
    let long = "hhhhhooooohhhhhooooohhhhhooooohhhhhooooohhhhhooooohhhhhooooohhhhhooooo";
    let cut = "hhhhhooooohhhhhooooohhhhhooooohhhhhooooohhhhhooooohhhhh-1-";
    assert_eq!(generate_name_with_index(long, 1), cut);
    assert_eq!(generate_name_with_index(&long[..57], 1), cut);
}

#[test]
fn index_failure_count_annotation() {
    let count = |value: &str| failure_count(&build_pod().index_failure_count(value).pod());
    assert_eq!(failure_count(&Pod::default()), 0);
    assert_eq!(count("2"), 2);
    assert_eq!(count(&i32::MAX.to_string()), i32::MAX);
    assert_eq!(count(&(i64::from(i32::MAX) + 1).to_string()), 0);
    assert_eq!(count("-1"), 0);
    assert_eq!(count("xyz"), 0);
}
