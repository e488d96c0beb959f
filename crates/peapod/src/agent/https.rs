//! The API over HTTPS on `PEAPOD_API_LISTEN` (default `0.0.0.0:6443`, `off` for none), as
//! kube-apiserver's secure port: TLS with the agent's serving certificate, HTTP/2 or HTTP/1.1
//! by ALPN (upgrades for exec on HTTP/1.1), client certificates optional at the TLS layer and
//! verified against the agent's CA. Opening it makes or renews the certificates and writes the
//! admin kubeconfig; serving it authenticates each request ([`super::authn`]) and logs it
//! ([`super::audit`]). It stops with the agent as the Unix socket does: no new connections,
//! open ones told to finish, and the agent cuts what is left after its grace period.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::authn::{self, Authenticator, PeerIdentity};
use super::tokens::{TokenError, TokenFile};
use crate::certs::{self, CertError, Pki, ServingNames};
use crate::paths::Paths;

/// Where `peapod serve` listens unless PEAPOD_API_LISTEN says otherwise: k3s' port.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:6443";
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error("PEAPOD_API_LISTEN {value:?} is not an address such as 0.0.0.0:6443, nor off")]
    ListenAddress { value: String },
    #[error(transparent)]
    Certs(#[from] CertError),
    #[error(transparent)]
    Tokens(#[from] TokenError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the HTTPS listener's address: {0}")]
    LocalAddr(#[source] std::io::Error),
    #[error("reading the {what} PEM: {source}")]
    Pem {
        what: &'static str,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("setting up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("setting up client certificate verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A PEAPOD_API_LISTEN value: `off` for no listener, else `IP:PORT` (or a bare port, on
/// every address).
pub fn parse_listen(value: &str) -> Result<Option<SocketAddr>, HttpsError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let parsed = match value.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([0, 0, 0, 0], port))),
        Err(_) => value.parse::<SocketAddr>(),
    };
    parsed.map(Some).map_err(|_| HttpsError::ListenAddress {
        value: value.to_string(),
    })
}

/// PEAPOD_API_LISTEN, or `default` when it is unset or empty.
pub fn listen_from_env(default: &str) -> Result<Option<SocketAddr>, HttpsError> {
    match std::env::var("PEAPOD_API_LISTEN") {
        Ok(value) if !value.trim().is_empty() => parse_listen(&value),
        _ => parse_listen(default),
    }
}

/// The URL the kubeconfig names for a listener bound to `local`.
pub fn server_url(local: SocketAddr) -> String {
    let host = match local.ip() {
        IpAddr::V6(ip) if ip.is_loopback() => "[::1]".to_string(),
        ip if ip.is_unspecified() || ip.is_loopback() => "127.0.0.1".to_string(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("https://{host}:{}", local.port())
}

/// A bound HTTPS listener with its TLS configuration and authenticator, not yet serving.
pub struct HttpsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    authenticator: Arc<Authenticator>,
    ca_pem: String,
}

/// Binds `addr`: done first at start, so that a taken port stops the agent before it changes
/// anything on the host.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpsError::Listen { addr, source })
}

impl HttpsListener {
    /// Makes or renews the certificates for `names`, reads the token file, and writes the
    /// admin kubeconfig for the bound `tcp`.
    pub fn open(
        tcp: TcpListener,
        paths: &Paths,
        names: &ServingNames,
    ) -> Result<HttpsListener, HttpsError> {
        let local = tcp.local_addr().map_err(HttpsError::LocalAddr)?;
        let pki = Pki::load_or_create(&paths.tls_dir(), names)?;
        let acceptor = TlsAcceptor::from(Arc::new(tls_config(&pki)?));
        let tokens = TokenFile::open(&paths.tokens_file())?;
        let kubeconfig = paths.kubeconfig();
        if certs::write_kubeconfig(&kubeconfig, &pki, &server_url(local))? {
            tracing::info!(path = %kubeconfig.display(), "wrote the admin kubeconfig");
        }
        Ok(HttpsListener {
            tcp,
            acceptor,
            authenticator: Arc::new(Authenticator::new(tokens)),
            ca_pem: pki.ca_pem,
        })
    }

    /// Also authenticates the service account tokens `service_accounts` checks; before
    /// [`HttpsListener::serve`], while the authenticator is not shared yet.
    pub fn accept_service_accounts(&mut self, service_accounts: authn::ServiceAccountTokens) {
        match Arc::get_mut(&mut self.authenticator) {
            Some(authenticator) => authenticator.accept_service_accounts(service_accounts),
            None => tracing::warn!("the authenticator is in use; service account tokens refused"),
        }
    }

    /// What authenticates the listener's requests (and holds the topology page's sessions).
    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.authenticator
    }

    /// The CA certificate (PEM) the serving certificate chains to.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serves `app` until `stopping` turns true, then lets open connections finish (HTTP/1.1
    /// after their request, HTTP/2 after a GOAWAY). Dropping the future cuts them all.
    pub async fn serve(self, app: Router, stopping: watch::Receiver<bool>) {
        let app = app
            .layer(axum::middleware::from_fn_with_state(
                self.authenticator.clone(),
                authn::authenticate,
            ))
            .layer(axum::middleware::from_fn(super::audit::log));
        if let Ok(local) = self.tcp.local_addr() {
            tracing::info!(address = %local, "serving the API over HTTPS");
        }
        let mut connections = JoinSet::new();
        let stop = stopped(stopping.clone());
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let acceptor = self.acceptor.clone();
                        connections.spawn(connection(tcp, peer, acceptor, app.clone(), stopping.clone()));
                    }
                    Err(err) => {
                        // Out of descriptors, most likely: give the open connections a moment.
                        tracing::warn!("accepting an HTTPS connection: {err}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = connections.join_next() => {}
                () = &mut stop => break,
            }
        }
        drop(self.tcp);
        while connections.join_next().await.is_some() {}
    }
}

/// The TLS configuration: the serving certificate, ALPN `h2` and `http/1.1`, and client
/// certificates optional but, when presented, verified against the CA.
fn tls_config(pki: &Pki) -> Result<ServerConfig, HttpsError> {
    let pem = |what| move |source| HttpsError::Pem { what, source };
    let ca = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).map_err(pem("CA"))?;
    let serving = CertificateDer::from_pem_slice(pki.serving.cert_pem.as_bytes())
        .map_err(pem("serving certificate"))?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving.key_pem.as_bytes())
        .map_err(pem("serving key"))?;
    let mut roots = RootCertStore::empty();
    roots.add(ca)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![serving], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// One connection: the TLS handshake, then HTTP as the client's certificate's user, if any.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    stopping: watch::Receiver<bool>,
) {
    // Small answers must not wait for the client's delayed ACK (40 ms per kubectl command).
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            tracing::debug!(%peer, "TLS handshake failed: {err}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let identity = PeerIdentity(peer_user(tls.get_ref().1));
    serve_http(TokioIo::new(tls), identity, app, stopping).await;
}

/// Serves HTTP/2 or HTTP/1.1 (with upgrades) on `io` until the client is done, or until
/// `stopping` turns true, when the connection is asked to finish what it is doing.
async fn serve_http(
    io: TokioIo<tokio_rustls::server::TlsStream<TcpStream>>,
    identity: PeerIdentity,
    app: Router,
    stopping: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(identity.clone());
        app.clone().oneshot(request)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(err) = served {
                tracing::debug!("HTTPS connection ended: {err}");
            }
        }
        () = stopped(stopping) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Completes once the agent is stopping.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}

/// The user the client's certificate names; rustls has verified it against the CA.
fn peer_user(tls: &ServerConnection) -> Option<peapod_apiserver::authn::User> {
    let certificate = tls.peer_certificates()?.first()?;
    authn::certificate_user(certificate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::Response;
    use peapod_apiserver::authn::User;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers with 101 and echoes what the client then sends; names the user in a header.
    async fn echo(request: Request) -> Response {
        let user = request.extensions().get::<User>().unwrap().name.clone();
        let upgrade = hyper::upgrade::on(request);
        tokio::spawn(async move {
            let upgraded = TokioIo::new(upgrade.await.unwrap());
            let (mut reader, mut writer) = tokio::io::split(upgraded);
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        });
        Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .header("x-user", user)
            .body(Body::empty())
            .unwrap()
    }

    /// A TLS client of `dir`'s CA with the admin's certificate, offering `alpn`.
    fn admin_client(paths: &Paths, alpn: &[u8]) -> tokio_rustls::TlsConnector {
        let read = |name: &str| std::fs::read(paths.tls_dir().join(name)).unwrap();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&read("ca.crt")).unwrap())
            .unwrap();
        let cert = CertificateDer::from_pem_slice(&read("client-admin.crt")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(&read("client-admin.key")).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert], key)
            .unwrap();
        config.alpn_protocols = vec![alpn.to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    #[tokio::test]
    async fn http1_upgrades_carry_bytes_both_ways_and_alpn_offers_h2() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path().to_path_buf());
        std::fs::create_dir_all(paths.data_dir()).unwrap();
        let names = ServingNames {
            node_name: "node-a".into(),
            addresses: vec![],
            cluster_domain: "cluster.local".into(),
            service_ip: "10.43.0.1".parse().unwrap(),
        };
        let tcp = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let listener = HttpsListener::open(tcp, &paths, &names).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopping) = watch::channel(false);
        let app = Router::new().route("/echo", axum::routing::get(echo));
        let serving = tokio::spawn(listener.serve(app, stopping));
        let localhost = ServerName::try_from("localhost").unwrap();

        let tcp = TcpStream::connect(addr).await.unwrap();
        let connector = admin_client(&paths, b"http/1.1");
        let mut tls = connector.connect(localhost.clone(), tcp).await.unwrap();
        let request =
            "GET /echo HTTP/1.1\r\nhost: localhost\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tls.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("x-user: system:admin"), "{head}");
        tls.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        tls.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping");

        let tcp = TcpStream::connect(addr).await.unwrap();
        let h2 = admin_client(&paths, b"h2")
            .connect(localhost, tcp)
            .await
            .unwrap();
        assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        drop(h2);

        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), serving)
            .await
            .expect("the listener stops with the agent")
            .unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    }

    #[test]
    fn listen_addresses_parse_or_are_off() {
        assert_eq!(
            parse_listen(DEFAULT_LISTEN).unwrap(),
            Some("0.0.0.0:6443".parse().unwrap())
        );
        assert_eq!(parse_listen("OFF").unwrap(), None);
        assert_eq!(
            parse_listen("16443").unwrap(),
            Some("0.0.0.0:16443".parse().unwrap())
        );
        assert_eq!(
            parse_listen("[::1]:6443").unwrap(),
            Some("[::1]:6443".parse().unwrap())
        );
        assert!(parse_listen("localhost:6443").is_err());
    }

    #[test]
    fn the_kubeconfig_names_an_address_that_reaches_the_listener() {
        let url = |addr: &str| server_url(addr.parse().unwrap());
        assert_eq!(url("0.0.0.0:6443"), "https://127.0.0.1:6443");
        assert_eq!(url("127.0.0.1:7000"), "https://127.0.0.1:7000");
        assert_eq!(url("[::]:6443"), "https://127.0.0.1:6443");
        assert_eq!(url("[::1]:6443"), "https://[::1]:6443");
        assert_eq!(url("192.0.2.1:6443"), "https://192.0.2.1:6443");
    }
}
