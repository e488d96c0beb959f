//! create on a kind that stores nothing (SelfSubjectReview, SelfSubjectAccessReview): the body
//! checked against the endpoint and answered by the kind's [`Review`] for the requesting user,
//! 201 as kube-apiserver's create handler answers. kube routes only POST on the collection of
//! such a kind: any other method there is 405, any path below it 404.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{body, object_response, write, ApiResult};
use crate::negotiate::Output;
use crate::registry::{Kind, Requester, Review};
use crate::request_info::RequestInfo;
use crate::status::ApiError;

pub async fn serve(
    info: &RequestInfo,
    kind: &Kind,
    review: &dyn Review,
    requester: &Requester<'_>,
    output: &Output,
    request: Request,
) -> Response {
    create(info, kind, review, requester, output, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn create(
    info: &RequestInfo,
    kind: &Kind,
    review: &dyn Review,
    requester: &Requester<'_>,
    output: &Output,
    request: Request,
) -> ApiResult<Response> {
    if info.name.is_some() || info.subresource.is_some() {
        return Err(ApiError::no_route());
    }
    if info.verb != "create" {
        return Err(ApiError::method_not_allowed());
    }
    let body = body::object(request).await?;
    write::check_type_meta(kind, &body.value)?;
    let mut answer = review.create(&body.value, requester)?;
    if let Some(fields) = answer.as_object_mut() {
        fields.insert("kind".into(), kind.gvk.kind.clone().into());
        fields.insert("apiVersion".into(), kind.api_version().into());
    }
    Ok(object_response(StatusCode::CREATED, &answer, output))
}
