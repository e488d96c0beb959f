//! authentication.k8s.io/v1 SelfSubjectReview: `kubectl auth whoami`'s question, answered
//! with the user the request was authenticated as and kept nowhere, as kube's
//! `pkg/registry/authentication/selfsubjectreview` answers it.

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, SelfSubjectReviewStatus, UserInfo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use peapod_apiserver::registry::{Kind, KindReview, Requester};
use peapod_apiserver::status::ApiError;

pub fn kind() -> Kind {
    Kind::review(SelfSubjectReviewer)
}

pub struct SelfSubjectReviewer;

impl KindReview for SelfSubjectReviewer {
    type Object = SelfSubjectReview;

    fn review(
        &self,
        _review: SelfSubjectReview,
        requester: &Requester<'_>,
    ) -> Result<SelfSubjectReview, ApiError> {
        let user = requester.user;
        let user_info = UserInfo {
            username: Some(user.name.clone()),
            groups: Some(user.groups.clone()).filter(|groups| !groups.is_empty()),
            uid: None,
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        };
        Ok(SelfSubjectReview {
            metadata: ObjectMeta {
                creation_timestamp: Some(Time(Timestamp::now())),
                ..ObjectMeta::default()
            },
            status: Some(SelfSubjectReviewStatus {
                user_info: Some(user_info),
            }),
        })
    }
}
