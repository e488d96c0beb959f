//! The budget rules as kube's eviction and preemption tests exercise them.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::json;

use super::budget::*;

fn pod(labels: serde_json::Value, phase: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web-1", "namespace": "demo", "labels": labels},
        "status": {"phase": phase},
    }))
    .unwrap()
}

fn pdb(
    selector: serde_json::Value,
    allowed: i32,
    disrupted: serde_json::Value,
) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"minAvailable": 1, "selector": selector},
        "status": {"disruptionsAllowed": allowed, "currentHealthy": 0, "desiredHealthy": 0,
                   "expectedPods": 0, "disruptedPods": disrupted},
    }))
    .unwrap()
}

#[test]
fn an_empty_selector_covers_nothing_for_evictions_but_selects_all_for_the_controller() {
    let web = pod(json!({"app": "web"}), "Running");
    let empty = pdb(json!({}), 1, json!({}));
    assert!(!covers(&empty, &web));
    assert!(selects(&empty, web.metadata.labels.as_ref().unwrap()));
    let matching = pdb(json!({"matchLabels": {"app": "web"}}), 1, json!({}));
    assert!(covers(&matching, &web));
    let mut elsewhere = matching.clone();
    elsewhere.metadata.namespace = Some("other".into());
    assert!(!covers(&elsewhere, &web));
    let invalid = pdb(
        json!({"matchExpressions": [{"key": "app", "operator": "Near"}]}),
        1,
        json!({}),
    );
    assert!(!covers(&invalid, &web));
}

#[test]
fn pending_finished_and_deleting_pods_ignore_their_budgets() {
    for (phase, ignored) in [
        ("Pending", true),
        ("Succeeded", true),
        ("Failed", true),
        ("Running", false),
    ] {
        assert_eq!(
            can_ignore_budget(&pod(json!({}), phase)),
            ignored,
            "{phase}"
        );
    }
    let mut deleting = pod(json!({}), "Running");
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
    );
    assert!(can_ignore_budget(&deleting));
}

/// kube's TestPodEligibleToPreemptOthers-style budget accounting: each victim takes one.
#[test]
fn victims_take_disruptions_until_the_budget_is_spent() {
    let budgets = [pdb(json!({"matchLabels": {"app": "web"}}), 1, json!({}))];
    let mut remaining = RemainingDisruptions::new(&budgets);
    let mut web = pod(json!({"app": "web"}), "Running");
    assert!(!remaining.take(&web));
    web.metadata.name = Some("web-2".into());
    assert!(remaining.take(&web));
    assert!(!remaining.take(&pod(json!({"app": "db"}), "Running")));
    let spent = [pdb(json!({"matchLabels": {"app": "web"}}), 0, json!({}))];
    assert!(eviction_violates_budget(
        &pod(json!({"app": "web"}), "Running"),
        &spent
    ));
    let already = [pdb(
        json!({"matchLabels": {"app": "web"}}),
        0,
        json!({"web-1": "2024-05-01T10:00:00Z"}),
    )];
    assert!(!eviction_violates_budget(
        &pod(json!({"app": "web"}), "Running"),
        &already
    ));
}

#[test]
fn the_condition_keeps_its_transition_time_while_its_status_holds() {
    let mut status = pdb(json!({}), 1, json!({})).status.unwrap();
    let first: Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
    let later: Timestamp = "2024-05-01T11:00:00Z".parse().unwrap();
    update_disruption_allowed_condition(&mut status, first);
    update_disruption_allowed_condition(&mut status, later);
    let conditions = status.conditions.clone().unwrap();
    assert_eq!(conditions.len(), 1);
    assert_eq!(
        (conditions[0].status.as_str(), conditions[0].reason.as_str()),
        ("True", SUFFICIENT_PODS)
    );
    assert_eq!(conditions[0].last_transition_time.0, first);
    status.disruptions_allowed = 0;
    update_disruption_allowed_condition(&mut status, later);
    let condition = &status.conditions.unwrap()[0];
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", INSUFFICIENT_PODS)
    );
    assert_eq!(condition.last_transition_time.0, later);
}
