//! The deletion a due eviction makes, as kube's `deletePodHandler`: the pod gets the
//! DisruptionTarget condition, then is deleted with its default grace; the events of marking
//! and cancelling.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use serde_json::json;

use super::PodKey;
use crate::controllers::events::{Event, Events};

/// The controller's name: its field manager and events' reporter.
pub const NAME: &str = "taint-eviction-controller";

const RETRIES: usize = 5;
const REASON: &str = "TaintManagerEviction";
const CONDITION_REASON: &str = "DeletionByTaintManager";
const CONDITION_MESSAGE: &str = "Taint manager: deleting due to NoExecute taint";

/// Deletes the pod `key` names if it is still the one with `uid`, retrying as kube does.
pub async fn evict(client: Client, events: Events, key: PodKey, uid: String) {
    tracing::info!(pod = %key, "deleting pod for a NoExecute taint");
    let pods = Api::<Pod>::namespaced(client, &key.namespace);
    let mut marked = false;
    for _ in 0..RETRIES {
        match condition_and_delete(&pods, &events, &key, &uid, &mut marked).await {
            Ok(()) => return,
            Err(kube::Error::Api(status)) if status.is_not_found() => return,
            Err(err) => tracing::info!(pod = %key, %err, "taint eviction failed"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn condition_and_delete(
    pods: &Api<Pod>,
    events: &Events,
    key: &PodKey,
    uid: &str,
    marked: &mut bool,
) -> Result<(), kube::Error> {
    let Some(pod) = pods.get_opt(&key.name).await? else {
        return Ok(());
    };
    if pod.metadata.uid.as_deref() != Some(uid) {
        return Ok(());
    }
    if !std::mem::replace(marked, true) {
        let message = format!("Marking for deletion Pod {key}");
        events.record(&pod, Event::normal(REASON, message)).await;
    }
    if !has_condition(&pod) {
        let patch = json!({
            "metadata": {"uid": uid},
            "status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": CONDITION_REASON,
                "message": CONDITION_MESSAGE,
                "lastTransitionTime": Timestamp::now(),
            }]},
        });
        let params = PatchParams::default();
        pods.patch_status(&key.name, &params, &Patch::Strategic(patch))
            .await?;
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    pods.delete(&key.name, &params).await.map(drop)
}

/// `UpdatePodCondition` would change nothing: the condition is there as the controller sets it.
fn has_condition(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_deref());
    conditions.unwrap_or_default().iter().any(|c| {
        c.type_ == "DisruptionTarget"
            && c.status == "True"
            && c.reason.as_deref() == Some(CONDITION_REASON)
            && c.message.as_deref() == Some(CONDITION_MESSAGE)
    })
}

/// `emitCancelPodDeletionEvent`, recorded in the background so the watch loop never waits.
pub fn record_cancel(events: &Events, key: &PodKey, uid: &str) {
    let pod = Pod {
        metadata: ObjectMeta {
            namespace: Some(key.namespace.clone()),
            name: Some(key.name.clone()),
            uid: Some(uid.to_owned()),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    };
    let message = format!("Cancelling deletion of Pod {key}");
    let events = events.clone();
    tokio::spawn(async move { events.record(&pod, Event::normal(REASON, message)).await });
}
