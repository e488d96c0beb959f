//! core/v1 Event: kube's event validation, kubectl's event columns and the `involvedObject.*`
//! field labels `kubectl describe` selects by. events.k8s.io/v1 events are these objects seen
//! through another version, and share all three.

pub mod validation;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{Kind, KindStrategy};
use peapod_apiserver::table::{Column, NAME};
use serde_json::{json, Value};

use validation::Via;

pub fn kind() -> Kind {
    Kind::of(EventStrategy).short_names(&["ev"])
}

pub struct EventStrategy;

/// The field labels of core/v1 events.
pub const FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

impl KindStrategy for EventStrategy {
    type Object = Event;

    fn validate(&self, event: &Event) -> Vec<FieldError> {
        validation::validate_create(event, Via::CoreV1)
    }

    fn validate_update(&self, new: &Event, old: &Event) -> Vec<FieldError> {
        let mut errors = peapod_apiserver::registry::validate_meta(new, true);
        errors.extend(peapod_api::validation::meta::validate_object_meta_update(
            &new.metadata,
            &old.metadata,
            &FieldPath::new("metadata"),
        ));
        errors.extend(validation::validate_update(new, old, Via::CoreV1));
        errors
    }

    fn columns(&self) -> Vec<Column> {
        columns()
    }

    fn cells(&self, event: &Event) -> Vec<Value> {
        cells(event)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        FIELDS
    }

    fn field(&self, event: &Event, label: &str) -> Option<String> {
        field(event, label)
    }
}

/// kube's printEvent columns; the name is the last, wide, column.
pub fn columns() -> Vec<Column> {
    vec![
        Column::new("Last Seen", "string", "Time when last event from this group was seen."),
        Column::new("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future."),
        Column::new("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
        Column::new("Object", "string", "The object that this event is about."),
        Column::new("Subobject", "string", "The subobject that this event is about.").wide(),
        Column::new("Source", "string", "The component reporting this event. Should be a short machine understandable string.").wide(),
        Column::new("Message", "string", "A human-readable description of the status of this operation."),
        Column::new("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)").wide(),
        Column::new("Count", "string", "The number of times this event has occurred.").wide(),
        Column::new("Name", "string", NAME.description).format("name").wide(),
    ]
}

/// One row of [`columns`].
pub fn cells(event: &Event) -> Vec<Value> {
    let now = Timestamp::now();
    let row = peapod_printers::event_row(event, false, now);
    let [last_seen, type_, reason, object, message] = <[String; 5]>::try_from(row)
        .unwrap_or_else(|row| panic!("printEvent gives five cells, not {}", row.len()));
    let source = event.source.as_ref().map(|s| {
        let component = s.component.clone().unwrap_or_default();
        match s.host.as_deref() {
            Some(host) if !host.is_empty() => format!("{component}, {host}"),
            _ => component,
        }
    });
    let first_seen = event.first_timestamp.as_ref().map_or_else(
        || "<unknown>".to_owned(),
        |t| {
            peapod_printers::human_duration(
                std::time::Duration::try_from(now.duration_since(t.0)).unwrap_or_default(),
            )
        },
    );
    vec![
        json!(last_seen),
        json!(type_),
        json!(reason),
        json!(object),
        json!(event.involved_object.field_path.clone().unwrap_or_default()),
        json!(source.unwrap_or_default()),
        json!(message),
        json!(first_seen),
        json!(event.count.unwrap_or(1)),
        json!(event.metadata.name.clone().unwrap_or_default()),
    ]
}

/// The value of one of [`FIELDS`] (kube's `EventToSelectableFields`).
pub fn field(event: &Event, label: &str) -> Option<String> {
    let object = &event.involved_object;
    match label {
        "involvedObject.kind" => object.kind.clone(),
        "involvedObject.namespace" => object.namespace.clone(),
        "involvedObject.name" => object.name.clone(),
        "involvedObject.uid" => object.uid.clone(),
        "involvedObject.apiVersion" => object.api_version.clone(),
        "involvedObject.resourceVersion" => object.resource_version.clone(),
        "involvedObject.fieldPath" => object.field_path.clone(),
        "reason" => event.reason.clone(),
        "reportingComponent" => event.reporting_component.clone(),
        "source" => event
            .source
            .as_ref()
            .and_then(|s| s.component.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| event.reporting_component.clone()),
        "type" => event.type_.clone(),
        _ => None,
    }
    .or(Some(String::new()))
}
