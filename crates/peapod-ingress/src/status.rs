//! The served Ingresses' `status.loadBalancer.ingress`: the node's address, as ingress-nginx
//! publishes its Service's address, written only when it differs.

use std::net::IpAddr;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;

/// Whether the Ingress's status lists anything but `ip`.
pub fn needs_update(ingress: &Ingress, ip: IpAddr) -> bool {
    let points = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default();
    let ip = ip.to_string();
    !matches!(points, [only] if only.ip.as_deref() == Some(ip.as_str()) && only.hostname.is_none())
}

/// Sets the Ingress's load-balancer status to `ip`.
pub async fn publish(
    client: &kube::Client,
    ingress: &Ingress,
    ip: IpAddr,
) -> Result<(), kube::Error> {
    let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
    let name = ingress.metadata.name.as_deref().unwrap_or_default();
    let api = Api::<Ingress>::namespaced(client.clone(), namespace);
    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": ip.to_string()}]}}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(status: serde_json::Value) -> Ingress {
        serde_json::from_value(json!({"metadata": {"name": "web"}, "status": status})).unwrap()
    }

    #[test]
    fn only_a_different_address_is_written() {
        let ip: IpAddr = "192.168.1.10".parse().unwrap();
        assert!(needs_update(&ingress(json!({})), ip));
        assert!(needs_update(
            &ingress(json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}})),
            ip
        ));
        assert!(!needs_update(
            &ingress(json!({"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}]}})),
            ip
        ));
    }
}
