//! Deployment: served as kube-apiserver serves apps/v1 deployments (pkg/registry/apps/
//! deployment): apps/v1's defaults (one replica, a RollingUpdate of 25% each way, ten old
//! ReplicaSets kept, a 600 s progress deadline) and the pod template's, validation with kube's
//! messages, the selector immutable, a generation bumped by spec changes, the `status` and
//! `scale` subresources, and kubectl's columns. The controller that rolls the ReplicaSets out
//! lives in the agent.

mod rollout;
mod table;
mod validation;

#[cfg(test)]
mod tests;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy, WORKLOAD_SCALE};
use peapod_apiserver::table::Column;
use serde_json::Value;

use super::workload;
use rollout::ROLLING_UPDATE;

const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
const DEFAULT_MAX_UNAVAILABLE_AND_SURGE: &str = "25%";

pub fn kind() -> Kind {
    Kind::of(DeploymentKindStrategy)
        .short_names(&["deploy"])
        .categories(&["all"])
        .with_status()
        .with_scale(WORKLOAD_SCALE)
}

/// kube's `deploymentStrategy`, named apart from the object's own `DeploymentStrategy`.
pub struct DeploymentKindStrategy;

impl KindStrategy for DeploymentKindStrategy {
    type Object = Deployment;

    fn tracks_generation(&self) -> bool {
        true
    }

    /// kube's deploymentStatusStrategy resets the spec and labels, not the annotations: the
    /// controller records the revision there with its status writes.
    fn status_write_metadata(&self) -> &'static [&'static str] {
        &["annotations", "finalizers", "ownerReferences"]
    }

    /// kube's deploymentStrategy: annotations are copied to the ReplicaSets, so changing them
    /// is a new generation as a spec change is.
    fn annotations_bump_generation(&self) -> bool {
        true
    }

    /// apps/v1's SetDefaults_Deployment and SetDefaults_PodSpec on the template; Go's spec and
    /// strategy are values, so missing ones are defaulted as empty ones.
    fn default(&self, deployment: &mut Deployment) {
        let spec = deployment.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        default_strategy(spec.strategy.get_or_insert_with(Default::default));
        spec.revision_history_limit
            .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
        spec.progress_deadline_seconds
            .get_or_insert(DEFAULT_PROGRESS_DEADLINE_SECONDS);
        workload::default_template(&mut spec.template);
    }

    fn validate(&self, deployment: &Deployment) -> Vec<FieldError> {
        validation::validate(deployment)
    }

    fn validate_update(&self, new: &Deployment, old: &Deployment) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    fn warnings(&self, deployment: &Deployment) -> Vec<String> {
        validation::warnings(deployment)
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, deployment: &Deployment) -> Vec<Value> {
        table::cells(deployment)
    }
}

/// A RollingUpdate unless told otherwise, its bounds 25% each when not given; a Recreate
/// gets no rollingUpdate.
fn default_strategy(strategy: &mut DeploymentStrategy) {
    if strategy.type_.as_deref().unwrap_or_default().is_empty() {
        strategy.type_ = Some(ROLLING_UPDATE.to_owned());
    }
    if strategy.type_.as_deref() == Some(ROLLING_UPDATE) {
        let update = strategy.rolling_update.get_or_insert_with(Default::default);
        let quarter = || IntOrString::String(DEFAULT_MAX_UNAVAILABLE_AND_SURGE.to_owned());
        update.max_unavailable.get_or_insert_with(quarter);
        update.max_surge.get_or_insert_with(quarter);
    }
}
