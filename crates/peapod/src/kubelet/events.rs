//! Events about a pod, recorded as kubelet's event recorder does: queued without waiting, then
//! posted through the API in order; one identical to an event recorded within the last 10
//! minutes bumps that event's count and lastTimestamp instead (client-go's EventLogger).

use std::collections::HashMap;

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Container, Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::status::ApiError;
use serde_json::json;
use tokio::sync::mpsc;

use super::Context;

/// Identical events closer together than this are one event with a count.
const AGGREGATION_WINDOW: SignedDuration = SignedDuration::from_mins(10);
/// How many event series the recorder remembers (client-go's LRU holds 4096).
const REMEMBERED_SERIES: usize = 4096;

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
    ctx.recorder.record(event);
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

/// The queue in front of the API: recording never waits.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::UnboundedSender<Event>,
}

impl Recorder {
    /// A recorder whose events `client` posts, from a task of its own on the current runtime.
    pub fn start(client: LocalClient) -> Recorder {
        let (queue, mut queued) = mpsc::unbounded_channel();
        let mut sink = Sink::new(client);
        tokio::spawn(async move {
            while let Some(event) = queued.recv().await {
                if let Err(err) = sink.record(event).await {
                    tracing::warn!(%err, "recording an event");
                }
            }
        });
        Recorder { queue }
    }

    pub fn record(&self, event: Event) {
        let _ = self.queue.send(event);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("posting event {reason}: {source}")]
    Post {
        reason: String,
        #[source]
        source: Box<ApiError>,
    },
    #[error("counting event {reason} again: {source}")]
    Count {
        reason: String,
        #[source]
        source: Box<ApiError>,
    },
}

/// What makes two events one: the involved object (and container), reason, type, message
/// and component.
type SeriesKey = [Option<String>; 7];

/// An event posted, as its series' later occurrences update it.
struct Posted {
    namespace: String,
    name: String,
    count: i32,
    last_seen: Timestamp,
}

/// Posts events, folding an occurrence into the event of its series when that is recent.
struct Sink {
    client: LocalClient,
    series: HashMap<SeriesKey, Posted>,
    /// The last name's timestamp, so that two events never get the same name.
    last_name_nanos: i128,
}

impl Sink {
    fn new(client: LocalClient) -> Sink {
        Sink {
            client,
            series: HashMap::new(),
            last_name_nanos: 0,
        }
    }

    async fn record(&mut self, event: Event) -> Result<(), EventError> {
        let key = series_key(&event);
        let at = event
            .last_timestamp
            .as_ref()
            .map_or_else(Timestamp::now, |t| t.0);
        if let Some(posted) = self.series.get_mut(&key) {
            if at.duration_since(posted.last_seen).abs() <= AGGREGATION_WINDOW {
                let path = format!(
                    "/api/v1/namespaces/{}/events/{}",
                    posted.namespace, posted.name
                );
                let patch = json!({"count": posted.count + 1, "lastTimestamp": Time(at)});
                match self.client.merge_patch(&path, patch).await {
                    Ok(_) => {
                        posted.count += 1;
                        posted.last_seen = at;
                        return Ok(());
                    }
                    // Expired meanwhile: posted anew.
                    Err(err) if err.code == StatusCode::NOT_FOUND => {}
                    Err(source) => return Err(count_error(&event, source)),
                }
            }
        }
        let posted = self.post(event, at).await?;
        if self.series.len() >= REMEMBERED_SERIES {
            self.series
                .retain(|_, p| at.duration_since(p.last_seen).abs() <= AGGREGATION_WINDOW);
        }
        self.series.insert(key, posted);
        Ok(())
    }

    async fn post(&mut self, mut event: Event, at: Timestamp) -> Result<Posted, EventError> {
        let namespace = event
            .metadata
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let nanos = at.as_nanosecond().max(self.last_name_nanos + 1);
        self.last_name_nanos = nanos;
        let involved = event.involved_object.name.clone().unwrap_or_default();
        let name = format!("{involved}.{nanos:x}");
        event.metadata.name = Some(name.clone());
        event.metadata.namespace = Some(namespace.clone());
        let body = serde_json::to_value(&event).unwrap_or_default();
        let path = format!("/api/v1/namespaces/{namespace}/events");
        let reason = event.reason.clone().unwrap_or_default();
        self.client
            .send(
                axum::http::Method::POST,
                &path,
                Some(("application/json", body)),
            )
            .await
            .map_err(|source| EventError::Post {
                reason,
                source: Box::new(source),
            })?;
        Ok(Posted {
            namespace,
            name,
            count: event.count.unwrap_or(1),
            last_seen: at,
        })
    }
}

fn series_key(event: &Event) -> SeriesKey {
    let involved = &event.involved_object;
    [
        event.metadata.namespace.clone(),
        involved.uid.clone(),
        involved.field_path.clone(),
        event.reason.clone(),
        event.type_.clone(),
        event.message.clone(),
        event.source.as_ref().and_then(|s| s.component.clone()),
    ]
}

fn count_error(event: &Event, source: ApiError) -> EventError {
    EventError::Count {
        reason: event.reason.clone().unwrap_or_default(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::testing;

    #[tokio::test]
    async fn a_repeated_event_counts_up_in_the_event_it_repeats() {
        let client = testing::api().await;
        let pod = testing::create_pod(&client, "web").await;
        let mut sink = Sink::new(client.clone());
        let event = |message: &str| {
            make(
                &pod,
                "kubelet",
                "n1",
                EventType::Warning,
                "Unhealthy",
                message,
                None,
            )
        };
        sink.record(event("probe failed")).await.unwrap();
        sink.record(event("probe failed")).await.unwrap();
        sink.record(event("something else")).await.unwrap();

        let events = client
            .list("/api/v1/namespaces/default/events")
            .await
            .unwrap();
        let counts: Vec<(&str, i64)> = events
            .iter()
            .map(|e| (e["message"].as_str().unwrap(), e["count"].as_i64().unwrap()))
            .collect();
        assert_eq!(counts, [("probe failed", 2), ("something else", 1)]);
        assert_eq!(events[0]["involvedObject"]["uid"], json!(pod.metadata.uid));
    }
}
