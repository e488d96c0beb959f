//! Splits a manifest stream (multi-document YAML, or one or more concatenated JSON
//! objects) into object documents, expanding `kind: List`. YAML becomes the JSON that
//! sigs.k8s.io/yaml makes of it, as for kubectl and kube-apiserver: YAML 1.1 plain scalars.

mod duplicates;
mod nesting;
mod source;
pub(crate) mod yaml11;

use serde_json::Value;

pub use duplicates::{DuplicateField, Tracked};
pub use yaml11::ConversionError;

use duplicates::YamlValueError;
use source::Source;

/// One object document from a manifest stream; `index` is its 0-based position
/// among the returned documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub index: usize,
    pub value: Value,
    /// Keys its source document gave twice in one mapping (`value` keeps the last), which
    /// strict field validation refuses. A `List`'s are all on its first item.
    pub duplicates: Vec<DuplicateField>,
}

/// Why a manifest stream could not be split; `document` is the 0-based index of the
/// source document (before `List` expansion) where it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("document {document}: yaml: line {line}, column {column}: {message}")]
    Yaml {
        document: usize,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("document {document}: yaml: {message}")]
    YamlNoLocation { document: usize, message: String },
    #[error("document {document}: json: line {line}, column {column}: {message}")]
    Json {
        document: usize,
        line: usize,
        column: usize,
        message: String,
    },
    /// YAML that sigs.k8s.io/yaml cannot write as JSON.
    #[error("document {document}: {error}")]
    Conversion {
        document: usize,
        error: ConversionError,
    },
    #[error("document {document}: expected an object, got {found}")]
    NotAnObject {
        document: usize,
        found: &'static str,
    },
    #[error("document {document}: List item {item}: expected an object, got {found}")]
    ListItemNotAnObject {
        document: usize,
        item: usize,
        found: &'static str,
    },
    #[error("document {document}: List: \"items\" must be an array, got {found}")]
    ListItemsNotArray {
        document: usize,
        found: &'static str,
    },
}

impl DecodeError {
    /// The 0-based index of the source document that failed.
    pub fn document(&self) -> usize {
        match self {
            DecodeError::Yaml { document, .. }
            | DecodeError::YamlNoLocation { document, .. }
            | DecodeError::Json { document, .. }
            | DecodeError::Conversion { document, .. }
            | DecodeError::NotAnObject { document, .. }
            | DecodeError::ListItemNotAnObject { document, .. }
            | DecodeError::ListItemsNotArray { document, .. } => *document,
        }
    }
}

/// YAML (multi-document, `---` separated; empty documents skipped) or JSON (one
/// object, or several concatenated); a `kind: List` (apiVersion v1) is expanded
/// into its items.
pub fn decode_documents(input: &[u8]) -> Result<Vec<Document>, DecodeError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let sources = if looks_like_json(input) {
        // A `{` may also open a YAML flow mapping, so fall back to YAML.
        split_json(input).or_else(|json_err| split_yaml(input).map_err(|_| json_err))?
    } else {
        split_yaml(input)?
    };
    let mut documents = Vec::new();
    for (source, tracked) in sources {
        let mut duplicates = Some(tracked.duplicates);
        for value in expand_list(source, tracked.value)? {
            documents.push(Document {
                index: documents.len(),
                value,
                duplicates: duplicates.take().unwrap_or_default(),
            });
        }
    }
    Ok(documents)
}

fn looks_like_json(input: &[u8]) -> bool {
    input
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// Source documents with their 0-based position in the stream.
type Sources = Vec<(usize, Tracked)>;

fn split_json(input: &[u8]) -> Result<Sources, DecodeError> {
    let stream = serde_json::Deserializer::from_slice(input).into_iter::<Tracked>();
    stream
        .enumerate()
        .map(|(document, item)| {
            item.map(|tracked| (document, tracked))
                .map_err(|e| DecodeError::Json {
                    document,
                    line: e.line(),
                    column: e.column(),
                    message: strip_location(&e.to_string()),
                })
        })
        .collect()
}

fn split_yaml(input: &[u8]) -> Result<Sources, DecodeError> {
    nesting::check(input).map_err(too_deep)?;
    let source = Source::new(input);
    let mut values = Vec::new();
    for (document, de) in serde_yaml_ng::Deserializer::from_slice(input).enumerate() {
        let tracked = Tracked::deserialize_yaml(de, &source).map_err(|e| match e {
            YamlValueError::Parse(e) => yaml_error(document, &e),
            YamlValueError::Conversion(error) => DecodeError::Conversion { document, error },
        })?;
        if !tracked.value.is_null() {
            values.push((document, tracked));
        }
    }
    Ok(values)
}

fn too_deep(at: nesting::TooDeep) -> DecodeError {
    DecodeError::Yaml {
        document: at.document,
        line: at.line,
        column: at.column,
        message: format!(
            "recursion limit exceeded: more than {} nested collections",
            nesting::MAX_DEPTH
        ),
    }
}

fn yaml_error(document: usize, e: &serde_yaml_ng::Error) -> DecodeError {
    let message = strip_location(&e.to_string());
    match e.location() {
        Some(loc) => DecodeError::Yaml {
            document,
            line: loc.line(),
            column: loc.column(),
            message,
        },
        None => DecodeError::YamlNoLocation { document, message },
    }
}

/// Both parsers append " at line L column C"; the location is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(pos) => message[..pos].to_string(),
        None => message.to_string(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_v1_list(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some("List")
        && value.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

fn expand_list(document: usize, value: Value) -> Result<Vec<Value>, DecodeError> {
    if !value.is_object() {
        return Err(DecodeError::NotAnObject {
            document,
            found: type_name(&value),
        });
    }
    if !is_v1_list(&value) {
        return Ok(vec![value]);
    }
    let items = match value.get("items") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => {
            return Err(DecodeError::ListItemsNotArray {
                document,
                found: type_name(other),
            })
        }
    };
    for (item, v) in items.iter().enumerate() {
        if !v.is_object() {
            return Err(DecodeError::ListItemNotAnObject {
                document,
                item,
                found: type_name(v),
            });
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_multi_document_skips_empty() {
        let input = b"---\napiVersion: v1\nkind: Pod\n---\n# only a comment\n---\n\n---\nkind: Pod\napiVersion: v1\nmetadata: {name: b}\n";
        let docs = decode_documents(input).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].index, 0);
        assert_eq!(docs[1].index, 1);
        assert_eq!(docs[1].value["metadata"]["name"], "b");
    }

    #[test]
    fn json_single_and_concatenated() {
        let docs = decode_documents(br#"{"kind":"Pod","apiVersion":"v1"}"#).unwrap();
        assert_eq!(docs.len(), 1);
        let docs = decode_documents(b"{\"kind\":\"Pod\"}\n{\"kind\":\"Service\"} {\"kind\":\"X\"}")
            .unwrap();
        let kinds: Vec<_> = docs.iter().map(|d| d.value["kind"].clone()).collect();
        assert_eq!(kinds, vec![json!("Pod"), json!("Service"), json!("X")]);
    }

    #[test]
    fn yaml_flow_mapping_falls_back_from_json() {
        let docs = decode_documents(b"{kind: Pod, apiVersion: v1}").unwrap();
        assert_eq!(docs[0].value["kind"], "Pod");
    }

    #[test]
    fn list_is_expanded() {
        let input = b"apiVersion: v1\nkind: List\nitems:\n- {kind: Pod, apiVersion: v1}\n- {kind: Service, apiVersion: v1}\n---\nkind: Pod\napiVersion: v1\n";
        let docs = decode_documents(input).unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1].value["kind"], "Service");
        assert_eq!(docs[2].index, 2);
    }

    #[test]
    fn list_items_must_be_objects() {
        let err = decode_documents(b"apiVersion: v1\nkind: List\nitems: [1]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 0: List item 0: expected an object, got a number"
        );
    }

    #[test]
    fn bad_yaml_names_document_line_and_column() {
        let input = b"kind: Pod\napiVersion: v1\n---\nkind: Pod\nmetadata:\n  name: [a\n";
        let err = decode_documents(input).unwrap_err();
        assert_eq!(err.document(), 1);
        match &err {
            DecodeError::Yaml { line, .. } => assert_eq!(*line, 7, "{err}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with("document 1: yaml: line 7, column"),
            "{err}"
        );
    }

    #[test]
    fn bad_yaml_indentation_line() {
        let input = b"kind: Pod\nspec:\n  containers:\n  - name: a\n   image: b\n";
        let err = decode_documents(input).unwrap_err();
        match err {
            DecodeError::Yaml { document, line, .. } => {
                assert_eq!((document, line), (0, 5));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_json_names_line() {
        let err = decode_documents(b"{\"kind\": \"Pod\",\n \"x\": [}").unwrap_err();
        match err {
            DecodeError::Json { document, line, .. } => assert_eq!((document, line), (0, 2)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn repeated_yaml_keys_are_kept_with_their_line_and_the_last_value() {
        let input = b"kind: Pod\n---\nkind: Pod\nmetadata:\n  name: a\n  name: b\n";
        let docs = decode_documents(input).unwrap();
        assert!(docs[0].duplicates.is_empty());
        assert_eq!(docs[1].value["metadata"]["name"], "b");
        assert_eq!(
            docs[1].duplicates,
            vec![DuplicateField {
                path: "metadata.name".into(),
                key: "name".into(),
                line: Some(6),
            }]
        );
    }

    #[test]
    fn repeated_json_keys_are_named_by_path_only() {
        let docs = decode_documents(br#"{"kind": "Pod", "spec": {"x": 1, "x": 2}}"#).unwrap();
        let said: Vec<String> = docs[0].duplicates.iter().map(ToString::to_string).collect();
        assert_eq!(said, [r#"duplicate field "spec.x""#]);
    }

    #[test]
    fn a_lists_repeated_keys_go_with_its_first_item() {
        let input =
            b"apiVersion: v1\nkind: List\nkind: List\nitems:\n- {kind: Pod}\n- {kind: Pod}\n";
        let docs = decode_documents(input).unwrap();
        assert_eq!(docs[0].duplicates.len(), 1);
        assert!(docs[1].duplicates.is_empty());
    }

    #[test]
    fn a_deep_flow_nest_fails_at_once_with_the_recursion_limit() {
        let started = std::time::Instant::now();
        let input = format!("kind: Pod\nspec: {}", "[".repeat(100_000));
        let err = decode_documents(input.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 0: yaml: line 2, column 135: recursion limit exceeded: more than 128 nested collections"
        );
        let json = "{\"a\":".repeat(100_000);
        let err = decode_documents(json.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn yaml_is_read_as_kubernetes_reads_it_in_every_document() {
        let input = "kind: Pod\nmode: 0400\n---\nkind: Pod\nmode: '0400'\nready: yes\n---\nkind: Pod\nx: .nan\n";
        let err = decode_documents(input.as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "document 2: json: unsupported value: NaN");
        assert_eq!(err.document(), 2);
        let docs = decode_documents(&input.as_bytes()[..input.rfind("---").unwrap()]).unwrap();
        assert_eq!(docs[0].value["mode"], 256);
        assert_eq!(docs[1].value["mode"], "0400");
        assert_eq!(docs[1].value["ready"], true);
    }

    #[test]
    fn scalars_are_not_objects() {
        let err = decode_documents(b"kind: Pod\n---\n---\njust a string\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 2: expected an object, got a string"
        );
    }
}
