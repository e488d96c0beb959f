//! events.k8s.io/v1 Event: the core/v1 events of the store seen through the newer Event API
//! (one object, two versions, as in kube-apiserver). Writes are validated strictly, as kube
//! validates events of this version; columns and field selectors are core/v1's, the labels
//! renamed as kube's `AddFieldLabelConversionsForEvent` renames them.

mod conversion;

use k8s_openapi::api::events::v1::Event;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::Column;
use serde_json::Value;

use crate::core::v1::event as core_event;
use crate::core::v1::event::validation::{self, Via};

pub use conversion::{to_core, EventConversion};

pub fn kind() -> Kind {
    Kind::of(EventStrategy)
        .stored_as(EventConversion)
        .short_names(&["ev"])
}

pub struct EventStrategy;

/// The field labels of events.k8s.io/v1 events and the core/v1 labels they stand for.
const FIELDS: &[(&str, &str)] = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("source", "source"),
    ("type", "type"),
];

const LABELS: &[&str] = &[
    "reason",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reportingController",
    "source",
    "type",
];

impl KindStrategy for EventStrategy {
    type Object = Event;

    fn validate(&self, event: &Event) -> Vec<FieldError> {
        validation::validate_create(&to_core(event), Via::EventsV1)
    }

    fn validate_update(&self, new: &Event, old: &Event) -> Vec<FieldError> {
        let mut errors = peapod_apiserver::registry::validate_meta(new, true);
        errors.extend(peapod_api::validation::meta::validate_object_meta_update(
            &new.metadata,
            &old.metadata,
            &peapod_api::validation::FieldPath::new("metadata"),
        ));
        errors.extend(validation::validate_update(
            &to_core(new),
            &to_core(old),
            Via::EventsV1,
        ));
        errors
    }

    fn columns(&self) -> Vec<Column> {
        core_event::columns()
    }

    fn cells(&self, event: &Event) -> Vec<Value> {
        core_event::cells(&to_core(event))
    }

    fn field_labels(&self) -> &'static [&'static str] {
        LABELS
    }

    fn field(&self, event: &Event, label: &str) -> Option<String> {
        let (_, core_label) = FIELDS.iter().find(|(served, _)| *served == label)?;
        core_event::field(&to_core(event), core_label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_a_core_label() {
        let served: Vec<&str> = FIELDS.iter().map(|(served, _)| *served).collect();
        assert_eq!(served, LABELS);
        for (_, core_label) in FIELDS {
            assert!(core_event::FIELDS.contains(core_label), "{core_label}");
        }
    }
}
