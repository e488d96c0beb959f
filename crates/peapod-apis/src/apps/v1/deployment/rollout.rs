//! kube's validation of a Deployment's `spec.strategy` (ValidateDeploymentStrategy,
//! ValidateRollingUpdateDeployment, ValidatePositiveIntOrPercent, IsNotMoreThan100Percent),
//! with its int-or-percent values printed as kube prints them.

use k8s_openapi::api::apps::v1::{DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_api::validation::names::regex_error;
use peapod_api::validation::{go_quote, BadValue, FieldError, FieldPath};
use serde_json::json;

use crate::apps::v1::workload::non_negative;

pub const RECREATE: &str = "Recreate";
pub const ROLLING_UPDATE: &str = "RollingUpdate";
const PERCENT_MESSAGE: &str =
    "a valid percent string must be a numeric string followed by an ending '%'";
const PERCENT_FORMAT: &str = "[0-9]+%";

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

/// ValidatePositiveIntOrPercent.
fn positive_int_or_percent(value: &IntOrString, path: &FieldPath) -> Vec<FieldError> {
    match value {
        IntOrString::Int(n) => non_negative(*n, path).into_iter().collect(),
        IntOrString::String(text) if percent(text).is_none() => vec![FieldError::invalid(
            path,
            GoIntOrString(value),
            &regex_error(PERCENT_MESSAGE, PERCENT_FORMAT, &["1%", "93%"]),
        )],
        IntOrString::String(_) => Vec::new(),
    }
}

/// IsNotMoreThan100Percent: only a percentage has the bound.
fn not_more_than_100_percent(value: &IntOrString, path: &FieldPath) -> Option<FieldError> {
    let IntOrString::String(text) = value else {
        return None;
    };
    let over = percent(text).is_some_and(|percent| percent > 100);
    over.then(|| FieldError::invalid(path, GoIntOrString(value), "must not be greater than 100%"))
}

/// A valid percentage's number (`[0-9]+%`); Go's Atoi saturates on overflow.
fn percent(text: &str) -> Option<i64> {
    let digits = text.strip_suffix('%')?;
    let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    numeric.then(|| digits.parse().unwrap_or(i64::MAX))
}

/// getIntOrPercentValue: a percentage's number, else IntOrString.IntValue (Atoi of a string,
/// 0 when it is no number).
fn int_or_percent_value(value: &IntOrString) -> i64 {
    match value {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(text) => percent(text).unwrap_or_else(|| text.parse().unwrap_or(0)),
    }
}

/// An IntOrString as kube's field errors print it: Go's `%#v` of `intstr.IntOrString`.
struct GoIntOrString<'a>(&'a IntOrString);

impl BadValue for GoIntOrString<'_> {
    fn render(&self) -> String {
        let (kind, int, text) = match self.0 {
            IntOrString::Int(n) => (0, *n, ""),
            IntOrString::String(text) => (1, 0, text.as_str()),
        };
        format!(
            "intstr.IntOrString{{Type:{kind}, IntVal:{int}, StrVal:{}}}",
            go_quote(text)
        )
    }
}
