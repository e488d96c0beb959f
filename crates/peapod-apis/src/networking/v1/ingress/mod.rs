//! networking.k8s.io/v1 Ingress (`ing`): served as kube-apiserver serves ingresses
//! (pkg/registry/networking/ingress): validation with kube's `ValidateIngress` messages, a
//! generation bumped by spec changes, an empty status on create, the `status` subresource and
//! kubectl's columns. [`admission`] is kube's DefaultIngressClass plugin.

pub mod admission;
mod table;
mod validation;

use k8s_openapi::api::networking::v1::Ingress;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::Column;
use serde_json::Value;

/// The annotation that named an Ingress's class before `spec.ingressClassName`.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

pub fn kind() -> Kind {
    Kind::of(IngressStrategy)
        .short_names(&["ing"])
        .with_status()
}

pub struct IngressStrategy;

impl KindStrategy for IngressStrategy {
    type Object = Ingress;

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, ingress: &mut Ingress) {
        ingress.status = None;
    }

    fn validate(&self, ingress: &Ingress) -> Vec<FieldError> {
        validation::validate(ingress, validation::Options::default())
    }

    fn validate_update(&self, new: &Ingress, old: &Ingress) -> Vec<FieldError> {
        validation::validate_update(new, old)
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, ingress: &Ingress) -> Vec<Value> {
        table::cells(ingress)
    }
}
