//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`), both ways: [`decode`]
//! turns a request body into the JSON form the generic handlers take, so a protobuf body and a
//! JSON body of the same object give the same [`Value`](serde_json::Value); [`encode`] writes an
//! answer for the clients that prefer protobuf. client-go 1.32's typed clients send and ask for
//! these (`kubectl create configmap`, `create deployment`, `autoscale`, `drain`'s evictions, ...).
//!
//! A body is the magic `k8s\0` then a `runtime.Unknown` envelope (apimachinery
//! `pkg/runtime/serializer/protobuf`): `typeMeta` names the object's apiVersion and kind, `raw`
//! holds the object's message from k8s.io/api's `generated.proto`. Those protos are vendored in
//! `protos/` and compiled by build.rs into a descriptor set, so both directions are generic:
//! every message of a vendored group is read and written by reflection, field names being the
//! JSON names. The mapping follows Go's `encoding/json` over the Go struct:
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

mod decode;
mod encode;

use std::collections::HashSet;
use std::sync::LazyLock;

use prost_reflect::prost::DecodeError;
use prost_reflect::{DescriptorPool, MessageDescriptor};

pub use decode::decode;
pub use encode::encode;

/// The four bytes every Kubernetes protobuf body starts with: `k8s\0`.
pub const MAGIC: [u8; 4] = *b"k8s\0";

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Why a protobuf body could not be decoded or an object encoded.
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
    LazyLock::new(|| field_list(include_str!("../../protos/zero-fields.txt")));

/// Full names of the fields of embedded structs whose fields Go's JSON lifts into the outer
/// object (`Volume.volumeSource`: `{"name": "x", "emptyDir": {}}`).
static INLINE_FIELDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| field_list(include_str!("../../protos/inline-fields.txt")));

fn field_list(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// The message of `kind` in `api_version`: `apps/v1` is package `k8s.io.api.apps.v1`,
/// `rbac.authorization.k8s.io/v1` is `k8s.io.api.rbac.v1`; meta types (`DeleteOptions`,
/// registered in every group version) fall back to `meta.k8s.io`'s package.
pub(crate) fn message_descriptor(
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

/// Whether objects of `kind` in `api_version` have a protobuf form.
pub fn knows(api_version: &str, kind: &str) -> bool {
    message_descriptor(api_version, kind).is_ok()
}

/// Messages with a JSON form of their own, and Go's named slices.
fn is_list_wrapper(descriptor: &MessageDescriptor) -> bool {
    let wrapper = matches!(descriptor.name(), "ExtraValue" | "Verbs");
    wrapper && descriptor.fields().len() == 1 && descriptor.get_field_by_name("items").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn kinds_with_and_without_a_message() {
        assert!(knows("v1", "ConfigMap"));
        assert!(knows("v1", "PodList"));
        assert!(knows("apps/v1", "Deployment"));
        assert!(knows("v1", "Status"));
        assert!(!knows("metrics.k8s.io/v1beta1", "PodMetrics"));
        assert!(!knows("v1", "NoSuchKind"));
    }
}
