//! The annotations a Deployment keeps on its ReplicaSets (deployment_util.go): the revision
//! and its history, the replicas the Deployment wanted when it last scaled the set, and the
//! Deployment's own annotations copied across.

use std::collections::BTreeMap;
use std::num::ParseIntError;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use thiserror::Error;

use super::replicas::max_surge;
use super::spec::deployment_replicas;

/// The rollout sequence number of a ReplicaSet (and of its Deployment).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The revisions a ReplicaSet served before, oldest first, comma-separated.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's spec.replicas when it last scaled the ReplicaSet.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's spec.replicas + maxSurge then, for proportional scaling.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// `v1.LastAppliedConfigAnnotation`.
pub const LAST_APPLIED_CONFIG_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// `apps.DeprecatedRollbackTo`.
pub const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// kube's `maxRevHistoryLengthInChars`: the longest revision history kept.
pub const MAX_REV_HISTORY_LENGTH_IN_CHARS: usize = 2000;

/// The annotations never copied from a Deployment to its ReplicaSets (`annotationsToSkip`).
const SKIPPED_ANNOTATIONS: [&str; 6] = [
    LAST_APPLIED_CONFIG_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    DEPRECATED_ROLLBACK_TO,
];

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid revision {value:?}: {source}")]
pub struct RevisionError {
    value: String,
    source: ParseIntError,
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// `Revision`: the revision annotation, 0 when there is none.
pub fn revision(meta: &ObjectMeta) -> Result<i64, RevisionError> {
    match annotation(meta, REVISION_ANNOTATION) {
        None => Ok(0),
        Some(value) => value.parse().map_err(|source| RevisionError {
            value: value.to_owned(),
            source,
        }),
    }
}

/// `MaxRevision`: the highest revision, skipping sets whose revision does not parse.
pub fn max_revision(sets: &[&ReplicaSet]) -> i64 {
    sets.iter()
        .filter_map(|rs| revision(&rs.metadata).ok())
        .fold(0, i64::max)
}

/// `LastRevision`: the second highest revision (the one a rollback goes to).
pub fn last_revision(sets: &[&ReplicaSet]) -> i64 {
    let (mut max, mut second) = (0, 0);
    for value in sets.iter().filter_map(|rs| revision(&rs.metadata).ok()) {
        if value >= max {
            second = max;
            max = value;
        } else if value > second {
            second = value;
        }
    }
    second
}

/// `getNonNegativeInt32FromAnnotation`: decimal digits only, at most `i32::MAX`.
fn non_negative_i32(value: &str) -> Option<i32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `GetDesiredReplicasAnnotation`.
pub fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(&rs.metadata, DESIRED_REPLICAS_ANNOTATION).and_then(non_negative_i32)
}

/// `getMaxReplicasAnnotation`.
pub fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(&rs.metadata, MAX_REPLICAS_ANNOTATION).and_then(non_negative_i32)
}

/// Sets `key` to `value`, saying whether that changed anything.
fn set_annotation(meta: &mut ObjectMeta, key: &str, value: &str) -> bool {
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    if annotations.get(key).map(String::as_str) == Some(value) {
        return false;
    }
    annotations.insert(key.to_owned(), value.to_owned());
    true
}

/// `SetReplicasAnnotations`: desired and max replicas; true when either changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let desired_changed = set_annotation(
        &mut rs.metadata,
        DESIRED_REPLICAS_ANNOTATION,
        &desired.to_string(),
    );
    let max_changed = set_annotation(&mut rs.metadata, MAX_REPLICAS_ANNOTATION, &max.to_string());
    desired_changed || max_changed
}

/// `ReplicasAnnotationsNeedUpdate`.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata, DESIRED_REPLICAS_ANNOTATION) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata, MAX_REPLICAS_ANNOTATION) != Some(max.to_string().as_str())
}

/// `skipCopyAnnotation`: an annotation of the Deployment's own, never copied to or from its
/// ReplicaSets.
pub fn skips_copy(key: &str) -> bool {
    SKIPPED_ANNOTATIONS.contains(&key)
}

/// `copyDeploymentAnnotationsToReplicaSet`: the Deployment's annotations but the skipped ones;
/// true when the ReplicaSet's changed.
pub fn copy_deployment_annotations_to_replica_set(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    for (key, value) in d.metadata.annotations.iter().flatten() {
        if !skips_copy(key) {
            changed |= set_annotation(&mut rs.metadata, key, value);
        }
    }
    changed
}

/// `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the revision to
/// `new_revision` (recording the one replaced in the history, bounded by
/// `rev_history_limit_in_chars`), and for a set about to be created (`!exists`) the replicas
/// annotations. True when the annotations changed; false, as kube, when a revision does not parse.
pub fn set_new_replica_set_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: &str,
    exists: bool,
    rev_history_limit_in_chars: usize,
) -> bool {
    let mut changed = copy_deployment_annotations_to_replica_set(d, rs);
    let old_revision = annotation(&rs.metadata, REVISION_ANNOTATION).map(str::to_owned);
    let old = match old_revision.as_deref().unwrap_or_default() {
        "" => 0,
        text => match text.parse::<i64>() {
            Ok(old) => old,
            Err(_) => return false,
        },
    };
    let Ok(new) = new_revision.parse::<i64>() else {
        return false;
    };
    if old < new {
        changed |= set_annotation(&mut rs.metadata, REVISION_ANNOTATION, new_revision);
        if let Some(old_revision) = &old_revision {
            record_revision_history(rs, old_revision, rev_history_limit_in_chars);
        }
    }
    if !exists {
        let replicas = deployment_replicas(d);
        changed |= set_replicas_annotations(rs, replicas, replicas + max_surge(d));
    }
    changed
}

/// Appends `old_revision` to the history, dropping the oldest entries to stay within `limit`
/// characters, and leaving the history as it was when even that cannot make it fit.
fn record_revision_history(rs: &mut ReplicaSet, old_revision: &str, limit: usize) {
    let history = annotation(&rs.metadata, REVISION_HISTORY_ANNOTATION)
        .unwrap_or_default()
        .to_owned();
    let entries: Vec<&str> = history.split(',').collect();
    if entries[0].is_empty() {
        set_annotation(&mut rs.metadata, REVISION_HISTORY_ANNOTATION, old_revision);
        return;
    }
    let mut total = history.len() + old_revision.len() + 1;
    let mut start = 0;
    while total > limit && start < entries.len() {
        total = total.saturating_sub(entries[start].len() + 1);
        start += 1;
    }
    if total <= limit {
        let mut kept = entries[start..].to_vec();
        kept.push(old_revision);
        set_annotation(
            &mut rs.metadata,
            REVISION_HISTORY_ANNOTATION,
            &kept.join(","),
        );
    }
}

#[cfg(test)]
mod tests;
