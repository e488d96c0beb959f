//! Decoding a JSON or YAML value while noting the keys given twice in one mapping. Both
//! formats keep the last value of a repeated key, and so do Kubernetes' decoders; its strict
//! field validation then reports the repetition, which needs the field path (JSON) or the
//! line of the repeated key (YAML). YAML's plain scalars and keys become JSON as
//! sigs.k8s.io/yaml makes them ([`super::yaml11`]), `<<` merging mappings as go-yaml v2 does.

use std::cell::Cell;
use std::collections::HashSet;
use std::convert::Infallible;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::source::{error_location, Source, Style};
use super::yaml11::{self, ConversionError, MERGE_KEY};
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

/// Why a YAML document did not become a JSON value.
#[derive(Debug)]
pub(crate) enum YamlValueError<E> {
    Parse(E),
    Conversion(ConversionError),
}

impl Tracked {
    /// From a YAML document read out of `source`, the whole stream: plain scalars resolved by
    /// YAML 1.1, duplicates with the line of the repeated key.
    pub(crate) fn deserialize_yaml<'de, D: Deserializer<'de>>(
        deserializer: D,
        source: &Source,
    ) -> Result<Self, YamlValueError<D::Error>> {
        let mut state = State {
            yaml: Some(source),
            ..State::default()
        };
        let value = ValueSeed { state: &mut state }.deserialize(deserializer);
        if let Some(failure) = state.failure.take() {
            return Err(YamlValueError::Conversion(failure));
        }
        Ok(Tracked {
            value: value.map_err(YamlValueError::Parse)?,
            duplicates: state.duplicates,
        })
    }
}

impl<'de> Deserialize<'de> for Tracked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut state = State::default();
        let value = ValueSeed { state: &mut state }.deserialize(deserializer)?;
        Ok(Tracked {
            value,
            duplicates: state.duplicates,
        })
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

/// A YAML scalar handed back to its seed, which learns from the error's position how it is
/// written before resolving it.
enum Unresolved {
    Text(String),
    /// An integer beyond 64 bits, which serde_yaml_ng resolved from text no longer at hand.
    Wide(f64),
}

/// What the YAML visitors fail with to learn where a scalar is: the parser attaches the
/// position of the node being visited to the error, and stays ready for the next node.
const UNRESOLVED: &str = "unresolved scalar";

#[derive(Default)]
struct State<'s> {
    /// The YAML stream being decoded; `None` for JSON.
    yaml: Option<&'s Source<'s>>,
    /// The path of the value being decoded.
    path: Vec<Segment>,
    duplicates: Vec<DuplicateField>,
    unresolved: Option<Unresolved>,
    /// What JSON cannot hold, which stops the decoding.
    failure: Option<ConversionError>,
}

impl State<'_> {
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

    fn fail<E: de::Error>(&mut self, failure: ConversionError) -> E {
        let error = E::custom(&failure);
        self.failure = Some(failure);
        error
    }

    /// Only YAML scalars are ever unresolved.
    fn source(&self) -> &Source<'_> {
        self.yaml.expect("a YAML source")
    }

    /// The node at the position `message` ends with.
    fn node(&self, message: &str) -> Node {
        let source = self.source();
        let (line, column) = error_location(message).unwrap_or((1, 1));
        let (style, start) = source.node_at(source.offset(line, column));
        Node { style, start, line }
    }

    fn resolve(&self, scalar: Unresolved, message: &str) -> Result<Value, ConversionError> {
        let node = self.node(message);
        match (scalar, node.style) {
            (Unresolved::Text(text), Style::Plain) => {
                yaml11::to_json(yaml11::resolve(&text), &text)
            }
            (Unresolved::Text(text), Style::Other) => Ok(Value::String(text)),
            (Unresolved::Wide(_), Style::Plain) => {
                let token = self.source().number_at(node.start);
                yaml11::to_json(yaml11::resolve(token), token)
            }
            (Unresolved::Wide(number), Style::Other) => yaml11::float_json(number),
        }
    }
}

/// Where a scalar is in the YAML source and how it is written there.
struct Node {
    style: Style,
    /// The offset of its content, past any anchor.
    start: usize,
    line: usize,
}

/// Builds the same `Value` as `serde_json::Value`'s own `Deserialize` (for YAML, the value
/// sigs.k8s.io/yaml's JSON reads back as).
struct ValueSeed<'a, 's> {
    state: &'a mut State<'s>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        let state = self.state;
        let result = deserializer.deserialize_any(ValueSeed { state: &mut *state });
        match (result, state.unresolved.take()) {
            (Err(error), Some(scalar)) => state
                .resolve(scalar, &error.to_string())
                .map_err(|failure| state.fail(failure)),
            (result, _) => result,
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
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
        if self.state.yaml.is_some() {
            return self.unresolved(Unresolved::Wide(v as f64));
        }
        number(de::value::I128Deserializer::new(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        if self.state.yaml.is_some() {
            return self.unresolved(Unresolved::Wide(v as f64));
        }
        number(de::value::U128Deserializer::new(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if self.state.yaml.is_some() {
            return yaml11::float_json(v).map_err(|failure| self.state.fail(failure));
        }
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.visit_string(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        if self.state.yaml.is_some() {
            return self.unresolved(Unresolved::Text(v));
        }
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

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut values = Map::new();
        let mut seen = HashSet::new();
        loop {
            let key = map.next_key_seed(KeySeed {
                seen: &seen,
                state: &mut *self.state,
            })?;
            let key = match key {
                None => return Ok(Value::Object(values)),
                Some(Key::Merge) => {
                    let merged = self.value_at(&mut map, MERGE_KEY.to_string())?;
                    merge(&mut values, merged).map_err(|failure| self.state.fail(failure))?;
                    continue;
                }
                Some(Key::New(key)) => key,
                Some(Key::Repeated { key, line }) => {
                    let path = self.state.path_to(&key);
                    self.state.duplicates.push(DuplicateField {
                        path,
                        key: key.clone(),
                        line,
                    });
                    key
                }
            };
            let value = self.value_at(&mut map, key.clone())?;
            seen.insert(key.clone());
            values.insert(key, value);
        }
    }
}

impl ValueSeed<'_, '_> {
    fn unresolved<E: de::Error>(self, scalar: Unresolved) -> Result<Value, E> {
        self.state.unresolved = Some(scalar);
        Err(E::custom(UNRESOLVED))
    }

    fn value_at<'de, A: MapAccess<'de>>(
        &mut self,
        map: &mut A,
        key: String,
    ) -> Result<Value, A::Error> {
        self.state.path.push(Segment::Key(key));
        let value = map.next_value_seed(ValueSeed {
            state: &mut *self.state,
        });
        self.state.path.pop();
        value
    }
}

/// go-yaml v2's merge of a `<<` value into the mapping holding it: a mapping's entries replace
/// those set before, and of a sequence of mappings the earlier ones win.
fn merge(values: &mut Map<String, Value>, merged: Value) -> Result<(), ConversionError> {
    let mappings = match merged {
        Value::Object(mapping) => vec![mapping],
        Value::Array(items) => items
            .into_iter()
            .rev()
            .map(|item| match item {
                Value::Object(mapping) => Ok(mapping),
                _ => Err(ConversionError::MergeWantsMap),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(ConversionError::MergeWantsMap),
    };
    for mapping in mappings {
        values.extend(mapping);
    }
    Ok(())
}

/// An integer beyond 64 bits, as `serde_json::Value` takes it (an error without
/// arbitrary_precision).
fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    Number::deserialize(deserializer).map(Value::Number)
}

enum Key {
    New(String),
    Repeated {
        key: String,
        line: Option<usize>,
    },
    /// A plain `<<`.
    Merge,
}

/// A mapping key, and whether `seen` already holds it.
struct KeySeed<'a, 'b, 's> {
    seen: &'a HashSet<String>,
    state: &'b mut State<'s>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_, '_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        if self.state.yaml.is_none() {
            let key = String::deserialize(deserializer)?;
            return Ok(match self.seen.contains(&key) {
                true => Key::Repeated { key, line: None },
                false => Key::New(key),
            });
        }
        let text = Cell::new(None);
        let error = match deserializer.deserialize_str(KeyText { text: &text }) {
            Ok(never) => match never {},
            Err(error) => error,
        };
        let Some(text) = text.take() else {
            return Err(error);
        };
        let Node { style, start, line } = self.state.node(&error.to_string());
        let merge_tag = self.state.source().has_merge_tag(start);
        let key = match style {
            _ if text == MERGE_KEY && (style == Style::Plain || merge_tag) => {
                return Ok(Key::Merge)
            }
            Style::Plain => yaml11::key_string(yaml11::resolve(&text), &text)
                .map_err(|failure| self.state.fail::<D::Error>(failure))?,
            Style::Other => text,
        };
        Ok(match self.seen.contains(&key) {
            true => Key::Repeated {
                key,
                line: Some(line),
            },
            false => Key::New(key),
        })
    }
}

/// Takes a key's text and fails, so that the error tells where the key is.
struct KeyText<'a> {
    text: &'a Cell<Option<String>>,
}

impl<'de> Visitor<'de> for KeyText<'_> {
    type Value = Infallible;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Infallible, E> {
        self.text.set(Some(v.to_string()));
        Err(E::custom(UNRESOLVED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_json(text: &str) -> Tracked {
        serde_json::from_str(text).unwrap()
    }

    fn yaml(text: &str) -> Result<Tracked, YamlValueError<serde_yaml_ng::Error>> {
        let source = Source::new(text.as_bytes());
        Tracked::deserialize_yaml(serde_yaml_ng::Deserializer::from_str(text), &source)
    }

    fn from_yaml(text: &str) -> Tracked {
        yaml(text).unwrap()
    }

    #[test]
    fn values_are_those_serde_json_builds() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        let tracked = from_json(text);
        assert_eq!(tracked.value, serde_json::from_str::<Value>(text).unwrap());
        assert!(tracked.duplicates.is_empty());
        let text = "a: [1, -2, 3.5, x, ~, true, {b: {}}]\nd: 0x10\n";
        let expected: Value =
            Value::deserialize(serde_yaml_ng::Deserializer::from_str(text)).unwrap();
        assert_eq!(from_yaml(text).value, expected);
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
        let Err(YamlValueError::Parse(err)) = yaml("? [a]\n: b\n") else {
            panic!("a sequence key decoded");
        };
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn plain_scalars_resolve_by_yaml_1_1_and_quoted_ones_stay_strings() {
        let tracked = from_yaml(concat!(
            "mode: 0400\nquoted: \"0400\"\nsingle: '0400'\nblock: |\n  0400\n",
            "tagged: !!str 0400\nanchored: &m 0644\nalias: *m\nflow: [0x1F, 1_000, on, 'on', 08]\n",
            "float: 3.0\nexp: 1e3\nnothing: ~\nword: yes please\n",
        ));
        assert_eq!(
            tracked.value,
            json!({
                "mode": 256, "quoted": "0400", "single": "0400", "block": "0400\n",
                "tagged": "0400", "anchored": 420, "alias": 420,
                "flow": [31, 1000, true, "on", 8], "float": 3, "exp": 1000, "word": "yes please",
                "nothing": null,
            })
        );
    }

    #[test]
    fn keys_resolve_then_become_strings() {
        let tracked = from_yaml("yes: 1\n'no': 2\n0x1F: 3\n1.5: 4\n\"0400\": 5\n");
        assert_eq!(
            tracked.value,
            json!({"true": 1, "no": 2, "31": 3, "1.5": 4, "0400": 5})
        );
        let tracked = from_yaml("on: 1\ntrue: 2\n");
        assert_eq!(
            tracked.duplicates[0].to_string(),
            r#"line 2: key "true" already set in map"#
        );
        let Err(YamlValueError::Conversion(failure)) = yaml("a:\n  ~: 1\n") else {
            panic!("a null key decoded");
        };
        assert_eq!(
            failure.to_string(),
            "unsupported map key of type: <nil>, key: <nil>"
        );
    }

    #[test]
    fn json_refuses_nan_and_infinities() {
        for (text, said) in [("a: .nan\n", "NaN"), ("a: [-.inf]\n", "-Inf")] {
            let Err(YamlValueError::Conversion(failure)) = yaml(text) else {
                panic!("{text:?} decoded");
            };
            assert_eq!(
                failure.to_string(),
                format!("json: unsupported value: {said}")
            );
        }
    }

    #[test]
    fn integers_beyond_64_bits_resolve_from_their_text() {
        let tracked = from_yaml("a: 0x10000000000000000\nb: \"0x10000000000000000\"\n");
        assert_eq!(tracked.value["a"], json!(18_446_744_073_709_551_616f64));
        assert_eq!(tracked.value["b"], "0x10000000000000000");
    }

    /// go-yaml v2's decode_test.go mergeTests (from yaml.org/type/merge.html) and issue 529.
    #[test]
    fn merge_keys_merge_mappings_as_go_yaml_v2_does() {
        let tracked = from_yaml(concat!(
            "anchors:\n  list:\n",
            "    - &CENTER { \"x\": 1, \"y\": 2 }\n    - &LEFT   { \"x\": 0, \"y\": 2 }\n",
            "    - &BIG    { \"r\": 10 }\n    - &SMALL  { \"r\": 1 }\n",
            "plain:\n  \"x\": 1\n  \"y\": 2\n  \"r\": 10\n  label: center/big\n",
            "mergeOne:\n  << : *CENTER\n  \"r\": 10\n  label: center/big\n",
            "mergeMultiple:\n  << : [ *CENTER, *BIG ]\n  label: center/big\n",
            "override:\n  << : [ *BIG, *LEFT, *SMALL ]\n  \"x\": 1\n  label: center/big\n",
            "shortTag:\n  !!merge \"<<\" : [ *CENTER, *BIG ]\n  label: center/big\n",
            "longTag:\n  !<tag:yaml.org,2002:merge> \"<<\" : [ *CENTER, *BIG ]\n  label: center/big\n",
            "inlineMap:\n  << : {\"x\": 1, \"y\": 2, \"r\": 10}\n  label: center/big\n",
            "inlineSequenceMap:\n  << : [ *CENTER, {\"r\": 10} ]\n  label: center/big\n",
        ));
        let want = json!({"x": 1, "y": 2, "r": 10, "label": "center/big"});
        let tests = tracked.value.as_object().unwrap();
        assert_eq!(tests.len(), 9);
        for (name, test) in tests.iter().filter(|(name, _)| *name != "anchors") {
            assert_eq!(test, &want, "{name}");
        }
        assert!(tracked.duplicates.is_empty());
        let tracked = from_yaml("a: &a {b: 1}\nc:\n  b: 0\n  <<: *a\nd:\n  \"<<\": *a\n");
        assert_eq!(
            tracked.value["c"],
            json!({"b": 1}),
            "a merge replaces earlier keys"
        );
        assert_eq!(
            tracked.value["d"],
            json!({"<<": {"b": 1}}),
            "a quoted << is a key"
        );
        let Err(YamlValueError::Conversion(failure)) = yaml("a: &x null\n<<:\n- *x\nb: &x {}\n")
        else {
            panic!("a merge of null decoded");
        };
        assert_eq!(failure, ConversionError::MergeWantsMap);
    }

    #[test]
    fn a_repeated_key_far_into_a_multi_byte_line_keeps_its_line() {
        let tracked = from_yaml("a: \"é\"\nb: {\"ü\": 1, \"ü\": 2}\n");
        assert_eq!(tracked.duplicates[0].line, Some(2));
    }
}
