//! kube's backoff_utils_test.go: `TestNewBackoffRecord`, `TestGetRemainingBackoffTime`,
//! `TestGetRemainingBackoffTimePerIndex` in their shape.

use super::*;
use crate::controllers::job::fixtures::build_pod;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn finished(phase: &str, second: i64) -> Pod {
    let time = at(second).to_string();
    build_pod()
        .phase(phase)
        .exited("c", i32::from(phase == "Failed"), &time)
        .pod()
}

#[test]
fn new_backoff_record() {
    let old = Record {
        failures_after_last_success: 1,
        last_failure_time: Some(at(0)),
    };
    let (s5, f2, f3, f8, f9) = (
        finished("Succeeded", 5),
        finished("Failed", 2),
        finished("Failed", 3),
        finished("Failed", 8),
        finished("Failed", 9),
    );
    // Nothing new: unchanged.
    assert_eq!(old.advanced(&[], &[]), old);
    // Only failures: added, the last one's time kept.
    let only_failures = old.advanced(&[], &[&f3, &f2]);
    assert_eq!(
        only_failures,
        Record {
            failures_after_last_success: 3,
            last_failure_time: Some(at(3))
        }
    );
    // Only a success: reset.
    assert_eq!(old.advanced(&[&s5], &[]), Record::default());
    // A success among failures: only those after it count.
    let mixed = old.advanced(&[&s5], &[&f2, &f9, &f8, &f3]);
    assert_eq!(
        mixed,
        Record {
            failures_after_last_success: 2,
            last_failure_time: Some(at(9))
        }
    );
    assert_eq!(old.advanced(&[&s5], &[&f2, &f3]), Record::default());
}

#[test]
fn remaining_backoff_time_doubles_to_the_cap() {
    let cases = [
        (0, 0, 0),
        (1, 0, 10),
        (1, 1, 9),
        (1, 10, 0),
        (1, 11, 0),
        (2, 0, 20),
        (2, 5, 15),
        (3, 0, 40),
        (7, 0, 600),
        (50, 0, 600),
        (50, 601, 0),
    ];
    for (failures, elapsed, want) in cases {
        let left = remaining_for_failures(failures, Some(at(0)), at(elapsed));
        assert_eq!(
            left,
            Duration::from_secs(want),
            "{failures} failures, {elapsed} s ago"
        );
    }
    let record = Record {
        failures_after_last_success: 2,
        last_failure_time: Some(at(0)),
    };
    assert_eq!(record.remaining(at(1)), Duration::from_secs(19));
}

#[test]
fn remaining_backoff_time_per_index() {
    let failed = |count: &str| {
        build_pod()
            .index_failure_count(count)
            .phase("Failed")
            .exited("c", 1, &at(0).to_string())
            .pod()
    };
    assert_eq!(remaining_for_index(None, at(0)), Duration::ZERO);
    assert_eq!(
        remaining_for_index(Some(&failed("0")), at(3)),
        Duration::from_secs(7)
    );
    assert_eq!(
        remaining_for_index(Some(&failed("1")), at(0)),
        Duration::from_secs(20)
    );
    assert_eq!(
        remaining_for_index(Some(&failed("1")), at(30)),
        Duration::ZERO
    );
}

#[test]
fn records_are_kept_per_job() {
    let records = Records::default();
    let record = Record {
        failures_after_last_success: 2,
        last_failure_time: Some(at(0)),
    };
    records.set("ns/a", record);
    assert_eq!(records.get("ns/a"), record);
    assert_eq!(records.get("ns/b"), Record::default());
    records.remove("ns/a");
    assert_eq!(records.get("ns/a"), Record::default());
}
