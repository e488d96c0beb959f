//! The binder's loops: claims (triggered by claims, by the volumes that name them and by the
//! pods that mount them) are bound to a matching volume or provisioned one, and bound ones
//! grown when their request outgrows their capacity; volumes (triggered by volumes and by
//! claims) follow their claim — Available without one, Released when it is gone, then deleted
//! with their directory under the Delete policy.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus, PersistentVolumeStatus,
    Pod,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use peapod_apis::core::v1::volume_claims::{storage_of, STORAGE};

use super::matching::{
    capacity, find_matching_volume, find_pre_bound_volume, first_consumer, is_bound_to, mounts,
    requested,
};
use super::provisioner::{self, ProvisionError, LOCAL_PATH_PROVISIONER};
use super::{
    BETA_STORAGE_PROVISIONER, BIND_COMPLETED, BOUND_BY_CONTROLLER, PROVISIONED_BY, SELECTED_NODE,
    STORAGE_PROVISIONER,
};
use crate::controllers::events::{Event, Events};
use crate::controllers::retries::{key_of, Retries};

/// The controller's name, in its events and as its field manager.
pub const NAME: &str = "persistentvolume-controller";

#[derive(Debug, thiserror::Error)]
pub enum BinderError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
}

/// What both loops share: the client, the events, this node and where volumes are made.
pub struct Binder {
    client: Client,
    events: Events,
    node: String,
    storage_root: PathBuf,
    retries: Retries,
}

impl Binder {
    pub fn new(client: Client, node: String, storage_root: PathBuf) -> Binder {
        Binder {
            events: Events::new(client.clone(), NAME),
            client,
            node,
            storage_root,
            retries: Retries::default(),
        }
    }
}

/// Runs both loops until the task is aborted.
pub async fn run(binder: Binder) {
    let binder = Arc::new(binder);
    let volumes = tokio::spawn(run_volumes(binder.clone()));
    let claims = Api::<PersistentVolumeClaim>::all(binder.client.clone());
    Controller::new(claims, watcher::Config::default())
        .watches(
            Api::<PersistentVolume>::all(binder.client.clone()),
            watcher::Config::default(),
            claim_of_volume,
        )
        .watches(
            Api::<Pod>::all(binder.client.clone()),
            watcher::Config::default(),
            claims_of_pod,
        )
        .run(reconcile_claim, error_policy, binder)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "persistentvolume binder: claims");
            }
        })
        .await;
    volumes.abort();
}

/// Syncs a fresh read of the claim; one that is gone is forgotten.
async fn reconcile_claim(
    cached: Arc<PersistentVolumeClaim>,
    binder: Arc<Binder>,
) -> Result<Action, BinderError> {
    let namespace = cached.namespace().unwrap_or_default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(binder.client.clone(), &namespace);
    let key = key_of(cached.as_ref());
    let Some(claim) = claims.get_opt(&cached.name_any()).await? else {
        binder.retries.succeeded(&key);
        return Ok(Action::await_change());
    };
    let action = sync_claim(&binder, claim).await?;
    binder.retries.succeeded(&key);
    Ok(action)
}

/// kube's per-item backoff, shared by both loops (their keys differ: claims are namespaced).
fn error_policy<K: kube::Resource>(
    object: Arc<K>,
    err: &BinderError,
    binder: Arc<Binder>,
) -> Action {
    let key = key_of(object.as_ref());
    tracing::info!(object = %key, %err, "persistentvolume binder: sync failed");
    Action::requeue(binder.retries.failed(&key))
}

fn claim_of_volume(volume: PersistentVolume) -> Option<ObjectRef<PersistentVolumeClaim>> {
    let reference = volume.spec?.claim_ref?;
    Some(ObjectRef::new(&reference.name?).within(&reference.namespace?))
}

fn claims_of_pod(pod: Pod) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    let namespace = pod.namespace().unwrap_or_default();
    let volumes = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
    volumes
        .into_iter()
        .filter_map(|v| v.persistent_volume_claim)
        .map(|source| ObjectRef::new(&source.claim_name).within(&namespace))
        .collect()
}

/// kube's `syncClaim`: an unbound claim is bound or provisioned; a bound one kept Bound, or
/// Lost when its volume is gone.
async fn sync_claim(binder: &Binder, claim: PersistentVolumeClaim) -> Result<Action, BinderError> {
    if claim.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let volumes = Api::<PersistentVolume>::all(binder.client.clone());
    match claim.spec.as_ref().and_then(|s| s.volume_name.clone()) {
        Some(name) if !name.is_empty() => match volumes.get_opt(&name).await? {
            Some(volume) if is_bound_to(&volume, &claim) => {
                let volume = expand(binder, volume, &claim).await?;
                bind(binder, volume, claim).await?;
            }
            Some(volume) if volume.spec.as_ref().is_some_and(|s| s.claim_ref.is_none()) => {
                bind_requested(binder, volume, claim).await?;
            }
            Some(_) => {}
            None => {
                let message =
                    "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
                        .to_owned();
                binder
                    .events
                    .record(&claim, Event::warning("ClaimLost", message))
                    .await;
                set_claim_phase(binder, claim, "Lost").await?;
            }
        },
        _ => sync_unbound_claim(binder, claim).await?,
    }
    Ok(Action::await_change())
}

async fn sync_unbound_claim(
    binder: &Binder,
    claim: PersistentVolumeClaim,
) -> Result<(), BinderError> {
    let all = Api::<PersistentVolume>::all(binder.client.clone());
    let listed = all.list(&ListParams::default()).await?.items;
    if let Some(volume) = find_pre_bound_volume(&claim, &listed) {
        return bind(binder, volume.clone(), claim).await;
    }
    let class = class_of(binder, &claim).await?;
    let waits = class
        .as_ref()
        .and_then(|c| c.volume_binding_mode.as_deref())
        == Some("WaitForFirstConsumer");
    let claim = if waits {
        match select_node(binder, claim).await? {
            Some(claim) => claim,
            None => return Ok(()),
        }
    } else {
        claim
    };
    if let Some(volume) = find_matching_volume(&claim, &listed) {
        return bind(binder, volume.clone(), claim).await;
    }
    match class {
        Some(class) if class.provisioner == LOCAL_PATH_PROVISIONER => {
            provision(binder, &claim, &class).await
        }
        Some(class) => {
            let message = format!("Waiting for a volume to be created either by the external provisioner '{}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.", class.provisioner);
            let event = Event::normal("ExternalProvisioning", message);
            binder.events.record(&claim, event).await;
            Ok(())
        }
        None => {
            let name = claim_class_name(&claim);
            let event = if name.is_empty() {
                let message =
                    "no persistent volumes available for this claim and no storage class is set";
                Event::normal("FailedBinding", message.to_owned())
            } else {
                let message = format!("storageclass.storage.k8s.io \"{name}\" not found");
                Event::warning("ProvisioningFailed", message)
            };
            binder.events.record(&claim, event).await;
            Ok(())
        }
    }
}

/// A claim that names an unbound volume binds it if it fits, as kube's `syncClaim` does for
/// claims pre-bound by their user.
async fn bind_requested(
    binder: &Binder,
    volume: PersistentVolume,
    claim: PersistentVolumeClaim,
) -> Result<(), BinderError> {
    if find_matching_volume(&claim, std::slice::from_ref(&volume)).is_some() {
        return bind(binder, volume, claim).await;
    }
    let message = format!(
        "Cannot bind to requested volume {:?}: the volume does not satisfy the claim",
        volume.name_any()
    );
    binder
        .events
        .record(&claim, Event::warning("VolumeMismatch", message))
        .await;
    Ok(())
}

fn claim_class_name(claim: &PersistentVolumeClaim) -> String {
    peapod_apis::core::v1::persistentvolumeclaim::claim_class(claim).unwrap_or_default()
}

async fn class_of(
    binder: &Binder,
    claim: &PersistentVolumeClaim,
) -> Result<Option<StorageClass>, BinderError> {
    let name = claim_class_name(claim);
    if name.is_empty() {
        return Ok(None);
    }
    Ok(Api::<StorageClass>::all(binder.client.clone())
        .get_opt(&name)
        .await?)
}

/// The selected node of a WaitForFirstConsumer claim: its annotation, else set now from its
/// first scheduled pod; `None` while no pod uses it.
async fn select_node(
    binder: &Binder,
    claim: PersistentVolumeClaim,
) -> Result<Option<PersistentVolumeClaim>, BinderError> {
    if claim.annotations().contains_key(SELECTED_NODE) {
        return Ok(Some(claim));
    }
    let namespace = claim.namespace().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(binder.client.clone(), &namespace);
    let pods = pods.list(&ListParams::default()).await?.items;
    let Some(pod) = first_consumer(&claim.name_any(), &pods) else {
        let message = "waiting for first consumer to be created before binding".to_owned();
        binder
            .events
            .record(&claim, Event::normal("WaitForFirstConsumer", message))
            .await;
        return Ok(None);
    };
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let mut updated = claim.clone();
    updated
        .annotations_mut()
        .insert(SELECTED_NODE.to_owned(), node);
    let claims = Api::<PersistentVolumeClaim>::namespaced(binder.client.clone(), &namespace);
    Ok(Some(
        claims
            .replace(&claim.name_any(), &PostParams::default(), &updated)
            .await?,
    ))
}

/// Makes the claim's directory and its volume, pre-bound to it; the volume's event brings the
/// claim back to be bound.
async fn provision(
    binder: &Binder,
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
) -> Result<(), BinderError> {
    let namespace = claim.namespace().unwrap_or_default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(binder.client.clone(), &namespace);
    let mut annotated = claim.clone();
    for key in [STORAGE_PROVISIONER, BETA_STORAGE_PROVISIONER] {
        annotated
            .annotations_mut()
            .insert(key.to_owned(), class.provisioner.clone());
    }
    let claim = if annotated.annotations() != claim.annotations() {
        claims
            .replace(&claim.name_any(), &PostParams::default(), &annotated)
            .await?
    } else {
        claim.clone()
    };
    let dir = provisioner::volume_dir(&binder.storage_root, &claim);
    provisioner::create_dir(&dir)?;
    let node = claim
        .annotations()
        .get(SELECTED_NODE)
        .cloned()
        .unwrap_or_else(|| binder.node.clone());
    let volume = provisioner::volume_for(&claim, class, &node, &dir);
    let volumes = Api::<PersistentVolume>::all(binder.client.clone());
    match volumes.create(&PostParams::default(), &volume).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => return Err(err.into()),
    }
    let message = format!(
        "Successfully provisioned volume {} using {}",
        provisioner::volume_name(&claim),
        class.provisioner
    );
    binder
        .events
        .record(&claim, Event::normal("ProvisioningSucceeded", message))
        .await;
    Ok(())
}

/// kube's expand controller, for a bound claim whose request outgrew its capacity. A volume of
/// this provisioner is a directory whose size is nominal, so its capacity becomes the request
/// at once, as an in-tree plugin needing no filesystem resize does, and [`bind`] carries it to
/// the claim's status; any other volume waits for an external controller, as kube leaves
/// volumes no in-tree plugin can expand.
async fn expand(
    binder: &Binder,
    volume: PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> Result<PersistentVolume, BinderError> {
    let status = claim.status.as_ref();
    let bound = status.and_then(|s| s.phase.as_deref()) == Some("Bound");
    let current = storage_of(status.and_then(|s| s.capacity.as_ref()));
    let Some(wanted) = requested(claim).filter(|wanted| bound && Some(wanted) > current.as_ref())
    else {
        return Ok(volume);
    };
    if capacity(&volume).is_some_and(|has| has >= wanted) {
        return Ok(volume);
    }
    if !provisioned_here(&volume) {
        let message = "waiting for an external controller to expand this PVC".to_owned();
        let event = Event::normal("ExternalExpanding", message);
        binder.events.record(claim, event).await;
        return Ok(volume);
    }
    let request = claim.spec.as_ref().and_then(|s| {
        s.resources
            .as_ref()?
            .requests
            .as_ref()?
            .get(STORAGE)
            .cloned()
    });
    let mut grown = volume.clone();
    let spec = grown.spec.get_or_insert_with(Default::default);
    spec.capacity
        .get_or_insert_with(Default::default)
        .extend(request.map(|q| (STORAGE.to_owned(), q)));
    let volumes = Api::<PersistentVolume>::all(binder.client.clone());
    let grown = volumes
        .replace(&volume.name_any(), &PostParams::default(), &grown)
        .await?;
    let name = format!(
        "{}/{}",
        claim.namespace().unwrap_or_default(),
        claim.name_any()
    );
    let message = format!("ExpandVolume succeeded for volume {name}");
    let event = Event::normal("VolumeResizeSuccessful", message);
    binder.events.record(claim, event).await;
    Ok(grown)
}

fn provisioned_here(volume: &PersistentVolume) -> bool {
    volume.annotations().get(PROVISIONED_BY).map(String::as_str) == Some(LOCAL_PATH_PROVISIONER)
}

/// kube's `bind`: the volume names the claim and is Bound, then the claim names the volume and
/// is Bound with its capacity and access modes.
async fn bind(
    binder: &Binder,
    volume: PersistentVolume,
    claim: PersistentVolumeClaim,
) -> Result<(), BinderError> {
    let volumes = Api::<PersistentVolume>::all(binder.client.clone());
    let mut bound_volume = volume.clone();
    let spec = bound_volume.spec.get_or_insert_with(Default::default);
    let reference = spec.claim_ref.as_ref();
    if reference.and_then(|r| r.uid.as_deref()) != claim.metadata.uid.as_deref() {
        if reference.is_none() {
            bound_volume
                .annotations_mut()
                .insert(BOUND_BY_CONTROLLER.to_owned(), "yes".to_owned());
        }
        bound_volume.spec.as_mut().expect("set above").claim_ref =
            Some(provisioner::claim_ref(&claim));
        bound_volume = volumes
            .replace(&volume.name_any(), &PostParams::default(), &bound_volume)
            .await?;
    }
    if volume_phase(&bound_volume) != Some("Bound") {
        bound_volume.status = Some(PersistentVolumeStatus {
            phase: Some("Bound".to_owned()),
            last_phase_transition_time: Some(now()),
            ..PersistentVolumeStatus::default()
        });
        bound_volume = volumes
            .replace_status(&volume.name_any(), &PostParams::default(), &bound_volume)
            .await?;
    }
    bind_claim(binder, &bound_volume, claim).await
}

async fn bind_claim(
    binder: &Binder,
    volume: &PersistentVolume,
    claim: PersistentVolumeClaim,
) -> Result<(), BinderError> {
    let namespace = claim.namespace().unwrap_or_default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(binder.client.clone(), &namespace);
    let mut bound = claim.clone();
    let spec = bound.spec.get_or_insert_with(Default::default);
    if spec.volume_name.as_deref() != Some(&volume.name_any()) {
        spec.volume_name = Some(volume.name_any());
        bound
            .annotations_mut()
            .insert(BOUND_BY_CONTROLLER.to_owned(), "yes".to_owned());
    }
    bound
        .annotations_mut()
        .insert(BIND_COMPLETED.to_owned(), "yes".to_owned());
    if bound != claim {
        bound = claims
            .replace(&claim.name_any(), &PostParams::default(), &bound)
            .await?;
    }
    let volume_spec = volume.spec.clone().unwrap_or_default();
    let status = PersistentVolumeClaimStatus {
        phase: Some("Bound".to_owned()),
        access_modes: volume_spec.access_modes,
        capacity: volume_spec.capacity,
        ..bound.status.clone().unwrap_or_default()
    };
    if bound.status.as_ref() != Some(&status) {
        bound.status = Some(status);
        claims
            .replace_status(&claim.name_any(), &PostParams::default(), &bound)
            .await?;
    }
    Ok(())
}

async fn set_claim_phase(
    binder: &Binder,
    mut claim: PersistentVolumeClaim,
    phase: &str,
) -> Result<(), BinderError> {
    let status = claim.status.get_or_insert_with(Default::default);
    if status.phase.as_deref() == Some(phase) {
        return Ok(());
    }
    status.phase = Some(phase.to_owned());
    let namespace = claim.namespace().unwrap_or_default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(binder.client.clone(), &namespace);
    claims
        .replace_status(&claim.name_any(), &PostParams::default(), &claim)
        .await?;
    Ok(())
}

fn volume_phase(volume: &PersistentVolume) -> Option<&str> {
    volume.status.as_ref()?.phase.as_deref()
}

fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
}

/// The volumes' loop: kube-runtime's Controller over volumes and the claims they name.
async fn run_volumes(binder: Arc<Binder>) {
    let volumes = Api::<PersistentVolume>::all(binder.client.clone());
    let controller = Controller::new(volumes, watcher::Config::default());
    let cache = controller.store();
    controller
        .watches(
            Api::<PersistentVolumeClaim>::all(binder.client.clone()),
            watcher::Config::default(),
            move |claim| volumes_of_claim(&cache.state(), &claim),
        )
        .run(reconcile_volume, error_policy, binder)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(%err, "persistentvolume binder: volumes");
            }
        })
        .await;
}

fn volumes_of_claim(
    volumes: &[Arc<PersistentVolume>],
    claim: &PersistentVolumeClaim,
) -> Vec<ObjectRef<PersistentVolume>> {
    volumes
        .iter()
        .filter(|v| {
            let reference = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
            reference.is_some_and(|r| {
                r.name.as_deref() == claim.metadata.name.as_deref()
                    && r.namespace.as_deref() == claim.metadata.namespace.as_deref()
            })
        })
        .map(|v| ObjectRef::from_obj(v.as_ref()))
        .collect()
}

async fn reconcile_volume(
    cached: Arc<PersistentVolume>,
    binder: Arc<Binder>,
) -> Result<Action, BinderError> {
    let volumes = Api::<PersistentVolume>::all(binder.client.clone());
    let Some(volume) = volumes.get_opt(&cached.name_any()).await? else {
        return Ok(Action::await_change());
    };
    sync_volume(&binder, volume).await?;
    binder.retries.succeeded(&key_of(cached.as_ref()));
    Ok(Action::await_change())
}

/// kube's `syncVolume`: Available without a claim; a claim that is gone releases the volume,
/// which the Delete policy then removes with its directory.
async fn sync_volume(binder: &Binder, volume: PersistentVolume) -> Result<(), BinderError> {
    if volume.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let Some(reference) = volume.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
        return set_volume_phase(binder, volume, "Available").await;
    };
    let Some(uid) = reference.uid.clone() else {
        return set_volume_phase(binder, volume, "Available").await;
    };
    let namespace = reference.namespace.clone().unwrap_or_default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(binder.client.clone(), &namespace);
    let claim = claims
        .get_opt(reference.name.as_deref().unwrap_or_default())
        .await?;
    if claim
        .as_ref()
        .is_some_and(|c| c.metadata.uid.as_deref() == Some(&uid))
    {
        return Ok(());
    }
    let released = set_volume_phase(binder, volume.clone(), "Released").await;
    released?;
    reclaim(binder, volume).await
}

async fn set_volume_phase(
    binder: &Binder,
    mut volume: PersistentVolume,
    phase: &str,
) -> Result<(), BinderError> {
    if volume_phase(&volume) == Some(phase) {
        return Ok(());
    }
    volume.status = Some(PersistentVolumeStatus {
        phase: Some(phase.to_owned()),
        last_phase_transition_time: Some(now()),
        ..PersistentVolumeStatus::default()
    });
    let volumes = Api::<PersistentVolume>::all(binder.client.clone());
    volumes
        .replace_status(&volume.name_any(), &PostParams::default(), &volume)
        .await?;
    Ok(())
}

/// The Delete policy of a volume this provisioner made: its directory, then the object.
/// Other volumes are kept Released, as kube keeps what no plugin can delete.
async fn reclaim(binder: &Binder, volume: PersistentVolume) -> Result<(), BinderError> {
    let spec = volume.spec.clone().unwrap_or_default();
    if spec.persistent_volume_reclaim_policy.as_deref() != Some("Delete") {
        return Ok(());
    }
    let ours = provisioned_here(&volume);
    let Some(path) = spec
        .host_path
        .map(|h| PathBuf::from(h.path))
        .filter(|_| ours)
    else {
        let message =
            "error getting deleter volume plugin for volume: no deletable volume plugin matched"
                .to_owned();
        binder
            .events
            .record(&volume, Event::warning("VolumeFailedDelete", message))
            .await;
        return Ok(());
    };
    provisioner::remove_dir(&binder.storage_root, &path)?;
    let volumes = Api::<PersistentVolume>::all(binder.client.clone());
    match volumes
        .delete(&volume.name_any(), &Default::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Whether a pod that is not terminal mounts the claim; the protection controller asks.
pub fn in_use(claim: &str, pods: &[Pod]) -> bool {
    pods.iter().any(|pod| {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        !matches!(phase, Some("Succeeded" | "Failed")) && mounts(pod, claim)
    })
}
