//! JSON to protobuf: an answer's object as kube-apiserver writes it for a client that asked for
//! `application/vnd.kubernetes.protobuf`. The inverse of [`decode`](super::decode): for every
//! object `decode(&encode(object)?)? == object`, up to what Go's JSON leaves out.

use base64::Engine;
use prost_reflect::prost::Message;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value as Pb,
};
use serde_json::{Map, Value};

use super::{
    is_list_wrapper, message_descriptor, ProtobufError, INLINE_FIELDS, MAGIC, POOL, UNKNOWN,
};

/// The protobuf body of `object` (its `apiVersion` and `kind` name the message): the magic,
/// then a `runtime.Unknown` around the object's message.
pub fn encode(object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let text = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::MissingType);
    }
    let descriptor = message_descriptor(api_version, kind)?;
    let message = message_of(&descriptor, object)?;
    let mut body = MAGIC.to_vec();
    envelope(api_version, kind, message.encode_to_vec())
        .encode(&mut body)
        .map_err(|err| ProtobufError::Field {
            field: UNKNOWN.into(),
            reason: err.to_string(),
        })?;
    Ok(body)
}

/// `runtime.Unknown{typeMeta, raw}` with empty content encoding and type, as Go writes it.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> DynamicMessage {
    let descriptor = POOL
        .get_message_by_name(UNKNOWN)
        .expect("runtime.Unknown is among the vendored protos");
    let mut unknown = DynamicMessage::new(descriptor.clone());
    let type_field = descriptor
        .get_field_by_name("typeMeta")
        .expect("Unknown.typeMeta");
    let Kind::Message(type_meta_descriptor) = type_field.kind() else {
        unreachable!("Unknown.typeMeta is a message");
    };
    let mut type_meta = DynamicMessage::new(type_meta_descriptor);
    type_meta.set_field_by_name("apiVersion", Pb::String(api_version.into()));
    type_meta.set_field_by_name("kind", Pb::String(kind.into()));
    unknown.set_field(&type_field, Pb::Message(type_meta));
    unknown.set_field_by_name("raw", Pb::Bytes(raw.into()));
    unknown.set_field_by_name("contentEncoding", Pb::String(String::new()));
    unknown.set_field_by_name("contentType", Pb::String(String::new()));
    unknown
}

/// The message `descriptor` describes, from its JSON form.
fn message_of(
    descriptor: &MessageDescriptor,
    json: &Value,
) -> Result<DynamicMessage, ProtobufError> {
    let mut message = DynamicMessage::new(descriptor.clone());
    let name = descriptor.full_name();
    let invalid = |reason: &str| ProtobufError::Field {
        field: name.to_owned(),
        reason: reason.to_owned(),
    };
    match name {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time"
        | "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => {
            let text = json.as_str().ok_or_else(|| invalid("not a time string"))?;
            let time: jiff::Timestamp = text
                .parse()
                .map_err(|err: jiff::Error| invalid(&err.to_string()))?;
            message.set_field_by_name("seconds", Pb::I64(time.as_second()));
            message.set_field_by_name("nanos", Pb::I32(time.subsec_nanosecond()));
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => {
            let text = json
                .as_str()
                .ok_or_else(|| invalid("not a duration string"))?;
            let nanos = parse_go_duration(text).ok_or_else(|| invalid("not a Go duration"))?;
            message.set_field_by_name("duration", Pb::I64(nanos));
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => {
            let text = match json {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => return Err(invalid("not a quantity")),
            };
            message.set_field_by_name("string", Pb::String(text));
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => set_int_or_string(&mut message, json)
            .ok_or_else(|| invalid("neither an integer nor a string"))?,
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => set_raw(&mut message, "raw", json),
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => set_raw(&mut message, "Raw", json),
        _ if is_list_wrapper(descriptor) => {
            let field = descriptor
                .get_field_by_name("items")
                .expect("checked by is_list_wrapper");
            message.set_field(&field, field_value(&field, json)?);
        }
        _ => {
            let object = json.as_object().ok_or_else(|| invalid("not an object"))?;
            set_fields(&mut message, object)?;
        }
    }
    Ok(message)
}

/// Sets the message's fields from an object's keys: `null`s and keys the proto does not know
/// (`apiVersion` and `kind`, fields newer than the vendored protos) are left out; keys of an
/// inlined embedded struct go to that struct.
fn set_fields(
    message: &mut DynamicMessage,
    object: &Map<String, Value>,
) -> Result<(), ProtobufError> {
    let descriptor = message.descriptor();
    let inlined: Vec<FieldDescriptor> = descriptor
        .fields()
        .filter(|field| INLINE_FIELDS.contains(field.full_name()))
        .collect();
    let mut lifted: Vec<Map<String, Value>> = vec![Map::new(); inlined.len()];
    for (key, value) in object {
        if value.is_null() {
            continue;
        }
        if let Some(field) = descriptor.get_field_by_name(key) {
            message.set_field(&field, field_value(&field, value)?);
        } else if let Some(i) = inlined.iter().position(|field| has_field(field, key)) {
            lifted[i].insert(key.clone(), value.clone());
        }
    }
    for (field, fields) in inlined.iter().zip(lifted) {
        if !fields.is_empty() {
            message.set_field(field, field_value(field, &Value::Object(fields))?);
        }
    }
    Ok(())
}

fn has_field(field: &FieldDescriptor, key: &str) -> bool {
    matches!(field.kind(), Kind::Message(inner) if inner.get_field_by_name(key).is_some())
}

/// A field's protobuf value from its JSON: a list, a map or a single value.
fn field_value(field: &FieldDescriptor, json: &Value) -> Result<Pb, ProtobufError> {
    let mismatch = |what: &str| ProtobufError::Field {
        field: field.full_name().to_owned(),
        reason: format!("expected {what}, found {json}"),
    };
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(mismatch("a map"));
        };
        let object = json.as_object().ok_or_else(|| mismatch("an object"))?;
        let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let mut map = std::collections::HashMap::new();
        for (key, value) in object.iter().filter(|(_, value)| !value.is_null()) {
            let key = map_key(&key_field, key).ok_or_else(|| mismatch("a map key"))?;
            map.insert(key, single_value(&value_field, value)?);
        }
        return Ok(Pb::Map(map));
    }
    if field.is_list() {
        let items = json.as_array().ok_or_else(|| mismatch("a list"))?;
        let values = items.iter().map(|item| single_value(field, item));
        return Ok(Pb::List(values.collect::<Result<_, _>>()?));
    }
    single_value(field, json)
}

/// One value of the field's type (a list's element, a map's value, or the field itself).
fn single_value(field: &FieldDescriptor, json: &Value) -> Result<Pb, ProtobufError> {
    let mismatch = || ProtobufError::Field {
        field: field.full_name().to_owned(),
        reason: format!("expected a {:?}, found {json}", field.kind()),
    };
    let value = match field.kind() {
        Kind::Message(descriptor) => Pb::Message(message_of(&descriptor, json)?),
        Kind::Bool => Pb::Bool(json.as_bool().ok_or_else(mismatch)?),
        Kind::String => Pb::String(json.as_str().ok_or_else(mismatch)?.to_owned()),
        Kind::Bytes => {
            let text = json.as_str().ok_or_else(mismatch)?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(text);
            Pb::Bytes(bytes.map_err(|_| mismatch())?.into())
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Pb::I32(
            json.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(mismatch)?,
        ),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Pb::I64(json.as_i64().ok_or_else(mismatch)?),
        Kind::Uint32 | Kind::Fixed32 => Pb::U32(
            json.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(mismatch)?,
        ),
        Kind::Uint64 | Kind::Fixed64 => Pb::U64(json.as_u64().ok_or_else(mismatch)?),
        Kind::Double => Pb::F64(json.as_f64().ok_or_else(mismatch)?),
        Kind::Float => Pb::F32(json.as_f64().ok_or_else(mismatch)? as f32),
        Kind::Enum(_) => Pb::EnumNumber(
            json.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(mismatch)?,
        ),
    };
    Ok(value)
}

fn map_key(field: &FieldDescriptor, key: &str) -> Option<MapKey> {
    Some(match field.kind() {
        Kind::String => MapKey::String(key.to_owned()),
        Kind::Bool => MapKey::Bool(key.parse().ok()?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(key.parse().ok()?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(key.parse().ok()?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().ok()?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().ok()?),
        _ => return None,
    })
}

/// `IntOrString`: a number is type 0 with `intVal`, a string type 1 with `strVal`.
fn set_int_or_string(message: &mut DynamicMessage, json: &Value) -> Option<()> {
    match json {
        Value::String(text) => {
            message.set_field_by_name("type", Pb::I64(1));
            message.set_field_by_name("strVal", Pb::String(text.clone()));
        }
        Value::Number(number) => {
            let n = i32::try_from(number.as_i64()?).ok()?;
            message.set_field_by_name("type", Pb::I64(0));
            message.set_field_by_name("intVal", Pb::I32(n));
        }
        _ => return None,
    }
    Some(())
}

/// `RawExtension.raw` / `FieldsV1.Raw`: the value's JSON bytes.
fn set_raw(message: &mut DynamicMessage, field: &str, json: &Value) {
    let bytes = serde_json::to_vec(json).unwrap_or_default();
    message.set_field_by_name(field, Pb::Bytes(bytes.into()));
}

/// Go's `time.ParseDuration`: a sign, then numbers with units (`ns`, `us`, `µs`, `ms`, `s`,
/// `m`, `h`), fractions allowed: `1h2m3.5s`, `-1.5ms`, `0`.
fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("1.5µs"), Some(1_500));
        assert_eq!(parse_go_duration("1m0s"), Some(60_000_000_000));
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(3_723_500_000_000));
        assert_eq!(parse_go_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_go_duration("2"), None);
        assert_eq!(parse_go_duration("2 days"), None);
    }

    #[test]
    fn an_object_round_trips() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "creationTimestamp": "2026-12-03T06:00:00Z",
                "managedFields": [{"manager": "kubectl", "operation": "Apply",
                    "apiVersion": "v1", "time": "2026-12-03T06:00:00Z",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {
                "containers": [{
                    "name": "c",
                    "image": "busybox",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
                }],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "terminationGracePeriodSeconds": 30,
                "enableServiceLinks": false,
            },
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False",
                "lastTransitionTime": "2026-12-03T06:00:01Z"}]},
        });
        let body = encode(&pod).unwrap();
        assert!(body.starts_with(&MAGIC));
        assert_eq!(super::super::decode(&body).unwrap(), pod);
    }

    #[test]
    fn unknown_fields_and_nulls_are_left_out() {
        let map = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "futureField": 1, "labels": null}, "data": {"a": "b"}});
        let decoded = super::super::decode(&encode(&map).unwrap()).unwrap();
        let expected = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"a": "b"}});
        assert_eq!(decoded, expected);
    }

    #[test]
    fn kinds_without_a_message_and_wrong_types_are_errors() {
        let metrics = json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics"});
        assert!(matches!(
            encode(&metrics),
            Err(ProtobufError::UnknownKind { .. })
        ));
        let wrong = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 1}});
        assert!(matches!(encode(&wrong), Err(ProtobufError::Field { .. })));
        assert!(matches!(
            encode(&json!({})),
            Err(ProtobufError::MissingType)
        ));
    }
}
