//! The group versions' OpenAPI v3 documents as the one Swagger 2.0 document kube-apiserver
//! serves at `/openapi/v2`: components become `definitions` (refs `#/definitions/...`), a
//! request body becomes the `body` parameter and the operation's `consumes`, a parameter's
//! schema its `type`, a response's content its `schema` and the operation's `produces`. A v3
//! `allOf` of one reference (how a described field refers to its type) is the reference with
//! its description, as kube writes v2.

use serde_json::{json, Map, Value};

use super::document::SCHEMAS;
use crate::discovery::GIT_VERSION;

pub const DEFINITIONS: &str = "#/definitions/";

/// OpenAPI 3 schema keywords with no Swagger 2.0 counterpart: kube's v2 leaves such fields
/// untyped.
const V3_ONLY: &[&str] = &[
    "nullable",
    "oneOf",
    "anyOf",
    "not",
    "writeOnly",
    "deprecated",
];
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

/// The Swagger 2.0 document of every path and schema of `documents`.
pub fn swagger<'a>(documents: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for document in documents {
        if let Some(schemas) = document["components"]["schemas"].as_object() {
            for (name, schema) in schemas {
                definitions.insert(name.clone(), schema_v2(schema));
            }
        }
        if let Some(items) = document["paths"].as_object() {
            for (path, item) in items {
                paths.insert(path.clone(), path_item(item));
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey",
            },
        },
        "security": [{"BearerToken": []}],
    })
}

/// A schema with its references to definitions and without v3-only keywords.
pub fn schema_v2(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "$ref" => reference_v2(value),
            "allOf" => match sole_reference(value) {
                Some(target) => {
                    out.insert("$ref".into(), reference_v2(target));
                    continue;
                }
                None => each(value, schema_v2),
            },
            "properties" => map_values(value, schema_v2),
            "items" | "additionalProperties" => schema_v2(value),
            key if V3_ONLY.contains(&key) => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    Value::Object(out)
}

/// The target of `[{"$ref": target}]`.
fn sole_reference(all_of: &Value) -> Option<&Value> {
    match all_of.as_array()?.as_slice() {
        [Value::Object(only)] if only.len() == 1 => only.get("$ref"),
        _ => None,
    }
}

fn reference_v2(reference: &Value) -> Value {
    match reference.as_str().and_then(|r| r.strip_prefix(SCHEMAS)) {
        Some(name) => Value::String(format!("{DEFINITIONS}{name}")),
        None => reference.clone(),
    }
}

fn each(values: &Value, convert: fn(&Value) -> Value) -> Value {
    match values {
        Value::Array(items) => items.iter().map(convert).collect(),
        other => other.clone(),
    }
}

fn map_values(values: &Value, convert: fn(&Value) -> Value) -> Value {
    match values {
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| (key.clone(), convert(value)))
            .collect::<Map<_, _>>()
            .into(),
        other => other.clone(),
    }
}

fn path_item(item: &Value) -> Value {
    let Value::Object(map) = item else {
        return item.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "parameters" => each(value, parameter),
            method if METHODS.contains(&method) => operation(value),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    Value::Object(out)
}

/// A non-body parameter: its schema's `type` (and `format`, `items`...) on the parameter;
/// `required` only when true, as kube writes it.
fn parameter(parameter: &Value) -> Value {
    let Value::Object(map) = parameter else {
        return parameter.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "schema" => {
                if let Value::Object(schema) = schema_v2(value) {
                    out.extend(schema);
                }
            }
            "required" if *value == false => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

fn operation(operation: &Value) -> Value {
    let Value::Object(map) = operation else {
        return operation.clone();
    };
    let mut out = Map::new();
    let mut parameters = Vec::new();
    let consumes = match map.get("requestBody") {
        Some(body) => {
            parameters.push(body_parameter(body));
            media_types(&body["content"])
        }
        None => vec!["*/*".to_owned()],
    };
    if let Some(Value::Array(given)) = map.get("parameters") {
        parameters.extend(given.iter().map(parameter));
    }
    for (key, value) in map {
        match key.as_str() {
            "requestBody" | "parameters" => {}
            "responses" => {
                out.insert(key.clone(), map_values(value, response));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if !parameters.is_empty() {
        out.insert("parameters".into(), Value::Array(parameters));
    }
    out.insert("consumes".into(), json!(consumes));
    let produces = produced(map.get("responses").unwrap_or(&Value::Null));
    if !produces.is_empty() {
        out.insert("produces".into(), json!(produces));
    }
    out.insert("schemes".into(), json!(["https"]));
    Value::Object(out)
}

/// `{"in": "body", "name": "body", "schema": ...}` of a request body.
fn body_parameter(body: &Value) -> Value {
    let mut parameter = json!({"in": "body", "name": "body"});
    if let Some(schema) = first_schema(&body["content"]) {
        parameter["schema"] = schema_v2(schema);
    }
    if body["required"] == true {
        parameter["required"] = true.into();
    }
    parameter
}

fn response(response: &Value) -> Value {
    let Value::Object(map) = response else {
        return response.clone();
    };
    let mut out: Map<String, Value> = map
        .iter()
        .filter(|(key, _)| *key != "content")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if let Some(schema) = map.get("content").and_then(first_schema) {
        out.insert("schema".into(), schema_v2(schema));
    }
    Value::Object(out)
}

/// The schema of a content map's first media type (v2 has one schema for all).
fn first_schema(content: &Value) -> Option<&Value> {
    content
        .as_object()?
        .values()
        .find_map(|media| media.get("schema"))
}

fn media_types(content: &Value) -> Vec<String> {
    content
        .as_object()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default()
}

/// The media types of every response, in order, each once.
fn produced(responses: &Value) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for response in responses.as_object().into_iter().flat_map(Map::values) {
        for media in media_types(&response["content"]) {
            if !types.contains(&media) {
                types.push(media);
            }
        }
    }
    types
}
