//! The endpoints controller's loop: kube-runtime's Controller over the in-process API,
//! triggered by Services, by pods (mapped to the Services selecting them) and by Endpoints
//! (mapped to their Service), each reconcile kube's `syncService` of one Service. As kube's,
//! the Endpoints named after a deleted Service are deleted (hand-written ones too) as its
//! deletion is watched, and at start those whose Service is gone (`checkLeftoverEndpoints`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{EndpointSubset, Endpoints, Pod, Service};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};

use super::subsets::{capacity_annotation_correct, service_subsets, truncate, OVER_CAPACITY};
use crate::controllers::api_errors::namespace_terminating;
use crate::controllers::endpointslice::desired::LABEL_HEADLESS;
use crate::controllers::endpointslice::pods::has_cluster_ip;
use crate::controllers::endpointslice::selecting::{selected_pods, service_controller};
use crate::controllers::endpointslice::trigger_time::{
    self, TriggerTimes, LAST_CHANGE_TRIGGER_TIME,
};
use crate::controllers::events::{Event, Events};
use crate::controllers::reconciler::{self, Reconciler};
use crate::controllers::retries::key_of;

/// `LabelManagedBy` and `ControllerName` of kube's endpoints controller.
pub const LABEL_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpoint-controller";
/// The annotation of client-go's leader election records, whose Endpoints have no Service.
const LEADER_ELECTION: &str = "control-plane.alpha.kubernetes.io/leader";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Api(#[from] kube::Error),
}

pub struct Context {
    client: Client,
    events: Events,
    trigger_times: Arc<TriggerTimes>,
}

impl Reconciler for Context {
    type Object = Service;
    type Error = SyncError;
    const LOG_NAME: &'static str = "endpoint controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, service: Service) -> Result<Action, SyncError> {
        let Some(pods) = selected_pods(&self.client, &service).await? else {
            return Ok(Action::await_change());
        };
        let namespace = service.namespace().unwrap_or_default();
        let pods: Vec<&Pod> = pods.iter().collect();
        let trigger = self
            .trigger_times
            .compute(&key_of(&service), &service, &pods);
        let endpoints = Api::<Endpoints>::namespaced(self.client.clone(), &namespace);
        let current = endpoints.get_opt(&service.name_any()).await?;
        let subsets = service_subsets(&service, &pods);
        if current
            .as_ref()
            .is_some_and(|c| up_to_date(c, &subsets, &service))
        {
            return Ok(Action::await_change());
        }
        let creating = current.is_none();
        let wanted = wanted_endpoints(&service, current, subsets, trigger);
        let written = match creating {
            true => endpoints.create(&PostParams::default(), &wanted).await,
            false => {
                endpoints
                    .replace(&wanted.name_any(), &PostParams::default(), &wanted)
                    .await
            }
        };
        match written {
            Ok(_) => Ok(Action::await_change()),
            Err(kube::Error::Api(status)) if creating && namespace_terminating(&status) => {
                Ok(Action::await_change())
            }
            Err(err) => {
                self.record_failure(&wanted, &service, creating, &err).await;
                Err(err.into())
            }
        }
    }

    fn forget(&self, gone: &Service) {
        self.trigger_times.forget(&key_of(gone));
    }
}

impl Context {
    async fn record_failure(
        &self,
        wanted: &Endpoints,
        service: &Service,
        creating: bool,
        err: &kube::Error,
    ) {
        let key = key_of(service);
        let event = match creating {
            true => Event::warning(
                "FailedToCreateEndpoint",
                format!("Failed to create endpoint for service {key}: {err}"),
            ),
            false => Event::warning(
                "FailedToUpdateEndpoint",
                format!("Failed to update endpoint {key}: {err}"),
            ),
        };
        self.events.record(wanted, event).await;
    }
}

/// Whether the stored Endpoints already say it all: same subsets (pods' resourceVersions
/// aside), the Service's labels, a correct capacity annotation.
fn up_to_date(current: &Endpoints, subsets: &[EndpointSubset], service: &Service) -> bool {
    let mut labels = current.metadata.labels.clone().unwrap_or_default();
    labels.remove(LABEL_HEADLESS);
    labels.remove(LABEL_MANAGED_BY);
    let mut stored = current.subsets.clone().unwrap_or_default();
    for address in stored.iter_mut().flat_map(|s| {
        s.addresses
            .iter_mut()
            .flatten()
            .chain(s.not_ready_addresses.iter_mut().flatten())
    }) {
        if let Some(target) = address.target_ref.as_mut() {
            target.resource_version = None;
        }
    }
    stored == subsets
        && labels == service.metadata.labels.clone().unwrap_or_default()
        && capacity_annotation_correct(current.metadata.annotations.as_ref(), &stored)
}

/// The Endpoints to write: the stored one (or a new one named after the Service) with the
/// subsets, the Service's labels and the controller's, the trigger time and capacity marks.
fn wanted_endpoints(
    service: &Service,
    current: Option<Endpoints>,
    subsets: Vec<EndpointSubset>,
    trigger: Option<jiff::Timestamp>,
) -> Endpoints {
    let mut wanted = current.unwrap_or_else(|| Endpoints {
        metadata: kube::api::ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            ..Default::default()
        },
        ..Endpoints::default()
    });
    let mut subsets = subsets;
    let annotations = wanted
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    match trigger {
        Some(at) => annotations.insert(
            LAST_CHANGE_TRIGGER_TIME.to_owned(),
            trigger_time::format(at),
        ),
        None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
    };
    match truncate(&mut subsets) {
        true => annotations.insert(OVER_CAPACITY.to_owned(), "truncated".to_owned()),
        false => annotations.remove(OVER_CAPACITY),
    };
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.insert(LABEL_MANAGED_BY.to_owned(), CONTROLLER_NAME.to_owned());
    match has_cluster_ip(service) {
        true => labels.remove(LABEL_HEADLESS),
        false => labels.insert(LABEL_HEADLESS.to_owned(), String::new()),
    };
    wanted.metadata.labels = Some(labels);
    wanted.subsets = (!subsets.is_empty()).then_some(subsets);
    wanted
}

/// Deletes the Endpoints of every Service deleted while watched.
async fn delete_with_services(client: Client, trigger_times: Arc<TriggerTimes>) {
    let services = Api::<Service>::all(client.clone());
    let deleted = watcher::watcher(services, watcher::Config::default())
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(watcher::Event::Delete(service)) => Some(service),
                _ => None,
            }
        });
    let mut deleted = std::pin::pin!(deleted);
    while let Some(service) = deleted.next().await {
        trigger_times.forget(&key_of(&service));
        let namespace = service.namespace().unwrap_or_default();
        if let Err(err) = delete_endpoints(&client, &namespace, &service.name_any()).await {
            let service = key_of(&service);
            tracing::info!(%service, %err, "endpoint controller: deleting Endpoints");
        }
    }
}

async fn delete_endpoints(client: &Client, namespace: &str, name: &str) -> Result<(), kube::Error> {
    let api = Api::<Endpoints>::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        result => result.map(drop),
    }
}

/// `checkLeftoverEndpoints`: the Endpoints (but leader-election records) whose Service is
/// gone, deleted.
async fn delete_leftovers(client: &Client) -> Result<(), kube::Error> {
    let endpoints = Api::<Endpoints>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let services = Api::<Service>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let live: HashSet<String> = services.items.iter().map(key_of).collect();
    for leftover in endpoints
        .items
        .iter()
        .filter(|e| !live.contains(&key_of(*e)))
    {
        if leftover.annotations().contains_key(LEADER_ELECTION) {
            continue;
        }
        delete_endpoints(
            client,
            &leftover.namespace().unwrap_or_default(),
            &leftover.name_any(),
        )
        .await?;
    }
    Ok(())
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    if let Err(err) = delete_leftovers(&client).await {
        tracing::info!(%err, "endpoint controller: deleting leftover Endpoints");
    }
    let endpoints = Api::<Endpoints>::all(client.clone());
    let controller = service_controller(&client).watches(
        endpoints,
        watcher::Config::default(),
        |endpoints: Endpoints| {
            let namespace = endpoints.namespace().unwrap_or_default();
            Some(ObjectRef::<Service>::new(&endpoints.name_any()).within(&namespace))
        },
    );
    let trigger_times = Arc::new(TriggerTimes::default());
    let context = Context {
        events: Events::new(client.clone(), "endpoint-controller"),
        trigger_times: trigger_times.clone(),
        client: client.clone(),
    };
    tokio::join!(
        reconciler::run(controller, context),
        delete_with_services(client, trigger_times),
    );
}
