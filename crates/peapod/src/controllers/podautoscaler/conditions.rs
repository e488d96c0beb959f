//! An HPA's status conditions as horizontal.go's `setConditionInList` keeps them: found by
//! type (else added last), the transition time moved only when the status changes, reason and
//! message always the latest.

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const ABLE_TO_SCALE: &str = "AbleToScale";
pub const SCALING_ACTIVE: &str = "ScalingActive";
pub const SCALING_LIMITED: &str = "ScalingLimited";

/// A condition to set: type, status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

impl Condition {
    pub fn new(
        type_: &'static str,
        status: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Condition {
        Condition {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// `setConditionInList`.
pub fn set(
    conditions: &mut Option<Vec<HorizontalPodAutoscalerCondition>>,
    new: Condition,
    now: Timestamp,
) {
    let list = conditions.get_or_insert_default();
    let index = match list.iter().position(|c| c.type_ == new.type_) {
        Some(index) => index,
        None => {
            list.push(HorizontalPodAutoscalerCondition {
                type_: new.type_.to_owned(),
                ..HorizontalPodAutoscalerCondition::default()
            });
            list.len() - 1
        }
    };
    let existing = &mut list[index];
    if existing.status != new.status {
        existing.last_transition_time = Some(Time(now));
    }
    existing.status = new.status.to_owned();
    existing.reason = Some(new.reason);
    existing.message = Some(new.message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_moves_its_time_only_on_a_new_status() {
        let (first, second): (Timestamp, Timestamp) = (
            "2026-01-01T00:00:00Z".parse().unwrap(),
            "2026-01-01T00:01:00Z".parse().unwrap(),
        );
        let mut conditions = None;
        set(
            &mut conditions,
            Condition::new(ABLE_TO_SCALE, "True", "A", "a"),
            first,
        );
        set(
            &mut conditions,
            Condition::new(SCALING_ACTIVE, "True", "B", "b"),
            first,
        );
        set(
            &mut conditions,
            Condition::new(ABLE_TO_SCALE, "True", "C", "c"),
            second,
        );
        let list = conditions.clone().unwrap();
        assert_eq!(list[0].reason.as_deref(), Some("C"));
        assert_eq!(list[0].last_transition_time, Some(Time(first)));
        set(
            &mut conditions,
            Condition::new(ABLE_TO_SCALE, "False", "D", "d"),
            second,
        );
        let list = conditions.unwrap();
        assert_eq!(list[0].type_, ABLE_TO_SCALE);
        assert_eq!(list[0].last_transition_time, Some(Time(second)));
        assert_eq!(list[1].type_, SCALING_ACTIVE);
    }
}
