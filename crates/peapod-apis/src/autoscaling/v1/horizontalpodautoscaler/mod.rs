//! HorizontalPodAutoscaler at autoscaling/v1: the autoscaling/v2 objects of the store seen
//! through the older version (one object, two versions, as in kube-apiserver), converted
//! on every read and write by [`HorizontalPodAutoscalerConversion`]. Defaults are v1's (one
//! replica at least); validation, columns and the status rules are the stored version's,
//! judged on the converted object as kube judges its internal one.

mod annotations;
mod conversion;

#[cfg(test)]
mod tests;

use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy, VersionConversion};
use peapod_apiserver::table::Column;
use serde_json::Value;

use crate::autoscaling::v2::horizontalpodautoscaler::{self as v2, table};

pub use annotations::{BEHAVIOR, CONDITIONS, METRIC_SPECS, METRIC_STATUSES};
pub use conversion::HorizontalPodAutoscalerConversion;

pub fn kind() -> Kind {
    Kind::of(HorizontalPodAutoscalerStrategy)
        .stored_as(HorizontalPodAutoscalerConversion)
        .short_names(&["hpa"])
        .categories(&["all"])
        .with_status()
}

pub struct HorizontalPodAutoscalerStrategy;

/// `hpa` in the stored version.
fn stored(
    hpa: &HorizontalPodAutoscaler,
) -> k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler {
    HorizontalPodAutoscalerConversion.to_stored(hpa.clone())
}

/// The current metrics and conditions annotations of `new` set to those of `old` (none when
/// there is no `old`).
fn keep_held_status(new: &mut HorizontalPodAutoscaler, old: Option<&HorizontalPodAutoscaler>) {
    let old_annotations = old.and_then(|o| o.metadata.annotations.as_ref());
    let annotations = new
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    for key in [METRIC_STATUSES, CONDITIONS] {
        match old_annotations.and_then(|a| a.get(key)) {
            Some(value) => annotations.insert(key.to_owned(), value.clone()),
            None => annotations.remove(key),
        };
    }
    if annotations.is_empty() {
        new.metadata.annotations = None;
    }
}

impl KindStrategy for HorizontalPodAutoscalerStrategy {
    type Object = HorizontalPodAutoscaler;

    /// autoscaling/v1's SetDefaults_HorizontalPodAutoscaler.
    fn default(&self, hpa: &mut HorizontalPodAutoscaler) {
        hpa.spec
            .get_or_insert_with(Default::default)
            .min_replicas
            .get_or_insert(1);
    }

    /// The status held in annotations is the server's too: a create starts without it.
    fn prepare_for_create(&self, hpa: &mut HorizontalPodAutoscaler) {
        hpa.status = Some(Default::default());
        keep_held_status(hpa, None);
    }

    /// A spec write keeps the stored status, the part held in annotations included.
    fn prepare_for_update(&self, new: &mut HorizontalPodAutoscaler, old: &HorizontalPodAutoscaler) {
        keep_held_status(new, Some(old));
    }

    /// Judged as converted, before the stored version's defaults (kube's internal object).
    fn validate(&self, hpa: &HorizontalPodAutoscaler) -> Vec<FieldError> {
        v2::validate(&conversion::to_v2(hpa.clone()))
    }

    fn validate_update(
        &self,
        new: &HorizontalPodAutoscaler,
        old: &HorizontalPodAutoscaler,
    ) -> Vec<FieldError> {
        v2::validate_update(&conversion::to_v2(new.clone()), &stored(old))
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, hpa: &HorizontalPodAutoscaler) -> Vec<Value> {
        table::cells(&stored(hpa))
    }
}
