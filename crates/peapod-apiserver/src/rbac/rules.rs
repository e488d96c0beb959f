//! Whether one policy rule allows a request, by kube's `plugin/pkg/auth/authorizer/rbac`
//! matching: verbs, API groups and resources with `*`, `resource/subresource` and `*/sub`,
//! resource names, and non-resource URLs with a trailing `*`.

use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};

use crate::authn::User;
use crate::request_info::RequestInfo;

const ALL: &str = "*";

/// kube's `RuleAllows`.
pub fn rule_allows(request: &RequestInfo, rule: &PolicyRule) -> bool {
    if !verb_matches(rule, &request.verb) {
        return false;
    }
    if !request.is_resource_request {
        return non_resource_url_matches(rule, &request.path);
    }
    let combined = match &request.subresource {
        Some(sub) => format!("{}/{sub}", request.resource),
        None => request.resource.clone(),
    };
    api_group_matches(rule, &request.api_group)
        && resource_matches(rule, &combined, request.subresource.as_deref())
        && resource_name_matches(rule, request.name.as_deref().unwrap_or_default())
}

fn list(values: &Option<Vec<String>>) -> &[String] {
    values.as_deref().unwrap_or_default()
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    list(&rule.api_groups)
        .iter()
        .any(|g| g == ALL || g == group)
}

fn resource_matches(rule: &PolicyRule, combined: &str, subresource: Option<&str>) -> bool {
    list(&rule.resources).iter().any(|resource| {
        if resource == ALL || resource == combined {
            return true;
        }
        // `*/log` matches the log subresource of every resource.
        subresource.is_some_and(|sub| resource.strip_prefix("*/") == Some(sub))
    })
}

fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || names.iter().any(|n| n == name)
}

fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    list(&rule.non_resource_urls).iter().any(|url| {
        url == ALL
            || url == path
            || url
                .strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}

/// kube's `appliesToUser`: a user by name, a group the user is in, or a service account by
/// its user name (the binding's namespace when the subject names none).
pub fn applies_to(subject: &Subject, user: &User, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let namespace = subject
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            user.name == format!("system:serviceaccount:{namespace}:{}", subject.name)
        }
        _ => false,
    }
}

/// A rule from string slices, for the bootstrap policy and tests.
pub fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        verbs: owned(verbs),
        api_groups: Some(owned(groups)),
        resources: Some(owned(resources)),
        ..PolicyRule::default()
    }
}

/// A non-resource rule from string slices.
pub fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        verbs: owned(verbs),
        non_resource_urls: Some(owned(urls)),
        ..PolicyRule::default()
    }
}

/// Ported from kube's `TestRuleMatches` and `TestAppliesTo`.
#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn request(method: Method, path: &str) -> RequestInfo {
        RequestInfo::parse(&method, path, None)
    }

    #[test]
    fn verbs_groups_and_resources_match_with_stars() {
        let list_pods = request(Method::GET, "/api/v1/namespaces/default/pods");
        assert!(rule_allows(&list_pods, &rule(&["list"], &[""], &["pods"])));
        assert!(rule_allows(&list_pods, &rule(&["*"], &["*"], &["*"])));
        assert!(!rule_allows(&list_pods, &rule(&["get"], &[""], &["pods"])));
        assert!(!rule_allows(
            &list_pods,
            &rule(&["list"], &["apps"], &["pods"])
        ));
        assert!(!rule_allows(
            &list_pods,
            &rule(&["list"], &[""], &["pods/log"])
        ));
    }

    #[test]
    fn subresources_match_by_their_combined_name_or_star_slash() {
        let log = request(Method::GET, "/api/v1/namespaces/default/pods/web/log");
        assert!(rule_allows(&log, &rule(&["get"], &[""], &["pods/log"])));
        assert!(rule_allows(&log, &rule(&["get"], &[""], &["*/log"])));
        assert!(!rule_allows(&log, &rule(&["get"], &[""], &["pods"])));
        assert!(!rule_allows(&log, &rule(&["get"], &[""], &["*/status"])));
    }

    #[test]
    fn resource_names_limit_the_rule() {
        let get = request(Method::GET, "/api/v1/namespaces/default/configmaps/one");
        let mut named = rule(&["get"], &[""], &["configmaps"]);
        named.resource_names = Some(vec!["one".into()]);
        assert!(rule_allows(&get, &named));
        named.resource_names = Some(vec!["two".into()]);
        assert!(!rule_allows(&get, &named));
        let list = request(Method::GET, "/api/v1/namespaces/default/configmaps");
        assert!(!rule_allows(&list, &named), "a list names no object");
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_prefix() {
        let healthz = request(Method::GET, "/healthz");
        assert!(rule_allows(&healthz, &url_rule(&["get"], &["/healthz"])));
        assert!(rule_allows(&healthz, &url_rule(&["get"], &["/health*"])));
        assert!(rule_allows(&healthz, &url_rule(&["get"], &["*"])));
        assert!(!rule_allows(&healthz, &url_rule(&["post"], &["/healthz"])));
        assert!(!rule_allows(&healthz, &url_rule(&["get"], &["/api/*"])));
        let pods = request(Method::GET, "/api/v1/pods");
        assert!(!rule_allows(&pods, &url_rule(&["get"], &["*"])));
    }

    #[test]
    fn subjects_apply_by_user_group_or_service_account() {
        let subject = |kind: &str, name: &str, namespace: Option<&str>| Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.map(Into::into),
            ..Subject::default()
        };
        let alice = User::new("alice", &["dev"]);
        assert!(applies_to(&subject("User", "alice", None), &alice, "ns"));
        assert!(!applies_to(&subject("User", "bob", None), &alice, "ns"));
        assert!(applies_to(&subject("Group", "dev", None), &alice, "ns"));
        assert!(applies_to(
            &subject("Group", "system:authenticated", None),
            &alice,
            "ns"
        ));
        let robot = User::new("system:serviceaccount:ns:robot", &[]);
        assert!(applies_to(
            &subject("ServiceAccount", "robot", None),
            &robot,
            "ns"
        ));
        assert!(applies_to(
            &subject("ServiceAccount", "robot", Some("ns")),
            &robot,
            "x"
        ));
        assert!(!applies_to(
            &subject("ServiceAccount", "robot", None),
            &robot,
            "other"
        ));
    }
}
