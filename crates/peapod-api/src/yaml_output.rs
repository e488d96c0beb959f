//! YAML written so that YAML 1.1 readers (kubectl, kube-apiserver, [`crate::decode`]) read it
//! back as written. serde_yaml_ng quotes only the strings YAML 1.2 would take for something
//! else; here the strings go-yaml v2's encoder (kubectl's) quotes are double-quoted as it
//! quotes them: `"yes"`, `"1_000"`, `"0400"`, timestamps.

use std::cell::RefCell;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::decode::yaml11;

/// Starts and ends the stand-ins written for the strings to quote; nothing is stood in for in
/// a value that holds it.
const MARK: char = '\u{E000}';

/// `value` as block-style YAML (serde_yaml_ng's layout), double-quoting what go-yaml v2 quotes.
pub fn to_yaml(value: &Value) -> Result<String, serde_yaml_ng::Error> {
    if holds_mark(value) {
        return serde_yaml_ng::to_string(value);
    }
    let quoted = RefCell::new(Vec::new());
    let text = serde_yaml_ng::to_string(&StandIns {
        value,
        quoted: &quoted,
    })?;
    Ok(put_back(&text, &quoted.into_inner()))
}

/// Each single-quoted stand-in (serde_yaml_ng quotes them for the reserved indicator `@` they
/// start with) replaced by its string, double-quoted.
fn put_back(text: &str, quoted: &[&str]) -> String {
    let opening = format!("'@{MARK}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&opening) {
        out.push_str(&rest[..at]);
        let after = &rest[at + opening.len()..];
        let original = after.split_once(MARK).and_then(|(index, tail)| {
            let original = quoted.get(index.parse::<usize>().ok()?)?;
            Some((original, tail.strip_prefix('\'')?))
        });
        match original {
            Some((original, tail)) => {
                out.push('"');
                out.push_str(&original.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
                rest = tail;
            }
            None => {
                out.push_str(&opening);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn stand_in(index: usize) -> String {
    format!("@{MARK}{index}{MARK}")
}

/// Whether go-yaml v2 quotes `text` (a multi-line one is a block scalar).
fn needs_quotes(text: &str) -> bool {
    !text.contains(['\n', '\r']) && yaml11::needs_quotes(text)
}

fn holds_mark(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains(MARK),
        Value::Array(items) => items.iter().any(holds_mark),
        Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains(MARK) || holds_mark(value)),
        _ => false,
    }
}

/// `value` with a stand-in for each string to quote, in the order they are written.
struct StandIns<'v, 'q> {
    value: &'v Value,
    quoted: &'q RefCell<Vec<&'v str>>,
}

impl<'v, 'q> StandIns<'v, 'q> {
    fn nested(&self, value: &'v Value) -> StandIns<'v, 'q> {
        StandIns {
            value,
            quoted: self.quoted,
        }
    }

    fn text(&self, text: &'v str) -> String {
        if !needs_quotes(text) {
            return text.to_string();
        }
        let mut quoted = self.quoted.borrow_mut();
        quoted.push(text);
        stand_in(quoted.len() - 1)
    }
}

impl Serialize for StandIns<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::String(text) => serializer.serialize_str(&self.text(text)),
            Value::Array(items) => serializer.collect_seq(items.iter().map(|v| self.nested(v))),
            Value::Object(map) => serializer.collect_map(
                map.iter()
                    .map(|(key, value)| (self.text(key), self.nested(value))),
            ),
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_documents;
    use serde_json::json;

    #[test]
    fn strings_yaml_1_1_would_resolve_are_quoted_keys_too() {
        let value = json!({
            "data": {"a": "yes", "b": "1_000", "c": "on", "d": "0400", "e": "y", "f": "0X1F",
                     "g": "08", "h": "plain", "i": "it's", "yes": "key", "j": "", "k": "~"},
            "n": [1, 2.5, true, null, "NO", "0x_1F"],
        });
        let text = to_yaml(&value).unwrap();
        assert_eq!(
            text,
            "data:\n  a: \"yes\"\n  b: \"1_000\"\n  c: \"on\"\n  d: \"0400\"\n  e: \"y\"\n  \
             f: \"0X1F\"\n  g: \"08\"\n  h: plain\n  i: it's\n  j: \"\"\n  k: \"~\"\n  \"yes\": key\n\
             \"n\":\n- 1\n- 2.5\n- true\n- null\n- \"NO\"\n- \"0x_1F\"\n"
        );
        let back = decode_documents(text.as_bytes()).unwrap();
        assert_eq!(back[0].value, value);
    }

    #[test]
    fn timestamps_are_quoted_as_kubectl_prints_them() {
        let value = json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}});
        assert_eq!(
            to_yaml(&value).unwrap(),
            "metadata:\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n"
        );
    }

    #[test]
    fn what_needs_no_quotes_is_written_as_serde_yaml_ng_writes_it() {
        let value = json!({"metadata": {"name": "a"}, "items": [{"x": 1}], "s": "multi\nline\n"});
        assert_eq!(
            to_yaml(&value).unwrap(),
            serde_yaml_ng::to_string(&value).unwrap()
        );
    }

    #[test]
    fn a_value_holding_the_mark_is_written_unchanged() {
        let value = json!({"a": format!("@{MARK}0{MARK}"), "b": "yes"});
        assert_eq!(
            to_yaml(&value).unwrap(),
            serde_yaml_ng::to_string(&value).unwrap()
        );
    }
}
