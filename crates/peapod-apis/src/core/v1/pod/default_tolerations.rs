//! kube-apiserver's DefaultTolerationSeconds admission plugin: a new pod that does not already
//! tolerate them gets NoExecute tolerations of `node.kubernetes.io/not-ready` and
//! `node.kubernetes.io/unreachable` for 300 seconds, so a node going bad evicts it after five
//! minutes rather than at once.

use k8s_openapi::api::core::v1::{Pod, Toleration};
use peapod_apiserver::admission::{Admission, NewObject};
use peapod_apiserver::status::ApiError;
use peapod_store::Store;
use serde_json::{json, Value};

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// kube's `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`.
const DEFAULT_SECONDS: i64 = 300;

pub struct DefaultTolerationSeconds;

impl Admission for DefaultTolerationSeconds {
    fn admit_create(&self, new: NewObject<'_>, _store: &Store) -> Result<(), ApiError> {
        if new.kind.group.is_empty() && new.resource == "pods" {
            add_default_tolerations(new.object);
        }
        Ok(())
    }
}

fn add_default_tolerations(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if tolerations.is_null() {
        *tolerations = json!([]);
    }
    let Some(tolerations) = tolerations.as_array_mut() else {
        return;
    };
    for key in [NOT_READY, UNREACHABLE] {
        if !tolerations.iter().any(|t| tolerates_no_execute_of(t, key)) {
            tolerations.push(json!({
                "key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_SECONDS,
            }));
        }
    }
}

/// The plugin on update: a pod update that leaves out the default tolerations the pod was given
/// keeps them (kube's plugin adds them again to the updated pod; status writes, which kube's
/// plugin skips, never drop them here either, as they keep the spec).
pub fn keep_on_update(new: &mut Pod, old: &Pod) {
    let old_tolerations = old.spec.as_ref().and_then(|s| s.tolerations.as_ref());
    let Some(spec) = new.spec.as_mut() else {
        return;
    };
    for key in [NOT_READY, UNREACHABLE] {
        let given = old_tolerations
            .into_iter()
            .flatten()
            .find(|t| is_default_of(t, key));
        let tolerated = spec.tolerations.iter().flatten().any(|t| {
            covers_no_execute_of(
                t.key.as_deref().unwrap_or(""),
                t.effect.as_deref().unwrap_or(""),
                key,
            )
        });
        if let (Some(given), false) = (given, tolerated) {
            spec.tolerations
                .get_or_insert_with(Vec::new)
                .push(given.clone());
        }
    }
}

fn is_default_of(toleration: &Toleration, key: &str) -> bool {
    toleration.key.as_deref() == Some(key)
        && toleration.operator.as_deref() == Some("Exists")
        && toleration.effect.as_deref() == Some("NoExecute")
        && toleration.toleration_seconds == Some(DEFAULT_SECONDS)
}

fn tolerates_no_execute_of(toleration: &Value, key: &str) -> bool {
    let field = |name: &str| toleration.get(name).and_then(Value::as_str).unwrap_or("");
    covers_no_execute_of(field("key"), field("effect"), key)
}

/// kube's test: a toleration of `toleration_key` (none: every key) and `effect` (none: every
/// effect) covers the NoExecute taint `key`.
fn covers_no_execute_of(toleration_key: &str, effect: &str, key: &str) -> bool {
    (toleration_key == key || toleration_key.is_empty()) && matches!(effect, "NoExecute" | "")
}

/// Cases of kube's defaulttolerationseconds admission_test.go.
#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(tolerations: Value) -> Value {
        let mut pod = json!({"spec": {"containers": [], "tolerations": tolerations}});
        add_default_tolerations(&mut pod);
        pod["spec"]["tolerations"].clone()
    }

    fn default_of(key: &str) -> Value {
        json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    }

    #[test]
    fn a_pod_without_tolerations_gets_both() {
        assert_eq!(
            admitted(Value::Null),
            json!([default_of(NOT_READY), default_of(UNREACHABLE)])
        );
    }

    #[test]
    fn an_existing_toleration_of_either_key_is_kept_alone() {
        let own = json!({"key": NOT_READY, "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 60});
        assert_eq!(
            admitted(json!([own.clone()])),
            json!([own, default_of(UNREACHABLE)])
        );
        let unrelated = json!({"key": "foo", "operator": "Equal", "value": "bar",
                               "effect": "NoSchedule"});
        assert_eq!(
            admitted(json!([unrelated.clone()])),
            json!([unrelated, default_of(NOT_READY), default_of(UNREACHABLE)])
        );
    }

    #[test]
    fn an_update_leaving_them_out_keeps_the_ones_given() {
        let old: Pod = serde_json::from_value(json!({"spec": {"containers": [],
            "tolerations": [default_of(NOT_READY), default_of(UNREACHABLE)]}}))
        .unwrap();
        let mut new: Pod = serde_json::from_value(json!({"spec": {"containers": []}})).unwrap();
        keep_on_update(&mut new, &old);
        assert_eq!(
            serde_json::to_value(&new.spec.unwrap().tolerations).unwrap(),
            json!([default_of(NOT_READY), default_of(UNREACHABLE)])
        );
        let never_given: Pod = serde_json::from_value(json!({"spec": {"containers": []}})).unwrap();
        let mut new: Pod = serde_json::from_value(json!({"spec": {"containers": []}})).unwrap();
        keep_on_update(&mut new, &never_given);
        assert!(new.spec.unwrap().tolerations.is_none());
    }

    #[test]
    fn a_toleration_of_every_taint_or_every_effect_covers_them() {
        let everything = json!({"operator": "Exists"});
        assert_eq!(admitted(json!([everything.clone()])), json!([everything]));
        let any_effect = json!({"key": UNREACHABLE, "operator": "Exists"});
        assert_eq!(
            admitted(json!([any_effect.clone()])),
            json!([any_effect, default_of(NOT_READY)])
        );
        let no_schedule_only = json!({"operator": "Exists", "effect": "NoSchedule"});
        assert_eq!(
            admitted(json!([no_schedule_only.clone()])),
            json!([
                no_schedule_only,
                default_of(NOT_READY),
                default_of(UNREACHABLE)
            ])
        );
    }
}
