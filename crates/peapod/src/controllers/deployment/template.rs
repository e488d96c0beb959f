//! Which of a Deployment's ReplicaSets runs its current pod template (the new one) and which
//! are old, and the ReplicaSet created for a template none runs yet (deployment_util.go
//! `FindNewReplicaSet`/`FindOldReplicaSets`, sync.go `getNewReplicaSet`).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use super::hash::DEFAULT_LABEL_KEY;
use super::order::{by_creation, sorted};
use super::revision::{set_new_replica_set_annotations, MAX_REV_HISTORY_LENGTH_IN_CHARS};
use super::spec::{min_ready_seconds, name, rs_replicas, template as template_of};

/// The template with the hash label removed and unset parts read as empty, as kube's
/// semantic equality sees it (no difference between a nil and an empty map).
fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut copy = template.clone();
    let metadata = copy.metadata.get_or_insert_default();
    if let Some(labels) = metadata.labels.as_mut() {
        labels.remove(DEFAULT_LABEL_KEY);
    }
    metadata.labels = metadata.labels.take().filter(|l| !l.is_empty());
    metadata.annotations = metadata.annotations.take().filter(|a| !a.is_empty());
    copy.spec.get_or_insert_default();
    copy
}

/// `EqualIgnoreHash`: the templates are equal but for their pod-template-hash labels.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

fn template(rs: &ReplicaSet) -> PodTemplateSpec {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default()
}

/// `FindNewReplicaSet`: the oldest set (by creation, then name) running the Deployment's
/// template; there can be several after a hash change, and kube deterministically picks it.
pub fn find_new_replica_set<'a>(d: &Deployment, sets: &[&'a ReplicaSet]) -> Option<&'a ReplicaSet> {
    let wanted = template_of(d);
    sorted(sets, by_creation)
        .into_iter()
        .find(|rs| equal_ignore_hash(&template(rs), &wanted))
}

fn same(a: &ReplicaSet, b: &ReplicaSet) -> bool {
    a.metadata.uid == b.metadata.uid && a.metadata.name == b.metadata.name
}

/// `FindOldReplicaSets` (with `new` the [`find_new_replica_set`]): the old sets with
/// spec.replicas ≠ 0, and all old sets, oldest first.
pub fn find_old_replica_sets<'a>(
    _d: &Deployment,
    sets: &[&'a ReplicaSet],
    new: Option<&ReplicaSet>,
) -> (Vec<&'a ReplicaSet>, Vec<&'a ReplicaSet>) {
    let all: Vec<&ReplicaSet> = sorted(sets, by_creation)
        .into_iter()
        .filter(|rs| !new.is_some_and(|n| same(rs, n)))
        .collect();
    let with_pods = all
        .iter()
        .copied()
        .filter(|rs| rs_replicas(rs) != 0)
        .collect();
    (with_pods, all)
}

/// `metav1.NewControllerRef` for a Deployment.
pub fn controller_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: name(&d.metadata).to_owned(),
        uid: d.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `labelsutil.CloneSelectorAndAddLabel`.
pub fn clone_selector_and_add_label(
    selector: &LabelSelector,
    key: &str,
    value: &str,
) -> LabelSelector {
    let mut labels = selector.match_labels.clone().unwrap_or_default();
    labels.insert(key.to_owned(), value.to_owned());
    LabelSelector {
        match_labels: Some(labels),
        match_expressions: selector.match_expressions.clone(),
    }
}

/// The ReplicaSet getNewReplicaSet creates: `<deployment>-<hash>`, controlled by the
/// Deployment, its template and selector carrying the hash label, the Deployment's
/// minReadySeconds and `replicas` (see [`super::replicas::initial_replicas`]). kube then
/// gives it [`set_new_replica_set_annotations`] with `exists: false`
/// ([`new_replica_set_with_annotations`] does both).
pub fn new_replica_set(d: &Deployment, hash: &str, replicas: i32) -> ReplicaSet {
    let mut template = template_of(d);
    let template_meta = template.metadata.get_or_insert_default();
    template_meta
        .labels
        .get_or_insert_default()
        .insert(DEFAULT_LABEL_KEY.into(), hash.into());
    let labels = template_meta.labels.clone();
    let selector = d
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let min_ready = min_ready_seconds(d);
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", name(&d.metadata))),
            namespace: d.metadata.namespace.clone(),
            owner_references: Some(vec![controller_ref(d)]),
            labels,
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: (min_ready != 0).then_some(min_ready),
            selector: clone_selector_and_add_label(&selector, DEFAULT_LABEL_KEY, hash),
            template: Some(template),
        }),
        status: None,
    }
}

/// [`new_replica_set`] with the annotations of a set about to be created at `revision`.
pub fn new_replica_set_with_annotations(
    d: &Deployment,
    hash: &str,
    revision: &str,
    replicas: i32,
) -> ReplicaSet {
    let mut rs = new_replica_set(d, hash, replicas);
    set_new_replica_set_annotations(d, &mut rs, revision, false, MAX_REV_HISTORY_LENGTH_IN_CHARS);
    rs
}

#[cfg(test)]
mod tests;
