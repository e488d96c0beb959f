//! The agent (`peapod serve`, or embedded by `peapod play`): opens the stores, starts the
//! kubelet, and serves the API on the Unix socket until told to stop. Stopping the agent stops
//! no pod: the shims keep running and a new agent re-attaches to them.

pub mod api;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use peapod_image::ImageStore;
use peapod_store::Store;

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
}

/// An agent whose stores are open and whose socket is bound, not yet serving.
pub struct Agent {
    ctx: Arc<Context>,
    listener: tokio::net::UnixListener,
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
        let ctx = Arc::new(Context {
            store: Store::open(&paths.database())?,
            images: ImageStore::open(paths.images_dir())?,
            node_name: node_name(),
            host_ip: host_ip(),
            paths,
            backoff_base: config.backoff_base,
            backoff_cap: config.backoff_cap,
        });
        Ok(Agent { ctx, listener })
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
        tracing::info!(socket = %socket.display(), "peapod agent serving");
        let served = axum::serve(self.listener, api::router(self.ctx))
            .with_graceful_shutdown(shutdown)
            .await;
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

/// The host's first non-loopback IPv4 address (loopback when it has none).
pub fn host_ip() -> String {
    nix::ifaddrs::getifaddrs()
        .ok()
        .into_iter()
        .flatten()
        .filter(|ifa| ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP))
        .filter(|ifa| {
            !ifa.flags
                .contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
        })
        .find_map(|ifa| {
            ifa.address
                .and_then(|a| a.as_sockaddr_in().map(|s| s.ip().to_string()))
        })
        .unwrap_or_else(|| "127.0.0.1".into())
}
