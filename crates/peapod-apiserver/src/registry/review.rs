//! Create-only resources that are not stored (kube's `rest.Creater` without a store:
//! SelfSubjectReview, SelfSubjectAccessReview, SelfSubjectRulesReview, TokenReview): a create
//! answers the posted object completed from who asks, and nothing is kept. Written once per
//! kind against its Rust type ([`KindReview`]) and erased to JSON values ([`Review`]).

use peapod_api::validation::FieldError;
use peapod_store::Object;
use serde_json::Value;

use crate::authn::{Authorizer, User};
use crate::status::ApiError;

/// Who asks, and what may decide what they may do.
pub struct Requester<'a> {
    pub user: &'a User,
    pub authorizer: &'a dyn Authorizer,
    /// The namespace of the request's URL, for namespaced reviews.
    pub namespace: Option<&'a str>,
}

/// A create-only kind's answer to one create, over its typed object.
pub trait KindReview: Send + Sync + 'static {
    type Object: Object;

    /// Validation of the posted object (422 naming the kind when not empty).
    fn validate(&self, _review: &Self::Object) -> Vec<FieldError> {
        Vec::new()
    }

    /// The answer: the posted object with what it asks about filled in.
    fn review(
        &self,
        review: Self::Object,
        requester: &Requester<'_>,
    ) -> Result<Self::Object, ApiError>;
}

/// [`KindReview`] over JSON values, as the review handler uses it.
pub trait Review: Send + Sync + 'static {
    /// The answer to the decoded request body.
    fn create(&self, body: &Value, requester: &Requester<'_>) -> Result<Value, ApiError>;
}

/// Erases a [`KindReview`] to a [`Review`].
pub struct TypedReview<R>(pub R);

impl<R: KindReview> Review for TypedReview<R> {
    fn create(&self, body: &Value, requester: &Requester<'_>) -> Result<Value, ApiError> {
        let kind = <R::Object as k8s_openapi::Resource>::KIND;
        let version = <R::Object as k8s_openapi::Resource>::VERSION;
        let mut body = body.clone();
        if let Some(namespace) = requester.namespace {
            fill_namespace(&mut body, namespace)?;
        }
        let (review, _unknown) =
            peapod_api::object::decode_typed::<R::Object>(&body).map_err(|err| {
                ApiError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: {err}"
                ))
            })?;
        let errors = self.0.validate(&review);
        if !errors.is_empty() {
            let group = <R::Object as k8s_openapi::Resource>::GROUP;
            return Err(ApiError::invalid(group, kind, "", errors));
        }
        let answer = self.0.review(review, requester)?;
        serde_json::to_value(&answer).map_err(|err| ApiError::internal(err.to_string()))
    }
}

/// A namespaced create takes the URL's namespace (kube's `EnsureObjectNamespaceMatchesRequestNamespace`).
fn fill_namespace(body: &mut Value, namespace: &str) -> Result<(), ApiError> {
    match body.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(given) if !given.is_empty() && given != namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            if let Some(object) = body.as_object_mut() {
                let metadata = object
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Some(metadata) = metadata.as_object_mut() {
                    metadata.insert("namespace".into(), Value::from(namespace));
                }
            }
            Ok(())
        }
    }
}
