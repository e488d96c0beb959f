//! The cluster DNS in the agent: the kube-system/kube-dns Service at the Service range's .10
//! (selectorless, labelled as k3s labels CoreDNS's), its Endpoints and EndpointSlice pointing
//! at port 53 of the pod bridge's gateway, rewritten at each start; and peapod-dns serving
//! there, watching the cluster as kube-system/coredns. The resolvers other names go to are
//! those of /etc/resolv.conf, or of the file PEAPOD_DNS_RESOLV_CONF names.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use peapod_apiserver::authn::User;
use peapod_net::NetworkConfig;

use super::cluster::ClusterConfig;
use crate::kubelet::Context;

pub const NAMESPACE: &str = "kube-system";
pub const SERVICE_NAME: &str = "kube-dns";
/// The EndpointSlice's name and the managed-by label: no controller of kube's touches it.
const MANAGER: &str = "peapod";
const DNS_PORT: u16 = 53;
/// How often writing the objects is tried before giving up until the next start.
const PUBLISH_ATTEMPTS: u32 = 10;

/// The Service, Endpoints and EndpointSlice that make `dns_service_ip():53` reach `server`.
pub fn objects(cluster: &ClusterConfig, server: Ipv4Addr) -> (Service, Endpoints, EndpointSlice) {
    let labels = |extra: &[(&str, &str)]| {
        let labels: std::collections::BTreeMap<String, String> = [
            ("k8s-app", "kube-dns"),
            ("kubernetes.io/name", "CoreDNS"),
            ("kubernetes.io/cluster-service", "true"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Some(labels)
    };
    let meta = |name: &str, extra: &[(&str, &str)]| ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NAMESPACE.into()),
        labels: labels(extra),
        ..ObjectMeta::default()
    };
    let ports = [("dns", "UDP"), ("dns-tcp", "TCP")];
    let ip = cluster.dns_service_ip().to_string();
    let service = Service {
        metadata: meta(SERVICE_NAME, &[]),
        spec: Some(ServiceSpec {
            cluster_ip: Some(ip.clone()),
            cluster_ips: Some(vec![ip]),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, protocol)| ServicePort {
                        name: Some(name.to_string()),
                        protocol: Some(protocol.to_string()),
                        port: i32::from(DNS_PORT),
                        target_port: Some(
                            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(53),
                        ),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    let endpoints = Endpoints {
        metadata: meta(
            SERVICE_NAME,
            &[("endpointslice.kubernetes.io/skip-mirror", "true")],
        ),
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip: server.to_string(),
                ..EndpointAddress::default()
            }]),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, protocol)| EndpointPort {
                        name: Some(name.to_string()),
                        protocol: Some(protocol.to_string()),
                        port: i32::from(DNS_PORT),
                        ..EndpointPort::default()
                    })
                    .collect(),
            ),
            ..EndpointSubset::default()
        }]),
    };
    let slice = EndpointSlice {
        metadata: meta(
            &format!("{SERVICE_NAME}-{MANAGER}"),
            &[
                ("kubernetes.io/service-name", SERVICE_NAME),
                ("endpointslice.kubernetes.io/managed-by", MANAGER),
            ],
        ),
        address_type: "IPv4".into(),
        endpoints: vec![Endpoint {
            addresses: vec![server.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            ..Endpoint::default()
        }],
        ports: Some(
            ports
                .iter()
                .map(
                    |(name, protocol)| k8s_openapi::api::discovery::v1::EndpointPort {
                        name: Some(name.to_string()),
                        protocol: Some(protocol.to_string()),
                        port: Some(i32::from(DNS_PORT)),
                        ..Default::default()
                    },
                )
                .collect(),
        ),
    };
    (service, endpoints, slice)
}

/// Writes the three objects (retrying while the API is not ready), replacing what an earlier
/// start wrote: a Service whose clusterIP changed with the range is deleted and created anew.
pub async fn publish(client: kube::Client, cluster: &ClusterConfig, server: Ipv4Addr) {
    let (service, endpoints, slice) = objects(cluster, server);
    for attempt in 1..=PUBLISH_ATTEMPTS {
        let result = async {
            put_service(Api::namespaced(client.clone(), NAMESPACE), service.clone()).await?;
            put(
                Api::namespaced(client.clone(), NAMESPACE),
                endpoints.clone(),
            )
            .await?;
            put(Api::namespaced(client.clone(), NAMESPACE), slice.clone()).await
        };
        match result.await {
            Ok(()) => return,
            Err(error) if attempt == PUBLISH_ATTEMPTS => {
                tracing::error!(%error, "writing the kube-dns Service: pods cannot reach the cluster DNS at {}", cluster.dns_service_ip());
            }
            Err(error) => {
                tracing::debug!(%error, attempt, "writing the kube-dns Service");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
}

async fn put_service(api: Api<Service>, wanted: Service) -> Result<(), kube::Error> {
    let name = wanted.metadata.name.clone().unwrap_or_default();
    if let Some(existing) = api.get_opt(&name).await? {
        let same_ip = existing.spec.as_ref().and_then(|s| s.cluster_ip.as_deref())
            == wanted.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
        if same_ip {
            let mut updated = existing;
            updated.metadata.labels = wanted.metadata.labels;
            let spec = updated.spec.get_or_insert_with(Default::default);
            spec.ports = wanted.spec.and_then(|s| s.ports);
            spec.selector = None;
            api.replace(&name, &PostParams::default(), &updated).await?;
            return Ok(());
        }
        api.delete(&name, &DeleteParams::default()).await?;
    }
    api.create(&PostParams::default(), &wanted).await?;
    Ok(())
}

async fn put<K>(api: Api<K>, mut wanted: K) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = wanted.meta().name.clone().unwrap_or_default();
    match api.get_opt(&name).await? {
        Some(existing) => {
            wanted.meta_mut().resource_version = existing.meta().resource_version.clone();
            api.replace(&name, &PostParams::default(), &wanted).await?;
        }
        None => {
            api.create(&PostParams::default(), &wanted).await?;
        }
    }
    Ok(())
}

/// What peapod-dns serves: the cluster domain on the bridge's gateway, the pod and Service
/// ranges' reverse names, everything else forwarded.
pub fn dns_config(cluster: &ClusterConfig, network: &NetworkConfig) -> peapod_dns::DnsConfig {
    let resolv_conf = std::env::var_os("PEAPOD_DNS_RESOLV_CONF")
        .filter(|path| !path.is_empty())
        .map_or_else(|| PathBuf::from("/etc/resolv.conf"), PathBuf::from);
    peapod_dns::DnsConfig {
        domain: cluster.domain.clone(),
        service_ip: cluster.dns_service_ip(),
        ranges: vec![network.cidr, cluster.service_cidr],
        listen: vec![SocketAddr::from((network.gateway().addr(), DNS_PORT))],
        resolv_conf,
    }
}

/// Publishes the kube-dns objects as the API server itself, then serves DNS watching as
/// kube-system/coredns, until aborted.
pub fn spawn(app: &axum::Router, ctx: &Context) -> tokio::task::JoinHandle<()> {
    let audited = app
        .clone()
        .layer(axum::middleware::from_fn(super::audit::log));
    let apiserver = User::new("system:apiserver", &["system:masters"]);
    let writer = crate::controllers::client::in_process(audited, apiserver, MANAGER);
    let watcher = super::controller_client(app, peapod_apiserver::rbac::bootstrap::COREDNS);
    let network = ctx.network.config().clone();
    tokio::spawn(run(writer, watcher, ctx.cluster.clone(), network))
}

/// A listener that cannot bind leaves pods without cluster DNS, said in the log.
async fn run(
    writer: kube::Client,
    watcher: kube::Client,
    cluster: ClusterConfig,
    network: NetworkConfig,
) {
    let config = dns_config(&cluster, &network);
    publish(writer, &cluster, network.gateway().addr()).await;
    if let Err(error) = peapod_dns::run(config, watcher).await {
        tracing::error!(
            %error,
            "the cluster DNS is down: pods' resolv.conf names {} but nothing answers there",
            cluster.dns_service_ip()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_objects_point_the_range_s_tenth_address_at_the_gateway() {
        let cluster = ClusterConfig::new("10.43.7.0/24", "cluster.local").unwrap();
        let (service, endpoints, slice) = objects(&cluster, Ipv4Addr::new(10, 42, 3, 1));
        let spec = service.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.43.7.10"));
        assert_eq!(spec.selector, None);
        let ports: Vec<_> = spec
            .ports
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}/{}/{}",
                    p.name.clone().unwrap(),
                    p.port,
                    p.protocol.clone().unwrap()
                )
            })
            .collect();
        assert_eq!(ports, ["dns/53/UDP", "dns-tcp/53/TCP"]);
        let labels = service.metadata.labels.unwrap();
        assert_eq!(labels["k8s-app"], "kube-dns");
        assert_eq!(labels["kubernetes.io/name"], "CoreDNS");
        assert_eq!(
            endpoints.metadata.labels.unwrap()["endpointslice.kubernetes.io/skip-mirror"],
            "true"
        );
        assert_eq!(
            endpoints.subsets.unwrap()[0].addresses.as_ref().unwrap()[0].ip,
            "10.42.3.1"
        );
        let slice_labels = slice.metadata.labels.unwrap();
        assert_eq!(slice_labels["kubernetes.io/service-name"], "kube-dns");
        assert_eq!(
            slice_labels["endpointslice.kubernetes.io/managed-by"],
            "peapod"
        );
        assert_eq!(slice.endpoints[0].addresses, ["10.42.3.1"]);
    }

    #[test]
    fn dns_listens_on_the_gateway_and_answers_both_ranges() {
        let cluster = ClusterConfig::default();
        let network = NetworkConfig::new("peapod0", "10.42.0.0/24").unwrap();
        let config = dns_config(&cluster, &network);
        assert_eq!(config.listen, ["10.42.0.1:53".parse().unwrap()]);
        assert_eq!(config.service_ip, Ipv4Addr::new(10, 43, 0, 10));
        assert_eq!(config.ranges.len(), 2);
    }
}
