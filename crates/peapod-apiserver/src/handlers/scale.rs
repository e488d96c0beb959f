//! The `scale` subresource (kube's ScaleREST of replicasets, deployments and statefulsets): an
//! autoscaling/v1 Scale made from the parent by its kind's [`ScaleFields`]; an update or patch
//! of that Scale changes only the parent's desired replicas, through the parent's own update
//! rules (resourceVersion precondition, status kept, validation, generation).

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use peapod_api::decode::DuplicateField;
use peapod_api::field_validation::{FieldValidation, StrictDecodingError, StrictFields};
use peapod_api::validation::{FieldError, FieldPath};
use peapod_store::WriteOptions;
use serde_json::{json, Map, Value};

use super::body::{self, Body};
use super::read::ListParams;
use super::write::{store_update, WriteParams};
use super::{blocking, object_response, with_warnings, ApiResult, Scope};
use crate::negotiate::{Input, Output};
use crate::patch::{self, apply};
use crate::registry::ScaleFields;
use crate::status::ApiError;

const SCALE_GROUP: &str = "autoscaling";
const SCALE_API_VERSION: &str = "autoscaling/v1";
const SCALE_KIND: &str = "Scale";

/// The Scale of `parent` (an object as served): its identity, desired and observed replicas,
/// and its selector as a string (kube's `scaleFromReplicaSet`).
pub fn scale_of(parent: &Value, fields: ScaleFields) -> ApiResult<Value> {
    let selector = match parent.pointer(fields.selector) {
        None | Some(Value::Null) => String::new(),
        Some(given) => {
            let typed: LabelSelector = serde_json::from_value(given.clone())
                .map_err(|err| ApiError::bad_request(err.to_string()))?;
            peapod_api::label_selector::to_selector_string(&typed)
                .map_err(|err| ApiError::bad_request(err.to_string()))?
        }
    };
    let mut metadata = Map::new();
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(value) = parent.pointer(&format!("/metadata/{key}")) {
            metadata.insert(key.into(), value.clone());
        }
    }
    let count = |pointer: &str| parent.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    // autoscaling/v1's omitempty: spec.replicas and status.selector vanish when zero.
    let mut spec = json!({});
    if count(fields.spec_replicas) != 0 {
        spec["replicas"] = json!(count(fields.spec_replicas));
    }
    let mut status = json!({"replicas": count(fields.status_replicas)});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    Ok(json!({
        "kind": SCALE_KIND,
        "apiVersion": SCALE_API_VERSION,
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }))
}

impl Scope {
    fn scale_fields(&self) -> ApiResult<ScaleFields> {
        self.kind.scale.ok_or_else(ApiError::no_route)
    }

    /// kube answers for the subresource: `replicasets/scale.apps "x" not found`.
    fn scale_not_found(&self) -> ApiError {
        let resource = format!("{}/scale", self.kind.plural);
        ApiError::not_found(self.group(), &resource, self.name())
    }
}

pub async fn get(scope: &Scope) -> ApiResult<Response> {
    let fields = scope.scale_fields()?;
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let (namespace, name) = (scope.object_namespace().to_owned(), scope.name().to_owned());
    let found = blocking(move || Ok(store.get_raw(&key, &namespace, &name)?)).await?;
    let parent = scope.served(found.ok_or_else(|| scope.scale_not_found())?)?;
    let scale = scale_of(&parent, fields)?;
    if let Output::Table { .. } = scope.output {
        let params: ListParams = scope.params()?;
        let meta: ObjectMeta =
            serde_json::from_value(scale["metadata"].clone()).unwrap_or_default();
        let rv = meta.resource_version.clone().unwrap_or_default();
        let table = crate::table::table(
            &crate::table::default_columns(),
            vec![(crate::table::default_cells(&meta), &scale)],
            params.include_object()?,
            json!({"resourceVersion": rv}),
            false,
        );
        return Ok(object_response(StatusCode::OK, &table, &Output::Json));
    }
    Ok(object_response(StatusCode::OK, &scale, &scope.output))
}

/// PUT of a Scale: its spec.replicas (and resourceVersion, a precondition) go to the parent.
pub async fn update(scope: &Scope, request: Request) -> ApiResult<Response> {
    let params: WriteParams = scope.params()?;
    apply::check_options("UpdateOptions", None, params.field_manager.as_deref(), None)?;
    let manager = params.manager(&request);
    let Body { value, duplicates } = body::object(request).await?;
    check_scale_type_meta(&value)?;
    let (_, warnings) = decode_scale(&value, &duplicates, params.validation()?)?;
    super::write::check_name_matches_url(&value, scope)?;
    let options = params.options()?;
    let scale = write_scale(scope, options, manager, move |_| Ok(value)).await?;
    let response = object_response(StatusCode::OK, &scale, &scope.output);
    Ok(with_warnings(response, &warnings))
}

/// PATCH of a Scale (JSON, merge or strategic merge patch) against the parent's current one.
pub async fn patch(scope: &Scope, request: Request) -> ApiResult<Response> {
    let params: WriteParams = scope.params()?;
    let manager = params.manager(&request);
    let (input, bytes) = body::read(request).await?;
    let patch_types = [
        Input::JsonPatch,
        Input::MergePatch,
        Input::StrategicMergePatch,
    ];
    if !patch_types.contains(&input) {
        let given = if input.is_patch() {
            input.content_type()
        } else {
            ""
        };
        return Err(ApiError::unsupported_media_type(given, &patch::PATCH_TYPES));
    }
    apply::check_options(
        "PatchOptions",
        Some(false),
        params.field_manager.as_deref(),
        params.force,
    )?;
    let Body { value: patch, .. } = body::decode(input, &bytes)?;
    let validation = params.validation()?;
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let seen = warnings.clone();
    let options = params.options()?;
    let scale = write_scale(scope, options, manager, move |old| {
        let patched = patch::apply(input, old, &patch, SCALE_KIND)?;
        let (_, decoded_warnings) = decode_scale(&patched, &[], validation)?;
        *seen.lock().unwrap_or_else(|p| p.into_inner()) = decoded_warnings;
        Ok(patched)
    })
    .await?;
    let warnings = warnings.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let response = object_response(StatusCode::OK, &scale, &scope.output);
    Ok(with_warnings(response, &warnings))
}

/// The read-modify-write of a scale change: `change` makes the new Scale from the current one;
/// the parent then takes its replicas under the parent's update rules. Answers the new Scale.
async fn write_scale(
    scope: &Scope,
    options: WriteOptions,
    manager: String,
    change: impl FnOnce(&Value) -> ApiResult<Value> + Send + 'static,
) -> ApiResult<Value> {
    let fields = scope.scale_fields()?;
    let namespace = scope.namespace().map(str::to_owned);
    let not_found = scope.scale_not_found();
    let conflict_resource = format!("{}/scale", scope.kind.plural);
    let group = scope.group().to_owned();
    let updated = store_update(scope, options, Some(manager), move |parent| {
        let mut scale = change(&scale_of(parent, fields)?)?;
        place_in_namespace(&mut scale, namespace.as_deref())?;
        let (typed, _) = decode_scale(&scale, &[], FieldValidation::Ignore)?;
        let parent_name = parent["metadata"]["name"].as_str().unwrap_or_default();
        let errors = validate_scale(&typed);
        if !errors.is_empty() {
            return Err(ApiError::invalid(SCALE_GROUP, SCALE_KIND, parent_name, errors));
        }
        let parent_uid = parent["metadata"]["uid"].as_str().unwrap_or_default();
        let given_uid = typed.metadata.uid.as_deref().unwrap_or_default();
        if !given_uid.is_empty() && given_uid != parent_uid {
            let why = format!(
                "Precondition failed: UID in precondition: {given_uid}, UID in object meta: {parent_uid}"
            );
            return Err(ApiError::conflict(&group, &conflict_resource, parent_name, &why));
        }
        with_replicas(parent, fields, &typed)
    })
    .await
    .map_err(|err| match err.reason {
        "NotFound" => not_found,
        _ => err,
    })?;
    scale_of(&updated, fields)
}

/// The parent with the Scale's replicas and, as a precondition, its resourceVersion.
fn with_replicas(parent: &Value, fields: ScaleFields, scale: &Scale) -> ApiResult<Value> {
    let mut updated = parent.clone();
    let replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let Some(target) = updated.pointer_mut(fields.spec_replicas) else {
        let (path, field) = fields.spec_replicas.rsplit_once('/').unwrap_or_default();
        let holder = updated
            .pointer_mut(path)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| ApiError::internal(format!("the object has no {path}")))?;
        holder.insert(field.to_owned(), json!(replicas));
        return Ok(set_resource_version(updated, scale));
    };
    *target = json!(replicas);
    Ok(set_resource_version(updated, scale))
}

fn set_resource_version(mut parent: Value, scale: &Scale) -> Value {
    if let Some(metadata) = parent.get_mut("metadata").and_then(Value::as_object_mut) {
        match scale.metadata.resource_version.as_deref() {
            Some(rv) if !rv.is_empty() => metadata.insert("resourceVersion".into(), json!(rv)),
            _ => metadata.remove("resourceVersion"),
        };
    }
    parent
}

/// autoscaling's ValidateScale: the Scale's metadata as a namespaced object's, and
/// replicas not negative.
pub fn validate_scale(scale: &Scale) -> Vec<FieldError> {
    let path = FieldPath::new("metadata");
    let mut errors = peapod_api::validation::meta::validate_object_meta(&scale.metadata, &path);
    let replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    if replicas < 0 {
        let path = FieldPath::new("spec").child("replicas");
        errors.push(FieldError::invalid(
            &path,
            replicas,
            "must be greater than or equal to 0",
        ));
    }
    errors
}

/// The Scale typed, its unknown and duplicate fields judged by `validation`.
fn decode_scale(
    value: &Value,
    duplicates: &[DuplicateField],
    validation: FieldValidation,
) -> ApiResult<(Scale, Vec<String>)> {
    let (scale, unknown) = peapod_api::object::decode_typed::<Scale>(value).map_err(|err| {
        ApiError::bad_request(format!(
            "{SCALE_KIND} in version \"v1\" cannot be handled as a {SCALE_KIND}: {err}"
        ))
    })?;
    let fields = StrictFields {
        unknown,
        duplicates: duplicates.to_vec(),
    };
    let warnings = fields.check(validation, validation).map_err(|errors| {
        let error = StrictDecodingError {
            kind: SCALE_KIND.to_owned(),
            version: "v1".to_owned(),
            errors,
        };
        ApiError::bad_request(error.to_string())
    })?;
    Ok((scale, warnings))
}

/// kind and apiVersion in a Scale body, when given, must be autoscaling/v1 Scale.
fn check_scale_type_meta(body: &Value) -> ApiResult<()> {
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let api_version = field("apiVersion");
    if !api_version.is_empty() && api_version != SCALE_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({SCALE_API_VERSION})"
        )));
    }
    let kind = field("kind");
    if !kind.is_empty() && kind != SCALE_KIND {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({SCALE_KIND})"
        )));
    }
    Ok(())
}

/// The request's namespace on the Scale (a different one is refused).
fn place_in_namespace(scale: &mut Value, namespace: Option<&str>) -> ApiResult<()> {
    let Some(namespace) = namespace else {
        return Ok(());
    };
    let Some(metadata) = scale.get_mut("metadata").and_then(Value::as_object_mut) else {
        scale["metadata"] = json!({"namespace": namespace});
        return Ok(());
    };
    match metadata.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            metadata.insert("namespace".into(), json!(namespace));
            Ok(())
        }
        Some(given) if given == namespace => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::WORKLOAD_SCALE;

    fn replica_set(replicas: Option<i64>) -> Value {
        let mut rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                         "resourceVersion": "7", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"app": "web"}},
            "spec": {"selector": {"matchLabels": {"app": "web"},
                                  "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
                     "template": {}},
            "status": {"replicas": 2}
        });
        if let Some(n) = replicas {
            rs["spec"]["replicas"] = json!(n);
        }
        rs
    }

    #[test]
    fn a_scale_shows_the_parents_identity_counts_and_selector() {
        let scale = scale_of(&replica_set(Some(3)), WORKLOAD_SCALE).unwrap();
        assert_eq!(
            scale,
            json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                             "resourceVersion": "7", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"replicas": 3},
                "status": {"replicas": 2, "selector": "app=web,tier in (a,b)"}
            })
        );
        let zero = scale_of(&replica_set(Some(0)), WORKLOAD_SCALE).unwrap();
        assert_eq!(zero["spec"], json!({}));
    }

    #[test]
    fn a_scale_moves_only_replicas_and_the_resource_version_to_the_parent() {
        let mut scale: Scale =
            serde_json::from_value(scale_of(&replica_set(Some(3)), WORKLOAD_SCALE).unwrap())
                .unwrap();
        scale.spec.as_mut().unwrap().replicas = Some(5);
        scale.metadata.resource_version = None;
        let parent = with_replicas(&replica_set(Some(3)), WORKLOAD_SCALE, &scale).unwrap();
        let mut expected = replica_set(Some(5));
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        assert_eq!(parent, expected);
        let unset = with_replicas(&replica_set(None), WORKLOAD_SCALE, &scale).unwrap();
        assert_eq!(unset["spec"]["replicas"], 5);
    }

    /// autoscaling's TestValidateScale, ported.
    #[test]
    fn negative_replicas_and_bad_metadata_are_invalid() {
        let scale = |name: &str, replicas: i32| -> Scale {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"replicas": replicas}
            }))
            .unwrap()
        };
        for valid in [
            scale("frontend", 1),
            scale("frontend", 10),
            scale("frontend", 0),
        ] {
            assert!(validate_scale(&valid).is_empty());
        }
        let errors: Vec<String> = validate_scale(&scale("frontend", -1))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
        );
        let message = ApiError::invalid(
            SCALE_GROUP,
            SCALE_KIND,
            "frontend",
            validate_scale(&scale("frontend", -1)),
        )
        .message;
        assert_eq!(
            message,
            r#"Scale.autoscaling "frontend" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#
        );
        assert!(!validate_scale(&scale("Bad_Name", 1)).is_empty());
    }
}
