//! Admission plugins that read other objects, as kube-apiserver's `--enable-admission-plugins`
//! chain runs them: on a create, after NamespaceLifecycle (built into the handlers) and before
//! validation, each plugin may change the new object or refuse it; on an update of the
//! resource or a subresource, each may refuse the change once it is validated (kube's
//! validating admission). A server runs the plugins it
//! is given ([`crate::ApiServer::with_admission`]), none by default, as kube's integration
//! servers run without the ServiceAccount plugin.

use peapod_api::validation::go_quote;
use peapod_store::Store;
use serde_json::{json, Value};

use crate::registry::GroupVersionKind;
use crate::status::{qualified, ApiError};

/// A create as admission sees it.
pub struct NewObject<'a> {
    pub kind: &'a GroupVersionKind,
    /// The resource (`pods`).
    pub resource: &'a str,
    /// The namespace it is created in ("" for cluster-scoped kinds).
    pub namespace: &'a str,
    /// The object, defaulted, its name possibly still to be generated.
    pub object: &'a mut Value,
}

impl NewObject<'_> {
    /// The name admission errors give it: its name, else its generateName (names are generated
    /// after admission).
    pub fn name(&self) -> String {
        let meta = &self.object["metadata"];
        [&meta["name"], &meta["generateName"]]
            .into_iter()
            .filter_map(Value::as_str)
            .find(|n| !n.is_empty())
            .unwrap_or_default()
            .to_owned()
    }

    /// kube's `admission.NewForbidden`: `pods "web" is forbidden: <why>`.
    pub fn forbidden(&self, why: &str) -> ApiError {
        let name = self.name();
        let resource = qualified(&self.kind.group, self.resource);
        let message = if name.is_empty() {
            format!("{resource} is forbidden: {why}")
        } else {
            format!("{resource} {} is forbidden: {why}", go_quote(&name))
        };
        let details = json!({"name": name, "group": self.kind.group, "kind": self.resource});
        ApiError::forbidden(message).with_details(details)
    }
}

/// An update as validating admission sees it: both objects as served.
pub struct Update<'a> {
    pub kind: &'a GroupVersionKind,
    /// The resource (`persistentvolumeclaims`).
    pub resource: &'a str,
    /// The subresource written (`status`), if any.
    pub subresource: Option<&'a str>,
    pub object: &'a Value,
    pub old: &'a Value,
}

impl Update<'_> {
    /// kube's `admission.NewForbidden` for the updated object.
    pub fn forbidden(&self, why: &str) -> ApiError {
        let name = self.object["metadata"]["name"].as_str().unwrap_or_default();
        let resource = qualified(&self.kind.group, self.resource);
        let message = format!("{resource} {} is forbidden: {why}", go_quote(name));
        let details = json!({"name": name, "group": self.kind.group, "kind": self.resource});
        ApiError::forbidden(message).with_details(details)
    }
}

/// One admission plugin.
pub trait Admission: Send + Sync + 'static {
    /// Changes or refuses `new`, reading what it needs from `store`. Called from a blocking
    /// thread: a plugin may wait (kube's ServiceAccount plugin retries a missing `default`).
    fn admit_create(&self, new: NewObject<'_>, store: &Store) -> Result<(), ApiError>;

    /// Refuses an update, reading what it needs from `store`; most plugins let all through.
    /// Called under the object's write lock, so it must not write the same object.
    fn validate_update(&self, _update: Update<'_>, _store: &Store) -> Result<(), ApiError> {
        Ok(())
    }
}
