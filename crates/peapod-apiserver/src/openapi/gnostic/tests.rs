use prost_reflect::{DynamicMessage, ReflectMessage};
use serde_json::json;

use super::*;

fn descriptor(name: &str) -> MessageDescriptor {
    POOL.get_message_by_name(&format!("openapi.v2.{name}"))
        .unwrap()
}

fn convert(name: &str, json: Value) -> Result<DynamicMessage, GnosticError> {
    message(&descriptor(name), &json)
}

/// The message in field `name`.
fn sub(message: &DynamicMessage, name: &str) -> DynamicMessage {
    let value = message.get_field_by_name(name).expect("a known field");
    value.as_message().expect("a message field").clone()
}

fn string(message: &DynamicMessage, name: &str) -> String {
    let value = message.get_field_by_name(name).expect("a known field");
    value.as_str().expect("a string field").to_owned()
}

fn strings(message: &DynamicMessage, name: &str) -> Vec<String> {
    let value = message.get_field_by_name(name).expect("a known field");
    let list = value.as_list().expect("a list field");
    list.iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The value of the pair named `key` in the named field `field`.
fn pair(message: &DynamicMessage, field: &str, key: &str) -> DynamicMessage {
    let value = message.get_field_by_name(field).expect("a known field");
    let pairs = value.as_list().expect("a named field");
    let found = pairs
        .iter()
        .map(|p| p.as_message().unwrap())
        .find(|p| string(p, "name") == key)
        .unwrap_or_else(|| panic!("no {key} in {field}"));
    sub(found, "value")
}

/// The oneof alternative a union message holds, and its message.
fn alternative(message: &DynamicMessage) -> (String, DynamicMessage) {
    let (field, value) = message.fields().next().expect("one alternative set");
    let chosen = value.as_message().expect("a message alternative").clone();
    (field.name().to_owned(), chosen)
}

#[test]
fn a_schema_takes_refs_types_items_maps_and_extensions() {
    let schema = convert(
        "Schema",
        json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {"$ref": "#/definitions/Spec", "description": "The spec."},
                "ports": {"type": "array", "items": {"$ref": "#/definitions/Port"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
            },
            "x-kubernetes-group-version-kind": [{"group": "", "kind": "Thing", "version": "v1"}],
        }),
    )
    .unwrap();
    assert_eq!(strings(&sub(&schema, "type"), "value"), ["object"]);
    assert_eq!(strings(&schema, "required"), ["spec"]);
    let spec = pair(&sub(&schema, "properties"), "additional_properties", "spec");
    assert_eq!(string(&spec, "_ref"), "#/definitions/Spec");
    assert_eq!(string(&spec, "description"), "The spec.");
    let ports = pair(
        &sub(&schema, "properties"),
        "additional_properties",
        "ports",
    );
    let items = sub(&ports, "items");
    let item = items.get_field_by_name("schema").unwrap();
    let item = item.as_list().unwrap()[0].as_message().unwrap().clone();
    assert_eq!(string(&item, "_ref"), "#/definitions/Port");
    let labels = pair(
        &sub(&schema, "properties"),
        "additional_properties",
        "labels",
    );
    let (chosen, values) = alternative(&sub(&labels, "additional_properties"));
    assert_eq!(chosen, "schema");
    assert_eq!(strings(&sub(&values, "type"), "value"), ["string"]);
    let mode = pair(&sub(&schema, "properties"), "additional_properties", "mode");
    assert_eq!(string(&sub(&mode, "default"), "yaml"), "a\n");
    let gvk = pair(
        &schema,
        "vendor_extension",
        "x-kubernetes-group-version-kind",
    );
    let yaml: Value = serde_yaml_ng::from_str(&string(&gvk, "yaml")).unwrap();
    assert_eq!(
        yaml,
        json!([{"group": "", "kind": "Thing", "version": "v1"}])
    );
}

#[test]
fn additional_properties_false_survives_the_wire() {
    let schema = convert("Schema", json!({"additionalProperties": false})).unwrap();
    let bytes = schema.encode_to_vec();
    let decoded = DynamicMessage::decode(descriptor("Schema"), bytes.as_slice()).unwrap();
    let item = sub(&decoded, "additional_properties");
    let boolean = item.descriptor().get_field_by_name("boolean").unwrap();
    assert!(item.has_field(&boolean), "the oneof's false is encoded");
    assert_eq!(item.get_field(&boolean).as_bool(), Some(false));
}

#[test]
fn parameters_take_the_alternative_gnostic_takes() {
    let operation = convert(
        "Operation",
        json!({
            "parameters": [
                {"in": "body", "name": "body", "required": true, "schema": {"$ref": "#/definitions/Patch"}},
                {"in": "query", "name": "dryRun", "type": "string"},
                {"in": "path", "name": "name", "required": true, "type": "string"},
                {"$ref": "#/parameters/pretty"},
            ],
            "responses": {"200": {"description": "OK", "schema": {"type": "file"}}},
        }),
    )
    .unwrap();
    let parameters = operation.get_field_by_name("parameters").unwrap();
    let chosen: Vec<String> = parameters
        .as_list()
        .unwrap()
        .iter()
        .map(|item| {
            let (outer, inner) = alternative(item.as_message().unwrap());
            match outer.as_str() {
                "parameter" => {
                    let (kind, parameter) = alternative(&inner);
                    match kind.as_str() {
                        "non_body_parameter" => alternative(&parameter).0,
                        _ => kind,
                    }
                }
                _ => outer,
            }
        })
        .collect();
    assert_eq!(
        chosen,
        [
            "body_parameter",
            "query_parameter_sub_schema",
            "path_parameter_sub_schema",
            "json_reference"
        ]
    );
    let ok = pair(&sub(&operation, "responses"), "response_code", "200");
    let (_, response) = alternative(&ok);
    assert_eq!(alternative(&sub(&response, "schema")).0, "file_schema");
}

#[test]
fn keys_go_where_their_pattern_admits_them_and_nowhere_else() {
    let responses = json!({"default": {"description": "Error"}, "x-note": "kept"});
    let converted = convert("Responses", responses).unwrap();
    assert_eq!(
        alternative(&pair(&converted, "response_code", "default")).0,
        "response"
    );
    assert_eq!(
        string(&pair(&converted, "vendor_extension", "x-note"), "yaml"),
        "kept\n"
    );
    let err = convert("Responses", json!({"ok": {"description": "OK"}})).unwrap_err();
    assert!(
        matches!(err.problem, Problem::InvalidKey(ref key) if key == "ok"),
        "{err}"
    );
    let paths = json!({"/api": {"get": {"responses": {"200": {"description": "OK"}}}}});
    assert!(convert("Paths", paths).is_ok());
    assert!(convert("Paths", json!({"api": {}})).is_err());
}

#[test]
fn errors_point_at_the_offending_value() {
    let schema = json!({"properties": {"spec": {"type": "object", "nullable": true}}});
    let err = convert("Schema", schema).unwrap_err();
    assert_eq!(err.at, "/properties/spec");
    assert!(matches!(err.problem, Problem::InvalidKey(ref key) if key == "nullable"));
    let err = convert("Info", json!({"title": "Kubernetes"})).unwrap_err();
    assert!(
        matches!(err.problem, Problem::MissingKey("version")),
        "{err}"
    );
    let err = convert("Schema", json!({"maxLength": "long"})).unwrap_err();
    assert_eq!(err.at, "/maxLength");
    let document = json!({"swagger": "3.0", "info": {"title": "t", "version": "v"}, "paths": {}});
    let err = encode(&document).unwrap_err();
    assert!(
        matches!(err.problem, Problem::NotAllowed { key: "swagger", .. }),
        "{err}"
    );
}
