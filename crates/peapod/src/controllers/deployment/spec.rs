//! The Deployment and ReplicaSet fields the decisions read. An object read from the API
//! server is defaulted; what may still be unset reads as kube's default (1 replica, the
//! RollingUpdate strategy with 25% surge and unavailability). progressDeadlineSeconds and
//! revisionHistoryLimit stay optional: unset means no deadline and no limit, as kube's helpers say.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controllers::replicaset::status::desired_replicas;

/// `apps.RollingUpdateDeploymentStrategyType`.
pub const ROLLING_UPDATE: &str = "RollingUpdate";
/// `apps.RecreateDeploymentStrategyType`.
pub const RECREATE: &str = "Recreate";

const DEFAULT_ROLLING_PARAMETER: &str = "25%";

fn spec(d: &Deployment) -> Option<&DeploymentSpec> {
    d.spec.as_ref()
}

/// `*d.Spec.Replicas`, which the API server defaults to 1.
pub fn deployment_replicas(d: &Deployment) -> i32 {
    spec(d).and_then(|s| s.replicas).unwrap_or(1)
}

/// `d.Spec.Template`.
pub fn template(d: &Deployment) -> PodTemplateSpec {
    spec(d).map(|s| s.template.clone()).unwrap_or_default()
}

/// `d.Spec.Strategy.Type`, RollingUpdate when unset.
pub fn strategy_type(d: &Deployment) -> &str {
    spec(d)
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or(ROLLING_UPDATE)
}

/// `IsRollingUpdate`.
pub fn is_rolling_update(d: &Deployment) -> bool {
    strategy_type(d) == ROLLING_UPDATE
}

/// `rollingUpdate.maxSurge` and `rollingUpdate.maxUnavailable`, each 25% when unset.
pub fn rolling_parameters(d: &Deployment) -> (IntOrString, IntOrString) {
    let rolling = spec(d)
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let or_default = |value: Option<&IntOrString>| {
        value
            .cloned()
            .unwrap_or_else(|| IntOrString::String(DEFAULT_ROLLING_PARAMETER.into()))
    };
    (
        or_default(rolling.and_then(|r| r.max_surge.as_ref())),
        or_default(rolling.and_then(|r| r.max_unavailable.as_ref())),
    )
}

pub fn min_ready_seconds(d: &Deployment) -> i32 {
    spec(d).and_then(|s| s.min_ready_seconds).unwrap_or(0)
}

pub fn paused(d: &Deployment) -> bool {
    spec(d).and_then(|s| s.paused).unwrap_or(false)
}

pub fn progress_deadline_seconds(d: &Deployment) -> Option<i32> {
    spec(d).and_then(|s| s.progress_deadline_seconds)
}

pub fn revision_history_limit(d: &Deployment) -> Option<i32> {
    spec(d).and_then(|s| s.revision_history_limit)
}

/// The Deployment's status, empty when it has none yet.
pub fn status(d: &Deployment) -> DeploymentStatus {
    d.status.clone().unwrap_or_default()
}

/// `*rs.Spec.Replicas` (defaulted to 1 by the API server).
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    desired_replicas(rs)
}

/// `rs.Status.Replicas`.
pub fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

/// `rs.Status.ReadyReplicas`.
pub fn rs_ready_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// `rs.Status.AvailableReplicas`.
pub fn rs_available_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}
