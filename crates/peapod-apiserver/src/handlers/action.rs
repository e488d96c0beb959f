//! Creates on subresources that act on their parent: a binding assigns a pod to a node, an
//! eviction deletes it with the eviction's options (both answer 201 with a Success `Status`,
//! as kube-apiserver does), a token request answers a token for its service account.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use peapod_store::WriteOptions;
use serde_json::{json, Value};

use super::delete::{delete_one, DeleteOptions};
use super::{blocking, body, object_response, ApiResult, Scope};
use crate::registry::Action;
use crate::status::ApiError;

pub async fn create(scope: &Scope, request: Request, action: Action) -> ApiResult<Response> {
    let body = body::object(request).await?;
    match action {
        Action::UpdateParent(change) => update_parent(scope, body.value, change).await?,
        Action::DeleteParent => delete_parent(scope, &body.value).await?,
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

async fn update_parent(
    scope: &Scope,
    body: Value,
    change: std::sync::Arc<crate::registry::ActionFn>,
) -> ApiResult<()> {
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
    answer: std::sync::Arc<crate::registry::AnswerFn>,
) -> ApiResult<Value> {
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let (namespace, name) = (scope.object_namespace().to_owned(), scope.name().to_owned());
    let found = {
        let store = store.clone();
        blocking(move || Ok(store.get_raw(&key, &namespace, &name)?)).await?
    };
    let parent = scope.served(found.ok_or_else(|| scope.not_found())?)?;
    blocking(move || answer(&parent, &body, &store)).await
}

/// An eviction: the parent named in the body, deleted with the body's `deleteOptions`.
async fn delete_parent(scope: &Scope, body: &Value) -> ApiResult<()> {
    let named = body.pointer("/metadata/name").and_then(Value::as_str);
    if named.is_some_and(|n| n != scope.name()) {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {} vs {}",
            scope.name(),
            named.unwrap_or_default()
        )));
    }
    let options: DeleteOptions = match body.get("deleteOptions") {
        Some(options) => serde_json::from_value(options.clone())
            .map_err(|err| ApiError::bad_request(format!("invalid deleteOptions: {err}")))?,
        None => DeleteOptions::default(),
    };
    delete_one(scope, scope.name().to_owned(), &options).await?;
    Ok(())
}
