//! delete and deletecollection: `DeleteOptions` from the body or the query, uid and
//! resourceVersion preconditions, graceful deletion where the kind asks for it, finalizers,
//! dry runs, and kube-apiserver's answers (the object while it lingers, a Success `Status` once
//! it is gone).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use peapod_api::validation::{FieldError, FieldPath};
use peapod_store::{DeleteOptionsRaw as StoreDelete, Deleted, ListOptions, WriteOptions};
use serde::Deserialize;
use serde_json::{json, Value};

use super::read::ListParams;
use super::{blocking, body, object_response, ApiResult, Scope};
use crate::registry::{DeleteDecision, Strategy};
use crate::status::ApiError;

/// `metav1.DeleteOptions`, from the body or the query.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeleteOptions {
    grace_period_seconds: Option<i64>,
    propagation_policy: Option<String>,
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
    fn dry_run(&self) -> ApiResult<bool> {
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

    fn store_options(&self) -> ApiResult<StoreDelete> {
        let preconditions = self.preconditions.clone().unwrap_or_default();
        Ok(StoreDelete {
            uid: preconditions.uid.filter(|u| !u.is_empty()),
            resource_version: preconditions.resource_version.filter(|rv| !rv.is_empty()),
            dry_run: self.dry_run()?,
        })
    }
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
    let grace = options.grace_period_seconds;
    let (group, plural) = (scope.group().to_owned(), scope.kind.plural);
    let target = name.clone();
    let outcome = blocking(move || {
        let map = |err| ApiError::from_store(err, &group, plural);
        let current = store
            .get_raw(&key, &namespace, &target)
            .map_err(map)?
            .ok_or_else(|| ApiError::not_found(&group, plural, &target))?;
        let target = Target {
            group: &group,
            plural,
            name: &target,
            namespace: &namespace,
        };
        match strategy.delete(&current, grace) {
            DeleteDecision::Immediate => store
                .delete_raw(&key, &namespace, target.name, &store_options)
                .map_err(map),
            decision => mark_deleting(
                &store,
                &key,
                &target,
                decision,
                strategy.as_ref(),
                &store_options,
            )
            .map(Deleted::Pending),
        }
    })
    .await?;
    Ok(match outcome {
        Deleted::Pending(object) => (StatusCode::OK, scope.typed(object)),
        Deleted::Removed(object) if scope.strategy.return_deleted_object() => {
            (StatusCode::OK, scope.typed(object))
        }
        Deleted::Removed(object) => (StatusCode::OK, success(scope, &name, &object)),
    })
}
/// The object a delete is about, for its error messages.
struct Target<'a> {
    group: &'a str,
    plural: &'a str,
    name: &'a str,
    namespace: &'a str,
}

/// A delete that keeps the object: a deletionTimestamp (`seconds` ahead for a graceful
/// delete, never later than one already set; now for one a controller finalizes) and the
/// kind's own marks.
fn mark_deleting(
    store: &peapod_store::Store,
    key: &peapod_store::ResourceKey,
    target: &Target<'_>,
    decision: DeleteDecision,
    strategy: &dyn Strategy,
    options: &StoreDelete,
) -> ApiResult<Value> {
    let write = WriteOptions {
        dry_run: options.dry_run,
    };
    let outcome = store.update_raw(key, target.namespace, target.name, &write, |old: &Value| {
        check_preconditions(target, options, old)?;
        let mut new = old.clone();
        let marked = old.pointer("/metadata/deletionTimestamp").is_some();
        match decision {
            DeleteDecision::Graceful(seconds) => {
                let current = old
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64);
                if marked && current.is_some_and(|g| g <= seconds) {
                    return Ok::<Value, ApiError>(new);
                }
                new["metadata"]["deletionTimestamp"] = json!(rfc3339(seconds));
                new["metadata"]["deletionGracePeriodSeconds"] = json!(seconds);
            }
            _ if marked => return Ok(new),
            _ => new["metadata"]["deletionTimestamp"] = json!(rfc3339(0)),
        }
        strategy.mark_deleting(&mut new)?;
        Ok(new)
    })?;
    Ok(outcome.into_object())
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
        predicate: selection.predicate(scope.strategy.clone()),
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
            Ok(_) => deleted.push(scope.typed(object)),
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
