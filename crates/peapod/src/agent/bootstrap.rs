//! What a fresh or upgraded store must hold before the API serves: kube-apiserver's system
//! namespaces (default, kube-system, kube-public, kube-node-lease), and a Namespace for every
//! namespace that already holds pods (stores written before namespaces were objects); and the
//! default `local-path` StorageClass, unless a class of that name exists; and kube's system
//! PriorityClasses (system-node-critical, system-cluster-critical); and the default `peapod`
//! IngressClass of the agent's ingress controller; and, kept current on every
//! start as kube's master endpoint reconciler keeps them, the `default/kubernetes` Service at
//! the Service range's first address with its Endpoints and EndpointSlice pointing at the
//! node's HTTPS listener.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use peapod_store::{Store, StoreError};

/// The namespaces kube-apiserver creates at start.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates each missing namespace, Active with the `kubernetes` finalizer.
pub fn ensure_namespaces(store: &Store) -> Result<(), StoreError> {
    let mut wanted: BTreeSet<String> = SYSTEM_NAMESPACES.iter().map(|n| (*n).to_owned()).collect();
    for pod in store.list::<Pod>(None)? {
        wanted.extend(pod.metadata.namespace);
    }
    for name in wanted {
        if store.get::<Namespace>("", &name)?.is_some() {
            continue;
        }
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("kubernetes.io/metadata.name".to_owned(), name)].into()),
                ..Default::default()
            },
            spec: Some(NamespaceSpec {
                finalizers: Some(vec!["kubernetes".to_owned()]),
            }),
            status: Some(NamespaceStatus {
                phase: Some("Active".to_owned()),
                ..Default::default()
            }),
        };
        match store.create(namespace) {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Creates the default `local-path` class when no class of that name exists; one an admin
/// changed or made no longer default is left alone.
pub fn ensure_default_storage_class(store: &Store) -> Result<(), StoreError> {
    use crate::controllers::persistent_volume::provisioner::{default_class, LOCAL_PATH_CLASS};
    use k8s_openapi::api::storage::v1::StorageClass;
    if store.get::<StorageClass>("", LOCAL_PATH_CLASS)?.is_some() {
        return Ok(());
    }
    match store.create(default_class()) {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Creates the default `peapod` IngressClass when no class of that name exists; one an
/// admin changed is left alone.
pub fn ensure_ingress_class(store: &Store) -> Result<(), StoreError> {
    use k8s_openapi::api::networking::v1::IngressClass;
    if store
        .get::<IngressClass>("", peapod_ingress::CLASS_NAME)?
        .is_some()
    {
        return Ok(());
    }
    match store.create(peapod_ingress::default_class()) {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Creates each system PriorityClass that is missing, as kube-apiserver's scheduling
/// post-start hook does.
pub fn ensure_system_priority_classes(store: &Store) -> Result<(), StoreError> {
    use k8s_openapi::api::scheduling::v1::PriorityClass;
    use peapod_apis::scheduling::v1::priorityclass::system_priority_classes;
    for class in system_priority_classes() {
        let name = class.metadata.name.clone().unwrap_or_default();
        if store.get::<PriorityClass>("", &name)?.is_some() {
            continue;
        }
        match store.create(class) {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Where the API serves HTTPS: the node's address and the listener's port.
#[derive(Clone, Debug)]
pub struct ApiEndpoint {
    pub ip: String,
    pub port: u16,
}

/// kube's default `--secure-port`, the `kubernetes` Service's target when nothing serves HTTPS.
const DEFAULT_SECURE_PORT: u16 = 6443;
const KUBERNETES: &str = "kubernetes";

/// Creates or corrects the `default/kubernetes` Service, and its Endpoints and EndpointSlice
/// when HTTPS serves (removing stale ones when it does not).
pub fn ensure_kubernetes_service(
    store: &Store,
    cluster: &super::cluster::ClusterConfig,
    endpoint: Option<&ApiEndpoint>,
) -> Result<(), StoreError> {
    use k8s_openapi::api::core::v1::Endpoints;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let port = endpoint.map_or(DEFAULT_SECURE_PORT, |e| e.port);
    put(
        store,
        kubernetes_service(cluster, port),
        |stored, wanted| {
            // As kube's reconciler: the ports and type follow, the cluster IP is the stored one.
            let spec = stored.spec.get_or_insert_with(Default::default);
            let wanted = wanted.spec.clone().unwrap_or_default();
            (spec.ports, spec.type_) = (wanted.ports, wanted.type_);
        },
    )?;
    let Some(endpoint) = endpoint else {
        for result in [
            store.delete::<Endpoints>("default", KUBERNETES).map(drop),
            store
                .delete::<EndpointSlice>("default", KUBERNETES)
                .map(drop),
        ] {
            match result {
                Ok(()) | Err(StoreError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        return Ok(());
    };
    let (endpoints, slice) = kubernetes_endpoints(endpoint);
    put(store, endpoints, |stored, wanted| {
        (stored.subsets, stored.metadata.labels) =
            (wanted.subsets.clone(), wanted.metadata.labels.clone());
    })?;
    put(store, slice, |stored, wanted| {
        stored.endpoints = wanted.endpoints.clone();
        stored.ports = wanted.ports.clone();
        stored.address_type = wanted.address_type.clone();
        stored.metadata.labels = wanted.metadata.labels.clone();
    })
}

/// Creates `wanted`, or makes the stored object match it with `apply` (written only when
/// that changed something).
fn put<K: peapod_store::Object + Clone + PartialEq>(
    store: &Store,
    wanted: K,
    apply: impl Fn(&mut K, &K),
) -> Result<(), StoreError> {
    let name = wanted.metadata().name.clone().unwrap_or_default();
    if store.get::<K>("default", &name)?.is_none() {
        match store.create(wanted.clone()) {
            Ok(_) => return Ok(()),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    store.modify::<K>("default", &name, |stored| {
        let before = stored.clone();
        apply(stored, &wanted);
        *stored != before
    })?;
    Ok(())
}

fn kubernetes_service(
    cluster: &super::cluster::ClusterConfig,
    port: u16,
) -> k8s_openapi::api::core::v1::Service {
    use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec, ServiceStatus};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let ip = cluster.kubernetes_service_ip().to_string();
    Service {
        metadata: ObjectMeta {
            name: Some(KUBERNETES.into()),
            namespace: Some("default".into()),
            labels: Some(
                [("component", "apiserver"), ("provider", "kubernetes")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
            ),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: Some(ip.clone()),
            cluster_ips: Some(vec![ip]),
            ip_families: Some(vec!["IPv4".into()]),
            ip_family_policy: Some("SingleStack".into()),
            internal_traffic_policy: Some("Cluster".into()),
            session_affinity: Some("None".into()),
            ports: Some(vec![ServicePort {
                name: Some("https".into()),
                protocol: Some("TCP".into()),
                port: 443,
                target_port: Some(IntOrString::Int(i32::from(port))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: Some(ServiceStatus {
            load_balancer: Some(Default::default()),
            ..Default::default()
        }),
    }
}

fn kubernetes_endpoints(
    endpoint: &ApiEndpoint,
) -> (
    k8s_openapi::api::core::v1::Endpoints,
    k8s_openapi::api::discovery::v1::EndpointSlice,
) {
    use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
    use k8s_openapi::api::discovery::v1::{self as discovery, EndpointConditions, EndpointSlice};
    let meta = |label: (&str, &str)| ObjectMeta {
        name: Some(KUBERNETES.into()),
        namespace: Some("default".into()),
        labels: Some([(label.0.to_owned(), label.1.to_owned())].into()),
        ..Default::default()
    };
    let endpoints = Endpoints {
        metadata: meta(("endpointslice.kubernetes.io/skip-mirror", "true")),
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip: endpoint.ip.clone(),
                ..Default::default()
            }]),
            ports: Some(vec![EndpointPort {
                name: Some("https".into()),
                port: i32::from(endpoint.port),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
    };
    let slice = EndpointSlice {
        metadata: meta(("kubernetes.io/service-name", KUBERNETES)),
        address_type: "IPv4".into(),
        endpoints: vec![discovery::Endpoint {
            addresses: vec![endpoint.ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ports: Some(vec![discovery::EndpointPort {
            name: Some("https".into()),
            port: Some(i32::from(endpoint.port)),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    };
    (endpoints, slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubernetes_service_follows_the_listener() {
        use k8s_openapi::api::core::v1::{Endpoints, Service};
        use k8s_openapi::api::discovery::v1::EndpointSlice;
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        let store = Store::open_in_memory().unwrap();
        let cluster =
            super::super::cluster::ClusterConfig::new("10.43.7.0/24", "cluster.local").unwrap();
        ensure_kubernetes_service(&store, &cluster, None).unwrap();
        let service = store
            .get::<Service>("default", "kubernetes")
            .unwrap()
            .unwrap();
        let spec = service.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.43.7.1"));
        assert_eq!(
            spec.ports.unwrap()[0].target_port,
            Some(IntOrString::Int(6443))
        );
        assert!(store
            .get::<Endpoints>("default", "kubernetes")
            .unwrap()
            .is_none());

        let endpoint = ApiEndpoint {
            ip: "192.168.1.5".into(),
            port: 16443,
        };
        ensure_kubernetes_service(&store, &cluster, Some(&endpoint)).unwrap();
        ensure_kubernetes_service(&store, &cluster, Some(&endpoint)).unwrap();
        let service = store
            .get::<Service>("default", "kubernetes")
            .unwrap()
            .unwrap();
        let port = &service.spec.unwrap().ports.unwrap()[0];
        assert_eq!(
            (port.port, port.target_port.clone()),
            (443, Some(IntOrString::Int(16443)))
        );
        let endpoints = store
            .get::<Endpoints>("default", "kubernetes")
            .unwrap()
            .unwrap();
        let subset = &endpoints.subsets.unwrap()[0];
        assert_eq!(subset.addresses.as_ref().unwrap()[0].ip, "192.168.1.5");
        assert_eq!(subset.ports.as_ref().unwrap()[0].port, 16443);
        let slice = store
            .get::<EndpointSlice>("default", "kubernetes")
            .unwrap()
            .unwrap();
        assert_eq!(slice.endpoints[0].addresses, ["192.168.1.5"]);
        let labels = slice.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/service-name"], "kubernetes");

        ensure_kubernetes_service(&store, &cluster, None).unwrap();
        assert!(store
            .get::<EndpointSlice>("default", "kubernetes")
            .unwrap()
            .is_none());
    }

    #[test]
    fn system_namespaces_exist_once() {
        let store = Store::open_in_memory().unwrap();
        ensure_namespaces(&store).unwrap();
        ensure_namespaces(&store).unwrap();
        let names: Vec<String> = store
            .list::<Namespace>(None)
            .unwrap()
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        assert_eq!(
            names,
            ["default", "kube-node-lease", "kube-public", "kube-system"]
        );
    }

    #[test]
    fn the_default_class_is_created_once_and_an_admins_change_kept() {
        use k8s_openapi::api::storage::v1::StorageClass;
        let store = Store::open_in_memory().unwrap();
        ensure_default_storage_class(&store).unwrap();
        let mut class = store
            .get::<StorageClass>("", "local-path")
            .unwrap()
            .unwrap();
        assert_eq!(class.provisioner, "rancher.io/local-path");
        assert_eq!(
            class.volume_binding_mode.as_deref(),
            Some("WaitForFirstConsumer")
        );
        class.metadata.annotations = None;
        store.update(class).unwrap();
        ensure_default_storage_class(&store).unwrap();
        let kept = store
            .get::<StorageClass>("", "local-path")
            .unwrap()
            .unwrap();
        assert_eq!(kept.metadata.annotations, None);
    }

    #[test]
    fn the_default_ingress_class_is_created_once() {
        use k8s_openapi::api::networking::v1::IngressClass;
        let store = Store::open_in_memory().unwrap();
        ensure_ingress_class(&store).unwrap();
        ensure_ingress_class(&store).unwrap();
        let classes = store.list::<IngressClass>(None).unwrap();
        assert_eq!(classes.len(), 1);
        let controller = classes[0]
            .spec
            .as_ref()
            .and_then(|s| s.controller.as_deref());
        assert_eq!(controller, Some(peapod_ingress::CONTROLLER));
    }

    #[test]
    fn the_system_priority_classes_are_created_once() {
        use k8s_openapi::api::scheduling::v1::PriorityClass;
        let store = Store::open_in_memory().unwrap();
        ensure_system_priority_classes(&store).unwrap();
        ensure_system_priority_classes(&store).unwrap();
        let classes: Vec<(String, i32)> = store
            .list::<PriorityClass>(None)
            .unwrap()
            .into_iter()
            .map(|c| (c.metadata.name.unwrap_or_default(), c.value))
            .collect();
        assert_eq!(
            classes,
            [
                ("system-cluster-critical".to_owned(), 2_000_000_000),
                ("system-node-critical".to_owned(), 2_000_001_000),
            ]
        );
    }
}
