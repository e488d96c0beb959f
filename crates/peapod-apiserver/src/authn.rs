//! Who is asking: the user a request was authenticated as (by its TLS client certificate, a
//! bearer token, or the root-only Unix socket), carried in the request's extensions, and the
//! authorizer seam the handlers and the access reviews consult.

use k8s_openapi::api::authorization::v1::{
    NonResourceRule, ResourceRule, SubjectRulesReviewStatus,
};

use crate::request_info::RequestInfo;

/// The group whose members may do everything, as kube-apiserver's `system:masters`.
pub const MASTERS: &str = "system:masters";
/// The group of every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    /// What the authenticator adds about the credential (a service account token's pod and
    /// credential id), as kube's `user.Info.GetExtra`.
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl User {
    pub fn new(name: impl Into<String>, groups: &[&str]) -> User {
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_owned());
        }
        User {
            name: name.into(),
            groups,
            extra: Default::default(),
        }
    }

    /// The root user of the Unix socket and of in-process clients.
    pub fn admin() -> User {
        User::new("system:admin", &[MASTERS])
    }

    pub fn is_authenticated(&self) -> bool {
        self.groups.iter().any(|g| g == AUTHENTICATED)
    }
}

/// Whether `user` may do what `request` asks, and what they may do at all.
pub trait Authorizer: Send + Sync + 'static {
    fn allows(&self, user: &User, request: &RequestInfo) -> bool;

    /// The rules `user` holds in `namespace`, as a SelfSubjectRulesReview lists them (kube's
    /// `RuleResolver.RulesFor`).
    fn rules(&self, user: &User, namespace: &str) -> SubjectRulesReviewStatus;
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
        public || user.is_authenticated()
    }

    fn rules(&self, user: &User, _namespace: &str) -> SubjectRulesReviewStatus {
        let everything = || vec!["*".to_owned()];
        let (resource_rules, non_resource_rules) = if user.is_authenticated() {
            let resources = ResourceRule {
                verbs: everything(),
                api_groups: Some(everything()),
                resources: Some(everything()),
                resource_names: None,
            };
            let paths = NonResourceRule {
                verbs: everything(),
                non_resource_urls: Some(everything()),
            };
            (vec![resources], vec![paths])
        } else {
            let public = NonResourceRule {
                verbs: vec!["get".to_owned()],
                non_resource_urls: Some(PUBLIC_PATHS.iter().map(|p| (*p).to_owned()).collect()),
            };
            (Vec::new(), vec![public])
        };
        SubjectRulesReviewStatus {
            resource_rules,
            non_resource_rules,
            incomplete: false,
            evaluation_error: None,
        }
    }
}
