//! tcpSocket probes (connect, close), and the TCP dial with Go's error texts that httpGet and
//! grpc share.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::ProbeOutcome;

/// A failed dial, worded as Go's net.Dial error (`dial tcp 10.0.0.5:81: connect: connection
/// refused`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub(crate) struct DialError {
    pub text: String,
}

/// kubelet's tcp prober: a connection within `timeout` succeeds and is closed at once.
pub(crate) async fn probe(host: &str, port: u16, timeout: Duration) -> ProbeOutcome {
    match dial(host, port, Some(Instant::now() + timeout)).await {
        Ok(stream) => {
            drop(stream);
            ProbeOutcome::Success
        }
        Err(err) => ProbeOutcome::Failure(err.text),
    }
}

/// Connects to `host:port` (an IP literal or a name to resolve), giving up at `deadline`.
pub(crate) async fn dial(
    host: &str,
    port: u16,
    deadline: Option<Instant>,
) -> Result<TcpStream, DialError> {
    let addrs = resolve(host, port, deadline).await?;
    let mut last = None;
    for addr in addrs {
        let connect = TcpStream::connect(addr);
        let result = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, connect)
                .await
                .map_err(|_| DialError {
                    text: format!("dial tcp {addr}: i/o timeout"),
                })?,
            None => connect.await,
        };
        match result {
            Ok(stream) => return Ok(stream),
            Err(err) => {
                last = Some(DialError {
                    text: format!("dial tcp {addr}: connect: {}", go_errno_text(&err)),
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| DialError {
        text: format!("dial tcp: lookup {host}: no such host"),
    }))
}

async fn resolve(
    host: &str,
    port: u16,
    deadline: Option<Instant>,
) -> Result<Vec<SocketAddr>, DialError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lookup = tokio::net::lookup_host((host, port));
    let found = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, lookup)
            .await
            .map_err(|_| DialError {
                text: format!("dial tcp: lookup {host}: i/o timeout"),
            })?,
        None => lookup.await,
    };
    found.map(|addrs| addrs.collect()).map_err(|_| DialError {
        text: format!("dial tcp: lookup {host}: no such host"),
    })
}

/// Go's net.JoinHostPort: IPv6 hosts bracketed.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's text of a syscall error: glibc's strerror with a lower-case first letter
/// ("connection refused", "no route to host").
pub(crate) fn go_errno_text(err: &io::Error) -> String {
    let Some(code) = err.raw_os_error() else {
        return err.to_string();
    };
    let desc = nix::errno::Errno::from_raw(code).desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::prober::tests::closed_port;

    #[tokio::test]
    async fn an_open_port_succeeds() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let outcome = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(outcome, ProbeOutcome::Success);
    }

    #[tokio::test]
    async fn a_closed_port_fails_with_gos_dial_text() {
        let port = closed_port();
        let outcome = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Failure(format!(
                "dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }

    #[tokio::test]
    async fn ipv6_addresses_are_bracketed() {
        let err = dial("::1", closed_port(), None).await.unwrap_err();
        assert!(err.text.starts_with("dial tcp [::1]:"), "{}", err.text);
    }

    /// A listener whose accept queue is full: further SYNs are dropped, connects hang.
    async fn full_listener() -> (std::net::TcpListener, u16, Vec<TcpStream>) {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let port = listener.local_addr().unwrap().port();
        let mut fillers = Vec::new();
        for _ in 0..2 {
            let connect = TcpStream::connect(("127.0.0.1", port));
            if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(200), connect).await
            {
                fillers.push(stream);
            }
        }
        (listener, port, fillers)
    }

    #[tokio::test]
    async fn an_unanswered_connect_times_out() {
        let (_listener, port, _fillers) = full_listener().await;
        let started = std::time::Instant::now();
        let outcome = probe("127.0.0.1", port, Duration::from_millis(300)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            outcome,
            ProbeOutcome::Failure(format!("dial tcp 127.0.0.1:{port}: i/o timeout"))
        );
    }

    #[test]
    fn errno_texts_match_go() {
        let text = |code| go_errno_text(&io::Error::from_raw_os_error(code));
        assert_eq!(text(libc::ECONNREFUSED), "connection refused");
        assert_eq!(text(libc::EHOSTUNREACH), "no route to host");
        assert_eq!(text(libc::ENETUNREACH), "network is unreachable");
    }
}
