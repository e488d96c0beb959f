//! networking.k8s.io/v1 IngressClass: cluster-scoped, validated as kube's
//! `ValidateIngressClass` (a domain-prefixed controller of at most 250 bytes, immutable;
//! parameters of a known scope), printed as kubectl prints classes (NAME CONTROLLER
//! PARAMETERS AGE).

use k8s_openapi::api::networking::v1::{IngressClass, IngressClassParametersReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{names, FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
const MAX_CONTROLLER_LEN: usize = 250;
const SCOPES: &[&str] = &["Cluster", "Namespace"];

pub fn kind() -> Kind {
    Kind::of(IngressClassStrategy)
}

/// kube's `IsDefaultIngressClass`.
pub fn is_default_class(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|value| value == "true")
}

pub struct IngressClassStrategy;

impl KindStrategy for IngressClassStrategy {
    type Object = IngressClass;

    fn validate(&self, class: &IngressClass) -> Vec<FieldError> {
        let mut errors = validate_meta(class, false);
        let spec = class.spec.clone().unwrap_or_default();
        let controller_path = FieldPath::new("spec").child("controller");
        match spec.controller.as_deref().unwrap_or_default() {
            "" => errors.push(FieldError::required(&controller_path, "")),
            controller => {
                if controller.len() > MAX_CONTROLLER_LEN {
                    errors.push(FieldError::too_long(&controller_path, MAX_CONTROLLER_LEN));
                }
                errors.extend(domain_prefixed_path(&controller_path, controller));
            }
        }
        if let Some(parameters) = &spec.parameters {
            errors.extend(validate_parameters(parameters));
        }
        errors
    }

    fn validate_update(&self, new: &IngressClass, old: &IngressClass) -> Vec<FieldError> {
        let mut errors =
            validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
        let controller = |c: &IngressClass| c.spec.as_ref().and_then(|s| s.controller.clone());
        if controller(new) != controller(old) {
            errors.push(FieldError::invalid(
                &FieldPath::new("spec").child("controller"),
                controller(new).unwrap_or_default(),
                "field is immutable",
            ));
        }
        errors.extend(self.validate(new));
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new(
                "Controller",
                "string",
                "Controller that is responsible for handling this class",
            ),
            Column::new(
                "Parameters",
                "string",
                "A reference to a resource with additional parameters",
            ),
            AGE,
        ]
    }

    /// kubectl's printIngressClass.
    fn cells(&self, class: &IngressClass) -> Vec<Value> {
        let spec = class.spec.clone().unwrap_or_default();
        let parameters = spec.parameters.map_or("<none>".to_owned(), |p| {
            let group = p.api_group.map(|g| format!(".{g}")).unwrap_or_default();
            format!("{}{group}/{}", p.kind, p.name)
        });
        vec![
            name_cell(&class.metadata),
            json!(spec.controller.unwrap_or_default()),
            json!(parameters),
            age_cell(&class.metadata),
        ]
    }
}

/// apimachinery's `IsDomainPrefixedPath`: `acme.io/foo`.
pub fn domain_prefixed_path(path: &FieldPath, value: &str) -> Vec<FieldError> {
    let Some((host, rest)) = value
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        let detail = "must be a domain-prefixed path (such as \"acme.io/foo\")";
        return vec![FieldError::invalid(path, value, detail)];
    };
    let mut errors: Vec<FieldError> = names::dns1123_subdomain(host)
        .iter()
        .map(|msg| FieldError::invalid(path, host, msg))
        .collect();
    let path_chars = |c: char| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c);
    if !rest.chars().all(path_chars) {
        errors.push(FieldError::invalid(path, rest, "Invalid path"));
    }
    errors
}

/// kube's `validateIngressClassParametersReference`.
fn validate_parameters(params: &IngressClassParametersReference) -> Vec<FieldError> {
    let path = FieldPath::new("spec").child("parameters");
    let mut errors = Vec::new();
    if let Some(group) = &params.api_group {
        for msg in names::dns1123_subdomain(group) {
            errors.push(FieldError::invalid(&path.child("apiGroup"), group, &msg));
        }
    }
    for (field, value) in [("kind", &params.kind), ("name", &params.name)] {
        errors.extend(path_segment_name(&path.child(field), value));
    }
    let Some(scope) = params.scope.as_deref() else {
        errors.push(FieldError::required(&path.child("scope"), ""));
        return errors;
    };
    match (scope, &params.namespace) {
        ("Namespace", None) => errors.push(FieldError::required(
            &path.child("namespace"),
            "`parameters.scope` is set to 'Namespace'",
        )),
        ("Namespace", Some(namespace)) => {
            for msg in names::dns1123_label(namespace) {
                errors.push(FieldError::invalid(
                    &path.child("namespace"),
                    namespace,
                    &msg,
                ));
            }
        }
        ("Cluster", Some(_)) => errors.push(FieldError::forbidden(
            &path.child("namespace"),
            "`parameters.scope` is set to 'Cluster'",
        )),
        ("Cluster", None) => {}
        (other, _) => errors.push(FieldError::not_supported(
            &path.child("scope"),
            other,
            SCOPES,
        )),
    }
    errors
}

/// apimachinery's `IsPathSegmentName`, and required when empty.
pub fn path_segment_name(path: &FieldPath, value: &str) -> Vec<FieldError> {
    if value.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    if value == "." || value == ".." {
        return vec![FieldError::invalid(
            path,
            value,
            &format!("may not be '{value}'"),
        )];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| value.contains(*bad))
        .map(|bad| FieldError::invalid(path, value, &format!("may not contain '{bad}'")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(controller: &str) -> IngressClass {
        serde_json::from_value(json!({
            "metadata": {"name": "peapod"},
            "spec": {"controller": controller},
        }))
        .unwrap()
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_controller_is_a_domain_prefixed_path() {
        assert!(IngressClassStrategy
            .validate(&class("peapod.io/ingress"))
            .is_empty());
        assert_eq!(
            messages(IngressClassStrategy.validate(&class("nginx"))),
            ["spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"]
        );
        assert_eq!(
            messages(IngressClassStrategy.validate(&class(""))),
            ["spec.controller: Required value"]
        );
    }

    #[test]
    fn the_controller_is_immutable() {
        let errors = IngressClassStrategy.validate_update(&class("a.io/x"), &class("b.io/x"));
        assert_eq!(
            messages(errors),
            ["spec.controller: Invalid value: \"a.io/x\": field is immutable"]
        );
    }

    #[test]
    fn parameters_print_as_kind_group_and_name() {
        let mut with_params = class("a.io/x");
        with_params.spec.as_mut().unwrap().parameters = Some(IngressClassParametersReference {
            api_group: Some("k8s.example.com".into()),
            kind: "IngressParameters".into(),
            name: "external-lb".into(),
            scope: Some("Cluster".into()),
            namespace: None,
        });
        let cells = IngressClassStrategy.cells(&with_params);
        assert_eq!(
            cells[2],
            json!("IngressParameters.k8s.example.com/external-lb")
        );
        assert_eq!(
            IngressClassStrategy.cells(&class("a.io/x"))[2],
            json!("<none>")
        );
    }
}
