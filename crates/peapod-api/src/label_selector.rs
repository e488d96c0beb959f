//! metav1.LabelSelector (matchLabels and matchExpressions) as apimachinery reads it:
//! validated as `ValidateLabelSelector`, converted as `LabelSelectorAsSelector` and printed as
//! that selector's `String()` (`app=web,tier in (a,b)`), the form `kubectl get -o wide` and a
//! Scale's `status.selector` show.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::selector;
use crate::validation::{meta, names, FieldError, FieldPath};

/// Why a LabelSelector has no selector form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error("{0:?} is not a valid label selector operator")]
    Operator(String),
    #[error("{0}")]
    Requirement(#[from] selector::SelectorError),
}

/// ValidateLabelSelector with invalid label values refused (the strict form workloads use).
pub fn validate_label_selector(selector: &LabelSelector, path: &FieldPath) -> Vec<FieldError> {
    let mut errs =
        meta::validate_labels(selector.match_labels.as_ref(), &path.child("matchLabels"));
    let expressions = selector.match_expressions.iter().flatten();
    for (i, requirement) in expressions.enumerate() {
        let path = path.child("matchExpressions").index(i);
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                &path.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                &path.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid(
                &path.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        for msg in names::qualified_name(&requirement.key) {
            errs.push(FieldError::invalid(
                &path.child("key"),
                &requirement.key,
                &msg,
            ));
        }
        for (j, value) in values.iter().enumerate() {
            for msg in names::label_value(value) {
                errs.push(FieldError::invalid(
                    &path.child("values").index(j),
                    value,
                    &msg,
                ));
            }
        }
    }
    errs
}

/// Whether the selector has no requirement (it then selects everything).
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// `LabelSelectorAsSelector(...).String()`: the requirements sorted by key, `in`/`notin`
/// values sorted; "" for the empty selector.
pub fn to_selector_string(selector: &LabelSelector) -> Result<String, ConversionError> {
    let mut requirements: Vec<(String, String)> = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        requirements.push((key.clone(), format!("{key}={value}")));
    }
    for expression in selector.match_expressions.iter().flatten() {
        let key = &expression.key;
        let mut values = expression.values.clone().unwrap_or_default();
        values.sort();
        let text = match expression.operator.as_str() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            other => return Err(ConversionError::Operator(other.to_owned())),
        };
        requirements.push((key.clone(), text));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    let text: Vec<String> = requirements.into_iter().map(|(_, text)| text).collect();
    let text = text.join(",");
    // NewRequirement's checks: a requirement kube could not build is an error here too.
    text.parse::<selector::LabelSelector>()?;
    Ok(text)
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when empty, `<error>` when it
/// does not convert.
pub fn format_label_selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return "<none>".to_owned();
    };
    match to_selector_string(selector) {
        Ok(text) if text.is_empty() => "<none>".to_owned(),
        Ok(text) => text,
        Err(_) => "<error>".to_owned(),
    }
}

/// `LabelSelectorAsSelector`: the requirements, to match many label sets with.
pub fn as_selector(selector: &LabelSelector) -> Result<selector::LabelSelector, ConversionError> {
    Ok(to_selector_string(selector)?.parse::<selector::LabelSelector>()?)
}

/// Whether `labels` satisfy the selector (the empty selector matches everything; one that
/// does not convert matches nothing).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    as_selector(selector).is_ok_and(|parsed| parsed.matches(labels))
}

/// apimachinery's TestLabelSelectorAsSelector and ValidateLabelSelector cases, ported.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn selectors_print_sorted_by_key_with_sorted_values() {
        let cases = [
            (json!({}), ""),
            (json!({"matchLabels": {"foo": "bar"}}), "foo=bar"),
            (
                json!({"matchLabels": {"foo": "bar"}, "matchExpressions": [
                    {"key": "baz", "operator": "In", "values": ["qux", "norf"]}]}),
                "baz in (norf,qux),foo=bar",
            ),
            (
                json!({"matchLabels": {"foo": "bar"}, "matchExpressions": [
                    {"key": "baz", "operator": "NotIn", "values": ["qux", "norf"]}]}),
                "baz notin (norf,qux),foo=bar",
            ),
            (
                json!({"matchLabels": {"foo": "bar"}, "matchExpressions": [
                    {"key": "baz", "operator": "Exists"},
                    {"key": "a", "operator": "DoesNotExist"}]}),
                "!a,baz,foo=bar",
            ),
        ];
        for (given, want) in cases {
            assert_eq!(to_selector_string(&selector(given)).unwrap(), want);
        }
        let bad = selector(json!({"matchExpressions": [
            {"key": "baz", "operator": "Exist", "values": ["qux"]}]}));
        assert_eq!(
            to_selector_string(&bad).unwrap_err().to_string(),
            r#""Exist" is not a valid label selector operator"#
        );
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
        assert_eq!(format_label_selector(Some(&selector(json!({})))), "<none>");
    }

    #[test]
    fn selectors_match_labels() {
        let labels = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
        assert!(matches(
            &selector(json!({"matchLabels": {"app": "web"}})),
            &labels
        ));
        assert!(!matches(
            &selector(json!({"matchLabels": {"app": "db"}})),
            &labels
        ));
        let expression = json!({"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["web", "api"]}]});
        assert!(matches(&selector(expression), &labels));
        assert!(matches(&selector(json!({})), &labels));
    }

    #[test]
    fn requirements_are_validated() {
        let given = selector(json!({
            "matchLabels": {"Bad Key": "v"},
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Near", "values": ["x"]},
                {"key": "d", "operator": "In", "values": ["not valid"]}
            ]
        }));
        let errs: Vec<String> =
            validate_label_selector(&given, &FieldPath::new("spec").child("selector"))
                .iter()
                .map(ToString::to_string)
                .collect();
        assert_eq!(errs.len(), 5, "{errs:?}");
        assert!(errs[0].starts_with(
            r#"spec.selector.matchLabels: Invalid value: "Bad Key": name part must consist of"#
        ));
        assert_eq!(errs[1], "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
        assert_eq!(errs[2], "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
        assert_eq!(
            errs[3],
            r#"spec.selector.matchExpressions[2].operator: Invalid value: "Near": not a valid selector operator"#
        );
        assert!(errs[4].starts_with(r#"spec.selector.matchExpressions[3].values[0]: Invalid value: "not valid": a valid label must be"#));
    }
}
