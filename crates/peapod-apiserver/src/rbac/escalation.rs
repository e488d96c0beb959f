//! kube-apiserver's privilege-escalation prevention for RBAC writes
//! (`pkg/registry/rbac/escalation_check.go`, the policy-based role and binding storage, and
//! `rbac/validation`'s `ConfirmNoEscalation`): a Role or ClusterRole may be written only with
//! rules the writer holds, or with `escalate` on it; a binding only to a role whose rules the
//! writer holds, or with `bind` on it. system:masters may do both.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::authorization::v1::SubjectRulesReviewStatus;
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};
use peapod_store::Store;
use serde_json::{json, Value};

use super::RbacAuthorizer;
use crate::authn::{Authorizer, User, MASTERS};
use crate::request_info::RequestInfo;
use crate::status::ApiError;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A write of an RBAC object, as the escalation check sees it.
pub struct RbacWrite<'a> {
    pub user: &'a User,
    pub authorizer: &'a dyn Authorizer,
    pub store: &'a Store,
    /// The resource written (`roles`, `rolebindings`, ...).
    pub resource: &'a str,
    /// The namespace written in ("" for cluster-scoped objects).
    pub namespace: &'a str,
}

impl RbacWrite<'_> {
    /// Refuses `new` (replacing `old`, on an update) when it would grant rights the writer
    /// lacks; objects of other groups pass.
    pub fn check(&self, group: &str, new: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        if group != RBAC_GROUP || self.user.groups.iter().any(|g| g == MASTERS) {
            return Ok(());
        }
        let name = new["metadata"]["name"].as_str().unwrap_or_default();
        match self.resource {
            "roles" | "clusterroles" => self.check_role(name, new, old),
            "rolebindings" | "clusterrolebindings" if old.is_none() => {
                let role_ref: RoleRef = serde_json::from_value(new["roleRef"].clone())
                    .map_err(|err| ApiError::bad_request(err.to_string()))?;
                self.check_binding(name, &role_ref)
            }
            _ => Ok(()),
        }
    }

    fn check_role(&self, name: &str, new: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        if old.is_some_and(|old| old["rules"] == new["rules"]) {
            return Ok(());
        }
        if self.authorized("escalate", self.resource, name) {
            return Ok(());
        }
        let rules: Vec<PolicyRule> =
            serde_json::from_value(new["rules"].clone()).unwrap_or_default();
        if !new["aggregationRule"].is_null() {
            let everything = vec![
                super::rules::rule(&["*"], &["*"], &["*"]),
                super::rules::url_rule(&["*"], &["*"]),
            ];
            if self.missing(&everything).is_some() {
                let why = "must have cluster-admin privileges to use the aggregationRule";
                return Err(self.forbidden(name, why));
            }
        }
        match self.missing(&rules) {
            Some(why) => Err(self.forbidden(name, &why)),
            None => Ok(()),
        }
    }

    /// kube's `BindingAuthorized`, then `ConfirmNoEscalation` on the bound role's rules.
    fn check_binding(&self, name: &str, role_ref: &RoleRef) -> Result<(), ApiError> {
        let role_resource = format!("{}s", role_ref.kind.to_lowercase());
        if self.authorized("bind", &role_resource, &role_ref.name) {
            return Ok(());
        }
        let resolver = RbacAuthorizer::new(self.store.clone());
        let rules = resolver
            .role_rules(role_ref, self.namespace)
            .map_err(|err| self.forbidden(name, &err))?;
        match self.missing(&rules) {
            Some(why) => Err(self.forbidden(name, &why)),
            None => Ok(()),
        }
    }

    fn authorized(&self, verb: &str, resource: &str, name: &str) -> bool {
        let request = RequestInfo {
            is_resource_request: true,
            verb: verb.to_owned(),
            api_prefix: "apis".to_owned(),
            api_group: RBAC_GROUP.to_owned(),
            api_version: "v1".to_owned(),
            namespace: (!self.namespace.is_empty()).then(|| self.namespace.to_owned()),
            resource: resource.to_owned(),
            name: Some(name.to_owned()),
            ..RequestInfo::default()
        };
        self.authorizer.allows(self.user, &request)
    }

    /// kube's `ConfirmNoEscalation`: the message naming the rights `rules` grant that the
    /// writer does not hold, if any.
    fn missing(&self, rules: &[PolicyRule]) -> Option<String> {
        let held = self.authorizer.rules(self.user, self.namespace);
        let uncovered = uncovered(&owner_rules(&held), rules);
        if uncovered.is_empty() {
            return None;
        }
        let descriptions: BTreeSet<String> =
            compact(uncovered).iter().map(compact_string).collect();
        let mut message = format!(
            "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            go_quote(&self.user.name),
            go_quote_list(&self.user.groups),
            descriptions.into_iter().collect::<Vec<_>>().join("\n")
        );
        if let Some(error) = &held.evaluation_error {
            message.push_str(&format!("; resolution errors: [{error}]"));
        }
        Some(message)
    }

    /// kube's `NewForbidden(groupResource, name, err)`.
    fn forbidden(&self, name: &str, why: &str) -> ApiError {
        let message = format!(
            "{}.{RBAC_GROUP} {} is forbidden: {why}",
            self.resource,
            go_quote(name)
        );
        let details = json!({"name": name, "group": RBAC_GROUP, "kind": self.resource});
        ApiError::forbidden(message).with_details(details)
    }
}

fn owner_rules(held: &SubjectRulesReviewStatus) -> Vec<PolicyRule> {
    let resources = held.resource_rules.iter().map(|r| PolicyRule {
        verbs: r.verbs.clone(),
        api_groups: r.api_groups.clone(),
        resources: r.resources.clone(),
        resource_names: r.resource_names.clone(),
        non_resource_urls: None,
    });
    let urls = held.non_resource_rules.iter().map(|r| PolicyRule {
        verbs: r.verbs.clone(),
        non_resource_urls: r.non_resource_urls.clone(),
        ..PolicyRule::default()
    });
    resources.chain(urls).collect()
}

fn list(values: &Option<Vec<String>>) -> &[String] {
    values.as_deref().unwrap_or_default()
}

fn one(value: &str) -> Option<Vec<String>> {
    Some(vec![value.to_owned()])
}

/// kube's `BreakdownRule`: one rule per group, resource, verb (and name); per URL and verb.
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut simple = Vec::new();
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let names = list(&rule.resource_names);
                let names: Vec<Option<&String>> = if names.is_empty() {
                    vec![None]
                } else {
                    names.iter().map(Some).collect()
                };
                for name in names {
                    simple.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        verbs: vec![verb.clone()],
                        resource_names: name.map(|n| vec![n.clone()]),
                        non_resource_urls: None,
                    });
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            simple.push(PolicyRule {
                verbs: vec![verb.clone()],
                non_resource_urls: one(url),
                ..PolicyRule::default()
            });
        }
    }
    simple
}

/// kube's `Covers`: the simple rules of `servant` no rule of `owner` covers.
pub fn uncovered(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<PolicyRule> {
    servant
        .iter()
        .flat_map(breakdown)
        .filter(|simple| !owner.iter().any(|o| rule_covers(o, simple)))
        .collect()
}

fn has(set: &[String], element: &str) -> bool {
    set.iter().any(|s| s == element)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

fn urls_cover(owner: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|path| {
        owner.iter().any(|o| {
            o == path
                || o.strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
        })
    })
}

/// kube's `ruleCovers`.
fn rule_covers(owner: &PolicyRule, simple: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &simple.verbs);
    let groups = has(list(&owner.api_groups), "*")
        || has_all(list(&owner.api_groups), list(&simple.api_groups));
    let resources = resources_cover(list(&owner.resources), list(&simple.resources));
    let urls = urls_cover(
        list(&owner.non_resource_urls),
        list(&simple.non_resource_urls),
    );
    let owner_names = list(&owner.resource_names);
    let simple_names = list(&simple.resource_names);
    let names =
        owner_names.is_empty() || (!simple_names.is_empty() && has_all(owner_names, simple_names));
    verbs && groups && resources && urls && names
}

/// kube's `CompactRules`: simple rules of one group, resource and name merged, their verbs
/// joined in the order met.
fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut compacted = Vec::new();
    let mut merged: HashMap<(String, String, Option<String>), usize> = HashMap::new();
    for rule in rules {
        let groups = list(&rule.api_groups);
        let resources = list(&rule.resources);
        let names = list(&rule.resource_names);
        let simple = groups.len() == 1
            && resources.len() == 1
            && names.len() <= 1
            && list(&rule.non_resource_urls).is_empty();
        if !simple {
            compacted.push(rule);
            continue;
        }
        let key = (
            groups[0].clone(),
            resources[0].clone(),
            names.first().cloned(),
        );
        match merged.get(&key) {
            Some(&at) => {
                let existing: &mut PolicyRule = &mut compacted[at];
                for verb in rule.verbs {
                    if !existing.verbs.contains(&verb) {
                        existing.verbs.push(verb);
                    }
                }
            }
            None => {
                merged.insert(key, compacted.len());
                compacted.push(rule);
            }
        }
    }
    compacted
}

/// kube's `CompactString`: `{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}`.
fn compact_string(rule: &PolicyRule) -> String {
    let fields = [
        ("APIGroups", list(&rule.api_groups)),
        ("Resources", list(&rule.resources)),
        ("NonResourceURLs", list(&rule.non_resource_urls)),
        ("ResourceNames", list(&rule.resource_names)),
        ("Verbs", rule.verbs.as_slice()),
    ];
    let parts: Vec<String> = fields
        .iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(field, values)| format!("{field}:{}", go_quote_list(values)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `%q` of a string.
fn go_quote(value: &str) -> String {
    peapod_api::validation::go_quote(value)
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quote_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[{}]", quoted.join(" "))
}

#[cfg(test)]
#[path = "escalation_tests.rs"]
mod tests;
