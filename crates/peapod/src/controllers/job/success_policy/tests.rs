//! kube's success_policy_test.go (`TestMatchSuccessPolicy`) cases.

use serde_json::{json, Value};

use super::*;
use crate::controllers::job::indexes::Interval;

fn policy(rules: Value) -> SuccessPolicy {
    serde_json::from_value(json!({"rules": rules})).unwrap()
}

fn succeeded(pairs: &[(usize, usize)]) -> Intervals {
    Intervals(
        pairs
            .iter()
            .map(|&(first, last)| Interval { first, last })
            .collect(),
    )
}

#[test]
fn rules_match_succeeded_indexes_or_counts() {
    type Case<'a> = (&'a str, Value, i32, &'a [(usize, usize)], Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "empty succeeded indexes",
            json!([{"succeededIndexes": "0-2"}]),
            10,
            &[],
            None,
        ),
        (
            "indexes all succeeded",
            json!([{"succeededIndexes": "0-2"}]),
            10,
            &[(0, 3)],
            Some("Matched rules at index 0"),
        ),
        (
            "indexes partly succeeded",
            json!([{"succeededIndexes": "0-2"}]),
            10,
            &[(0, 1), (3, 4)],
            None,
        ),
        (
            "count of indexes",
            json!([{"succeededIndexes": "1,3-5", "succeededCount": 2}]),
            10,
            &[(3, 3), (7, 8)],
            None,
        ),
        (
            "count of indexes reached",
            json!([{"succeededIndexes": "1,3-5", "succeededCount": 2}]),
            10,
            &[(1, 1), (4, 4)],
            Some("Matched rules at index 0"),
        ),
        (
            "count only",
            json!([{"succeededCount": 3}]),
            10,
            &[(0, 1), (5, 5)],
            Some("Matched rules at index 0"),
        ),
        (
            "count only not reached",
            json!([{"succeededCount": 4}]),
            10,
            &[(0, 1), (5, 5)],
            None,
        ),
        (
            "second rule matches",
            json!([{"succeededIndexes": "7-9"}, {"succeededIndexes": "0,1", "succeededCount": 1}]),
            10,
            &[(1, 1)],
            Some("Matched rules at index 1"),
        ),
        (
            "indexes beyond completions ignored",
            json!([{"succeededIndexes": "12-15"}, {"succeededCount": 1}]),
            10,
            &[(2, 2)],
            Some("Matched rules at index 1"),
        ),
        ("no policy", Value::Null, 10, &[(0, 9)], None),
    ];
    for (name, rules, completions, indexes, want) in cases {
        let policy = (!rules.is_null()).then(|| policy(rules));
        let got = match_policy(policy.as_ref(), completions, &succeeded(indexes));
        assert_eq!(got.as_deref(), want, "{name}");
    }
}
