//! ControllerRevision: served as kube-apiserver serves apps/v1 controllerrevisions
//! (pkg/registry/apps/controllerrevision): a namespaced snapshot of a controller's state,
//! its `data` required and immutable, its `revision` not negative, and kubectl's columns
//! (Name, Controller, Revision, Age). The DaemonSet controller keeps its history in them.

use k8s_openapi::api::apps::v1::ControllerRevision;
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

#[cfg(test)]
mod tests;

pub fn kind() -> Kind {
    Kind::of(ControllerRevisionStrategy)
}

pub struct ControllerRevisionStrategy;

impl KindStrategy for ControllerRevisionStrategy {
    type Object = ControllerRevision;

    /// ValidateControllerRevision.
    fn validate(&self, revision: &ControllerRevision) -> Vec<FieldError> {
        let mut errors = validate_meta(revision, true);
        if revision.data.as_ref().is_none_or(|d| d.0.is_null()) {
            errors.push(FieldError::required(
                &FieldPath::new("data"),
                "data is mandatory",
            ));
        }
        if revision.revision < 0 {
            errors.push(FieldError::invalid(
                &FieldPath::new("revision"),
                revision.revision,
                "must be greater than or equal to 0",
            ));
        }
        errors
    }

    /// ValidateControllerRevisionUpdate: the revision may move, the data may not.
    fn validate_update(
        &self,
        new: &ControllerRevision,
        old: &ControllerRevision,
    ) -> Vec<FieldError> {
        let mut errors =
            validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
        errors.extend(self.validate(new));
        let data = |r: &ControllerRevision| r.data.as_ref().map(|d| d.0.clone());
        if data(new) != data(old) {
            errors.push(FieldError::invalid(
                &FieldPath::new("data"),
                data(new).unwrap_or(Value::Null),
                "field is immutable",
            ));
        }
        errors
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Controller", "string", "Controller of the object"),
            Column::new(
                "Revision",
                "string",
                "Revision indicates the revision of the state represented by Data.",
            ),
            AGE,
        ]
    }

    fn cells(&self, revision: &ControllerRevision) -> Vec<Value> {
        vec![
            name_cell(&revision.metadata),
            json!(controller_name(revision)),
            json!(revision.revision),
            age_cell(&revision.metadata),
        ]
    }
}

/// printControllerRevision's controller cell: `<kind>.<group>/<name>` of the controller
/// reference (no group for the core group), `<none>` without one.
fn controller_name(revision: &ControllerRevision) -> String {
    let owners = revision.metadata.owner_references.iter().flatten();
    let Some(owner) = owners.into_iter().find(|o| o.controller == Some(true)) else {
        return "<none>".to_owned();
    };
    let kind = owner.kind.to_lowercase();
    match owner.api_version.split_once('/') {
        Some((group, _)) => format!("{kind}.{group}/{}", owner.name),
        None => format!("{kind}/{}", owner.name),
    }
}
