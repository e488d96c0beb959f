//! Who is asking: the user a request was authenticated as (by its TLS client certificate, a
//! bearer token, or the root-only Unix socket), carried in the request's extensions, and the
//! authorizer seam the handlers consult.

use crate::request_info::RequestInfo;

/// The group whose members may do everything, as kube-apiserver's `system:masters`.
pub const MASTERS: &str = "system:masters";

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn new(name: impl Into<String>, groups: &[&str]) -> User {
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".to_owned());
        }
        User {
            name: name.into(),
            groups,
        }
    }

    /// The root user of the Unix socket and of in-process clients.
    pub fn admin() -> User {
        User::new("system:admin", &[MASTERS])
    }
}

/// Whether `user` may do what `request` asks.
pub trait Authorizer: Send + Sync + 'static {
    fn allows(&self, user: &User, request: &RequestInfo) -> bool;
}

/// What anyone may read, as kube's `system:public-info-viewer` role allows.
const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// Until RBAC: every authenticated user may do everything; anyone may read the public paths.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAuthenticated;

impl Authorizer for AllowAuthenticated {
    fn allows(&self, user: &User, request: &RequestInfo) -> bool {
        let public = !request.is_resource_request
            && request.verb == "get"
            && PUBLIC_PATHS.contains(&request.path.trim_end_matches('/'));
        public || user.groups.iter().any(|g| g == "system:authenticated")
    }
}
