//! kube's pod_failure_policy_test.go (`TestMatchPodFailurePolicy`) cases.

use k8s_openapi::api::batch::v1::PodFailurePolicy;
use serde_json::{json, Value};

use super::*;
use crate::controllers::job::fixtures::build_pod;

fn policy(rules: Value) -> PodFailurePolicy {
    serde_json::from_value(json!({"rules": rules})).unwrap()
}

fn failed_with(code: i32) -> Pod {
    build_pod()
        .uid("mypod")
        .phase("Failed")
        .exited("main-container", code, "2026-01-01T00:00:00Z")
        .pod()
}

#[test]
fn exit_code_rules() {
    let fail_job =
        policy(json!([{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}}]));
    let matched = match_policy(Some(&fail_job), &failed_with(2));
    assert_eq!(
        matched.fail_job_message.as_deref(),
        Some("Container main-container for pod default/mypod failed with exit code 2 matching FailJob rule at index 0")
    );
    assert!(matched.counts);
    assert_eq!(matched.action, Some(Action::FailJob));
    assert_eq!(match_policy(Some(&fail_job), &failed_with(1)), Match::NONE);

    let ignore = policy(
        json!([{"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}}]),
    );
    let matched = match_policy(Some(&ignore), &failed_with(3));
    assert_eq!(
        (matched.counts, matched.action),
        (false, Some(Action::Ignore))
    );
    assert_eq!(match_policy(Some(&ignore), &failed_with(2)), Match::NONE);

    let count = policy(json!([
        {"action": "Count", "onExitCodes": {"operator": "In", "values": [1, 2, 3]}},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}},
    ]));
    let matched = match_policy(Some(&count), &failed_with(2));
    assert_eq!(
        matched,
        Match {
            fail_job_message: None,
            counts: true,
            action: Some(Action::Count)
        }
    );
}

#[test]
fn exit_code_zero_and_container_names() {
    let any =
        policy(json!([{"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [1]}}]));
    assert_eq!(match_policy(Some(&any), &failed_with(0)), Match::NONE);
    let named = policy(
        json!([{"action": "FailJob", "onExitCodes": {"containerName": "other", "operator": "In", "values": [2]}}]),
    );
    assert_eq!(match_policy(Some(&named), &failed_with(2)), Match::NONE);
    let init = build_pod()
        .uid("mypod")
        .phase("Failed")
        .init_exited("init-container", 5)
        .pod();
    let on_init =
        policy(json!([{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [5]}}]));
    assert_eq!(
        match_policy(Some(&on_init), &init).fail_job_message.as_deref(),
        Some("Container init-container for pod default/mypod failed with exit code 5 matching FailJob rule at index 0")
    );
}

#[test]
fn pod_condition_rules() {
    let disrupted = build_pod()
        .uid("mypod")
        .phase("Failed")
        .condition("DisruptionTarget", "True", None)
        .pod();
    let ignore = policy(
        json!([{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]),
    );
    let matched = match_policy(Some(&ignore), &disrupted);
    assert_eq!(
        (matched.counts, matched.action),
        (false, Some(Action::Ignore))
    );
    let fail_job = policy(json!([
        {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "False"}]},
        {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    ]));
    assert_eq!(
        match_policy(Some(&fail_job), &disrupted)
            .fail_job_message
            .as_deref(),
        Some("Pod default/mypod has condition DisruptionTarget matching FailJob rule at index 1")
    );
    let fail_index = policy(
        json!([{"action": "FailIndex", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]),
    );
    assert_eq!(
        match_policy(Some(&fail_index), &disrupted).action,
        Some(Action::FailIndex)
    );
    assert_eq!(match_policy(None, &disrupted), Match::NONE);
}
