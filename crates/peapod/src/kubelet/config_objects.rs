//! The ConfigMaps and Secrets that pods consume, held as kubelet's watch-based managers hold
//! them: one list-and-watch of each kind over every namespace, kept in memory, so that a
//! lookup costs no request and a change wakes exactly the pods that reference the object.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodSpec, Secret, Volume};
use peapod_apiserver::client::LocalClient;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::reflector::{Delta, Reflector};

const CONFIG_MAPS: &str = "/api/v1/configmaps";
const SECRETS: &str = "/api/v1/secrets";

/// Which of the two kinds an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigKind {
    ConfigMap,
    Secret,
}

/// A ConfigMap or Secret by kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub kind: ConfigKind,
    pub namespace: String,
    pub name: String,
}

type Key = (String, String);

/// The ConfigMaps and Secrets as the watches last showed them.
pub struct ConfigObjects {
    config_maps: RwLock<HashMap<Key, Arc<ConfigMap>>>,
    secrets: RwLock<HashMap<Key, Arc<Secret>>>,
    /// Both kinds listed once: before that a missing object may only not be seen yet.
    synced: [AtomicBool; 2],
    synced_tx: watch::Sender<bool>,
    /// Pods whose workers have yet to see a change of an object they consume.
    stale_pods: Mutex<HashSet<String>>,
}

impl Default for ConfigObjects {
    fn default() -> Self {
        ConfigObjects {
            config_maps: Default::default(),
            secrets: Default::default(),
            synced: Default::default(),
            synced_tx: watch::channel(false).0,
            stale_pods: Default::default(),
        }
    }
}

impl ConfigObjects {
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<Arc<ConfigMap>> {
        let key = (namespace.to_owned(), name.to_owned());
        self.config_maps
            .read()
            .expect("config maps lock")
            .get(&key)
            .cloned()
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        let key = (namespace.to_owned(), name.to_owned());
        self.secrets
            .read()
            .expect("secrets lock")
            .get(&key)
            .cloned()
    }

    /// Takes an object in (tests and the watches); whether it changed what is held.
    pub fn put_config_map(&self, config_map: ConfigMap) -> bool {
        put(&self.config_maps, config_map, |c| &c.metadata)
    }

    pub fn put_secret(&self, secret: Secret) -> bool {
        put(&self.secrets, secret, |s| &s.metadata)
    }

    pub fn remove(&self, object: &ObjectRef) -> bool {
        let key = (object.namespace.clone(), object.name.clone());
        match object.kind {
            ConfigKind::ConfigMap => self
                .config_maps
                .write()
                .expect("lock")
                .remove(&key)
                .is_some(),
            ConfigKind::Secret => self.secrets.write().expect("lock").remove(&key).is_some(),
        }
    }

    /// Marks pod `uid` as consuming an object that changed, for its worker.
    pub fn mark_stale(&self, uid: &str) {
        self.stale_pods
            .lock()
            .expect("stale pods lock")
            .insert(uid.to_owned());
    }

    /// Whether pod `uid` consumes an object that changed since its worker last asked.
    pub fn take_stale(&self, uid: &str) -> bool {
        self.stale_pods.lock().expect("stale pods lock").remove(uid)
    }

    /// Waits until both kinds have been listed once.
    pub async fn wait_synced(&self) {
        let mut synced = self.synced_tx.subscribe();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Lists and watches both kinds until the process ends, calling `changed` with every
    /// object that was added, changed or deleted after the first list.
    pub async fn run(
        self: Arc<Self>,
        client: LocalClient,
        changed: impl Fn(&ObjectRef) + Send + Sync + 'static,
    ) {
        let changed = Arc::new(changed);
        let kinds = [
            (ConfigKind::ConfigMap, CONFIG_MAPS),
            (ConfigKind::Secret, SECRETS),
        ];
        let mut tasks = tokio::task::JoinSet::new();
        for (kind, path) in kinds {
            let objects = self.clone();
            let changed = changed.clone();
            let mut reflector = Reflector::new(client.clone(), path, "");
            tasks.spawn(async move {
                loop {
                    let delta = reflector.next().await;
                    for object in objects.apply(kind, delta) {
                        changed(&object);
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Takes a delta in; returns the objects it changed.
    fn apply(&self, kind: ConfigKind, delta: Delta) -> Vec<ObjectRef> {
        let touched = match delta {
            Delta::Changed(value) => self.put_value(kind, value).into_iter().collect(),
            Delta::Deleted(value) => reference(kind, &value)
                .filter(|object| self.remove(object))
                .into_iter()
                .collect(),
            Delta::Listed(values) => self.replace(kind, values),
        };
        self.synced[kind as usize].store(true, Ordering::Relaxed);
        if self.synced.iter().all(|s| s.load(Ordering::Relaxed)) {
            self.synced_tx.send_replace(true);
        }
        touched
    }

    fn put_value(&self, kind: ConfigKind, value: serde_json::Value) -> Option<ObjectRef> {
        let object = reference(kind, &value)?;
        let changed = match kind {
            ConfigKind::ConfigMap => decode(value).is_some_and(|c| self.put_config_map(c)),
            ConfigKind::Secret => decode(value).is_some_and(|s| self.put_secret(s)),
        };
        changed.then_some(object)
    }

    /// A (re)list: what is listed is taken, what is held and not listed is gone.
    fn replace(&self, kind: ConfigKind, values: Vec<serde_json::Value>) -> Vec<ObjectRef> {
        let listed: HashSet<ObjectRef> = values.iter().filter_map(|v| reference(kind, v)).collect();
        let held: Vec<ObjectRef> = match kind {
            ConfigKind::ConfigMap => held_refs(&self.config_maps, kind),
            ConfigKind::Secret => held_refs(&self.secrets, kind),
        };
        let mut touched: Vec<ObjectRef> = held
            .into_iter()
            .filter(|object| !listed.contains(object) && self.remove(object))
            .collect();
        touched.extend(values.into_iter().filter_map(|v| self.put_value(kind, v)));
        touched
    }
}

fn put<T: PartialEq>(
    map: &RwLock<HashMap<Key, Arc<T>>>,
    object: T,
    meta: impl Fn(&T) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> bool {
    let m = meta(&object);
    let key = (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    );
    let mut map = map.write().expect("config objects lock");
    if map.get(&key).is_some_and(|held| **held == object) {
        return false;
    }
    map.insert(key, Arc::new(object));
    true
}

fn held_refs<T>(map: &RwLock<HashMap<Key, Arc<T>>>, kind: ConfigKind) -> Vec<ObjectRef> {
    map.read()
        .expect("config objects lock")
        .keys()
        .map(|(namespace, name)| ObjectRef {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
        })
        .collect()
}

fn reference(kind: ConfigKind, value: &serde_json::Value) -> Option<ObjectRef> {
    let meta = &value["metadata"];
    Some(ObjectRef {
        kind,
        namespace: meta["namespace"].as_str()?.to_owned(),
        name: meta["name"].as_str()?.to_owned(),
    })
}

fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Option<T> {
    serde_json::from_value(value)
        .map_err(|err| tracing::warn!(%err, "a watched ConfigMap or Secret does not decode"))
        .ok()
}

/// The ConfigMaps and Secrets a pod refers to: from env, envFrom, configMap and secret
/// volumes, projected sources and imagePullSecrets.
pub fn references(pod: &Pod) -> HashSet<ObjectRef> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = HashSet::new();
    let mut add = |kind, name: &str| {
        out.insert(ObjectRef {
            kind,
            namespace: namespace.clone(),
            name: name.to_owned(),
        });
    };
    let Some(spec) = pod.spec.as_ref() else {
        return out;
    };
    for container in all_containers(spec) {
        for var in container.env.iter().flatten() {
            let from = var.value_from.as_ref();
            if let Some(r) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
                add(ConfigKind::ConfigMap, &r.name);
            }
            if let Some(r) = from.and_then(|f| f.secret_key_ref.as_ref()) {
                add(ConfigKind::Secret, &r.name);
            }
        }
        for from in container.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                add(ConfigKind::ConfigMap, &r.name);
            }
            if let Some(r) = &from.secret_ref {
                add(ConfigKind::Secret, &r.name);
            }
        }
    }
    for volume in spec.volumes.iter().flatten() {
        volume_references(volume, &mut add);
    }
    for secret in spec.image_pull_secrets.iter().flatten() {
        add(ConfigKind::Secret, &secret.name);
    }
    out
}

fn volume_references(volume: &Volume, add: &mut impl FnMut(ConfigKind, &str)) {
    if let Some(c) = &volume.config_map {
        add(ConfigKind::ConfigMap, &c.name);
    }
    if let Some(name) = volume
        .secret
        .as_ref()
        .and_then(|s| s.secret_name.as_deref())
    {
        add(ConfigKind::Secret, name);
    }
    let sources = volume.projected.as_ref().and_then(|p| p.sources.as_ref());
    for source in sources.into_iter().flatten() {
        if let Some(c) = &source.config_map {
            add(ConfigKind::ConfigMap, &c.name);
        }
        if let Some(s) = &source.secret {
            add(ConfigKind::Secret, &s.name);
        }
    }
}

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &k8s_openapi::api::core::v1::Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config_map(name: &str, value: &str) -> serde_json::Value {
        json!({"metadata": {"namespace": "ns", "name": name}, "data": {"k": value}})
    }

    #[test]
    fn deltas_report_what_changed_and_lookups_see_it() {
        let objects = ConfigObjects::default();
        let listed = objects.apply(
            ConfigKind::ConfigMap,
            Delta::Listed(vec![config_map("a", "1"), config_map("b", "1")]),
        );
        assert_eq!(listed.len(), 2);
        assert_eq!(
            objects
                .config_map("ns", "a")
                .unwrap()
                .data
                .as_ref()
                .unwrap()["k"],
            "1"
        );
        // The same object again changes nothing; a new value does.
        assert!(objects
            .apply(ConfigKind::ConfigMap, Delta::Changed(config_map("a", "1")))
            .is_empty());
        let changed = objects.apply(ConfigKind::ConfigMap, Delta::Changed(config_map("a", "2")));
        assert_eq!(changed[0].name, "a");
        // A relist without b removes it and reports it.
        let relisted = objects.apply(
            ConfigKind::ConfigMap,
            Delta::Listed(vec![config_map("a", "2")]),
        );
        assert_eq!(
            relisted.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert!(objects.config_map("ns", "b").is_none());
        assert!(objects.secret("ns", "a").is_none());
    }

    #[test]
    fn a_pod_refers_to_what_its_env_volumes_and_pull_secrets_name() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": "p"},
            "spec": {
                "imagePullSecrets": [{"name": "pull"}],
                "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "init-env"}}]}],
                "containers": [{"name": "c", "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}
                ]}],
                "volumes": [
                    {"name": "v1", "configMap": {"name": "vol-cm"}},
                    {"name": "v2", "secret": {"secretName": "vol-s"}},
                    {"name": "v3", "projected": {"sources": [
                        {"configMap": {"name": "p-cm"}}, {"secret": {"name": "p-s"}}
                    ]}}
                ]
            }
        }))
        .unwrap();
        let mut names: Vec<(ConfigKind, String)> = references(&pod)
            .into_iter()
            .map(|o| (o.kind, o.name))
            .collect();
        names.sort_by(|a, b| a.1.cmp(&b.1));
        let expected = [
            (ConfigKind::ConfigMap, "cm"),
            (ConfigKind::ConfigMap, "init-env"),
            (ConfigKind::ConfigMap, "p-cm"),
            (ConfigKind::Secret, "p-s"),
            (ConfigKind::Secret, "pull"),
            (ConfigKind::Secret, "s"),
            (ConfigKind::ConfigMap, "vol-cm"),
            (ConfigKind::Secret, "vol-s"),
        ];
        let expected: Vec<(ConfigKind, String)> =
            expected.iter().map(|(k, n)| (*k, n.to_string())).collect();
        assert_eq!(names, expected);
    }
}
