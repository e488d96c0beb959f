//! kube-apiserver's impersonation filter: `Impersonate-User`, `-Group`, `-Uid` and
//! `-Extra-<key>` headers (kubectl's `--as`, `--as-group`, `--as-uid`) make the request act
//! as another user, once the authorizer lets the requester `impersonate` each of them: users,
//! groups, uids, `userextras/<key>`, or the service account in its namespace.

use axum::http::HeaderMap;
use percent_encoding::percent_decode_str;

use crate::authn::{Authorizer, User, AUTHENTICATED};
use crate::request_info::RequestInfo;
use crate::status::ApiError;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";
const UNAUTHENTICATED: &str = "system:unauthenticated";
const ANONYMOUS: &str = "system:anonymous";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
/// kube's `user.Info` key for an impersonated uid (there is no uid field here).
const UID_EXTRA: &str = "authentication.kubernetes.io/impersonated-uid";

/// What the headers ask to act as, each checked on its own.
struct Asked {
    user: Option<String>,
    groups: Vec<String>,
    uid: Option<String>,
    extra: Vec<(String, String)>,
}

/// The user `requester` acts as: None without impersonation headers; an error when a header
/// stands alone without `Impersonate-User` or the authorizer refuses one of them (with kube's
/// forbidden message naming it).
pub fn impersonated(
    headers: &HeaderMap,
    requester: &User,
    authorizer: &dyn Authorizer,
) -> Result<Option<User>, ApiError> {
    let asked = asked(headers);
    let Some(name) = asked.user.clone() else {
        if !asked.groups.is_empty() || asked.uid.is_some() || !asked.extra.is_empty() {
            return Err(ApiError::internal(
                "requested impersonation of groups, a uid or extras without impersonating a user"
                    .to_owned(),
            ));
        }
        return Ok(None);
    };
    let mut groups = asked.groups.clone();
    match name
        .strip_prefix(SERVICE_ACCOUNT_PREFIX)
        .and_then(|rest| rest.split_once(':'))
    {
        Some((namespace, account)) => {
            check(
                authorizer,
                requester,
                "serviceaccounts",
                None,
                account,
                Some(namespace),
            )?;
            if asked.groups.is_empty() {
                groups = vec![
                    "system:serviceaccounts".to_owned(),
                    format!("system:serviceaccounts:{namespace}"),
                ];
            }
        }
        None => check(authorizer, requester, "users", None, &name, None)?,
    }
    for group in &asked.groups {
        check(authorizer, requester, "groups", None, group, None)?;
    }
    let mut user = User {
        name,
        groups,
        extra: Default::default(),
    };
    for (key, value) in &asked.extra {
        check(authorizer, requester, "userextras", Some(key), value, None)?;
        user.extra
            .entry(key.clone())
            .or_default()
            .push(value.clone());
    }
    if let Some(uid) = &asked.uid {
        check(authorizer, requester, "uids", None, uid, None)?;
        user.extra.insert(UID_EXTRA.to_owned(), vec![uid.clone()]);
    }
    add_implied_group(&mut user);
    Ok(Some(user))
}

fn asked(headers: &HeaderMap) -> Asked {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let extra = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix(EXTRA_PREFIX)?;
            // Extra keys travel percent-encoded in header names (kube's `unescapeExtraKey`).
            let key = percent_decode_str(key).decode_utf8_lossy().into_owned();
            Some((key, value.to_str().ok()?.to_owned()))
        })
        .collect();
    Asked {
        user: values(USER).into_iter().next(),
        groups: values(GROUP),
        uid: values(UID).into_iter().next(),
        extra,
    }
}

/// The `impersonate` check of one asked identity.
fn check(
    authorizer: &dyn Authorizer,
    requester: &User,
    resource: &str,
    subresource: Option<&str>,
    name: &str,
    namespace: Option<&str>,
) -> Result<(), ApiError> {
    let group = if resource == "userextras" || resource == "uids" {
        "authentication.k8s.io"
    } else {
        ""
    };
    let info = RequestInfo {
        is_resource_request: true,
        verb: "impersonate".to_owned(),
        api_group: group.to_owned(),
        namespace: namespace.map(str::to_owned),
        resource: resource.to_owned(),
        subresource: subresource.map(str::to_owned),
        name: Some(name.to_owned()),
        ..RequestInfo::default()
    };
    if authorizer.allows(requester, &info) {
        Ok(())
    } else {
        Err(crate::server::forbidden(requester, &info))
    }
}

/// A non-anonymous impersonated user is authenticated unless a group says otherwise; the
/// anonymous one is unauthenticated.
fn add_implied_group(user: &mut User) {
    if user.name == ANONYMOUS {
        if !user.groups.iter().any(|g| g == UNAUTHENTICATED) {
            user.groups.push(UNAUTHENTICATED.to_owned());
        }
        return;
    }
    let implied = user
        .groups
        .iter()
        .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED);
    if !implied {
        user.groups.push(AUTHENTICATED.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::authorization::v1::SubjectRulesReviewStatus;

    use super::*;

    /// Lets `bob` impersonate users and service accounts in `team`, nothing else.
    struct Policy;

    impl Authorizer for Policy {
        fn allows(&self, user: &User, request: &RequestInfo) -> bool {
            user.name == "bob"
                && request.verb == "impersonate"
                && (request.resource == "users"
                    || request.resource == "serviceaccounts"
                        && request.namespace.as_deref() == Some("team"))
        }

        fn rules(&self, _: &User, _: &str) -> SubjectRulesReviewStatus {
            SubjectRulesReviewStatus::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    fn act(pairs: &[(&str, &str)]) -> Result<Option<User>, String> {
        let bob = User::new("bob", &[]);
        impersonated(&headers(pairs), &bob, &Policy).map_err(|e| e.message)
    }

    #[test]
    fn users_and_service_accounts_are_impersonated_with_their_groups() {
        assert_eq!(act(&[]), Ok(None));
        let jane = act(&[("Impersonate-User", "jane")]).unwrap().unwrap();
        assert_eq!(
            (jane.name.as_str(), jane.groups),
            ("jane", vec![AUTHENTICATED.to_owned()])
        );
        let account = act(&[("Impersonate-User", "system:serviceaccount:team:robot")]);
        assert_eq!(
            account.unwrap().unwrap().groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:team",
                AUTHENTICATED
            ]
        );
    }

    #[test]
    fn what_the_requester_may_not_impersonate_is_forbidden_by_name() {
        assert_eq!(
            act(&[("Impersonate-User", "system:serviceaccount:other:robot")]).unwrap_err(),
            "serviceaccounts \"robot\" is forbidden: User \"bob\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"other\""
        );
        assert_eq!(
            act(&[("Impersonate-User", "jane"), ("Impersonate-Group", "admins")]).unwrap_err(),
            "groups \"admins\" is forbidden: User \"bob\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
        );
        assert_eq!(
            act(&[("Impersonate-Extra-Scopes%2Fa", "x"), ("Impersonate-User", "jane")]).unwrap_err(),
            "userextras.authentication.k8s.io \"x\" is forbidden: User \"bob\" cannot impersonate resource \"userextras/scopes/a\" in API group \"authentication.k8s.io\" at the cluster scope"
        );
        assert!(act(&[("Impersonate-Group", "admins")]).is_err());
    }
}
