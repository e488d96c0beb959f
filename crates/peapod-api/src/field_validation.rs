//! Kubernetes' field validation of a decoded object (the API's `fieldValidation` parameter,
//! kubectl's `--validate`): unknown fields and keys given twice are refused (Strict), given as
//! warnings (Warn) or dropped silently (Ignore), in kube-apiserver's words.

use std::fmt;

use crate::decode::DuplicateField;
use crate::validation::go_quote;

/// How unknown or duplicate fields are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// What a strict decoder finds in one object: the paths of fields its type does not have,
/// and the keys given twice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StrictFields {
    pub unknown: Vec<String>,
    pub duplicates: Vec<DuplicateField>,
}

/// kube-apiserver's answer (400 BadRequest) to an object Strict validation refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StrictDecodingError {
    pub kind: String,
    pub version: String,
    /// Each of the strict decoder's errors, as it words them.
    pub errors: Vec<String>,
}

impl fmt::Display for StrictDecodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in version {} cannot be handled as a {}: strict decoding error: {}",
            self.kind,
            go_quote(&self.version),
            self.kind,
            self.errors.join(", ")
        )
    }
}

impl StrictFields {
    /// The warnings to give under the two modes (duplicates first, as kube-apiserver lists
    /// them for YAML), or the error when either mode is Strict and has something to refuse.
    pub fn check(
        &self,
        unknown: FieldValidation,
        duplicates: FieldValidation,
    ) -> Result<Vec<String>, Vec<String>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        match duplicates {
            FieldValidation::Strict => errors.extend(self.duplicate_errors()),
            FieldValidation::Warn => warnings.extend(self.duplicates.iter().map(|d| d.to_string())),
            FieldValidation::Ignore => {}
        }
        let unknown_fields = self
            .unknown
            .iter()
            .map(|path| format!("unknown field {}", go_quote(path)));
        match unknown {
            FieldValidation::Strict => errors.extend(unknown_fields),
            FieldValidation::Warn => warnings.extend(unknown_fields),
            FieldValidation::Ignore => {}
        }
        if errors.is_empty() {
            Ok(warnings)
        } else {
            Err(errors)
        }
    }

    /// JSON's duplicates one by one; YAML's as the one error sigs.k8s.io/yaml returns for
    /// all of them, a line each.
    fn duplicate_errors(&self) -> Vec<String> {
        let (yaml, json): (Vec<_>, Vec<_>) = self.duplicates.iter().partition(|d| d.line.is_some());
        let mut errors: Vec<String> = json.iter().map(ToString::to_string).collect();
        if !yaml.is_empty() {
            let lines: Vec<String> = yaml.iter().map(ToString::to_string).collect();
            errors.insert(
                0,
                format!("yaml: unmarshal errors:\n  {}", lines.join("\n  ")),
            );
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldValidation::{Ignore, Strict, Warn};

    fn duplicate(path: &str, key: &str, line: Option<usize>) -> DuplicateField {
        DuplicateField {
            path: path.into(),
            key: key.into(),
            line,
        }
    }

    fn found(yaml: bool) -> StrictFields {
        let line = |n| yaml.then_some(n);
        StrictFields {
            unknown: vec!["spec.containers[0].comand".into()],
            duplicates: vec![
                duplicate("metadata.name", "name", line(4)),
                duplicate("spec.containers[0].image", "image", line(9)),
            ],
        }
    }

    #[test]
    fn strict_refuses_with_kube_apiservers_words_for_yaml() {
        let errors = found(true).check(Strict, Strict).unwrap_err();
        let error = StrictDecodingError {
            kind: "Pod".into(),
            version: "v1".into(),
            errors,
        };
        assert_eq!(
            error.to_string(),
            "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: \
             yaml: unmarshal errors:\n  line 4: key \"name\" already set in map\n  \
             line 9: key \"image\" already set in map, \
             unknown field \"spec.containers[0].comand\""
        );
    }

    #[test]
    fn strict_refuses_with_kube_apiservers_words_for_json() {
        let errors = found(false).check(Strict, Strict).unwrap_err();
        assert_eq!(
            errors,
            [
                r#"duplicate field "metadata.name""#,
                r#"duplicate field "spec.containers[0].image""#,
                r#"unknown field "spec.containers[0].comand""#
            ]
        );
    }

    #[test]
    fn warn_gives_each_finding_as_a_warning_and_ignore_says_nothing() {
        assert_eq!(
            found(true).check(Warn, Warn).unwrap(),
            [
                r#"line 4: key "name" already set in map"#,
                r#"line 9: key "image" already set in map"#,
                r#"unknown field "spec.containers[0].comand""#
            ]
        );
        assert!(found(true).check(Ignore, Ignore).unwrap().is_empty());
    }

    #[test]
    fn each_kind_of_finding_follows_its_own_mode() {
        let errors = found(false).check(Warn, Strict).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        let warnings = found(false).check(Warn, Ignore).unwrap();
        assert_eq!(warnings, [r#"unknown field "spec.containers[0].comand""#]);
    }
}
