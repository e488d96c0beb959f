//! kube-apiserver's DefaultIngressClass admission plugin: a new Ingress that names no class
//! (neither `spec.ingressClassName` nor the `kubernetes.io/ingress.class` annotation) gets
//! the default IngressClass, the newest when several claim to be.

use k8s_openapi::api::networking::v1::IngressClass;
use peapod_apiserver::admission::{Admission, NewObject};
use peapod_apiserver::status::ApiError;
use peapod_store::Store;
use serde_json::{json, Value};

use super::CLASS_ANNOTATION;
use crate::networking::v1::ingressclass::is_default_class;

const GROUP: &str = "networking.k8s.io";

pub struct DefaultIngressClass;

impl Admission for DefaultIngressClass {
    fn admit_create(&self, new: NewObject<'_>, store: &Store) -> Result<(), ApiError> {
        if new.kind.group != GROUP || new.resource != "ingresses" || names_a_class(new.object) {
            return Ok(());
        }
        let classes = store.list::<IngressClass>(None)?;
        if let Some(class) = newest_default(&classes) {
            new.object["spec"]["ingressClassName"] = json!(class);
        }
        Ok(())
    }
}

fn names_a_class(ingress: &Value) -> bool {
    let annotated = ingress["metadata"]["annotations"]
        .get(CLASS_ANNOTATION)
        .is_some();
    annotated || !ingress["spec"]["ingressClassName"].is_null()
}

/// kube's `GetDefaultClass` for IngressClasses: the newest default, by name when created
/// together.
pub fn newest_default(classes: &[IngressClass]) -> Option<String> {
    crate::default_class::newest_default(classes.iter().map(|c| &c.metadata), is_default_class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, default: bool, created: &str) -> IngressClass {
        serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "creationTimestamp": created,
                "annotations": {"ingressclass.kubernetes.io/is-default-class": default.to_string()},
            },
            "spec": {"controller": "peapod.io/ingress-controller"},
        }))
        .unwrap()
    }

    #[test]
    fn the_newest_default_class_wins() {
        let classes = [
            class("old", true, "2024-01-01T00:00:00Z"),
            class("new", true, "2024-02-01T00:00:00Z"),
            class("plain", false, "2024-03-01T00:00:00Z"),
        ];
        assert_eq!(newest_default(&classes).as_deref(), Some("new"));
        assert_eq!(newest_default(&classes[2..]), None);
    }

    #[test]
    fn a_named_or_annotated_class_is_kept() {
        assert!(names_a_class(&json!({"spec": {"ingressClassName": "x"}})));
        let annotated =
            json!({"metadata": {"annotations": {CLASS_ANNOTATION: "nginx"}}, "spec": {}});
        assert!(names_a_class(&annotated));
        assert!(!names_a_class(&json!({"metadata": {}, "spec": {}})));
    }
}
