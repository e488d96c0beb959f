//! kube-apiserver's Priority admission plugin: a new pod gets the priority (and preemption
//! policy) of the class it names, or of the global default class, or 0; a class it names must
//! exist, and a priority or policy it gives must agree with the class. Only one class may be
//! the global default.

use k8s_openapi::api::scheduling::v1::PriorityClass;
use peapod_apiserver::admission::{Admission, NewObject, Update};
use peapod_apiserver::status::ApiError;
use peapod_store::Store;
use serde_json::{json, Value};

use super::PREEMPT_LOWER_PRIORITY;

const GROUP: &str = "scheduling.k8s.io";
const RESOURCE: &str = "priorityclasses";

pub struct PriorityAdmission;

impl Admission for PriorityAdmission {
    fn admit_create(&self, new: NewObject<'_>, store: &Store) -> Result<(), ApiError> {
        match (new.kind.group.as_str(), new.resource) {
            ("", "pods") => {
                let classes = store.list::<PriorityClass>(None)?;
                let admitted = admit_pod(new.object, &classes);
                admitted.map_err(|why| new.forbidden(&why))
            }
            (GROUP, RESOURCE) => {
                let classes = store.list::<PriorityClass>(None)?;
                second_default(new.object, &classes, false)
                    .map_or(Ok(()), |why| Err(new.forbidden(&why)))
            }
            _ => Ok(()),
        }
    }

    fn validate_update(&self, update: Update<'_>, store: &Store) -> Result<(), ApiError> {
        if update.kind.group != GROUP || update.resource != RESOURCE || update.subresource.is_some()
        {
            return Ok(());
        }
        let classes = store.list::<PriorityClass>(None)?;
        match second_default(update.object, &classes, true) {
            Some(why) => Err(update.forbidden(&why)),
            None => Ok(()),
        }
    }
}

/// kube's `getDefaultPriorityClass`: of the global defaults (several after a race), the one
/// of lowest value.
pub fn default_class(classes: &[PriorityClass]) -> Option<&PriorityClass> {
    classes
        .iter()
        .filter(|c| c.global_default == Some(true))
        .min_by_key(|c| c.value)
}

/// kube's `admitPod` on create: the pod's spec resolved against `classes`, or why not.
pub fn admit_pod(pod: &mut Value, classes: &[PriorityClass]) -> Result<(), String> {
    let spec = &mut pod["spec"];
    let named = spec["priorityClassName"].as_str().unwrap_or_default();
    let (class_name, priority, policy) = if named.is_empty() {
        match default_class(classes) {
            Some(class) => (
                class.metadata.name.clone().unwrap_or_default(),
                class.value,
                class.preemption_policy.clone(),
            ),
            None => (String::new(), 0, Some(PREEMPT_LOWER_PRIORITY.to_owned())),
        }
    } else {
        let class = classes
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(named))
            .ok_or_else(|| format!("no PriorityClass with name {named} was found"))?;
        (
            named.to_owned(),
            class.value,
            class.preemption_policy.clone(),
        )
    };
    if !class_name.is_empty() {
        spec["priorityClassName"] = json!(class_name);
    }
    if let Some(given) = spec["priority"]
        .as_i64()
        .filter(|p| *p != i64::from(priority))
    {
        return Err(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; \
             priority admission controller computed {priority} from the given PriorityClass name"
        ));
    }
    spec["priority"] = json!(priority);
    if let Some(policy) = policy {
        if let Some(given) = spec["preemptionPolicy"].as_str().filter(|p| *p != policy) {
            return Err(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod \
                 spec; priority admission controller computed {policy} from the given \
                 PriorityClass name"
            ));
        }
        spec["preemptionPolicy"] = json!(policy);
    }
    Ok(())
}

/// kube's `validatePriorityClass`: a class made the global default while another is.
fn second_default(class: &Value, classes: &[PriorityClass], update: bool) -> Option<String> {
    if class["globalDefault"].as_bool() != Some(true) {
        return None;
    }
    let current = default_class(classes)?;
    let current_name = current.metadata.name.as_deref().unwrap_or_default();
    if update && class["metadata"]["name"].as_str() == Some(current_name) {
        return None;
    }
    Some(format!(
        "PriorityClass {current_name} is already marked as default. Only one default can exist"
    ))
}

/// kube's `TestPodAdmission` and `TestPriorityClassAdmission`, the cases that apply.
#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, value: i32, global_default: bool, policy: &str) -> PriorityClass {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "value": value,
            "globalDefault": global_default,
            "preemptionPolicy": policy,
        }))
        .unwrap()
    }

    fn admitted(spec: Value, classes: &[PriorityClass]) -> Result<Value, String> {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": spec});
        admit_pod(&mut pod, classes).map(|()| pod["spec"].clone())
    }

    #[test]
    fn a_pod_gets_its_class_s_priority_and_policy() {
        let classes = [class("high", 1000, false, "Never")];
        let spec = admitted(json!({"priorityClassName": "high"}), &classes).unwrap();
        assert_eq!(spec["priority"], 1000);
        assert_eq!(spec["preemptionPolicy"], "Never");
        assert_eq!(
            admitted(json!({"priorityClassName": "foo"}), &classes).unwrap_err(),
            "no PriorityClass with name foo was found"
        );
    }

    #[test]
    fn a_pod_without_class_gets_the_lowest_default_or_zero() {
        let none = admitted(json!({}), &[]).unwrap();
        assert_eq!(none["priority"], 0);
        assert_eq!(none["preemptionPolicy"], PREEMPT_LOWER_PRIORITY);
        assert!(none.get("priorityClassName").is_none());
        let classes = [
            class("default1", 100, true, PREEMPT_LOWER_PRIORITY),
            class("default2", 50, true, "Never"),
        ];
        let spec = admitted(json!({}), &classes).unwrap();
        assert_eq!(spec["priorityClassName"], "default2");
        assert_eq!(spec["priority"], 50);
        assert_eq!(spec["preemptionPolicy"], "Never");
    }

    #[test]
    fn a_given_priority_or_policy_must_agree_with_the_class() {
        let classes = [class("high", 1000, false, PREEMPT_LOWER_PRIORITY)];
        assert!(admitted(
            json!({"priorityClassName": "high", "priority": 1000}),
            &classes
        )
        .is_ok());
        assert_eq!(
            admitted(
                json!({"priorityClassName": "high", "priority": 10}),
                &classes
            )
            .unwrap_err(),
            "the integer value of priority (10) must not be provided in pod spec; priority \
             admission controller computed 1000 from the given PriorityClass name"
        );
        assert_eq!(
            admitted(
                json!({"priorityClassName": "high", "preemptionPolicy": "Never"}),
                &classes
            )
            .unwrap_err(),
            "the string value of PreemptionPolicy (Never) must not be provided in pod spec; \
             priority admission controller computed PreemptLowerPriority from the given \
             PriorityClass name"
        );
    }

    #[test]
    fn only_one_class_is_the_default() {
        let classes = [class("default1", 100, true, PREEMPT_LOWER_PRIORITY)];
        let second = json!({"metadata": {"name": "default2"}, "globalDefault": true});
        assert_eq!(
            second_default(&second, &classes, false).as_deref(),
            Some("PriorityClass default1 is already marked as default. Only one default can exist")
        );
        assert!(second_default(&second, &classes, true).is_some());
        let same = json!({"metadata": {"name": "default1"}, "globalDefault": true});
        assert!(second_default(&same, &classes, true).is_none());
        let plain = json!({"metadata": {"name": "other"}, "globalDefault": false});
        assert!(second_default(&plain, &classes, false).is_none());
        assert!(second_default(&second, &[], false).is_none());
    }
}
