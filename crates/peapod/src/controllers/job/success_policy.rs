//! `spec.successPolicy` of an Indexed Job, as kube's success_policy.go matches it: the first
//! rule whose succeeded indexes (all of them, or `succeededCount` of them) or whose count
//! the Job's succeeded indexes satisfy declares the Job successful.

use k8s_openapi::api::batch::v1::SuccessPolicy;

use super::indexes::Intervals;

/// `matchSuccessPolicy`: the SuccessCriteriaMet message when a rule matches.
pub fn match_policy(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &Intervals,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(indexes), count) => {
                let required = Intervals::parse(indexes, completions);
                if required.is_empty() {
                    continue;
                }
                matches_indexes_rule(&required, succeeded, count)
            }
            (None, Some(count)) => {
                i64::try_from(succeeded.total()).unwrap_or(i64::MAX) >= i64::from(count)
            }
            (None, None) => false,
        };
        if matched {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

/// `matchSucceededIndexesRule`: every required index succeeded, or at least `count` of them.
fn matches_indexes_rule(required: &Intervals, succeeded: &Intervals, count: Option<i32>) -> bool {
    let contained: usize = required
        .0
        .iter()
        .flat_map(|r| {
            succeeded.0.iter().map(move |s| {
                let (first, last) = (r.first.max(s.first), r.last.min(s.last));
                (last + 1).saturating_sub(first)
            })
        })
        .sum();
    let enough =
        count.is_some_and(|c| i64::try_from(contained).unwrap_or(i64::MAX) >= i64::from(c));
    contained == required.total() || enough
}

#[cfg(test)]
mod tests;
