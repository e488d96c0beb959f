//! ServiceAccount: metadata rules, kubectl's columns and the `token` subresource
//! ([`token_request`], signed and checked by [`token`]), the legacy tokens of token Secrets
//! ([`legacy_token`]); [`admission`] is kube's ServiceAccount admission plugin for pods.

pub mod admission;
pub mod legacy_token;
pub mod token;
pub mod token_request;
pub mod token_volume;

use std::sync::Arc;

use k8s_openapi::api::core::v1::ServiceAccount;
use peapod_apiserver::registry::{Action, GroupVersionKind, Kind, KindStrategy, Subresource};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

pub fn kind(signer: Arc<token::TokenSigner>) -> Kind {
    Kind::of(ServiceAccountStrategy)
        .short_names(&["sa"])
        .subresource(Subresource {
            name: "token",
            response: GroupVersionKind::new("authentication.k8s.io", "v1", "TokenRequest"),
            verbs: &["create"],
        })
        .action(
            "token",
            Action::Answer(Arc::new(move |account, request, store| {
                token_request::answer(&signer, account, request, store)
            })),
        )
}

pub struct ServiceAccountStrategy;

impl KindStrategy for ServiceAccountStrategy {
    type Object = ServiceAccount;

    fn columns(&self) -> Vec<Column> {
        vec![NAME, Column::new("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), AGE]
    }

    fn cells(&self, account: &ServiceAccount) -> Vec<Value> {
        let secrets = account.secrets.as_ref().map_or(0, Vec::len);
        vec![
            name_cell(&account.metadata),
            json!(secrets),
            age_cell(&account.metadata),
        ]
    }
}
