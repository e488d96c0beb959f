//! kubelet's status manager: a pod's status goes to the API as a merge patch of what changed
//! since the version the kubelet holds, that version's resourceVersion (and the pod's uid) its
//! preconditions; a conflict reads the pod again and retries, a pod gone ends the write. Once
//! its containers are gone the pod is deleted with grace period 0 and its uid as precondition
//! (`canBeDeleted`, then `Delete` with `NewDeleteOptions(0)`).

use axum::http::StatusCode;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::status::ApiError;
use serde_json::{json, Map, Value};

use super::pod_manager::PodManager;

/// How many times a status write reads the pod again after a conflict.
const CONFLICT_RETRIES: usize = 5;

/// What became of a status write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The status already read so.
    Unchanged,
    Patched,
    /// The pod is gone (or another of its name took its place).
    PodGone,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("writing the status of pod {pod}: {source}")]
    Write {
        pod: String,
        #[source]
        source: Box<ApiError>,
    },
    #[error("reading pod {pod}: {source}")]
    Read {
        pod: String,
        #[source]
        source: Box<ApiError>,
    },
    #[error("the status of pod {pod} still conflicted after {CONFLICT_RETRIES} reads")]
    Conflicts { pod: String },
    #[error("removing pod {pod}: {source}")]
    Delete {
        pod: String,
        #[source]
        source: Box<ApiError>,
    },
}

/// Writes the status `desired` makes of the pod, starting from `pod` or the newer version the
/// pod manager holds; the answer becomes the version held.
pub async fn write_status(
    client: &LocalClient,
    pods: &PodManager,
    pod: &Pod,
    desired: impl Fn(&Pod) -> PodStatus,
) -> Result<Written, StatusError> {
    let mut base = pods.freshest(pod);
    for _ in 0..=CONFLICT_RETRIES {
        let Some(patch) = status_patch(&base, &desired(&base)) else {
            return Ok(Written::Unchanged);
        };
        let path = format!("{}/status", pod_path(&base));
        match client.merge_patch(&path, patch).await {
            Ok(updated) => {
                hold(pods, updated);
                return Ok(Written::Patched);
            }
            Err(err) if err.code == StatusCode::NOT_FOUND => return Ok(Written::PodGone),
            Err(err) if err.code == StatusCode::CONFLICT => {
                match reread(client, pods, &base).await? {
                    Some(fresh) => base = fresh,
                    None => return Ok(Written::PodGone),
                }
            }
            Err(source) => {
                return Err(StatusError::Write {
                    pod: name_of(&base),
                    source: Box::new(source),
                })
            }
        }
    }
    Err(StatusError::Conflicts {
        pod: name_of(&base),
    })
}

/// The pod's final removal once its containers are gone: grace period 0, so the object goes
/// now, and its uid as precondition, so a pod of the same name made since is left alone.
pub async fn remove_pod(client: &LocalClient, pod: &Pod) -> Result<(), StatusError> {
    let options = json!({
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": pod.metadata.uid},
    });
    match client.delete(&pod_path(pod), options).await {
        Ok(_) => Ok(()),
        Err(err) if matches!(err.code, StatusCode::NOT_FOUND | StatusCode::CONFLICT) => Ok(()),
        Err(source) => Err(StatusError::Delete {
            pod: name_of(pod),
            source: Box::new(source),
        }),
    }
}

/// The merge patch taking `pod`'s status to `status`, with the version it applies to; None
/// when nothing changes.
pub fn status_patch(pod: &Pod, status: &PodStatus) -> Option<Value> {
    if pod.status.as_ref() == Some(status) {
        return None;
    }
    let old = serde_json::to_value(&pod.status).unwrap_or(Value::Null);
    let new = serde_json::to_value(status).unwrap_or(Value::Null);
    let changes = merge_diff(&old, &new)?;
    Some(json!({
        "metadata": {
            "uid": pod.metadata.uid,
            "resourceVersion": pod.metadata.resource_version,
        },
        "status": changes,
    }))
}

/// The JSON merge patch (RFC 7386) that makes `old` into `new`; None when they are equal.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return (old != new).then(|| new.clone());
    };
    let mut patch = Map::new();
    for (key, value) in new {
        let change = match old.get(key) {
            Some(before) => merge_diff(before, value),
            None => Some(value.clone()),
        };
        if let Some(change) = change {
            patch.insert(key.clone(), change);
        }
    }
    for key in old.keys().filter(|key| !new.contains_key(*key)) {
        patch.insert(key.clone(), Value::Null);
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// The pod as the API has it now, held by the pod manager; None when it is gone or another
/// pod has its name.
async fn reread(
    client: &LocalClient,
    pods: &PodManager,
    pod: &Pod,
) -> Result<Option<Pod>, StatusError> {
    let read = match client.get(&pod_path(pod)).await {
        Ok(read) => read,
        Err(err) if err.code == StatusCode::NOT_FOUND => return Ok(None),
        Err(source) => {
            return Err(StatusError::Read {
                pod: name_of(pod),
                source: Box::new(source),
            })
        }
    };
    let fresh: Option<Pod> = serde_json::from_value(read).ok();
    let fresh = fresh.filter(|fresh| fresh.metadata.uid == pod.metadata.uid);
    if let Some(fresh) = &fresh {
        pods.update(fresh.clone());
    }
    Ok(fresh)
}

/// Keeps a pod the API answered with as the version the pod manager holds.
fn hold(pods: &PodManager, answer: Value) {
    match serde_json::from_value::<Pod>(answer) {
        Ok(pod) => {
            pods.update(pod);
        }
        Err(err) => tracing::warn!(%err, "decoding the pod a status write answered with"),
    }
}

pub fn pod_path(pod: &Pod) -> String {
    format!(
        "/api/v1/namespaces/{}/pods/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn name_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::testing;

    fn running(pod: &Pod) -> PodStatus {
        PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some("10.88.0.5".into()),
            ..pod.status.clone().unwrap_or_default()
        }
    }

    fn version(pod: &Value) -> String {
        pod["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_merge_diff_sets_what_changed_and_nulls_what_went() {
        let old =
            json!({"phase": "Pending", "reason": "X", "conditions": [1, 2], "same": {"a": 1}});
        let new = json!({"phase": "Running", "conditions": [1], "same": {"a": 1}, "podIP": "ip"});
        let patch = json!({"phase": "Running", "reason": null, "conditions": [1], "podIP": "ip"});
        assert_eq!(merge_diff(&old, &new), Some(patch));
        assert_eq!(merge_diff(&new, &new), None);
        assert_eq!(merge_diff(&Value::Null, &new), Some(new.clone()));
    }

    #[tokio::test]
    async fn a_conflict_reads_the_pod_again_and_retries() {
        let client = testing::api().await;
        let pods = PodManager::default();
        let stale = testing::create_pod(&client, "web").await;
        let labels = json!({"metadata": {"labels": {"app": "web"}}});
        client.merge_patch(&pod_path(&stale), labels).await.unwrap();
        // The version held is stale: a patch made from it alone is refused.
        let patch = status_patch(&stale, &running(&stale)).unwrap();
        let status_path = format!("{}/status", pod_path(&stale));
        let refused = client.merge_patch(&status_path, patch).await.unwrap_err();
        assert_eq!(refused.code, StatusCode::CONFLICT);

        let written = write_status(&client, &pods, &stale, running).await.unwrap();
        assert_eq!(written, Written::Patched);
        let now = testing::get_pod(&client, "web").await.unwrap();
        assert_eq!(now["status"]["phase"], "Running");
        assert_eq!(now["metadata"]["labels"]["app"], "web");
        let held = pods.get(stale.metadata.uid.as_deref().unwrap()).unwrap();
        assert_eq!(held.metadata.resource_version, Some(version(&now)));

        // Nothing left to change: nothing is written.
        let again = write_status(&client, &pods, &stale, running).await.unwrap();
        assert_eq!(again, Written::Unchanged);
        let after = testing::get_pod(&client, "web").await.unwrap();
        assert_eq!(version(&after), version(&now));
    }

    #[tokio::test]
    async fn the_final_delete_removes_a_terminating_pod_of_its_uid_only() {
        let client = testing::api().await;
        let pod = testing::create_pod(&client, "web").await;
        let graceful = client.delete(&pod_path(&pod), json!({})).await.unwrap();
        assert!(graceful["metadata"]["deletionTimestamp"].is_string());
        assert!(testing::get_pod(&client, "web").await.is_some());

        let mut impostor = pod.clone();
        impostor.metadata.uid = Some("another-uid".into());
        remove_pod(&client, &impostor).await.unwrap();
        assert!(testing::get_pod(&client, "web").await.is_some());

        remove_pod(&client, &pod).await.unwrap();
        assert!(testing::get_pod(&client, "web").await.is_none());
        remove_pod(&client, &pod).await.unwrap();

        let pods = PodManager::default();
        let written = write_status(&client, &pods, &pod, running).await.unwrap();
        assert_eq!(written, Written::PodGone);
    }
}
