//! `kubectl get events` rows (printEvent) and the time ordering shared with describe.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;

use crate::duration::since;
use crate::table::align;

/// `kubectl get events`: LAST SEEN TYPE REASON OBJECT MESSAGE (NAMESPACE first with
/// show_namespace), oldest first. Empty list → "".
pub fn event_table(events: &[Event], show_namespace: bool, now: Timestamp) -> String {
    if events.is_empty() {
        return String::new();
    }
    let mut rows = Vec::with_capacity(events.len() + 1);
    rows.push(event_table_header(show_namespace));
    rows.extend(
        sorted(events)
            .into_iter()
            .map(|e| event_row(e, show_namespace, now)),
    );
    align(&rows)
}

pub fn event_table_header(show_namespace: bool) -> Vec<String> {
    let mut header = Vec::new();
    if show_namespace {
        header.push("NAMESPACE");
    }
    header.extend(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    header.into_iter().map(str::to_string).collect()
}

/// One event's cells, as printEvent builds them (without the wide-only columns).
pub fn event_row(event: &Event, show_namespace: bool, now: Timestamp) -> Vec<String> {
    let mut row = Vec::new();
    if show_namespace {
        row.push(event.metadata.namespace.clone().unwrap_or_default());
    }
    row.push(last_seen(event, now));
    row.push(event.type_.clone().unwrap_or_default());
    row.push(event.reason.clone().unwrap_or_default());
    row.push(involved_object(event));
    row.push(
        event
            .message
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_string(),
    );
    row
}

/// Events ordered oldest first by when they were last seen; the sort is stable.
pub(crate) fn sorted(events: &[Event]) -> Vec<&Event> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| seen_at(e));
    sorted
}

/// When an event was last seen: series, lastTimestamp, eventTime, then the object's creation.
fn seen_at(event: &Event) -> Option<Timestamp> {
    let series = event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0);
    series
        .or(event.last_timestamp.as_ref().map(|t| t.0))
        .or(event.event_time.as_ref().map(|t| t.0))
        .or(event.first_timestamp.as_ref().map(|t| t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

pub(crate) fn first_seen(event: &Event) -> Option<Timestamp> {
    let first = event.first_timestamp.as_ref().map(|t| t.0);
    first.or(event.event_time.as_ref().map(|t| t.0))
}

fn last_seen(event: &Event, now: Timestamp) -> String {
    if let Some(series) = &event.series {
        return since(series.last_observed_time.as_ref().map(|t| t.0), now);
    }
    match &event.last_timestamp {
        Some(last) => since(Some(last.0), now),
        None => since(first_seen(event), now),
    }
}

fn involved_object(event: &Event) -> String {
    let object = &event.involved_object;
    let kind = object.kind.as_deref().unwrap_or_default().to_lowercase();
    match object.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => format!("{kind}/{name}"),
        None => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn rfc(second: i64) -> String {
        ts(second).to_string()
    }

    fn event(value: serde_json::Value) -> Event {
        serde_json::from_value(value).unwrap()
    }

    fn pulled(name: &str, last: i64) -> Event {
        event(json!({
            "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
            "type": "Normal", "reason": "Pulled", "message": format!("{name} done\n"),
            "firstTimestamp": rfc(last - 60), "lastTimestamp": rfc(last), "count": 1,
        }))
    }

    #[test]
    fn table_is_sorted_oldest_first_and_aligned() {
        let now = ts(10_000);
        let events = [pulled("b", 9_990), pulled("a", 9_700)];
        let want = "LAST SEEN   TYPE     REASON   OBJECT    MESSAGE\n\
                    5m          Normal   Pulled   pod/web   a done\n\
                    10s         Normal   Pulled   pod/web   b done\n";
        assert_eq!(event_table(&events, false, now), want);
    }

    #[test]
    fn namespace_column_comes_first() {
        let row = event_row(&pulled("a", 9_990), true, ts(10_000));
        assert_eq!(
            row,
            ["default", "10s", "Normal", "Pulled", "pod/web", "a done"]
        );
        assert_eq!(event_table_header(true)[0], "NAMESPACE");
    }

    #[test]
    fn last_seen_falls_back_to_event_time_and_series() {
        let now = ts(10_000);
        let new_style = event(json!({
            "metadata": {"name": "x"}, "involvedObject": {"kind": "Node"},
            "eventTime": "1970-01-01T02:42:50.000000Z",
        }));
        assert_eq!(event_row(&new_style, false, now)[0], "3m50s");
        assert_eq!(event_row(&new_style, false, now)[3], "node");
        let series = event(json!({
            "metadata": {"name": "y"}, "involvedObject": {"kind": "Pod", "name": "p"},
            "eventTime": "1970-01-01T00:00:00.000000Z",
            "series": {"count": 4, "lastObservedTime": "1970-01-01T02:43:10.000000Z"},
        }));
        assert_eq!(event_row(&series, false, now)[0], "3m30s");
    }

    #[test]
    fn sort_uses_creation_time_when_nothing_else_is_set() {
        let late = event(
            json!({"metadata": {"name": "late", "creationTimestamp": rfc(20)},
            "involvedObject": {}}),
        );
        let early = event(
            json!({"metadata": {"name": "early", "creationTimestamp": rfc(10)},
            "involvedObject": {}}),
        );
        let events = [late, early];
        let names: Vec<_> = sorted(&events)
            .iter()
            .map(|e| e.metadata.name.clone())
            .collect();
        assert_eq!(names, [Some("early".to_string()), Some("late".to_string())]);
    }

    #[test]
    fn empty_event_list_prints_nothing() {
        assert_eq!(event_table(&[], false, ts(0)), "");
    }
}
