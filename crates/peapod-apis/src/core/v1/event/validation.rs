//! Event validation as kube's `pkg/apis/core/validation/events.go`: the legacy rules every
//! event passes, and the strict ones for events written through events.k8s.io/v1. Both judge
//! the stored (core/v1) form, so errors name its fields (`message`, `involvedObject`), as
//! kube-apiserver's do.

use k8s_openapi::api::core::v1::Event;
use peapod_api::validation::names::{dns1123_subdomain, qualified_name};
use peapod_api::validation::{BadValue, FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;
use serde_json::json;

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

/// The API version an event is written through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// core/v1: the legacy rules only, for compatibility.
    CoreV1,
    /// events.k8s.io/v1: the strict rules as well.
    EventsV1,
}

impl Via {
    /// The name errors give the reporting controller: the field of the version written.
    fn reporting_controller(self) -> &'static str {
        match self {
            Via::CoreV1 => "reportingComponent",
            Via::EventsV1 => "reportingController",
        }
    }
}

/// `ValidateEventCreate`, then the ObjectMeta rules kube-apiserver runs on every create.
pub fn validate_create(event: &Event, via: Via) -> Vec<FieldError> {
    let mut errors = legacy(event, via);
    if via == Via::EventsV1 {
        errors.extend(validate_meta(event, true));
        errors.extend(strict_create(event));
    } else if errors.is_empty() {
        errors = validate_meta(event, true);
    }
    errors
}

/// `ValidateEventUpdate` (the ObjectMeta update rules are the caller's).
pub fn validate_update(new: &Event, old: &Event, via: Via) -> Vec<FieldError> {
    let mut errors = legacy(new, via);
    if via == Via::EventsV1 {
        if new.series != old.series {
            errors.extend(series(new));
        }
        errors.extend(immutable_fields(new, old));
    }
    errors
}

/// `legacyValidateEvent`: namespaces that agree, and for new-style events (with an eventTime)
/// the reporting fields, action and reason set and short enough.
fn legacy(event: &Event, via: Via) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
    let involved = event
        .involved_object
        .namespace
        .as_deref()
        .unwrap_or_default();
    let agrees = match (event.event_time.is_some(), involved.is_empty()) {
        (false, true) => namespace.is_empty() || namespace == "default",
        (false, false) => namespace == involved,
        (true, true) => namespace == "default" || namespace == "kube-system",
        (true, false) => true,
    };
    if !agrees {
        let path = FieldPath::new("involvedObject").child("namespace");
        errors.push(FieldError::invalid(
            &path,
            involved,
            "does not match event.namespace",
        ));
    }
    if event.event_time.is_some() {
        errors.extend(new_style_fields(event, via));
    }
    for message in dns1123_subdomain(namespace) {
        errors.push(FieldError::invalid(
            &FieldPath::new("namespace"),
            namespace,
            &message,
        ));
    }
    errors
}

fn new_style_fields(event: &Event, via: Via) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let controller = event.reporting_component.as_deref().unwrap_or_default();
    let controller_path = FieldPath::new(via.reporting_controller());
    if controller.is_empty() {
        errors.push(FieldError::required(&controller_path, ""));
    }
    for message in qualified_name(controller) {
        errors.push(FieldError::invalid(&controller_path, controller, &message));
    }
    let limited = [
        (
            "reportingInstance",
            &event.reporting_instance,
            REPORTING_INSTANCE_LIMIT,
            true,
        ),
        ("action", &event.action, ACTION_LIMIT, true),
        ("reason", &event.reason, REASON_LIMIT, true),
        ("message", &event.message, NOTE_LIMIT, false),
    ];
    for (field, value, limit, required) in limited {
        let value = value.as_deref().unwrap_or_default();
        let path = FieldPath::new(field);
        if required && value.is_empty() {
            errors.push(FieldError::required(&path, ""));
        }
        if value.len() > limit {
            let detail = format!("can have at most {limit} characters");
            errors.push(FieldError::invalid(&path, "", &detail));
        }
    }
    errors
}

/// What events.k8s.io/v1 asks of a new event beyond the legacy rules.
fn strict_create(event: &Event) -> Vec<FieldError> {
    let mut errors = series(event);
    if event.event_time.is_none() {
        errors.push(FieldError::required(&FieldPath::new("eventTime"), ""));
    }
    let type_ = event.type_.as_deref().unwrap_or_default();
    if type_ != "Normal" && type_ != "Warning" {
        let detail = format!("has invalid value: {type_}");
        errors.push(FieldError::invalid(&FieldPath::new("type"), "", &detail));
    }
    let source = event.source.clone().unwrap_or_default();
    let deprecated_set = [
        ("firstTimestamp", event.first_timestamp.is_some()),
        ("lastTimestamp", event.last_timestamp.is_some()),
        ("count", event.count.unwrap_or_default() != 0),
        (
            "source",
            source.component.is_some_and(|c| !c.is_empty())
                || source.host.is_some_and(|h| !h.is_empty()),
        ),
    ];
    for (field, set) in deprecated_set {
        if set {
            errors.push(FieldError::invalid(
                &FieldPath::new(field),
                "",
                "needs to be unset",
            ));
        }
    }
    errors
}

/// `validateV1EventSeries`.
fn series(event: &Event) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(series) = &event.series {
        if series.count.unwrap_or_default() < 2 {
            let path = FieldPath::new("series.count");
            errors.push(FieldError::invalid(&path, "", "should be at least 2"));
        }
        if series.last_observed_time.is_none() {
            errors.push(FieldError::required(
                &FieldPath::new("series.lastObservedTime"),
                "",
            ));
        }
    }
    errors
}

/// Every field but the series and metadata is immutable through events.k8s.io/v1.
fn immutable_fields(new: &Event, old: &Event) -> Vec<FieldError> {
    let fields = [
        (
            "involvedObject",
            json!(new.involved_object),
            json!(old.involved_object),
        ),
        ("reason", json!(new.reason), json!(old.reason)),
        ("message", json!(new.message), json!(old.message)),
        ("source", json!(new.source), json!(old.source)),
        (
            "firstTimestamp",
            json!(new.first_timestamp),
            json!(old.first_timestamp),
        ),
        (
            "lastTimestamp",
            json!(new.last_timestamp),
            json!(old.last_timestamp),
        ),
        ("count", json!(new.count), json!(old.count)),
        ("type", json!(new.type_), json!(old.type_)),
        ("eventTime", json!(new.event_time), json!(old.event_time)),
        ("action", json!(new.action), json!(old.action)),
        ("related", json!(new.related), json!(old.related)),
        (
            "reportingController",
            json!(new.reporting_component),
            json!(old.reporting_component),
        ),
        (
            "reportingInstance",
            json!(new.reporting_instance),
            json!(old.reporting_instance),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, new, old)| new != old)
        .map(|(field, new, _)| {
            FieldError::invalid(&FieldPath::new(field), Rendered(new), "field is immutable")
        })
        .collect()
}

/// A changed value as the error shows it: strings quoted, other values as JSON.
struct Rendered(serde_json::Value);

impl BadValue for Rendered {
    fn render(&self) -> String {
        match &self.0 {
            serde_json::Value::String(text) => text.render(),
            other => other.to_string(),
        }
    }
}
