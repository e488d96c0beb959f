//! The Kubernetes kinds peapod serves. Each lives in its own folder (`core/v1/pod/`, ...) and
//! ends in a `kind()` registry entry: names, scope, subresources, strategy and table columns.
//! [`builtin`] is the list; adding a kind is one folder and one line here.

pub mod apps;
pub mod authentication;
pub mod authorization;
pub mod autoscaling;
pub mod batch;
pub mod coordination;
pub mod core;
pub mod default_class;
pub mod discovery;
pub mod events;
pub mod external;
pub mod networking;
pub mod policy;
pub mod rbac;
pub mod scheduling;
pub mod storage;

use std::sync::Arc;

pub use crate::core::v1::service::ServiceNetwork;
use crate::core::v1::serviceaccount::token::TokenSigner;
use peapod_apiserver::registry::Registry;

/// What the kinds need to know about the node they run on.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The node's name: pods may only be bound to it.
    pub name: String,
    /// The node's IPv4 addresses, for hostIP checks.
    pub addresses: fn() -> Vec<std::net::Ipv4Addr>,
}

/// Every kind the API server serves, its service account tokens signed by a key of its own and
/// its Services given addresses and node ports from kube's default ranges.
pub fn builtin(node: NodeInfo) -> Registry {
    builtin_signing(
        node,
        ServiceNetwork::default(),
        Arc::new(TokenSigner::ephemeral()),
    )
}

/// Every kind the API server serves, its Services given addresses and node ports from
/// `services`, its service account tokens signed by `signer`.
pub fn builtin_signing(
    node: NodeInfo,
    services: ServiceNetwork,
    signer: Arc<TokenSigner>,
) -> Registry {
    Registry::new([
        core::v1::namespace::kind(),
        core::v1::pod::kind(node),
        core::v1::node::kind(),
        core::v1::event::kind(),
        core::v1::configmap::kind(),
        core::v1::secret::kind(),
        core::v1::serviceaccount::kind(signer),
        core::v1::persistentvolume::kind(),
        core::v1::persistentvolumeclaim::kind(),
        core::v1::service::kind(services),
        core::v1::endpoints::kind(),
        apps::v1::replicaset::kind(),
        apps::v1::deployment::kind(),
        apps::v1::daemonset::kind(),
        apps::v1::statefulset::kind(),
        apps::v1::controllerrevision::kind(),
        events::v1::event::kind(),
        discovery::v1::endpointslice::kind(),
        networking::v1::ingress::kind(),
        networking::v1::ingressclass::kind(),
        authentication::v1::selfsubjectreview::kind(),
        authorization::v1::subjectaccessreview::local_kind(),
        authorization::v1::selfsubjectaccessreview::kind(),
        authorization::v1::selfsubjectrulesreview::kind(),
        authorization::v1::subjectaccessreview::kind(),
        batch::v1::job::kind(),
        batch::v1::cronjob::kind(),
        autoscaling::v2::horizontalpodautoscaler::kind(),
        autoscaling::v1::horizontalpodautoscaler::kind(),
        coordination::v1::lease::kind(),
        policy::v1::poddisruptionbudget::kind(),
        storage::v1::storageclass::kind(),
        scheduling::v1::priorityclass::kind(),
        rbac::v1::role(),
        rbac::v1::role_binding(),
        rbac::v1::cluster_role(),
        rbac::v1::cluster_role_binding(),
        external::pod_metrics(),
        external::node_metrics(),
        external::images(),
    ])
}
