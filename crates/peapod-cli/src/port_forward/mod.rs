//! `port-forward`: forwards local ports to a pod as kubectl does. The pod must be Running;
//! one SPDY/3.1 session (`portforward.k8s.io`) carries every connection for the whole run,
//! each on its own pair of streams. Listeners print `Forwarding from ADDRESS -> PORT`, each
//! connection `Handling connection for PORT`, and what the pod's side reports on a
//! connection's error stream is printed as client-go words it; that connection ends, the
//! session goes on while the pod runs. The run ends on Ctrl-C (exit 0), or with `lost
//! connection to pod` when the session ends or the pod is found gone.

mod ports;

use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use peapod_streams::negotiate::PORT_FORWARD;
use peapod_streams::portforward::client::{ForwardedPort, Forwarder};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::args::PortForwardArgs;
use crate::client::Client;
use crate::console::Console;
use crate::error::CliError;
use crate::pod_target::{self, PodError};
use crate::query::pod_path;
use crate::target::single_pod;
use crate::upgrade;
use ports::ListenAddress;

/// Lines from the connections waiting to be printed.
const NOTICES: usize = 64;

/// Why port-forward could not start or went on no longer, in kubectl's words.
#[derive(Debug, thiserror::Error)]
pub enum PortForwardError {
    #[error("UDP protocol is not supported for {0}")]
    Udp(String),
    #[error("remote port cannot be empty")]
    EmptyRemotePort,
    #[error("Pod '{pod}' does not have a named port '{name}'")]
    NoNamedPort { pod: String, name: String },
    #[error("{0} is not a valid IP")]
    InvalidAddress(String),
    #[error("invalid port format '{0}'")]
    PortFormat(String),
    #[error("error parsing local port '{port}': {reason}")]
    LocalPort { port: String, reason: String },
    #[error("error parsing remote port '{port}': {reason}")]
    RemotePort { port: String, reason: String },
    #[error("remote port must be > 0")]
    RemotePortZero,
    #[error("error upgrading connection: {0}")]
    Upgrade(#[source] Box<CliError>),
    /// Go's `%v` of the ports (`[{8080 80}]`).
    #[error("unable to listen on any of the requested ports: [{}]", go_ports(.0))]
    NoListener(Vec<ForwardedPort>),
    #[error("lost connection to pod")]
    LostConnection,
}

fn go_ports(ports: &[ForwardedPort]) -> String {
    let ports: Vec<String> = ports
        .iter()
        .map(|port| format!("{{{} {}}}", port.local, port.remote))
        .collect();
    ports.join(" ")
}

/// A line a connection has to say.
enum Notice {
    Out(String),
    Err(String),
    /// The connection failed: the pod may be gone.
    Failed(String),
}

pub async fn port_forward(
    client: &Client,
    args: PortForwardArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let name = single_pod(&args.pod)?;
    let namespace = args.namespace.as_deref().unwrap_or("default");
    let pod = pod_target::fetch(client, namespace, &name).await?;
    let (addresses, ports) = plan(&args, &pod)?;
    let path = format!("{}/portforward", pod_path(namespace, &name));
    let io = upgrade::spdy(client, path, PORT_FORWARD)
        .await
        .map_err(|err| PortForwardError::Upgrade(Box::new(err)))?;
    let forwarder = Arc::new(Forwarder::start(io));
    let (notices, pending) = mpsc::channel(NOTICES);
    let interrupt = signal(SignalKind::interrupt()).ok();
    let _listeners = listen_all(&addresses, ports, &forwarder, &notices, console)?;
    let watched = WatchedPod {
        client,
        namespace,
        name: &name,
        uid: pod.metadata.uid.as_deref().unwrap_or_default(),
    };
    watched.serve(&forwarder, pending, interrupt, console).await
}

/// kubectl's checks before it forwards: no UDP-only port, named ports known, the pod
/// Running; then the addresses and ports client-go reads.
fn plan(
    args: &PortForwardArgs,
    pod: &Pod,
) -> Result<(Vec<ListenAddress>, Vec<ForwardedPort>), CliError> {
    ports::refuse_udp_ports(&args.ports, pod)?;
    let numbered = ports::named_ports_to_numbers(&args.ports, pod)?;
    if pod_target::phase(pod) != "Running" {
        let phase = pod_target::phase(pod).to_string();
        return Err(PodError::NotRunning { phase }.into());
    }
    let addresses = ports::parse_addresses(&args.address)?;
    Ok((addresses, ports::parse_ports(&numbered)?))
}

/// The pod forwarded to. The agent keeps a session whose pod is gone, so a failed connection
/// is a reason to look: a pod deleted, replaced or no longer running ends the run as a lost
/// session does.
struct WatchedPod<'a> {
    client: &'a Client,
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
}

impl WatchedPod<'_> {
    /// Prints what the connections say until Ctrl-C (0) or the session is lost.
    async fn serve(
        &self,
        forwarder: &Forwarder,
        mut notices: mpsc::Receiver<Notice>,
        mut interrupt: Option<Signal>,
        console: &mut Console,
    ) -> Result<i32, CliError> {
        let lost = || Err(PortForwardError::LostConnection.into());
        loop {
            tokio::select! {
                Some(notice) = notices.recv() => match notice {
                    Notice::Out(line) => console.print(&format!("{line}\n"))?,
                    Notice::Err(line) => console.eprintln(&line),
                    Notice::Failed(line) => {
                        console.eprintln(&line);
                        if !self.still_running().await {
                            return lost();
                        }
                    }
                },
                () = forwarder.closed() => return lost(),
                Some(()) = recv_signal(&mut interrupt) => return Ok(0),
            }
        }
    }

    async fn still_running(&self) -> bool {
        match pod_target::fetch(self.client, self.namespace, self.name).await {
            Ok(pod) => {
                pod.metadata.uid.as_deref().unwrap_or_default() == self.uid
                    && pod_target::phase(&pod) == "Running"
            }
            Err(_) => false,
        }
    }
}

async fn recv_signal(signal: &mut Option<Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// client-go's `forward`: every port on every address, each listener announced; a port that
/// cannot be listened on is told, and it is an error when none can. The accepting tasks end
/// with the returned set.
fn listen_all(
    addresses: &[ListenAddress],
    ports: Vec<ForwardedPort>,
    forwarder: &Arc<Forwarder>,
    notices: &mpsc::Sender<Notice>,
    console: &mut Console,
) -> Result<JoinSet<()>, CliError> {
    let mut accepting = JoinSet::new();
    for mut port in ports.iter().copied() {
        let (listeners, failure) = listen(addresses, &mut port);
        for (listener, address) in listeners {
            let shown = SocketAddr::new(address, port.local);
            console.print(&format!("Forwarding from {shown} -> {}\n", port.remote))?;
            let accept = accept_connections(listener, port, forwarder.clone(), notices.clone());
            accepting.spawn(accept);
        }
        if let Some(failure) = failure {
            console.eprintln(&format!(
                "Unable to listen on port {}: {failure}",
                port.local
            ));
        }
    }
    if accepting.is_empty() {
        return Err(PortForwardError::NoListener(ports).into());
    }
    Ok(accepting)
}

/// client-go's `listenOnPort`: the port on each address (a local port 0 becomes the first
/// one bound, for all); the failure when a required address, or every optional one, failed.
fn listen(
    addresses: &[ListenAddress],
    port: &mut ForwardedPort,
) -> (Vec<(TcpListener, std::net::IpAddr)>, Option<String>) {
    let mut listeners = Vec::new();
    let mut errors = Vec::new();
    let (mut required_failed, mut optional_bound, mut optional_failed) = (false, false, false);
    for address in addresses {
        match bind(SocketAddr::new(address.ip, port.local)) {
            Ok(listener) => {
                port.local = listener
                    .local_addr()
                    .map_or(port.local, |bound| bound.port());
                optional_bound |= address.optional;
                listeners.push((listener, address.ip));
            }
            Err(error) => {
                errors.push(error);
                required_failed |= !address.optional;
                optional_failed |= address.optional;
            }
        }
    }
    let failed = required_failed || (optional_failed && !optional_bound);
    let failure = failed.then(|| {
        format!(
            "Listeners failed to create with the following errors: [{}]",
            errors.join(" ")
        )
    });
    (listeners, failure)
}

/// A listening socket, with Go's wording of a failure.
fn bind(address: SocketAddr) -> Result<TcpListener, String> {
    let network = if address.is_ipv4() { "tcp4" } else { "tcp6" };
    let listen = || -> std::io::Result<TcpListener> {
        let socket = std::net::TcpListener::bind(address)?;
        socket.set_nonblocking(true)?;
        TcpListener::from_std(socket)
    };
    listen().map_err(|error| {
        let reason = match error.raw_os_error() {
            Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
            None => error.to_string(),
        };
        format!("unable to create listener: Error listen {network} {address}: bind: {reason}")
    })
}

/// Accepts connections until the listener fails or the task is aborted; each is forwarded
/// on a task of its own, which ends with this one.
async fn accept_connections(
    listener: TcpListener,
    port: ForwardedPort,
    forwarder: Arc<Forwarder>,
    notices: mpsc::Sender<Notice>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(forward(stream, port, forwarder.clone(), notices.clone()));
                }
                Err(err) => {
                    let line = format!("error accepting connection on port {}: {err}", port.local);
                    let _ = notices.send(Notice::Err(line)).await;
                    return;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn forward(
    stream: TcpStream,
    port: ForwardedPort,
    forwarder: Arc<Forwarder>,
    notices: mpsc::Sender<Notice>,
) {
    let handling = format!("Handling connection for {}", port.local);
    let _ = notices.send(Notice::Out(handling)).await;
    let _ = stream.set_nodelay(true);
    if let Err(err) = forwarder.forward(stream, port).await {
        let _ = notices.send(Notice::Failed(err.to_string())).await;
    }
}
