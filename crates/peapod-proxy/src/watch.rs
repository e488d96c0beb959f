//! The proxy's loop: watches Services and EndpointSlices in memory, and after each batch of
//! events that arrived together syncs the Services they touched. The first sync, once both
//! lists are in, is a full one; after a failed sync the next is full again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use futures::{stream, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource, ResourceExt};

use crate::model::{self, ServiceKey, ServicePortName, ServicePortState};
use crate::nft::NftError;
use crate::sync::Syncer;
use crate::ProxyConfig;

/// The most events one sync takes in.
const BATCH: usize = 1024;
/// How long to wait before a full sync retries a failed one when nothing else happens.
const RETRY: Duration = Duration::from_secs(1);

enum Change {
    Service(Box<Event<Service>>),
    Slice(Box<Event<EndpointSlice>>),
}

/// Runs the proxy until the task is dropped.
pub async fn run(client: kube::Client, config: ProxyConfig) {
    let services = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .map(|e| e.map(|event| Change::Service(Box::new(event))))
    .boxed();
    let slices = watcher(
        Api::<EndpointSlice>::all(client),
        watcher::Config::default(),
    )
    .default_backoff()
    .map(|e| e.map(|event| Change::Slice(Box::new(event))))
    .boxed();
    let mut batches = stream::select(services, slices).ready_chunks(BATCH);
    let mut cache = Cache::default();
    let mut syncer = Some(Syncer::new(
        &config.table,
        config.pod_cidr,
        config.service_cidr,
    ));
    let mut ports: HashMap<ServiceKey, BTreeSet<ServicePortName>> = HashMap::new();
    let mut dirty = HashSet::new();
    let mut needs_full = true;
    loop {
        let retrying = needs_full && cache.listed();
        let retry = async move {
            if retrying {
                tokio::time::sleep(RETRY).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            batch = batches.next() => {
                let Some(batch) = batch else { return };
                for event in batch {
                    match event {
                        Ok(change) => cache.apply(change, &mut dirty),
                        Err(err) => tracing::warn!(%err, "watching Services and EndpointSlices"),
                    }
                }
            }
            () = retry => {}
        }
        if !cache.listed() || (!needs_full && dirty.is_empty()) {
            continue;
        }
        let work = if needs_full {
            dirty.clear();
            ports.clear();
            let desired = cache.all_ports(&mut ports);
            Work::Full(desired)
        } else {
            Work::Partial(cache.changes(dirty.drain(), &mut ports))
        };
        let (returned, result) = sync(syncer.take().expect("syncer"), work).await;
        syncer = Some(returned);
        needs_full = match result {
            Ok(()) => false,
            Err(err) => {
                tracing::warn!(%err, "syncing the service rules; a full sync follows");
                true
            }
        };
    }
}

enum Work {
    Full(BTreeMap<ServicePortName, ServicePortState>),
    Partial(Vec<(ServicePortName, Option<ServicePortState>)>),
}

/// nft (libnftables' blocking calls, or its process) and conntrack run off the async workers.
async fn sync(mut syncer: Syncer, work: Work) -> (Syncer, Result<(), NftError>) {
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let result = match work {
            Work::Full(desired) => {
                let ports = desired.len();
                let result = syncer.full_sync(desired);
                if result.is_ok() {
                    tracing::info!(ports, elapsed = ?started.elapsed(), "service rules fully synced");
                }
                result
            }
            Work::Partial(changes) => syncer.partial_sync(changes),
        };
        tracing::debug!(elapsed = ?started.elapsed(), "synced the service rules");
        (syncer, result)
    })
    .await
    .expect("the sync does not panic")
}

type ObjectKey = (String, String);

fn object_key<K: Resource>(object: &K) -> ObjectKey {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// Objects of one kind as the last list and the events since have them.
struct Store<K> {
    objects: HashMap<ObjectKey, K>,
    listing: Option<HashMap<ObjectKey, K>>,
    listed: bool,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store {
            objects: HashMap::new(),
            listing: None,
            listed: false,
        }
    }
}

impl<K: Resource + Clone> Store<K> {
    /// Applies the event; returns every version of an object it touched, old and new.
    fn apply(&mut self, event: Event<K>) -> Vec<K> {
        match event {
            Event::Apply(object) => {
                let old = self.objects.insert(object_key(&object), object.clone());
                old.into_iter().chain([object]).collect()
            }
            Event::Delete(object) => {
                self.objects.remove(&object_key(&object));
                vec![object]
            }
            Event::Init => {
                self.listing = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(object) => {
                let listing = self.listing.get_or_insert_with(HashMap::new);
                listing.insert(object_key(&object), object);
                Vec::new()
            }
            Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                self.listed = true;
                let old = std::mem::replace(&mut self.objects, listed);
                old.into_values()
                    .chain(self.objects.values().cloned())
                    .collect()
            }
        }
    }
}

#[derive(Default)]
struct Cache {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    /// The slices of each Service.
    by_service: HashMap<ServiceKey, BTreeSet<ObjectKey>>,
}

impl Cache {
    fn listed(&self) -> bool {
        self.services.listed && self.slices.listed
    }

    fn apply(&mut self, change: Change, dirty: &mut HashSet<ServiceKey>) {
        match change {
            Change::Service(event) => {
                dirty.extend(self.services.apply(*event).iter().map(model::service_key));
            }
            Change::Slice(event) => {
                for slice in self.slices.apply(*event) {
                    let Some(service) = model::slice_service(&slice) else {
                        continue;
                    };
                    let key = object_key(&slice);
                    let current = self.slices.objects.get(&key);
                    let belongs = current.and_then(model::slice_service).as_ref() == Some(&service);
                    let slices = self.by_service.entry(service.clone()).or_default();
                    if belongs {
                        slices.insert(key);
                    } else {
                        slices.remove(&key);
                    }
                    if slices.is_empty() {
                        self.by_service.remove(&service);
                    }
                    dirty.insert(service);
                }
            }
        }
    }

    fn service_ports(&self, key: &ServiceKey) -> Vec<(ServicePortName, ServicePortState)> {
        let Some(service) = self.services.objects.get(key) else {
            return Vec::new();
        };
        let slices: Vec<&EndpointSlice> = self
            .by_service
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|k| self.slices.objects.get(k))
            .collect();
        model::service_ports(service, &slices)
    }

    fn all_ports(
        &self,
        ports: &mut HashMap<ServiceKey, BTreeSet<ServicePortName>>,
    ) -> BTreeMap<ServicePortName, ServicePortState> {
        let mut desired = BTreeMap::new();
        for key in self.services.objects.keys() {
            let found = self.service_ports(key);
            ports.insert(key.clone(), found.iter().map(|(n, _)| n.clone()).collect());
            desired.extend(found);
        }
        desired
    }

    /// The new state of every port of the `dirty` Services; None for the ports they lost.
    fn changes(
        &self,
        dirty: impl Iterator<Item = ServiceKey>,
        ports: &mut HashMap<ServiceKey, BTreeSet<ServicePortName>>,
    ) -> Vec<(ServicePortName, Option<ServicePortState>)> {
        let mut changes = Vec::new();
        for key in dirty {
            let found = self.service_ports(&key);
            let names: BTreeSet<ServicePortName> = found.iter().map(|(n, _)| n.clone()).collect();
            let old = ports.remove(&key).unwrap_or_default();
            changes.extend(old.difference(&names).map(|gone| (gone.clone(), None)));
            changes.extend(found.into_iter().map(|(n, s)| (n, Some(s))));
            if !names.is_empty() {
                ports.insert(key, names);
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}]},
        }))
        .unwrap()
    }

    fn slice(name: &str, service: &str, ip: &str) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns",
                         "labels": {model::SERVICE_NAME_LABEL: service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip]}],
            "ports": [{"name": "http", "port": 8080}],
        }))
        .unwrap()
    }

    fn listed(cache: &mut Cache, dirty: &mut HashSet<ServiceKey>) {
        for change in [
            Change::Service(Box::new(Event::Init)),
            Change::Service(Box::new(Event::InitApply(service("web")))),
            Change::Service(Box::new(Event::InitDone)),
            Change::Slice(Box::new(Event::Init)),
            Change::Slice(Box::new(Event::InitApply(slice(
                "web-1",
                "web",
                "10.42.0.5",
            )))),
            Change::Slice(Box::new(Event::InitDone)),
        ] {
            cache.apply(change, dirty);
        }
    }

    #[test]
    fn slices_are_found_by_their_service_and_mark_it_dirty() {
        let (mut cache, mut dirty) = (Cache::default(), HashSet::new());
        listed(&mut cache, &mut dirty);
        assert!(cache.listed());
        let web = ("ns".to_string(), "web".to_string());
        assert_eq!(dirty, HashSet::from([web.clone()]));
        let mut ports = HashMap::new();
        let desired = cache.all_ports(&mut ports);
        assert_eq!(desired.values().next().unwrap().endpoints.len(), 1);

        dirty.clear();
        cache.apply(
            Change::Slice(Box::new(Event::Apply(slice("web-1", "other", "10.42.0.5")))),
            &mut dirty,
        );
        let other = ("ns".to_string(), "other".to_string());
        assert_eq!(
            dirty,
            HashSet::from([web.clone(), other]),
            "the old and new Service"
        );
        let changes = cache.changes(dirty.drain(), &mut ports);
        let web_port = changes.iter().find(|(n, _)| n.name == "web").unwrap();
        assert!(web_port.1.as_ref().unwrap().endpoints.is_empty());
    }

    #[test]
    fn a_deleted_service_reports_its_ports_gone() {
        let (mut cache, mut dirty) = (Cache::default(), HashSet::new());
        listed(&mut cache, &mut dirty);
        let mut ports = HashMap::new();
        cache.all_ports(&mut ports);
        dirty.clear();
        cache.apply(
            Change::Service(Box::new(Event::Delete(service("web")))),
            &mut dirty,
        );
        let changes = cache.changes(dirty.drain(), &mut ports);
        assert_eq!(changes.len(), 1);
        assert!(changes[0].1.is_none());
        assert!(ports.is_empty());
    }
}
