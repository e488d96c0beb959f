//! kube's `TriggerTimeTracker`: the `endpoints.kubernetes.io/last-change-trigger-time` of a
//! sync is the earliest change (a pod's readiness transition, the Service's creation) the
//! previous sync of the same Service had not seen; none when nothing new triggered it.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};

use super::pods::ready_transition;

/// The annotation both controllers write.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

#[derive(Debug, Default)]
struct SeenState {
    pods: HashMap<String, Timestamp>,
    service: Option<Timestamp>,
}

/// What each Service's last sync saw, by `namespace/name`.
#[derive(Debug, Default)]
pub struct TriggerTimes {
    services: Mutex<HashMap<String, SeenState>>,
}

impl TriggerTimes {
    /// `ComputeEndpointLastChangeTriggerTime` for a sync of `service` over `pods`.
    pub fn compute(&self, key: &str, service: &Service, pods: &[&Pod]) -> Option<Timestamp> {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let before = services.remove(key).unwrap_or_default();
        let mut now = SeenState::default();
        let mut earliest: Option<Timestamp> = None;
        let mut consider = |at: Timestamp| earliest = Some(earliest.map_or(at, |e| e.min(at)));
        for pod in pods {
            let Some(at) = ready_transition(pod) else {
                continue;
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if before.pods.get(&name).is_none_or(|seen| at > *seen) {
                consider(at);
            }
            now.pods.insert(name, at);
        }
        now.service = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(created) = now.service {
            if before.service.is_none_or(|seen| created > seen) {
                consider(created);
            }
        }
        services.insert(key.to_owned(), now);
        earliest
    }

    /// Forgets a deleted Service.
    pub fn forget(&self, key: &str) {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        services.remove(key);
    }
}

/// The annotation's value, RFC 3339 in UTC as Go's `time.RFC3339Nano`.
pub fn format(at: Timestamp) -> String {
    at.to_string()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn pod(name: &str, ready_since: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".to_owned(),
                    status: "True".to_owned(),
                    last_transition_time: Some(Time(at(ready_since))),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn the_earliest_unseen_change_triggers() {
        let tracker = TriggerTimes::default();
        let service = Service {
            metadata: ObjectMeta {
                creation_timestamp: Some(Time(at(100))),
                ..ObjectMeta::default()
            },
            ..Service::default()
        };
        let (a, b) = (pod("a", 110), pod("b", 120));
        assert_eq!(tracker.compute("ns/s", &service, &[&a, &b]), Some(at(100)));
        assert_eq!(tracker.compute("ns/s", &service, &[&a, &b]), None);
        let b_again = pod("b", 130);
        let c = pod("c", 125);
        assert_eq!(
            tracker.compute("ns/s", &service, &[&a, &b_again, &c]),
            Some(at(125))
        );
        tracker.forget("ns/s");
        assert_eq!(tracker.compute("ns/s", &service, &[&a]), Some(at(100)));
        assert_eq!(format(at(100)), "1970-01-01T00:01:40Z");
    }
}
