//! pods/eviction as kube's EvictionREST decides it: a pod its budgets may ignore goes at once;
//! otherwise its one covering PodDisruptionBudget must allow a disruption, which the eviction
//! takes from the budget's status (disruptedPods[pod] = now) before the pod is marked
//! DisruptionTarget and deleted.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use peapod_apiserver::registry::Allowed;
use peapod_apiserver::status::ApiError;
use peapod_apiserver::status::StatusCode;
use peapod_store::Store;
use serde_json::{json, Value};

use super::budget::{can_ignore_budget, covers, is_pod_ready, update_disruption_allowed_condition};

/// kube's MaxDisruptedPodSize: evictions the controller has not confirmed yet, at most.
const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// kube's EvictionsRetry steps: tries of a budget update that conflicts.
const CONFLICT_RETRIES: usize = 20;

/// The guard of pods/eviction over the pod as served.
pub fn guard(pod: &Value, dry_run: bool, store: &Store) -> Result<Allowed, ApiError> {
    let pod: Pod = serde_json::from_value(pod.clone())
        .map_err(|err| ApiError::internal(format!("decoding the pod: {err}")))?;
    if can_ignore_budget(&pod) {
        return Ok(match should_enforce_resource_version(&pod) {
            true => Allowed::IfUnchanged(pod_changed(&pod)),
            false => Allowed::Always,
        });
    }
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let budgets: Vec<PodDisruptionBudget> = store.list(Some(&namespace))?;
    let covering: Vec<&PodDisruptionBudget> =
        budgets.iter().filter(|pdb| covers(pdb, &pod)).collect();
    let pdb = match covering.as_slice() {
        [] => return Ok(Allowed::Always),
        [pdb] => *pdb,
        _ => return Err(more_than_one_budget()),
    };
    let name = pdb.metadata.name.clone().unwrap_or_default();
    if !is_pod_ready(&pod) && unhealthy_pod_may_go(pdb) {
        return Ok(Allowed::IfUnchanged(still_processing(&name)));
    }
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    take_disruption(store, pdb.clone(), &pod_name, dry_run)?;
    Ok(Allowed::Always)
}

/// The eviction's mark on the pod before its delete: DisruptionTarget=True, as kube's
/// `addConditionAndDeletePod` sets it.
pub fn mark(pod: &mut Value, _eviction: &Value) -> Result<(), ApiError> {
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let conditions = pod["status"]["conditions"].as_array().cloned();
    let mut conditions = conditions.unwrap_or_default();
    let target = json!({
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    });
    match conditions
        .iter_mut()
        .find(|c| c["type"] == "DisruptionTarget")
    {
        Some(existing) => {
            if existing["status"] != "True" {
                existing["lastTransitionTime"] = json!(now);
            }
            for field in ["status", "reason", "message"] {
                existing[field] = target[field].clone();
            }
        }
        None => {
            let mut target = target;
            target["lastTransitionTime"] = json!(now);
            conditions.push(target);
        }
    }
    pod["status"]["conditions"] = json!(conditions);
    Ok(())
}

/// Whether an unready pod may go without taking a disruption: always under AlwaysAllow, else
/// (IfHealthyBudget, the default) while the budget has the healthy pods it needs.
fn unhealthy_pod_may_go(pdb: &PodDisruptionBudget) -> bool {
    let policy = pdb
        .spec
        .as_ref()
        .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref());
    let status = pdb.status.clone().unwrap_or_default();
    policy == Some("AlwaysAllow")
        || (status.current_healthy >= status.desired_healthy && status.desired_healthy > 0)
}

/// kube's shouldEnforceResourceVersion: a pod not yet finished nor being deleted goes only as
/// it was judged.
fn should_enforce_resource_version(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// checkAndDecrement under kube's conflict retries: the budget read again after a conflict.
fn take_disruption(
    store: &Store,
    mut pdb: PodDisruptionBudget,
    pod: &str,
    dry_run: bool,
) -> Result<(), ApiError> {
    let namespace = pdb.metadata.namespace.clone().unwrap_or_default();
    let name = pdb.metadata.name.clone().unwrap_or_default();
    for _ in 0..CONFLICT_RETRIES {
        match check_and_decrement(store, pdb, pod, dry_run) {
            Err(err) if err.reason == "Conflict" => {
                pdb = store
                    .get(&namespace, &name)?
                    .ok_or_else(|| ApiError::not_found("policy", "poddisruptionbudgets", &name))?;
            }
            done => return done,
        }
    }
    Err(ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "Timeout",
        format!("Timeout: couldn't update PodDisruptionBudget \"{name}\" due to conflicts"),
    )
    .with_details(json!({"retryAfterSeconds": 10})))
}

/// One disruption taken from the budget, or kube's refusal.
fn check_and_decrement(
    store: &Store,
    mut pdb: PodDisruptionBudget,
    pod: &str,
    dry_run: bool,
) -> Result<(), ApiError> {
    let name = pdb.metadata.name.clone().unwrap_or_default();
    let generation = pdb.metadata.generation.unwrap_or(0);
    let status = pdb.status.get_or_insert_with(Default::default);
    if status.observed_generation.unwrap_or(0) < generation {
        return Err(still_processing(&name));
    }
    let disrupted = status.disrupted_pods.as_ref().map_or(0, |d| d.len());
    if status.disruptions_allowed < 0 {
        return Err(budget_forbidden(
            &name,
            "pdb disruptions allowed is negative",
        ));
    }
    if disrupted > MAX_DISRUPTED_POD_SIZE {
        return Err(budget_forbidden(
            &name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if status.disruptions_allowed == 0 {
        let cause = format!(
            "The disruption budget {name} needs {} healthy pods and has {} currently",
            status.desired_healthy, status.current_healthy
        );
        return Err(too_many_requests(&cause, 0));
    }
    let now = Timestamp::now();
    status.disruptions_allowed -= 1;
    if status.disruptions_allowed == 0 {
        update_disruption_allowed_condition(status, now);
    }
    if dry_run {
        return Ok(());
    }
    let disrupted = status.disrupted_pods.get_or_insert_with(Default::default);
    disrupted.insert(pod.to_owned(), Time(now));
    store.update_status(pdb)?;
    Ok(())
}

/// kube's NewTooManyRequests with the DisruptionBudget cause.
fn too_many_requests(cause: &str, retry_after_seconds: u32) -> ApiError {
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    if retry_after_seconds > 0 {
        details["retryAfterSeconds"] = json!(retry_after_seconds);
    }
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    )
    .with_details(details)
}

/// createTooManyRequestsError: the budget has not caught up with its spec, or the pod changed.
fn still_processing(pdb: &str) -> ApiError {
    let cause = format!("The disruption budget {pdb} is still being processed by the server.");
    too_many_requests(&cause, 10)
}

/// The conflict of a pod that changed after its eviction was judged.
fn pod_changed(pod: &Pod) -> ApiError {
    let name = pod.metadata.name.clone().unwrap_or_default();
    ApiError::conflict(
        "",
        "pods",
        &name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )
}

fn more_than_one_budget() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "",
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
    )
}

/// kube's NewForbidden on `poddisruptionbudget.policy`.
fn budget_forbidden(name: &str, why: &str) -> ApiError {
    ApiError::forbidden(format!(
        "poddisruptionbudget.policy \"{name}\" is forbidden: {why}"
    ))
    .with_details(json!({"name": name, "group": "policy", "kind": "poddisruptionbudget"}))
}
