//! Objects printed as `-o json` (kubectl's four-space indent) and `-o yaml`, and the `List`
//! kubectl wraps several objects in.

use serde::Serialize;
use serde_json::{json, Value};

/// Pretty JSON with kubectl's four-space indent and a final newline.
pub fn json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into a Vec cannot fail.
    let _ = value.serialize(&mut serializer);
    out.push(b'\n');
    String::from_utf8(out).unwrap_or_default()
}

/// YAML as kubectl prints it (keys sorted, block style, strings YAML 1.1 would read as
/// another type quoted).
pub fn yaml(value: &Value) -> String {
    peapod_api::yaml_output::to_yaml(value).unwrap_or_default()
}

/// kubectl's wrapper for zero or several objects.
pub fn list(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

/// List items come without apiVersion/kind; printed objects carry them.
pub fn with_type_meta(mut item: Value, api_version: &str, kind: &str) -> Value {
    if let Some(map) = item.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| api_version.into());
        map.entry("kind").or_insert_with(|| kind.into());
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_four_spaces_and_sorted_keys() {
        let text = json(&json!({"kind": "Pod", "apiVersion": "v1"}));
        assert_eq!(
            text,
            "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\"\n}\n"
        );
    }

    #[test]
    fn yaml_block_style() {
        let text = yaml(&json!({"metadata": {"name": "a"}, "items": [{"x": 1}]}));
        assert_eq!(text, "items:\n- x: 1\nmetadata:\n  name: a\n");
    }

    #[test]
    fn list_shape_and_type_meta() {
        let item = with_type_meta(json!({"metadata": {"name": "a"}}), "v1", "Pod");
        let kept = with_type_meta(json!({"kind": "X"}), "v1", "Pod");
        assert_eq!(kept["kind"], "X");
        assert_eq!(
            list(vec![item]),
            json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                   "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}]})
        );
    }
}
