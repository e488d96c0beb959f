//! kube-apiserver's RBAC authorizer: a request is allowed when a rule of a role bound to the
//! user allows it — ClusterRoleBindings everywhere, RoleBindings in their namespace. A
//! ClusterRole with an `aggregationRule` holds the rules of the cluster roles its selectors
//! match, as kube's aggregation controller fills it. Nodes (`system:nodes`) hold kube's
//! `system:node` rules, as the Node authorizer grants them.

pub mod bootstrap;
pub mod escalation;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use k8s_openapi::api::authorization::v1::{
    NonResourceRule, ResourceRule, SubjectRulesReviewStatus,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use peapod_store::{Store, StoreError};

use crate::authn::{Authorizer, User, MASTERS};
use crate::request_info::RequestInfo;

/// kube's `system:node` rules, which every node holds.
static NODE_RULES: LazyLock<Vec<PolicyRule>> = LazyLock::new(bootstrap::node_rules);

/// The group every node's user is in.
pub const NODES: &str = "system:nodes";

/// The RBAC authorizer over the roles and bindings in `store`.
#[derive(Clone)]
pub struct RbacAuthorizer {
    store: Store,
}

impl RbacAuthorizer {
    pub fn new(store: Store) -> RbacAuthorizer {
        RbacAuthorizer { store }
    }

    /// Every rule `user` holds in `namespace` (cluster-wide ones only for ""), and the
    /// errors met resolving them (kube's `RulesFor`).
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        if user.groups.iter().any(|g| g == NODES) {
            rules.extend(bootstrap::node_rules());
        }
        match self.store.list::<ClusterRoleBinding>(None) {
            Ok(bindings) => {
                for binding in bindings {
                    let subjects = binding.subjects.as_deref().unwrap_or_default();
                    if subjects.iter().any(|s| rules::applies_to(s, user, "")) {
                        self.collect(&binding.role_ref, "", &mut rules, &mut errors);
                    }
                }
            }
            Err(err) => errors.push(err.to_string()),
        }
        if namespace.is_empty() {
            return (rules, errors);
        }
        match self.store.list::<RoleBinding>(Some(namespace)) {
            Ok(bindings) => {
                for binding in bindings {
                    let subjects = binding.subjects.as_deref().unwrap_or_default();
                    if subjects
                        .iter()
                        .any(|s| rules::applies_to(s, user, namespace))
                    {
                        self.collect(&binding.role_ref, namespace, &mut rules, &mut errors);
                    }
                }
            }
            Err(err) => errors.push(err.to_string()),
        }
        (rules, errors)
    }

    fn collect(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
        rules: &mut Vec<PolicyRule>,
        errors: &mut Vec<String>,
    ) {
        match self.role_rules(role_ref, namespace) {
            Ok(found) => rules.extend(found),
            Err(err) => errors.push(err),
        }
    }

    /// The rules of the role a binding names (kube's `GetRoleReferenceRules`).
    pub fn role_rules(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> Result<Vec<PolicyRule>, String> {
        match role_ref.kind.as_str() {
            "Role" => match self.store.get::<Role>(namespace, &role_ref.name) {
                Ok(Some(role)) => Ok(role.rules.unwrap_or_default()),
                Ok(None) => Err(format!(
                    "role.rbac.authorization.k8s.io \"{}\" not found",
                    role_ref.name
                )),
                Err(err) => Err(err.to_string()),
            },
            "ClusterRole" => self
                .cluster_role_rules(&role_ref.name)
                .map_err(|err| err.to_string())?
                .ok_or_else(|| {
                    format!(
                        "clusterrole.rbac.authorization.k8s.io \"{}\" not found",
                        role_ref.name
                    )
                }),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// A cluster role's rules, its aggregated ones included.
    fn cluster_role_rules(&self, name: &str) -> Result<Option<Vec<PolicyRule>>, StoreError> {
        let roles: BTreeMap<String, ClusterRole> = self
            .store
            .list::<ClusterRole>(None)?
            .into_iter()
            .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
            .collect();
        if !roles.contains_key(name) {
            return Ok(None);
        }
        Ok(Some(aggregated_rules(name, &roles)))
    }
}

/// The rules of the cluster role `name` among `roles` (by name): its own, or with an
/// aggregationRule those of the roles it aggregates.
pub fn aggregated_rules(name: &str, roles: &BTreeMap<String, ClusterRole>) -> Vec<PolicyRule> {
    let mut rules = Vec::new();
    aggregate(name, roles, &mut BTreeSet::new(), &mut rules);
    rules
}

/// The aggregation controller's result, computed on read: a role's own rules, or with an
/// aggregationRule the rules of every cluster role a selector matches (each resolved the same
/// way, each once).
fn aggregate(
    name: &str,
    roles: &BTreeMap<String, ClusterRole>,
    visited: &mut BTreeSet<String>,
    rules: &mut Vec<PolicyRule>,
) {
    if !visited.insert(name.to_owned()) {
        return;
    }
    let Some(role) = roles.get(name) else {
        return;
    };
    let Some(aggregation) = &role.aggregation_rule else {
        for rule in role.rules.iter().flatten() {
            if !rules.contains(rule) {
                rules.push(rule.clone());
            }
        }
        return;
    };
    let selectors = aggregation
        .cluster_role_selectors
        .as_deref()
        .unwrap_or_default();
    for (other, candidate) in roles {
        let labels = candidate.metadata.labels.clone().unwrap_or_default();
        if other != name && selectors.iter().any(|s| selector_matches(s, &labels)) {
            aggregate(other, roles, visited, rules);
        }
    }
}

/// A metav1 LabelSelector against labels: every matchLabels pair and expression holds.
fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let pairs = selector.match_labels.iter().flatten();
    let expressions = selector.match_expressions.iter().flatten();
    let matched_pairs = pairs.clone().all(|(k, v)| labels.get(k) == Some(v));
    let matched_expressions = expressions.clone().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    let empty = pairs.count() == 0 && expressions.count() == 0;
    !empty && matched_pairs && matched_expressions
}

impl Authorizer for RbacAuthorizer {
    /// kube-apiserver's chain: system:masters first (the privileged-groups authorizer, no
    /// lookup), then a node's own rules (the Node authorizer, in memory), then RBAC's bindings.
    fn allows(&self, user: &User, request: &RequestInfo) -> bool {
        if user.groups.iter().any(|g| g == MASTERS) {
            return true;
        }
        let is_node = user.groups.iter().any(|g| g == NODES);
        if is_node
            && NODE_RULES
                .iter()
                .any(|rule| rules::rule_allows(request, rule))
        {
            return true;
        }
        let namespace = request.namespace.as_deref().unwrap_or_default();
        let (rules, _) = self.rules_for(user, namespace);
        rules.iter().any(|rule| rules::rule_allows(request, rule))
    }

    fn rules(&self, user: &User, namespace: &str) -> SubjectRulesReviewStatus {
        let (rules, errors) = self.rules_for(user, namespace);
        let mut status = SubjectRulesReviewStatus {
            incomplete: !errors.is_empty(),
            evaluation_error: (!errors.is_empty()).then(|| errors.join(", ")),
            ..SubjectRulesReviewStatus::default()
        };
        for rule in rules {
            if rule.resources.as_ref().is_some_and(|r| !r.is_empty()) {
                status.resource_rules.push(ResourceRule {
                    verbs: rule.verbs.clone(),
                    api_groups: rule.api_groups.clone(),
                    resources: rule.resources.clone(),
                    resource_names: rule.resource_names.clone(),
                });
            }
            if rule
                .non_resource_urls
                .as_ref()
                .is_some_and(|u| !u.is_empty())
            {
                status.non_resource_rules.push(NonResourceRule {
                    verbs: rule.verbs,
                    non_resource_urls: rule.non_resource_urls,
                });
            }
        }
        status
    }
}

#[cfg(test)]
mod tests;
