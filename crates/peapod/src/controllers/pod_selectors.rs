//! Which selecting objects a pod's change concerns, as kube's
//! `GetServicesToUpdateOnPodChange` and the disruption controller's `updatePod`: those of its
//! namespace whose selector matches the pod's labels now or before its last change, so that a
//! relabelled pod also leaves the objects that selected it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

pub type Labels = BTreeMap<String, String>;

/// `controller`, triggered as well by every pod's change for the objects selecting the pod.
pub fn triggered_by_pods<K>(
    controller: Controller<K>,
    client: &Client,
    selects: fn(&K, &Labels) -> bool,
) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let cache = controller.store();
    let seen = SeenLabels::default();
    let pods = Api::<Pod>::all(client.clone());
    controller.watches(pods, watcher::Config::default(), move |pod| {
        selecting(&cache, &seen, &pod, selects)
    })
}

/// The labels each live pod had when last seen, by uid.
#[derive(Default)]
struct SeenLabels(Mutex<HashMap<String, Labels>>);

impl SeenLabels {
    /// Records `pod`'s labels (forgetting a pod being deleted), answering the ones before.
    fn replace(&self, pod: &Pod) -> Option<Labels> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match pod.metadata.deletion_timestamp {
            Some(_) => seen.remove(&uid),
            None => seen.insert(uid, pod.metadata.labels.clone().unwrap_or_default()),
        }
    }
}

/// The objects in `cache` that the change of `pod` concerns.
fn selecting<K>(
    cache: &Store<K>,
    seen: &SeenLabels,
    pod: &Pod,
    selects: fn(&K, &Labels) -> bool,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let before = seen.replace(pod).filter(|before| *before != labels);
    cache
        .state()
        .iter()
        .filter(|object| object.meta().namespace == pod.metadata.namespace)
        .filter(|object| {
            selects(object, &labels) || before.as_ref().is_some_and(|b| selects(object, b))
        })
        .map(|object| ObjectRef::from_obj(object.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{reflector, watcher};
    use serde_json::json;

    use super::*;

    /// ConfigMaps standing in for selecting objects: their data is their selector.
    fn selects(map: &ConfigMap, labels: &Labels) -> bool {
        let selector = map.data.clone().unwrap_or_default();
        selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    fn object<T: DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    fn names(refs: Vec<ObjectRef<ConfigMap>>) -> Vec<String> {
        let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    #[test]
    fn a_relabelled_pod_concerns_what_selected_it_before_and_now() {
        let (cache, mut writer) = reflector::store::<ConfigMap>();
        for (namespace, name, app) in [("a", "web", "web"), ("a", "db", "db"), ("b", "web", "web")]
        {
            writer.apply_watcher_event(&watcher::Event::Apply(object(json!({
                "metadata": {"namespace": namespace, "name": name},
                "data": {"app": app},
            }))));
        }
        let seen = SeenLabels::default();
        let pod = |app: &str| -> Pod {
            object(
                json!({"metadata": {"namespace": "a", "name": "p", "uid": "u1", "labels": {"app": app}}}),
            )
        };
        assert_eq!(
            names(selecting(&cache, &seen, &pod("web"), selects)),
            ["web"]
        );
        assert_eq!(
            names(selecting(&cache, &seen, &pod("db"), selects)),
            ["db", "web"]
        );
        assert_eq!(names(selecting(&cache, &seen, &pod("db"), selects)), ["db"]);
    }
}
