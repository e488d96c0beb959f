//! Keeps the [`View`] current: kube-runtime watches of Services, EndpointSlices and
//! namespaces, as CoreDNS's informers, the view rebuilt after each burst of changes.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::server::SharedView;
use crate::view::{Key, View};

/// The objects of one kind as its watch last listed and changed them.
#[derive(Debug)]
struct Cache<K> {
    objects: BTreeMap<Key, K>,
    /// Objects of a re-list in progress, swapped in when it completes.
    listing: Option<BTreeMap<Key, K>>,
    synced: bool,
}

impl<K> Default for Cache<K> {
    fn default() -> Cache<K> {
        Cache {
            objects: BTreeMap::new(),
            listing: None,
            synced: false,
        }
    }
}

impl<K: Resource> Cache<K> {
    fn apply(&mut self, event: Event<K>) {
        match event {
            Event::Apply(object) => {
                self.objects.insert(key(&object), object);
            }
            Event::Delete(object) => {
                self.objects.remove(&key(&object));
            }
            Event::Init => self.listing = Some(BTreeMap::new()),
            Event::InitApply(object) => {
                let listing = self.listing.get_or_insert_with(BTreeMap::new);
                listing.insert(key(&object), object);
            }
            Event::InitDone => {
                self.objects = self.listing.take().unwrap_or_default();
                self.synced = true;
            }
        }
    }
}

fn key<K: Resource>(object: &K) -> Key {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

enum Change {
    Service(Box<Event<Service>>),
    Slice(Box<Event<EndpointSlice>>),
    Namespace(Box<Event<Namespace>>),
}

#[derive(Default)]
struct Caches {
    services: Cache<Service>,
    slices: Cache<EndpointSlice>,
    namespaces: Cache<Namespace>,
}

impl Caches {
    fn apply(&mut self, change: Change) {
        match change {
            Change::Service(event) => self.services.apply(*event),
            Change::Slice(event) => self.slices.apply(*event),
            Change::Namespace(event) => self.namespaces.apply(*event),
        }
    }

    fn view(&self) -> View {
        let mut view = View::build(
            &self.services.objects,
            &self.slices.objects,
            &self.namespaces.objects,
        );
        view.synced = self.services.synced && self.slices.synced && self.namespaces.synced;
        view.serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as u32);
        view
    }
}

/// Watches the cluster with `client` and keeps `view` current, until dropped.
pub async fn run(client: kube::Client, view: Arc<SharedView>) {
    let changes = futures::stream::select_all([
        events(Api::<Service>::all(client.clone()), |e| {
            Change::Service(Box::new(e))
        }),
        events(Api::<EndpointSlice>::all(client.clone()), |e| {
            Change::Slice(Box::new(e))
        }),
        events(Api::<Namespace>::all(client), |e| {
            Change::Namespace(Box::new(e))
        }),
    ]);
    futures::pin_mut!(changes);
    let mut caches = Caches::default();
    while let Some(change) = changes.next().await {
        caches.apply(change);
        // A burst (a list, a rollout) is applied whole before the view is rebuilt once.
        while let Some(Some(change)) = changes.next().now_or_never() {
            caches.apply(change);
        }
        view.set(caches.view());
    }
}

fn events<K>(
    api: Api<K>,
    wrap: fn(Event<K>) -> Change,
) -> std::pin::Pin<Box<dyn Stream<Item = Change> + Send>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    let stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |event| async move {
            match event {
                Ok(event) => Some(wrap(event)),
                Err(error) => {
                    tracing::warn!(%error, kind = %K::kind(&K::DynamicType::default()), "cluster DNS watch");
                    None
                }
            }
        });
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn namespace(name: &str) -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
    }

    #[test]
    fn a_relist_replaces_the_objects_when_done() {
        let mut cache = Cache::default();
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(namespace("a")));
        assert!(!cache.synced && cache.objects.is_empty());
        cache.apply(Event::InitDone);
        assert!(cache.synced);
        cache.apply(Event::Apply(namespace("b")));
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(namespace("c")));
        assert_eq!(cache.objects.len(), 2);
        cache.apply(Event::InitDone);
        let names: Vec<_> = cache.objects.keys().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["c"]);
        cache.apply(Event::Delete(namespace("c")));
        assert!(cache.objects.is_empty());
    }

    #[test]
    fn the_view_is_synced_once_every_watch_listed() {
        let mut caches = Caches::default();
        caches.apply(Change::Namespace(Box::new(Event::InitDone)));
        caches.apply(Change::Service(Box::new(Event::InitDone)));
        assert!(!caches.view().synced);
        caches.apply(Change::Slice(Box::new(Event::InitDone)));
        assert!(caches.view().synced);
    }
}
