//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded into the
//! JSON form the generic handlers take, so a protobuf body and a JSON body of the same object give
//! the same [`Value`]. client-go 1.32's typed clients send these (`kubectl create configmap`,
//! `create deployment`, `autoscale`, `drain`'s evictions, ...) with no JSON fallback.
//!
//! A body is the magic `k8s\0` then a `runtime.Unknown` envelope (apimachinery
//! `pkg/runtime/serializer/protobuf`): `typeMeta` names the object's apiVersion and kind, `raw`
//! holds the object's message from k8s.io/api's `generated.proto`. Those protos are vendored in
//! `protos/` and compiled by build.rs into a descriptor set, so decoding is generic: every message
//! of a vendored group decodes by reflection, field names being the JSON names. The mapping to
//! JSON follows Go's `encoding/json` over the decoded Go struct:
//!
//! - `Time` and `MicroTime` are RFC 3339 strings (the zero time, sent as an empty message, is
//!   left out), `Duration` is Go's duration string, `Quantity` its string, `IntOrString` a number
//!   or a string, `RawExtension` and `FieldsV1` the JSON they carry, `bytes` base64.
//! - gogo-protobuf writes every non-pointer field even when zero, so a zero scalar is kept only
//!   for the fields whose zero Go's JSON keeps (pointers and fields without `omitempty`), listed
//!   by `protos/update.py` in `protos/zero-fields.txt`. Empty lists and maps are left out; messages
//!   are kept even when empty (`emptyDir: {}`, `status: {}`), as Go writes non-pointer structs.
//! - Embedded structs tagged `json:",inline"` (`Volume.volumeSource`, listed in
//!   `protos/inline-fields.txt`) have their fields lifted into the outer object.
//! - Fields unknown to the vendored protos are dropped, as kube-apiserver's decoder drops them.

use std::collections::HashSet;
use std::sync::LazyLock;

use base64::Engine;
use prost_reflect::prost::DecodeError;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, MapKey, ReflectMessage, Value as Pb,
};
use serde_json::{Map, Number, Value};

/// The four bytes every Kubernetes protobuf body starts with: `k8s\0`.
pub const MAGIC: [u8; 4] = *b"k8s\0";

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("the body does not start with the Kubernetes protobuf prefix \"k8s\\x00\"")]
    Magic,
    #[error("the protobuf envelope (runtime.Unknown) is malformed: {0}")]
    Envelope(DecodeError),
    #[error("the protobuf envelope names no apiVersion and kind")]
    MissingType,
    #[error("protobuf bodies with content encoding {0:?} are not supported")]
    ContentEncoding(String),
    #[error("no protobuf schema is known for {api_version}, Kind={kind}")]
    UnknownKind { api_version: String, kind: String },
    #[error("the protobuf body is not a valid {kind}: {source}")]
    Object { kind: String, source: DecodeError },
    #[error("the protobuf field {field} is invalid: {reason}")]
    Field { field: String, reason: String },
}

/// The descriptors of the vendored protos, compiled by build.rs.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    let bytes: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/k8s.binpb"));
    DescriptorPool::decode(bytes).expect("build.rs writes a valid descriptor set")
});

/// Full names of the scalar fields whose zero value Go's JSON writes.
static ZERO_FIELDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| field_list(include_str!("../protos/zero-fields.txt")));

/// Full names of the fields of embedded structs whose fields Go's JSON lifts into the outer
/// object (`Volume.volumeSource`: `{"name": "x", "emptyDir": {}}`).
static INLINE_FIELDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| field_list(include_str!("../protos/inline-fields.txt")));

fn field_list(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

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

/// The message of `kind` in `api_version`: `apps/v1` is package `k8s.io.api.apps.v1`,
/// `rbac.authorization.k8s.io/v1` is `k8s.io.api.rbac.v1`; meta types (`DeleteOptions`,
/// registered in every group version) fall back to `meta.k8s.io`'s package.
fn message_descriptor(
    api_version: &str,
    kind: &str,
) -> Result<prost_reflect::MessageDescriptor, ProtobufError> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let package = match group {
        "" => format!("k8s.io.api.core.{version}"),
        "meta.k8s.io" => META_V1.to_owned(),
        _ => {
            let short = group.split('.').next().unwrap_or(group);
            format!("k8s.io.api.{short}.{version}")
        }
    };
    POOL.get_message_by_name(&format!("{package}.{kind}"))
        .or_else(|| POOL.get_message_by_name(&format!("{META_V1}.{kind}")))
        .filter(|descriptor| !kind.is_empty() && descriptor.name() == kind)
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })
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

fn is_list_wrapper(descriptor: &prost_reflect::MessageDescriptor) -> bool {
    let wrapper = matches!(descriptor.name(), "ExtraValue" | "Verbs");
    wrapper && descriptor.fields().len() == 1 && descriptor.get_field_by_name("items").is_some()
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
    fn every_listed_field_is_in_the_schema() {
        for name in ZERO_FIELDS.iter().chain(INLINE_FIELDS.iter()) {
            let (message, field) = name.rsplit_once('.').unwrap();
            let descriptor = POOL.get_message_by_name(message);
            let found = descriptor.and_then(|d| d.get_field_by_name(field));
            assert!(found.is_some(), "{name} is not in the vendored protos");
        }
    }

    #[test]
    fn rejects_bodies_without_the_prefix() {
        assert!(matches!(decode(b"{}"), Err(ProtobufError::Magic)));
    }
}
