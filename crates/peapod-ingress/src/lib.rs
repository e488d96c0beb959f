//! peapod's ingress controller, as ingress-nginx runs in a cluster: the Ingresses of the
//! `peapod` class ([`routes`]) proxied to their Services' ready endpoints ([`backends`]) by an
//! HTTP/1.1 and HTTP/2 reverse proxy ([`proxy`]) on the node's HTTP and HTTPS ports, TLS by
//! SNI from the Ingresses' Secrets ([`tls`]), ingress-nginx's common annotations
//! ([`annotations`]) and the node's address in each Ingress's status ([`status`]).

pub mod annotations;
pub mod backends;
pub mod proxy;
pub mod routes;
pub mod status;
pub mod tls;
mod watch;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::networking::v1::{IngressClass, IngressClassSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::net::TcpListener;

pub use proxy::Timeouts;

/// The IngressClass the agent creates at start, the default class.
pub const CLASS_NAME: &str = "peapod";
/// The `spec.controller` of the classes this controller serves.
pub const CONTROLLER: &str = "peapod.io/ingress-controller";
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The `peapod` IngressClass, annotated as the cluster's default class.
pub fn default_class() -> IngressClass {
    IngressClass {
        metadata: ObjectMeta {
            name: Some(CLASS_NAME.to_owned()),
            annotations: Some(BTreeMap::from([(
                DEFAULT_CLASS_ANNOTATION.to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(IngressClassSpec {
            controller: Some(CONTROLLER.to_owned()),
            parameters: None,
        }),
    }
}

/// Where the controller listens and what it writes in the Ingresses' status.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// The plain HTTP listener, none when disabled.
    pub http: Option<SocketAddr>,
    /// The TLS listener, none when disabled.
    pub https: Option<SocketAddr>,
    /// The address written to `status.loadBalancer.ingress`.
    pub node_ip: IpAddr,
    pub timeouts: Timeouts,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PortError {
    #[error("{variable}={value:?} is neither a port number (1-65535) nor `off`")]
    Invalid { variable: String, value: String },
}

/// A port setting such as `PEAPOD_INGRESS_HTTP_PORT`: `off` disables the listener, unset
/// means `default`.
pub fn port_setting(
    variable: &str,
    value: Option<&str>,
    default: u16,
) -> Result<Option<u16>, PortError> {
    match value.map(str::trim) {
        None | Some("") => Ok(Some(default)),
        Some("off") => Ok(None),
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => Ok(Some(port)),
            _ => Err(PortError::Invalid {
                variable: variable.to_owned(),
                value: text.to_owned(),
            }),
        },
    }
}

/// Runs the controller until the task is dropped. A listener whose port is taken is logged
/// and left out; the other still serves and Ingresses still get their status.
pub async fn run(client: kube::Client, config: IngressConfig) {
    let resolver = Arc::new(tls::CertResolver::new());
    let https_port = config.https.map(|addr| addr.port());
    let shared = Arc::new(proxy::Shared::new(config.timeouts, https_port));
    if let Some(addr) = config.http {
        spawn_listener(addr, shared.clone(), None).await;
    }
    if let Some(addr) = config.https {
        let acceptor = tls::acceptor(resolver.clone());
        spawn_listener(addr, shared.clone(), Some(acceptor)).await;
    }
    watch::run(client, shared, resolver, config.node_ip).await;
}

async fn spawn_listener(
    addr: SocketAddr,
    shared: Arc<proxy::Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let scheme = if tls.is_some() { "https" } else { "http" };
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            tracing::info!(%addr, scheme, "ingress controller listening");
            tokio::spawn(proxy::serve(listener, shared, tls));
        }
        Err(err) => tracing::error!(
            %addr,
            %err,
            "the ingress controller cannot listen for {scheme}; Ingresses are not served on this port \
             (set PEAPOD_INGRESS_{}_PORT to a free port or `off`)",
            scheme.to_uppercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_numbers_off_or_the_default() {
        assert_eq!(port_setting("P", None, 80), Ok(Some(80)));
        assert_eq!(port_setting("P", Some("8080"), 80), Ok(Some(8080)));
        assert_eq!(port_setting("P", Some("off"), 80), Ok(None));
        assert!(port_setting("P", Some("0"), 80).is_err());
        assert!(port_setting("P", Some("http"), 80).is_err());
    }
}
