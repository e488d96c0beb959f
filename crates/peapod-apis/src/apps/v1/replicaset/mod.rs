//! ReplicaSet: served as kube-apiserver serves apps/v1 replicasets (pkg/registry/apps/
//! replicaset): replicas defaulted to 1 and the pod template's spec as a pod template's,
//! validation with kube's messages, the selector immutable, a generation bumped by spec
//! changes, the `status` and `scale` subresources, and kubectl's columns. The controller that
//! makes the pods lives in the agent.

mod table;
mod validation;

#[cfg(test)]
mod tests;

use k8s_openapi::api::apps::v1::ReplicaSet;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy, WORKLOAD_SCALE};
use peapod_apiserver::table::Column;
use serde_json::{json, Value};

use super::workload;

pub fn kind() -> Kind {
    Kind::of(ReplicaSetStrategy)
        .short_names(&["rs"])
        .categories(&["all"])
        .with_status()
        .with_scale(WORKLOAD_SCALE)
}

pub struct ReplicaSetStrategy;

impl KindStrategy for ReplicaSetStrategy {
    type Object = ReplicaSet;

    fn tracks_generation(&self) -> bool {
        true
    }

    /// apps/v1's SetDefaults_ReplicaSet (one replica) and SetDefaults_PodSpec on the template;
    /// Go's spec and template are values, so a missing one is defaulted as an empty one.
    fn default(&self, rs: &mut ReplicaSet) {
        let spec = rs.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        workload::default_template(spec.template.get_or_insert_with(Default::default));
    }

    fn validate(&self, rs: &ReplicaSet) -> Vec<FieldError> {
        validation::validate(rs)
    }

    fn validate_update(&self, new: &ReplicaSet, old: &ReplicaSet) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    fn warnings(&self, rs: &ReplicaSet) -> Vec<String> {
        validation::warnings(rs)
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, rs: &ReplicaSet) -> Vec<Value> {
        table::cells(rs)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }

    fn field(&self, rs: &ReplicaSet, label: &str) -> Option<String> {
        match label {
            "status.replicas" => {
                let replicas = rs.status.as_ref().map_or(0, |s| s.replicas);
                Some(json!(replicas).to_string())
            }
            _ => None,
        }
    }
}
