//! rbac.authorization.k8s.io/v1 kinds: Role and ClusterRole (NAME, CREATED AT), RoleBinding
//! and ClusterRoleBinding (NAME, ROLE, AGE; USERS, GROUPS, SERVICEACCOUNTS wide), validated
//! as kube's `pkg/apis/rbac/validation`.

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_api::validation::meta::{validate_object_meta, validate_object_meta_update};
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub fn role() -> Kind {
    Kind::of(RoleStrategy)
}

pub fn cluster_role() -> Kind {
    Kind::of(ClusterRoleStrategy)
}

pub fn role_binding() -> Kind {
    Kind::of(RoleBindingStrategy)
}

pub fn cluster_role_binding() -> Kind {
    Kind::of(ClusterRoleBindingStrategy)
}

pub struct RoleStrategy;
pub struct ClusterRoleStrategy;
pub struct RoleBindingStrategy;
pub struct ClusterRoleBindingStrategy;

impl KindStrategy for RoleStrategy {
    type Object = Role;

    fn validate(&self, role: &Role) -> Vec<FieldError> {
        let mut errors = validate_rbac_meta(&role.metadata, true);
        errors.extend(validate_rules(role.rules.as_deref(), false));
        errors
    }
}

impl KindStrategy for ClusterRoleStrategy {
    type Object = ClusterRole;

    fn validate(&self, role: &ClusterRole) -> Vec<FieldError> {
        let mut errors = validate_rbac_meta(&role.metadata, false);
        errors.extend(validate_rules(role.rules.as_deref(), true));
        errors
    }
}

impl KindStrategy for RoleBindingStrategy {
    type Object = RoleBinding;

    fn validate(&self, binding: &RoleBinding) -> Vec<FieldError> {
        let mut errors = validate_rbac_meta(&binding.metadata, true);
        errors.extend(validate_role_ref(
            &binding.role_ref,
            &["Role", "ClusterRole"],
        ));
        errors.extend(validate_subjects(binding.subjects.as_deref()));
        errors
    }

    fn validate_update(&self, new: &RoleBinding, old: &RoleBinding) -> Vec<FieldError> {
        let mut errors = meta_update(&new.metadata, &old.metadata);
        errors.extend(unchanged_role_ref(&new.role_ref, &old.role_ref));
        errors.extend(self.validate(new));
        errors
    }

    fn columns(&self) -> Vec<Column> {
        binding_columns()
    }

    fn cells(&self, binding: &RoleBinding) -> Vec<Value> {
        binding_cells(
            &binding.metadata,
            &binding.role_ref,
            binding.subjects.as_deref(),
        )
    }
}

impl KindStrategy for ClusterRoleBindingStrategy {
    type Object = ClusterRoleBinding;

    fn validate(&self, binding: &ClusterRoleBinding) -> Vec<FieldError> {
        let mut errors = validate_rbac_meta(&binding.metadata, false);
        errors.extend(validate_role_ref(&binding.role_ref, &["ClusterRole"]));
        errors.extend(validate_subjects(binding.subjects.as_deref()));
        errors
    }

    fn validate_update(
        &self,
        new: &ClusterRoleBinding,
        old: &ClusterRoleBinding,
    ) -> Vec<FieldError> {
        let mut errors = meta_update(&new.metadata, &old.metadata);
        errors.extend(unchanged_role_ref(&new.role_ref, &old.role_ref));
        errors.extend(self.validate(new));
        errors
    }

    fn columns(&self) -> Vec<Column> {
        binding_columns()
    }

    fn cells(&self, binding: &ClusterRoleBinding) -> Vec<Value> {
        binding_cells(
            &binding.metadata,
            &binding.role_ref,
            binding.subjects.as_deref(),
        )
    }
}

fn meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    validate_object_meta_update(new, old, &FieldPath::new("metadata"))
}

/// kube's `ValidateRBACName`: any path segment name (`system:view` included), so the name is
/// checked apart from the rest of the metadata.
fn validate_rbac_meta(meta: &ObjectMeta, namespaced: bool) -> Vec<FieldError> {
    let path = FieldPath::new("metadata");
    let mut checked = meta.clone();
    if !namespaced {
        checked.namespace = Some("default".to_owned());
    }
    let name = meta.name.clone().unwrap_or_default();
    if !name.is_empty() {
        checked.name = Some("valid".to_owned());
    }
    let mut errors = validate_object_meta(&checked, &path);
    for message in path_segment_name(&name) {
        errors.push(FieldError::invalid(
            &path.child("name"),
            name.as_str(),
            message,
        ));
    }
    errors
}

/// apimachinery's `IsValidPathSegmentName`.
pub(crate) fn path_segment_name(name: &str) -> Vec<&'static str> {
    let mut messages = Vec::new();
    match name {
        "." => messages.push("may not be '.'"),
        ".." => messages.push("may not be '..'"),
        _ => {}
    }
    if name.contains('/') {
        messages.push("may not contain '/'");
    }
    if name.contains('%') {
        messages.push("may not contain '%'");
    }
    messages
}

/// kube's `ValidatePolicyRule`: verbs always; a rule names resources or, in cluster roles
/// only, non-resource URLs, never both.
fn validate_rules(rules: Option<&[PolicyRule]>, cluster: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (index, rule) in rules.unwrap_or_default().iter().enumerate() {
        let path = FieldPath::new("rules").index(index);
        let empty = |list: &Option<Vec<String>>| list.as_ref().is_none_or(Vec::is_empty);
        if rule.verbs.is_empty() {
            let detail = "verbs must contain at least one value";
            errors.push(FieldError::required(&path.child("verbs"), detail));
        }
        if !empty(&rule.non_resource_urls) {
            if !cluster {
                let detail = "namespaced rules cannot apply to non-resource URLs";
                let field = path.child("nonResourceURLs");
                let urls = rule.non_resource_urls.clone().unwrap_or_default();
                errors.push(FieldError::invalid(&field, urls.join(","), detail));
            }
            if !empty(&rule.api_groups) || !empty(&rule.resources) || !empty(&rule.resource_names) {
                let detail = "rules cannot apply to both regular resources and non-resource URLs";
                errors.push(FieldError::invalid(
                    &path.child("nonResourceURLs"),
                    rule.non_resource_urls.clone().unwrap_or_default().join(","),
                    detail,
                ));
            }
            continue;
        }
        if empty(&rule.api_groups) {
            let detail = "resource rules must supply at least one api group";
            errors.push(FieldError::required(&path.child("apiGroups"), detail));
        }
        if empty(&rule.resources) {
            let detail = "resource rules must supply at least one resource";
            errors.push(FieldError::required(&path.child("resources"), detail));
        }
    }
    errors
}

/// kube's roleRef checks: the RBAC group, a kind the binding may name, a valid name.
fn validate_role_ref(role_ref: &RoleRef, kinds: &[&str]) -> Vec<FieldError> {
    let path = FieldPath::new("roleRef");
    let mut errors = Vec::new();
    if role_ref.api_group != RBAC_GROUP {
        errors.push(FieldError::not_supported(
            &path.child("apiGroup"),
            role_ref.api_group.as_str(),
            &[RBAC_GROUP],
        ));
    }
    if !kinds.contains(&role_ref.kind.as_str()) {
        errors.push(FieldError::not_supported(
            &path.child("kind"),
            role_ref.kind.as_str(),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errors.push(FieldError::required(&path.child("name"), ""));
    } else {
        for message in path_segment_name(&role_ref.name) {
            let name = role_ref.name.as_str();
            errors.push(FieldError::invalid(&path.child("name"), name, message));
        }
    }
    errors
}

fn unchanged_role_ref(new: &RoleRef, old: &RoleRef) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    let shown = format!(
        "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
        new.api_group, new.kind, new.name
    );
    vec![FieldError::invalid(
        &FieldPath::new("roleRef"),
        shown,
        "cannot change roleRef",
    )]
}

/// kube's `ValidateRoleBindingSubject`: a name, and a kind of ServiceAccount (in the core
/// group), User or Group (in the RBAC group).
fn validate_subjects(subjects: Option<&[Subject]>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (index, subject) in subjects.unwrap_or_default().iter().enumerate() {
        let path = FieldPath::new("subjects").index(index);
        if subject.name.is_empty() {
            errors.push(FieldError::required(&path.child("name"), ""));
        }
        let group = subject.api_group.as_deref().unwrap_or_default();
        match subject.kind.as_str() {
            "ServiceAccount" if !group.is_empty() => errors.push(FieldError::not_supported(
                &path.child("apiGroup"),
                group,
                &[""],
            )),
            "User" | "Group" if group != RBAC_GROUP => errors.push(FieldError::not_supported(
                &path.child("apiGroup"),
                group,
                &[RBAC_GROUP],
            )),
            "ServiceAccount" | "User" | "Group" => {}
            other => errors.push(FieldError::not_supported(
                &path.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errors
}

fn binding_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Role", "string", ""),
        AGE,
        Column::new("Users", "string", "").wide(),
        Column::new("Groups", "string", "").wide(),
        Column::new("ServiceAccounts", "string", "").wide(),
    ]
}

/// kubectl's binding row: `Kind/name` of the role, then the subjects by kind.
fn binding_cells(
    meta: &ObjectMeta,
    role_ref: &RoleRef,
    subjects: Option<&[Subject]>,
) -> Vec<Value> {
    let of_kind = |kind: &str| {
        subjects
            .unwrap_or_default()
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| match (kind, s.namespace.as_deref()) {
                ("ServiceAccount", Some(ns)) => format!("{ns}/{}", s.name),
                _ => s.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        name_cell(meta),
        json!(format!("{}/{}", role_ref.kind, role_ref.name)),
        age_cell(meta),
        json!(of_kind("User")),
        json!(of_kind("Group")),
        json!(of_kind("ServiceAccount")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn role_names_may_hold_colons_but_not_slashes() {
        let role: ClusterRole = serde_json::from_value(json!({
            "metadata": {"name": "system:aggregate-to-view"},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
        }))
        .unwrap();
        assert!(ClusterRoleStrategy.validate(&role).is_empty());
        let bad: Role = serde_json::from_value(json!({
            "metadata": {"name": "a/b", "namespace": "default"},
            "rules": [{"verbs": [], "nonResourceURLs": ["/healthz"]}],
        }))
        .unwrap();
        assert_eq!(
            messages(RoleStrategy.validate(&bad)),
            [
                r#"metadata.name: Invalid value: "a/b": may not contain '/'"#,
                "rules[0].verbs: Required value: verbs must contain at least one value",
                r#"rules[0].nonResourceURLs: Invalid value: "/healthz": namespaced rules cannot apply to non-resource URLs"#,
            ]
        );
    }

    #[test]
    fn bindings_name_a_role_and_show_their_subjects() {
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "read", "namespace": "default"},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "reader"},
            "subjects": [
                {"kind": "User", "apiGroup": RBAC_GROUP, "name": "alice"},
                {"kind": "ServiceAccount", "name": "robot", "namespace": "ci"},
            ],
        }))
        .unwrap();
        assert!(RoleBindingStrategy.validate(&binding).is_empty());
        let row = RoleBindingStrategy.cells(&binding);
        assert_eq!(row[1], "Role/reader");
        assert_eq!(row[3], "alice");
        assert_eq!(row[5], "ci/robot");
        let mut changed = binding.clone();
        changed.role_ref.name = "writer".into();
        let refused = messages(unchanged_role_ref(&changed.role_ref, &binding.role_ref));
        assert!(
            refused[0].ends_with(": cannot change roleRef"),
            "{refused:?}"
        );
    }
}
