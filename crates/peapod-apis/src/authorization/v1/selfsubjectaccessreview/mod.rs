//! authorization.k8s.io/v1 SelfSubjectAccessReview: `kubectl auth can-i`'s question, "may I
//! do this?", answered by the server's authorizer for the requesting user and kept nowhere,
//! as kube's `pkg/registry/authorization/selfsubjectaccessreview` answers it.

use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SelfSubjectAccessReview, SubjectAccessReviewStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{Kind, KindReview, Requester};
use peapod_apiserver::request_info::RequestInfo;
use peapod_apiserver::status::ApiError;
use serde_json::json;

pub fn kind() -> Kind {
    Kind::review(SelfSubjectAccessReviewer)
}

pub struct SelfSubjectAccessReviewer;

impl KindReview for SelfSubjectAccessReviewer {
    type Object = SelfSubjectAccessReview;

    /// kube's `ValidateSelfSubjectAccessReview`: exactly one kind of attributes, and no
    /// metadata (managedFields aside).
    fn validate(&self, review: &SelfSubjectAccessReview) -> Vec<FieldError> {
        let mut errors = attribute_errors(
            &review.spec.resource_attributes,
            &review.spec.non_resource_attributes,
        );
        let metadata = ObjectMeta {
            managed_fields: None,
            ..review.metadata.clone()
        };
        if metadata != ObjectMeta::default() {
            errors.push(FieldError::invalid(
                &FieldPath::new("metadata"),
                json!(metadata),
                "must be empty",
            ));
        }
        errors
    }

    fn review(
        &self,
        mut review: SelfSubjectAccessReview,
        requester: &Requester<'_>,
    ) -> Result<SelfSubjectAccessReview, ApiError> {
        let spec = &review.spec;
        let request = match (&spec.resource_attributes, &spec.non_resource_attributes) {
            (Some(attributes), _) => resource_request(attributes),
            (None, Some(attributes)) => non_resource_request(attributes),
            (None, None) => return Err(ApiError::bad_request("no attributes to review")),
        };
        review.status = Some(SubjectAccessReviewStatus {
            allowed: requester.authorizer.allows(requester.user, &request),
            ..SubjectAccessReviewStatus::default()
        });
        Ok(review)
    }
}

/// Exactly one kind of attributes (kube's `ValidateSelfSubjectAccessReviewSpec`).
pub(crate) fn attribute_errors(
    resource: &Option<ResourceAttributes>,
    non_resource: &Option<NonResourceAttributes>,
) -> Vec<FieldError> {
    let spec = FieldPath::new("spec");
    match (resource, non_resource) {
        (Some(_), Some(given)) => vec![FieldError::invalid(
            &spec.child("nonResourceAttributes"),
            json!(given),
            "cannot be specified in combination with resourceAttributes",
        )],
        (None, None) => vec![FieldError::invalid(
            &spec.child("resourceAttributes"),
            json!(null),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )],
        _ => Vec::new(),
    }
}

/// The request `attributes` describe, as the authorizer judges real ones.
pub(crate) fn resource_request(attributes: &ResourceAttributes) -> RequestInfo {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    RequestInfo {
        is_resource_request: true,
        verb: text(&attributes.verb),
        api_group: text(&attributes.group),
        api_version: text(&attributes.version),
        namespace: given(&attributes.namespace),
        resource: text(&attributes.resource),
        subresource: given(&attributes.subresource),
        name: given(&attributes.name),
        ..RequestInfo::default()
    }
}

pub(crate) fn non_resource_request(attributes: &NonResourceAttributes) -> RequestInfo {
    RequestInfo {
        is_resource_request: false,
        path: attributes.path.clone().unwrap_or_default(),
        verb: attributes.verb.clone().unwrap_or_default(),
        ..RequestInfo::default()
    }
}
