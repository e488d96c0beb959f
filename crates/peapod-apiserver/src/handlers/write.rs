//! create, update (PUT) and patch, for the resource and its `status` subresource: decode and
//! field validation, the kind's prepare/validate rules, the values a kind's allocator hands
//! out (under its lock until the write is stored), the namespace lifecycle, optimistic
//! concurrency and dry runs, as kube-apiserver's generic store does them.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::core::v1::Namespace;
use peapod_api::field_validation::FieldValidation;
use peapod_store::{ResourceKey, StoreError, WriteOptions};
use serde::Deserialize;
use serde_json::Value;

use super::body::{self, Body};
use super::{blocking, object_response, with_warnings, ApiResult, Codec, Scope};
use crate::admission::{NewObject, Update};
use crate::negotiate::Input;
use crate::patch;
use crate::patch::apply::{self, FieldManager};
use crate::registry::{AllocationError, Kind, Strategy};
use crate::status::ApiError;

/// The write query parameters (`metav1.CreateOptions`, `UpdateOptions`, `PatchOptions`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct WriteParams {
    pub(super) dry_run: Option<String>,
    pub(super) field_manager: Option<String>,
    field_validation: Option<String>,
    #[serde(deserialize_with = "super::go_bool")]
    pub(super) force: Option<bool>,
}

impl WriteParams {
    /// The manager of the write (`fieldManager`, else the User-Agent's first token).
    pub(super) fn manager(&self, request: &Request) -> String {
        let agent = request.headers().get(axum::http::header::USER_AGENT);
        let agent = agent.and_then(|v| v.to_str().ok());
        apply::manager_or_user_agent(self.field_manager.as_deref(), agent)
    }

    pub(super) fn options(&self) -> ApiResult<WriteOptions> {
        let dry_run = match self.dry_run.as_deref() {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid dry run value: \"{other}\": supported values: \"All\""
                )))
            }
        };
        Ok(WriteOptions { dry_run })
    }

    pub(super) fn validation(&self) -> ApiResult<FieldValidation> {
        match self.field_validation.as_deref() {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// What a closure run under the store's write lock can fail with.
enum WriteError {
    Store(StoreError),
    Api(ApiError),
}

impl From<StoreError> for WriteError {
    fn from(err: StoreError) -> WriteError {
        WriteError::Store(err)
    }
}

impl From<ApiError> for WriteError {
    fn from(err: ApiError) -> WriteError {
        WriteError::Api(err)
    }
}

impl Scope {
    fn write_error(&self, err: WriteError) -> ApiError {
        match err {
            WriteError::Store(err) => self.store_error(err),
            WriteError::Api(err) => err,
        }
    }

    fn field_manager(&self) -> FieldManager {
        FieldManager::new(&self.kind, self.info.subresource.as_deref())
    }
}

pub async fn create(scope: &Scope, request: Request) -> ApiResult<Response> {
    let params: WriteParams = scope.params()?;
    apply::check_options("CreateOptions", None, params.field_manager.as_deref(), None)?;
    let manager = params.manager(&request);
    let decoded = decode_body(scope, request, &params).await?;
    let mut object = decoded.object;
    if scope.kind.has_subresource("status") {
        if let Some(fields) = object.as_object_mut() {
            fields.remove("status");
        }
    }
    scope.field_manager().update(None, &mut object, &manager);
    let response = create_object(scope, object, params.options()?).await?;
    Ok(with_warnings(response, &decoded.warnings))
}

/// A create or update body: its kind and namespace checked against the request, then typed,
/// defaulted and judged by the request's field validation.
async fn decode_body(
    scope: &Scope,
    request: Request,
    params: &WriteParams,
) -> ApiResult<crate::registry::Decoded> {
    let mut body = body::object(request).await?;
    check_type_meta(&scope.kind, &body.value)?;
    place_in_namespace(scope, &mut body.value)?;
    scope
        .strategy
        .decode(&body.value, &body.duplicates, params.validation()?)
}

/// Prepares, admits (in an existing, live namespace, then by the server's admission plugins),
/// validates and stores a new object, in kube-apiserver's order: admission before validation.
async fn create_object(
    scope: &Scope,
    mut object: Value,
    options: WriteOptions,
) -> ApiResult<Response> {
    set_initial_generation(&mut object, scope.strategy.tracks_generation());
    assign_uid(&mut object);
    scope.strategy.prepare_for_create(&mut object)?;
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let namespace = scope.namespace().map(str::to_owned);
    let (group, plural) = (scope.group().to_owned(), scope.kind.plural);
    let (strategy, codec) = (scope.strategy.clone(), scope.codec());
    let (admission, kind) = (scope.admission.clone(), scope.kind.clone());
    let escalation_check = scope.escalation_check();
    let created = blocking(move || {
        if let Some(namespace) = &namespace {
            admit_in_namespace(&store, namespace)?;
        }
        for plugin in &admission {
            plugin.admit_create(
                NewObject {
                    kind: &kind.gvk,
                    resource: kind.plural,
                    namespace: namespace.as_deref().unwrap_or_default(),
                    object: &mut object,
                },
                &store,
            )?;
        }
        let _allocation = match &kind.allocator {
            Some(allocator) => {
                // A new object keeps nothing: no stored object is named "".
                let mut allocation = allocator.begin(&store, "", "")?;
                if let Err(err) = allocation.allocate(&mut object, None) {
                    return Err(allocation_error(&codec, display_name(&object), err));
                }
                Some(allocation)
            }
            None => None,
        };
        let errors = strategy.validate(&object)?;
        if !errors.is_empty() {
            return Err(codec.invalid(display_name(&object), errors));
        }
        escalation_check(&object, None)?;
        store
            .create_raw(&key, codec.stored(object)?, &options)
            .map_err(|err| ApiError::from_store(err, &group, plural))
    })
    .await?;
    Ok(object_response(
        StatusCode::CREATED,
        &scope.served(created)?,
        &scope.output,
    ))
}

pub async fn update(scope: &Scope, request: Request) -> ApiResult<Response> {
    let params: WriteParams = scope.params()?;
    apply::check_options("UpdateOptions", None, params.field_manager.as_deref(), None)?;
    let manager = params.manager(&request);
    let decoded = decode_body(scope, request, &params).await?;
    let object = decoded.object;
    check_name_matches_url(&object, scope)?;
    let options = params.options()?;
    let stored = store_update(scope, options, Some(manager), move |_old| Ok(object)).await?;
    let response = object_response(StatusCode::OK, &stored, &scope.output);
    Ok(with_warnings(response, &decoded.warnings))
}

/// An update names the object of its URL (kube's `BeforeUpdate` check).
pub(super) fn check_name_matches_url(object: &Value, scope: &Scope) -> Result<(), ApiError> {
    let given = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if given != scope.name() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({})",
            scope.name()
        )));
    }
    Ok(())
}

pub async fn patch(scope: &Scope, request: Request) -> ApiResult<Response> {
    let params: WriteParams = scope.params()?;
    let manager = params.manager(&request);
    let (input, bytes) = body::read(request).await?;
    if !input.is_patch() || input == Input::ApplyPatchCbor {
        let given = if input.is_patch() {
            input.content_type()
        } else {
            ""
        };
        return Err(ApiError::unsupported_media_type(
            given,
            crate::negotiate::PATCH_TYPES,
        ));
    }
    let is_apply = input == Input::ApplyPatchYaml;
    let (field_manager, force) = (params.field_manager.as_deref(), params.force);
    apply::check_options("PatchOptions", Some(is_apply), field_manager, force)?;
    if is_apply {
        return server_side_apply(scope, &params, input, &bytes).await;
    }
    let Body { value: patch, .. } = body::decode(input, &bytes)?;
    let validation = params.validation()?;
    let strategy = scope.strategy.clone();
    let kind = scope.kind.gvk.kind.clone();
    let warnings = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = warnings.clone();
    let options = params.options()?;
    let stored = store_update(scope, options, Some(manager), move |old| {
        let patched = patch::apply(input, old, &patch, &kind)?;
        let decoded = strategy.decode(&patched, &[], validation)?;
        *seen.lock().unwrap_or_else(|p| p.into_inner()) = decoded.warnings;
        Ok(decoded.object)
    })
    .await?;
    let warnings = warnings.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let response = object_response(StatusCode::OK, &stored, &scope.output);
    Ok(with_warnings(response, &warnings))
}

/// PATCH `application/apply-patch+yaml`: the configuration merged into the object, created
/// when absent (201), by [`FieldManager::apply`].
async fn server_side_apply(
    scope: &Scope,
    params: &WriteParams,
    input: Input,
    bytes: &[u8],
) -> ApiResult<Response> {
    let Body {
        value: config,
        duplicates,
    } = body::decode(input, bytes)?;
    let manager = params.field_manager.clone().unwrap_or_default();
    let force = params.force.unwrap_or(false);
    let mut warnings = apply::duplicates(&duplicates, params.validation()?)?;
    let options = params.options()?;
    let fields = std::sync::Arc::new(scope.field_manager());
    for _ in 0..3 {
        let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
        let (namespace, name) = (scope.object_namespace().to_owned(), scope.name().to_owned());
        let live = blocking(move || Ok(store.get_raw(&key, &namespace, &name)?)).await?;
        apply::check_name(&config, scope.name(), scope.namespace(), live.is_none())?;
        if live.is_none() {
            if scope.info.subresource.is_some() {
                return Err(scope.not_found());
            }
            let mut merged = fields.apply(None, &config, &manager, force)?;
            place_in_namespace(scope, &mut merged)?;
            let decoded = scope
                .strategy
                .decode(&merged, &[], FieldValidation::Ignore)?;
            let mut object = decoded.object;
            if scope.kind.has_subresource("status") {
                if let Some(fields) = object.as_object_mut() {
                    fields.remove("status");
                }
            }
            warnings.extend(decoded.warnings);
            match create_object(scope, object, options).await {
                Err(err) if err.reason == "AlreadyExists" => continue,
                created => return Ok(with_warnings(created?, &warnings)),
            }
        }
        let (strategy, fields) = (scope.strategy.clone(), fields.clone());
        let (config, manager) = (config.clone(), manager.clone());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let decoded_warnings = seen.clone();
        let updated = store_update(scope, options, None, move |old| {
            let merged = fields.apply(Some(old), &config, &manager, force)?;
            let decoded = strategy.decode(&merged, &[], FieldValidation::Ignore)?;
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = decoded.warnings;
            Ok(decoded.object)
        })
        .await;
        match updated {
            Err(err) if err.reason == "NotFound" => continue,
            updated => {
                warnings.extend(
                    decoded_warnings
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                );
                let response = object_response(StatusCode::OK, &updated?, &scope.output);
                return Ok(with_warnings(response, &warnings));
            }
        }
    }
    Err(ApiError::conflict(
        scope.group(),
        scope.kind.plural,
        scope.name(),
        "the object has been modified; please apply your changes to the latest version and try again",
    ))
}

/// The read-modify-write of update and patch: `change` makes the new object from the stored
/// one; the kind's update rules and validation then run under the same lock.
/// `manager` is the manager whose `Update` entry records the change (`None` for an apply,
/// which keeps its own books).
pub(super) async fn store_update(
    scope: &Scope,
    options: WriteOptions,
    manager: Option<String>,
    change: impl FnOnce(&Value) -> ApiResult<Value> + Send + 'static,
) -> ApiResult<Value> {
    let fields = manager.map(|manager| (scope.field_manager(), manager));
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let (namespace, name) = (scope.object_namespace().to_owned(), scope.name().to_owned());
    let strategy = scope.strategy.clone();
    let status_only = scope.info.subresource.as_deref() == Some("status");
    let has_status = scope.kind.has_subresource("status");
    let (group, plural) = (scope.group().to_owned(), scope.kind.plural);
    let codec = scope.codec();
    let escalation_check = scope.escalation_check();
    let admit = admit_update(scope);
    let allocator = scope.kind.allocator.clone().filter(|_| !status_only);
    let stored = blocking(move || {
        let mut allocation = match &allocator {
            Some(allocator) => Some(allocator.begin(&store, &namespace, &name)?),
            None => None,
        };
        let update = |stored: &Value| {
            let old = &codec.served(stored.clone())?;
            let mut new = change(old)?;
            check_resource_version(&new, old, &group, plural, &name)?;
            if status_only {
                let applied = new.pointer("/metadata/managedFields").cloned();
                new = status_write(old, &new, strategy.status_write_metadata());
                // An apply has done its books on `new`; an update does them below.
                if let (None, Some(metadata)) = (&fields, new.get_mut("metadata")) {
                    metadata["managedFields"] = applied.unwrap_or(Value::Null);
                }
            } else if has_status {
                new = with_status_of(&new, old);
            }
            keep_system_fields(&mut new, old);
            strategy.prepare_for_update(&mut new, old)?;
            if let Some(allocation) = allocation.as_mut() {
                allocation
                    .allocate(&mut new, Some(old))
                    .map_err(|err| allocation_error(&codec, &name, err))?;
            }
            if let Some((fields, manager)) = &fields {
                fields.update(Some(old), &mut new, manager);
            }
            let errors = strategy.validate_update(&new, old)?;
            if !errors.is_empty() {
                return Err(WriteError::Api(codec.invalid(&name, errors)));
            }
            escalation_check(&new, Some(old))?;
            admit(&new, old)?;
            Ok::<Value, WriteError>(codec.stored(new)?)
        };
        let rules = KindRules::new(strategy.as_ref(), &codec, !status_only);
        Ok(store.update_raw_with(&key, &namespace, &name, &options, &rules, update))
    })
    .await?
    .map_err(|err| scope.write_error(err))?;
    scope.served(stored.into_object())
}

/// The server's validating admission of an update, run once the new object is validated.
fn admit_update(scope: &Scope) -> impl Fn(&Value, &Value) -> ApiResult<()> + Send + 'static {
    let (admission, kind) = (scope.admission.clone(), scope.kind.clone());
    let subresource = scope.info.subresource.clone();
    let store = scope.store.clone();
    move |new, old| {
        admission.iter().try_for_each(|plugin| {
            let update = Update {
                kind: &kind.gvk,
                resource: kind.plural,
                subresource: subresource.as_deref(),
                object: new,
                old,
            };
            plugin.validate_update(update, &store)
        })
    }
}

/// kube's BeforeUpdate: an update that leaves out the uid keeps the stored one, and the
/// creation timestamp is never the client's to change (`kubectl replace -f` sends neither).
fn keep_system_fields(new: &mut Value, old: &Value) {
    let Some(metadata) = new.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let uid_given = metadata
        .get("uid")
        .and_then(Value::as_str)
        .is_some_and(|uid| !uid.is_empty());
    if let (false, Some(uid)) = (uid_given, old.pointer("/metadata/uid")) {
        metadata.insert("uid".into(), uid.clone());
    }
    if let Some(created) = old.pointer("/metadata/creationTimestamp") {
        metadata.insert("creationTimestamp".into(), created.clone());
    }
}

/// kube's BeforeCreate: a new object's uid is the server's, whatever the client sent, and is
/// set before the kind's PrepareForCreate, which may use it (a Job's generated selector).
fn assign_uid(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let uid = uuid::Uuid::new_v4().to_string();
        metadata.insert("uid".into(), Value::from(uid));
    }
}

/// kube's rule for a new object's generation: 1 for the kinds that track one, none for the
/// others, whatever the client sent. The store carries it on and bumps it from there.
fn set_initial_generation(object: &mut Value, tracked: bool) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if tracked {
        metadata.insert("generation".into(), Value::from(1));
    } else {
        metadata.remove("generation");
    }
}

/// A kind's own rules for its updates, judged on the objects as served: its condition for
/// removing an object whose update took its last finalizer (kube's
/// `ShouldDeleteDuringUpdate`), and whether annotations count toward a new generation (kube's
/// Deployment strategy; never on a status write).
pub(super) struct KindRules<'a> {
    strategy: &'a dyn Strategy,
    codec: &'a Codec,
    annotations_count: bool,
}

impl<'a> KindRules<'a> {
    pub(super) fn new(strategy: &'a dyn Strategy, codec: &'a Codec, spec_write: bool) -> Self {
        let annotations_count = spec_write && strategy.annotations_bump_generation();
        KindRules {
            strategy,
            codec,
            annotations_count,
        }
    }
}

impl peapod_store::UpdateRules for KindRules<'_> {
    fn should_delete(&self, new: &Value, old: &Value) -> bool {
        match (
            self.codec.served(new.clone()),
            self.codec.served(old.clone()),
        ) {
            (Ok(new), Ok(old)) => self.strategy.should_delete_during_update(&new, &old),
            _ => true,
        }
    }

    fn new_generation(&self, new: &Value, old: &Value) -> bool {
        let annotations = |value: &Value| value.pointer("/metadata/annotations").cloned();
        new.get("spec") != old.get("spec")
            || (self.annotations_count && annotations(new) != annotations(old))
    }
}

/// What a write to `status` leaves of `request`: the stored object with the request's
/// `status` and the `metadata` fields the kind lets a status write change (each removed
/// when the request has none).
fn status_write(stored: &Value, request: &Value, metadata: &[&str]) -> Value {
    let mut result = with_status_of(stored, request);
    let Some(fields) = result.get_mut("metadata").and_then(Value::as_object_mut) else {
        return result;
    };
    for &field in metadata {
        match request.get("metadata").and_then(|m| m.get(field)) {
            Some(value) => fields.insert(field.to_owned(), value.clone()),
            None => fields.remove(field),
        };
    }
    result
}

/// `base` with `status` taken from `source` (removed when `source` has none).
fn with_status_of(base: &Value, source: &Value) -> Value {
    let mut result = base.clone();
    if let Some(fields) = result.as_object_mut() {
        match source.get("status") {
            Some(status) => fields.insert("status".into(), status.clone()),
            None => fields.remove("status"),
        };
    }
    result
}

/// A resourceVersion in the new object is a precondition (409 when stale).
fn check_resource_version(
    new: &Value,
    old: &Value,
    group: &str,
    plural: &str,
    name: &str,
) -> ApiResult<()> {
    let given = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let stored = old
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !given.is_empty() && given != stored {
        return Err(ApiError::conflict(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    Ok(())
}

/// kind and apiVersion in the body, when given, must be the endpoint's.
pub(super) fn check_type_meta(kind: &Kind, body: &Value) -> ApiResult<()> {
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let expected_version = kind.api_version();
    let api_version = field("apiVersion");
    if !api_version.is_empty() && api_version != expected_version {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected_version})"
        )));
    }
    let given_kind = field("kind");
    if !given_kind.is_empty() && given_kind != kind.gvk.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({given_kind}) does not match the expected kind ({})",
            kind.gvk.kind
        )));
    }
    Ok(())
}

/// Sets the request's namespace on a namespaced object (refusing a different one) and clears
/// it on a cluster-scoped one.
fn place_in_namespace(scope: &Scope, object: &mut Value) -> ApiResult<()> {
    let Some(metadata) = object
        .as_object_mut()
        .map(|o| {
            o.entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()))
        })
        .and_then(Value::as_object_mut)
    else {
        return Err(ApiError::bad_request("the object has no metadata"));
    };
    let Some(namespace) = scope.namespace() else {
        metadata.remove("namespace");
        return Ok(());
    };
    match metadata.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            metadata.insert("namespace".into(), Value::from(namespace));
            Ok(())
        }
        Some(given) if given == namespace => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

/// kube-apiserver's NamespaceLifecycle admission: new objects only in a namespace that exists
/// and is not being deleted.
fn admit_in_namespace(store: &peapod_store::Store, namespace: &str) -> ApiResult<()> {
    let key = ResourceKey::of::<Namespace>();
    let Some(found) = store.get_raw(&key, "", namespace)? else {
        return Err(ApiError::not_found("", "namespaces", namespace));
    };
    if found.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        ))
        .with_details(serde_json::json!({"name": namespace, "kind": "namespaces"})));
    }
    Ok(())
}

/// A refused allocation as the API answers it.
fn allocation_error(codec: &Codec, name: &str, err: AllocationError) -> ApiError {
    match err {
        AllocationError::Invalid(errors) => codec.invalid(name, errors),
        AllocationError::Api(err) => err,
    }
}

/// The name an invalid new object goes by: its name, else its generateName.
fn display_name(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| {
            object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
        })
        .unwrap_or_default()
}
