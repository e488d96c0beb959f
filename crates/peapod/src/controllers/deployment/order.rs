//! The orders kube sorts a Deployment's ReplicaSets in (controller_utils.go and
//! deployment_util.go); each is total, so the result is deterministic.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::revision::revision;
use super::spec::{name, rs_replicas};

/// `ReplicaSetsByCreationTimestamp`: oldest first, then by name (unset is the oldest).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created(a)
        .cmp(&created(b))
        .then_with(|| name(&a.metadata).cmp(name(&b.metadata)))
}

/// `ReplicaSetsBySizeOlder`: largest first, the older of equal sizes first.
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// `ReplicaSetsBySizeNewer`: largest first, the newer of equal sizes first.
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// `ReplicaSetsByRevision`: lowest revision first; unparsable or equal revisions by creation.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    match (revision(&a.metadata), revision(&b.metadata)) {
        (Ok(ra), Ok(rb)) if ra != rb => ra.cmp(&rb),
        _ => by_creation(a, b),
    }
}

/// The sets sorted by `order`, as new references.
pub fn sorted<'a>(
    sets: &[&'a ReplicaSet],
    order: fn(&ReplicaSet, &ReplicaSet) -> Ordering,
) -> Vec<&'a ReplicaSet> {
    let mut sorted = sets.to_vec();
    sorted.sort_by(|a, b| order(a, b));
    sorted
}

/// Sorts owned sets by [`by_creation`].
pub fn sort_by_creation(sets: &mut [ReplicaSet]) {
    sets.sort_by(by_creation);
}
