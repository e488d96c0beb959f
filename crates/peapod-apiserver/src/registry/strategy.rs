//! What a kind decides for the generic handlers (kube-apiserver's `RESTCreateStrategy`,
//! `RESTUpdateStrategy`, `RESTDeleteStrategy`, `GarbageCollectionDeleteStrategy`,
//! `TableConvertor` and `GetAttrs`, and the generic store's `ShouldDeleteDuringUpdate`): written
//! once per kind against its Rust type ([`KindStrategy`]) and erased to JSON values
//! ([`Strategy`]).

use k8s_openapi::Metadata;
use peapod_api::decode::DuplicateField;
use peapod_api::field_validation::{FieldValidation, StrictDecodingError, StrictFields};
use peapod_api::object::TypeError;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_store::Object;
use schemars::JsonSchema;
use serde_json::Value;

use crate::patch::apply::types::TypeSchema;
use crate::status::ApiError;
use crate::table::Column;

/// The `metadata` fields a write to `status` changes for most kinds: kube's status
/// strategies reset only `spec` (and the generic registry the system fields).
const STATUS_WRITE_METADATA: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// A request body typed, defaulted and back in JSON, with the warnings to send.
#[derive(Debug)]
pub struct Decoded {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// How a delete proceeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteDecision {
    /// Removed now (or once its finalizers are gone).
    Immediate,
    /// Marked with a deletionTimestamp this many seconds ahead; its owner (the kubelet, for
    /// pods) removes it when done.
    Graceful(i64),
    /// Marked with a deletionTimestamp now and kept until a controller has finalized it (the
    /// namespace controller, for namespaces).
    Finalize,
}

/// What happens to an object's dependents when a delete does not say (kube's
/// `rest.GarbageCollectionPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GarbageCollectionPolicy {
    /// The garbage collector deletes them in the background.
    DeleteDependents,
    /// They are orphaned: the delete adds the `orphan` finalizer (batch/v1 Jobs, and the
    /// apps/v1beta1, apps/v1beta2 and extensions/v1beta1 workloads, for compatibility).
    OrphanDependents,
    /// The kind is never garbage collected: deletes set none of the collector's finalizers.
    Unsupported,
}

/// A kind's rules over its typed object. Every method has the API server's default.
pub trait KindStrategy: Send + Sync + 'static {
    type Object: Object;

    /// Whether the kind's objects have a `metadata.generation`, as kube's workload strategies
    /// give them: 1 at creation, then one more for each update that changes `spec` and when
    /// deletion starts. Other kinds have none, whatever a client sends.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// The `metadata` fields a write to `status` may change beside `status`. kube's status
    /// strategies reset `spec` and leave the metadata to the write for most kinds (a Service's
    /// status lifecycle test annotates through it; the Deployment controller records its
    /// revision there); some reset part of it too (Deployment its labels, Pod its owners).
    fn status_write_metadata(&self) -> &'static [&'static str] {
        STATUS_WRITE_METADATA
    }

    /// Whether a change to `metadata.annotations` starts a new generation as a `spec` change
    /// does (kube's Deployment strategy: its annotations are copied to its ReplicaSets).
    fn annotations_bump_generation(&self) -> bool {
        false
    }

    /// Defaulting, as the API server's scheme defaults on decode.
    fn default(&self, _obj: &mut Self::Object) {}

    /// System-set fields on create (status reset happens before this for kinds with status).
    fn prepare_for_create(&self, _obj: &mut Self::Object) {}

    /// Fields an update may not change, restored from `old`.
    fn prepare_for_update(&self, _new: &mut Self::Object, _old: &Self::Object) {}

    /// Validation of a new object, metadata included (see [`validate_meta`]).
    fn validate(&self, obj: &Self::Object) -> Vec<FieldError> {
        validate_meta(obj, true)
    }

    /// Validation of an update; `validate` of `new` is not run separately.
    fn validate_update(&self, new: &Self::Object, old: &Self::Object) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        errors.extend(peapod_api::validation::meta::validate_object_meta_update(
            new.metadata(),
            old.metadata(),
            &FieldPath::new("metadata"),
        ));
        errors
    }

    /// Warnings for an accepted object (deprecated fields, fields peapod does not implement).
    fn warnings(&self, _obj: &Self::Object) -> Vec<String> {
        Vec::new()
    }

    /// The server-side Table columns; kinds without printers show Name and Created At.
    fn columns(&self) -> Vec<Column> {
        crate::table::default_columns()
    }

    /// The cells of one row, one per column.
    fn cells(&self, obj: &Self::Object) -> Vec<Value> {
        crate::table::default_cells(obj.metadata())
    }

    /// The field selector labels beyond metadata.name and metadata.namespace.
    fn field_labels(&self) -> &'static [&'static str] {
        &[]
    }

    /// The value of one of `field_labels` for `obj`.
    fn field(&self, _obj: &Self::Object, _label: &str) -> Option<String> {
        None
    }

    /// Refuses a delete of the object named `name` before anything is read (kube's
    /// admission: the system namespaces may not be deleted).
    fn admit_delete(&self, _name: &str) -> Result<(), ApiError> {
        Ok(())
    }

    fn delete(&self, _obj: &Self::Object, _grace_period_seconds: Option<i64>) -> DeleteDecision {
        DeleteDecision::Immediate
    }

    /// What a delete that keeps the object changes besides its deletionTimestamp (a namespace
    /// reads Terminating).
    fn mark_deleting(&self, _obj: &mut Self::Object) {}

    /// Whether a delete answers with the removed object (pods) rather than a Success Status.
    fn return_deleted_object(&self) -> bool {
        false
    }

    /// What a delete that names no propagation does to the object's dependents.
    fn default_garbage_collection_policy(&self) -> GarbageCollectionPolicy {
        GarbageCollectionPolicy::DeleteDependents
    }

    /// Whether an update that takes the last finalizer of an object being deleted removes it
    /// (asked only when the generic rule would): a namespace stays while its own
    /// `spec.finalizers` remain.
    fn should_delete_during_update(&self, _new: &Self::Object, _old: &Self::Object) -> bool {
        true
    }
}

/// [`KindStrategy`] over JSON values, as the generic handlers use it.
pub trait Strategy: Send + Sync + 'static {
    /// Types `body` (unknown and duplicate fields judged by `validation`) and defaults it.
    fn decode(
        &self,
        body: &Value,
        duplicates: &[DuplicateField],
        validation: FieldValidation,
    ) -> Result<Decoded, ApiError>;
    fn prepare_for_create(&self, obj: &mut Value) -> Result<(), ApiError>;
    fn prepare_for_update(&self, new: &mut Value, old: &Value) -> Result<(), ApiError>;
    fn validate(&self, obj: &Value) -> Result<Vec<FieldError>, ApiError>;
    fn validate_update(&self, new: &Value, old: &Value) -> Result<Vec<FieldError>, ApiError>;
    fn warnings(&self, obj: &Value) -> Vec<String>;
    fn columns(&self) -> Vec<Column>;
    fn cells(&self, obj: &Value) -> Vec<Value>;
    fn field_labels(&self) -> &'static [&'static str];
    fn field(&self, obj: &Value, label: &str) -> Option<String>;
    fn admit_delete(&self, name: &str) -> Result<(), ApiError>;
    fn delete(&self, obj: &Value, grace_period_seconds: Option<i64>) -> DeleteDecision;
    fn mark_deleting(&self, obj: &mut Value) -> Result<(), ApiError>;
    fn return_deleted_object(&self) -> bool;
    fn tracks_generation(&self) -> bool;
    fn status_write_metadata(&self) -> &'static [&'static str];
    fn annotations_bump_generation(&self) -> bool;
    fn default_garbage_collection_policy(&self) -> GarbageCollectionPolicy;
    fn should_delete_during_update(&self, new: &Value, old: &Value) -> bool;
}

/// Erases a [`KindStrategy`] to a [`Strategy`].
pub struct Typed<S>(pub S);

impl<S: KindStrategy> Typed<S> {
    fn typed(&self, value: &Value) -> Result<S::Object, ApiError> {
        serde_json::from_value(value.clone()).map_err(|err| {
            ApiError::internal(format!(
                "stored {} does not decode: {err}",
                <S::Object as k8s_openapi::Resource>::KIND
            ))
        })
    }
}

/// Why a body is not a `K`: a required field missing or null is invalid as kube's validation
/// says (Go decodes it as zero), anything else a bad request.
fn decode_error<K: k8s_openapi::Resource>(body: &Value, err: TypeError) -> ApiError {
    let (kind, version) = (K::KIND, K::API_VERSION);
    let Some(path) = err.required_field() else {
        return ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {err}"
        ));
    };
    // metav1's ValidateConditions words the one such field every Condition has.
    let detail = match path.ends_with(".lastTransitionTime") {
        true => "must be set",
        false => "",
    };
    let name = body.pointer("/metadata/name").and_then(Value::as_str);
    let error = FieldError::required(&FieldPath::new(&path), detail);
    ApiError::invalid(K::GROUP, kind, name.unwrap_or_default(), vec![error])
}

fn to_value<K: serde::Serialize>(obj: &K) -> Result<Value, ApiError> {
    serde_json::to_value(obj).map_err(|err| ApiError::internal(err.to_string()))
}

impl<S: KindStrategy> Strategy for Typed<S>
where
    S::Object: JsonSchema,
{
    /// Types, defaults and re-encodes the body as kube-apiserver's decode into the Go struct
    /// does, empty optional lists and maps dropped ([`TypeSchema::omit_empty`]).
    fn decode(
        &self,
        body: &Value,
        duplicates: &[DuplicateField],
        validation: FieldValidation,
    ) -> Result<Decoded, ApiError> {
        let kind = <S::Object as k8s_openapi::Resource>::KIND;
        let version = <S::Object as k8s_openapi::Resource>::API_VERSION;
        let (mut obj, unknown) = peapod_api::object::decode_typed::<S::Object>(body)
            .map_err(|err| decode_error::<S::Object>(body, err))?;
        let fields = StrictFields {
            unknown,
            duplicates: duplicates.to_vec(),
        };
        let mut warnings = fields.check(validation, validation).map_err(|errors| {
            ApiError::bad_request(
                StrictDecodingError {
                    kind: kind.to_owned(),
                    version: version.to_owned(),
                    errors,
                }
                .to_string(),
            )
        })?;
        self.0.default(&mut obj);
        warnings.extend(self.0.warnings(&obj));
        let mut object = to_value(&obj)?;
        TypeSchema::cached(kind, Some(super::schema_ref::<S::Object>)).omit_empty(&mut object);
        Ok(Decoded { object, warnings })
    }

    fn prepare_for_create(&self, obj: &mut Value) -> Result<(), ApiError> {
        let mut typed = self.typed(obj)?;
        self.0.prepare_for_create(&mut typed);
        *obj = to_value(&typed)?;
        Ok(())
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) -> Result<(), ApiError> {
        let mut typed = self.typed(new)?;
        self.0.prepare_for_update(&mut typed, &self.typed(old)?);
        *new = to_value(&typed)?;
        Ok(())
    }

    fn validate(&self, obj: &Value) -> Result<Vec<FieldError>, ApiError> {
        Ok(self.0.validate(&self.typed(obj)?))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Result<Vec<FieldError>, ApiError> {
        Ok(self.0.validate_update(&self.typed(new)?, &self.typed(old)?))
    }

    fn warnings(&self, obj: &Value) -> Vec<String> {
        self.typed(obj)
            .map(|typed| self.0.warnings(&typed))
            .unwrap_or_default()
    }

    fn columns(&self) -> Vec<Column> {
        self.0.columns()
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        match self.typed(obj) {
            Ok(typed) => self.0.cells(&typed),
            Err(_) => Vec::new(),
        }
    }

    fn field_labels(&self) -> &'static [&'static str] {
        self.0.field_labels()
    }

    fn field(&self, obj: &Value, label: &str) -> Option<String> {
        self.0.field(&self.typed(obj).ok()?, label)
    }

    fn admit_delete(&self, name: &str) -> Result<(), ApiError> {
        self.0.admit_delete(name)
    }

    fn delete(&self, obj: &Value, grace_period_seconds: Option<i64>) -> DeleteDecision {
        match self.typed(obj) {
            Ok(typed) => self.0.delete(&typed, grace_period_seconds),
            Err(_) => DeleteDecision::Immediate,
        }
    }

    fn mark_deleting(&self, obj: &mut Value) -> Result<(), ApiError> {
        let mut typed = self.typed(obj)?;
        self.0.mark_deleting(&mut typed);
        *obj = to_value(&typed)?;
        Ok(())
    }

    fn return_deleted_object(&self) -> bool {
        self.0.return_deleted_object()
    }

    fn tracks_generation(&self) -> bool {
        self.0.tracks_generation()
    }

    fn status_write_metadata(&self) -> &'static [&'static str] {
        self.0.status_write_metadata()
    }

    fn annotations_bump_generation(&self) -> bool {
        self.0.annotations_bump_generation()
    }

    fn default_garbage_collection_policy(&self) -> GarbageCollectionPolicy {
        self.0.default_garbage_collection_policy()
    }

    /// Objects that do not decode go by the generic rule alone.
    fn should_delete_during_update(&self, new: &Value, old: &Value) -> bool {
        match (self.typed(new), self.typed(old)) {
            (Ok(new), Ok(old)) => self.0.should_delete_during_update(&new, &old),
            _ => true,
        }
    }
}

/// ObjectMeta validation for a new object: name (and namespace when `namespaced`), labels,
/// annotations, as apimachinery's `ValidateObjectMeta` with a DNS-1123 subdomain name.
pub fn validate_meta<K: Object>(obj: &K, namespaced: bool) -> Vec<FieldError> {
    let path = FieldPath::new("metadata");
    let mut meta = obj.metadata().clone();
    if !namespaced {
        // Cluster-scoped objects have no namespace; one given is refused by the handlers.
        meta.namespace = Some("default".to_owned());
    }
    peapod_api::validation::meta::validate_object_meta(&meta, &path)
}
