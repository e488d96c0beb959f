//! Values a kind hands out from a pool its objects share (a Service's cluster IPs and node
//! ports), kube-apiserver's `BeginCreate`/`BeginUpdate` hooks. [`Allocator::begin`] takes the
//! pool's lock and reads what the stored objects hold; the [`Allocation`] it returns gives
//! the new object its values, and is dropped once the write is stored or refused. The stored
//! objects are the pool's only record, so a refused or failed write leaks nothing, and the
//! lock, held from the read to the end of the write, never hands a value out twice.

use peapod_api::validation::FieldError;
use peapod_store::Store;
use serde_json::Value;

use crate::status::ApiError;

/// Why an object could not be given what it needs.
#[derive(Debug)]
pub enum AllocationError {
    /// A requested value is taken or out of range: a 422 naming the fields.
    Invalid(Vec<FieldError>),
    /// Anything else (a full pool is kube's 500).
    Api(ApiError),
}

impl From<ApiError> for AllocationError {
    fn from(err: ApiError) -> AllocationError {
        AllocationError::Api(err)
    }
}

/// A kind's pool.
pub trait Allocator: Send + Sync + 'static {
    /// Locks the pool and reads what is in use, for one write of the object `namespace/name`
    /// (whose own values an update keeps).
    fn begin(
        &self,
        store: &Store,
        namespace: &str,
        name: &str,
    ) -> Result<Box<dyn Allocation + '_>, ApiError>;
}

/// One write's hold on a pool; dropping it ends the write's turn.
pub trait Allocation {
    /// Gives `new` (as served) what it needs, keeping, on update, what `old` holds.
    fn allocate(&mut self, new: &mut Value, old: Option<&Value>) -> Result<(), AllocationError>;
}
