//! kube's pvc-protection and pv-protection controllers: a claim being deleted keeps its
//! `kubernetes.io/pvc-protection` finalizer while a pod that is not terminal mounts it; a
//! volume being deleted keeps `kubernetes.io/pv-protection` while it is Bound.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use peapod_apis::core::v1::persistentvolumeclaim::admission::{
    PVC_PROTECTION_FINALIZER, PV_PROTECTION_FINALIZER,
};

use super::controller::in_use;

/// How soon a failed sync is tried again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the pvc-protection controller until its task is aborted.
pub async fn run_claims(client: Client) {
    let claims = Api::<PersistentVolumeClaim>::all(client.clone());
    Controller::new(claims, watcher::Config::default())
        .watches(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            claims_of_pod,
        )
        .run(sync_claim, retry, Arc::new(client))
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "pvc-protection controller");
            }
        })
        .await;
}

fn claims_of_pod(pod: Pod) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    let namespace = pod.namespace().unwrap_or_default();
    let volumes = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
    volumes
        .into_iter()
        .filter_map(|v| v.persistent_volume_claim)
        .map(|s| ObjectRef::new(&s.claim_name).within(&namespace))
        .collect()
}

fn retry<K>(_: Arc<K>, err: &kube::Error, _: Arc<Client>) -> Action {
    tracing::info!(%err, "protection controller: sync failed");
    Action::requeue(RETRY)
}

/// Takes the finalizer of a fresh read of a claim being deleted that no pod uses.
async fn sync_claim(
    cached: Arc<PersistentVolumeClaim>,
    client: Arc<Client>,
) -> Result<Action, kube::Error> {
    let namespace = cached.namespace().unwrap_or_default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.as_ref().clone(), &namespace);
    let Some(claim) = claims.get_opt(&cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let protected = claim
        .finalizers()
        .iter()
        .any(|f| f == PVC_PROTECTION_FINALIZER);
    if claim.metadata.deletion_timestamp.is_none() || !protected {
        return Ok(Action::await_change());
    }
    let pods = Api::<Pod>::namespaced(client.as_ref().clone(), &namespace);
    if in_use(
        &claim.name_any(),
        &pods.list(&ListParams::default()).await?.items,
    ) {
        return Ok(Action::await_change());
    }
    let mut released = claim.clone();
    released
        .finalizers_mut()
        .retain(|f| f != PVC_PROTECTION_FINALIZER);
    claims
        .replace(&claim.name_any(), &PostParams::default(), &released)
        .await?;
    Ok(Action::await_change())
}

/// Runs the pv-protection controller until its task is aborted.
pub async fn run_volumes(client: Client) {
    let volumes = Api::<PersistentVolume>::all(client.clone());
    Controller::new(volumes, watcher::Config::default())
        .run(
            sync_volume,
            |_, _, _| Action::requeue(std::time::Duration::from_secs(1)),
            Arc::new(client),
        )
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "pv-protection controller");
            }
        })
        .await;
}

async fn sync_volume(
    cached: Arc<PersistentVolume>,
    client: Arc<Client>,
) -> Result<Action, kube::Error> {
    let volumes = Api::<PersistentVolume>::all(client.as_ref().clone());
    let Some(volume) = volumes.get_opt(&cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let protected = volume
        .finalizers()
        .iter()
        .any(|f| f == PV_PROTECTION_FINALIZER);
    let bound = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if volume.metadata.deletion_timestamp.is_none() || !protected || bound {
        return Ok(Action::await_change());
    }
    let mut released = volume.clone();
    released
        .finalizers_mut()
        .retain(|f| f != PV_PROTECTION_FINALIZER);
    volumes
        .replace(&volume.name_any(), &PostParams::default(), &released)
        .await?;
    Ok(Action::await_change())
}
