//! Protobuf to JSON: a request body's object as the JSON form Go's `encoding/json` writes.

use base64::Engine;
use prost_reflect::{DynamicMessage, FieldDescriptor, MapKey, ReflectMessage, Value as Pb};
use serde_json::{Map, Number, Value};

use super::{
    is_list_wrapper, message_descriptor, ProtobufError, INLINE_FIELDS, MAGIC, POOL, UNKNOWN,
    ZERO_FIELDS,
};

/// Decodes a Kubernetes protobuf body (magic, envelope, object) into the object's JSON form,
/// `apiVersion` and `kind` (from the envelope) included.
pub fn decode(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let rest = bytes.strip_prefix(&MAGIC).ok_or(ProtobufError::Magic)?;
    let envelope = Envelope::decode(rest)?;
    let descriptor = message_descriptor(&envelope.api_version, &envelope.kind)?;
    let message =
        DynamicMessage::decode(descriptor, envelope.raw.as_slice()).map_err(|source| {
            ProtobufError::Object {
                kind: envelope.kind.clone(),
                source,
            }
        })?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(envelope.api_version));
    object.insert("kind".into(), Value::String(envelope.kind));
    if let Some(Value::Object(fields)) = message_json(&message)? {
        object.extend(fields);
    }
    Ok(Value::Object(object))
}

/// The `runtime.Unknown` around the object.
struct Envelope {
    api_version: String,
    kind: String,
    raw: Vec<u8>,
}

impl Envelope {
    fn decode(bytes: &[u8]) -> Result<Envelope, ProtobufError> {
        let descriptor = POOL
            .get_message_by_name(UNKNOWN)
            .expect("runtime.Unknown is among the vendored protos");
        let unknown = DynamicMessage::decode(descriptor, bytes).map_err(ProtobufError::Envelope)?;
        let string = |message: &DynamicMessage, name: &str| {
            message
                .get_field_by_name(name)
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let encoding = string(&unknown, "contentEncoding");
        if !encoding.is_empty() {
            return Err(ProtobufError::ContentEncoding(encoding));
        }
        let type_meta = unknown.get_field_by_name("typeMeta");
        let type_meta = type_meta.as_deref().and_then(Pb::as_message);
        let (api_version, kind) = match type_meta {
            Some(meta) => (string(meta, "apiVersion"), string(meta, "kind")),
            None => Default::default(),
        };
        if api_version.is_empty() || kind.is_empty() {
            return Err(ProtobufError::MissingType);
        }
        let raw = unknown
            .get_field_by_name("raw")
            .and_then(|value| value.as_bytes().map(|bytes| bytes.to_vec()))
            .unwrap_or_default();
        Ok(Envelope {
            api_version,
            kind,
            raw,
        })
    }
}

/// A message's JSON: the Kubernetes types with a JSON form of their own, or an object of its
/// fields. `None` for what Go writes as `null` (the zero time, an empty `RawExtension`).
fn message_json(message: &DynamicMessage) -> Result<Option<Value>, ProtobufError> {
    let descriptor = message.descriptor();
    let name = descriptor.full_name();
    match name {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => time(message, false),
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => time(message, true),
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => {
            let nanos = get(message, "duration")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            Ok(Some(Value::String(go_duration(nanos))))
        }
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => {
            let text = get(message, "string").and_then(|v| v.as_str().map(str::to_owned));
            let text = text.unwrap_or_default();
            Ok(Some(Value::String(if text.is_empty() {
                "0".into()
            } else {
                text
            })))
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => Ok(Some(int_or_string(message))),
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => embedded_json(message, "raw", name),
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => embedded_json(message, "Raw", name),
        // Go named slices (`type ExtraValue []string`): a message of one `items` list.
        _ if is_list_wrapper(&descriptor) => {
            let items = message.get_field_by_name("items");
            let items = items.as_deref().and_then(Pb::as_list).unwrap_or(&[]);
            let values = items.iter().map(element_json).collect::<Result<_, _>>()?;
            Ok(Some(Value::Array(values)))
        }
        _ => object_json(message).map(Some),
    }
}

/// A plain message: its set fields by their (JSON) names, as Go's `omitempty` leaves them, the
/// fields of inlined embedded structs lifted in.
fn object_json(message: &DynamicMessage) -> Result<Value, ProtobufError> {
    let mut object = Map::new();
    for (field, value) in message.fields() {
        match field_json(&field, value)? {
            None => {}
            Some(Value::Object(inner)) if INLINE_FIELDS.contains(field.full_name()) => {
                object.extend(inner);
            }
            Some(json) => {
                object.insert(field.name().to_owned(), json);
            }
        }
    }
    Ok(Value::Object(object))
}

/// One field's JSON, or `None` when Go's JSON leaves it out.
fn field_json(field: &FieldDescriptor, value: &Pb) -> Result<Option<Value>, ProtobufError> {
    match value {
        Pb::List(items) if items.is_empty() => Ok(None),
        Pb::List(items) => {
            let values = items.iter().map(element_json).collect::<Result<_, _>>()?;
            Ok(Some(Value::Array(values)))
        }
        Pb::Map(entries) if entries.is_empty() => Ok(None),
        Pb::Map(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                object.insert(map_key(key), element_json(value)?);
            }
            Ok(Some(Value::Object(object)))
        }
        Pb::Message(message) => message_json(message),
        scalar if is_zero(scalar) && !ZERO_FIELDS.contains(field.full_name()) => Ok(None),
        scalar => scalar_json(scalar, field).map(Some),
    }
}

/// A list element or map value: kept whatever its value (`null` for a message Go writes so).
fn element_json(value: &Pb) -> Result<Value, ProtobufError> {
    match value {
        Pb::Message(message) => Ok(message_json(message)?.unwrap_or(Value::Null)),
        Pb::List(_) | Pb::Map(_) => Err(ProtobufError::Field {
            field: "(element)".into(),
            reason: "nested lists and maps do not occur in Kubernetes protos".into(),
        }),
        scalar => Ok(scalar_to_json(scalar).unwrap_or(Value::Null)),
    }
}

fn scalar_json(value: &Pb, field: &FieldDescriptor) -> Result<Value, ProtobufError> {
    scalar_to_json(value).ok_or_else(|| ProtobufError::Field {
        field: field.full_name().to_owned(),
        reason: "not a finite number".into(),
    })
}

/// A scalar as Go's JSON writes it (`[]byte` as base64); `None` for NaN and infinities.
fn scalar_to_json(value: &Pb) -> Option<Value> {
    let json = match value {
        Pb::Bool(b) => Value::Bool(*b),
        Pb::I32(n) => Value::from(*n),
        Pb::I64(n) => Value::from(*n),
        Pb::U32(n) => Value::from(*n),
        Pb::U64(n) => Value::from(*n),
        Pb::EnumNumber(n) => Value::from(*n),
        Pb::F32(n) => Value::Number(Number::from_f64(f64::from(*n))?),
        Pb::F64(n) => Value::Number(Number::from_f64(*n)?),
        Pb::String(s) => Value::String(s.clone()),
        Pb::Bytes(bytes) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        Pb::Message(_) | Pb::List(_) | Pb::Map(_) => return None,
    };
    Some(json)
}

fn is_zero(value: &Pb) -> bool {
    match value {
        Pb::Bool(b) => !b,
        Pb::I32(n) => *n == 0,
        Pb::I64(n) => *n == 0,
        Pb::U32(n) => *n == 0,
        Pb::U64(n) => *n == 0,
        Pb::EnumNumber(n) => *n == 0,
        Pb::F32(n) => *n == 0.0,
        Pb::F64(n) => *n == 0.0,
        Pb::String(s) => s.is_empty(),
        Pb::Bytes(bytes) => bytes.is_empty(),
        Pb::Message(_) | Pb::List(_) | Pb::Map(_) => false,
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

/// A field of `message` by name (its default when unset).
fn get(message: &DynamicMessage, name: &str) -> Option<Pb> {
    message
        .get_field_by_name(name)
        .map(|value| value.into_owned())
}

/// `Time` as `2006-01-02T15:04:05Z`, `MicroTime` as `2006-01-02T15:04:05.000000Z`; the zero
/// time (an empty message, or 0001-01-01) is Go's `null`.
fn time(message: &DynamicMessage, micro: bool) -> Result<Option<Value>, ProtobufError> {
    const GO_ZERO_TIME: i64 = -62_135_596_800;
    let seconds = get(message, "seconds")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let nanos = get(message, "nanos").and_then(|v| v.as_i32()).unwrap_or(0);
    if message.fields().next().is_none() || (seconds == GO_ZERO_TIME && nanos == 0) {
        return Ok(None);
    }
    let timestamp = jiff::Timestamp::new(seconds, nanos).map_err(|err| ProtobufError::Field {
        field: message.descriptor().full_name().to_owned(),
        reason: err.to_string(),
    })?;
    let whole = timestamp.strftime("%Y-%m-%dT%H:%M:%S");
    let text = if micro {
        format!("{whole}.{:06}Z", timestamp.subsec_microsecond())
    } else {
        format!("{whole}Z")
    };
    Ok(Some(Value::String(text)))
}

/// `IntOrString`: type 1 is the string `strVal`, anything else the number `intVal`.
fn int_or_string(message: &DynamicMessage) -> Value {
    if get(message, "type").and_then(|v| v.as_i64()) == Some(1) {
        let text = get(message, "strVal").and_then(|v| v.as_str().map(str::to_owned));
        Value::String(text.unwrap_or_default())
    } else {
        Value::from(get(message, "intVal").and_then(|v| v.as_i32()).unwrap_or(0))
    }
}

/// `RawExtension.raw` / `FieldsV1.Raw`: the JSON (or nested protobuf object) they carry.
fn embedded_json(
    message: &DynamicMessage,
    field: &str,
    name: &str,
) -> Result<Option<Value>, ProtobufError> {
    let raw = get(message, field);
    let bytes = raw
        .as_ref()
        .and_then(Pb::as_bytes)
        .map_or(&[][..], |bytes| bytes.as_ref());
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.starts_with(&MAGIC) {
        return decode(bytes).map(Some);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|err| ProtobufError::Field {
            field: format!("{name}.{field}"),
            reason: format!("not JSON: {err}"),
        })
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1m0s`, `1.5ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    const SECOND: u64 = 1_000_000_000;
    let sign = if nanos < 0 { "-" } else { "" };
    let d = nanos.unsigned_abs();
    let body = match d {
        0 => return "0s".into(),
        1..1_000 => format!("{d}ns"),
        1_000..1_000_000 => format!("{}µs", decimal(d, 1_000)),
        1_000_000..SECOND => format!("{}ms", decimal(d, 1_000_000)),
        _ => {
            let (hours, minutes) = (d / (3600 * SECOND), d / (60 * SECOND) % 60);
            let seconds = decimal(d % (60 * SECOND), SECOND);
            match (hours, minutes) {
                (0, 0) => format!("{seconds}s"),
                (0, m) => format!("{m}m{seconds}s"),
                (h, m) => format!("{h}h{m}m{seconds}s"),
            }
        }
    };
    format!("{sign}{body}")
}

/// `value / scale` with the fraction's trailing zeros dropped: `decimal(1500, 1000)` is `1.5`.
fn decimal(value: u64, scale: u64) -> String {
    let (whole, fraction) = (value / scale, value % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(60_000_000_000), "1m0s");
        assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
    }

    #[test]
    fn rejects_bodies_without_the_prefix() {
        assert!(matches!(decode(b"{}"), Err(ProtobufError::Magic)));
    }
}
