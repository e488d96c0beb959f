//! Who a request comes from, as kube-apiserver's authenticators decide it: a client
//! certificate our CA issued (CN the user, O the groups), else a bearer token of the token
//! file or a service account token the API server issued (bound, or the legacy token of a
//! token Secret), else the topology page's session cookie beside its `X-Peapod-UI: 1` header;
//! without credentials only the public health and version paths may be read (kube's
//! `system:public-info-viewer`) and the page's own paths, which check their session
//! themselves, and everything else gets 401. Requests on the root-only Unix socket are the
//! admin's. The user goes into the request's extensions for the handlers, and into the
//! response's for the audit log.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use peapod_apis::core::v1::serviceaccount::legacy_token::{self, LegacyTokenError};
use peapod_apis::core::v1::serviceaccount::token::{self, TokenError, TokenSigner};
use peapod_apiserver::authn::User;
use peapod_store::Store;

use super::tokens::TokenFile;
use super::ui::cookies;
use super::ui::sessions::{Login, Sessions};

/// Paths anonymous users may read.
const PUBLIC_PATHS: [&str; 5] = ["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// The user a connection's verified client certificate names, if it presented one; set on
/// every request of the connection by the HTTPS listener.
#[derive(Clone, Debug)]
pub struct PeerIdentity(pub Option<User>);

/// What authenticated a request, put in its extensions beside its [`User`]: the topology
/// page's files go to page sessions only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    Certificate,
    BearerToken,
    PageSession,
    Anonymous,
}

/// Authenticates the requests of the HTTPS listener.
#[derive(Debug)]
pub struct Authenticator {
    tokens: TokenFile,
    service_accounts: Option<ServiceAccountTokens>,
    sessions: Arc<Sessions>,
}

/// What a request without a client certificate presents, read before anything is awaited
/// (a request cannot be held across an await: its body is not Sync).
struct Presented {
    token: Option<String>,
    /// The page's session cookie, where it counts.
    session: Option<String>,
    public: bool,
}

impl Presented {
    fn of(request: &Request) -> Presented {
        let headers = request.headers();
        let page = cookies::is_ui_path(request.uri().path()) || cookies::from_the_page(headers);
        Presented {
            token: bearer_token(request).map(str::to_owned),
            session: cookies::session_id(headers)
                .filter(|_| page)
                .map(str::to_owned),
            public: is_public(request),
        }
    }
}

/// What checks service account tokens: the key they are signed with, and the store their
/// service accounts and bound objects are looked up in.
pub struct ServiceAccountTokens {
    pub signer: Arc<TokenSigner>,
    pub store: Store,
}

impl std::fmt::Debug for ServiceAccountTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountTokens")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(tokens: TokenFile) -> Authenticator {
        Authenticator {
            tokens,
            service_accounts: None,
            sessions: Arc::new(Sessions::new()),
        }
    }

    /// Also accepts the service account tokens `service_accounts` signed.
    pub fn accept_service_accounts(&mut self, service_accounts: ServiceAccountTokens) {
        self.service_accounts = Some(service_accounts);
    }

    /// The topology page's login codes and sessions.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// The user a bearer token authenticates as: one of the token file, else a service
    /// account token; None when nobody holds it.
    pub async fn bearer_user(&self, token: &str) -> Option<User> {
        match self.tokens.user(token) {
            Some(user) => Some(user),
            None => self.service_account(token).await,
        }
    }

    /// The user of the page's session `id`, if it is live; a token session whose token no
    /// longer authenticates is ended.
    pub async fn session_user(&self, id: &str) -> Option<User> {
        match self.sessions.login(id)? {
            Login::User(user) => Some(user),
            Login::Token(token) => {
                let user = self.bearer_user(&token).await;
                if user.is_none() {
                    self.sessions.end(id);
                }
                user
            }
        }
    }

    /// The user of a request without a client certificate: its bearer token's (a wrong one
    /// is refused even where anonymous users may read), else its page session's (on the
    /// page's paths, or beside `X-Peapod-UI: 1`), else anonymous where that may read.
    async fn request_user(&self, presented: Presented) -> Option<(User, Credential)> {
        if let Some(token) = presented.token {
            let user = self.bearer_user(&token).await?;
            return Some((user, Credential::BearerToken));
        }
        if let Some(id) = presented.session {
            if let Some(user) = self.session_user(&id).await {
                return Some((user, Credential::PageSession));
            }
        }
        presented
            .public
            .then(|| (anonymous(), Credential::Anonymous))
    }

    /// The service account a token of ours names, if it is valid and what it is bound to
    /// still there.
    async fn service_account(&self, token: &str) -> Option<User> {
        let accounts = self.service_accounts.as_ref()?;
        let now = jiff::Timestamp::now();
        let claims = match accounts.signer.verify(token, now) {
            Ok(claims) => claims,
            Err(TokenError::Foreign(_)) => return legacy_service_account(accounts, token).await,
            Err(err) => {
                tracing::info!(%err, "refused a service account token");
                return None;
            }
        };
        let store = accounts.store.clone();
        let checked =
            tokio::task::spawn_blocking(move || token::authenticate(&claims, &store, now)).await;
        match checked {
            Ok(Ok(user)) => Some(user),
            Ok(Err(err)) => {
                tracing::info!(%err, "refused a service account token");
                None
            }
            Err(err) => {
                tracing::warn!(%err, "checking a service account token");
                None
            }
        }
    }
}

/// The service account a legacy token of a token Secret names, if the Secret still holds it.
async fn legacy_service_account(accounts: &ServiceAccountTokens, token: &str) -> Option<User> {
    let claims = match legacy_token::verify(&accounts.signer, token) {
        Ok(claims) => claims,
        Err(LegacyTokenError::Foreign(_)) => return None,
        Err(err) => {
            tracing::info!(%err, "refused a legacy service account token");
            return None;
        }
    };
    let (store, token) = (accounts.store.clone(), token.to_owned());
    let now = jiff::Timestamp::now();
    let checked = tokio::task::spawn_blocking(move || {
        legacy_token::authenticate(&claims, &token, &store, now)
    })
    .await;
    match checked {
        Ok(Ok(login)) => {
            if let Some(err) = login.unrecorded {
                tracing::warn!(%err, "labelling a legacy service account token's last use");
            }
            Some(login.user)
        }
        Ok(Err(err)) => {
            tracing::info!(%err, "refused a legacy service account token");
            None
        }
        Err(err) => {
            tracing::warn!(%err, "checking a legacy service account token");
            None
        }
    }
}

/// The user of an unauthenticated request, as kube-apiserver names it.
pub fn anonymous() -> User {
    User {
        name: "system:anonymous".into(),
        groups: vec!["system:unauthenticated".into()],
        extra: Default::default(),
    }
}

/// The user a client certificate (DER) names: its first CN, with its Os as groups.
pub fn certificate_user(der: &[u8]) -> Option<User> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?;
    let groups: Vec<&str> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .collect();
    Some(User::new(name, &groups))
}

/// The middleware of the HTTPS listener: authenticates, or answers 401.
pub async fn authenticate(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = match request.extensions().get::<PeerIdentity>() {
        Some(PeerIdentity(Some(user))) => Some(user.clone()),
        _ => None,
    };
    let authenticated = match peer {
        Some(user) => Some((user, Credential::Certificate)),
        None => authenticator.request_user(Presented::of(&request)).await,
    };
    let Some((user, credential)) = authenticated else {
        let mut refused = unauthorized();
        refused.extensions_mut().insert(anonymous());
        return refused;
    };
    // As kube-apiserver: the credentials go no further than authentication.
    request.headers_mut().remove(header::AUTHORIZATION);
    if !cookies::is_ui_path(request.uri().path()) {
        request.headers_mut().remove(header::COOKIE);
    }
    request.extensions_mut().insert(credential);
    serve_as(user, request, next).await
}

/// The middleware of the Unix socket, which only root reaches: every request is the admin's.
pub async fn local_admin(request: Request, next: Next) -> Response {
    serve_as(User::admin(), request, next).await
}

async fn serve_as(user: User, mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(user.clone());
    let mut response = next.run(request).await;
    response.extensions_mut().insert(user);
    response
}

fn bearer_token(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn is_public(request: &Request) -> bool {
    let path = request.uri().path();
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    (read && PUBLIC_PATHS.contains(&path)) || cookies::is_ui_path(path)
}

/// kube-apiserver's answer to a request it cannot authenticate.
fn unauthorized() -> Response {
    let status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    });
    (StatusCode::UNAUTHORIZED, axum::Json(status)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn app(tokens: &std::path::Path) -> Router {
        let authenticator = Arc::new(Authenticator::new(TokenFile::open(tokens).unwrap()));
        let whoami = |request: Request| async move {
            let user = request.extensions().get::<User>().cloned().unwrap();
            let header = request.headers().get(header::AUTHORIZATION).is_some();
            format!("{} {:?} {header}", user.name, user.groups)
        };
        Router::new()
            .route("/healthz", get(whoami).post(whoami))
            .route("/api/v1/pods", get(whoami))
            .layer(axum::middleware::from_fn_with_state(
                authenticator,
                authenticate,
            ))
    }

    async fn call(app: &Router, request: axum::http::Request<Body>) -> (u16, String) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn request(method: &str, path: &str, token: Option<&str>) -> axum::http::Request<Body> {
        let mut builder = axum::http::Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn anonymous_users_read_only_the_public_paths() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(&dir.path().join("tokens.csv"));
        let (code, body) = call(&app, request("GET", "/healthz", None)).await;
        assert_eq!(
            (code, body.as_str()),
            (200, "system:anonymous [\"system:unauthenticated\"] false")
        );
        let (code, body) = call(&app, request("GET", "/api/v1/pods", None)).await;
        assert_eq!(code, 401);
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["reason"], "Unauthorized");
        assert_eq!(status["code"], 401);
        assert_eq!(call(&app, request("POST", "/healthz", None)).await.0, 401);
    }

    #[tokio::test]
    async fn bearer_tokens_of_the_file_authenticate_and_are_not_passed_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "t0ken,robot,42,\"team-a,team-b\"\n").unwrap();
        let app = app(&path);
        let (code, body) = call(&app, request("GET", "/api/v1/pods", Some("t0ken"))).await;
        assert_eq!(code, 200);
        assert_eq!(
            body,
            "robot [\"team-a\", \"team-b\", \"system:authenticated\"] false"
        );
        assert_eq!(
            call(&app, request("GET", "/api/v1/pods", Some("nope")))
                .await
                .0,
            401
        );
        assert_eq!(
            call(&app, request("GET", "/healthz", Some("nope"))).await.0,
            401,
            "a wrong token is refused even where anonymous users may read"
        );
    }

    #[tokio::test]
    async fn a_verified_client_certificate_names_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(&dir.path().join("tokens.csv"));
        let mut request = request("GET", "/api/v1/pods", None);
        let admin = User::new("system:admin", &["system:masters"]);
        request.extensions_mut().insert(PeerIdentity(Some(admin)));
        let (code, body) = call(&app, request).await;
        assert_eq!(code, 200);
        assert!(
            body.starts_with("system:admin [\"system:masters\""),
            "{body}"
        );
    }

    #[test]
    fn certificate_users_come_from_cn_and_o() {
        let dir = tempfile::tempdir().unwrap();
        let names = crate::certs::ServingNames {
            node_name: "n".into(),
            addresses: vec![],
            cluster_domain: "cluster.local".into(),
            service_ip: "10.43.0.1".parse().unwrap(),
        };
        let pki = crate::certs::Pki::load_or_create(dir.path(), &names).unwrap();
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(pki.admin.cert_pem.as_bytes())
            .unwrap();
        assert_eq!(certificate_user(&der), Some(User::admin()));
    }
}
