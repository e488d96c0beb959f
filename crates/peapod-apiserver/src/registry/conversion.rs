//! Versions served from another version's storage, as kube-apiserver keeps each resource in one
//! storage version and converts the others to and from it on every read and write:
//! events.k8s.io/v1 events are core/v1 events in the store, and autoscaling/v1
//! HorizontalPodAutoscalers are autoscaling/v2 ones.

use peapod_store::Object;
use serde_json::Value;

use crate::status::ApiError;

/// How a served kind's objects become the stored kind's and back, written once per version
/// against the Rust types ([`TypedConversion`] erases it to JSON values).
pub trait VersionConversion: Send + Sync + 'static {
    /// The kind the endpoint serves.
    type Served: Object;
    /// The kind the store keeps.
    type Stored: Object;

    fn to_stored(&self, served: Self::Served) -> Self::Stored;
    fn to_served(&self, stored: Self::Stored) -> Self::Served;
}

/// [`VersionConversion`] over JSON values, as the generic handlers use it.
pub trait Conversion: Send + Sync + 'static {
    fn to_stored(&self, served: Value) -> Result<Value, ApiError>;
    fn to_served(&self, stored: Value) -> Result<Value, ApiError>;
}

/// Erases a [`VersionConversion`] to a [`Conversion`].
pub struct TypedConversion<C>(pub C);

impl<C: VersionConversion> Conversion for TypedConversion<C> {
    fn to_stored(&self, served: Value) -> Result<Value, ApiError> {
        let served: C::Served = typed(served)?;
        untyped(&self.0.to_stored(served))
    }

    fn to_served(&self, stored: Value) -> Result<Value, ApiError> {
        let stored: C::Stored = typed(stored)?;
        untyped(&self.0.to_served(stored))
    }
}

fn typed<K: Object>(value: Value) -> Result<K, ApiError> {
    serde_json::from_value(value).map_err(|err| {
        ApiError::internal(format!(
            "converting {}: the object does not decode: {err}",
            K::API_VERSION
        ))
    })
}

fn untyped<K: Object>(object: &K) -> Result<Value, ApiError> {
    serde_json::to_value(object).map_err(|err| ApiError::internal(err.to_string()))
}
