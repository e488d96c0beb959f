//! core/v1 Events: recording with the kubelet event recorder's aggregation, listing by involved
//! object, and cleanup. Events are ordinary stored objects of kind `Event`, so they are watchable.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::db::{self, Row};
use crate::key::{ObjectKey, ResourceKey};
use crate::writer::Writer;
use crate::{Store, StoreError};

/// Identical events closer together than this are folded into one with a higher count.
const AGGREGATION_WINDOW: SignedDuration = SignedDuration::from_mins(10);

/// Namespace for events about cluster-scoped objects, as the event recorder uses.
const DEFAULT_NAMESPACE: &str = "default";

impl Store {
    /// Stores `event`, or bumps `count` and `lastTimestamp` of an identical one (same involved
    /// uid, reason, type, source component and message) seen within the last 10 minutes.
    /// Unnamed events are named `<involvedObject.name>.<unix nanos in hex>`.
    pub fn record_event(&self, mut event: Event) -> Result<Event, StoreError> {
        let at = occurred_at(&event);
        event.metadata.namespace = Some(event_namespace(&event));
        let ty = ResourceKey::of::<Event>();
        self.write(false, |w| match similar(w, &ty, &event, at)? {
            Some((row, existing)) => aggregate(w, row, existing, at),
            None => insert_new(w, &ty, event, at),
        })
    }

    /// Events in `namespace` (or all) about the object with `involved_uid` (or any).
    pub fn list_events(
        &self,
        namespace: Option<&str>,
        involved_uid: Option<&str>,
    ) -> Result<Vec<Event>, StoreError> {
        let ty = ResourceKey::of::<Event>();
        let rows = self.read(|conn| db::load_events(conn, &ty, namespace, involved_uid))?;
        rows.iter().map(|row| row.key.decode(&row.value)).collect()
    }

    /// Deletes every event about the object with `involved_uid`; returns how many.
    pub fn delete_events_for(&self, involved_uid: &str) -> Result<usize, StoreError> {
        let ty = ResourceKey::of::<Event>();
        self.write(false, |w| {
            let rows = db::load_events(w.conn(), &ty, None, Some(involved_uid))?;
            remove_all(w, rows)
        })
    }

    /// Deletes every event last seen before `older_than`; returns how many.
    pub fn expire_events(&self, older_than: Timestamp) -> Result<usize, StoreError> {
        let ty = ResourceKey::of::<Event>();
        self.write(false, |w| {
            let rows = db::events_before(w.conn(), &ty, older_than.as_second())?;
            remove_all(w, rows)
        })
    }
}

fn occurred_at(event: &Event) -> Timestamp {
    event
        .last_timestamp
        .as_ref()
        .map(|time| time.0)
        .or_else(|| event.event_time.as_ref().map(|time| time.0))
        .unwrap_or_else(Timestamp::now)
}

fn event_namespace(event: &Event) -> String {
    [&event.metadata.namespace, &event.involved_object.namespace]
        .into_iter()
        .flatten()
        .find(|namespace| !namespace.is_empty())
        .cloned()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

/// The most recent stored event `event` would aggregate into, with its row.
fn similar(
    w: &Writer<'_>,
    ty: &ResourceKey,
    event: &Event,
    at: Timestamp,
) -> Result<Option<(Row, Event)>, StoreError> {
    let rows = db::load_events(
        w.conn(),
        ty,
        event.metadata.namespace.as_deref(),
        event.involved_object.uid.as_deref(),
    )?;
    let mut best: Option<(Row, Event)> = None;
    for row in rows {
        let stored: Event = row.key.decode(&row.value)?;
        let Some(last) = last_seen(&stored) else {
            continue;
        };
        let newer = best
            .as_ref()
            .is_none_or(|(_, kept)| last_seen(kept) < Some(last));
        if same_series(&stored, event)
            && at.duration_since(last).abs() <= AGGREGATION_WINDOW
            && newer
        {
            best = Some((row, stored));
        }
    }
    Ok(best)
}

/// Whether two events are the same occurrence: involved object (uid and field path, so each
/// container has its own series), reason, type, message, component.
fn same_series(a: &Event, b: &Event) -> bool {
    let component = |e: &Event| e.source.as_ref().and_then(|s| s.component.clone());
    a.involved_object.uid == b.involved_object.uid
        && a.involved_object.field_path == b.involved_object.field_path
        && a.reason == b.reason
        && a.type_ == b.type_
        && a.message == b.message
        && component(a) == component(b)
}

fn last_seen(event: &Event) -> Option<Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .or(event.first_timestamp.as_ref())
        .or(event.metadata.creation_timestamp.as_ref())
        .map(|time| time.0)
}

fn aggregate(
    w: &mut Writer<'_>,
    row: Row,
    mut existing: Event,
    at: Timestamp,
) -> Result<Event, StoreError> {
    existing.count = Some(existing.count.unwrap_or(1) + 1);
    let last = last_seen(&existing).map_or(at, |last| last.max(at));
    existing.last_timestamp = Some(Time(last));
    let value = serde_json::to_value(&existing)?;
    let stored = w.replace(&row, value)?.unwrap_or(row.value);
    row.key.decode(&stored)
}

fn insert_new(
    w: &mut Writer<'_>,
    ty: &ResourceKey,
    mut event: Event,
    at: Timestamp,
) -> Result<Event, StoreError> {
    event.first_timestamp.get_or_insert(Time(at));
    event.last_timestamp.get_or_insert(Time(at));
    event.count.get_or_insert(1);
    let unnamed = event
        .metadata
        .name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
        && event.metadata.generate_name.is_none();
    if unnamed {
        event.metadata.name = Some(free_name(w, ty, &event)?.name);
    }
    w.create(event)
}

/// `<involvedObject.name>.<hex unix nanos>`, moving on a nanosecond if that name is taken.
fn free_name(w: &Writer<'_>, ty: &ResourceKey, event: &Event) -> Result<ObjectKey, StoreError> {
    let base = event.involved_object.name.as_deref().unwrap_or_default();
    let mut nanos = Timestamp::now().as_nanosecond();
    loop {
        let key = ty.object(
            event.metadata.namespace.as_deref(),
            &format!("{base}.{nanos:x}"),
        );
        if w.load(&key)?.is_none() {
            return Ok(key);
        }
        nanos += 1;
    }
}

fn remove_all(w: &mut Writer<'_>, rows: Vec<Row>) -> Result<usize, StoreError> {
    let count = rows.len();
    for row in rows {
        w.remove(row)?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EventSource, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::WatchEventType;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    fn event(pod: &str, uid: &str, reason: &str, message: &str, second: i64) -> Event {
        Event {
            involved_object: ObjectReference {
                kind: Some("Pod".into()),
                namespace: Some("default".into()),
                name: Some(pod.into()),
                uid: Some(uid.into()),
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Normal".into()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some("node".into()),
            }),
            last_timestamp: Some(Time(at(second))),
            metadata: ObjectMeta::default(),
            ..Event::default()
        }
    }

    #[test]
    fn new_events_are_named_after_the_object_and_defaulted() {
        let store = Store::open_in_memory().unwrap();
        let recorded = store
            .record_event(event("web", "u1", "Pulled", "pulled", 0))
            .unwrap();
        let name = recorded.metadata.name.unwrap();
        let (object, suffix) = name.split_once('.').unwrap();
        assert_eq!(object, "web");
        assert_eq!(suffix.len(), 16, "{name}");
        assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        assert_eq!(recorded.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(recorded.count, Some(1));
        assert_eq!(recorded.first_timestamp, Some(Time(at(0))));
        assert!(recorded.metadata.uid.is_some());
    }

    #[test]
    fn repeats_within_ten_minutes_are_aggregated() {
        let store = Store::open_in_memory().unwrap();
        let first = store
            .record_event(event("web", "u1", "BackOff", "back-off", 0))
            .unwrap();
        let second = store
            .record_event(event("web", "u1", "BackOff", "back-off", 300))
            .unwrap();
        assert_eq!(second.metadata.name, first.metadata.name);
        assert_eq!(second.count, Some(2));
        assert_eq!(second.first_timestamp, Some(Time(at(0))));
        assert_eq!(second.last_timestamp, Some(Time(at(300))));
        assert_eq!(store.list_events(None, Some("u1")).unwrap(), vec![second]);
    }

    #[test]
    fn different_or_late_events_are_not_aggregated() {
        let store = Store::open_in_memory().unwrap();
        store
            .record_event(event("web", "u1", "BackOff", "back-off", 0))
            .unwrap();
        for different in [
            event("web", "u1", "BackOff", "other message", 1),
            event("web", "u1", "Failed", "back-off", 2),
            event("web", "u2", "BackOff", "back-off", 3),
            event("web", "u1", "BackOff", "back-off", 601 + 3),
            {
                let mut other_container = event("web", "u1", "BackOff", "back-off", 605);
                other_container.involved_object.field_path = Some("spec.containers{b}".into());
                other_container
            },
        ] {
            let recorded = store.record_event(different).unwrap();
            assert_eq!(recorded.count, Some(1));
        }
        assert_eq!(store.list_events(None, None).unwrap().len(), 6);
    }

    #[test]
    fn list_filters_by_namespace_and_involved_uid() {
        let store = Store::open_in_memory().unwrap();
        store.record_event(event("web", "u1", "A", "a", 0)).unwrap();
        store.record_event(event("api", "u2", "A", "a", 0)).unwrap();
        let mut elsewhere = event("dns", "u3", "A", "a", 0);
        elsewhere.involved_object.namespace = Some("kube-system".into());
        store.record_event(elsewhere).unwrap();

        let in_default = store.list_events(Some("default"), None).unwrap();
        assert_eq!(in_default.len(), 2);
        let about_u3 = store.list_events(None, Some("u3")).unwrap();
        assert_eq!(
            about_u3[0].metadata.namespace.as_deref(),
            Some("kube-system")
        );
        assert!(store
            .list_events(Some("default"), Some("u3"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn delete_events_for_removes_only_that_object() {
        let store = Store::open_in_memory().unwrap();
        store.record_event(event("web", "u1", "A", "a", 0)).unwrap();
        store.record_event(event("web", "u1", "B", "b", 0)).unwrap();
        store.record_event(event("api", "u2", "A", "a", 0)).unwrap();
        assert_eq!(store.delete_events_for("u1").unwrap(), 2);
        assert!(store.list_events(None, Some("u1")).unwrap().is_empty());
        assert_eq!(store.list_events(None, None).unwrap().len(), 1);
    }

    #[test]
    fn expire_removes_events_last_seen_before_the_cutoff() {
        let store = Store::open_in_memory().unwrap();
        store.record_event(event("old", "u1", "A", "a", 0)).unwrap();
        store
            .record_event(event("new", "u2", "A", "a", 3600))
            .unwrap();
        assert_eq!(store.expire_events(at(1800)).unwrap(), 1);
        let left = store.list_events(None, None).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].involved_object.name.as_deref(), Some("new"));
    }

    #[tokio::test]
    async fn events_are_watchable() {
        let store = Store::open_in_memory().unwrap();
        let (_, _, mut watch) = store.list_watch::<Event>(Some("default")).unwrap();
        store.record_event(event("web", "u1", "A", "a", 0)).unwrap();
        store
            .record_event(event("web", "u1", "A", "a", 10))
            .unwrap();
        store.delete_events_for("u1").unwrap();
        let mut kinds = Vec::new();
        for _ in 0..3 {
            let change = watch.next().await.unwrap().unwrap();
            kinds.push((change.kind, change.object["count"].as_i64()));
        }
        assert_eq!(
            kinds,
            [
                (WatchEventType::Added, Some(1)),
                (WatchEventType::Modified, Some(2)),
                (WatchEventType::Deleted, Some(2)),
            ]
        );
    }
}
