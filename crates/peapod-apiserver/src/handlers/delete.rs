//! delete and deletecollection: `DeleteOptions` from the body or the query, uid and
//! resourceVersion preconditions, graceful deletion where the kind asks for it, finalizers,
//! dependents' propagation (the `orphan` and `foregroundDeletion` finalizers the garbage
//! collector acts on, as kube-apiserver's generic store sets them), dry runs, and
//! kube-apiserver's answers (the object while it lingers, a Success `Status` once it is gone).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use peapod_api::validation::{FieldError, FieldPath};
use peapod_store::{DeleteOptionsRaw as StoreDelete, Deleted, ListOptions, Updated, WriteOptions};
use serde::Deserialize;
use serde_json::{json, Value};

use super::propagation::Propagation;
use super::read::ListParams;
use super::write::KindRules;
use super::{blocking, body, object_response, ApiResult, Codec, Scope};
use crate::registry::{DeleteDecision, GarbageCollectionPolicy, Strategy};
use crate::status::ApiError;

/// `metav1.DeleteOptions`, from the body or the query.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeleteOptions {
    grace_period_seconds: Option<i64>,
    propagation_policy: Option<String>,
    #[serde(deserialize_with = "super::go_bool")]
    orphan_dependents: Option<bool>,
    preconditions: Option<PreconditionsBody>,
    dry_run: Option<DryRun>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PreconditionsBody {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// `dryRun` is a list in the body and a single value in the query.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum DryRun {
    One(String),
    Many(Vec<String>),
}

impl DeleteOptions {
    /// kube's `propagateDryRun` of an eviction: the create's `dryRun` where the options give
    /// none.
    pub(super) fn dry_run_or(&mut self, query: &Option<String>) {
        let given = match &self.dry_run {
            None => false,
            Some(DryRun::One(value)) => !value.is_empty(),
            Some(DryRun::Many(values)) => !values.is_empty(),
        };
        if !given {
            if let Some(value) = query {
                self.dry_run = Some(DryRun::One(value.clone()));
            }
        }
    }

    /// The resourceVersion the delete is conditioned on.
    pub(super) fn resource_version(&self) -> Option<&str> {
        let preconditions = self.preconditions.as_ref()?;
        preconditions
            .resource_version
            .as_deref()
            .filter(|rv| !rv.is_empty())
    }

    /// Conditions the delete on `resource_version`.
    pub(super) fn require_resource_version(&mut self, resource_version: String) {
        let preconditions = self.preconditions.get_or_insert_with(Default::default);
        preconditions.resource_version = Some(resource_version);
    }

    pub(super) fn dry_run(&self) -> ApiResult<bool> {
        let values: Vec<&str> = match &self.dry_run {
            None => Vec::new(),
            Some(DryRun::One(value)) => vec![value.as_str()],
            Some(DryRun::Many(values)) => values.iter().map(String::as_str).collect(),
        };
        for value in &values {
            if !value.is_empty() && *value != "All" {
                return Err(ApiError::bad_request(format!(
                    "Invalid dry run value: \"{value}\": supported values: \"All\""
                )));
            }
        }
        Ok(values.contains(&"All"))
    }

    fn validate(&self) -> ApiResult<()> {
        if let Some(policy) = self.propagation_policy.as_deref() {
            let path = FieldPath::new("propagationPolicy");
            let mut errors = Vec::new();
            if self.orphan_dependents.is_some() {
                let why = "orphanDependents and deletionPropagation cannot be both set";
                errors.push(FieldError::invalid(&path, policy, why));
            }
            if !matches!(policy, "Background" | "Foreground" | "Orphan") {
                let supported = ["Foreground", "Background", "Orphan", "nil"];
                errors.push(FieldError::not_supported(&path, policy, &supported));
            }
            if !errors.is_empty() {
                // kube-apiserver's ValidateDeleteOptions: 422 naming DeleteOptions.
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "DeleteOptions",
                    "",
                    errors,
                ));
            }
        }
        if self.grace_period_seconds.is_some_and(|g| g < 0) {
            return Err(ApiError::bad_request(
                "gracePeriodSeconds: Invalid value: must be greater than or equal to 0",
            ));
        }
        Ok(())
    }

    /// kube's `deletionFinalizersForGarbageCollection`: the finalizers `object` carries after
    /// this delete, or `None` when they stay as they are; `default` is the kind's policy.
    fn gc_finalizers(
        &self,
        object: &Value,
        default: GarbageCollectionPolicy,
    ) -> Option<Vec<String>> {
        let asked = Propagation {
            orphan_dependents: self.orphan_dependents,
            policy: self.propagation_policy.as_deref(),
        };
        asked.finalizers_after(&finalizers(object), default)
    }

    fn store_options(&self) -> ApiResult<StoreDelete> {
        let preconditions = self.preconditions.clone().unwrap_or_default();
        Ok(StoreDelete {
            uid: preconditions.uid.filter(|u| !u.is_empty()),
            resource_version: preconditions.resource_version.filter(|rv| !rv.is_empty()),
            dry_run: self.dry_run()?,
        })
    }
}

/// `metadata.finalizers` of `object`.
fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn is_deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// The options of a delete: the body (JSON, or protobuf from typed clients) when there is
/// one, else the query.
async fn options(scope: &Scope, request: Request) -> ApiResult<DeleteOptions> {
    let (input, bytes) = body::read(request).await?;
    let options: DeleteOptions = if bytes.iter().all(u8::is_ascii_whitespace) {
        scope.params()?
    } else {
        let decoded = body::decode(input, &bytes)?;
        serde_json::from_value(decoded.value).map_err(|err| {
            ApiError::bad_request(format!("invalid DeleteOptions in the request body: {err}"))
        })?
    };
    options.validate()?;
    Ok(options)
}

pub async fn delete(scope: &Scope, request: Request) -> ApiResult<Response> {
    let options = options(scope, request).await?;
    scope.strategy.admit_delete(scope.name())?;
    let (code, body) = delete_one(scope, scope.name().to_owned(), &options).await?;
    Ok(object_response(code, &body, &scope.output))
}

pub(super) async fn delete_one(
    scope: &Scope,
    name: String,
    options: &DeleteOptions,
) -> ApiResult<(StatusCode, Value)> {
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let namespace = scope.object_namespace().to_owned();
    let store_options = options.store_options()?;
    let strategy = scope.strategy.clone();
    let delete_options = options.clone();
    let (group, plural) = (scope.group().to_owned(), scope.kind.plural);
    let target = name.clone();
    let codec = scope.codec();
    let outcome = blocking(move || {
        let map = |err| ApiError::from_store(err, &group, plural);
        let stored = store
            .get_raw(&key, &namespace, &target)
            .map_err(map)?
            .ok_or_else(|| ApiError::not_found(&group, plural, &target))?;
        let current = codec.served(stored)?;
        let target = Target {
            group: &group,
            plural,
            name: &target,
            namespace: &namespace,
        };
        let decision = strategy.delete(&current, delete_options.grace_period_seconds);
        let keeps = !deletes_now(decision, &current)
            || !finalizers(&current).is_empty()
            || delete_options
                .gc_finalizers(&current, strategy.default_garbage_collection_policy())
                .is_some();
        if !keeps {
            return store
                .delete_raw(&key, &namespace, target.name, &store_options)
                .map_err(map);
        }
        let mark = Mark {
            decision,
            strategy: strategy.as_ref(),
            codec: &codec,
            options: &delete_options,
            preconditions: &store_options,
        };
        match mark_deleting(&store, &key, &target, &mark)? {
            Updated::Removed(object) => Ok(Deleted::Removed(object)),
            updated if is_deleting(updated.object()) => Ok(Deleted::Pending(updated.into_object())),
            // No finalizer left on a kind deleted at once: kube's `errDeleteNow`.
            updated if store_options.dry_run => Ok(Deleted::Removed(updated.into_object())),
            updated => {
                let mut now = store_options.clone();
                if now.resource_version.is_some() && updated.written() {
                    let rv = updated.object().pointer("/metadata/resourceVersion");
                    now.resource_version = rv.and_then(Value::as_str).map(str::to_owned);
                }
                store
                    .delete_raw(&key, &namespace, target.name, &now)
                    .map_err(map)
            }
        }
    })
    .await?;
    Ok(match outcome {
        // kube answers 202 for an object kept after a delete that asked for its dependents to
        // be deleted with the deprecated `orphanDependents: false` (handlers/delete.go).
        Deleted::Pending(object) if options.orphan_dependents == Some(false) => {
            (StatusCode::ACCEPTED, scope.served(object)?)
        }
        Deleted::Pending(object) => (StatusCode::OK, scope.served(object)?),
        Deleted::Removed(object) if scope.strategy.return_deleted_object() => {
            (StatusCode::OK, scope.served(object)?)
        }
        Deleted::Removed(object) => (StatusCode::OK, success(scope, &name, &object)),
    })
}

/// Whether a delete removes the object at once (finalizers aside): a kind deleted at once, or
/// a graceful deletion cut to 0 s on an object already being deleted (kube's `errDeleteNow`),
/// as the kubelet's final delete of a pod whose containers are gone is.
fn deletes_now(decision: DeleteDecision, current: &Value) -> bool {
    match decision {
        DeleteDecision::Immediate => true,
        DeleteDecision::Graceful(0) => is_deleting(current),
        _ => false,
    }
}

/// The object a delete is about, for its error messages.
struct Target<'a> {
    group: &'a str,
    plural: &'a str,
    name: &'a str,
    namespace: &'a str,
}

/// How a delete that goes through an update marks the object.
struct Mark<'a> {
    decision: DeleteDecision,
    strategy: &'a dyn Strategy,
    codec: &'a Codec,
    options: &'a DeleteOptions,
    preconditions: &'a StoreDelete,
}

/// A delete that goes through an update (kube's `updateForGracefulDeletionAndFinalizers`):
/// the garbage collector's finalizers as the options ask, then a deletionTimestamp (`seconds`
/// ahead for a graceful delete, never later than one already set; now for one a controller
/// finalizes or one that keeps finalizers) and the kind's own marks. An object of a kind
/// deleted at once that ends with no finalizer is left unmarked, for the caller to delete.
fn mark_deleting(
    store: &peapod_store::Store,
    key: &peapod_store::ResourceKey,
    target: &Target<'_>,
    mark: &Mark<'_>,
) -> ApiResult<Updated> {
    let write = WriteOptions {
        dry_run: mark.preconditions.dry_run,
    };
    let rules = KindRules::new(mark.strategy, mark.codec, true);
    let update = |stored: &Value| {
        let old = &mark.codec.served(stored.clone())?;
        check_preconditions(target, mark.preconditions, old)?;
        let new = mark_object(old, mark)?;
        mark.codec.stored(new)
    };
    let (namespace, name) = (target.namespace, target.name);
    store.update_raw_with(key, namespace, name, &write, &rules, update)
}

/// The object `old` marked for deletion as [`mark_deleting`] says.
fn mark_object(old: &Value, mark: &Mark<'_>) -> ApiResult<Value> {
    let mut new = old.clone();
    let marked = is_deleting(old);
    match mark.decision {
        DeleteDecision::Graceful(seconds) => {
            let current = old
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if marked && current.is_some_and(|g| g <= seconds) {
                // A graceful deletion under way: nothing changes, finalizers neither
                // (kube's BeforeDelete "pending"); one already at 0 may still change them.
                if current != Some(0) {
                    return Ok(new);
                }
            } else {
                new["metadata"]["deletionTimestamp"] = json!(rfc3339(seconds));
                new["metadata"]["deletionGracePeriodSeconds"] = json!(seconds);
            }
        }
        DeleteDecision::Finalize if marked => return Ok(new),
        DeleteDecision::Finalize => new["metadata"]["deletionTimestamp"] = json!(rfc3339(0)),
        DeleteDecision::Immediate => {}
    }
    let default = mark.strategy.default_garbage_collection_policy();
    if let Some(finalizers) = mark.options.gc_finalizers(old, default) {
        set_finalizers(&mut new, finalizers);
    }
    if mark.decision == DeleteDecision::Immediate {
        if !finalizers(&new).is_empty() {
            mark_now(&mut new);
        }
        return Ok(new);
    }
    mark.strategy.mark_deleting(&mut new)?;
    Ok(new)
}

fn set_finalizers(object: &mut Value, finalizers: Vec<String>) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if finalizers.is_empty() {
        metadata.remove("finalizers");
    } else {
        metadata.insert("finalizers".into(), json!(finalizers));
    }
}

/// kube's `markAsDeleting` for an object kept by its finalizers: a deletionTimestamp of now
/// and a grace period of 0, each where not set already.
fn mark_now(object: &mut Value) {
    if !is_deleting(object) {
        object["metadata"]["deletionTimestamp"] = json!(rfc3339(0));
    }
    if object
        .pointer("/metadata/deletionGracePeriodSeconds")
        .is_none_or(Value::is_null)
    {
        object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    }
}

/// Now plus `seconds`, as Kubernetes writes times.
fn rfc3339(seconds: i64) -> String {
    let at = Timestamp::now() + SignedDuration::from_secs(seconds);
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// kube's delete preconditions, for the deletes that only mark the object.
fn check_preconditions(target: &Target<'_>, options: &StoreDelete, old: &Value) -> ApiResult<()> {
    let field = |pointer: &str| {
        old.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let checks = [
        ("UID", options.uid.as_deref(), field("/metadata/uid")),
        (
            "ResourceVersion",
            options.resource_version.as_deref(),
            field("/metadata/resourceVersion"),
        ),
    ];
    for (what, wanted, actual) in checks {
        if let Some(wanted) = wanted {
            if wanted != actual {
                let why = format!(
                    "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {actual}"
                );
                return Err(ApiError::conflict(
                    target.group,
                    target.plural,
                    target.name,
                    &why,
                ));
            }
        }
    }
    Ok(())
}

/// kube-apiserver's answer for an object removed at once.
fn success(scope: &Scope, name: &str, object: &Value) -> Value {
    let uid = object
        .pointer("/metadata/uid")
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": name,
            "group": scope.group(),
            "kind": scope.kind.plural,
            "uid": uid,
        },
    })
}

pub async fn delete_collection(scope: &Scope, request: Request) -> ApiResult<Response> {
    let options = options(scope, request).await?;
    let params: ListParams = scope.params()?;
    let selection = params.selection(scope)?;
    let list_options = ListOptions {
        namespace: scope.namespace().map(str::to_owned),
        predicate: scope.predicate(&selection),
        limit: None,
        continue_token: None,
    };
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let list = blocking(move || Ok(store.list_raw(&key, &list_options)?)).await?;
    let mut deleted = Vec::new();
    for object in list.items {
        let name = super::read::object_name(&object);
        match delete_one(scope, name, &options).await {
            Ok((_, object)) if object.get("kind") != Some(&json!("Status")) => deleted.push(object),
            Ok(_) => deleted.push(scope.served(object)?),
            Err(err) if err.code == StatusCode::NOT_FOUND => {}
            Err(err) => return Err(err),
        }
    }
    let body = json!({
        "kind": scope.kind.list_kind(),
        "apiVersion": scope.kind.api_version(),
        "metadata": {"resourceVersion": list.resource_version.to_string()},
        "items": deleted,
    });
    Ok(object_response(StatusCode::OK, &body, &scope.output))
}
