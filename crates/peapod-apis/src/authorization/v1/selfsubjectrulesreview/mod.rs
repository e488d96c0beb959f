//! authorization.k8s.io/v1 SelfSubjectRulesReview: `kubectl auth can-i --list`'s question,
//! "what may I do in this namespace?", answered with the authorizer's rules for the
//! requesting user and kept nowhere, as kube's
//! `pkg/registry/authorization/selfsubjectrulesreview` answers it.

use k8s_openapi::api::authorization::v1::SelfSubjectRulesReview;
use peapod_apiserver::registry::{Kind, KindReview, Requester};
use peapod_apiserver::status::ApiError;

pub fn kind() -> Kind {
    Kind::review(SelfSubjectRulesReviewer)
}

pub struct SelfSubjectRulesReviewer;

impl KindReview for SelfSubjectRulesReviewer {
    type Object = SelfSubjectRulesReview;

    fn review(
        &self,
        review: SelfSubjectRulesReview,
        requester: &Requester<'_>,
    ) -> Result<SelfSubjectRulesReview, ApiError> {
        let namespace = review.spec.namespace.unwrap_or_default();
        if namespace.is_empty() {
            return Err(ApiError::bad_request("no namespace on request"));
        }
        let status = requester.authorizer.rules(requester.user, &namespace);
        Ok(SelfSubjectRulesReview {
            status: Some(status),
            ..SelfSubjectRulesReview::default()
        })
    }
}
