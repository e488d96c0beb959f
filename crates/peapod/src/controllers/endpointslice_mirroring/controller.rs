//! The mirroring controller's loop: kube-runtime's Controller over Endpoints, triggered by
//! them, by Services (mapped to the Endpoints of the same name) and by the slices they own,
//! each reconcile kube's `syncEndpoints` in the [shared loop](crate::controllers::reconciler).
//! Deleted Endpoints take their slices with them through the garbage collector.

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::mirror::{desired, plan, CONTROLLER_NAME, LABEL_SKIP_MIRROR, MAX_PER_SUBSET};
use crate::controllers::api_errors::namespace_terminating;
use crate::controllers::endpointslice::desired::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use crate::controllers::endpointslice::placement::Plan;
use crate::controllers::events::{Event, Events};
use crate::controllers::reconciler::{self, Reconciler};

/// The annotation of client-go's leader election records, never mirrored.
const LEADER_ELECTION: &str = "control-plane.alpha.kubernetes.io/leader";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Api(#[from] kube::Error),
}

pub struct Context {
    client: Client,
    events: Events,
}

impl Reconciler for Context {
    type Object = Endpoints;
    type Error = SyncError;
    const LOG_NAME: &'static str = "endpointslice mirroring controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, endpoints: Endpoints) -> Result<Action, SyncError> {
        let namespace = endpoints.namespace().unwrap_or_default();
        let name = endpoints.name_any();
        let services = Api::<Service>::namespaced(self.client.clone(), &namespace);
        // Independent reads, made together: each change waits on them before traffic follows.
        let service = async {
            match should_mirror(&endpoints) {
                true => Ok(services.get_opt(&name).await?),
                false => Ok(None),
            }
        };
        let (service, existing) =
            tokio::try_join!(service, self.mirrored_slices(&namespace, &name))?;
        let selectorless = service.is_some_and(|s| s.spec.and_then(|s| s.selector).is_none());
        let plan = match selectorless {
            true => self.mirror(&endpoints, existing).await,
            false => Plan {
                delete: existing,
                ..Plan::default()
            },
        };
        self.write(&namespace, plan).await?;
        Ok(Action::await_change())
    }
}

/// `shouldMirror`: neither labelled skip-mirror nor a leader-election record.
fn should_mirror(endpoints: &Endpoints) -> bool {
    let skip = endpoints
        .labels()
        .get(LABEL_SKIP_MIRROR)
        .map(String::as_str)
        == Some("true");
    !skip && !endpoints.annotations().contains_key(LEADER_ELECTION)
}

impl Context {
    async fn mirrored_slices(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<EndpointSlice>, SyncError> {
        let api = Api::<EndpointSlice>::namespaced(self.client.clone(), namespace);
        let selector = format!("{LABEL_SERVICE_NAME}={name},{LABEL_MANAGED_BY}={CONTROLLER_NAME}");
        Ok(api
            .list(&ListParams::default().labels(&selector))
            .await?
            .items)
    }

    /// The plan mirroring `endpoints`, with kube's warnings for the addresses it skipped.
    async fn mirror(&self, endpoints: &Endpoints, existing: Vec<EndpointSlice>) -> Plan {
        let wanted = desired(endpoints);
        if wanted.invalid > 0 {
            let message = format!(
                "Skipped {} invalid IP addresses when mirroring to EndpointSlices",
                wanted.invalid
            );
            self.events
                .record(endpoints, Event::warning("InvalidIPAddress", message))
                .await;
        }
        if wanted.skipped > wanted.invalid {
            let message = format!(
                "A max of {MAX_PER_SUBSET} addresses can be mirrored to EndpointSlices per \
                 Endpoints subset. {} addresses were skipped",
                wanted.skipped
            );
            self.events
                .record(
                    endpoints,
                    Event::warning("TooManyAddressesToMirror", message),
                )
                .await;
        }
        plan(endpoints, existing, wanted)
    }

    async fn write(&self, namespace: &str, plan: Plan) -> Result<(), SyncError> {
        let api = Api::<EndpointSlice>::namespaced(self.client.clone(), namespace);
        for slice in &plan.create {
            match api.create(&PostParams::default(), slice).await {
                Err(kube::Error::Api(status)) if namespace_terminating(&status) => return Ok(()),
                result => result?,
            };
        }
        for slice in &plan.update {
            api.replace(&slice.name_any(), &PostParams::default(), slice)
                .await?;
        }
        for slice in &plan.delete {
            match api
                .delete(&slice.name_any(), &DeleteParams::default())
                .await
            {
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                result => {
                    result?;
                }
            }
        }
        Ok(())
    }
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let endpoints = Api::<Endpoints>::all(client.clone());
    let services = Api::<Service>::all(client.clone());
    let slices = Api::<EndpointSlice>::all(client.clone());
    let controller = Controller::new(endpoints, watcher::Config::default())
        .watches(services, watcher::Config::default(), |service: Service| {
            let namespace = service.namespace().unwrap_or_default();
            Some(ObjectRef::<Endpoints>::new(&service.name_any()).within(&namespace))
        })
        .owns(slices, watcher::Config::default());
    let context = Context {
        events: Events::new(client.clone(), "endpoint-slice-mirroring-controller"),
        client,
    };
    reconciler::run(controller, context).await;
}
