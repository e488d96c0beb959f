//! The Job controller's pod writes, as kube's `RealPodControl` and job_controller.go make
//! them: creates in slow-start batches (each index once) after the failure backoff, deletes
//! (optionally dropping the tracking finalizer first), and finalizer removals, with the
//! events kube records for each.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use super::controller::{Context, Outcome};
use super::pods::{count, remove_finalizer_patch};
use super::state::SyncState;
use super::{backoff, manage, spec, template};
use crate::controllers::api_errors::{error_message, namespace_terminating};
use crate::controllers::replicaset::batches::{slow_start_batch, SLOW_START_INITIAL_BATCH_SIZE};
use crate::controllers::replicaset::pod_control::{
    create_failed, created, delete_error, delete_failed, deleted,
};
use crate::controllers::replicaset::pods::is_ready;

/// What a round of deletes did.
#[derive(Debug, Default)]
pub struct Deletion {
    /// Deletes that succeeded (a pod already gone counts).
    pub deleted: i32,
    pub deleted_ready: i32,
    pub error: Option<String>,
}

/// Deletes `pods` at once; with `drop_finalizer` (`deleteJobPods`) the tracking finalizer is
/// removed first, else (`deleteActivePods`) it stays until the pod is counted.
pub async fn delete_all(job: &Job, pods: &[&Pod], drop_finalizer: bool, ctx: &Context) -> Deletion {
    let deletes = pods
        .iter()
        .map(|pod| delete_one(job, pod, drop_finalizer, ctx));
    let results = join_all(deletes).await;
    let mut deletion = Deletion::default();
    for (pod, result) in pods.iter().zip(results) {
        match result {
            Ok(()) => deletion.deleted += 1,
            Err(err) => {
                deletion.error.get_or_insert(err);
            }
        }
        deletion.deleted_ready += i32::from(is_ready(pod));
    }
    deletion
}

async fn delete_one(
    job: &Job,
    pod: &Pod,
    drop_finalizer: bool,
    ctx: &Context,
) -> Result<(), String> {
    let pod_api = pods_of(job, ctx);
    let name = pod.name_any();
    if drop_finalizer {
        if let Err(err) = remove_finalizer(&pod_api, pod).await {
            return Err(format!("removing completion finalizer: {err}"));
        }
    }
    match pod_api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            ctx.events.record(job, deleted(&name)).await;
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(err) => {
            let message = error_message(&err);
            ctx.events.record(job, delete_failed(&message)).await;
            Err(delete_error(&message))
        }
    }
}

/// `removeTrackingFinalizerFromPods`: the uids whose finalizer is gone (a pod already gone
/// counts), and the first error.
pub async fn remove_finalizers(pods: &[&Pod], ctx: &Context) -> (Vec<String>, Option<String>) {
    let removals = pods.iter().map(|pod| async move {
        let namespace = pod.namespace().unwrap_or_default();
        let pod_api = Api::<Pod>::namespaced(ctx.client.clone(), &namespace);
        remove_finalizer(&pod_api, pod).await
    });
    let results = join_all(removals).await;
    let mut removed = Vec::new();
    let mut error = None;
    for (pod, result) in pods.iter().zip(results) {
        match result {
            Ok(()) => removed.push(pod.metadata.uid.clone().unwrap_or_default()),
            Err(err) => {
                error.get_or_insert(format!("removing tracking finalizer: {err}"));
            }
        }
    }
    (removed, error)
}

/// Removes the tracking finalizer, if held; a pod already gone is no failure.
pub async fn remove_finalizer(pod_api: &Api<Pod>, pod: &Pod) -> Result<(), String> {
    let Some(patch) = remove_finalizer_patch(pod) else {
        return Ok(());
    };
    let params = PatchParams::default();
    match pod_api
        .patch(&pod.name_any(), &params, &Patch::Strategic(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(err) => Err(error_message(&err)),
    }
}

/// Creates `missing` pods (their indexes, for an Indexed Job) unless the failure backoff
/// still runs, in which case the sync comes back when it ends and reports no pod active, as
/// kube's does.
pub async fn create_missing(
    state: &SyncState<'_>,
    missing: usize,
    active: i32,
    ctx: &Context,
    now: Timestamp,
) -> Outcome {
    let per_index = spec::backoff_limit_per_index(&state.job).is_some();
    let waiting = |remaining: Duration| Outcome {
        requeue: Some(remaining),
        ..Outcome::default()
    };
    if !per_index {
        let remaining = state.backoff.remaining(now);
        if !remaining.is_zero() {
            return waiting(remaining);
        }
    }
    let missing = missing.min(manage::MAX_POD_CREATE_DELETE_PER_SYNC);
    let slots: Vec<Option<usize>> = match spec::is_indexed(&state.job) {
        false => vec![None; missing],
        true => {
            let pending = manage::pending_indexes(state, missing);
            match per_index {
                false => pending.into_iter().map(Some).collect(),
                true => match creatable_now(state, pending, now) {
                    Ok(ready) => ready.into_iter().map(Some).collect(),
                    Err(remaining) => return waiting(remaining),
                },
            }
        }
    };
    let (created, error) = create_pods(state, slots, ctx).await;
    Outcome {
        active: active + created,
        error,
        ..Outcome::default()
    }
}

/// `getPodCreationInfoForIndependentIndexes`: the indexes whose own backoff has passed, or
/// (if none) the shortest wait.
fn creatable_now(
    state: &SyncState<'_>,
    pending: Vec<usize>,
    now: Timestamp,
) -> Result<Vec<usize>, Duration> {
    let wait = |index: &usize| {
        let last_failed = state.delayed_deletion.get(index).copied();
        backoff::remaining_for_index(last_failed, now)
    };
    let shortest = pending.iter().map(wait).filter(|w| !w.is_zero()).min();
    let ready: Vec<usize> = pending.into_iter().filter(|i| wait(i).is_zero()).collect();
    match (ready.is_empty(), shortest) {
        (true, Some(remaining)) => Err(remaining),
        _ => Ok(ready),
    }
}

/// Creates one pod per slot in slow-start batches; answers how many count as active.
async fn create_pods(
    state: &SyncState<'_>,
    slots: Vec<Option<usize>>,
    ctx: &Context,
) -> (i32, Option<String>) {
    let template = template::sync_template(&state.job);
    let count_slots = slots.len();
    let queue = Mutex::new(VecDeque::from(slots));
    let create = || {
        let slot = queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .flatten();
        create_pod(state, &template, slot, ctx)
    };
    let (successes, error) =
        slow_start_batch(count_slots, SLOW_START_INITIAL_BATCH_SIZE, create).await;
    (count(0..successes), error)
}

async fn create_pod(
    state: &SyncState<'_>,
    template: &PodTemplateSpec,
    index: Option<usize>,
    ctx: &Context,
) -> Result<(), String> {
    let job = &state.job;
    let replaced = index.and_then(|i| state.delayed_deletion.get(&i).copied());
    let pod = template::pod_for(job, template, index, replaced).map_err(|e| e.to_string())?;
    match pods_of(job, ctx).create(&PostParams::default(), &pod).await {
        Ok(pod) => {
            ctx.events.record(job, created(&pod.name_any())).await;
            Ok(())
        }
        Err(kube::Error::Api(status)) if namespace_terminating(&status) => Ok(()),
        Err(err) => {
            let message = error_message(&err);
            ctx.events.record(job, create_failed(&message)).await;
            Err(message)
        }
    }
}

fn pods_of(job: &Job, ctx: &Context) -> Api<Pod> {
    Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controllers::job::backoff::Record;
    use crate::controllers::job::fixtures::{build_pod, indexed};

    /// kube's `getPodCreationInfoForIndependentIndexes`: indexes whose backoff passed go now;
    /// with none, the shortest wait.
    #[test]
    fn indexes_wait_for_their_own_backoff() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let failed_at = |index: &str, seconds_ago: i64| {
            let at = now - jiff::SignedDuration::from_secs(seconds_ago);
            build_pod()
                .uid(&format!("failed-{index}"))
                .index(index)
                .index_failure_count("0")
                .phase("Failed")
                .exited("c", 1, &at.to_string())
                .tracking_finalizer()
                .pod()
        };
        let pods = [failed_at("0", 4), failed_at("1", 30)];
        let job = indexed(3, json!({"backoffLimitPerIndex": 2, "parallelism": 3}));
        let mut state = SyncState::new(job, pods.iter().collect(), Record::default(), now);
        state.judge(now);
        assert_eq!(state.delayed_deletion.len(), 2);
        assert_eq!(creatable_now(&state, vec![1, 2], now), Ok(vec![1, 2]));
        assert_eq!(
            creatable_now(&state, vec![0], now),
            Err(Duration::from_secs(6))
        );
        assert_eq!(creatable_now(&state, vec![], now), Ok(vec![]));
    }
}
