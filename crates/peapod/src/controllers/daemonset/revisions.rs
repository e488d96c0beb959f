//! The history's I/O (kube's `constructHistory`, `snapshot`, `dedupCurHistories` and
//! `cleanupHistory`): the namespace's ControllerRevisions claimed, the current one found or
//! created (a name taken by another template bumps the collision count), duplicates folded,
//! old ones beyond the limit deleted. The decisions are [`super::history`]'s.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use peapod_api::selector::LabelSelector as Selector;
use serde_json::json;

use super::controller::{Context, ReconcileError};
use super::history::{self, REVISION_HASH_LABEL};
use crate::controllers::ownership;

fn revisions_api(ds: &DaemonSet, ctx: &Context) -> Api<ControllerRevision> {
    Api::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default())
}

/// `constructHistory`: the current revision (created or renumbered as needed) and the old.
pub async fn construct_history(
    ds: &DaemonSet,
    selector: &Selector,
    ctx: &Context,
) -> Result<(ControllerRevision, Vec<ControllerRevision>), ReconcileError> {
    let api = revisions_api(ds, ctx);
    let all = api.list(&ListParams::default()).await?.items;
    let all: Vec<&ControllerRevision> = all.iter().collect();
    let claimed = ownership::claim_all(ds, selector, &all, &api).await?;
    let (mut current, mut old) = (Vec::new(), Vec::new());
    for mut revision in claimed {
        if !revision.labels().contains_key(REVISION_HASH_LABEL) {
            let name = revision.name_any();
            revision
                .labels_mut()
                .insert(REVISION_HASH_LABEL.to_owned(), name.clone());
            revision = api
                .replace(&name, &PostParams::default(), &revision)
                .await?;
        }
        match history::matches(ds, &revision) {
            true => current.push(revision),
            false => old.push(revision),
        }
    }
    let next = history::max_revision(&old) + 1;
    let current = match current.is_empty() {
        true => snapshot(ds, next, &api, ctx).await?,
        false => {
            let mut kept = dedup(ds, &current, &api, ctx).await?;
            if kept.revision < next {
                kept.revision = next;
                kept = api
                    .replace(&kept.name_any(), &PostParams::default(), &kept)
                    .await?;
            }
            kept
        }
    };
    Ok((current, old))
}

/// `snapshot`: creates the current revision; a revision of that name with another template
/// bumps the collision count and fails the sync, which comes back with a new name.
async fn snapshot(
    ds: &DaemonSet,
    revision: i64,
    api: &Api<ControllerRevision>,
    ctx: &Context,
) -> Result<ControllerRevision, ReconcileError> {
    let new = history::snapshot(ds, revision);
    let name = new.name_any();
    let conflict = match api.create(&PostParams::default(), &new).await {
        Ok(created) => return Ok(created),
        Err(kube::Error::Api(status)) if status.is_already_exists() => status,
        Err(err) => return Err(err.into()),
    };
    let existing = api.get(&name).await?;
    if history::matches(ds, &existing) {
        return Ok(existing);
    }
    let sets =
        Api::<DaemonSet>::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    let mut fresh = sets.get(&ds.name_any()).await?;
    let collisions = |d: &DaemonSet| d.status.as_ref().and_then(|s| s.collision_count);
    if collisions(&fresh) != collisions(ds) {
        return Err(ReconcileError::History(format!(
            "found a stale collision count ({}, expected {}) of DaemonSet {:?} while processing; will retry until it is updated",
            collisions(ds).unwrap_or(0),
            collisions(&fresh).unwrap_or(0),
            ds.name_any()
        )));
    }
    let status = fresh.status.get_or_insert_with(Default::default);
    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
    sets.replace_status(&ds.name_any(), &PostParams::default(), &fresh)
        .await?;
    Err(kube::Error::Api(conflict).into())
}

/// `dedupCurHistories`: the newest current revision stays; the pods of the others are
/// relabelled to its hash, and the others deleted.
async fn dedup(
    ds: &DaemonSet,
    current: &[ControllerRevision],
    api: &Api<ControllerRevision>,
    ctx: &Context,
) -> Result<ControllerRevision, ReconcileError> {
    let Some(kept) = history::newest(current).cloned() else {
        return Err(ReconcileError::History("no current revision".to_owned()));
    };
    let hash = history::hash_of(&kept).to_owned();
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ds.namespace().unwrap_or_default());
    for duplicate in current.iter().filter(|r| r.name_any() != kept.name_any()) {
        let selector =
            peapod_api::label_selector::as_selector(&ds.spec.clone().unwrap_or_default().selector)
                .map_err(|err| ReconcileError::History(err.to_string()))?;
        let all = pods.list(&ListParams::default()).await?.items;
        let all: Vec<&Pod> = all.iter().collect();
        for pod in ownership::claim_all(ds, &selector, &all, &pods).await? {
            if pod.labels().get(REVISION_HASH_LABEL) != Some(&hash) {
                let patch = json!({"metadata": {"labels": {REVISION_HASH_LABEL: hash}}});
                pods.patch(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await?;
            }
        }
        api.delete(&duplicate.name_any(), &DeleteParams::default())
            .await?;
    }
    Ok(kept)
}

/// `cleanupHistory`, with the pods terminal or not.
pub async fn cleanup_history(
    ds: &DaemonSet,
    old: &[ControllerRevision],
    by_node: &BTreeMap<String, Vec<&Pod>>,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let live: BTreeSet<String> = by_node
        .values()
        .flatten()
        .filter_map(|pod| pod.labels().get(REVISION_HASH_LABEL).cloned())
        .filter(|hash| !hash.is_empty())
        .collect();
    let limit = ds
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    let api = revisions_api(ds, ctx);
    for name in history::history_to_delete(old, limit, &live) {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => {
                let message = format!("failed to clean up revisions of DaemonSet: {err}");
                return Err(ReconcileError::History(message));
            }
        }
    }
    Ok(())
}
