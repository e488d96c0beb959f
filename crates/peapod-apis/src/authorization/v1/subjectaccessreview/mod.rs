//! authorization.k8s.io/v1 SubjectAccessReview and LocalSubjectAccessReview: "may this user
//! do that?" asked about any user (and groups, extra) and answered by the server's authorizer,
//! kept nowhere, as kube's `pkg/registry/authorization/{subjectaccessreview,
//! localsubjectaccessreview}` answer them. Who may ask is RBAC's to say (`create` on them).

use std::collections::BTreeMap;

use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, SubjectAccessReview, SubjectAccessReviewSpec,
    SubjectAccessReviewStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::authn::User;
use peapod_apiserver::registry::{Kind, KindReview, Requester};
use peapod_apiserver::status::ApiError;
use serde_json::json;

use super::selfsubjectaccessreview::{attribute_errors, non_resource_request, resource_request};

pub fn kind() -> Kind {
    Kind::review(SubjectAccessReviewer)
}

pub fn local_kind() -> Kind {
    Kind::review(LocalSubjectAccessReviewer)
}

pub struct SubjectAccessReviewer;

impl KindReview for SubjectAccessReviewer {
    type Object = SubjectAccessReview;

    /// kube's `ValidateSubjectAccessReview`.
    fn validate(&self, review: &SubjectAccessReview) -> Vec<FieldError> {
        let mut errors = spec_errors(&review.spec);
        let metadata = ObjectMeta {
            managed_fields: None,
            ..review.metadata.clone()
        };
        if metadata != ObjectMeta::default() {
            let path = FieldPath::new("metadata");
            errors.push(FieldError::invalid(&path, json!(metadata), "must be empty"));
        }
        errors
    }

    fn review(
        &self,
        mut review: SubjectAccessReview,
        requester: &Requester<'_>,
    ) -> Result<SubjectAccessReview, ApiError> {
        review.status = Some(answer(&review.spec, requester)?);
        Ok(review)
    }
}

pub struct LocalSubjectAccessReviewer;

impl KindReview for LocalSubjectAccessReviewer {
    type Object = LocalSubjectAccessReview;

    /// kube's `ValidateLocalSubjectAccessReview`.
    fn validate(&self, review: &LocalSubjectAccessReview) -> Vec<FieldError> {
        let mut errors = spec_errors(&review.spec);
        let metadata = ObjectMeta {
            managed_fields: None,
            namespace: None,
            ..review.metadata.clone()
        };
        if metadata != ObjectMeta::default() {
            let detail = "must be empty except for namespace";
            let path = FieldPath::new("metadata");
            errors.push(FieldError::invalid(&path, json!(review.metadata), detail));
        }
        let namespace = review.metadata.namespace.clone().unwrap_or_default();
        if let Some(attributes) = &review.spec.resource_attributes {
            let asked = attributes.namespace.clone().unwrap_or_default();
            if asked != namespace {
                let path = FieldPath::new("spec.resourceAttributes.namespace");
                errors.push(FieldError::invalid(
                    &path,
                    json!(asked),
                    "must match metadata.namespace",
                ));
            }
        }
        if let Some(given) = &review.spec.non_resource_attributes {
            let path = FieldPath::new("spec.nonResourceAttributes");
            errors.push(FieldError::invalid(
                &path,
                json!(given),
                "disallowed on this kind of request",
            ));
        }
        errors
    }

    fn review(
        &self,
        mut review: LocalSubjectAccessReview,
        requester: &Requester<'_>,
    ) -> Result<LocalSubjectAccessReview, ApiError> {
        let namespace = requester.namespace.unwrap_or_default();
        if namespace.is_empty() {
            return Err(ApiError::bad_request(
                "namespace is required on this type: ",
            ));
        }
        if review.metadata.namespace.as_deref() != Some(namespace) {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {namespace}"
            )));
        }
        review.status = Some(answer(&review.spec, requester)?);
        Ok(review)
    }
}

/// kube's `ValidateSubjectAccessReviewSpec`: one kind of attributes, and someone to ask about.
fn spec_errors(spec: &SubjectAccessReviewSpec) -> Vec<FieldError> {
    let mut errors = attribute_errors(&spec.resource_attributes, &spec.non_resource_attributes);
    let no_groups = spec.groups.as_ref().is_none_or(Vec::is_empty);
    if spec.user.as_deref().unwrap_or_default().is_empty() && no_groups {
        let path = FieldPath::new("spec").child("user");
        let detail = "at least one of user or group must be specified";
        errors.push(FieldError::invalid(&path, json!(""), detail));
    }
    errors
}

/// The authorizer's decision for the user the spec describes, exactly as given (no implied
/// `system:authenticated`).
fn answer(
    spec: &SubjectAccessReviewSpec,
    requester: &Requester<'_>,
) -> Result<SubjectAccessReviewStatus, ApiError> {
    let request = match (&spec.resource_attributes, &spec.non_resource_attributes) {
        (Some(attributes), _) => resource_request(attributes),
        (None, Some(attributes)) => non_resource_request(attributes),
        (None, None) => return Err(ApiError::bad_request("no attributes to review")),
    };
    let subject = User {
        name: spec.user.clone().unwrap_or_default(),
        groups: spec.groups.clone().unwrap_or_default(),
        extra: spec
            .extra
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
    };
    Ok(SubjectAccessReviewStatus {
        allowed: requester.authorizer.allows(&subject, &request),
        ..SubjectAccessReviewStatus::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(review: serde_json::Value) -> Vec<String> {
        let review: LocalSubjectAccessReview = serde_json::from_value(review).unwrap();
        LocalSubjectAccessReviewer
            .validate(&review)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn local_reviews_ask_about_someone_in_their_own_namespace() {
        let attributes = json!({"verb": "get", "resource": "pods", "namespace": "other"});
        assert_eq!(
            messages(json!({"metadata": {"namespace": "team", "name": "x"},
                            "spec": {"resourceAttributes": attributes}})),
            [
                "spec.user: Invalid value: \"\": at least one of user or group must be specified",
                "metadata: Invalid value: {\"name\":\"x\",\"namespace\":\"team\"}: must be empty except for namespace",
                "spec.resourceAttributes.namespace: Invalid value: \"other\": must match metadata.namespace",
            ]
        );
        let fine = json!({"metadata": {"namespace": "team"}, "spec": {"groups": ["g"],
            "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "team"}}});
        assert!(messages(fine).is_empty());
    }
}
