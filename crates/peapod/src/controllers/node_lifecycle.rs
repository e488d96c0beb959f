//! The taints kube's node lifecycle controller keeps on a node from its state
//! (TaintNodesByCondition, `doNoScheduleTaintingPass`): a NoSchedule taint for each condition
//! that should keep new pods off (Ready False or Unknown, memory, disk or pid pressure, network
//! unavailable) and for a cordon, so the scheduler's TaintToleration filter and the pods'
//! tolerations decide. Its NoExecute pass never taints here: with every node of the one zone
//! not ready, kube's controller enters full disruption and stops tainting for eviction.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::controllers::retries::{key_of, Retries};

/// The controller's name, its field manager.
pub const NAME: &str = "node-controller";

/// The condition statuses that taint a node, and their taint keys (kube's
/// `nodeConditionToTaintKeyStatusMap`).
const CONDITION_TAINTS: &[(&str, &str, &str)] = &[
    ("Ready", "False", "node.kubernetes.io/not-ready"),
    ("Ready", "Unknown", "node.kubernetes.io/unreachable"),
    (
        "MemoryPressure",
        "True",
        "node.kubernetes.io/memory-pressure",
    ),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    (
        "NetworkUnavailable",
        "True",
        "node.kubernetes.io/network-unavailable",
    ),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
];
/// `v1.TaintNodeUnschedulable`, for a cordoned node.
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const NO_SCHEDULE: &str = "NoSchedule";

/// The NoSchedule taint keys the node's state calls for.
pub fn wanted_keys(node: &Node) -> Vec<&'static str> {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_deref());
    let mut keys: Vec<&'static str> = CONDITION_TAINTS
        .iter()
        .filter(|(type_, status, _)| {
            conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == *type_ && c.status == *status)
        })
        .map(|(_, _, key)| *key)
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        keys.push(UNSCHEDULABLE);
    }
    keys
}

/// Whether the controller owns this taint: a NoSchedule taint of one of its keys.
fn is_managed(taint: &Taint) -> bool {
    taint.effect == NO_SCHEDULE
        && (taint.key == UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == taint.key))
}

/// The node's taints with its managed ones swapped for those its state wants
/// (`SwapNodeControllerTaint`: new ones appended with the time they were added); None when
/// nothing changes.
pub fn reconciled_taints(node: &Node, now: Timestamp) -> Option<Vec<Taint>> {
    let current = node.spec.as_ref().and_then(|s| s.taints.clone());
    let current = current.unwrap_or_default();
    let wanted = wanted_keys(node);
    let has = |key: &str| current.iter().any(|t| is_managed(t) && t.key == key);
    let to_add: Vec<&str> = wanted.iter().copied().filter(|k| !has(k)).collect();
    let stale = |t: &Taint| is_managed(t) && !wanted.contains(&t.key.as_str());
    if to_add.is_empty() && !current.iter().any(stale) {
        return None;
    }
    let mut taints: Vec<Taint> = current.iter().filter(|t| !stale(t)).cloned().collect();
    taints.extend(to_add.into_iter().map(|key| Taint {
        key: key.to_owned(),
        effect: NO_SCHEDULE.to_owned(),
        time_added: Some(Time(now)),
        value: None,
    }));
    Some(taints)
}

struct Context {
    client: Client,
    retries: Retries,
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let nodes = Api::<Node>::all(client.clone());
    let context = Arc::new(Context {
        client,
        retries: Retries::default(),
    });
    Controller::new(nodes, watcher::Config::default())
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "node lifecycle controller");
            }
        })
        .await;
}

/// Writes the swapped taints with the resourceVersion read, so a concurrent change to the
/// node (a user's `kubectl taint`) is a conflict and a retry rather than lost.
async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    let key = key_of(node.as_ref());
    if let Some(taints) = reconciled_taints(&node, Timestamp::now()) {
        let nodes = Api::<Node>::all(ctx.client.clone());
        let patch = json!({
            "metadata": {"resourceVersion": node.resource_version()},
            "spec": {"taints": taints},
        });
        let params = PatchParams::default();
        nodes
            .patch(&node.name_any(), &params, &Patch::Merge(&patch))
            .await?;
    }
    ctx.retries.succeeded(&key);
    Ok(Action::await_change())
}

fn error_policy(node: Arc<Node>, err: &kube::Error, ctx: Arc<Context>) -> Action {
    let key = key_of(node.as_ref());
    tracing::info!(node = %key, %err, "node lifecycle controller: tainting failed");
    Action::requeue(ctx.retries.failed(&key).min(Duration::from_secs(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(conditions: serde_json::Value, spec: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "spec": spec,
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    fn keys(taints: &[Taint]) -> Vec<String> {
        taints
            .iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect()
    }

    #[test]
    fn conditions_and_cordons_become_no_schedule_taints() {
        let healthy = json!([{"type": "Ready", "status": "True"},
                             {"type": "DiskPressure", "status": "False"}]);
        assert!(reconciled_taints(&node(healthy.clone(), json!({})), Timestamp::now()).is_none());
        let pressed = json!([{"type": "Ready", "status": "False"},
                             {"type": "DiskPressure", "status": "True"}]);
        let taints = reconciled_taints(&node(pressed, json!({})), Timestamp::now()).unwrap();
        assert_eq!(
            keys(&taints),
            [
                "node.kubernetes.io/not-ready:NoSchedule",
                "node.kubernetes.io/disk-pressure:NoSchedule"
            ]
        );
        assert!(taints.iter().all(|t| t.time_added.is_some()));
        let cordoned = node(healthy, json!({"unschedulable": true}));
        let taints = reconciled_taints(&cordoned, Timestamp::now()).unwrap();
        assert_eq!(
            keys(&taints),
            ["node.kubernetes.io/unschedulable:NoSchedule"]
        );
    }

    #[test]
    fn only_its_own_stale_taints_go_and_others_stay() {
        let spec = json!({"taints": [
            {"key": "dedicated", "value": "infra", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]});
        let ready = json!([{"type": "Ready", "status": "True"}]);
        let taints = reconciled_taints(&node(ready.clone(), spec), Timestamp::now()).unwrap();
        assert_eq!(
            keys(&taints),
            [
                "dedicated:NoSchedule",
                "node.kubernetes.io/not-ready:NoExecute"
            ]
        );
        let settled = json!({"unschedulable": true, "taints": [
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]});
        assert!(reconciled_taints(&node(ready, settled), Timestamp::now()).is_none());
    }
}
