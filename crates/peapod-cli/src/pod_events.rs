//! What holds a pod back, as `peapod play` tells it: the pod's events worth a user's eye
//! (warnings, image pulls, back-offs), one short line each as the kubelet records them, and
//! why a pod is not running when play ends.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use serde::Deserialize;
use serde_json::Value;

use crate::client::{ApiError, Call, Client, ClientError};
use crate::query::{events_path, pod_path, Query};
use crate::watch::take_lines;

/// Normal events shown too: the kubelet's image pulls and back-offs (Warning ones always are).
const PROGRESS_REASONS: &[&str] = &[
    "Pulling",
    "Pulled",
    "BackOff",
    "Failed",
    "ErrImagePull",
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "ErrImageNeverPull",
];

/// Waiting reasons of a container on its way to running; any other one is a failure.
const STARTING_REASONS: &[&str] = &["ContainerCreating", "PodInitializing"];

/// How long to wait before watching again once the agent ended a watch.
const REWATCH_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: Value,
}

/// Calls `emit` with one line per shown event of pod `name` (those recorded so far first);
/// an event recorded again (its count grew) is shown again. Ends with the error of the first
/// request the agent does not answer.
pub async fn follow(
    client: &Client,
    namespace: &str,
    name: &str,
    mut emit: impl FnMut(String) + Send,
) -> Result<(), ClientError> {
    let pod: Pod = client.get_json(&pod_path(namespace, name)).await?;
    let uid = pod.metadata.uid.unwrap_or_default();
    let mut query = Query::new();
    query
        .push("watch", "true")
        .push("fieldSelector", format!("involvedObject.uid={uid}"));
    let path = format!("{}{query}", events_path(Some(namespace)));
    let mut shown = HashMap::new();
    loop {
        watch_once(client, &path, &mut |event| {
            if let Some(line) = newly_shown(&mut shown, name, &event) {
                emit(line);
            }
        })
        .await?;
        tokio::time::sleep(REWATCH_DELAY).await;
    }
}

/// Hands every event of one watch to `on_event` until the agent ends the stream.
async fn watch_once(
    client: &Client,
    path: &str,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<(), ClientError> {
    let mut reply = client.send(Call::get(path)).await?.success().await?;
    let decode = |source| ClientError::Decode {
        path: path.to_string(),
        source,
    };
    let mut pending = Vec::new();
    while let Some(chunk) = reply.chunk().await? {
        pending.extend_from_slice(&chunk);
        for line in take_lines(&mut pending) {
            let event: WatchEvent = serde_json::from_slice(&line).map_err(decode)?;
            match event.kind.as_str() {
                "ADDED" | "MODIFIED" => {
                    on_event(serde_json::from_value(event.object).map_err(decode)?)
                }
                "ERROR" => {
                    let body = event.object.to_string();
                    let status = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                    return Err(ApiError::from_response(status, body.as_bytes()).into());
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The line for `event` when it is shown and was not shown at its current count yet.
fn newly_shown(shown: &mut HashMap<String, i32>, pod: &str, event: &Event) -> Option<String> {
    let key = event.metadata.name.clone().unwrap_or_default();
    let count = event.count.unwrap_or(1);
    if shown.get(&key).is_some_and(|seen| *seen >= count) {
        return None;
    }
    let line = event_line(pod, event)?;
    shown.insert(key, count);
    Some(line)
}

/// `pod/web: Warning Failed: Failed to pull image "x": ...`, with ` (x3)` when recorded three
/// times; None for the events play does not show (Scheduled, Created, Started, ...).
pub fn event_line(pod: &str, event: &Event) -> Option<String> {
    let type_ = event.type_.as_deref().unwrap_or("Normal");
    let reason = event.reason.as_deref().unwrap_or_default();
    if type_ != "Warning" && !PROGRESS_REASONS.contains(&reason) {
        return None;
    }
    let message = event.message.as_deref().unwrap_or_default().trim();
    let times = match event.count {
        Some(count) if count > 1 => format!(" (x{count})"),
        _ => String::new(),
    };
    Some(format!("pod/{pod}: {type_} {reason}: {message}{times}"))
}

/// Why pod `name` is not running, read now: None when it runs (or is still starting).
pub async fn held_back(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, ClientError> {
    let pod: Pod = client.get_json(&pod_path(namespace, name)).await?;
    Ok(hold_up(&pod))
}

/// The pod's failure: the phase Failed (with its reason), else the first container waiting
/// for a reason other than being created (`ImagePullBackOff: Back-off pulling image ...`).
pub fn hold_up(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() == Some("Failed") {
        let reason = status.reason.as_deref().unwrap_or("Failed");
        return Some(match status.message.as_deref() {
            Some(message) => format!("{reason}: {message}"),
            None => reason.to_string(),
        });
    }
    let containers = status.init_container_statuses.iter().flatten();
    containers
        .chain(status.container_statuses.iter().flatten())
        .find_map(waiting_failure)
}

fn waiting_failure(container: &ContainerStatus) -> Option<String> {
    let waiting = container.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    if STARTING_REASONS.contains(&reason) {
        return None;
    }
    Some(match waiting.message.as_deref() {
        Some(message) => format!("container {} {reason}: {message}", container.name),
        None => format!("container {} {reason}", container.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(type_: &str, reason: &str, count: i32) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": "web.1"}, "involvedObject": {"kind": "Pod", "name": "web"},
            "type": type_, "reason": reason, "message": "Back-off pulling image \"x\"",
            "count": count,
        }))
        .unwrap()
    }

    #[test]
    fn warnings_and_pull_progress_are_shown_the_rest_is_not() {
        assert_eq!(
            event_line("web", &event("Warning", "Failed", 1)).as_deref(),
            Some("pod/web: Warning Failed: Back-off pulling image \"x\"")
        );
        assert_eq!(
            event_line("web", &event("Normal", "BackOff", 3)).as_deref(),
            Some("pod/web: Normal BackOff: Back-off pulling image \"x\" (x3)")
        );
        assert_eq!(event_line("web", &event("Normal", "Started", 1)), None);
        assert!(event_line("web", &event("Warning", "Unhealthy", 1)).is_some());
    }

    #[test]
    fn an_event_shows_again_only_when_recorded_again() {
        let mut shown = HashMap::new();
        assert!(newly_shown(&mut shown, "web", &event("Normal", "BackOff", 1)).is_some());
        assert!(newly_shown(&mut shown, "web", &event("Normal", "BackOff", 1)).is_none());
        assert!(newly_shown(&mut shown, "web", &event("Normal", "BackOff", 2)).is_some());
        assert!(newly_shown(&mut shown, "web", &event("Normal", "Started", 1)).is_none());
    }

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "web"}, "status": status})).unwrap()
    }

    #[test]
    fn a_pod_is_held_back_by_a_failed_phase_or_a_failing_container() {
        let waiting = |reason: &str| {
            pod(json!({"phase": "Pending", "containerStatuses": [{
                "name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": "Back-off pulling image \"x\""}},
            }]}))
        };
        assert_eq!(
            hold_up(&waiting("ImagePullBackOff")).as_deref(),
            Some("container app ImagePullBackOff: Back-off pulling image \"x\"")
        );
        assert_eq!(hold_up(&waiting("ContainerCreating")), None);
        assert_eq!(hold_up(&pod(json!({"phase": "Running"}))), None);
        assert_eq!(
            hold_up(&pod(json!({"phase": "Failed", "reason": "Evicted"}))).as_deref(),
            Some("Evicted")
        );
    }
}
