//! A Swagger 2.0 document as gnostic's `openapi.v2.Document` protobuf, the body kube-apiserver
//! answers `/openapi/v2` with when asked for
//! `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (what kubectl before 1.27
//! decodes). kube-openapi parses its JSON with gnostic's compiler (`openapiv2/OpenAPIv2.go`,
//! `NewDocument`) and marshals the result; this does the same walk generically over the vendored
//! descriptor (protos/gnostic), message by message:
//!
//! - An object becomes its message: a key is the field of that JSON name (`$ref` is `_ref`);
//!   the `repeated Named*` fields hold the keys their pattern admits, as (name, value) pairs:
//!   `vendor_extension` the `x-` keys, `Paths.path` the `/` keys, `Responses.response_code` the
//!   status codes and `default`, `additional_properties` any key. Any other key is an error.
//! - `Any` (vendor extension values, `default`, `enum`, `example`) holds the value as YAML.
//! - A message of one repeated field wraps its value: `TypeItem` takes a type or a list of
//!   them, `ItemsItem` one schema, `StringArray` a list.
//! - A message that is one oneof (`AdditionalPropertiesItem`, `ParametersItem`, `Parameter`,
//!   `NonBodyParameter`, `SchemaItem`, ...) takes the last alternative the value converts to,
//!   as gnostic's compiler does; [`rules`] holds the required keys and enumerations by which
//!   gnostic tells the alternatives apart.

mod rules;

use std::sync::LazyLock;

use prost_reflect::prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, OneofDescriptor,
    Value as Pb,
};
use serde_json::Value;

/// The full name of the message `/openapi/v2` is encoded as.
pub const DOCUMENT: &str = "openapi.v2.Document";
const ANY: &str = "openapi.v2.Any";

/// The descriptors of the vendored OpenAPIv2.proto, compiled by build.rs.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    let bytes: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapiv2.binpb"));
    DescriptorPool::decode(bytes).expect("build.rs writes a valid descriptor set")
});

/// The descriptor of `openapi.v2.Document`.
pub fn document_descriptor() -> MessageDescriptor {
    POOL.get_message_by_name(DOCUMENT)
        .expect("OpenAPIv2.proto defines openapi.v2.Document")
}

/// Why a Swagger document has no gnostic form, and where.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", if at.is_empty() { "/" } else { at })]
pub struct GnosticError {
    /// A JSON pointer to the offending value.
    pub at: String,
    pub problem: Problem,
}

/// What is wrong with a value, in gnostic's terms.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("expected {expected}, found {found}")]
    Unexpected {
        expected: &'static str,
        found: Value,
    },
    #[error("has invalid property {0:?}")]
    InvalidKey(String),
    #[error("is missing required property {0:?}")]
    MissingKey(&'static str),
    #[error("has {value} for {key}, not one of {allowed:?}")]
    NotAllowed {
        key: &'static str,
        value: String,
        allowed: &'static [&'static str],
    },
    #[error("is no valid {0}")]
    NoAlternative(String),
    #[error("cannot be written as YAML: {0}")]
    Yaml(String),
}

impl GnosticError {
    fn new(problem: Problem) -> GnosticError {
        GnosticError {
            at: String::new(),
            problem,
        }
    }

    fn unexpected(expected: &'static str, found: &Value) -> GnosticError {
        let found = found.clone();
        GnosticError::new(Problem::Unexpected { expected, found })
    }

    /// The same error, one level further from the root: under `key`.
    fn within(mut self, key: impl std::fmt::Display) -> GnosticError {
        let key = key.to_string().replace('~', "~0").replace('/', "~1");
        self.at = format!("/{key}{}", self.at);
        self
    }
}

/// The gnostic protobuf of the Swagger 2.0 document `swagger`.
pub fn encode(swagger: &Value) -> Result<Vec<u8>, GnosticError> {
    Ok(message(&document_descriptor(), swagger)?.encode_to_vec())
}

/// The message `descriptor` describes, from its JSON form.
pub fn message(
    descriptor: &MessageDescriptor,
    json: &Value,
) -> Result<DynamicMessage, GnosticError> {
    if descriptor.full_name() == ANY {
        return any(descriptor, json);
    }
    if let Some(oneof) = sole_oneof(descriptor) {
        return union(descriptor, &oneof, json);
    }
    if let Some(field) = wrapped_field(descriptor) {
        return wrapper(descriptor, &field, json);
    }
    object(descriptor, json)
}

/// The oneof holding every field of `descriptor`, if it is that kind of message.
fn sole_oneof(descriptor: &MessageDescriptor) -> Option<OneofDescriptor> {
    let mut oneofs = descriptor.oneofs();
    let oneof = oneofs.next()?;
    let whole = oneofs.next().is_none() && oneof.fields().len() == descriptor.fields().len();
    whole.then_some(oneof)
}

/// The one field of a message that only wraps a list (`TypeItem`, `ItemsItem`).
fn wrapped_field(descriptor: &MessageDescriptor) -> Option<FieldDescriptor> {
    let mut fields = descriptor.fields();
    let field = fields.next()?;
    let wraps = fields.next().is_none() && field.is_list() && !is_named(&field);
    wraps.then_some(field)
}

/// Whether `field` is a map of the JSON object, a `repeated Named*` of (name, value) pairs.
fn is_named(field: &FieldDescriptor) -> bool {
    let Kind::Message(pair) = field.kind() else {
        return false;
    };
    field.is_list()
        && pair.fields().len() == 2
        && pair.get_field_by_name("name").is_some()
        && pair.get_field_by_name("value").is_some()
}

/// Whether the named field `field` holds the key `key` of its object.
fn admits(field: &FieldDescriptor, key: &str) -> bool {
    match field.name() {
        "vendor_extension" => key.starts_with("x-"),
        "path" => key.starts_with('/'),
        "response_code" => {
            key == "default" || (key.len() == 3 && key.bytes().all(|b| b.is_ascii_digit()))
        }
        "additional_properties" => true,
        _ => false,
    }
}

/// `Any{yaml}`: the value as YAML text, as gnostic marshals the node.
fn any(descriptor: &MessageDescriptor, json: &Value) -> Result<DynamicMessage, GnosticError> {
    let yaml = serde_yaml_ng::to_string(json)
        .map_err(|err| GnosticError::new(Problem::Yaml(err.to_string())))?;
    let mut message = DynamicMessage::new(descriptor.clone());
    message.set_field_by_name("yaml", Pb::String(yaml));
    Ok(message)
}

/// A oneof message: the last alternative `json` converts to wins, as in gnostic's compiler.
fn union(
    descriptor: &MessageDescriptor,
    oneof: &OneofDescriptor,
    json: &Value,
) -> Result<DynamicMessage, GnosticError> {
    let mut chosen = None;
    for field in oneof.fields() {
        let value = match (field.kind(), json) {
            (Kind::Message(alternative), Value::Object(_)) => {
                message(&alternative, json).ok().map(Pb::Message)
            }
            (Kind::Bool, Value::Bool(value)) => Some(Pb::Bool(*value)),
            _ => None,
        };
        if let Some(value) = value {
            chosen = Some((field, value));
        }
    }
    let Some((field, value)) = chosen else {
        let name = descriptor.name().to_owned();
        return Err(GnosticError::new(Problem::NoAlternative(name)));
    };
    let mut message = DynamicMessage::new(descriptor.clone());
    message.set_field(&field, value);
    Ok(message)
}

/// A message wrapping one list: a scalar list takes one value or many, a message list takes
/// one object (gnostic's `ItemsItem` has no tuple form).
fn wrapper(
    descriptor: &MessageDescriptor,
    field: &FieldDescriptor,
    json: &Value,
) -> Result<DynamicMessage, GnosticError> {
    let kind = field.kind();
    let items = match (&kind, json) {
        (Kind::Message(_), Value::Object(_)) => vec![single(&kind, json)?],
        (Kind::Message(_), _) => return Err(GnosticError::unexpected("an object", json)),
        (_, Value::Array(values)) => list(&kind, values)?,
        _ => vec![single(&kind, json)?],
    };
    let mut message = DynamicMessage::new(descriptor.clone());
    message.set_field(field, Pb::List(items));
    Ok(message)
}

/// A message with fields: every key of `json` goes to its field or to a named field.
fn object(descriptor: &MessageDescriptor, json: &Value) -> Result<DynamicMessage, GnosticError> {
    let map = json
        .as_object()
        .ok_or_else(|| GnosticError::unexpected("an object", json))?;
    let rule = rules::of(descriptor.name());
    rule.check(map)?;
    let mut message = DynamicMessage::new(descriptor.clone());
    for (key, value) in map {
        if let Some(field) = plain_field(descriptor, key) {
            let converted = field_value(&field, value).map_err(|err| err.within(key))?;
            message.set_field(&field, converted);
        } else if let Some(field) = descriptor.fields().find(|f| is_named(f) && admits(f, key)) {
            let pair = named_pair(&field, key, value).map_err(|err| err.within(key))?;
            if let Pb::List(pairs) = message.get_field_mut(&field) {
                pairs.push(pair);
            }
        } else if !rule.open {
            return Err(GnosticError::new(Problem::InvalidKey(key.clone())));
        }
    }
    Ok(message)
}

/// The field a JSON key names: its JSON name, or `_ref` for `$ref`; never a named field.
fn plain_field(descriptor: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    if key == "$ref" {
        return descriptor.get_field_by_name("_ref");
    }
    descriptor
        .get_field_by_json_name(key)
        .filter(|field| field.name() != "_ref" && !is_named(field))
}

/// `Named*{name: key, value}`.
fn named_pair(field: &FieldDescriptor, key: &str, json: &Value) -> Result<Pb, GnosticError> {
    let Kind::Message(descriptor) = field.kind() else {
        unreachable!("named fields are messages");
    };
    let value_field = descriptor
        .get_field_by_name("value")
        .expect("named pairs have a value");
    let mut pair = DynamicMessage::new(descriptor);
    pair.set_field_by_name("name", Pb::String(key.to_owned()));
    pair.set_field(&value_field, field_value(&value_field, json)?);
    Ok(Pb::Message(pair))
}

fn field_value(field: &FieldDescriptor, json: &Value) -> Result<Pb, GnosticError> {
    let kind = field.kind();
    if !field.is_list() {
        return single(&kind, json);
    }
    let values = json
        .as_array()
        .ok_or_else(|| GnosticError::unexpected("an array", json))?;
    list(&kind, values).map(Pb::List)
}

fn list(kind: &Kind, values: &[Value]) -> Result<Vec<Pb>, GnosticError> {
    let convert = |(index, value)| single(kind, value).map_err(|err| err.within(index));
    values.iter().enumerate().map(convert).collect()
}

/// One value of `kind`, with gnostic's leniency: a string field takes an integer's text and
/// null, a double field takes an integer.
fn single(kind: &Kind, json: &Value) -> Result<Pb, GnosticError> {
    let value = match (kind, json) {
        (Kind::Message(descriptor), _) => Some(Pb::Message(message(descriptor, json)?)),
        (Kind::String, Value::String(text)) => Some(Pb::String(text.clone())),
        (Kind::String, Value::Number(number)) if !number.is_f64() => {
            Some(Pb::String(number.to_string()))
        }
        (Kind::String, Value::Null) => Some(Pb::String(String::new())),
        (Kind::Bool, Value::Bool(value)) => Some(Pb::Bool(*value)),
        (Kind::Double, Value::Number(number)) => number.as_f64().map(Pb::F64),
        (Kind::Int64, Value::Number(number)) => number.as_i64().map(Pb::I64),
        _ => None,
    };
    value.ok_or_else(|| GnosticError::unexpected(kind_name(kind), json))
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::String => "a string",
        Kind::Bool => "a boolean",
        Kind::Double => "a number",
        Kind::Int64 => "an integer",
        _ => "a value of a kind gnostic does not use",
    }
}

#[cfg(test)]
mod tests;
