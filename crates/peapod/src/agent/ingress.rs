//! The ingress controller in the agent: peapod-ingress serving the Ingresses of class
//! `peapod` on PEAPOD_INGRESS_HTTP_PORT (80) and PEAPOD_INGRESS_HTTPS_PORT (443), `off`
//! disabling either, as the `kube-system/peapod-ingress` service account. A bad setting or a
//! taken port is logged and leaves the agent running.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use peapod_apiserver::rbac::bootstrap::INGRESS_CONTROLLER;
use peapod_ingress::{port_setting, IngressConfig, Timeouts};

use crate::kubelet::Context;

const HTTP_PORT: &str = "PEAPOD_INGRESS_HTTP_PORT";
const HTTPS_PORT: &str = "PEAPOD_INGRESS_HTTPS_PORT";

pub fn spawn(app: &axum::Router, ctx: &Context) -> tokio::task::JoinHandle<()> {
    let client = super::controller_client(app, INGRESS_CONTROLLER);
    let listener = |variable: &str, default: u16| {
        let value = std::env::var(variable).ok();
        match port_setting(variable, value.as_deref(), default) {
            Ok(port) => port.map(|p| SocketAddr::from((Ipv4Addr::UNSPECIFIED, p))),
            Err(err) => {
                tracing::error!(%err, "the ingress controller's listener is disabled");
                None
            }
        }
    };
    let config = IngressConfig {
        http: listener(HTTP_PORT, 80),
        https: listener(HTTPS_PORT, 443),
        node_ip: ctx
            .host_ip
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        timeouts: Timeouts::default(),
    };
    tokio::spawn(peapod_ingress::run(client, config))
}
