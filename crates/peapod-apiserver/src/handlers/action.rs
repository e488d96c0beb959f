//! Creates on subresources that act on their parent: a binding assigns a pod to a node, an
//! eviction deletes it with the eviction's options once the kind's guard allows (both answer
//! 201 with a Success `Status`, as kube-apiserver does), a token request answers a token for
//! its service account.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use peapod_store::WriteOptions;
use serde_json::{json, Value};

use super::delete::{delete_one, DeleteOptions};
use super::write::WriteParams;
use super::{blocking, body, object_response, ApiResult, Scope};
use crate::registry::{Action, ActionFn, Allowed, GuardFn};
use crate::status::ApiError;

pub async fn create(scope: &Scope, request: Request, action: Action) -> ApiResult<Response> {
    let body = body::object(request).await?;
    match action {
        Action::UpdateParent(change) => update_parent(scope, body.value, change).await?,
        Action::DeleteParent(guard, mark) => delete_parent(scope, &body.value, guard, mark).await?,
        Action::Answer(answer) => {
            let object = answer_from_parent(scope, body.value, answer).await?;
            return Ok(object_response(StatusCode::CREATED, &object, &scope.output));
        }
    }
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    });
    Ok(object_response(StatusCode::CREATED, &status, &scope.output))
}

async fn update_parent(scope: &Scope, body: Value, change: Arc<ActionFn>) -> ApiResult<()> {
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let (namespace, name) = (scope.object_namespace().to_owned(), scope.name().to_owned());
    let (group, plural) = (scope.group().to_owned(), scope.kind.plural);
    let codec = scope.codec();
    blocking(move || {
        store
            .update_raw(
                &key,
                &namespace,
                &name,
                &WriteOptions::default(),
                |stored: &Value| {
                    let mut new = codec.served(stored.clone())?;
                    change(&mut new, &body)?;
                    codec.stored(new)
                },
            )
            .map_err(|err| match err.reason {
                "NotFound" => ApiError::not_found(&group, plural, &name),
                _ => err,
            })?;
        Ok(())
    })
    .await
}

/// The object an [`Action::Answer`] makes from the stored parent and the body.
async fn answer_from_parent(
    scope: &Scope,
    body: Value,
    answer: Arc<crate::registry::AnswerFn>,
) -> ApiResult<Value> {
    let parent = read_parent(scope).await?;
    let store = scope.store.clone();
    blocking(move || answer(&parent, &body, &store)).await
}

/// kube's EvictionsRetry steps: an eviction whose parent changed while it was judged is
/// judged again, unless the request named the resourceVersion it meant.
const EVICTION_TRIES: usize = 20;

/// An eviction: the parent named in the body, judged by the kind's guard, marked (unless a
/// dry run) and deleted with the body's `deleteOptions`, as kube's EvictionREST does.
async fn delete_parent(
    scope: &Scope,
    body: &Value,
    guard: Arc<GuardFn>,
    mark: Arc<ActionFn>,
) -> ApiResult<()> {
    let named = body.pointer("/metadata/name").and_then(Value::as_str);
    if named.is_some_and(|n| n != scope.name()) {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {} vs {}",
            scope.name(),
            named.unwrap_or_default()
        )));
    }
    let mut options: DeleteOptions = match body.get("deleteOptions") {
        Some(options) => serde_json::from_value(options.clone())
            .map_err(|err| ApiError::bad_request(format!("invalid deleteOptions: {err}")))?,
        None => DeleteOptions::default(),
    };
    options.dry_run_or(&scope.params::<WriteParams>()?.dry_run);
    for _ in 1..EVICTION_TRIES {
        match evict_once(scope, body, options.clone(), &guard, &mark).await {
            Err(err) if err.reason == "Conflict" && options.resource_version().is_none() => {}
            done => return done,
        }
    }
    evict_once(scope, body, options, &guard, &mark).await
}

/// One judgement of the parent as read now, then its mark and delete while the guard's
/// condition holds.
async fn evict_once(
    scope: &Scope,
    body: &Value,
    mut options: DeleteOptions,
    guard: &Arc<GuardFn>,
    mark: &Arc<ActionFn>,
) -> ApiResult<()> {
    let dry_run = options.dry_run()?;
    let parent = read_parent(scope).await?;
    let allowed = {
        let (store, parent, guard) = (scope.store.clone(), parent.clone(), guard.clone());
        blocking(move || guard(&parent, dry_run, &store)).await?
    };
    let given = options.resource_version().map(str::to_owned);
    let (required, refusal) = match allowed {
        Allowed::Always => (given.clone(), None),
        Allowed::IfUnchanged(refusal) => {
            let judged = parent
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str);
            (given.clone().or(judged.map(str::to_owned)), Some(refusal))
        }
    };
    if let Some(resource_version) = required {
        options.require_resource_version(resource_version);
    }
    if !dry_run {
        let required = options.resource_version();
        let marked = mark_parent(scope, body.clone(), required, mark.clone()).await;
        match marked {
            Ok(resource_version) if options.resource_version().is_some() => {
                options.require_resource_version(resource_version);
            }
            Ok(_) => {}
            Err(err) if err.reason == "Conflict" && given.is_none() => {
                return Err(refusal.unwrap_or(err))
            }
            Err(err) => return Err(err),
        }
    }
    match delete_one(scope, scope.name().to_owned(), &options).await {
        Err(err) if err.reason == "Conflict" && given.is_none() => Err(refusal.unwrap_or(err)),
        deleted => deleted.map(|_| ()),
    }
}

async fn read_parent(scope: &Scope) -> ApiResult<Value> {
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let (namespace, name) = (scope.object_namespace().to_owned(), scope.name().to_owned());
    let found = blocking(move || Ok(store.get_raw(&key, &namespace, &name)?)).await?;
    scope.served(found.ok_or_else(|| scope.not_found())?)
}

/// Changes the parent with `mark` while it keeps `resource_version` (when given), answering
/// its resourceVersion afterwards.
async fn mark_parent(
    scope: &Scope,
    body: Value,
    resource_version: Option<&str>,
    mark: Arc<ActionFn>,
) -> ApiResult<String> {
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let (namespace, name) = (scope.object_namespace().to_owned(), scope.name().to_owned());
    let (group, plural) = (scope.group().to_owned(), scope.kind.plural);
    let required = resource_version.map(str::to_owned);
    let codec = scope.codec();
    blocking(move || {
        let updated = store
            .update_raw(&key, &namespace, &name, &WriteOptions::default(), |stored: &Value| {
                let mut parent = codec.served(stored.clone())?;
                let current = parent["metadata"]["resourceVersion"].as_str().unwrap_or_default();
                if let Some(required) = required.as_deref().filter(|rv| *rv != current) {
                    let why = format!("the ResourceVersion in the precondition ({required}) does not match the ResourceVersion in record ({current}). The object might have been modified");
                    return Err(ApiError::conflict(&group, plural, &name, &why));
                }
                mark(&mut parent, &body)?;
                codec.stored(parent)
            })
            .map_err(|err| match err.reason {
                "NotFound" => ApiError::not_found(&group, plural, &name),
                _ => err,
            })?;
        let object = updated.object();
        let resource_version = object.pointer("/metadata/resourceVersion").and_then(Value::as_str);
        Ok(resource_version.unwrap_or_default().to_owned())
    })
    .await
}
