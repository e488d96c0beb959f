//! Names outside the cluster's zones go to the node's resolvers (the `nameserver` lines of its
//! resolv.conf), as CoreDNS's `forward . /etc/resolv.conf`: the query as the client sent it,
//! each resolver tried in turn, over TCP when the client asked over TCP.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one resolver gets to answer (CoreDNS's forward: 2 s dial, then the next).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest UDP answer accepted from a resolver.
const MAX_UDP_RESPONSE: usize = 65535;

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("reading {path}: {source}")]
    ResolvConf {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no resolver to forward to")]
    NoUpstream,
    #[error("resolver {upstream}: {source}")]
    Upstream {
        upstream: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("resolver {upstream} did not answer within {UPSTREAM_TIMEOUT:?}")]
    Timeout { upstream: SocketAddr },
    #[error("building the query: {0}")]
    Encode(#[from] hickory_proto::ProtoError),
}

/// The resolvers names outside the cluster are forwarded to.
#[derive(Clone, Debug)]
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder { upstreams }
    }

    /// The `nameserver` lines of a resolv.conf, leaving out the cluster DNS's own addresses
    /// (forwarding to itself would loop). A `nameserver` may carry a port (`127.0.0.1:5353`).
    pub fn from_resolv_conf(path: &Path, own: &[IpAddr]) -> Result<Forwarder, ForwardError> {
        let text = std::fs::read_to_string(path).map_err(|source| ForwardError::ResolvConf {
            path: path.to_path_buf(),
            source,
        })?;
        let upstreams = nameservers(&text)
            .into_iter()
            .filter(|upstream| !own.contains(&upstream.ip()))
            .collect();
        Ok(Forwarder { upstreams })
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// The first answer of a resolver to the raw `query`.
    pub async fn forward(&self, query: &[u8], tcp: bool) -> Result<Message, ForwardError> {
        let mut last = ForwardError::NoUpstream;
        for upstream in &self.upstreams {
            let exchange = async {
                match tcp {
                    true => exchange_tcp(*upstream, query).await,
                    false => exchange_udp(*upstream, query).await,
                }
            };
            match tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(source)) => {
                    last = ForwardError::Upstream {
                        upstream: *upstream,
                        source,
                    }
                }
                Err(_) => {
                    last = ForwardError::Timeout {
                        upstream: *upstream,
                    }
                }
            }
        }
        Err(last)
    }

    /// Asks the resolvers for `name` itself (a CNAME target), again over TCP when the UDP
    /// answer was cut.
    pub async fn lookup(&self, name: &Name, qtype: RecordType) -> Result<Message, ForwardError> {
        let mut query = Message::query();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name.clone(), qtype));
        let query = query.to_vec()?;
        let response = self.forward(&query, false).await?;
        if !response.metadata.truncation {
            return Ok(response);
        }
        self.forward(&query, true).await
    }
}

/// kubelet's resolv.conf reading for nameservers: every `nameserver` line, in order.
fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some("nameserver")).then_some(())?;
            let value = fields.next()?;
            value
                .parse::<SocketAddr>()
                .ok()
                .or_else(|| Some(SocketAddr::new(value.parse().ok()?, 53)))
        })
        .collect()
}

async fn exchange_udp(upstream: SocketAddr, query: &[u8]) -> io::Result<Message> {
    let local: IpAddr = match upstream {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0)).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buffer = vec![0; MAX_UDP_RESPONSE];
    loop {
        let len = socket.recv(&mut buffer).await?;
        // A datagram not answering this query (a late answer of another) is skipped.
        match Message::from_vec(&buffer[..len]) {
            Ok(response) if query.get(..2) == buffer.get(..2) => return Ok(response),
            _ => continue,
        }
    }
}

async fn exchange_tcp(upstream: SocketAddr, query: &[u8]) -> io::Result<Message> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut buffer = vec![0; usize::from(len)];
    stream.read_exact(&mut buffer).await?;
    Message::from_vec(&buffer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_in_order_with_optional_ports() {
        let text = "# c\nsearch lan\nnameserver 10.0.0.2\nnameserver 127.0.0.1:5353\n\
                    nameserver fd00::1\nnameserver\nnameserver bogus\n";
        let found: Vec<String> = nameservers(text).iter().map(|a| a.to_string()).collect();
        assert_eq!(found, ["10.0.0.2:53", "127.0.0.1:5353", "[fd00::1]:53"]);
    }

    #[test]
    fn the_servers_own_addresses_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 10.42.0.1\nnameserver 10.0.0.2\n").unwrap();
        let forwarder = Forwarder::from_resolv_conf(&path, &["10.42.0.1".parse().unwrap()]);
        assert_eq!(
            forwarder.unwrap().upstreams(),
            ["10.0.0.2:53".parse().unwrap()]
        );
        let missing = Forwarder::from_resolv_conf(&dir.path().join("nope"), &[]);
        assert!(missing.unwrap_err().to_string().contains("nope"));
    }

    #[tokio::test]
    async fn no_upstream_is_an_error() {
        let err = Forwarder::new(vec![]).forward(&[0; 12], false).await;
        assert!(matches!(err, Err(ForwardError::NoUpstream)));
    }
}
