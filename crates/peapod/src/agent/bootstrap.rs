//! What a fresh or upgraded store must hold before the API serves: kube-apiserver's system
//! namespaces (default, kube-system, kube-public, kube-node-lease), and a Namespace for every
//! namespace that already holds pods (stores written before namespaces were objects); and the
//! default `local-path` StorageClass, unless a class of that name exists; and kube's system
//! PriorityClasses (system-node-critical, system-cluster-critical).

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

#[cfg(test)]
mod tests {
    use super::*;

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
