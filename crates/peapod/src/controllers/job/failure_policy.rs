//! `spec.podFailurePolicy` against a failed pod, as kube's pod_failure_policy.go matches it:
//! the first rule whose exit codes (of a terminated container, init containers after the
//! others) or pod conditions match decides whether the failure fails the Job, fails the
//! index, counts toward the backoff limits or is ignored.

use k8s_openapi::api::batch::v1::{
    PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern,
};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};

/// A rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    FailJob,
    FailIndex,
    Ignore,
    Count,
}

impl Action {
    fn parse(action: &str) -> Option<Action> {
        match action {
            "FailJob" => Some(Action::FailJob),
            "FailIndex" => Some(Action::FailIndex),
            "Ignore" => Some(Action::Ignore),
            "Count" => Some(Action::Count),
            _ => None,
        }
    }
}

/// What `matchPodFailurePolicy` answers for one failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The Job's failure message, when a FailJob rule matched.
    pub fail_job_message: Option<String>,
    /// Whether the failure counts toward backoffLimit (and backoffLimitPerIndex).
    pub counts: bool,
    /// The matched rule's action.
    pub action: Option<Action>,
}

impl Match {
    const NONE: Match = Match {
        fail_job_message: None,
        counts: true,
        action: None,
    };
}

/// `matchPodFailurePolicy`.
pub fn match_policy(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Match {
    let Some(policy) = policy else {
        return Match::NONE;
    };
    for (index, rule) in policy.rules.iter().enumerate() {
        let Some(action) = Action::parse(&rule.action) else {
            continue;
        };
        let message = if let Some(requirement) = &rule.on_exit_codes {
            let Some(container) = match_exit_codes(pod, requirement) else {
                continue;
            };
            let code = exit_code(container).unwrap_or_default();
            format!(
                "Container {} for pod {}/{} failed with exit code {code} matching {} rule at index {index}",
                container.name,
                namespace(pod),
                name(pod),
                rule.action
            )
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let Some(condition) = match_pod_conditions(pod, patterns) else {
                continue;
            };
            format!(
                "Pod {}/{} has condition {} matching {} rule at index {index}",
                namespace(pod),
                name(pod),
                condition.type_,
                rule.action
            )
        } else {
            continue;
        };
        return match action {
            Action::Ignore => Match {
                fail_job_message: None,
                counts: false,
                action: Some(action),
            },
            Action::FailJob => Match {
                fail_job_message: Some(message),
                counts: true,
                action: Some(action),
            },
            Action::FailIndex | Action::Count => Match {
                fail_job_message: None,
                counts: true,
                action: Some(action),
            },
        };
    }
    Match::NONE
}

/// `matchOnExitCodes`: the first terminated container (then init container) whose non-zero
/// exit code the requirement matches.
fn match_exit_codes<'a>(
    pod: &'a Pod,
    requirement: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<&'a ContainerStatus> {
    let status = pod.status.as_ref()?;
    let containers = status.container_statuses.iter().flatten();
    let init = status.init_container_statuses.iter().flatten();
    let matching = |c: &&ContainerStatus| {
        let Some(code) = exit_code(c) else {
            return false;
        };
        let named = requirement
            .container_name
            .as_ref()
            .is_none_or(|n| *n == c.name);
        named && code != 0 && operator_matches(code, requirement)
    };
    containers
        .clone()
        .find(matching)
        .or_else(|| init.clone().find(matching))
}

fn exit_code(container: &ContainerStatus) -> Option<i32> {
    let state = container.state.as_ref()?;
    state.terminated.as_ref().map(|t| t.exit_code)
}

fn operator_matches(code: i32, requirement: &PodFailurePolicyOnExitCodesRequirement) -> bool {
    match requirement.operator.as_str() {
        "In" => requirement.values.contains(&code),
        "NotIn" => !requirement.values.contains(&code),
        _ => false,
    }
}

/// `matchOnPodConditions`: the first of the pod's conditions a pattern matches.
fn match_pod_conditions<'a>(
    pod: &'a Pod,
    patterns: &[PodFailurePolicyOnPodConditionsPattern],
) -> Option<&'a PodCondition> {
    let conditions = pod.status.as_ref()?.conditions.iter().flatten();
    conditions.into_iter().find(|condition| {
        patterns
            .iter()
            .any(|p| p.type_ == condition.type_ && p.status == condition.status)
    })
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or_default()
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests;
