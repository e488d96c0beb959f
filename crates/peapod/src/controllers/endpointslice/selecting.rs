//! The pods a Service selects, and which Services select a pod, for the endpoints and
//! EndpointSlice controllers.

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::ListParams;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::controllers::pod_selectors::{triggered_by_pods, Labels};

/// The Service's selector, when it has one (a Service without selector has no managed
/// endpoints).
pub fn selector_of(service: &Service) -> Option<&Labels> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref()
}

/// `labels.Set(selector).AsSelector()` as a list's labelSelector.
pub fn selector_string(selector: &Labels) -> String {
    let pairs: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}

fn selects(service: &Service, labels: &Labels) -> bool {
    selector_of(service)
        .is_some_and(|selector| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// The pods of its namespace the Service selects; none to manage for a Service without
/// selector.
pub async fn selected_pods(
    client: &Client,
    service: &Service,
) -> Result<Option<Vec<Pod>>, kube::Error> {
    let Some(selector) = selector_of(service) else {
        return Ok(None);
    };
    let namespace = service.namespace().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace);
    let params = ListParams::default().labels(&selector_string(selector));
    Ok(Some(pods.list(&params).await?.items))
}

/// A Controller over all Services, triggered as well by the pods they select.
pub fn service_controller(client: &Client) -> Controller<Service> {
    let services = Api::<Service>::all(client.clone());
    let controller = Controller::new(services, watcher::Config::default());
    triggered_by_pods(controller, client, selects)
}
