//! Types one manifest document: checks apiVersion/kind, deserializes into the
//! `k8s_openapi` type with field-path errors, and collects warnings (unknown
//! fields, fields peapod does not implement, Kubernetes' own pod warnings).

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use crate::decode::Document;
use crate::field_validation::{FieldValidation, StrictDecodingError, StrictFields};
use crate::quantity::{Quantity, QUANTITY_FORMAT_ERROR};
use crate::{defaults, support, warnings};

/// A typed object of a kind peapod knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Pod(Box<Pod>),
}

impl Object {
    /// Its kind and API version.
    pub fn kind_version(&self) -> (&'static str, &'static str) {
        match self {
            Object::Pod(_) => ("Pod", "v1"),
        }
    }
}

/// A typed object, what field validation judges in it, and the other warnings to show the
/// user (without the `Warning: ` prefix).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub object: Object,
    /// Unknown fields and keys given twice.
    pub fields: StrictFields,
    /// Fields peapod does not implement, Kubernetes' own pod warnings.
    pub warnings: Vec<String>,
}

impl Decoded {
    /// Field validation, `unknown` for unknown fields and `duplicates` for keys given twice
    /// (Kubernetes applies one mode to both): every warning to show, field warnings first,
    /// or kube-apiserver's refusal.
    pub fn field_validation(
        &self,
        unknown: FieldValidation,
        duplicates: FieldValidation,
    ) -> Result<Vec<String>, StrictDecodingError> {
        let (kind, version) = self.object.kind_version();
        let mut warnings =
            self.fields
                .check(unknown, duplicates)
                .map_err(|errors| StrictDecodingError {
                    kind: kind.to_string(),
                    version: version.to_string(),
                    errors,
                })?;
        warnings.extend(self.warnings.iter().cloned());
        Ok(warnings)
    }
}

/// Why a document is not a usable object; messages follow the API server's wording.
/// `document` is the [`Document::index`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("Object 'Kind' is missing in '{json}'")]
    MissingKind { document: usize, json: String },
    #[error("Object 'apiVersion' is missing in '{json}'")]
    MissingApiVersion { document: usize, json: String },
    #[error("no matches for kind \"{kind}\" in version \"{api_version}\"")]
    UnknownKind {
        document: usize,
        kind: String,
        api_version: String,
    },
    #[error("{path}: {message}")]
    Type {
        document: usize,
        path: String,
        message: String,
    },
    #[error("{path}: {QUANTITY_FORMAT_ERROR}")]
    Quantity {
        document: usize,
        path: String,
        value: String,
    },
}

impl ObjectError {
    /// The index of the document that failed.
    pub fn document(&self) -> usize {
        match self {
            ObjectError::MissingKind { document, .. }
            | ObjectError::MissingApiVersion { document, .. }
            | ObjectError::UnknownKind { document, .. }
            | ObjectError::Type { document, .. }
            | ObjectError::Quantity { document, .. } => *document,
        }
    }
}

/// Checks apiVersion/kind, deserializes into the k8s-openapi type and returns the
/// warnings for the document.
pub fn parse_object(doc: &Document) -> Result<Decoded, ObjectError> {
    let (api_version, kind) = type_meta(doc)?;
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Pod") => parse_pod(doc),
        _ => Err(ObjectError::UnknownKind {
            document: doc.index,
            kind,
            api_version,
        }),
    }
}

fn type_meta(doc: &Document) -> Result<(String, String), ObjectError> {
    let field = |name: &str| {
        doc.value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let json = || serde_json::to_string(&doc.value).unwrap_or_default();
    let kind = field("kind").ok_or_else(|| ObjectError::MissingKind {
        document: doc.index,
        json: json(),
    })?;
    let api_version = field("apiVersion").ok_or_else(|| ObjectError::MissingApiVersion {
        document: doc.index,
        json: json(),
    })?;
    Ok((api_version, kind))
}

fn parse_pod(doc: &Document) -> Result<Decoded, ObjectError> {
    let mut unknown = Vec::new();
    let pod: Pod = deserialize_tracking_unknown(doc, &mut unknown)?;
    check_pod_quantities(doc.index, &pod)?;
    let typed = serde_json::to_value(&pod).unwrap_or(Value::Null);
    let mut all = support::unsupported_pod_fields(&typed);
    let mut defaulted = pod.clone();
    defaults::default_pod(&mut defaulted);
    all.extend(warnings::pod_warnings(&defaulted));
    Ok(Decoded {
        object: Object::Pod(Box::new(pod)),
        fields: StrictFields {
            unknown,
            duplicates: doc.duplicates.clone(),
        },
        warnings: all,
    })
}

fn deserialize_tracking_unknown<T: serde::de::DeserializeOwned>(
    doc: &Document,
    unknown: &mut Vec<String>,
) -> Result<T, ObjectError> {
    let (typed, found) = decode_typed(&doc.value).map_err(|e| ObjectError::Type {
        document: doc.index,
        path: e.path,
        message: e.message,
    })?;
    unknown.extend(found);
    Ok(typed)
}

/// A value that does not fit its type: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TypeError {
    pub path: String,
    pub message: String,
}

impl TypeError {
    /// The path of a required field that was missing or null, when that is the error. Go
    /// decodes such a field as its zero value and leaves it to validation; k8s-openapi
    /// defaults all but the timestamps (a Condition's `lastTransitionTime`), which it refuses.
    pub fn required_field(&self) -> Option<String> {
        let missing = self
            .message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'));
        let path = match missing {
            Some(field) if self.path.is_empty() || self.path == "." => field.to_owned(),
            Some(field) => format!("{}.{field}", self.path),
            None if self.message.starts_with("invalid type: null,") => self.path.clone(),
            None => return None,
        };
        Some(path)
    }
}

/// Deserializes `value` into `T`, returning the paths of the fields `T` does not have
/// (`spec.containers[0].cammand`).
pub fn decode_typed<T: serde::de::DeserializeOwned>(
    value: &Value,
) -> Result<(T, Vec<String>), TypeError> {
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(render_ignored(&path));
    let de = serde_ignored::Deserializer::new(value, &mut record);
    let typed = serde_path_to_error::deserialize(de).map_err(|e| TypeError {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })?;
    Ok((typed, unknown))
}

/// `spec.containers[0].cammand`, as kubectl prints unknown fields.
fn render_ignored(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render_ignored(parent)),
        Path::Map { parent, key } => {
            let parent = render_ignored(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render_ignored(parent),
    }
}

/// Kubernetes rejects malformed quantities while decoding, before validation.
fn check_pod_quantities(document: usize, pod: &Pod) -> Result<(), ObjectError> {
    for (path, value) in crate::validation::pod_quantities(pod) {
        if value.parse::<Quantity>().is_err() {
            return Err(ObjectError::Quantity {
                document,
                path,
                value,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_documents;

    fn parse(yaml: &str) -> Result<Decoded, ObjectError> {
        let docs = decode_documents(yaml.as_bytes()).unwrap();
        parse_object(&docs[0])
    }

    fn pod_warnings(yaml: &str) -> Vec<String> {
        let decoded = parse(yaml).unwrap();
        decoded
            .field_validation(FieldValidation::Warn, FieldValidation::Warn)
            .unwrap()
    }

    #[test]
    fn a_missing_or_null_timestamp_is_a_required_field() {
        use k8s_openapi::api::policy::v1::PodDisruptionBudget;
        let budget = |condition: serde_json::Value| {
            let status = serde_json::json!({"expectedPods": 0, "currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "conditions": [condition]});
            decode_typed::<PodDisruptionBudget>(&serde_json::json!({"status": status}))
                .err()
                .and_then(|err| err.required_field())
        };
        let condition =
            serde_json::json!({"type": "A", "status": "True", "reason": "R", "message": ""});
        let path = Some("status.conditions[0].lastTransitionTime".to_owned());
        assert_eq!(budget(condition.clone()), path);
        let mut null = condition;
        null["lastTransitionTime"] = serde_json::Value::Null;
        assert_eq!(budget(null), path);
        let wrong = decode_typed::<Pod>(&serde_json::json!({"spec": {"containers": 1}}));
        assert_eq!(wrong.err().and_then(|err| err.required_field()), None);
    }

    #[test]
    fn parses_a_pod_without_warnings() {
        let d = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - {name: c, image: busybox}\n").unwrap();
        let Object::Pod(pod) = d.object;
        assert_eq!(pod.metadata.name.as_deref(), Some("a"));
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    }

    #[test]
    fn unknown_kind_is_worded_like_the_api_server() {
        let e = parse("apiVersion: apps/v1\nkind: Deployment\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"no matches for kind "Deployment" in version "apps/v1""#
        );
        let e = parse("apiVersion: v2\nkind: Pod\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"no matches for kind "Pod" in version "v2""#
        );
    }

    #[test]
    fn missing_kind_and_api_version() {
        let e = parse("apiVersion: v1\nmetadata: {name: a}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"Object 'Kind' is missing in '{"apiVersion":"v1","metadata":{"name":"a"}}'"#
        );
        let e = parse("kind: Pod\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"Object 'apiVersion' is missing in '{"kind":"Pod"}'"#
        );
        assert_eq!(e.document(), 0);
    }

    #[test]
    fn type_errors_carry_the_field_path() {
        let e = parse("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: c\n    ports:\n    - containerPort: x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"spec.containers[0].ports[0].containerPort: invalid type: string "x", expected i32"#
        );
    }

    #[test]
    fn unknown_fields_warn_like_kubectl() {
        let w = pod_warnings(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  initContainers:\n  - name: i\n    image: busybox\n    conmmand: [sh]\n  containers:\n  - name: c\n    image: busybox\n    cammand: [sh]\n",
        );
        assert!(
            w.contains(&r#"unknown field "spec.initContainers[0].conmmand""#.to_string()),
            "{w:?}"
        );
        assert!(
            w.contains(&r#"unknown field "spec.containers[0].cammand""#.to_string()),
            "{w:?}"
        );
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn top_level_unknown_field_has_no_leading_dot() {
        let w = pod_warnings("apiVersion: v1\nkind: Pod\nspecc: {}\nspec:\n  containers: []\n");
        assert_eq!(w, vec![r#"unknown field "specc""#]);
    }

    #[test]
    fn unknown_and_repeated_fields_are_kept_apart_from_the_other_warnings() {
        let d = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: a, name: b}\nspec:\n  runtimeClassName: kata\n  containers:\n  - {name: c, image: i, comand: [sh]}\n").unwrap();
        assert_eq!(d.fields.unknown, ["spec.containers[0].comand"]);
        assert_eq!(d.fields.duplicates[0].path, "metadata.name");
        assert_eq!(
            d.warnings,
            ["spec.runtimeClassName: not supported by peapod, ignored"]
        );
    }

    #[test]
    fn strict_field_validation_refuses_as_kube_apiserver_does() {
        let d = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - {name: c, image: i, comand: [sh]}\n").unwrap();
        let err = d
            .field_validation(FieldValidation::Strict, FieldValidation::Strict)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].comand""#
        );
        let ignored = d
            .field_validation(FieldValidation::Ignore, FieldValidation::Ignore)
            .unwrap();
        assert!(ignored.is_empty(), "{ignored:?}");
    }

    #[test]
    fn unsupported_fields_warn() {
        let w = pod_warnings("apiVersion: v1\nkind: Pod\nspec:\n  runtimeClassName: kata\n  containers:\n  - name: c\n    image: i\n");
        assert_eq!(
            w,
            vec!["spec.runtimeClassName: not supported by peapod, ignored"]
        );
    }

    #[test]
    fn malformed_quantity_is_a_decode_error() {
        let e = parse("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: c\n    resources:\n      limits: {cpu: lots}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.containers[0].resources.limits[cpu]: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn kubernetes_pod_warnings_are_included() {
        let w = pod_warnings("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: c\n    image: i\n    ports:\n    - containerPort: 80\n    - containerPort: 80\n");
        assert_eq!(
            w,
            vec!["spec.containers[0].ports[1]: duplicate port definition with spec.containers[0].ports[0]"]
        );
    }
}
