//! A status's conditions as kube's controller utilities keep them, over any k8s-openapi
//! condition type: found by type, removed by type (no list left is no list at all), and set
//! unless status and reason are unchanged, the new condition moved last.

use k8s_openapi::api::apps::v1::{DeploymentCondition, ReplicaSetCondition};

/// What the shared rules read of a condition.
pub trait Condition {
    fn type_(&self) -> &str;
    fn status(&self) -> &str;
    fn reason(&self) -> Option<&str>;
}

impl Condition for DeploymentCondition {
    fn type_(&self) -> &str {
        &self.type_
    }
    fn status(&self) -> &str {
        &self.status
    }
    fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

impl Condition for ReplicaSetCondition {
    fn type_(&self) -> &str {
        &self.type_
    }
    fn status(&self) -> &str {
        &self.status
    }
    fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

/// `GetCondition`.
pub fn find<'a, C: Condition>(conditions: &'a Option<Vec<C>>, type_: &str) -> Option<&'a C> {
    conditions.iter().flatten().find(|c| c.type_() == type_)
}

/// `SetCondition`: replaces the condition of that type unless status and reason are unchanged.
pub fn set<C: Condition>(conditions: &mut Option<Vec<C>>, new: C) {
    if let Some(current) = find(conditions, new.type_()) {
        if current.status() == new.status() && current.reason() == new.reason() {
            return;
        }
    }
    remove(conditions, new.type_());
    conditions.get_or_insert_default().push(new);
}

/// `RemoveCondition`.
pub fn remove<C: Condition>(conditions: &mut Option<Vec<C>>, type_: &str) {
    let kept: Vec<C> = conditions
        .take()
        .into_iter()
        .flatten()
        .filter(|c| c.type_() != type_)
        .collect();
    *conditions = (!kept.is_empty()).then_some(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(type_: &str, status: &str, reason: &str, message: &str) -> ReplicaSetCondition {
        ReplicaSetCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            ..ReplicaSetCondition::default()
        }
    }

    #[test]
    fn set_replaces_only_a_new_status_or_reason_and_moves_it_last() {
        let mut conditions = None;
        set(&mut conditions, condition("A", "True", "r", "first"));
        set(&mut conditions, condition("B", "True", "r", ""));
        set(&mut conditions, condition("A", "True", "r", "second"));
        assert_eq!(
            find(&conditions, "A").and_then(|c| c.message.as_deref()),
            Some("first")
        );
        set(&mut conditions, condition("A", "False", "r", "third"));
        let types: Vec<&str> = conditions.iter().flatten().map(|c| c.type_()).collect();
        assert_eq!(types, ["B", "A"]);
        remove(&mut conditions, "A");
        remove(&mut conditions, "B");
        assert_eq!(conditions, None);
    }
}
