//! Names outside the cluster's zones go to the node's resolvers (the `nameserver` lines of its
//! resolv.conf), as CoreDNS's `forward . /etc/resolv.conf`: the query as the client sent it,
//! each resolver tried in turn, over TCP when the client asked over TCP. The file is looked at
//! again while forwarding, at most every few seconds, and read again when it changed.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

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

/// How often, at the most, a followed resolv.conf is looked at again (only while forwarding).
const RECHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The resolvers names outside the cluster are forwarded to: fixed, or those of a resolv.conf
/// read again when it changes (as a node's DHCP client or systemd-resolved rewrites it).
#[derive(Debug)]
pub struct Forwarder {
    upstreams: RwLock<Arc<[SocketAddr]>>,
    followed: Option<Followed>,
}

/// A resolv.conf followed for changes, and what was last seen of it.
#[derive(Debug)]
struct Followed {
    path: PathBuf,
    own: Vec<IpAddr>,
    recheck: Duration,
    seen: Mutex<Seen>,
}

#[derive(Debug)]
struct Seen {
    checked: Option<Instant>,
    stamp: Option<FileStamp>,
}

/// What tells one version of a file from the next: a rename over it changes the inode, an
/// edit in place the mtime or the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            inode: metadata.ino(),
            modified: metadata.modified().ok(),
            len: metadata.len(),
        })
    }
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder {
            upstreams: RwLock::new(upstreams.into()),
            followed: None,
        }
    }

    /// The `nameserver` lines of the resolv.conf at `path`, leaving out the cluster DNS's own
    /// addresses (forwarding to itself would loop), read again when the file changes. Starts
    /// with none: [`Forwarder::reload`] reads it.
    pub fn following(path: &Path, own: &[IpAddr]) -> Forwarder {
        Forwarder {
            upstreams: RwLock::new(Arc::from([])),
            followed: Some(Followed {
                path: path.to_path_buf(),
                own: own.to_vec(),
                recheck: RECHECK_INTERVAL,
                seen: Mutex::new(Seen {
                    checked: None,
                    stamp: None,
                }),
            }),
        }
    }

    /// Reads the followed resolv.conf now; without one there is nothing to read.
    pub fn reload(&self) -> Result<(), ForwardError> {
        let Some(followed) = &self.followed else {
            return Ok(());
        };
        let mut seen = followed.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.checked = Some(Instant::now());
        seen.stamp = FileStamp::of(&followed.path);
        self.read(followed)
    }

    pub fn upstreams(&self) -> Arc<[SocketAddr]> {
        self.refresh();
        self.current()
    }

    fn current(&self) -> Arc<[SocketAddr]> {
        self.upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the followed resolv.conf again when its last look is `recheck` old and it changed
    /// since. An unreadable file keeps the resolvers read before.
    fn refresh(&self) {
        let Some(followed) = &self.followed else {
            return;
        };
        let mut seen = followed.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen
            .checked
            .is_some_and(|at| at.elapsed() < followed.recheck)
        {
            return;
        }
        seen.checked = Some(Instant::now());
        let stamp = FileStamp::of(&followed.path);
        if stamp.is_none() || stamp == seen.stamp {
            return;
        }
        seen.stamp = stamp;
        drop(seen);
        match self.read(followed) {
            Ok(()) => {
                let (path, upstreams) = (followed.path.display(), self.current());
                tracing::info!(%path, ?upstreams, "cluster DNS: resolv.conf changed");
            }
            Err(error) => tracing::warn!(%error, "cluster DNS: keeping the resolvers read before"),
        }
    }

    fn read(&self, followed: &Followed) -> Result<(), ForwardError> {
        let text =
            std::fs::read_to_string(&followed.path).map_err(|source| ForwardError::ResolvConf {
                path: followed.path.clone(),
                source,
            })?;
        let upstreams: Arc<[SocketAddr]> = nameservers(&text)
            .into_iter()
            .filter(|upstream| !followed.own.contains(&upstream.ip()))
            .collect();
        *self.upstreams.write().unwrap_or_else(|e| e.into_inner()) = upstreams;
        Ok(())
    }

    /// The first answer of a resolver to the raw `query`.
    pub async fn forward(&self, query: &[u8], tcp: bool) -> Result<Message, ForwardError> {
        let upstreams = self.upstreams();
        let mut last = ForwardError::NoUpstream;
        for upstream in upstreams.iter() {
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

    fn addresses(forwarder: &Forwarder) -> Vec<String> {
        forwarder
            .upstreams()
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    #[test]
    fn the_servers_own_addresses_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 10.42.0.1\nnameserver 10.0.0.2\n").unwrap();
        let forwarder = Forwarder::following(&path, &["10.42.0.1".parse().unwrap()]);
        forwarder.reload().unwrap();
        assert_eq!(addresses(&forwarder), ["10.0.0.2:53"]);
        let missing = Forwarder::following(&dir.path().join("nope"), &[]);
        assert!(missing.reload().unwrap_err().to_string().contains("nope"));
    }

    /// The forwarder of `path`, looking at it again on every use.
    fn eager(path: &Path) -> Forwarder {
        let mut forwarder = Forwarder::following(path, &[]);
        forwarder.followed.as_mut().unwrap().recheck = Duration::ZERO;
        forwarder
    }

    #[test]
    fn a_changed_resolv_conf_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 10.0.0.2\n").unwrap();
        let forwarder = eager(&path);
        forwarder.reload().unwrap();
        assert_eq!(addresses(&forwarder), ["10.0.0.2:53"]);

        std::fs::write(&path, "nameserver 10.0.0.3\nnameserver 10.0.0.4\n").unwrap();
        assert_eq!(addresses(&forwarder), ["10.0.0.3:53", "10.0.0.4:53"]);

        let replacement = dir.path().join("resolv.conf.new");
        std::fs::write(&replacement, "nameserver 10.0.0.5\n").unwrap();
        std::fs::rename(&replacement, &path).unwrap();
        assert_eq!(addresses(&forwarder), ["10.0.0.5:53"]);

        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            addresses(&forwarder),
            ["10.0.0.5:53"],
            "a vanished file keeps the last"
        );
    }

    #[test]
    fn a_resolv_conf_missing_at_start_is_read_once_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        let forwarder = eager(&path);
        assert!(forwarder.reload().is_err());
        assert!(addresses(&forwarder).is_empty());
        std::fs::write(&path, "nameserver 10.0.0.2\n").unwrap();
        assert_eq!(addresses(&forwarder), ["10.0.0.2:53"]);
    }

    #[test]
    fn changes_are_looked_for_at_most_every_recheck_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 10.0.0.2\n").unwrap();
        let forwarder = Forwarder::following(&path, &[]);
        forwarder.reload().unwrap();
        std::fs::write(&path, "nameserver 10.0.0.3\n").unwrap();
        assert_eq!(addresses(&forwarder), ["10.0.0.2:53"]);
        forwarder
            .followed
            .as_ref()
            .unwrap()
            .seen
            .lock()
            .unwrap()
            .checked = Instant::now().checked_sub(RECHECK_INTERVAL);
        assert_eq!(addresses(&forwarder), ["10.0.0.3:53"]);
    }

    #[tokio::test]
    async fn no_upstream_is_an_error() {
        let err = Forwarder::new(vec![]).forward(&[0; 12], false).await;
        assert!(matches!(err, Err(ForwardError::NoUpstream)));
    }
}
