//! policy/v1 PodDisruptionBudgets and the pods/eviction subresource that honours them, as
//! kube-apiserver serves them (pkg/registry/policy/poddisruptionbudget, pkg/registry/core/pod/
//! storage/eviction.go): validation, generation and status, the table, and each of the
//! eviction's answers.

mod common;

use common::{Api, NAMESPACE, TABLE};
use serde_json::{json, Value};

const BUDGETS: &str = "/apis/policy/v1/namespaces/demo/poddisruptionbudgets";
const PODS: &str = "/api/v1/namespaces/demo/pods";
const TOO_MANY: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn budget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": name}, "spec": spec})
}

fn web_budget(name: &str) -> Value {
    budget(
        name,
        json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
    )
}

async fn create_pod(api: &Api, name: &str) {
    let pod = json!({"metadata": {"name": name, "labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "app", "image": "busybox"}]}});
    api.post(PODS, &pod).await.expect(201);
}

/// The pod's status as its kubelet reports it: Running, Ready or not.
async fn run_pod(api: &Api, name: &str, ready: bool) {
    let path = format!("{PODS}/{name}");
    let mut pod = api.get(&path).await.expect(200);
    let ready = if ready { "True" } else { "False" };
    pod["status"] = json!({"phase": "Running", "conditions": [
        {"type": "Ready", "status": ready}]});
    api.put(&format!("{path}/status"), &pod).await.expect(200);
}

/// The budget's status as its controller writes it, at its current generation.
async fn set_status(api: &Api, name: &str, allowed: i32, current: i32, desired: i32) {
    let path = format!("{BUDGETS}/{name}");
    let mut pdb = api.get(&path).await.expect(200);
    pdb["status"] = json!({"observedGeneration": pdb["metadata"]["generation"],
                           "disruptionsAllowed": allowed, "currentHealthy": current,
                           "desiredHealthy": desired, "expectedPods": 3});
    api.put(&format!("{path}/status"), &pdb).await.expect(200);
}

async fn evict(api: &Api, pod: &str, delete_options: Value) -> common::Reply {
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                          "metadata": {"name": pod, "namespace": NAMESPACE},
                          "deleteOptions": delete_options});
    api.post(&format!("{PODS}/{pod}/eviction"), &eviction).await
}

fn cause(reply: &common::Reply) -> &str {
    reply.json["details"]["causes"][0]["message"]
        .as_str()
        .unwrap_or_default()
}

fn is_deleting(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_string()
}

#[tokio::test]
async fn a_budget_is_validated_with_kubes_messages() {
    let api = Api::start().await;
    let cases = [
        (
            json!({"minAvailable": 1, "maxUnavailable": 1}),
            "spec: Invalid value: minAvailable and maxUnavailable cannot be both set",
        ),
        (
            json!({"minAvailable": "120%"}),
            "spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%",
        ),
        (
            json!({"maxUnavailable": -1}),
            "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            json!({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"}),
            "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Never\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"",
        ),
        (
            json!({"selector": {"matchExpressions": [{"key": "app", "operator": "Near"}]}}),
            "spec.selector.matchExpressions[0].operator: Invalid value: \"Near\": not a valid selector operator",
        ),
    ];
    for (spec, expected) in cases {
        let refused = api.post(BUDGETS, &budget("bad", spec.clone())).await;
        assert_eq!(refused.status, 422, "{spec}: {}", refused.text);
        assert!(
            refused.message().contains(expected),
            "{spec}: {}",
            refused.message()
        );
    }
}

#[tokio::test]
async fn a_budget_starts_with_an_empty_status_and_counts_its_spec_changes() {
    let api = Api::start().await;
    let created = api.post(BUDGETS, &web_budget("web")).await.expect(201);
    assert_eq!(created["metadata"]["generation"], 1);
    let zeros = json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                       "expectedPods": 0});
    assert_eq!(created["status"], zeros, "{created}");
    let mut changed = created.clone();
    changed["spec"]["minAvailable"] = json!("50%");
    let updated = api
        .put(&format!("{BUDGETS}/web"), &changed)
        .await
        .expect(200);
    assert_eq!(updated["metadata"]["generation"], 2);
    let found = api.get(&format!("{BUDGETS}/web")).await.expect(200);
    assert_eq!(found["metadata"]["generation"], 2);
    let negative = json!({"disruptionsAllowed": -1, "currentHealthy": 0, "desiredHealthy": 0,
                          "expectedPods": 0});
    let mut status = found.clone();
    status["status"] = negative;
    let refused = api.put(&format!("{BUDGETS}/web/status"), &status).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused
        .message()
        .contains("status.disruptionsAllowed: Invalid value: -1"));
    // A condition without its transition time, missing or null: kube's Go decoder takes it
    // as zero and metav1's ValidateConditions refuses it (422, not a 400 decoding error).
    let condition = json!({"type": "DisruptionAllowed", "status": "False", "reason": "R",
                           "message": ""});
    for time in [None, Some(Value::Null)] {
        let mut condition = condition.clone();
        if let Some(time) = time {
            condition["lastTransitionTime"] = time;
        }
        let mut status = found.clone();
        status["status"]["conditions"] = json!([condition]);
        let refused = api.put(&format!("{BUDGETS}/web/status"), &status).await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert_eq!(
            refused.message(),
            "PodDisruptionBudget.policy \"web\" is invalid: status.conditions[0].lastTransitionTime: Required value: must be set"
        );
    }
}

#[tokio::test]
async fn the_table_shows_kubectls_columns() {
    let api = Api::start().await;
    api.post(BUDGETS, &web_budget("web")).await.expect(201);
    let spec = json!({"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "db"}}});
    api.post(BUDGETS, &budget("db", spec)).await.expect(201);
    let table = api.get_as(BUDGETS, TABLE).await.expect(200);
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let expected = [
        "Name",
        "Min Available",
        "Max Unavailable",
        "Allowed Disruptions",
        "Age",
    ];
    assert_eq!(names, expected);
    let cells = |row: usize| table["rows"][row]["cells"].as_array().unwrap()[..4].to_vec();
    assert_eq!(
        cells(0),
        [json!("db"), json!("N/A"), json!("25%"), json!(0)]
    );
    assert_eq!(cells(1), [json!("web"), json!("2"), json!("N/A"), json!(0)]);
}

#[tokio::test]
async fn an_eviction_takes_a_disruption_from_the_budget() {
    let api = Api::start().await;
    create_pod(&api, "web-1").await;
    run_pod(&api, "web-1", true).await;
    api.post(BUDGETS, &web_budget("web")).await.expect(201);
    set_status(&api, "web", 1, 3, 2).await;
    evict(&api, "web-1", json!({"gracePeriodSeconds": 5}))
        .await
        .expect(201);
    let pdb = api.get(&format!("{BUDGETS}/web")).await.expect(200);
    let status = &pdb["status"];
    assert_eq!(status["disruptionsAllowed"], 0, "{pdb}");
    assert!(status["disruptedPods"]["web-1"].is_string(), "{pdb}");
    let condition = &status["conditions"][0];
    assert_eq!(
        (
            &condition["type"],
            &condition["status"],
            &condition["reason"]
        ),
        (
            &json!("DisruptionAllowed"),
            &json!("False"),
            &json!("InsufficientPods")
        )
    );
    let pod = api.get(&format!("{PODS}/web-1")).await.expect(200);
    assert!(is_deleting(&pod), "{pod}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 5);
    let conditions = pod["status"]["conditions"].as_array().unwrap();
    let target = conditions
        .iter()
        .find(|c| c["type"] == "DisruptionTarget")
        .unwrap();
    assert_eq!(target["status"], "True");
    assert_eq!(target["reason"], "EvictionByEvictionAPI");
    assert_eq!(target["message"], "Eviction API: evicting");
}

#[tokio::test]
async fn an_eviction_that_would_violate_the_budget_is_refused() {
    let api = Api::start().await;
    create_pod(&api, "web-1").await;
    run_pod(&api, "web-1", true).await;
    api.post(BUDGETS, &web_budget("web")).await.expect(201);
    let unobserved = evict(&api, "web-1", json!({})).await;
    assert_eq!(unobserved.status, 429, "{}", unobserved.text);
    assert_eq!(unobserved.message(), TOO_MANY);
    assert_eq!(
        cause(&unobserved),
        "The disruption budget web is still being processed by the server."
    );
    assert_eq!(unobserved.json["details"]["retryAfterSeconds"], 10);
    set_status(&api, "web", 0, 2, 2).await;
    let refused = evict(&api, "web-1", json!({})).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.json["reason"], "TooManyRequests");
    assert_eq!(refused.message(), TOO_MANY);
    assert_eq!(
        refused.json["details"]["causes"][0]["reason"],
        "DisruptionBudget"
    );
    assert_eq!(
        cause(&refused),
        "The disruption budget web needs 2 healthy pods and has 2 currently"
    );
    let pod = api.get(&format!("{PODS}/web-1")).await.expect(200);
    assert!(!is_deleting(&pod), "{pod}");
}

#[tokio::test]
async fn pods_the_budget_does_not_count_are_evicted_regardless() {
    let api = Api::start().await;
    api.post(BUDGETS, &web_budget("web")).await.expect(201);
    set_status(&api, "web", 0, 2, 2).await;
    create_pod(&api, "pending").await;
    evict(&api, "pending", json!({})).await.expect(201);
    create_pod(&api, "unready").await;
    run_pod(&api, "unready", false).await;
    evict(&api, "unready", json!({})).await.expect(201);
    let pdb = api.get(&format!("{BUDGETS}/web")).await.expect(200);
    assert!(pdb["status"]["disruptedPods"].is_null(), "{pdb}");
    for name in ["pending", "unready"] {
        let pod = api.get(&format!("{PODS}/{name}")).await.expect(200);
        assert!(is_deleting(&pod), "{pod}");
    }
}

#[tokio::test]
async fn an_unhealthy_pod_waits_for_a_healthy_budget_unless_always_allowed() {
    let api = Api::start().await;
    api.post(BUDGETS, &web_budget("web")).await.expect(201);
    set_status(&api, "web", 0, 1, 2).await;
    create_pod(&api, "unready").await;
    run_pod(&api, "unready", false).await;
    let refused = evict(&api, "unready", json!({})).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    let path = format!("{BUDGETS}/web");
    let mut pdb = api.get(&path).await.expect(200);
    pdb["spec"]["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
    api.put(&path, &pdb).await.expect(200);
    set_status(&api, "web", 0, 1, 2).await;
    evict(&api, "unready", json!({})).await.expect(201);
}

#[tokio::test]
async fn a_pod_under_two_budgets_is_not_evicted() {
    let api = Api::start().await;
    create_pod(&api, "web-1").await;
    run_pod(&api, "web-1", true).await;
    for name in ["web", "web-too"] {
        api.post(BUDGETS, &web_budget(name)).await.expect(201);
        set_status(&api, name, 1, 3, 2).await;
    }
    let refused = evict(&api, "web-1", json!({})).await;
    assert_eq!(refused.status, 500, "{}", refused.text);
    assert_eq!(
        refused.message(),
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
}

#[tokio::test]
async fn a_dry_run_eviction_changes_nothing() {
    let api = Api::start().await;
    create_pod(&api, "web-1").await;
    run_pod(&api, "web-1", true).await;
    api.post(BUDGETS, &web_budget("web")).await.expect(201);
    set_status(&api, "web", 1, 3, 2).await;
    let before = api.get(&format!("{BUDGETS}/web")).await.expect(200);
    evict(&api, "web-1", json!({"dryRun": ["All"]}))
        .await
        .expect(201);
    let after = api.get(&format!("{BUDGETS}/web")).await.expect(200);
    assert_eq!(before, after);
    let pod = api.get(&format!("{PODS}/web-1")).await.expect(200);
    assert!(!is_deleting(&pod), "{pod}");
    let conditions = pod["status"]["conditions"].as_array().unwrap();
    assert!(conditions.iter().all(|c| c["type"] != "DisruptionTarget"));
}
