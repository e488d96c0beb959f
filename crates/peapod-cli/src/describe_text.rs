//! The pieces kubectl's describers share: its PrefixWriter (two spaces a level), the Labels
//! and Annotations blocks, the Events section, and `printUnstructuredContent` (every field
//! of an object under a "smart" label), laid out by describe's tabwriter.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use serde_json::{Map, Value};

const MAX_ANNOTATION_LEN: usize = 140;
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Describe text being written; [`Text::finish`] aligns it.
#[derive(Debug, Default)]
pub struct Text(String);

impl Text {
    /// One line at `level`, terminal escapes neutralised as kubectl's PrefixWriter does.
    pub fn line(&mut self, level: usize, text: &str) {
        self.0.push_str(&"  ".repeat(level));
        self.0
            .push_str(&text.replace('\x1b', "^[").replace('\r', "\\r"));
        self.0.push('\n');
    }

    /// Text exactly as given (data values, blank lines).
    pub fn raw(&mut self, text: &str) {
        self.0.push_str(text);
    }

    pub fn finish(self) -> String {
        peapod_printers::describe_layout(&self.0)
    }

    /// `Labels:  a=b` then one `key=value` a line, or `<none>`.
    pub fn labels(&mut self, title: &str, labels: Option<&BTreeMap<String, String>>) {
        let lines: Vec<String> = labels
            .into_iter()
            .flatten()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        self.block(title, lines);
    }

    /// `Annotations:` as kubectl prints them: long or multi-line values on lines of their own.
    pub fn annotations(&mut self, annotations: Option<&BTreeMap<String, String>>) {
        let mut lines = Vec::new();
        for (key, value) in annotations.into_iter().flatten() {
            if key == LAST_APPLIED_ANNOTATION {
                continue;
            }
            let value = value.strip_suffix('\n').unwrap_or(value);
            if value.len() + key.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
                let parts = value.split('\n');
                let parts = parts.map(|p| format!("\t  {}", shorten(p, MAX_ANNOTATION_LEN - 2)));
                lines.push(
                    std::iter::once(format!("{key}:"))
                        .chain(parts)
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            } else {
                lines.push(format!("{key}: {value}"));
            }
        }
        self.block("Annotations", lines);
    }

    fn block(&mut self, title: &str, lines: Vec<String>) {
        if lines.is_empty() {
            return self.line(0, &format!("{title}:\t<none>"));
        }
        for (i, line) in lines.iter().enumerate() {
            let lead = if i == 0 {
                format!("{title}:\t")
            } else {
                "\t".to_string()
            };
            self.line(0, &format!("{lead}{line}"));
        }
    }

    /// kubectl's DescribeEvents: `Events:  <none>`, or a table oldest first.
    pub fn events(&mut self, events: &[Event], now: Timestamp) {
        self.raw(&peapod_printers::events_section(events, now));
    }

    /// Every field of `content` sorted by name, maps and lists nested a level deeper, leaving
    /// out the `.a.b` paths in `skip`.
    pub fn unstructured(
        &mut self,
        level: usize,
        content: &Map<String, Value>,
        prefix: &str,
        skip: &[&str],
    ) {
        let mut fields: Vec<&String> = content.keys().collect();
        fields.sort();
        for field in fields {
            let path = format!("{prefix}.{field}");
            if skip.contains(&path.as_str()) {
                continue;
            }
            let label = smart_label(field);
            match &content[field] {
                Value::Object(map) => {
                    self.line(level, &format!("{label}:"));
                    self.unstructured(level + 1, map, &path, skip);
                }
                Value::Array(items) => {
                    self.line(level, &format!("{label}:"));
                    for item in items {
                        match item {
                            Value::Object(map) => self.unstructured(level + 1, map, &path, skip),
                            other => self.line(level + 1, &go_value(other)),
                        }
                    }
                }
                other => self.line(level, &format!("{label}:\t{}", go_value(other))),
            }
        }
    }
}

/// Go's `%v` of a JSON value.
fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        other => crate::table::go_sprint(other),
    }
}

/// kubectl's `smartLabelFor`: `apiVersion` → `API Version`, `creationTimestamp` → `Creation
/// Timestamp`; a field with other characters than letters and `-` stays as it is.
pub fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    camel_case_split(field)
        .into_iter()
        .filter(|part| part != "_")
        .map(|part| {
            let upper = part.to_uppercase();
            if ["API", "URL", "UID", "OSB", "GUID"].contains(&upper.as_str()) {
                return upper;
            }
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// fatih/camelcase's Split: runs of lower case, upper case, digits and other characters,
/// an upper-case run giving its last letter to a lower-case run after it (`HTTPServer`).
fn camel_case_split(text: &str) -> Vec<String> {
    let class = |c: char| match c {
        c if c.is_lowercase() => 1,
        c if c.is_uppercase() => 2,
        c if c.is_numeric() => 3,
        _ => 4,
    };
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in text.chars() {
        let now = class(c);
        match runs.last_mut() {
            Some(run) if now == last => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = now;
    }
    for i in 0..runs.len().saturating_sub(1) {
        let (upper, lower) = (
            runs[i].iter().all(|c| c.is_uppercase()),
            runs[i + 1][0].is_lowercase(),
        );
        if upper && lower && !runs[i].is_empty() {
            let moved = runs[i].pop().unwrap_or_default();
            runs[i + 1].insert(0, moved);
        }
    }
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect())
        .collect()
}

pub use peapod_printers::since;

/// A time as describe prints it (RFC 1123 with a numeric zone, in the system's zone).
pub fn rfc1123z(at: Timestamp) -> String {
    at.to_zoned(TimeZone::system())
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smart_labels_read_as_kubectls() {
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("HTTPServer"), "HTTP Server");
        assert_eq!(smart_label("a.b"), "a.b");
        assert_eq!(
            smart_label("automountServiceAccountToken"),
            "Automount Service Account Token"
        );
    }

    #[test]
    fn unstructured_content_nests_and_skips() {
        let object = json!({"kind": "ServiceAccount", "metadata": {"name": "x", "uid": "u"},
            "secrets": [{"name": "s"}, "plain"], "count": 2, "gone": null});
        let mut text = Text::default();
        text.unstructured(0, object.as_object().unwrap(), "", &[".metadata.name"]);
        assert_eq!(
            text.finish(),
            "Count:  2\nGone:   <nil>\nKind:   ServiceAccount\nMetadata:\n  UID:  u\nSecrets:\n  Name:  s\n  plain\n"
        );
    }

    #[test]
    fn labels_annotations_and_no_events() {
        let labels = BTreeMap::from([("a".to_string(), "1".to_string()), ("b".into(), "2".into())]);
        let mut text = Text::default();
        text.labels("Labels", Some(&labels));
        text.annotations(None);
        text.raw("\n");
        text.events(&[], Timestamp::now());
        assert_eq!(
            text.finish(),
            "Labels:       a=1\n              b=2\nAnnotations:  <none>\n\nEvents:  <none>\n"
        );
    }
}
