//! coordination.k8s.io/v1 Lease: namespaced, no status; validated as kube's `ValidateLease`
//! (a DNS-subdomain name, a positive duration, non-negative transitions, a known or qualified
//! coordinated strategy), printed as kubectl prints leases (NAME, HOLDER, AGE).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

/// The coordinated leader election strategies Kubernetes defines.
const LEASE_STRATEGIES: &[&str] = &["OldestEmulationVersion"];

pub fn kind() -> Kind {
    Kind::of(LeaseStrategy)
}

pub struct LeaseStrategy;

impl KindStrategy for LeaseStrategy {
    type Object = Lease;

    fn validate(&self, lease: &Lease) -> Vec<FieldError> {
        let mut errors = validate_meta(lease, true);
        if let Some(spec) = &lease.spec {
            errors.extend(validate_spec(spec, &FieldPath::new("spec")));
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new(
                "Holder",
                "string",
                "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
            ),
            AGE,
        ]
    }

    fn cells(&self, lease: &Lease) -> Vec<Value> {
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        vec![
            name_cell(&lease.metadata),
            json!(holder),
            age_cell(&lease.metadata),
        ]
    }
}

/// kube's `ValidateLeaseSpec`.
fn validate_spec(spec: &LeaseSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(seconds) = spec.lease_duration_seconds.filter(|s| *s <= 0) {
        let field = path.child("leaseDurationSeconds");
        errors.push(FieldError::invalid(
            &field,
            seconds,
            "must be greater than 0",
        ));
    }
    if let Some(transitions) = spec.lease_transitions.filter(|t| *t < 0) {
        let field = path.child("leaseTransitions");
        errors.push(FieldError::invalid(
            &field,
            transitions,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(strategy) = &spec.strategy {
        errors.extend(validate_strategy(strategy, &path.child("strategy")));
    }
    let strategy_set = spec.strategy.as_deref().is_some_and(|s| !s.is_empty());
    if spec
        .preferred_holder
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && !strategy_set
    {
        errors.push(FieldError::forbidden(
            &path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errors
}

/// kube's `ValidateCoordinatedLeaseStrategy`: a name Kubernetes defines, or a qualified name
/// with a prefix (`example.com/mine`). Its path repeats `strategy`, as kube's does.
fn validate_strategy(strategy: &str, path: &FieldPath) -> Vec<FieldError> {
    let field = path.child("strategy");
    if !strategy.contains('/') {
        if LEASE_STRATEGIES.contains(&strategy) {
            return Vec::new();
        }
        return vec![FieldError::not_supported(
            &field,
            strategy,
            LEASE_STRATEGIES,
        )];
    }
    peapod_api::validation::names::qualified_name(strategy)
        .into_iter()
        .map(|message| FieldError::invalid(&field, strategy, &message))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(spec: Value) -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn messages(lease: &Lease) -> Vec<String> {
        LeaseStrategy
            .validate(lease)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_node_lease_is_valid() {
        let valid = lease(
            json!({"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                                 "renewTime": "2025-01-01T00:00:00.000000Z"}),
        );
        assert!(messages(&valid).is_empty());
    }

    #[test]
    fn durations_transitions_and_strategies_are_checked_as_kube_does() {
        let bad = lease(json!({"leaseDurationSeconds": 0, "leaseTransitions": -1,
                               "preferredHolder": "a"}));
        assert_eq!(
            messages(&bad),
            [
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
                "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined",
            ]
        );
        let unknown = lease(json!({"strategy": "Newest"}));
        assert_eq!(
            messages(&unknown),
            [
                r#"spec.strategy.strategy: Unsupported value: "Newest": supported values: "OldestEmulationVersion""#
            ]
        );
        let custom = lease(json!({"strategy": "example.com/mine", "preferredHolder": "a"}));
        assert!(messages(&custom).is_empty());
    }

    #[test]
    fn the_table_shows_the_holder() {
        let row = LeaseStrategy.cells(&lease(json!({"holderIdentity": "node-1"})));
        assert_eq!(row[0], "node-1");
        assert_eq!(row[1], "node-1");
        assert_eq!(LeaseStrategy.cells(&lease(json!({})))[1], "");
    }
}
