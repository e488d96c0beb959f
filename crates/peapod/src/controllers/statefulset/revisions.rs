//! A StatefulSet's history in ControllerRevisions (kube's `getStatefulSetRevisions`,
//! `newRevision`, `truncateHistory`): each revision holds the patch that restores its
//! template (the DaemonSet's [`template_revision_data`], which kubectl's `rollout undo`
//! applies), is named `<set>-<hash>`, and that name is what the pods' `controller-revision-hash`
//! label and the status hold. An equal revision that is not the newest is renumbered; old
//! ones beyond revisionHistoryLimit go, oldest first, unless a pod or the status names them.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use peapod_api::selector::LabelSelector as Selector;

use super::controller::ReconcileError;
use super::plan::revision_of;
use crate::controllers::daemonset::history::{
    history_to_delete, max_revision, template_revision_data, REVISION_HASH_LABEL,
};
use crate::controllers::deployment::hash::compute_hash;
use crate::controllers::ownership;

/// The set's current and update revisions, and the others it owns.
pub struct History {
    pub current: ControllerRevision,
    pub update: ControllerRevision,
    pub others: Vec<ControllerRevision>,
}

fn template_of(set: &StatefulSet) -> PodTemplateSpec {
    set.spec.clone().unwrap_or_default().template
}

/// `newRevision`: the set's template at `revision`, labelled with its template's labels and
/// the hash, owned by the set.
pub fn new_revision(set: &StatefulSet, revision: i64) -> ControllerRevision {
    let template = template_of(set);
    let collisions = set.status.as_ref().and_then(|s| s.collision_count);
    let hash = compute_hash(&template, collisions);
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_owned(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", set.name_any())),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: set.metadata.annotations.clone(),
            owner_references: Some(vec![ownership::controller_ref(set)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(template_revision_data(Some(&template)))),
        revision,
    }
}

/// The template a revision restores (`ApplyRevision`).
pub fn template_at(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.pointer("/spec/template")?.clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

fn equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    a.data == b.data
}

/// `getStatefulSetRevisions`: the update revision found (renumbered to the newest when it
/// is not) or created; the current one from the status, the update one when none.
pub async fn history(
    set: &StatefulSet,
    selector: &Selector,
    client: &Client,
) -> Result<History, ReconcileError> {
    let api =
        Api::<ControllerRevision>::namespaced(client.clone(), &set.namespace().unwrap_or_default());
    let all = api.list(&ListParams::default()).await?.items;
    let all: Vec<&ControllerRevision> = all.iter().collect();
    let mut owned = ownership::claim_all(set, selector, &all, &api).await?;
    let next = max_revision(&owned) + 1;
    let wanted = new_revision(set, next);
    let update = match owned.iter().position(|r| equal(r, &wanted)) {
        Some(at) => {
            let mut found = owned.remove(at);
            if found.revision != next - 1 {
                found.revision = next;
                found = api
                    .replace(&found.name_any(), &PostParams::default(), &found)
                    .await?;
            }
            found
        }
        None => create(&api, set, &wanted, client).await?,
    };
    let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone());
    let current = match owned
        .iter()
        .position(|r| Some(r.name_any()) == current_name)
    {
        Some(at) => owned.remove(at),
        None => update.clone(),
    };
    Ok(History {
        current,
        update,
        others: owned,
    })
}

/// Creates the update revision; a name taken by another template bumps the collision count
/// and fails the sync, which comes back with a new name.
async fn create(
    api: &Api<ControllerRevision>,
    set: &StatefulSet,
    wanted: &ControllerRevision,
    client: &Client,
) -> Result<ControllerRevision, ReconcileError> {
    let conflict = match api.create(&PostParams::default(), wanted).await {
        Ok(created) => return Ok(created),
        Err(kube::Error::Api(status)) if status.is_already_exists() => status,
        Err(err) => return Err(err.into()),
    };
    let existing = api.get(&wanted.name_any()).await?;
    if equal(&existing, wanted) {
        return Ok(existing);
    }
    let sets = Api::<StatefulSet>::namespaced(client.clone(), &set.namespace().unwrap_or_default());
    let mut fresh = sets.get(&set.name_any()).await?;
    let status = fresh.status.get_or_insert_with(Default::default);
    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
    sets.replace_status(&set.name_any(), &PostParams::default(), &fresh)
        .await?;
    Err(kube::Error::Api(conflict).into())
}

/// `truncateHistory`: the oldest of the other revisions beyond the limit, unless a pod runs
/// them.
pub async fn truncate(
    set: &StatefulSet,
    history: &History,
    pods: &[&Pod],
    client: &Client,
) -> Result<(), ReconcileError> {
    let live: BTreeSet<String> = pods.iter().map(|pod| revision_of(pod).to_owned()).collect();
    let removable: Vec<ControllerRevision> = history
        .others
        .iter()
        .filter(|r| !live.contains(&r.name_any()))
        .cloned()
        .collect();
    let limit = set
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    let api =
        Api::<ControllerRevision>::namespaced(client.clone(), &set.namespace().unwrap_or_default());
    for name in history_to_delete(&removable, limit, &BTreeSet::new()) {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}
