//! How object types and objects are named: the database key and the resource in error messages.

use std::any::TypeId;
use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;

use crate::{Object, StoreError};

/// The storage identity of a kind at run time: what the store keys objects by and names them
/// with in errors. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResourceKey(Arc<Parts>);

#[derive(PartialEq, Eq, Hash)]
struct Parts {
    group: String,
    kind: String,
    plural: String,
    namespaced: bool,
    /// Database kind column: `Pod`, or `Deployment.apps` for grouped kinds.
    storage_kind: String,
    /// Qualified API resource for messages: `pods`, `deployments.apps`.
    resource: String,
}

impl ResourceKey {
    /// A kind of `group` ("" for core) whose resource is `plural`.
    pub fn new(group: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceKey {
        let qualify = |name: &str| match group {
            "" => name.to_owned(),
            _ => format!("{name}.{group}"),
        };
        ResourceKey(Arc::new(Parts {
            group: group.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced,
            storage_kind: qualify(kind),
            resource: qualify(plural),
        }))
    }

    /// The key of a k8s-openapi type.
    pub fn of<K: Object>() -> ResourceKey {
        let namespaced = TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>();
        ResourceKey::new(K::GROUP, K::KIND, K::URL_PATH_SEGMENT, namespaced)
    }

    pub fn group(&self) -> &str {
        &self.0.group
    }

    pub fn kind(&self) -> &str {
        &self.0.kind
    }

    pub fn plural(&self) -> &str {
        &self.0.plural
    }

    pub fn namespaced(&self) -> bool {
        self.0.namespaced
    }

    /// The qualified resource the API server names in messages: `pods`, `deployments.apps`.
    pub fn resource(&self) -> &str {
        &self.0.resource
    }

    /// The database `kind` column: `Pod`, `Deployment.apps`.
    pub fn storage_kind(&self) -> &str {
        &self.0.storage_kind
    }

    /// The namespace an object of this kind is stored under: always "" when cluster-scoped.
    pub(crate) fn namespace(&self, requested: Option<&str>) -> String {
        match requested {
            Some(namespace) if self.namespaced() => namespace.to_owned(),
            _ => String::new(),
        }
    }

    /// The namespace filter to apply to a list or watch of this kind.
    pub(crate) fn namespace_filter(&self, requested: Option<&str>) -> Option<String> {
        requested.filter(|_| self.namespaced()).map(str::to_owned)
    }

    pub(crate) fn object(&self, namespace: Option<&str>, name: &str) -> ObjectKey {
        ObjectKey {
            ty: self.clone(),
            namespace: self.namespace(namespace),
            name: name.to_owned(),
        }
    }
}

impl std::fmt::Debug for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceKey")
            .field("resource", &self.0.resource)
            .field("kind", &self.0.kind)
            .field("namespaced", &self.0.namespaced)
            .finish()
    }
}

/// The full identity of one stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ObjectKey {
    pub ty: ResourceKey,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn not_found(&self) -> StoreError {
        StoreError::NotFound {
            kind: self.ty.resource().to_owned(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    pub fn already_exists(&self) -> StoreError {
        StoreError::AlreadyExists {
            kind: self.ty.resource().to_owned(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    pub fn conflict(&self) -> StoreError {
        StoreError::Conflict {
            kind: self.ty.resource().to_owned(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    pub fn precondition_failed(&self, message: String) -> StoreError {
        StoreError::PreconditionFailed {
            kind: self.ty.resource().to_owned(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            key: self.registry_path(),
            message,
        }
    }

    pub fn invalid(&self, message: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            kind: self.ty.resource().to_owned(),
            name: self.name.clone(),
            message: message.into(),
        }
    }

    /// Decodes this object's stored value as `K`.
    pub fn decode<K: Object>(&self, value: &serde_json::Value) -> Result<K, StoreError> {
        K::deserialize(value).map_err(|source| self.decode_error(source))
    }

    pub fn decode_error(&self, source: serde_json::Error) -> StoreError {
        StoreError::Decode {
            kind: self.ty.resource().to_owned(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    /// Where etcd would keep the object (`/registry/pods/default/web`), for kube's messages.
    fn registry_path(&self) -> String {
        let mut path = String::from("/registry/");
        for part in [self.ty.group(), self.ty.plural(), &self.namespace] {
            if !part.is_empty() {
                path.push_str(part);
                path.push('/');
            }
        }
        path + &self.name
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Node, Pod};

    use super::*;

    #[test]
    fn core_types_use_kind_and_plural() {
        let pod = ResourceKey::of::<Pod>();
        assert_eq!((pod.storage_kind(), pod.resource()), ("Pod", "pods"));
        assert!(pod.namespaced());
        assert_eq!((pod.group(), pod.kind(), pod.plural()), ("", "Pod", "pods"));
    }

    #[test]
    fn grouped_types_are_qualified() {
        let deployment = ResourceKey::of::<Deployment>();
        assert_eq!(deployment.storage_kind(), "Deployment.apps");
        assert_eq!(deployment.resource(), "deployments.apps");
        assert_eq!(
            deployment,
            ResourceKey::new("apps", "Deployment", "deployments", true)
        );
    }

    #[test]
    fn cluster_scoped_types_ignore_namespaces() {
        let node = ResourceKey::of::<Node>();
        assert!(!node.namespaced());
        assert_eq!(node.object(Some("default"), "n1").namespace, "");
        assert_eq!(node.namespace_filter(Some("default")), None);
        let pod = ResourceKey::of::<Pod>();
        assert_eq!(pod.object(Some("default"), "web").namespace, "default");
    }

    #[test]
    fn registry_paths_follow_etcd_keys() {
        let pod = ResourceKey::of::<Pod>().object(Some("default"), "web");
        assert_eq!(pod.registry_path(), "/registry/pods/default/web");
        let widget = ResourceKey::new("example.com", "Widget", "widgets", false);
        assert_eq!(
            widget.object(None, "w").registry_path(),
            "/registry/example.com/widgets/w"
        );
    }
}
