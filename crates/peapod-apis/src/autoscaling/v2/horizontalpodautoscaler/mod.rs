//! HorizontalPodAutoscaler at autoscaling/v2, the version kept in the store: served as
//! kube-apiserver 1.32 serves it (pkg/registry/autoscaling/horizontalpodautoscaler): v2's
//! defaults, kube's validation, the `status` subresource and kubectl's columns (no
//! `metadata.generation`: kube's HPA strategy keeps none). autoscaling/v1 reads and writes the same objects
//! (`super::super::v1::horizontalpodautoscaler`); the controller lives in the agent.

pub mod defaults;
pub mod table;
mod validation;

#[cfg(test)]
mod tests;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::Column;
use serde_json::Value;

pub use validation::{validate, validate_update};

pub fn kind() -> Kind {
    Kind::of(HorizontalPodAutoscalerStrategy)
        .short_names(&["hpa"])
        .categories(&["all"])
        .with_status()
}

pub struct HorizontalPodAutoscalerStrategy;

impl KindStrategy for HorizontalPodAutoscalerStrategy {
    type Object = HorizontalPodAutoscaler;

    fn default(&self, hpa: &mut HorizontalPodAutoscaler) {
        defaults::default(hpa);
    }

    /// PrepareForCreate: no status but the empty one, and no tolerance (HPAConfigurableTolerance
    /// is a later release's).
    fn prepare_for_create(&self, hpa: &mut HorizontalPodAutoscaler) {
        hpa.status = Some(Default::default());
        drop_tolerance(hpa, None);
    }

    fn prepare_for_update(&self, new: &mut HorizontalPodAutoscaler, old: &HorizontalPodAutoscaler) {
        drop_tolerance(new, Some(old));
    }

    fn validate(&self, hpa: &HorizontalPodAutoscaler) -> Vec<FieldError> {
        validate(hpa)
    }

    fn validate_update(
        &self,
        new: &HorizontalPodAutoscaler,
        old: &HorizontalPodAutoscaler,
    ) -> Vec<FieldError> {
        validate_update(new, old)
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, hpa: &HorizontalPodAutoscaler) -> Vec<Value> {
        table::cells(hpa)
    }
}

/// dropDisabledFields: the scaling rules' tolerance goes unless the stored object uses it.
fn drop_tolerance(new: &mut HorizontalPodAutoscaler, old: Option<&HorizontalPodAutoscaler>) {
    let rules = |hpa: &HorizontalPodAutoscaler| {
        let behavior = hpa.spec.as_ref().and_then(|s| s.behavior.clone());
        behavior
            .map(|b| [b.scale_up, b.scale_down])
            .unwrap_or_default()
    };
    let in_use = old.is_some_and(|old| rules(old).iter().flatten().any(|r| r.tolerance.is_some()));
    if in_use {
        return;
    }
    let behavior = new.spec.as_mut().and_then(|s| s.behavior.as_mut());
    for rules in behavior
        .into_iter()
        .flat_map(|b| [&mut b.scale_up, &mut b.scale_down])
        .flatten()
    {
        rules.tolerance = None;
    }
}
