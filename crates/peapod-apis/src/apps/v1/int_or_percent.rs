//! kube's apps validation of int-or-percent bounds (ValidatePositiveIntOrPercent,
//! IsNotMoreThan100Percent, getIntOrPercentValue), with values printed as kube prints them.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_api::validation::names::regex_error;
use peapod_api::validation::{go_quote, BadValue, FieldError, FieldPath};

use crate::apps::v1::workload::non_negative;

const PERCENT_MESSAGE: &str =
    "a valid percent string must be a numeric string followed by an ending '%'";
const PERCENT_FORMAT: &str = "[0-9]+%";

/// ValidatePositiveIntOrPercent.
pub fn positive_int_or_percent(value: &IntOrString, path: &FieldPath) -> Vec<FieldError> {
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
pub fn not_more_than_100_percent(value: &IntOrString, path: &FieldPath) -> Option<FieldError> {
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
pub fn int_or_percent_value(value: &IntOrString) -> i64 {
    match value {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(text) => percent(text).unwrap_or_else(|| text.parse().unwrap_or(0)),
    }
}

/// An IntOrString as kube's field errors print it: Go's `%#v` of `intstr.IntOrString`.
pub struct GoIntOrString<'a>(pub &'a IntOrString);

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
