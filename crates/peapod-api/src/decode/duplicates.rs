//! Decoding a JSON or YAML value while noting the keys given twice in one mapping. Both
//! formats keep the last value of a repeated key, and so do Kubernetes' decoders; its strict
//! field validation then reports the repetition, which needs the field path (JSON) or the
//! line of the repeated key (YAML).

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::validation::go_quote;

/// A key given twice in one mapping of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateField {
    /// `spec.containers[0].image`, as Kubernetes' strict JSON decoding names the field.
    pub path: String,
    pub key: String,
    /// The 1-based line of the repeated key, for YAML input.
    pub line: Option<usize>,
}

impl fmt::Display for DuplicateField {
    /// What kube-apiserver's strict decoding says: sigs.k8s.io/json's wording for JSON,
    /// go-yaml's (through sigs.k8s.io/yaml's YAMLToJSONStrict) for YAML.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "line {line}: key {} already set in map",
                go_quote(&self.key)
            ),
            None => write!(f, "duplicate field {}", go_quote(&self.path)),
        }
    }
}

/// A value and the duplicate keys found while decoding it (the last value of each is kept,
/// as `serde_json::Value` keeps it). Its `Deserialize` names them by path, as for JSON;
/// [`Tracked::deserialize_yaml`] also by line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tracked {
    pub value: Value,
    pub duplicates: Vec<DuplicateField>,
}

impl Tracked {
    /// From a YAML document: duplicates carry the line of the repeated key.
    pub fn deserialize_yaml<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Tracked::decode(deserializer, true)
    }

    fn decode<'de, D: Deserializer<'de>>(deserializer: D, lines: bool) -> Result<Self, D::Error> {
        let mut state = State {
            lines,
            ..State::default()
        };
        let value = ValueSeed { state: &mut state }.deserialize(deserializer)?;
        Ok(Tracked {
            value,
            duplicates: state.duplicates,
        })
    }
}

impl<'de> Deserialize<'de> for Tracked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Tracked::decode(deserializer, false)
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Default)]
struct State {
    /// Whether duplicates are located by line.
    lines: bool,
    /// The path of the value being decoded.
    path: Vec<Segment>,
    duplicates: Vec<DuplicateField>,
}

impl State {
    fn path_to(&self, key: &str) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(k) if out.is_empty() => out.push_str(k),
                Segment::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
        out
    }
}

/// Builds the same `Value` as `serde_json::Value`'s own `Deserialize`.
struct ValueSeed<'a> {
    state: &'a mut State,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        number(de::value::I128Deserializer::new(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        number(de::value::U128Deserializer::new(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.state.path.push(Segment::Index(items.len()));
            let item = seq.next_element_seed(ValueSeed {
                state: &mut *self.state,
            });
            self.state.path.pop();
            match item? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut values = Map::new();
        let mut seen = HashSet::new();
        let lines = self.state.lines;
        while let Some(key) = map.next_key_seed(KeySeed { seen: &seen, lines })? {
            let key = match key {
                Key::New(key) => key,
                Key::Repeated { key, line } => {
                    let path = self.state.path_to(&key);
                    self.state.duplicates.push(DuplicateField {
                        path,
                        key: key.clone(),
                        line,
                    });
                    key
                }
            };
            self.state.path.push(Segment::Key(key.clone()));
            let value = map.next_value_seed(ValueSeed {
                state: &mut *self.state,
            });
            self.state.path.pop();
            seen.insert(key.clone());
            values.insert(key, value?);
        }
        Ok(Value::Object(values))
    }
}

/// An integer beyond 64 bits, as `serde_json::Value` takes it (an error without
/// arbitrary_precision).
fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    Number::deserialize(deserializer).map(Value::Number)
}

enum Key {
    New(String),
    Repeated { key: String, line: Option<usize> },
}

/// A mapping key, and whether `seen` already holds it.
struct KeySeed<'a> {
    seen: &'a HashSet<String>,
    lines: bool,
}

/// What the key visitor fails with to learn where a repeated key is: both parsers attach
/// the position of the key being visited to the error, and stay ready for its value.
const REPEATED: &str = "repeated key";

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        if !self.lines {
            let key = String::deserialize(deserializer)?;
            return Ok(match self.seen.contains(&key) {
                true => Key::Repeated { key, line: None },
                false => Key::New(key),
            });
        }
        let repeated = Cell::new(None);
        let visitor = KeyVisitor {
            seen: self.seen,
            repeated: &repeated,
        };
        match deserializer.deserialize_str(visitor) {
            Ok(key) => Ok(Key::New(key)),
            Err(error) => match repeated.take() {
                Some(key) => Ok(Key::Repeated {
                    key,
                    line: error_line(&error.to_string()),
                }),
                None => Err(error),
            },
        }
    }
}

struct KeyVisitor<'a> {
    seen: &'a HashSet<String>,
    repeated: &'a Cell<Option<String>>,
}

impl<'de> Visitor<'de> for KeyVisitor<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if self.seen.contains(v) {
            self.repeated.set(Some(v.to_string()));
            return Err(E::custom(REPEATED));
        }
        Ok(v.to_string())
    }
}

/// The line of " at line L column C", which serde_json and serde_yaml_ng append to errors.
fn error_line(message: &str) -> Option<usize> {
    let (_, location) = message.rsplit_once(" at line ")?;
    let (line, _) = location.split_once(" column ")?;
    line.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_json(text: &str) -> Tracked {
        serde_json::from_str(text).unwrap()
    }

    fn from_yaml(text: &str) -> Tracked {
        Tracked::deserialize_yaml(serde_yaml_ng::Deserializer::from_str(text)).unwrap()
    }

    #[test]
    fn values_are_those_serde_json_builds() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        let tracked = from_json(text);
        assert_eq!(tracked.value, serde_json::from_str::<Value>(text).unwrap());
        assert!(tracked.duplicates.is_empty());
        let yaml = "a: [1, -2, 3.5, x, ~, true, {b: {}}]\nc: .nan\nd: 0x10\n";
        let expected: Value =
            Value::deserialize(serde_yaml_ng::Deserializer::from_str(yaml)).unwrap();
        assert_eq!(from_yaml(yaml).value, expected);
    }

    #[test]
    fn a_repeated_json_key_is_named_by_its_path_and_the_last_value_wins() {
        let tracked = from_json(
            r#"{"metadata": {"name": "a", "name": "b"},
                "spec": {"containers": [{"name": "c"}, {"image": "x", "image": "y"}]}}"#,
        );
        assert_eq!(tracked.value["metadata"]["name"], "b");
        assert_eq!(tracked.value["spec"]["containers"][1]["image"], "y");
        let said: Vec<String> = tracked.duplicates.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                r#"duplicate field "metadata.name""#,
                r#"duplicate field "spec.containers[1].image""#
            ]
        );
    }

    #[test]
    fn a_repeated_top_level_key_has_no_leading_dot() {
        let tracked = from_json(r#"{"kind": "Pod", "kind": "Pod"}"#);
        assert_eq!(tracked.duplicates[0].path, "kind");
    }

    #[test]
    fn a_repeated_yaml_key_is_named_by_its_line_nested_or_in_flow_style() {
        let tracked = from_yaml(
            "metadata:\n  name: a\n  labels: {app: x, app: y}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    image: nginx\n",
        );
        assert_eq!(tracked.value["spec"]["containers"][0]["image"], "nginx");
        let found: Vec<_> = tracked
            .duplicates
            .iter()
            .map(|d| (d.path.as_str(), d.line, d.to_string()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "metadata.labels.app",
                    Some(3),
                    r#"line 3: key "app" already set in map"#.to_string()
                ),
                (
                    "spec.containers[0].image",
                    Some(8),
                    r#"line 8: key "image" already set in map"#.to_string()
                ),
            ]
        );
    }

    #[test]
    fn other_key_errors_still_fail() {
        let err = Tracked::deserialize_yaml(serde_yaml_ng::Deserializer::from_str("? [a]\n: b\n"))
            .unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn error_line_reads_the_parsers_location_suffix() {
        assert_eq!(error_line("repeated key at line 12 column 3"), Some(12));
        assert_eq!(error_line("repeated key"), None);
    }
}
