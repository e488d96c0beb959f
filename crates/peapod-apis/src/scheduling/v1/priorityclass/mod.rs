//! scheduling.k8s.io/v1 PriorityClass: cluster-scoped (`pc`), preemptionPolicy
//! PreemptLowerPriority by default, validated as kube's `ValidatePriorityClass` (user values up
//! to one billion, the `system-` prefix kept for the two system classes), value and
//! preemptionPolicy immutable; the system classes may not be deleted. [`admission`] is kube's
//! Priority admission plugin.

pub mod admission;

use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::status::ApiError;
use peapod_apiserver::table::{age_cell, Column, AGE, NAME};
use serde_json::{json, Value};

/// `scheduling.HighestUserDefinablePriority`.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// `scheduling.SystemCriticalPriority`.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";
pub const SYSTEM_CLUSTER_CRITICAL: &str = "system-cluster-critical";
pub const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";
pub const PREEMPT_LOWER_PRIORITY: &str = "PreemptLowerPriority";
pub const PREEMPT_NEVER: &str = "Never";
const PREEMPTION_POLICIES: &[&str] = &[PREEMPT_LOWER_PRIORITY, PREEMPT_NEVER];

pub fn kind() -> Kind {
    Kind::of(PriorityClassStrategy).short_names(&["pc"])
}

/// kube's `SystemPriorityClasses`, as the API server creates them at start.
pub fn system_priority_classes() -> Vec<PriorityClass> {
    let class = |name: &str, value: i32, description: &str| PriorityClass {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        value,
        description: Some(description.to_owned()),
        preemption_policy: Some(PREEMPT_LOWER_PRIORITY.to_owned()),
        global_default: None,
    };
    vec![
        class(
            SYSTEM_NODE_CRITICAL,
            SYSTEM_CRITICAL_PRIORITY + 1000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        class(
            SYSTEM_CLUSTER_CRITICAL,
            SYSTEM_CRITICAL_PRIORITY,
            "Used for system critical pods that must run in the cluster, but can be moved to \
             another node if necessary.",
        ),
    ]
}

/// kube's `IsKnownSystemPriorityClass`: the name, value and globalDefault of a system class.
fn known_system_class(name: &str, value: i32, global_default: bool) -> Result<(), String> {
    let system = system_priority_classes();
    let Some(known) = system
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
    else {
        return Err(format!("{name} is not a known system priority class"));
    };
    if known.value != value {
        return Err(format!(
            "value of {name} PriorityClass must be {}",
            known.value
        ));
    }
    if known.global_default.unwrap_or(false) != global_default {
        return Err(format!(
            "globalDefault of {name} PriorityClass must be {}",
            known.global_default.unwrap_or(false)
        ));
    }
    Ok(())
}

pub struct PriorityClassStrategy;

impl KindStrategy for PriorityClassStrategy {
    type Object = PriorityClass;

    /// scheduling/v1's SetDefaults_PriorityClass.
    fn default(&self, class: &mut PriorityClass) {
        class
            .preemption_policy
            .get_or_insert_with(|| PREEMPT_LOWER_PRIORITY.to_owned());
    }

    fn validate(&self, class: &PriorityClass) -> Vec<FieldError> {
        let mut errors = validate_meta(class, false);
        let name = class.metadata.name.as_deref().unwrap_or_default();
        if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
            let global_default = class.global_default.unwrap_or(false);
            if let Err(why) = known_system_class(name, class.value, global_default) {
                let detail = format!(
                    "priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are \
                     reserved for system use only. error: {why}"
                );
                let path = FieldPath::new("metadata").child("name");
                errors.push(FieldError::forbidden(&path, &detail));
            }
        } else if class.value > HIGHEST_USER_DEFINABLE_PRIORITY {
            let detail = format!(
                "maximum allowed value of a user defined priority is \
                 {HIGHEST_USER_DEFINABLE_PRIORITY}"
            );
            errors.push(FieldError::forbidden(&FieldPath::new("value"), &detail));
        }
        if let Some(policy) = class.preemption_policy.as_deref() {
            errors.extend(validate_preemption_policy(
                policy,
                &FieldPath::new("preemptionPolicy"),
            ));
        }
        errors
    }

    /// kube's strategy: `ValidatePriorityClass`, then `ValidatePriorityClassUpdate`.
    fn validate_update(&self, new: &PriorityClass, old: &PriorityClass) -> Vec<FieldError> {
        let mut errors = self.validate(new);
        errors.extend(validate_object_meta_update(
            &new.metadata,
            &old.metadata,
            &FieldPath::new("metadata"),
        ));
        if new.value != old.value {
            let path = FieldPath::new("value");
            errors.push(FieldError::forbidden(
                &path,
                "may not be changed in an update.",
            ));
        }
        if new.preemption_policy != old.preemption_policy {
            errors.push(FieldError::invalid(
                &FieldPath::new("preemptionPolicy"),
                new.preemption_policy.as_deref(),
                "field is immutable",
            ));
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Value", "integer", "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec."),
            Column::new("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority."),
            AGE,
            Column::new("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.").wide(),
        ]
    }

    /// kubectl's printPriorityClass.
    fn cells(&self, class: &PriorityClass) -> Vec<Value> {
        vec![
            json!(class.metadata.name.clone().unwrap_or_default()),
            json!(class.value),
            json!(class.global_default.unwrap_or(false)),
            age_cell(&class.metadata),
            json!(class.preemption_policy.as_deref().unwrap_or_default()),
        ]
    }

    /// kube's priorityclass REST Delete: the system classes stay.
    fn admit_delete(&self, name: &str) -> Result<(), ApiError> {
        if !system_priority_classes()
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(name))
        {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "priorityclasses.scheduling.k8s.io \"{name}\" is forbidden: this is a system \
             priority class and cannot be deleted"
        ))
        .with_details(
            json!({"name": name, "group": "scheduling.k8s.io", "kind": "priorityclasses"}),
        ))
    }
}

/// kube's `ValidatePreemptionPolicy`.
pub fn validate_preemption_policy(policy: &str, path: &FieldPath) -> Vec<FieldError> {
    match policy {
        PREEMPT_LOWER_PRIORITY | PREEMPT_NEVER => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(path, other, PREEMPTION_POLICIES)],
    }
}

/// kube's `TestValidatePriorityClass`, `TestValidatePriorityClassUpdate` and the REST delete.
#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, value: i32) -> PriorityClass {
        let mut class = PriorityClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: Some("1".into()),
                ..ObjectMeta::default()
            },
            value,
            ..PriorityClass::default()
        };
        PriorityClassStrategy.default(&mut class);
        class
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn classes_are_defaulted_and_validated() {
        let high = class("tier1", 100);
        assert_eq!(
            high.preemption_policy.as_deref(),
            Some(PREEMPT_LOWER_PRIORITY)
        );
        assert!(PriorityClassStrategy.validate(&high).is_empty());
        for system in system_priority_classes() {
            assert!(PriorityClassStrategy.validate(&system).is_empty());
        }
        assert_eq!(
            messages(PriorityClassStrategy.validate(&class("tier1", 1_000_000_001))),
            ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
        );
        assert_eq!(
            messages(PriorityClassStrategy.validate(&class("system-something", 100))),
            ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved \
              for system use only. error: system-something is not a known system priority class"]
        );
        assert_eq!(
            messages(PriorityClassStrategy.validate(&class(SYSTEM_NODE_CRITICAL, 100))),
            ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved \
              for system use only. error: value of system-node-critical PriorityClass must be \
              2000001000"]
        );
        let mut odd = class("tier1", 1);
        odd.preemption_policy = Some("Sometimes".into());
        assert_eq!(
            messages(PriorityClassStrategy.validate(&odd)),
            [
                r#"preemptionPolicy: Unsupported value: "Sometimes": supported values: "PreemptLowerPriority", "Never""#
            ]
        );
    }

    #[test]
    fn value_and_preemption_policy_are_immutable() {
        let old = class("tier1", 100);
        let mut new = class("tier1", 200);
        new.preemption_policy = Some(PREEMPT_NEVER.into());
        new.description = Some("changed".into());
        assert_eq!(
            messages(PriorityClassStrategy.validate_update(&new, &old)),
            [
                "value: Forbidden: may not be changed in an update.",
                r#"preemptionPolicy: Invalid value: "Never": field is immutable"#,
            ]
        );
        let mut described = old.clone();
        described.description = Some("changed".into());
        assert!(PriorityClassStrategy
            .validate_update(&described, &old)
            .is_empty());
    }

    #[test]
    fn system_classes_may_not_be_deleted() {
        let err = PriorityClassStrategy
            .admit_delete(SYSTEM_NODE_CRITICAL)
            .unwrap_err();
        assert_eq!(
            err.message,
            "priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is \
             a system priority class and cannot be deleted"
        );
        assert!(PriorityClassStrategy.admit_delete("tier1").is_ok());
    }

    #[test]
    fn classes_print_as_kubectl_prints_them() {
        let cells = PriorityClassStrategy.cells(&class("tier1", 100));
        assert_eq!(cells[..3], [json!("tier1"), json!(100), json!(false)]);
        assert_eq!(cells[4], json!(PREEMPT_LOWER_PRIORITY));
    }
}
