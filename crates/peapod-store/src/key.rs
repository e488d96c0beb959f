//! How object types and objects are named: the database key and the resource in error messages.

use std::any::TypeId;

use k8s_openapi::NamespaceResourceScope;

use crate::{Object, StoreError};

/// The storage identity of an object type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TypeInfo {
    /// Database kind column: `Pod`, or `Deployment.apps` for grouped types.
    pub key: String,
    /// Qualified API resource for messages: `pods`, `deployments.apps`.
    pub resource: String,
    pub namespaced: bool,
}

impl TypeInfo {
    pub fn of<K: Object>() -> TypeInfo {
        let (key, resource) = if K::GROUP.is_empty() {
            (K::KIND.to_owned(), K::URL_PATH_SEGMENT.to_owned())
        } else {
            (
                format!("{}.{}", K::KIND, K::GROUP),
                format!("{}.{}", K::URL_PATH_SEGMENT, K::GROUP),
            )
        };
        TypeInfo {
            key,
            resource,
            namespaced: TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>(),
        }
    }

    /// The namespace an object of this type is stored under: always "" when cluster-scoped.
    pub fn namespace(&self, requested: Option<&str>) -> String {
        match requested {
            Some(namespace) if self.namespaced => namespace.to_owned(),
            _ => String::new(),
        }
    }

    /// The namespace filter to apply to a list or watch of this type.
    pub fn namespace_filter(&self, requested: Option<&str>) -> Option<String> {
        requested.filter(|_| self.namespaced).map(str::to_owned)
    }

    pub fn object(&self, namespace: Option<&str>, name: &str) -> ObjectKey {
        ObjectKey {
            ty: self.clone(),
            namespace: self.namespace(namespace),
            name: name.to_owned(),
        }
    }
}

/// The full identity of one stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ObjectKey {
    pub ty: TypeInfo,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn not_found(&self) -> StoreError {
        StoreError::NotFound {
            kind: self.ty.resource.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    pub fn already_exists(&self) -> StoreError {
        StoreError::AlreadyExists {
            kind: self.ty.resource.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    pub fn conflict(&self) -> StoreError {
        StoreError::Conflict {
            kind: self.ty.resource.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    pub fn invalid(&self, message: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            kind: self.ty.resource.clone(),
            name: self.name.clone(),
            message: message.into(),
        }
    }

    pub fn decode(&self, source: serde_json::Error) -> StoreError {
        StoreError::Decode {
            kind: self.ty.resource.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Node, Pod};

    use super::*;

    #[test]
    fn core_types_use_kind_and_plural() {
        let pod = TypeInfo::of::<Pod>();
        assert_eq!((pod.key.as_str(), pod.resource.as_str()), ("Pod", "pods"));
        assert!(pod.namespaced);
    }

    #[test]
    fn grouped_types_are_qualified() {
        let deployment = TypeInfo::of::<Deployment>();
        assert_eq!(deployment.key, "Deployment.apps");
        assert_eq!(deployment.resource, "deployments.apps");
    }

    #[test]
    fn cluster_scoped_types_ignore_namespaces() {
        let node = TypeInfo::of::<Node>();
        assert!(!node.namespaced);
        assert_eq!(node.object(Some("default"), "n1").namespace, "");
        assert_eq!(node.namespace_filter(Some("default")), None);
        let pod = TypeInfo::of::<Pod>();
        assert_eq!(pod.object(Some("default"), "web").namespace, "default");
    }
}
