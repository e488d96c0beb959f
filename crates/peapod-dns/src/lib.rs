//! The cluster DNS: the records Kubernetes' DNS specification asks for, answered from
//! watches of Services, EndpointSlices and namespaces, everything else forwarded to the
//! node's resolvers, over UDP and TCP on hickory-server.

pub mod forward;
pub mod records;
pub mod server;
pub mod view;
pub mod watch;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::Ipv4Net;

pub use forward::{ForwardError, Forwarder};
pub use records::Zone;
pub use server::{Handler, ServeError, SharedView};

/// Where and for what the cluster DNS answers.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    /// The DNS Service's cluster IP, named by `ns.dns.<domain>` and never forwarded to.
    pub service_ip: Ipv4Addr,
    /// The pod and Service ranges, whose reverse names are answered.
    pub ranges: Vec<Ipv4Net>,
    /// The addresses to listen on (UDP and TCP).
    pub listen: Vec<SocketAddr>,
    /// The resolv.conf naming the resolvers other names go to.
    pub resolv_conf: PathBuf,
}

/// Binds the listeners, then serves from the cluster `client` watches until dropped. An
/// unreadable resolv.conf only stops forwarding until it can be read; a listener that cannot
/// bind is the error.
pub async fn run(config: DnsConfig, client: kube::Client) -> Result<(), ServeError> {
    let mut sockets = Vec::new();
    for address in &config.listen {
        sockets.push(server::bind(*address).await?);
    }
    let mut own: Vec<IpAddr> = config.listen.iter().map(SocketAddr::ip).collect();
    own.push(config.service_ip.into());
    let forwarder = Forwarder::following(&config.resolv_conf, &own);
    if let Err(error) = forwarder.reload() {
        tracing::warn!(%error, "cluster DNS: names outside the cluster fail (SERVFAIL) until it can be read");
    }
    let upstreams = forwarder.upstreams();
    let view = Arc::new(SharedView::default());
    let handler = Handler {
        view: view.clone(),
        zone: Zone {
            domain: config.domain,
            dns_ip: config.service_ip,
            reverse: config.ranges,
        },
        forwarder,
    };
    let mut server = server::serve(handler, sockets);
    tracing::info!(listen = ?config.listen, ?upstreams, "cluster DNS serving");
    let watch = tokio::spawn(watch::run(client, view));
    let served = server.block_until_done().await;
    watch.abort();
    if let Err(error) = served {
        tracing::error!(%error, "cluster DNS stopped");
    }
    Ok(())
}
