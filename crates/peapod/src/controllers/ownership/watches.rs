//! The controllers an owned object's change concerns, as kube's event handlers map them onto
//! the work queue: its controller when of the watching kind, none when another kind's; for an
//! orphan still alive, the controllers of its namespace whose selector matches it (to adopt
//! it), skipping empty selectors as kube's listers do.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Resource;

use super::claims::{controlled_by_kind, controller_of};
use super::selecting::{selector_of, Selecting};

/// The controller of kind `K` that `meta` names, if it names one of that kind.
pub fn controller_ref_of<K: Resource<DynamicType = ()>>(meta: &ObjectMeta) -> Option<ObjectRef<K>> {
    let owner = controller_of(meta)?;
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    controlled_by_kind::<K>(meta).then(|| ObjectRef::new(&owner.name).within(namespace))
}

/// The controllers of kind `K` in `cache` that the change of `object` concerns (an invalid
/// selector selects nothing).
pub fn controllers_to_sync<K, O>(cache: &Store<K>, object: &O) -> Vec<ObjectRef<K>>
where
    K: Selecting + Clone,
    O: Resource,
{
    let meta = object.meta();
    if controller_of(meta).is_some() {
        return controller_ref_of(meta).into_iter().collect();
    }
    if meta.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let namespace = meta.namespace.as_deref();
    let labels = meta.labels.clone().unwrap_or_default();
    cache
        .state()
        .iter()
        .filter(|candidate| candidate.meta().namespace.as_deref() == namespace)
        .filter(|candidate| {
            selector_of(candidate.as_ref()).is_ok_and(|s| !s.is_empty() && s.matches(&labels))
        })
        .map(|candidate| ObjectRef::from_obj(candidate.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::{reflector, watcher};
    use serde_json::json;

    use super::*;

    fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).expect("a valid object")
    }

    fn replica_set(namespace: &str, name: &str, selector: serde_json::Value) -> ReplicaSet {
        object(json!({
            "metadata": {"namespace": namespace, "name": name, "uid": format!("{name}-uid")},
            "spec": {"selector": selector},
        }))
    }

    fn pod(app: &str, owner: Option<(&str, &str)>, deleting: bool) -> Pod {
        let mut pod: Pod = object(json!({
            "metadata": {"namespace": "team", "name": "p", "labels": {"app": app}},
        }));
        if let Some((kind, name)) = owner {
            pod.metadata.owner_references = Some(vec![object(json!({
                "apiVersion": if kind == "ReplicaSet" { "apps/v1" } else { "batch/v1" },
                "kind": kind, "name": name, "uid": "u", "controller": true,
            }))]);
        }
        if deleting {
            pod.metadata.deletion_timestamp = Some(object(json!("2026-01-01T00:00:00Z")));
        }
        pod
    }

    #[test]
    fn objects_trigger_their_controller_and_orphans_the_controllers_that_select_them() {
        let (cache, mut writer) = reflector::store::<ReplicaSet>();
        for rs in [
            replica_set("team", "web", json!({"matchLabels": {"app": "web"}})),
            replica_set("team", "other", json!({"matchLabels": {"app": "db"}})),
            replica_set("team", "everything", json!({})),
            replica_set("elsewhere", "web", json!({"matchLabels": {"app": "web"}})),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(rs));
        }
        let names = |pod: &Pod| -> Vec<String> {
            controllers_to_sync(&cache, pod)
                .iter()
                .map(|r| format!("{}/{}", r.namespace.clone().unwrap_or_default(), r.name))
                .collect()
        };
        assert_eq!(
            names(&pod("db", Some(("ReplicaSet", "web")), false)),
            ["team/web"]
        );
        assert!(names(&pod("web", Some(("Job", "batch")), false)).is_empty());
        assert_eq!(names(&pod("web", None, false)), ["team/web"]);
        assert!(names(&pod("web", None, true)).is_empty());
        assert!(names(&pod("cache", None, false)).is_empty());
    }
}
