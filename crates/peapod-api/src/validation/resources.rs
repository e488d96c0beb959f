//! Container resource requirements (ValidateContainerResourceRequirements): resource
//! names, quantities, request <= limit, and the hugepages rules.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

use super::{names, quantity_errors, FieldError, FieldPath};
use crate::quantity::Quantity;

type ResourceList = BTreeMap<String, K8sQuantity>;

const NON_NEGATIVE: &str = "must be greater than or equal to 0";
const HUGEPAGES_PREFIX: &str = "hugepages-";
/// IsStandardResourceName, besides hugepages.
const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];
/// Counted resources, besides the extended ones.
const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// ValidateContainerResourceRequirements: names, quantities, request <= limit.
pub fn validate_resources(
    limits: Option<&ResourceList>,
    requests: Option<&ResourceList>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let (lim_path, req_path) = (path.child("limits"), path.child("requests"));
    let mut errs = Vec::new();
    for (name, q) in limits.into_iter().flatten() {
        errs.extend(entry_errors(name, &q.0, &lim_path.key(name)));
    }
    for (name, q) in requests.into_iter().flatten() {
        errs.extend(entry_errors(name, &q.0, &req_path.key(name)));
        match limits.and_then(|l| l.get(name)) {
            Some(limit) => errs.extend(request_vs_limit(name, &q.0, &limit.0, &req_path)),
            None if !is_overcommit_allowed(name) => {
                let detail = "Limit must be set for non overcommitable resources";
                errs.push(FieldError::required(&lim_path, detail));
            }
            None => {}
        }
    }
    let all_names = || limits.into_iter().chain(requests).flat_map(|l| l.keys());
    let has_hugepages = all_names().any(|n| n.starts_with(HUGEPAGES_PREFIX));
    if has_hugepages && !all_names().any(|n| n == "cpu" || n == "memory") {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errs
}

/// Both parsed (malformed quantities are reported by `entry_errors`).
fn request_vs_limit(name: &str, request: &str, limit: &str, path: &FieldPath) -> Vec<FieldError> {
    let (Ok(req_q), Ok(lim_q)) = (request.parse::<Quantity>(), limit.parse::<Quantity>()) else {
        return Vec::new();
    };
    let detail = if req_q != lim_q && !is_overcommit_allowed(name) {
        format!("must be equal to {name} limit of {limit}")
    } else if req_q > lim_q {
        format!("must be less than or equal to {name} limit of {limit}")
    } else {
        return Vec::new();
    };
    vec![FieldError::invalid(path, request, &detail)]
}

fn entry_errors(name: &str, value: &str, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = name_errors(name, path);
    let format_errs = quantity_errors(value, path);
    if !format_errs.is_empty() {
        errs.extend(format_errs);
        return errs;
    }
    let Ok(q) = value.parse::<Quantity>() else {
        return errs;
    };
    if q.is_negative() {
        errs.push(FieldError::invalid(path, value, NON_NEGATIVE));
    }
    if is_integer_resource(name) && q.milli_value().is_some_and(|m| m % 1000 != 0) {
        errs.push(FieldError::invalid(path, value, "must be an integer"));
    }
    if name.starts_with(HUGEPAGES_PREFIX) && !hugepages_divisible(name, &q) {
        let detail = format!("{value} is not positive integer multiple of {name}");
        errs.push(FieldError::invalid(path, value, &detail));
    }
    errs
}

/// validateContainerResourceName (after validateResourceName).
pub fn name_errors(name: &str, path: &FieldPath) -> Vec<FieldError> {
    let qualified = names::qualified_name(name);
    let mut errs: Vec<FieldError> = qualified
        .iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect();
    let bare = !name.contains('/');
    if qualified.is_empty() && bare && !is_standard_resource(name) {
        let detail = "must be a standard resource type or fully qualified";
        errs.push(FieldError::invalid(path, name, detail));
    }
    if bare && !is_standard_container_resource(name) {
        let detail = "must be a standard resource for containers";
        errs.push(FieldError::invalid(path, name, detail));
    } else if !is_native(name) && !is_extended(name) {
        let detail = "doesn't follow extended resource name standard";
        errs.push(FieldError::invalid(path, name, detail));
    }
    errs
}

fn is_standard_resource(name: &str) -> bool {
    STANDARD_RESOURCES.contains(&name)
        || name.starts_with(HUGEPAGES_PREFIX)
        || name.starts_with("requests.hugepages-")
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with(HUGEPAGES_PREFIX)
}

/// No domain, or a `kubernetes.io/` one.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// IsExtendedResourceName: a domain-prefixed name that quota can address as `requests.<name>`.
fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && names::qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_integer_resource(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended(name)
}

/// Native resources other than hugepages may be requested below their limit.
fn is_overcommit_allowed(name: &str) -> bool {
    is_native(name) && !name.starts_with(HUGEPAGES_PREFIX)
}

/// IsHugePageResourceValueDivisible: a whole number of pages of the size in the name.
fn hugepages_divisible(name: &str, q: &Quantity) -> bool {
    let page = name[HUGEPAGES_PREFIX.len()..].parse::<Quantity>();
    let Ok(page) = page else { return false };
    let whole_page = page.milli_value().is_some_and(|m| m > 0 && m % 1000 == 0);
    match (whole_page, q.value(), page.value()) {
        (true, Some(value), Some(size)) => value % size == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn check(limits: Value, requests: Value) -> Vec<String> {
        let limits: ResourceList = serde_json::from_value(limits).unwrap();
        let requests: ResourceList = serde_json::from_value(requests).unwrap();
        let path = FieldPath::new("spec")
            .child("containers")
            .index(0)
            .child("resources");
        validate_resources(Some(&limits), Some(&requests), &path)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn cpu_and_memory_within_limits_pass() {
        let errs = check(
            json!({"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"}),
            json!({"cpu": "500m", "memory": "1073741824"}),
        );
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn request_above_limit() {
        assert_eq!(
            check(json!({"memory": "1Gi"}), json!({"memory": "2Gi"})),
            vec![
                r#"spec.containers[0].resources.requests: Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi"#
            ]
        );
    }

    #[test]
    fn negative_quantities() {
        assert_eq!(
            check(json!({"cpu": "-1"}), json!({})),
            vec![
                r#"spec.containers[0].resources.limits[cpu]: Invalid value: "-1": must be greater than or equal to 0"#
            ]
        );
    }

    #[test]
    fn resource_names() {
        assert_eq!(
            check(
                json!({"gpu": "1", "pods": "1", "example.com/dev": "1", "Bad_Domain/x": "1"}),
                json!({})
            ),
            vec![
                r#"spec.containers[0].resources.limits[Bad_Domain/x]: Invalid value: "Bad_Domain/x": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.containers[0].resources.limits[Bad_Domain/x]: Invalid value: "Bad_Domain/x": doesn't follow extended resource name standard"#,
                r#"spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource type or fully qualified"#,
                r#"spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource for containers"#,
                r#"spec.containers[0].resources.limits[pods]: Invalid value: "pods": must be a standard resource for containers"#,
            ]
        );
    }

    #[test]
    fn extended_resources_are_whole_and_equal() {
        assert_eq!(
            check(
                json!({"example.com/dev": "2"}),
                json!({"example.com/dev": "500m"})
            ),
            vec![
                r#"spec.containers[0].resources.requests[example.com/dev]: Invalid value: "500m": must be an integer"#,
                r#"spec.containers[0].resources.requests: Invalid value: "500m": must be equal to example.com/dev limit of 2"#,
            ]
        );
        assert_eq!(
            check(json!({"memory": "1Gi"}), json!({"example.com/dev": "1"})),
            vec!["spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"]
        );
    }

    #[test]
    fn hugepages_rules() {
        assert_eq!(
            check(
                json!({"hugepages-2Mi": "3Mi"}),
                json!({"hugepages-2Mi": "3Mi"})
            ),
            vec![
                r#"spec.containers[0].resources.limits[hugepages-2Mi]: Invalid value: "3Mi": 3Mi is not positive integer multiple of hugepages-2Mi"#,
                r#"spec.containers[0].resources.requests[hugepages-2Mi]: Invalid value: "3Mi": 3Mi is not positive integer multiple of hugepages-2Mi"#,
                "spec.containers[0].resources: Forbidden: HugePages require cpu or memory",
            ]
        );
        assert!(check(json!({"hugepages-2Mi": "4Mi", "memory": "1Gi"}), json!({})).is_empty());
    }
}
