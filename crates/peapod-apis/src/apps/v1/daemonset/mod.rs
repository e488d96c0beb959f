//! DaemonSet: served as kube-apiserver serves apps/v1 daemonsets (pkg/registry/apps/
//! daemonset): apps/v1's defaults (a RollingUpdate of one unavailable pod and no surge, ten
//! revisions kept) and the pod template's, validation with kube's messages, the selector
//! immutable, a generation bumped by spec changes and a template generation (the
//! `deprecated.daemonset.template.generation` annotation) by template changes, the `status`
//! subresource, and kubectl's columns. The controller that places the pods lives in the agent.

mod table;
mod validation;

#[cfg(test)]
mod tests;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetUpdateStrategy};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::Column;
use serde_json::Value;

use super::workload;

pub const ROLLING_UPDATE: &str = "RollingUpdate";
pub const ON_DELETE: &str = "OnDelete";
/// `appsv1.DeprecatedTemplateGeneration`: apps/v1's home of the internal
/// `spec.templateGeneration`.
pub const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";
const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

pub fn kind() -> Kind {
    Kind::of(DaemonSetStrategy)
        .short_names(&["ds"])
        .categories(&["all"])
        .with_status()
}

pub struct DaemonSetStrategy;

impl KindStrategy for DaemonSetStrategy {
    type Object = DaemonSet;

    fn tracks_generation(&self) -> bool {
        true
    }

    /// apps/v1's SetDefaults_DaemonSet and SetDefaults_PodSpec on the template; Go's spec and
    /// strategy are values, so missing ones are defaulted as empty ones.
    fn default(&self, ds: &mut DaemonSet) {
        let spec = ds.spec.get_or_insert_with(Default::default);
        default_strategy(spec.update_strategy.get_or_insert_with(Default::default));
        spec.revision_history_limit
            .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
        workload::default_template(&mut spec.template);
    }

    /// The strategy's PrepareForCreate: the template generation starts at 1.
    fn prepare_for_create(&self, ds: &mut DaemonSet) {
        let generation = template_generation(ds).filter(|g| *g >= 1).unwrap_or(1);
        set_template_generation(ds, generation);
    }

    /// The strategy's PrepareForUpdate: the template generation is the server's, one more
    /// when the template changed.
    fn prepare_for_update(&self, new: &mut DaemonSet, old: &DaemonSet) {
        let old_generation = template_generation(old).unwrap_or(0);
        let template = |ds: &DaemonSet| ds.spec.as_ref().map(|s| s.template.clone());
        let generation = match template(new) == template(old) {
            true => old_generation,
            false => old_generation + 1,
        };
        set_template_generation(new, generation);
    }

    fn validate(&self, ds: &DaemonSet) -> Vec<FieldError> {
        validation::validate(ds)
    }

    fn validate_update(&self, new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    fn warnings(&self, ds: &DaemonSet) -> Vec<String> {
        validation::warnings(ds)
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, ds: &DaemonSet) -> Vec<Value> {
        table::cells(ds)
    }
}

/// A RollingUpdate unless told otherwise, of one unavailable pod and no surge when not given.
fn default_strategy(strategy: &mut DaemonSetUpdateStrategy) {
    if strategy.type_.as_deref().unwrap_or_default().is_empty() {
        strategy.type_ = Some(ROLLING_UPDATE.to_owned());
    }
    if strategy.type_.as_deref() == Some(ROLLING_UPDATE) {
        let update = strategy.rolling_update.get_or_insert_with(Default::default);
        update.max_unavailable.get_or_insert(IntOrString::Int(1));
        update.max_surge.get_or_insert(IntOrString::Int(0));
    }
}

/// The template generation the annotation holds, if it is a number.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    let annotations = ds.metadata.annotations.as_ref()?;
    annotations.get(TEMPLATE_GENERATION)?.parse().ok()
}

fn set_template_generation(ds: &mut DaemonSet, generation: i64) {
    let annotations = ds.metadata.annotations.get_or_insert_with(Default::default);
    annotations.insert(TEMPLATE_GENERATION.to_owned(), generation.to_string());
}
