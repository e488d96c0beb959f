//! The LoadBalancer status, as k3s' ServiceLB sets it but without its pods: a Service of type
//! LoadBalancer that names no loadBalancerClass gets the node's address as its ingress,
//! ipMode VIP, and the proxy answers on that address; a Service that stops being a
//! LoadBalancer has the ingress removed.

use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};

const ATTEMPTS: u32 = 5;

/// Runs the controller until the task is dropped.
pub async fn run(client: kube::Client, node_ip: Ipv4Addr) {
    let services = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    futures::pin_mut!(services);
    while let Some(service) = services.next().await {
        let service = match service {
            Ok(service) => service,
            Err(err) => {
                tracing::warn!(%err, "watching Services for their LoadBalancer status");
                continue;
            }
        };
        let Some(ingress) = desired_ingress(&service, node_ip) else {
            continue;
        };
        if current_ingress(&service) == ingress {
            continue;
        }
        set_ingress(&client, &service, ingress).await;
    }
}

/// The ingress the Service should have; None when another implementation owns it.
pub fn desired_ingress(service: &Service, node_ip: Ipv4Addr) -> Option<Vec<LoadBalancerIngress>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return Some(Vec::new());
    }
    if spec.load_balancer_class.is_some() {
        return None;
    }
    Some(vec![LoadBalancerIngress {
        ip: Some(node_ip.to_string()),
        ip_mode: Some("VIP".into()),
        ..LoadBalancerIngress::default()
    }])
}

fn current_ingress(service: &Service) -> Vec<LoadBalancerIngress> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default()
}

async fn set_ingress(client: &kube::Client, service: &Service, ingress: Vec<LoadBalancerIngress>) {
    let api: Api<Service> =
        Api::namespaced(client.clone(), &service.namespace().unwrap_or_default());
    let ingress = if ingress.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(&ingress).expect("ingress serializes")
    };
    let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": ingress}}});
    let name = service.name_any();
    for attempt in 1..=ATTEMPTS {
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(status)) if status.code == 404 => return,
            Err(err) if attempt == ATTEMPTS => {
                tracing::warn!(%err, service = %name, "setting the LoadBalancer status");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(spec: serde_json::Value) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "lb", "namespace": "ns"}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn load_balancers_get_the_node_address_as_a_vip() {
        let node = Ipv4Addr::new(192, 0, 2, 7);
        let ours = service(serde_json::json!({"type": "LoadBalancer", "ports": [{"port": 80}]}));
        let ingress = desired_ingress(&ours, node).unwrap();
        assert_eq!(ingress.len(), 1);
        assert_eq!(ingress[0].ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(ingress[0].ip_mode.as_deref(), Some("VIP"));
        let classed =
            service(serde_json::json!({"type": "LoadBalancer", "loadBalancerClass": "x/y"}));
        assert!(desired_ingress(&classed, node).is_none());
        let plain = service(serde_json::json!({"type": "ClusterIP"}));
        assert_eq!(desired_ingress(&plain, node), Some(Vec::new()));
    }
}
