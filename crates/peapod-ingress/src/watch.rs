//! The controller's loop: reflectors of Ingresses, IngressClasses, Services, EndpointSlices
//! and Secrets; after each batch of changes, once every list is in, the routing table and
//! certificates are rebuilt from the Ingresses of this controller's classes, a Secret that
//! cannot serve is reported on its Ingress as a Warning event, and statuses are published.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::events::{Event as Note, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use rustls::sign::CertifiedKey;
use serde::de::DeserializeOwned;

use crate::backends::Backends;
use crate::proxy::{Shared, Snapshot};
use crate::routes::RouteTable;
use crate::tls::{self, CertResolver};
use crate::{status, CONTROLLER};

const BATCH: usize = 512;
const REPORTER: &str = "peapod-ingress";
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

struct Stores {
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    secrets: Store<Secret>,
}

/// Parsed certificates by Secret uid and resourceVersion, so a rebuild parses only changes.
type CertificateCache = HashMap<(String, String), Result<Arc<CertifiedKey>, String>>;

pub async fn run(
    client: kube::Client,
    shared: Arc<Shared>,
    resolver: Arc<CertResolver>,
    node_ip: IpAddr,
) {
    let mut streams = Vec::new();
    let stores = Stores {
        ingresses: reflect(&client, &mut streams),
        classes: reflect(&client, &mut streams),
        services: reflect(&client, &mut streams),
        slices: reflect(&client, &mut streams),
        secrets: reflect(&client, &mut streams),
    };
    let kinds = streams.len();
    let mut batches = stream::select_all(streams).ready_chunks(BATCH);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: REPORTER.to_owned(),
            instance: None,
        },
    );
    let mut listed = HashSet::new();
    let mut certificates = CertificateCache::new();
    let mut reported = HashSet::new();
    while let Some(batch) = batches.next().await {
        listed.extend(batch.into_iter().flatten());
        if listed.len() < kinds {
            continue;
        }
        let served = served_ingresses(&stores);
        let routes = RouteTable::build(&served);
        let backends = Backends::new(&stores.services.state(), &stores.slices.state());
        shared.publish(Snapshot { routes, backends });
        let problems = load_certificates(&served, &stores.secrets, &resolver, &mut certificates);
        report(&recorder, problems, &mut reported).await;
        for ingress in served.iter().filter(|i| status::needs_update(i, node_ip)) {
            if let Err(err) = status::publish(&client, ingress, node_ip).await {
                tracing::warn!(%err, ingress = ?ingress.metadata.name, "publishing the Ingress status");
            }
        }
    }
}

/// A reflector of every `K`, its stream yielding the kind's index once its list is in.
fn reflect<K>(
    client: &kube::Client,
    streams: &mut Vec<BoxStream<'static, Option<usize>>>,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let index = streams.len();
    let (reader, writer) = reflector::store();
    let events = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .map(move |event| match event {
        Ok(Event::InitDone) => Some(index),
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(%err, "ingress controller watch");
            None
        }
    });
    streams.push(events.boxed());
    reader
}

/// The Ingresses of a class whose controller is this one; those naming no class when one of
/// this controller's classes is the default.
fn served_ingresses(stores: &Stores) -> Vec<Arc<Ingress>> {
    let classes = stores.classes.state();
    let ours: Vec<&IngressClass> = classes
        .iter()
        .map(AsRef::as_ref)
        .filter(|c| c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER))
        .collect();
    let is_ours = |name: &str| {
        ours.iter()
            .any(|c| c.metadata.name.as_deref() == Some(name))
    };
    let default_is_ours = ours.iter().any(|c| {
        let annotations = c.metadata.annotations.as_ref();
        annotations
            .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
            .map(String::as_str)
            == Some("true")
    });
    stores
        .ingresses
        .state()
        .into_iter()
        .filter(|ingress| {
            let named = ingress
                .spec
                .as_ref()
                .and_then(|s| s.ingress_class_name.clone());
            let annotated = || {
                let annotations = ingress.metadata.annotations.as_ref();
                annotations.and_then(|a| a.get(CLASS_ANNOTATION)).cloned()
            };
            match named.or_else(annotated) {
                Some(class) => is_ours(&class),
                None => default_is_ours,
            }
        })
        .collect()
}

/// A Secret an Ingress names that cannot serve its hosts.
struct Problem {
    ingress: Arc<Ingress>,
    key: String,
    message: String,
}

fn load_certificates(
    served: &[Arc<Ingress>],
    secrets: &Store<Secret>,
    resolver: &CertResolver,
    cache: &mut CertificateCache,
) -> Vec<Problem> {
    let mut installed = Vec::new();
    let mut problems = Vec::new();
    let mut used = HashSet::new();
    for ingress in served {
        let namespace = ingress.metadata.namespace.clone().unwrap_or_default();
        for entry in ingress.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
            let Some(secret_name) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) else {
                continue;
            };
            let reference = reflector::ObjectRef::<Secret>::new(secret_name).within(&namespace);
            let loaded = match secrets.get(&reference) {
                None => Err(
                    tls::SecretError::NotFound(format!("{namespace}/{secret_name}")).to_string(),
                ),
                Some(secret) => {
                    let version = (
                        secret.metadata.uid.clone().unwrap_or_default(),
                        secret.metadata.resource_version.clone().unwrap_or_default(),
                    );
                    used.insert(version.clone());
                    cache
                        .entry(version)
                        .or_insert_with(|| {
                            tls::certified_key(&secret)
                                .map(Arc::new)
                                .map_err(|e| e.to_string())
                        })
                        .clone()
                }
            };
            match loaded {
                Ok(key) => {
                    let hosts = entry.hosts.iter().flatten().map(|h| h.to_ascii_lowercase());
                    installed.extend(hosts.map(|h| (h, key.clone())));
                }
                Err(message) => problems.push(Problem {
                    ingress: ingress.clone(),
                    key: format!("{namespace}/{secret_name}/{message}"),
                    message,
                }),
            }
        }
    }
    cache.retain(|version, _| used.contains(version));
    resolver.replace(installed);
    problems
}

/// A Warning event on the Ingress for each problem not reported yet.
async fn report(
    recorder: &Recorder,
    problems: Vec<Problem>,
    reported: &mut HashSet<(String, String)>,
) {
    let current: HashSet<(String, String)> = problems
        .iter()
        .map(|p| {
            (
                p.ingress.metadata.uid.clone().unwrap_or_default(),
                p.key.clone(),
            )
        })
        .collect();
    for problem in problems {
        let id = (
            problem.ingress.metadata.uid.clone().unwrap_or_default(),
            problem.key,
        );
        if reported.contains(&id) {
            continue;
        }
        let note = Note {
            type_: EventType::Warning,
            reason: "InvalidTLSSecret".to_owned(),
            note: Some(format!(
                "{}; its hosts are served with the default certificate",
                problem.message
            )),
            action: "LoadCertificate".to_owned(),
            secondary: None,
        };
        if let Err(err) = recorder
            .publish(&note, &problem.ingress.object_ref(&()))
            .await
        {
            tracing::warn!(%err, "recording an ingress event");
        }
        reported.insert(id);
    }
    reported.retain(|id| current.contains(id));
}
