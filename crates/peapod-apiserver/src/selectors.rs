//! List and watch filters: a label selector and a field selector (`metadata.name`,
//! `metadata.namespace` and each kind's field labels) joined into one store predicate.

use std::collections::BTreeMap;
use std::sync::Arc;

use peapod_api::selector::LabelSelector;
use peapod_store::Predicate;
use serde_json::Value;

use crate::registry::Strategy;
use crate::status::ApiError;

/// One `field=value` / `field!=value` requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldRequirement {
    label: String,
    value: String,
    equal: bool,
}

/// A parsed field selector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `a=b,c==d,e!=f`, refusing labels the kind does not support as kube-apiserver does.
    pub fn parse(input: &str, supported: &[&str]) -> Result<FieldSelector, ApiError> {
        let mut requirements = Vec::new();
        for term in input.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (label, value, equal) = if let Some((l, v)) = term.split_once("!=") {
                (l, v, false)
            } else if let Some((l, v)) = term.split_once("==") {
                (l, v, true)
            } else if let Some((l, v)) = term.split_once('=') {
                (l, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: invalid selector: '{input}'; can't understand '{term}'"
                )));
            };
            let label = label.trim();
            let builtin = matches!(label, "metadata.name" | "metadata.namespace");
            if !builtin && !supported.contains(&label) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {label}"
                )));
            }
            requirements.push(FieldRequirement {
                label: label.to_owned(),
                value: value.trim().to_owned(),
                equal,
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The single name an exact `metadata.name=` requirement selects, if any.
    pub fn exact_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.equal && r.label == "metadata.name")
            .map(|r| r.value.as_str())
    }

    fn matches(&self, object: &Value, strategy: &dyn Strategy) -> bool {
        self.requirements.iter().all(|requirement| {
            let actual = match requirement.label.as_str() {
                "metadata.name" => meta_string(object, "name"),
                "metadata.namespace" => meta_string(object, "namespace"),
                label => strategy.field(object, label).unwrap_or_default(),
            };
            (actual == requirement.value) == requirement.equal
        })
    }
}

fn meta_string(object: &Value, field: &str) -> String {
    object
        .pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Parses a `labelSelector` query value.
pub fn label_selector(input: &str) -> Result<LabelSelector, ApiError> {
    input
        .parse::<LabelSelector>()
        .map_err(|err| ApiError::bad_request(format!("unable to parse requirement: {err}")))
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Both selectors as one filter over stored objects.
#[derive(Clone, Default)]
pub struct Selection {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Selection {
    pub fn parse(
        labels: Option<&str>,
        fields: Option<&str>,
        strategy: &dyn Strategy,
    ) -> Result<Selection, ApiError> {
        let labels = labels
            .filter(|s| !s.trim().is_empty())
            .map(label_selector)
            .transpose()?;
        let fields = fields
            .filter(|s| !s.trim().is_empty())
            .map(|s| FieldSelector::parse(s, strategy.field_labels()))
            .transpose()?;
        Ok(Selection { labels, fields })
    }

    pub fn is_everything(&self) -> bool {
        self.labels.as_ref().is_none_or(LabelSelector::is_empty)
            && self.fields.as_ref().is_none_or(FieldSelector::is_empty)
    }

    pub fn matches(&self, object: &Value, strategy: &dyn Strategy) -> bool {
        self.labels
            .as_ref()
            .is_none_or(|s| s.matches(&labels_of(object)))
            && self
                .fields
                .as_ref()
                .is_none_or(|s| s.matches(object, strategy))
    }

    /// The store predicate, or `None` when everything matches.
    pub fn predicate(&self, strategy: Arc<dyn Strategy>) -> Option<Predicate> {
        if self.is_everything() {
            return None;
        }
        let selection = self.clone();
        Some(Arc::new(move |object: &Value| {
            selection.matches(object, strategy.as_ref())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selectors_parse_all_operators() {
        let selector =
            FieldSelector::parse("metadata.name=a,status.phase!=Failed", &["status.phase"])
                .unwrap();
        assert_eq!(selector.exact_name(), Some("a"));
        assert_eq!(selector.requirements.len(), 2);
        assert!(!selector.requirements[1].equal);
        assert!(
            FieldSelector::parse("metadata.name==a", &[])
                .unwrap()
                .exact_name()
                == Some("a")
        );
    }

    #[test]
    fn unsupported_field_labels_are_refused_like_kube_apiserver() {
        let err = FieldSelector::parse("spec.foo=bar", &["spec.nodeName"]).unwrap_err();
        assert_eq!(err.message, "field label not supported: spec.foo");
        assert_eq!(err.code.as_u16(), 400);
    }

    #[test]
    fn a_term_without_operator_is_refused() {
        assert!(FieldSelector::parse("metadata.name", &[]).is_err());
    }
}
