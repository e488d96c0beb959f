//! get and list: one object or a filtered, paged list, as the kind's JSON, a `Table` or
//! `PartialObjectMetadata`.

use axum::http::StatusCode;
use axum::response::Response;
use peapod_store::ListOptions;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, object_response, ApiResult, Scope};
use crate::negotiate::Output;
use crate::selectors::Selection;
use crate::status::ApiError;
use crate::table::{self, IncludeObject};

/// The list and watch query parameters (`metav1.ListOptions`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<i64>,
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub include_object: Option<String>,
    #[serde(deserialize_with = "super::go_bool")]
    pub allow_watch_bookmarks: Option<bool>,
    pub timeout_seconds: Option<i64>,
    #[serde(deserialize_with = "super::go_bool")]
    pub send_initial_events: Option<bool>,
    #[serde(deserialize_with = "super::go_bool")]
    pub watch: Option<bool>,
}

impl ListParams {
    pub fn selection(&self, scope: &Scope) -> ApiResult<Selection> {
        Selection::parse(
            self.label_selector.as_deref(),
            self.field_selector.as_deref(),
            scope.strategy.as_ref(),
        )
    }

    pub fn include_object(&self) -> ApiResult<IncludeObject> {
        IncludeObject::parse(self.include_object.as_deref()).map_err(ApiError::bad_request)
    }
}

pub async fn get(scope: &Scope) -> ApiResult<Response> {
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let (namespace, name) = (scope.object_namespace().to_owned(), scope.name().to_owned());
    let found = blocking(move || Ok(store.get_raw(&key, &namespace, &name)?)).await?;
    let object = scope.served(found.ok_or_else(|| scope.not_found())?)?;
    let params: ListParams = scope.params()?;
    match &scope.output {
        Output::Table { .. } => {
            let rv = resource_version(&object);
            let table = table_of(scope, &[object], params.include_object()?, rv, None);
            Ok(object_response(StatusCode::OK, &table, &Output::Json))
        }
        Output::PartialObjectMetadata => Ok(object_response(
            StatusCode::OK,
            &table::partial_object_metadata(&object),
            &Output::Json,
        )),
        output => Ok(object_response(StatusCode::OK, &object, output)),
    }
}

pub async fn list(scope: &Scope) -> ApiResult<Response> {
    let params: ListParams = scope.params()?;
    let selection = params.selection(scope)?;
    let options = ListOptions {
        namespace: scope.namespace().map(str::to_owned),
        predicate: scope.predicate(&selection),
        limit: params.limit.filter(|&l| l > 0).map(|l| l as usize),
        continue_token: params.continue_token.clone().filter(|c| !c.is_empty()),
    };
    let (store, key) = (scope.store.clone(), scope.kind.storage.clone());
    let list = blocking(move || Ok(store.list_raw(&key, &options)?)).await?;
    let items = list
        .items
        .into_iter()
        .map(|o| scope.served(o))
        .collect::<ApiResult<Vec<Value>>>()?;
    let mut metadata = json!({"resourceVersion": list.resource_version.to_string()});
    if let Some(token) = &list.continue_token {
        metadata["continue"] = json!(token);
        if let Some(remaining) = list.remaining_item_count {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    let body = match &scope.output {
        Output::Table { .. } => {
            let rv = list.resource_version.to_string();
            table_of(
                scope,
                &items,
                params.include_object()?,
                rv,
                list.continue_token,
            )
        }
        Output::PartialObjectMetadata | Output::PartialObjectMetadataList => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": items.iter().map(table::partial_object_metadata).collect::<Vec<_>>(),
        }),
        _ => json!({
            "kind": scope.kind.list_kind(),
            "apiVersion": scope.kind.api_version(),
            "metadata": metadata,
            "items": items,
        }),
    };
    let output = match scope.output {
        Output::Yaml | Output::Protobuf => scope.output,
        _ => Output::Json,
    };
    Ok(object_response(StatusCode::OK, &body, &output))
}

/// A Table of `objects` with the kind's columns.
pub fn table_of(
    scope: &Scope,
    objects: &[Value],
    include: IncludeObject,
    resource_version: String,
    continue_token: Option<String>,
) -> Value {
    let rows = objects
        .iter()
        .map(|object| (scope.strategy.cells(object), object))
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    table::table(&scope.strategy.columns(), rows, include, metadata, false)
}

pub fn resource_version(object: &Value) -> String {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

pub fn object_name(object: &Value) -> String {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
