//! pods/portforward: each connection the client opens is connected to localhost:PORT inside
//! the pod's network namespace, as containerd's CRI port-forward does (so a server bound to
//! 127.0.0.1 in the pod is reachable), and copied both ways until both sides are done.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream as StdTcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use peapod_streams::negotiate::{Service, Transport};
use peapod_streams::portforward::{self, Connection, Duplex};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{negotiated, upgrade, ConnectQuery, Refusal, Result, Shared};
use crate::shim::client::ShimClient;

/// How long a connect inside the pod may take (a port that drops SYNs).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The copy buffers each way: large, for throughput.
const COPY_BUFFER: usize = 256 * 1024;
/// How long the second direction of a connection may go on once the first ended.
const LINGER: Duration = Duration::from_secs(1);

pub async fn serve(
    State(ctx): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response> {
    let query = ConnectQuery::parse(query);
    let ports = ports(&query.values("ports"))?;
    let pod = super::find_pod(&ctx, &ns, &name)?;
    super::assigned_host(&pod)?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let shim = ShimClient::new(&ctx.paths.pod_run_dir(&uid));
    let negotiated = negotiated(&request, Service::PortForward)?;
    if negotiated.transport == Transport::WebSocket && ports.is_empty() {
        return Err(Refusal::Kubelet {
            code: StatusCode::BAD_REQUEST,
            message: "query parameter \"port\" is required".into(),
        });
    }
    let netns = pod_network(&shim, &uid).await?;
    Ok(upgrade(
        request,
        negotiated,
        move |io, negotiated| async move {
            let mut connections = match portforward::accept(io, &negotiated, &ports).await {
                Ok(connections) => connections,
                Err(err) => return tracing::debug!(%err, "port-forward session not established"),
            };
            while let Some(connection) = connections.next().await {
                tokio::spawn(forward(connection, netns.clone()));
            }
        },
    ))
}

/// The `ports` query values (`80`, `80,443`), as kubelet's `NewV4Options` reads them.
fn ports(values: &[String]) -> Result<Vec<u16>> {
    let refuse = |message: String| Refusal::Kubelet {
        code: StatusCode::BAD_REQUEST,
        message,
    };
    let mut ports = Vec::new();
    for value in values {
        if value.is_empty() {
            return Err(refuse("query parameter \"port\" cannot be empty".into()));
        }
        for part in value.split(',') {
            let port: u16 = part.parse().map_err(|_| {
                refuse(format!(
                    "unable to parse \"{value}\" as a port: strconv.ParseUint: parsing \"{part}\": invalid syntax"
                ))
            })?;
            if port == 0 {
                return Err(refuse(format!("port \"{value}\" must be > 0")));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

/// The pod's network namespace, where its shim lives; what kubelet says when the pod has no
/// sandbox.
async fn pod_network(shim: &ShimClient, uid: &str) -> Result<Arc<PodNetwork>> {
    let state = shim.state().await.map_err(|err| Refusal::Kubelet {
        code: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("failed to find sandbox for pod uid {uid}: {err}"),
    })?;
    let path = format!("/proc/{}/ns/net", state.pid);
    let file = File::open(&path).map_err(|err| Refusal::Kubelet {
        code: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("failed to open network namespace {path}: {err}"),
    })?;
    Ok(Arc::new(PodNetwork {
        file,
        path,
        sandbox: uid.to_string(),
    }))
}

struct PodNetwork {
    file: File,
    path: String,
    /// The sandbox's name in messages (peapod's sandbox is the pod).
    sandbox: String,
}

async fn forward(connection: Connection, netns: Arc<PodNetwork>) {
    let port = connection.port;
    match dial(netns.clone(), port).await {
        Ok(target) => {
            let Connection {
                data, mut error, ..
            } = connection;
            copy_until_one_side_ends(data, target).await;
            let _ = error.shutdown().await;
        }
        Err(err) => {
            let message = format!(
                "error forwarding port {port} to pod {sandbox}, uid : failed to execute portforward in network namespace \"{path}\": {err}",
                sandbox = netns.sandbox,
                path = netns.path,
            );
            connection.fail(&message).await
        }
    }
}

/// Copies both ways; once one direction ends (its write side half-closed behind it), the
/// other gets [`LINGER`] to finish, as containerd's port-forward gives it, then both close.
async fn copy_until_one_side_ends(data: Pin<Box<dyn Duplex>>, target: TcpStream) {
    let (mut from_client, mut to_client) = tokio::io::split(data);
    let (mut from_pod, mut to_pod) = target.into_split();
    let upstream = async {
        let _ = copy(&mut from_client, &mut to_pod).await;
        let _ = to_pod.shutdown().await;
    };
    let downstream = async {
        let _ = copy(&mut from_pod, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::pin!(upstream, downstream);
    tokio::select! {
        () = &mut upstream => { let _ = tokio::time::timeout(LINGER, downstream).await; }
        () = &mut downstream => { let _ = tokio::time::timeout(LINGER, upstream).await; }
    }
}

/// `tokio::io::copy` with a buffer sized for throughput.
async fn copy<R, W>(reader: &mut R, writer: &mut W) -> io::Result<u64>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    let mut reader = tokio::io::BufReader::with_capacity(COPY_BUFFER, reader);
    tokio::io::copy_buf(&mut reader, writer).await
}

/// Connects to localhost:`port` inside the pod, from a thread of its own: a socket belongs to
/// the namespace of the thread creating it, and a pooled thread must never switch.
async fn dial(netns: Arc<PodNetwork>, port: u16) -> io::Result<TcpStream> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("peapod-portfwd".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = sender.send(dial_in(&netns, port));
        })?;
    let stream = receiver
        .await
        .map_err(|_| io::Error::other("the connecting thread died"))??;
    stream.set_nonblocking(true)?;
    let _ = stream.set_nodelay(true);
    TcpStream::from_std(stream)
}

/// containerd's order: IPv4 loopback, then IPv6, both errors named when neither answers.
fn dial_in(netns: &PodNetwork, port: u16) -> io::Result<StdTcpStream> {
    nix::sched::setns(&netns.file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(io::Error::from)?;
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let v4_error = match StdTcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(stream) => return Ok(stream),
        Err(err) => err,
    };
    StdTcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|v6_error| {
        io::Error::new(
            v4_error.kind(),
            format!(
                "failed to connect to localhost:{port} inside namespace \"{sandbox}\", IPv4: dial tcp4 {v4}: connect: {v4e} IPv6 dial tcp6 {v6}: connect: {v6e} ",
                sandbox = netns.sandbox,
                v4e = go_errno(&v4_error),
                v6e = go_errno(&v6_error),
            ),
        )
    })
}

/// Go's wording of a connect error (`connection refused`), not Rust's (`Connection refused
/// (os error 111)`).
fn go_errno(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_as_kubelet_reads_them() {
        assert_eq!(
            ports(&["80".into(), "443,8080".into()]).unwrap(),
            vec![80, 443, 8080]
        );
        assert!(ports(&[]).unwrap().is_empty());
        let refused = |values: &[&str]| {
            let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            ports(&values).unwrap_err().to_string()
        };
        assert_eq!(refused(&["0"]), "port \"0\" must be > 0");
        assert!(refused(&["http"]).starts_with("unable to parse \"http\" as a port"));
        assert_eq!(refused(&[""]), "query parameter \"port\" cannot be empty");
    }

    #[test]
    fn connect_errors_read_as_go_prints_them() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(go_errno(&refused), "connection refused");
    }
}
