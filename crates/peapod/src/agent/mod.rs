//! The agent (`peapod serve`, or embedded by `peapod play`): opens the stores, starts the
//! kubelet, and serves the API on the Unix socket, and over HTTPS when it has an address for
//! it, until told to stop. Stopping the agent stops
//! no pod: the shims keep running and a new agent re-attaches to them.

pub mod api;
pub mod audit;
pub mod authn;
mod bootstrap;
pub mod cluster;
mod cluster_dns;
pub mod https;
mod ingress;
pub mod metrics;
mod service_account_key;
mod service_proxy;
mod streaming;
pub mod tokens;
pub mod ui;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use peapod_apis::core::v1::serviceaccount::token::TokenSigner;
use peapod_image::registry::{Puller, RegistryConfig};
use peapod_image::ImageStore;
use peapod_net::{Network, NetworkConfig};
use peapod_store::Store;

use peapod_apiserver::authn::User;
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::ApiServer;

use crate::controllers::cluster_role_aggregation::ClusterRoleAggregation;
use crate::controllers::garbage_collector::GarbageCollector;
use crate::controllers::namespace::NamespaceController;
use crate::controllers::root_ca_publisher::RootCaPublisher;
use crate::controllers::service_account_tokens::ServiceAccountTokensController;
use crate::controllers::service_accounts::ServiceAccountsController;
use crate::controllers::{
    cronjob, daemonset, deployment, disruption, job, node_lifecycle, podautoscaler, replicaset,
    statefulset, taint_eviction, ttl_after_finished,
};
use crate::kubelet::events::Recorder;
use crate::kubelet::image_gc::{self, ImageGcPolicy};
use crate::kubelet::images::ImageManager;
use crate::kubelet::node_status::{self, NodeConfig};
use crate::kubelet::service_account_tokens::TokenManager;
use crate::kubelet::{Context, Kubelet};
use crate::paths::Paths;
use crate::perms;
use api::NodeApi;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Perms(#[from] perms::PermsError),
    #[error("opening the object store: {0}")]
    Store(#[from] peapod_store::StoreError),
    #[error("opening the image store: {0}")]
    Images(#[from] peapod_image::ImageError),
    #[error("setting up the pod network: {0}")]
    Network(#[from] peapod_net::NetError),
    #[error(transparent)]
    Https(#[from] https::HttpsError),
    #[error(transparent)]
    ServiceAccountKey(#[from] service_account_key::ServiceAccountKeyError),
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
    pub eviction: crate::kubelet::eviction::EvictionPolicy,
    /// Where to serve the API over HTTPS (PEAPOD_API_LISTEN); None serves only the socket.
    pub api_listen: Option<std::net::SocketAddr>,
    /// The Service range and the cluster domain.
    pub cluster: cluster::ClusterConfig,
}

/// How long requests in flight may take to finish once the agent is told to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// An agent whose stores are open and whose socket is bound, not yet serving.
pub struct Agent {
    ctx: Arc<Context>,
    node_api: Arc<NodeApi>,
    api_server: Arc<ApiServer>,
    /// The API: the agent's own routes, then the generic API server.
    app: axum::Router,
    listener: tokio::net::UnixListener,
    https: Option<https::HttpsListener>,
    /// The CA certificate (PEM) clients of the HTTPS listener verify it with.
    /// The cluster CA (PEM), published in every namespace as kube-root-ca.crt.
    ca_pem: String,
    /// The key service account tokens are signed with.
    signer: Arc<TokenSigner>,
    image_gc: ImageGcPolicy,
    eviction: crate::kubelet::eviction::EvictionPolicy,
}

impl Agent {
    pub async fn open(config: AgentConfig) -> Result<Agent, AgentError> {
        let paths = config.paths.clone();
        perms::secure_roots(&paths)?;
        let socket = paths.socket();
        if tokio::net::UnixStream::connect(&socket).await.is_ok() {
            return Err(AgentError::AlreadyRunning(socket.display().to_string()));
        }
        let _ = std::fs::remove_file(&socket);
        let listener = bind_socket(&socket)?;
        let https_tcp = match config.api_listen {
            Some(addr) => Some(https::bind(addr).await?),
            None => None,
        };
        let network =
            Network::open(config.network.clone(), &paths.data_dir().join("network")).await?;
        // After the network, so that the serving certificate covers the bridge's address.
        let mut https = match https_tcp {
            Some(tcp) => {
                let names = serving_names(&config.cluster);
                Some(https::HttpsListener::open(tcp, &paths, &names)?)
            }
            None => None,
        };
        let store = Store::open(&paths.database())?;
        bootstrap::ensure_namespaces(&store)?;
        bootstrap::ensure_default_storage_class(&store)?;
        bootstrap::ensure_system_priority_classes(&store)?;
        bootstrap::ensure_ingress_class(&store)?;
        let api_endpoint = https
            .as_ref()
            .and_then(|h| h.local_addr().ok())
            .map(|addr| bootstrap::ApiEndpoint {
                ip: host_ip(),
                port: addr.port(),
            });
        bootstrap::ensure_kubernetes_service(&store, &config.cluster, api_endpoint.as_ref())?;
        let signer = Arc::new(service_account_key::load_or_create(&paths.tls_dir())?);
        if let Some(https) = https.as_mut() {
            https.accept_service_accounts(authn::ServiceAccountTokens {
                signer: signer.clone(),
                store: store.clone(),
            });
        }
        peapod_apiserver::rbac::bootstrap::ensure_bootstrap_policy(&store)?;
        let images = ImageStore::open(paths.images_dir())?;
        let puller = Puller::new(images.clone(), config.registry.clone());
        let node_api = Arc::new(NodeApi {
            store,
            paths: paths.clone(),
            images: images.clone(),
            image_manager: Arc::new(ImageManager::new(images.clone(), puller)),
            node_name: node_name(),
        });
        let api_server =
            api::api_server(&node_api, config.cluster.service_network(), signer.clone());
        let app = api::router(node_api.clone(), api_server.clone());
        let client = kubelet_client(&app, &node_api.node_name);
        let machine = node_status::Machine::read(&paths.data_dir());
        let allocatable = node_status::node_allocatable(&machine, config.eviction.nodefs_available);
        let ctx = Arc::new(Context {
            network,
            scheduler: Default::default(),
            pods: Default::default(),
            recorder: Recorder::start(client.clone()),
            tokens: TokenManager::new(client.clone()),
            client,
            image_manager: node_api.image_manager.clone(),
            images,
            node_name: node_api.node_name.clone(),
            host_ip: host_ip(),
            paths,
            backoff_base: config.backoff_base,
            backoff_cap: config.backoff_cap,
            policy: config.policy,
            evictions: Default::default(),
            config: Default::default(),
            services: Default::default(),
            cluster: config.cluster.clone(),
            allocatable,
        });
        Ok(Agent {
            ctx,
            node_api,
            api_server,
            app,
            listener,
            ca_pem: match &https {
                Some(https) => https.ca_pem().to_owned(),
                // A cluster has a CA even where nothing serves HTTPS: pods mount it.
                None => crate::certs::cluster_ca_pem(&config.paths.tls_dir())
                    .map_err(https::HttpsError::from)?,
            },
            signer,
            https,
            image_gc: config.image_gc,
            eviction: config.eviction,
        })
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// What the agent's own routes reach (its store among them).
    pub fn node_api(&self) -> &Arc<NodeApi> {
        &self.node_api
    }

    /// How the node describes itself in its Node object.
    fn node_config(&self) -> NodeConfig {
        let https_port = self.https.as_ref().and_then(|h| h.local_addr().ok());
        NodeConfig {
            name: self.ctx.node_name.clone(),
            host_ip: self.ctx.host_ip.clone(),
            data_dir: self.ctx.paths.data_dir(),
            nodefs_available: self.eviction.nodefs_available,
            kubelet_port: https_port.map_or(0, |addr| i32::from(addr.port())),
        }
    }

    /// Runs the kubelet and serves the API until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AgentError> {
        let socket = self.ctx.paths.socket();
        let node_config = self.node_config();
        tokio::spawn(Kubelet::new(self.ctx.clone()).run(self.eviction));
        let gc = tokio::spawn(image_gc::run(
            self.ctx.images.clone(),
            self.ctx.client.clone(),
            self.ctx.image_manager.usage().clone(),
            self.image_gc,
        ));
        tracing::info!(socket = %socket.display(), "peapod agent serving");
        let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
        let https_stopping = stopping.clone();
        let signalled = async move {
            shutdown.await;
            tracing::info!("peapod agent stopping; pods keep running");
            let _ = stopping_tx.send(true);
        };
        let (api_server, app, store) = (self.api_server, self.app, &self.node_api.store);
        let client = LocalClient::new(app.clone());
        let mut tasks = vec![
            gc,
            tokio::spawn(
                NamespaceController::new(
                    client.clone(),
                    api_server.registry().clone(),
                    store.clone(),
                )
                .run(),
            ),
            tokio::spawn(ServiceAccountsController::new(client.clone(), store.clone()).run()),
            tokio::spawn(ClusterRoleAggregation::new(client.clone(), store.clone()).run()),
            tokio::spawn(
                ServiceAccountTokensController::new(
                    client.clone(),
                    store.clone(),
                    self.signer.clone(),
                    Some(self.ca_pem.clone()),
                )
                .run(),
            ),
            tokio::spawn(RootCaPublisher::new(client.clone(), store.clone(), self.ca_pem).run()),
            tokio::spawn(node_status::run(client, self.ctx.clone(), node_config)),
            tokio::spawn(
                GarbageCollector::new(
                    LocalClient::new(app.clone()),
                    api_server.registry().clone(),
                    store.clone(),
                )
                .run(),
            ),
        ];
        tasks.push(cluster_dns::spawn(&app, &self.ctx));
        tasks.extend(service_proxy::spawn(&app, &self.ctx));
        tasks.push(ingress::spawn(&app, &self.ctx));
        tasks.extend(workload_controllers(&app));
        tasks.extend(network_controllers(&app));
        tasks.extend(storage_controllers(&app, &self.node_api));
        let links = self.https.as_ref().and_then(|https| {
            let local = https.local_addr().ok()?;
            let sessions = https.authenticator().sessions().clone();
            Some(ui::links::LoginLinks::new(
                sessions,
                local,
                &self.ctx.host_ip,
            ))
        });
        let local = app
            .clone()
            .merge(ui::links::routes(links))
            .layer(axum::middleware::from_fn(authn::local_admin))
            .layer(axum::middleware::from_fn(audit::log));
        let local = axum::serve(self.listener, local).with_graceful_shutdown(signalled);
        let https = async move {
            if let Some(https) = self.https {
                let app = app.merge(ui::routes(https.authenticator().clone()));
                https.serve(app, https_stopping).await;
            }
        };
        let served = async move { tokio::join!(local, https).0 };
        // Watches, log follows and exec sessions never end by themselves: in-flight requests
        // get a bounded time, then every open stream is cut, as kube-apiserver's shutdown does.
        let cut_streams = async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::info!("closing the API streams still open");
        };
        let served = tokio::select! {
            served = served => served,
            () = cut_streams => Ok(()),
        };
        tasks.iter().for_each(tokio::task::JoinHandle::abort);
        let _ = std::fs::remove_file(&socket);
        served.map_err(|source| AgentError::Listen {
            path: socket.display().to_string(),
            source,
        })
    }
}

/// kube-controller-manager's workload, autoscaling, disruption and node controllers, each as its
/// own service account.
fn workload_controllers(app: &axum::Router) -> Vec<tokio::task::JoinHandle<()>> {
    use peapod_apiserver::rbac::bootstrap as accounts;
    let client = |account| controller_client(app, account);
    vec![
        tokio::spawn(replicaset::controller::run(client(
            accounts::REPLICASET_CONTROLLER,
        ))),
        tokio::spawn(deployment::controller::run(client(
            accounts::DEPLOYMENT_CONTROLLER,
        ))),
        tokio::spawn(daemonset::controller::run(client(
            accounts::DAEMON_SET_CONTROLLER,
        ))),
        tokio::spawn(statefulset::controller::run(client(
            accounts::STATEFULSET_CONTROLLER,
        ))),
        tokio::spawn(job::controller::run(client(accounts::JOB_CONTROLLER))),
        tokio::spawn(cronjob::controller::run(client(
            accounts::CRONJOB_CONTROLLER,
        ))),
        tokio::spawn(ttl_after_finished::run(client(
            accounts::TTL_AFTER_FINISHED_CONTROLLER,
        ))),
        tokio::spawn(podautoscaler::controller::run(client(
            accounts::HORIZONTAL_POD_AUTOSCALER,
        ))),
        tokio::spawn(disruption::controller::run(client(
            accounts::DISRUPTION_CONTROLLER,
        ))),
        tokio::spawn(taint_eviction::run(client(
            accounts::TAINT_EVICTION_CONTROLLER,
        ))),
        tokio::spawn(node_lifecycle::run(client(accounts::NODE_CONTROLLER))),
    ]
}

/// kube-controller-manager's Service endpoint controllers, each as its own service account.
fn network_controllers(app: &axum::Router) -> [tokio::task::JoinHandle<()>; 3] {
    use crate::controllers::{endpoints, endpointslice, endpointslice_mirroring};
    use peapod_apiserver::rbac::bootstrap as accounts;
    let client = |account| controller_client(app, account);
    [
        tokio::spawn(endpointslice::controller::run(client(
            accounts::ENDPOINTSLICE_CONTROLLER,
        ))),
        tokio::spawn(endpoints::controller::run(client(
            accounts::ENDPOINT_CONTROLLER,
        ))),
        tokio::spawn(endpointslice_mirroring::controller::run(client(
            accounts::ENDPOINTSLICE_MIRRORING_CONTROLLER,
        ))),
    ]
}

/// The PersistentVolume binder (with the local-path provisioner) and the protection
/// controllers.
fn storage_controllers(app: &axum::Router, node_api: &NodeApi) -> [tokio::task::JoinHandle<()>; 3] {
    use crate::controllers::persistent_volume::{controller, protection};
    use peapod_apiserver::rbac::bootstrap as roles;
    let binder = controller::Binder::new(
        controller_client(app, roles::PERSISTENT_VOLUME_BINDER),
        node_api.node_name.clone(),
        node_api.paths.storage_dir(),
    );
    [
        tokio::spawn(controller::run(binder)),
        tokio::spawn(protection::run_claims(controller_client(
            app,
            roles::PVC_PROTECTION_CONTROLLER,
        ))),
        tokio::spawn(protection::run_volumes(controller_client(
            app,
            roles::PV_PROTECTION_CONTROLLER,
        ))),
    ]
}

/// Opens the agent and serves until `shutdown` completes.
pub async fn serve(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    Agent::open(config).await?.serve(shutdown).await
}

/// The kubelet's client: the node's user (`system:node:<name>` in `system:nodes`, as a
/// kubelet authenticates), its requests in the audit log.
fn kubelet_client(app: &axum::Router, node: &str) -> LocalClient {
    let audited = app.clone().layer(axum::middleware::from_fn(audit::log));
    let user = User::new(format!("system:node:{node}"), &["system:nodes"]);
    LocalClient::new(audited).with_identity(user, "kubelet")
}

/// A kube-controller-manager controller's client: its service account in kube-system (which
/// the bootstrap policy binds to its role), its requests in the audit log.
fn controller_client(app: &axum::Router, account: &'static str) -> kube::Client {
    let audited = app.clone().layer(axum::middleware::from_fn(audit::log));
    let name = format!("system:serviceaccount:kube-system:{account}");
    let groups = [
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
    ];
    crate::controllers::client::in_process(audited, User::new(name, &groups), account)
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

/// What the serving certificate must cover: the node's name and addresses, and the
/// `kubernetes` Service's names and address.
fn serving_names(cluster: &cluster::ClusterConfig) -> crate::certs::ServingNames {
    crate::certs::ServingNames {
        node_name: node_name(),
        addresses: node_addresses().into_iter().map(Into::into).collect(),
        cluster_domain: cluster.domain.clone(),
        service_ip: cluster.kubernetes_service_ip().into(),
    }
}

/// Binds the API socket where no other user can connect before it is 0660, whatever the
/// umask: in a fresh 0700 directory beside it, then renamed into place.
fn bind_socket(socket: &Path) -> Result<tokio::net::UnixListener, AgentError> {
    let failed = |source| AgentError::Listen {
        path: socket.display().to_string(),
        source,
    };
    let private = tempfile::Builder::new()
        .prefix(".bind-")
        .tempdir_in(socket.parent().unwrap_or(Path::new("/")))
        .map_err(failed)?;
    let staged = private.path().join("peapod.sock");
    let listener = tokio::net::UnixListener::bind(&staged).map_err(failed)?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(perms::SOCKET))
        .map_err(failed)?;
    std::fs::rename(&staged, socket).map_err(failed)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_api_socket_is_bound_0660_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("peapod.sock");
        let _listener = bind_socket(&socket).unwrap();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, perms::SOCKET);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["peapod.sock"]);
        tokio::net::UnixStream::connect(&socket).await.unwrap();
    }
}
