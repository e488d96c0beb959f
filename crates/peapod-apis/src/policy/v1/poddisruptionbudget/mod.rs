//! PodDisruptionBudget: served as kube-apiserver serves policy/v1 poddisruptionbudgets
//! (pkg/registry/policy/poddisruptionbudget): validation with kube's messages, a generation
//! bumped by spec changes, an empty status on create, the `status` subresource and kubectl's
//! columns. [`budget`] holds the rules that judge a pod against its budgets (evictions,
//! preemption, the disruption controller); [`eviction`] guards pods/eviction with them.

pub mod budget;
pub mod eviction;
mod table;
mod validation;

#[cfg(test)]
mod tests;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::Column;
use serde_json::Value;

pub fn kind() -> Kind {
    Kind::of(PodDisruptionBudgetStrategy)
        .short_names(&["pdb"])
        .with_status()
}

pub struct PodDisruptionBudgetStrategy;

impl KindStrategy for PodDisruptionBudgetStrategy {
    type Object = PodDisruptionBudget;

    fn tracks_generation(&self) -> bool {
        true
    }

    /// kube's PrepareForCreate: the status starts empty, its counts at zero.
    fn prepare_for_create(&self, pdb: &mut PodDisruptionBudget) {
        pdb.status = Some(PodDisruptionBudgetStatus::default());
    }

    fn validate(&self, pdb: &PodDisruptionBudget) -> Vec<FieldError> {
        validation::validate(pdb)
    }

    fn validate_update(
        &self,
        new: &PodDisruptionBudget,
        old: &PodDisruptionBudget,
    ) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, pdb: &PodDisruptionBudget) -> Vec<Value> {
        table::cells(pdb)
    }
}
