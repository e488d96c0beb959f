//! The label selector a controller owns its objects by, read from its spec: one reading for
//! every workload kind, and kube's handling of an invalid one (logged, never retried: only an
//! update of the object can mend it).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;
use peapod_api::label_selector::as_selector;
use peapod_api::selector::LabelSelector as Selector;

use crate::controllers::retries::key_of;

/// A controller kind whose spec selects what it owns.
pub trait Selecting: Resource<DynamicType = ()> {
    /// `spec.selector`; a missing spec or selector reads as the empty selector.
    fn label_selector(&self) -> LabelSelector;
}

impl Selecting for ReplicaSet {
    fn label_selector(&self) -> LabelSelector {
        self.spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default()
    }
}

impl Selecting for Deployment {
    fn label_selector(&self) -> LabelSelector {
        self.spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default()
    }
}

impl Selecting for DaemonSet {
    fn label_selector(&self) -> LabelSelector {
        self.spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default()
    }
}

impl Selecting for StatefulSet {
    fn label_selector(&self) -> LabelSelector {
        self.spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default()
    }
}

impl Selecting for Job {
    fn label_selector(&self) -> LabelSelector {
        let selector = self.spec.as_ref().and_then(|s| s.selector.clone());
        selector.unwrap_or_default()
    }
}

/// The owner's selector, or why it is invalid.
pub fn selector_of<K: Selecting>(owner: &K) -> Result<Selector, String> {
    as_selector(&owner.label_selector()).map_err(|err| err.to_string())
}

/// The owner's selector; an invalid one is logged as kube logs it, and the sync should end
/// without a retry.
pub fn valid_selector<K: Selecting>(owner: &K) -> Option<Selector> {
    selector_of(owner)
        .inspect_err(|err| {
            let kind = K::kind(&());
            tracing::warn!(%kind, object = %key_of(owner), %err, "invalid selector; not retried");
        })
        .ok()
}
