//! The service proxy in the agent: peapod-proxy writing the Services' rules into the agent's
//! own nftables table as kube-proxy's user (`system:kube-proxy`, bound to
//! `system:node-proxier`), and the LoadBalancer status set as kube's service controller's
//! account, with the node's address.

use std::net::Ipv4Addr;

use peapod_apiserver::authn::User;
use peapod_apiserver::rbac::bootstrap::{KUBE_PROXY_USER, SERVICE_CONTROLLER};
use peapod_proxy::ProxyConfig;

use crate::kubelet::Context;

pub fn spawn(app: &axum::Router, ctx: &Context) -> [tokio::task::JoinHandle<()>; 2] {
    let audited = app
        .clone()
        .layer(axum::middleware::from_fn(super::audit::log));
    let user = User::new(KUBE_PROXY_USER, &[]);
    let proxier = crate::controllers::client::in_process(audited, user, "kube-proxy");
    let network = ctx.network.config();
    let config = ProxyConfig {
        table: network.table(),
        pod_cidr: network.cidr,
        service_cidr: ctx.cluster.service_cidr,
    };
    let node_ip = ctx.host_ip.parse().unwrap_or(Ipv4Addr::LOCALHOST);
    let load_balancers = super::controller_client(app, SERVICE_CONTROLLER);
    [
        tokio::spawn(peapod_proxy::run(proxier, config)),
        tokio::spawn(peapod_proxy::lb::run(load_balancers, node_ip)),
    ]
}
