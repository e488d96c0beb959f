//! A DaemonSet's history in ControllerRevisions, as kube's DaemonSet controller keeps it
//! (pkg/controller/daemon/update.go): each revision holds the patch that restores its pod
//! template (`getPatch`, the same kubectl's `rollout undo` applies), is named
//! `<ds>-<hash>` after the template and collision count, and carries the hash as its
//! `controller-revision-hash` label; the current one has the highest revision number,
//! duplicates of it are folded into the newest, and old ones beyond revisionHistoryLimit
//! go, oldest first, unless a pod still runs them.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{json, Value};

use crate::controllers::deployment::hash::compute_hash;
use crate::controllers::ownership;

/// `apps.DefaultDaemonSetUniqueLabelKey` (`ControllerRevisionHashLabelKey`).
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// `getPatch`: `{"spec":{"template":{..., "$patch":"replace"}}}`, the template as Go's
/// encoder writes it (a null creationTimestamp, empty container resources), keys sorted.
pub fn revision_data(ds: &DaemonSet) -> Value {
    template_revision_data(ds.spec.as_ref().map(|s| &s.template))
}

/// `getPatch` of any workload whose revisions restore `spec.template` (DaemonSet and
/// StatefulSet alike).
pub fn template_revision_data(template: Option<&PodTemplateSpec>) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or(Value::Null);
    if !template.is_object() {
        template = json!({});
    }
    let metadata = template
        .as_object_mut()
        .map(|t| t.entry("metadata").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut);
    if let Some(metadata) = metadata {
        metadata.entry("creationTimestamp").or_insert(Value::Null);
    }
    for list in ["containers", "initContainers"] {
        let containers = template.pointer_mut(&format!("/spec/{list}"));
        for container in containers
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(container) = container.as_object_mut() {
                container.entry("resources").or_insert_with(|| json!({}));
            }
        }
    }
    template["$patch"] = json!("replace");
    json!({"spec": {"template": template}})
}

/// `Match`: whether `revision` records the DaemonSet's current template.
pub fn matches(ds: &DaemonSet, revision: &ControllerRevision) -> bool {
    revision.data.as_ref().map(|d| &d.0) == Some(&revision_data(ds))
}

/// The hash naming the template's revision (`controller.ComputeHash`).
pub fn template_hash(ds: &DaemonSet) -> String {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
    compute_hash(&template, collisions)
}

/// `snapshot`'s new revision: `<ds>-<hash>`, the template's labels plus the hash, the
/// DaemonSet's annotations (kubectl reads the change cause there), owned by the DaemonSet.
pub fn snapshot(ds: &DaemonSet, revision: i64) -> ControllerRevision {
    let hash = template_hash(ds);
    let template = ds.spec.as_ref().map(|s| &s.template);
    let mut labels = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_owned(), hash.clone());
    let name = ds.metadata.name.as_deref().unwrap_or_default();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![ownership::controller_ref(ds)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(revision_data(ds))),
        revision,
    }
}

/// A revision's `controller-revision-hash`, "" without one.
pub fn hash_of(revision: &ControllerRevision) -> &str {
    let labels = revision.metadata.labels.as_ref();
    labels
        .and_then(|l| l.get(REVISION_HASH_LABEL))
        .map_or("", String::as_str)
}

/// `maxRevision`: 0 for none.
pub fn max_revision(revisions: &[ControllerRevision]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0)
}

/// `dedupCurHistories`' keeper: the highest revision, the later one on a tie.
pub fn newest(current: &[ControllerRevision]) -> Option<&ControllerRevision> {
    current
        .iter()
        .fold(None, |kept: Option<&ControllerRevision>, r| match kept {
            Some(kept) if r.revision < kept.revision => Some(kept),
            _ => Some(r),
        })
}

/// `cleanupHistory`: the names of old revisions to delete, oldest first, to keep `limit`;
/// a revision some pod still runs (`live_hashes`) is kept.
pub fn history_to_delete(
    old: &[ControllerRevision],
    limit: i32,
    live_hashes: &BTreeSet<String>,
) -> Vec<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut to_kill = old.len().saturating_sub(limit);
    let mut by_revision: Vec<&ControllerRevision> = old.iter().collect();
    by_revision.sort_by_key(|r| r.revision);
    let mut doomed = Vec::new();
    for revision in by_revision {
        if to_kill == 0 {
            break;
        }
        if live_hashes.contains(hash_of(revision)) {
            continue;
        }
        doomed.push(revision.metadata.name.clone().unwrap_or_default());
        to_kill -= 1;
    }
    doomed
}

#[cfg(test)]
mod tests;
