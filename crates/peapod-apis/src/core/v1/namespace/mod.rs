//! Namespace: cluster-scoped, a DNS-1123 label name, `Active` at creation with the
//! `kubernetes` finalizer; deletion marks it and the namespace controller empties and removes it.

use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};
use peapod_api::validation::{names, ErrorKind, FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, DeleteDecision, Kind, KindStrategy};
use peapod_apiserver::status::ApiError;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

/// The label kube-apiserver gives every namespace, holding its name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The finalizer that keeps a namespace until its content is gone.
pub const FINALIZER: &str = "kubernetes";

/// The namespaces kube-apiserver's NamespaceLifecycle admission never lets go.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// Namespaces have no deletecollection, as in kube-apiserver.
const VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

pub fn kind() -> Kind {
    Kind::of(NamespaceStrategy)
        .short_names(&["ns"])
        .verbs(VERBS)
        .with_status()
}

pub struct NamespaceStrategy;

impl KindStrategy for NamespaceStrategy {
    type Object = Namespace;

    /// Every namespace carries its name as a label, as kube-apiserver sets it.
    fn default(&self, namespace: &mut Namespace) {
        if let Some(name) = namespace.metadata.name.clone().filter(|n| !n.is_empty()) {
            let labels = namespace
                .metadata
                .labels
                .get_or_insert_with(Default::default);
            labels.insert(NAME_LABEL.to_owned(), name);
        }
    }

    fn prepare_for_create(&self, namespace: &mut Namespace) {
        namespace.status = Some(NamespaceStatus {
            phase: Some("Active".into()),
            ..Default::default()
        });
        let spec = namespace.spec.get_or_insert_with(NamespaceSpec::default);
        let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == FINALIZER) {
            finalizers.push(FINALIZER.into());
        }
    }

    fn prepare_for_update(&self, new: &mut Namespace, old: &Namespace) {
        // spec.finalizers change only through the finalize subresource.
        new.spec.clone_from(&old.spec);
    }

    /// ObjectMeta rules, with a DNS-1123 label for a name rather than a subdomain.
    fn validate(&self, namespace: &Namespace) -> Vec<FieldError> {
        let name = namespace.metadata.name.clone().unwrap_or_default();
        let name_path = FieldPath::new("metadata").child("name");
        let mut errors: Vec<FieldError> = validate_meta(namespace, false)
            .into_iter()
            .filter(|e| !(e.path == "metadata.name" && e.kind == ErrorKind::Invalid))
            .collect();
        if !name.is_empty() {
            errors.extend(
                names::dns1123_label(&name)
                    .iter()
                    .map(|msg| FieldError::invalid(&name_path, name.as_str(), msg)),
            );
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Status", "string", "The status of the namespace"),
            AGE,
        ]
    }

    fn cells(&self, namespace: &Namespace) -> Vec<Value> {
        let phase = namespace.status.as_ref().and_then(|s| s.phase.clone());
        vec![
            name_cell(&namespace.metadata),
            json!(phase),
            age_cell(&namespace.metadata),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.phase"]
    }

    fn field(&self, namespace: &Namespace, label: &str) -> Option<String> {
        match label {
            "status.phase" => namespace.status.as_ref().and_then(|s| s.phase.clone()),
            _ => None,
        }
    }

    /// kube-apiserver's NamespaceLifecycle admission: the system namespaces stay (dry runs
    /// included, admission coming first).
    fn admit_delete(&self, name: &str) -> Result<(), ApiError> {
        if !IMMORTAL_NAMESPACES.contains(&name) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        ))
        .with_details(json!({"name": name, "kind": "namespaces"})))
    }

    /// Marked, not removed: the namespace controller deletes its content first.
    fn delete(&self, _namespace: &Namespace, _grace: Option<i64>) -> DeleteDecision {
        DeleteDecision::Finalize
    }

    fn mark_deleting(&self, namespace: &mut Namespace) {
        namespace.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
    }

    /// kube's `ShouldDeleteNamespaceDuringUpdate`: its own `spec.finalizers` keep a namespace
    /// too, until the namespace controller has emptied it and takes them away.
    fn should_delete_during_update(&self, new: &Namespace, _old: &Namespace) -> bool {
        new.spec
            .as_ref()
            .and_then(|spec| spec.finalizers.as_ref())
            .is_none_or(Vec::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_finalizers(finalizers: Option<Vec<String>>) -> Namespace {
        Namespace {
            spec: Some(NamespaceSpec { finalizers }),
            ..Namespace::default()
        }
    }

    #[test]
    fn spec_finalizers_keep_a_namespace_whose_last_finalizer_goes() {
        let strategy = NamespaceStrategy;
        let old = with_finalizers(Some(vec![FINALIZER.into()]));
        assert!(!strategy.should_delete_during_update(&old, &old));
        for emptied in [None, Some(Vec::new())] {
            assert!(strategy.should_delete_during_update(&with_finalizers(emptied), &old));
        }
        assert!(strategy.should_delete_during_update(&Namespace::default(), &old));
    }
}
