//! The service proxy of peapod: kube-proxy's nftables mode, writing its chains and maps into
//! the agent's own table (`ip peapod-<bridge>`) beside the pod network's, never touching
//! those. Services and EndpointSlices are watched in process; each change is applied as one
//! small nft transaction of only what changed. [`lb`] gives LoadBalancer Services the
//! node's address, as k3s' ServiceLB does, without any pod.

pub mod conntrack;
pub mod lb;
pub mod model;
pub mod nft;
pub mod rules;
pub mod sync;
pub mod watch;

use ipnet::Ipv4Net;

pub use watch::run;

/// Where the proxy writes and what it calls the pods' own traffic.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The agent's nftables table (family ip).
    pub table: String,
    /// The pod range: traffic from elsewhere to a ClusterIP is masqueraded.
    pub pod_cidr: Ipv4Net,
    /// The Service range: its addresses that no Service holds are dropped.
    pub service_cidr: Ipv4Net,
}
