//! RollingUpdate, as kube's `rollingUpdate` (pkg/controller/daemon/update.go) plans it:
//! without surge, old pods are deleted while the unavailable ones stay within
//! maxUnavailable, and `manage` creates their replacements; with surge, new pods are created
//! beside old ones within maxSurge, and an old pod goes once its replacement is available.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_apis::apps::v1::daemonset::{template_generation, ROLLING_UPDATE};

use super::history::REVISION_HASH_LABEL;
use super::pods::TEMPLATE_GENERATION_LABEL;
use crate::controllers::deployment::replicas::scaled_value;
use crate::controllers::replicaset::pods::{self, is_available};

/// The DaemonSet's minReadySeconds, 0 when unset.
pub fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn rolling_bound(
    ds: &DaemonSet,
    bound: fn(&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet) -> Option<&IntOrString>,
) -> Option<Option<&IntOrString>> {
    let strategy = ds.spec.as_ref()?.update_strategy.as_ref()?;
    if strategy.type_.as_deref() != Some(ROLLING_UPDATE) {
        return None;
    }
    Some(bound(strategy.rolling_update.as_ref()?))
}

/// Why the rolling bounds cannot be worked out (the API server's defaults and validation
/// make this rare: a percentage that does not parse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    #[error("couldn't get unavailable numbers: invalid value for MaxUnavailable: {0}")]
    Unavailable(String),
    #[error("couldn't get unavailable numbers: invalid value for MaxSurge: {0}")]
    Surge(String),
}

/// `SurgeCount`: 0 unless a RollingUpdate with maxSurge, else maxSurge of `number` rounded up.
pub fn surge_count(ds: &DaemonSet, number: i32) -> Result<i32, BoundsError> {
    match rolling_bound(ds, |r| r.max_surge.as_ref()) {
        Some(Some(surge)) => {
            scaled_value(surge, number, true).map_err(|e| BoundsError::Surge(e.to_string()))
        }
        _ => Ok(0),
    }
}

/// `UnavailableCount`: 0 unless a RollingUpdate, else maxUnavailable of `number` rounded up.
pub fn unavailable_count(ds: &DaemonSet, number: i32) -> Result<i32, BoundsError> {
    let error = |e: String| BoundsError::Unavailable(e);
    match rolling_bound(ds, |r| r.max_unavailable.as_ref()) {
        Some(Some(unavailable)) => {
            scaled_value(unavailable, number, true).map_err(|e| error(e.to_string()))
        }
        Some(None) => Err(error("nil value for IntOrString".to_owned())),
        None => Ok(0),
    }
}

/// `AllowsSurge`.
pub fn allows_surge(ds: &DaemonSet) -> bool {
    surge_count(ds, 1).is_ok_and(|surge| surge != 0)
}

/// `IsPodUpdated`: the pod has the current hash, or the DaemonSet's template generation.
pub fn is_pod_updated(pod: &Pod, hash: &str, ds: &DaemonSet) -> bool {
    let labels = pods::labels(pod);
    let generation = template_generation(ds).map(|g| g.to_string());
    let generation_matches =
        generation.is_some() && labels.get(TEMPLATE_GENERATION_LABEL) == generation.as_ref();
    let hash_matches =
        !hash.is_empty() && labels.get(REVISION_HASH_LABEL).map(String::as_str) == Some(hash);
    hash_matches || generation_matches
}

/// `findUpdatedPodsOnNode`: the node's one new and one old live pod; `None` when it has more
/// of either (the manage loop prunes them first).
fn updated_pods_on_node<'a>(
    ds: &DaemonSet,
    pods: &[&'a Pod],
    hash: &str,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if is_pod_updated(pod, hash, ds) {
            &mut new
        } else {
            &mut old
        };
        if slot.replace(*pod).is_some() {
            return None;
        }
    }
    Some((new, old))
}

/// The bounds of one rolling step (`updatedDesiredNodeCounts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_surge: i32,
    pub max_unavailable: i32,
    pub desired: i32,
}

/// `updatedDesiredNodeCounts`: surge and unavailability of the desired count; both 0 (an
/// impossible configuration) allows one unavailable.
pub fn bounds(ds: &DaemonSet, desired: i32) -> Result<Bounds, BoundsError> {
    let max_unavailable = unavailable_count(ds, desired)?;
    let max_surge = surge_count(ds, desired)?;
    let max_unavailable = match desired > 0 && max_unavailable == 0 && max_surge == 0 {
        true => 1,
        false => max_unavailable,
    };
    Ok(Bounds {
        max_surge,
        max_unavailable,
        desired,
    })
}

/// What one rolling step does: pods to delete and nodes to create a pod on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub delete: Vec<String>,
    pub create_on: Vec<String>,
}

/// `rollingUpdate` over each node's daemon pods (every node that should run one is in
/// `by_node`, maybe with none); `should_run` answers for a node by name.
pub fn rolling_update(
    ds: &DaemonSet,
    by_node: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    bounds: Bounds,
    should_run: &dyn Fn(&str) -> bool,
    now: Timestamp,
) -> Step {
    match bounds.max_surge {
        0 => without_surge(ds, by_node, hash, bounds.max_unavailable, now),
        _ => with_surge(ds, by_node, hash, bounds, should_run, now),
    }
}

fn without_surge(
    ds: &DaemonSet,
    by_node: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    max_unavailable: i32,
    now: Timestamp,
) -> Step {
    let available = |pod: &Pod| is_available(pod, min_ready_seconds(ds), now);
    let mut unavailable = 0;
    let (mut replacements, mut candidates) = (Vec::new(), Vec::new());
    for pods in by_node.values() {
        match updated_pods_on_node(ds, pods, hash) {
            None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
            Some((Some(new), None)) => unavailable += i32::from(!available(new)),
            Some((None, Some(old))) if !available(old) => {
                replacements.push(name(old));
                unavailable += 1;
            }
            Some((None, Some(_))) if unavailable >= max_unavailable => {}
            Some((None, Some(old))) => candidates.push(name(old)),
        }
    }
    let remaining = usize::try_from(max_unavailable - unavailable).unwrap_or(0);
    replacements.extend(candidates.into_iter().take(remaining));
    Step {
        delete: replacements,
        create_on: Vec::new(),
    }
}

fn with_surge(
    ds: &DaemonSet,
    by_node: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    bounds: Bounds,
    should_run: &dyn Fn(&str) -> bool,
    now: Timestamp,
) -> Step {
    let available = |pod: &Pod| is_available(pod, min_ready_seconds(ds), now);
    let mut step = Step::default();
    let (mut surging, mut available_count) = (0, 0);
    let (mut candidates, mut sunset) = (Vec::new(), Vec::new());
    for (node, pods) in by_node {
        let Some((new, old)) = updated_pods_on_node(ds, pods, hash) else {
            surging += 1;
            continue;
        };
        available_count += i32::from(old.or(new).is_some_and(available));
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !available(old) => match should_run(node) {
                false => step.delete.push(name(old)),
                true => step.create_on.push(node.clone()),
            },
            (None, Some(old)) if !should_run(node) => sunset.push(name(old)),
            (None, Some(_)) if surging >= bounds.max_surge => {}
            (None, Some(_)) => candidates.push(node.clone()),
            (Some(new), Some(_)) if !available(new) => surging += 1,
            (Some(_), Some(old)) => step.delete.push(name(old)),
        }
    }
    let deletable = usize::try_from(available_count - bounds.desired).unwrap_or(0);
    step.delete.extend(sunset.into_iter().take(deletable));
    let remaining = usize::try_from(bounds.max_surge - surging).unwrap_or(0);
    step.create_on
        .extend(candidates.into_iter().take(remaining));
    step
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests;
