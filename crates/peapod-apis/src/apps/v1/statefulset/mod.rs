//! StatefulSet: served as kube-apiserver serves apps/v1 statefulsets (pkg/registry/apps/
//! statefulset): apps/v1's defaults (OrderedReady pods, a RollingUpdate from partition 0, claims
//! retained, one replica, ten revisions kept) and the pod template's and claim templates',
//! validation with kube's messages (only replicas, ordinals, template, updateStrategy,
//! persistentVolumeClaimRetentionPolicy and minReadySeconds may change), a generation bumped by
//! spec changes, the `status` and `scale` subresources, and kubectl's columns. The controller
//! that makes the ordinal pods lives in the agent.

mod table;
mod validation;

#[cfg(test)]
mod tests;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy, WORKLOAD_SCALE};
use peapod_apiserver::table::Column;
use serde_json::Value;

use super::workload;
use crate::core::v1::persistentvolumeclaim::PersistentVolumeClaimStrategy;

pub const ROLLING_UPDATE: &str = "RollingUpdate";
pub const ON_DELETE: &str = "OnDelete";
pub const ORDERED_READY: &str = "OrderedReady";
pub const PARALLEL: &str = "Parallel";
pub const RETAIN: &str = "Retain";
pub const DELETE: &str = "Delete";
const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

pub fn kind() -> Kind {
    Kind::of(StatefulSetStrategy)
        .short_names(&["sts"])
        .categories(&["all"])
        .with_status()
        .with_scale(WORKLOAD_SCALE)
}

pub struct StatefulSetStrategy;

impl KindStrategy for StatefulSetStrategy {
    type Object = StatefulSet;

    fn tracks_generation(&self) -> bool {
        true
    }

    /// apps/v1's SetDefaults_StatefulSet, SetDefaults_PodSpec on the template and
    /// SetDefaults_PersistentVolumeClaim on the claim templates; Go's spec and strategy are
    /// values, so missing ones are defaulted as empty ones.
    fn default(&self, sts: &mut StatefulSet) {
        let spec = sts.spec.get_or_insert_with(Default::default);
        if spec
            .pod_management_policy
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            spec.pod_management_policy = Some(ORDERED_READY.to_owned());
        }
        default_strategy(spec.update_strategy.get_or_insert_with(Default::default));
        default_retention(spec);
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit
            .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
        workload::default_template(&mut spec.template);
        for claim in spec.volume_claim_templates.iter_mut().flatten() {
            PersistentVolumeClaimStrategy.default(claim);
        }
    }

    fn validate(&self, sts: &StatefulSet) -> Vec<FieldError> {
        validation::validate(sts)
    }

    fn validate_update(&self, new: &StatefulSet, old: &StatefulSet) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    fn warnings(&self, sts: &StatefulSet) -> Vec<String> {
        let template = sts.spec.as_ref().map(|s| &s.template);
        workload::warnings(&sts.metadata, template)
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, sts: &StatefulSet) -> Vec<Value> {
        table::cells(sts)
    }
}

/// A RollingUpdate from partition 0 unless told otherwise.
fn default_strategy(strategy: &mut StatefulSetUpdateStrategy) {
    if strategy.type_.as_deref().unwrap_or_default().is_empty() {
        strategy.type_ = Some(ROLLING_UPDATE.to_owned());
        strategy.rolling_update.get_or_insert_with(Default::default);
    }
    if strategy.type_.as_deref() == Some(ROLLING_UPDATE) {
        if let Some(update) = strategy.rolling_update.as_mut() {
            update.partition.get_or_insert(0);
        }
    }
}

/// StatefulSetAutoDeletePVC (on in 1.32): claims are retained unless told otherwise.
fn default_retention(spec: &mut StatefulSetSpec) {
    let policy = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(Default::default);
    for when in [&mut policy.when_deleted, &mut policy.when_scaled] {
        if when.as_deref().unwrap_or_default().is_empty() {
            *when = Some(RETAIN.to_owned());
        }
    }
}
