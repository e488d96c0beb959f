//! The agent (`peapod serve`, or embedded by `peapod play`): opens the stores, starts the
//! kubelet, and serves the API on the Unix socket until told to stop. Stopping the agent stops
//! no pod: the shims keep running and a new agent re-attaches to them.

pub mod api;
pub mod metrics;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use peapod_image::registry::{Puller, RegistryConfig};
use peapod_image::ImageStore;
use peapod_net::{Network, NetworkConfig};
use peapod_store::Store;

use crate::kubelet::image_gc::{self, ImageGcPolicy};
use crate::kubelet::images::ImageManager;
use crate::kubelet::{Context, Kubelet};
use crate::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("creating {path}: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the object store: {0}")]
    Store(#[from] peapod_store::StoreError),
    #[error("opening the image store: {0}")]
    Images(#[from] peapod_image::ImageError),
    #[error("setting up the pod network: {0}")]
    Network(#[from] peapod_net::NetError),
    #[error("another agent already serves {0}")]
    AlreadyRunning(String),
    #[error("listening on {path}: {source}")]
    Listen {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub paths: Paths,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub network: NetworkConfig,
    /// Insecure registries, the credentials file, download concurrency.
    pub registry: RegistryConfig,
    pub image_gc: ImageGcPolicy,
    pub policy: crate::kubelet::policy::KubeletPolicy,
}

/// An agent whose stores are open and whose socket is bound, not yet serving.
pub struct Agent {
    ctx: Arc<Context>,
    listener: tokio::net::UnixListener,
    image_gc: ImageGcPolicy,
}

impl Agent {
    pub async fn open(config: AgentConfig) -> Result<Agent, AgentError> {
        let paths = config.paths.clone();
        for dir in [paths.data_dir(), paths.run_dir(), paths.pod_logs_root()] {
            std::fs::create_dir_all(&dir).map_err(|source| AgentError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let socket = paths.socket();
        if tokio::net::UnixStream::connect(&socket).await.is_ok() {
            return Err(AgentError::AlreadyRunning(socket.display().to_string()));
        }
        let _ = std::fs::remove_file(&socket);
        let listener =
            tokio::net::UnixListener::bind(&socket).map_err(|source| AgentError::Listen {
                path: socket.display().to_string(),
                source,
            })?;
        let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660));
        let network =
            Network::open(config.network.clone(), &paths.data_dir().join("network")).await?;
        let images = ImageStore::open(paths.images_dir())?;
        let puller = Puller::new(images.clone(), config.registry.clone());
        let ctx = Arc::new(Context {
            network,
            scheduler: Default::default(),
            store: Store::open(&paths.database())?,
            image_manager: ImageManager::new(images.clone(), puller),
            images,
            node_name: node_name(),
            host_ip: host_ip(),
            paths,
            backoff_base: config.backoff_base,
            backoff_cap: config.backoff_cap,
            policy: config.policy,
        });
        Ok(Agent {
            ctx,
            listener,
            image_gc: config.image_gc,
        })
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Runs the kubelet and serves the API until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AgentError> {
        let socket = self.ctx.paths.socket();
        tokio::spawn(Kubelet::new(self.ctx.clone()).run());
        let gc = tokio::spawn(image_gc::run(
            self.ctx.images.clone(),
            self.ctx.store.clone(),
            self.ctx.image_manager.usage().clone(),
            self.image_gc,
        ));
        tracing::info!(socket = %socket.display(), "peapod agent serving");
        let served = axum::serve(self.listener, api::router(self.ctx))
            .with_graceful_shutdown(shutdown)
            .await;
        gc.abort();
        let _ = std::fs::remove_file(&socket);
        served.map_err(|source| AgentError::Listen {
            path: socket.display().to_string(),
            source,
        })
    }
}

/// Opens the agent and serves until `shutdown` completes.
pub async fn serve(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    Agent::open(config).await?.serve(shutdown).await
}

/// The node is named after the host.
pub fn node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
        .to_lowercase()
}

/// The node's address: the IPv4 address of the interface that holds the default route, else
/// the first non-loopback one (loopback when it has none). Pods' bridges never qualify.
pub fn host_ip() -> String {
    let default_interface = default_route_interface();
    let candidates: Vec<(String, std::net::Ipv4Addr)> = interface_addresses()
        .into_iter()
        .filter(|(_, ip)| !ip.is_loopback())
        .collect();
    candidates
        .iter()
        .find(|(name, _)| Some(name) == default_interface.as_ref())
        .or(candidates.first())
        .map_or_else(|| "127.0.0.1".into(), |(_, ip)| ip.to_string())
}

/// Every IPv4 address of the node's interfaces that are up.
pub fn node_addresses() -> Vec<std::net::Ipv4Addr> {
    interface_addresses()
        .into_iter()
        .map(|(_, ip)| ip)
        .collect()
}

fn interface_addresses() -> Vec<(String, std::net::Ipv4Addr)> {
    nix::ifaddrs::getifaddrs()
        .ok()
        .into_iter()
        .flatten()
        .filter(|ifa| ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP))
        .filter_map(|ifa| {
            let ip = ifa.address?.as_sockaddr_in()?.ip();
            Some((ifa.interface_name, ip))
        })
        .collect()
}

/// The interface of the IPv4 default route, from /proc/net/route.
fn default_route_interface() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&"00000000") && fields.get(7) == Some(&"00000000"))
            .then(|| fields[0].to_string())
    })
}
