//! Events a controller records on the objects it drives, through kube-runtime's recorder as
//! the controller's own reporter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::runtime::events::{Event as RuntimeEvent, EventType, Recorder, Reporter};
use kube::{Client, Resource};

/// How many distinct messages keep their own series before the series start over.
const MAX_SERIES_MESSAGES: usize = 512;

/// An event to record: kube's type, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// "Normal" or "Warning".
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Event {
    pub fn normal(reason: &'static str, message: String) -> Event {
        Event {
            type_: "Normal",
            reason,
            message,
        }
    }

    pub fn warning(reason: &'static str, message: String) -> Event {
        Event {
            type_: "Warning",
            reason,
            message,
        }
    }
}

/// Records events as one controller.
///
/// kube-runtime's recorder counts every event of the same reason on an object as one series,
/// keeping the first message; client-go's keys its series on the message too (the Deployment
/// controller's "Scaled up replica set x to 2" and "... to 3" are two events). So each
/// message gets its own recorder.
#[derive(Clone)]
pub struct Events {
    client: Client,
    reporter: Reporter,
    recorders: Arc<Mutex<HashMap<String, Recorder>>>,
}

impl Events {
    pub fn new(client: Client, controller: &str) -> Events {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance: None,
        };
        Events {
            client,
            reporter,
            recorders: Arc::default(),
        }
    }

    fn recorder_for(&self, message: &str) -> Recorder {
        let mut recorders = self.recorders.lock().unwrap_or_else(|e| e.into_inner());
        if recorders.len() >= MAX_SERIES_MESSAGES && !recorders.contains_key(message) {
            recorders.clear();
        }
        let recorder = recorders
            .entry(message.to_owned())
            .or_insert_with(|| Recorder::new(self.client.clone(), self.reporter.clone()));
        recorder.clone()
    }

    /// Records `event` on `object`; a failure is logged, as client-go's recorder drops it.
    pub async fn record<K: Resource<DynamicType = ()>>(&self, object: &K, event: Event) {
        let type_ = match event.type_ {
            "Warning" => EventType::Warning,
            _ => EventType::Normal,
        };
        let recorder = self.recorder_for(&event.message);
        let event = RuntimeEvent {
            type_,
            reason: event.reason.to_owned(),
            note: Some(event.message),
            action: event.reason.to_owned(),
            secondary: None,
        };
        if let Err(err) = recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(%err, "recording an event");
        }
    }
}
