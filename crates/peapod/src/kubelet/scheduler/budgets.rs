//! The PodDisruptionBudgets preemption respects, as kube-scheduler's PDB lister holds them:
//! fed from the API by [`watch`]; victims whose eviction would violate one are reprieved
//! first.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::Value;

use crate::kubelet::reflector::{Delta, Reflector};
use crate::kubelet::Context;

const BUDGETS: &str = "/apis/policy/v1/poddisruptionbudgets";

/// Every budget of the cluster, by `namespace/name`.
#[derive(Debug, Default)]
pub struct Budgets(Mutex<BTreeMap<String, PodDisruptionBudget>>);

impl Budgets {
    /// The budgets as they are now.
    pub fn all(&self) -> Vec<PodDisruptionBudget> {
        let held = self.0.lock().expect("budgets lock");
        held.values().cloned().collect()
    }

    fn replace(&self, budgets: impl IntoIterator<Item = PodDisruptionBudget>) {
        let mut held = self.0.lock().expect("budgets lock");
        *held = budgets.into_iter().map(|b| (key(&b), b)).collect();
    }

    fn set(&self, budget: PodDisruptionBudget) {
        let mut held = self.0.lock().expect("budgets lock");
        held.insert(key(&budget), budget);
    }

    fn remove(&self, budget: &PodDisruptionBudget) {
        self.0.lock().expect("budgets lock").remove(&key(budget));
    }
}

fn key(budget: &PodDisruptionBudget) -> String {
    format!(
        "{}/{}",
        budget.metadata.namespace.as_deref().unwrap_or_default(),
        budget.metadata.name.as_deref().unwrap_or_default()
    )
}

fn decode(object: Value) -> Option<PodDisruptionBudget> {
    serde_json::from_value(object).ok()
}

/// Keeps the scheduler's budgets as the API shows them.
pub async fn watch(ctx: Arc<Context>) {
    let mut reflector = Reflector::new(ctx.client.clone(), BUDGETS, "");
    let budgets = ctx.scheduler.budgets();
    loop {
        match reflector.next().await {
            Delta::Listed(objects) => budgets.replace(objects.into_iter().filter_map(decode)),
            Delta::Changed(object) => decode(object).into_iter().for_each(|b| budgets.set(b)),
            Delta::Deleted(object) => decode(object).iter().for_each(|b| budgets.remove(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(namespace: &str, name: &str, allowed: i32) -> PodDisruptionBudget {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": namespace, "name": name},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": 0,
                       "desiredHealthy": 0, "expectedPods": 0},
        }))
        .unwrap()
    }

    #[test]
    fn budgets_are_listed_changed_and_removed_by_namespace_and_name() {
        let budgets = Budgets::default();
        budgets.replace([budget("a", "web", 1), budget("b", "web", 0)]);
        budgets.set(budget("a", "web", 0));
        budgets.remove(&budget("b", "web", 0));
        let held = budgets.all();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].status.as_ref().unwrap().disruptions_allowed, 0);
    }
}
