//! The EndpointSlice controller's loop: kube-runtime's Controller over the in-process API,
//! triggered by Services, by pods (mapped to the Services selecting them) and by the slices
//! it owns; each reconcile kube's `syncService` of one Service in the
//! [shared loop](crate::controllers::reconciler).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::desired::MAX_ENDPOINTS_PER_SLICE;
use super::desired::{desired_groups, CONTROLLER_NAME, LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use super::placement::{plan, Plan};
use super::selecting::{selected_pods, service_controller};
use super::trigger_time::TriggerTimes;
use crate::controllers::api_errors::namespace_terminating;
use crate::controllers::events::{Event, Events};
use crate::controllers::reconciler::{self, Reconciler};
use crate::controllers::retries::key_of;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("failed to {action} for Service {service}: {source}")]
    Write {
        action: String,
        service: String,
        source: kube::Error,
    },
}

/// kube's finalize errors: what failed, on which Service.
fn write_error(action: String, service: &Service) -> impl FnOnce(kube::Error) -> SyncError {
    let service = key_of(service);
    move |source| SyncError::Write {
        action,
        service,
        source,
    }
}

pub struct Context {
    client: Client,
    events: Events,
    trigger_times: TriggerTimes,
}

impl Reconciler for Context {
    type Object = Service;
    type Error = SyncError;
    const LOG_NAME: &'static str = "endpointslice controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, service: Service) -> Result<Action, SyncError> {
        // Independent reads, made together: each change waits on them before traffic follows.
        let (pods, existing) = tokio::try_join!(
            async { Ok(selected_pods(&self.client, &service).await?) },
            managed_slices(&service, &self.client)
        )?;
        let Some(pods) = pods else {
            return Ok(Action::await_change());
        };
        let namespace = service.namespace().unwrap_or_default();
        let pods: Vec<&Pod> = pods.iter().collect();
        let trigger = self
            .trigger_times
            .compute(&key_of(&service), &service, &pods);
        if let Err(err) = self.reconcile(&service, &pods, existing, trigger).await {
            let message = format!(
                "Error updating Endpoint Slices for Service {namespace}/{}: {err}",
                service.name_any()
            );
            let event = Event::warning("FailedToUpdateEndpointSlices", message);
            self.events.record(&service, event).await;
            return Err(err);
        }
        Ok(Action::await_change())
    }

    fn forget(&self, gone: &Service) {
        self.trigger_times.forget(&key_of(gone));
    }
}

impl Context {
    async fn reconcile(
        &self,
        service: &Service,
        pods: &[&Pod],
        existing: Vec<EndpointSlice>,
        trigger: Option<Timestamp>,
    ) -> Result<(), SyncError> {
        let desired = desired_groups(service, pods);
        let plan = plan(service, existing, desired, MAX_ENDPOINTS_PER_SLICE, trigger);
        if !plan.is_empty() {
            write(service, plan, &self.client).await?;
        }
        Ok(())
    }
}

/// The slices this controller manages for the Service, those being deleted left out.
async fn managed_slices(
    service: &Service,
    client: &Client,
) -> Result<Vec<EndpointSlice>, SyncError> {
    let namespace = service.namespace().unwrap_or_default();
    let api = Api::<EndpointSlice>::namespaced(client.clone(), &namespace);
    let selector = format!(
        "{LABEL_SERVICE_NAME}={},{LABEL_MANAGED_BY}={CONTROLLER_NAME}",
        service.name_any()
    );
    let slices = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    Ok(slices
        .into_iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect())
}

/// `finalize`'s writes: creates (dropped in a terminating namespace), updates, deletes
/// (tolerating slices already gone).
async fn write(service: &Service, plan: Plan, client: &Client) -> Result<(), SyncError> {
    let namespace = service.namespace().unwrap_or_default();
    let api = Api::<EndpointSlice>::namespaced(client.clone(), &namespace);
    for slice in &plan.create {
        match api.create(&PostParams::default(), slice).await {
            Err(kube::Error::Api(status)) if namespace_terminating(&status) => return Ok(()),
            result => result.map_err(write_error("create EndpointSlice".into(), service))?,
        };
    }
    for slice in &plan.update {
        let name = slice.name_any();
        let failed = write_error(format!("update {name} EndpointSlice"), service);
        api.replace(&name, &PostParams::default(), slice)
            .await
            .map_err(failed)?;
    }
    for slice in &plan.delete {
        let name = slice.name_any();
        match api.delete(&name, &DeleteParams::default()).await {
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            result => {
                let failed = write_error(format!("delete {name} EndpointSlice"), service);
                result.map_err(failed)?;
            }
        }
    }
    Ok(())
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let slices = Api::<EndpointSlice>::all(client.clone());
    let controller = service_controller(&client).owns(slices, watcher::Config::default());
    let context = Context {
        events: Events::new(client.clone(), "endpoint-slice-controller"),
        trigger_times: TriggerTimes::default(),
        client,
    };
    reconciler::run(controller, context).await;
}
