//! Events about a pod, recorded the way kubelet's event recorder does.

use k8s_openapi::api::core::v1::{Container, Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::Context;

#[derive(Debug, Clone, Copy)]
pub enum EventType {
    Normal,
    Warning,
}

/// The event's fieldPath for a container: `spec.containers{name}` or
/// `spec.initContainers{name}`.
pub fn field_path(container: &Container, init: bool) -> String {
    let list = if init { "initContainers" } else { "containers" };
    format!("spec.{list}{{{}}}", container.name)
}

pub fn record(
    ctx: &Context,
    pod: &Pod,
    type_: EventType,
    reason: &str,
    message: &str,
    field_path: Option<String>,
) {
    let event = make(
        pod,
        "kubelet",
        &ctx.node_name,
        type_,
        reason,
        message,
        field_path,
    );
    if let Err(err) = ctx.store.record_event(event) {
        tracing::warn!(%err, reason, "recording an event");
    }
}

pub fn make(
    pod: &Pod,
    component: &str,
    node_name: &str,
    type_: EventType,
    reason: &str,
    message: &str,
    field_path: Option<String>,
) -> Event {
    let now = Time(jiff::Timestamp::now());
    let namespace = pod.metadata.namespace.clone();
    Event {
        metadata: ObjectMeta {
            namespace: namespace.clone(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace,
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path,
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(format!("{type_:?}")),
        source: Some(EventSource {
            component: Some(component.into()),
            host: (component == "kubelet").then(|| node_name.to_string()),
        }),
        reporting_component: Some(component.into()),
        reporting_instance: Some(node_name.into()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Default::default()
    }
}
