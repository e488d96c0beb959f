//! kube's validation of a Deployment's `spec.strategy` (ValidateDeploymentStrategy,
//! ValidateRollingUpdateDeployment), its int-or-percent bounds checked by
//! [`crate::apps::v1::int_or_percent`].

use k8s_openapi::api::apps::v1::{DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_api::validation::{FieldError, FieldPath};
use serde_json::json;

use crate::apps::v1::int_or_percent::{
    int_or_percent_value, not_more_than_100_percent, positive_int_or_percent, GoIntOrString,
};

pub const RECREATE: &str = "Recreate";
pub const ROLLING_UPDATE: &str = "RollingUpdate";

/// ValidateDeploymentStrategy, `path` being `spec.strategy`.
pub fn validate_strategy(strategy: &DeploymentStrategy, path: &FieldPath) -> Vec<FieldError> {
    let rolling_path = path.child("rollingUpdate");
    match (strategy.type_.as_deref(), &strategy.rolling_update) {
        (Some(RECREATE), None) => Vec::new(),
        (Some(RECREATE), Some(_)) => vec![FieldError::forbidden(
            &rolling_path,
            "may not be specified when strategy `type` is 'Recreate'",
        )],
        (Some(ROLLING_UPDATE), None) => vec![FieldError::required(
            &rolling_path,
            "this should be defaulted and never be nil",
        )],
        (Some(ROLLING_UPDATE), Some(update)) => validate_rolling_update(update, &rolling_path),
        _ => vec![FieldError::not_supported(
            path,
            json!(strategy),
            &[RECREATE, ROLLING_UPDATE],
        )],
    }
}

/// ValidateRollingUpdateDeployment; Go's values are never nil once defaulted, a missing one
/// is the zero IntOrString.
fn validate_rolling_update(update: &RollingUpdateDeployment, path: &FieldPath) -> Vec<FieldError> {
    let zero = IntOrString::Int(0);
    let unavailable = update.max_unavailable.as_ref().unwrap_or(&zero);
    let surge = update.max_surge.as_ref().unwrap_or(&zero);
    let unavailable_path = path.child("maxUnavailable");
    let mut errors = positive_int_or_percent(unavailable, &unavailable_path);
    errors.extend(positive_int_or_percent(surge, &path.child("maxSurge")));
    if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
        errors.push(FieldError::invalid(
            &unavailable_path,
            GoIntOrString(unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    errors.extend(not_more_than_100_percent(unavailable, &unavailable_path));
    errors
}
