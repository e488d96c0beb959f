//! events.k8s.io/v1 Event to and from the stored core/v1 Event, as kube's
//! `pkg/apis/events/v1/conversion.go`: `note` is `message`, `regarding` is `involvedObject`,
//! `reportingController` is `reportingComponent`, the `deprecated*` fields are the core
//! fields they replace; the rest keeps its name.

use jiff::Timestamp;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use peapod_apiserver::registry::VersionConversion;

/// The conversion of events.k8s.io/v1 events to the core/v1 events they are stored as.
pub struct EventConversion;

impl VersionConversion for EventConversion {
    type Served = events::Event;
    type Stored = core::Event;

    fn to_stored(&self, event: events::Event) -> core::Event {
        core::Event {
            metadata: event.metadata,
            involved_object: event.regarding.unwrap_or_default(),
            related: event.related,
            message: event.note,
            reason: event.reason,
            type_: event.type_,
            action: event.action,
            event_time: event.event_time,
            series: event.series.map(|series| core::EventSeries {
                count: Some(series.count),
                last_observed_time: Some(series.last_observed_time),
            }),
            reporting_component: event.reporting_controller,
            reporting_instance: event.reporting_instance,
            source: event.deprecated_source,
            first_timestamp: event.deprecated_first_timestamp,
            last_timestamp: event.deprecated_last_timestamp,
            count: event.deprecated_count,
        }
    }

    fn to_served(&self, event: core::Event) -> events::Event {
        events::Event {
            metadata: event.metadata,
            regarding: Some(event.involved_object),
            related: event.related,
            note: event.message,
            reason: event.reason,
            type_: event.type_,
            action: event.action,
            event_time: event.event_time,
            series: event.series.map(|series| events::EventSeries {
                count: series.count.unwrap_or_default(),
                // Go's zero time, which this type cannot hold, for a series never observed.
                last_observed_time: series
                    .last_observed_time
                    .unwrap_or(MicroTime(Timestamp::UNIX_EPOCH)),
            }),
            reporting_controller: event.reporting_component,
            reporting_instance: event.reporting_instance,
            deprecated_source: event.source,
            deprecated_first_timestamp: event.first_timestamp,
            deprecated_last_timestamp: event.last_timestamp,
            deprecated_count: event.count,
        }
    }
}

/// `event` as stored.
pub fn to_core(event: &events::Event) -> core::Event {
    EventConversion.to_stored(event.clone())
}
