//! How many replicas each of a Deployment's ReplicaSets gets (deployment_util.go, sync.go
//! `scale` and rolling.go's scale-downs): maxSurge and maxUnavailable resolved against the
//! replicas, the counts over a set of ReplicaSets, and the scaling plans. A plan is a list of
//! `(ReplicaSet name, new spec.replicas)` in the order kube sends the updates; each update also
//! sets the replicas annotations ([`super::revision::set_replicas_annotations`] with the
//! Deployment's replicas and replicas + [`max_surge`]), as kube's `scaleReplicaSet` does.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use thiserror::Error;

use super::order::{by_creation, by_size_newer, by_size_older, sorted};
use super::revision::{
    desired_replicas_annotation, max_replicas_annotation, replicas_annotations_need_update,
};
pub use super::spec::deployment_replicas;
use super::spec::{
    is_rolling_update, name, rolling_parameters, rs_available_replicas, rs_ready_replicas,
    rs_replicas, rs_status_replicas, status, strategy_type, RECREATE, ROLLING_UPDATE,
};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FencepostError {
    #[error("invalid value for IntOrString: invalid type: string is not a percentage")]
    NotAPercentage,
    #[error("invalid value for IntOrString: invalid value {value:?}: strconv.Atoi: parsing {number:?}: invalid syntax")]
    InvalidPercentage { value: String, number: String },
    #[error("deployment type {0} isn't supported")]
    UnsupportedStrategy(String),
}

/// One `(ReplicaSet name, new spec.replicas)` step of a plan.
pub type Scale = (String, i32);

/// One step of [`scale_plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleStep {
    pub name: String,
    pub replicas: i32,
    /// Proportional scaling's "up", "down" or "" for kube's `scaleReplicaSet` (which also
    /// writes stale replicas annotations at the same size); `None` for
    /// `scaleReplicaSetAndRecordEvent` (size changes only, the event saying up or down).
    pub operation: Option<&'static str>,
}

impl ScaleStep {
    fn to(rs: &ReplicaSet, replicas: i32, operation: Option<&'static str>) -> Self {
        Self {
            name: name(&rs.metadata).to_owned(),
            replicas,
            operation,
        }
    }
}

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, a percentage of `total` rounded up
/// or down.
pub fn scaled_value(
    value: &IntOrString,
    total: i32,
    round_up: bool,
) -> Result<i32, FencepostError> {
    let text = match value {
        IntOrString::Int(n) => return Ok(*n),
        IntOrString::String(text) => text,
    };
    let number = text
        .strip_suffix('%')
        .ok_or(FencepostError::NotAPercentage)?;
    let percent: i64 = number
        .parse()
        .map_err(|_| FencepostError::InvalidPercentage {
            value: text.clone(),
            number: number.to_owned(),
        })?;
    let scaled = percent as f64 * f64::from(total) / 100.0;
    let rounded = if round_up {
        scaled.ceil()
    } else {
        scaled.floor()
    };
    Ok(rounded as i32)
}

/// `ResolveFenceposts`: (surge rounded up, unavailable rounded down), unset being 0; when both
/// come to 0, unavailable is 1 so a rollout can still move.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), FencepostError> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    Ok((
        surge,
        if surge == 0 && unavailable == 0 {
            1
        } else {
            unavailable
        },
    ))
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let (surge, unavailable) = rolling_parameters(d);
    // Validation rejects values that do not resolve; kube reads them as 0 here.
    resolve_fenceposts(Some(&surge), Some(&unavailable), deployment_replicas(d)).unwrap_or((0, 0))
}

/// `MaxUnavailable`: 0 unless rolling with replicas, and never above the replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = deployment_replicas(d);
    if !is_rolling_update(d) || replicas == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas)
}

/// `MinAvailable`: the replicas that must stay available during a rolling update.
pub fn min_available(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    deployment_replicas(d) - max_unavailable(d)
}

/// `MaxSurge`: 0 unless rolling.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).0
}

/// `NewRSNewReplicas`: the new ReplicaSet's size for this step of the rollout (`all`
/// includes it): rolling, up to the surge allowance and never past the replicas; recreate,
/// the replicas at once.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, FencepostError> {
    let replicas = deployment_replicas(d);
    match strategy_type(d) {
        ROLLING_UPDATE => {
            let surge = scaled_value(&rolling_parameters(d).0, replicas, true)?;
            let current = replica_count(all);
            let max_total = replicas + surge;
            if current >= max_total {
                return Ok(rs_replicas(new_rs));
            }
            let scale_up = (max_total - current).min(replicas - rs_replicas(new_rs));
            Ok(rs_replicas(new_rs) + scale_up)
        }
        RECREATE => Ok(replicas),
        other => Err(FencepostError::UnsupportedStrategy(other.to_owned())),
    }
}

/// The replicas a new ReplicaSet is created with next to `old` (getNewReplicaSet: the
/// [`new_rs_new_replicas`] of a set of 0).
pub fn initial_replicas(d: &Deployment, old: &[&ReplicaSet]) -> Result<i32, FencepostError> {
    let empty = ReplicaSet {
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            ..ReplicaSetSpec::default()
        }),
        ..ReplicaSet::default()
    };
    let mut all = old.to_vec();
    all.push(&empty);
    new_rs_new_replicas(d, &all, &empty)
}

/// `IsSaturated`: the set was sized by the Deployment for all its replicas and all are available.
pub fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let replicas = deployment_replicas(d);
    desired_replicas_annotation(rs) == Some(replicas)
        && rs_replicas(rs) == replicas
        && rs_available_replicas(rs) == replicas
}

/// `GetReplicaCountForReplicaSets`: the sum of spec.replicas.
pub fn replica_count(sets: &[&ReplicaSet]) -> i32 {
    sets.iter().map(|rs| rs_replicas(rs)).sum()
}

/// `GetActualReplicaCountForReplicaSets`: the sum of status.replicas.
pub fn actual_replica_count(sets: &[&ReplicaSet]) -> i32 {
    sets.iter().map(|rs| rs_status_replicas(rs)).sum()
}

/// `GetReadyReplicaCountForReplicaSets`.
pub fn ready_replica_count(sets: &[&ReplicaSet]) -> i32 {
    sets.iter().map(|rs| rs_ready_replicas(rs)).sum()
}

/// `GetAvailableReplicaCountForReplicaSets`.
pub fn available_replica_count(sets: &[&ReplicaSet]) -> i32 {
    sets.iter().map(|rs| rs_available_replicas(rs)).sum()
}

/// `FilterActiveReplicaSets`: the sets with spec.replicas > 0.
pub fn filter_active<'a>(sets: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    sets.iter()
        .copied()
        .filter(|rs| rs_replicas(rs) > 0)
        .collect()
}

/// `FindActiveOrLatest`: the only active set, or with none active the new one (else the
/// newest old one); `None` with several active, which scale proportionally.
pub fn find_active_or_latest<'a>(
    new_rs: Option<&'a ReplicaSet>,
    old: &[&'a ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let mut newest_first = sorted(old, by_creation);
    newest_first.reverse();
    let mut all = newest_first.clone();
    all.extend(new_rs);
    let active = filter_active(&all);
    match active.as_slice() {
        [] => new_rs.or(newest_first.first().copied()),
        [only] => Some(only),
        _ => None,
    }
}

/// sync.go `scale`: the plan for a scaling event (or a paused Deployment): the one active set
/// to the replicas; with a saturated new set, every active old one to 0; otherwise, rolling,
/// every active set proportionally to its size, leftovers to the first (largest) one. Only
/// the sets whose size changes are in it, and in the proportional case also those whose
/// replicas annotations are stale (kube updates them with their size unchanged).
pub fn scale_plan(
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    old: &[&ReplicaSet],
) -> Vec<ScaleStep> {
    let replicas = deployment_replicas(d);
    if let Some(rs) = find_active_or_latest(new_rs, old) {
        if rs_replicas(rs) == replicas {
            return Vec::new();
        }
        return vec![ScaleStep::to(rs, replicas, None)];
    }
    if new_rs.is_some_and(|rs| is_saturated(d, rs)) {
        let active = filter_active(old);
        return active.iter().map(|rs| ScaleStep::to(rs, 0, None)).collect();
    }
    if !is_rolling_update(d) {
        return Vec::new();
    }
    let mut all = old.to_vec();
    all.extend(new_rs);
    proportional_plan(d, &filter_active(&all))
}

fn proportional_plan(d: &Deployment, active: &[&ReplicaSet]) -> Vec<ScaleStep> {
    let replicas = deployment_replicas(d);
    let surge = max_surge(d);
    let allowed = if replicas > 0 { replicas + surge } else { 0 };
    let to_add = allowed - replica_count(active);
    let (ordered, operation) = match to_add {
        n if n > 0 => (sorted(active, by_size_newer), "up"),
        n if n < 0 => (sorted(active, by_size_older), "down"),
        _ => (active.to_vec(), ""),
    };
    let mut added = 0;
    let mut sizes: Vec<i32> = ordered
        .iter()
        .map(|rs| {
            let proportion = replica_set_proportion(rs, d, to_add, added);
            added += proportion;
            rs_replicas(rs) + proportion
        })
        .collect();
    if let Some(first) = sizes.first_mut().filter(|_| to_add != 0) {
        *first = (*first + to_add - added).max(0);
    }
    ordered
        .iter()
        .zip(sizes)
        .filter(|(rs, size)| {
            rs_replicas(rs) != *size
                || replicas_annotations_need_update(rs, replicas, replicas + surge)
        })
        .map(|(rs, size)| ScaleStep::to(rs, size, Some(operation)))
        .collect()
}

/// `GetReplicaSetProportion`: the set's share of `to_add` replicas when `added` are already
/// given out, never past what is left.
pub fn replica_set_proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// `getReplicaSetFraction`: the change that keeps the set's share of the Deployment's
/// replicas + surge, measured against the max-replicas annotation (or, without a usable one,
/// the Deployment's status.replicas; neither: no change).
pub fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let replicas = deployment_replicas(d);
    let current = rs_replicas(rs);
    if replicas == 0 {
        return -current;
    }
    let max_now = replicas + max_surge(d);
    let max_before = max_replicas_annotation(rs)
        .filter(|max| *max != 0)
        .unwrap_or_else(|| status(d).replicas.unwrap_or(0));
    if max_before == 0 {
        return 0;
    }
    let size = (i64::from(current) * i64::from(max_now)) as f64 / f64::from(max_before);
    size.round() as i32 - current
}

fn with_replicas(rs: &ReplicaSet, replicas: i32) -> ReplicaSet {
    let mut copy = rs.clone();
    copy.spec.get_or_insert_default().replicas = Some(replicas);
    copy
}

/// rolling.go `cleanupUnhealthyReplicas`: scales the old sets (oldest first) down by their
/// unavailable replicas, at most `max_cleanup` in all. A set reporting more available replicas
/// than its spec stops the plan there, as kube's error does.
pub fn cleanup_unhealthy(old: &[&ReplicaSet], max_cleanup: i32) -> Vec<Scale> {
    cleanup_steps(old, max_cleanup).0
}

/// The cleanup plan and whether kube would have stopped it with an error.
fn cleanup_steps(old: &[&ReplicaSet], max_cleanup: i32) -> (Vec<Scale>, bool) {
    let mut steps = Vec::new();
    let mut total = 0;
    for rs in sorted(old, by_creation) {
        if total >= max_cleanup {
            break;
        }
        let (replicas, available) = (rs_replicas(rs), rs_available_replicas(rs));
        if replicas == 0 || replicas == available {
            continue;
        }
        let count = (max_cleanup - total).min(replicas - available);
        if count < 0 {
            return (steps, true);
        }
        steps.push((name(&rs.metadata).to_owned(), replicas - count));
        total += count;
    }
    (steps, false)
}

/// rolling.go `scaleDownOldReplicaSetsForRollingUpdate`: the available replicas above
/// [`min_available`] taken off the old sets, oldest first.
pub fn scale_down_old_for_rolling_update(
    all: &[&ReplicaSet],
    old: &[&ReplicaSet],
    d: &Deployment,
) -> Vec<Scale> {
    let min_available = deployment_replicas(d) - max_unavailable(d);
    let available = available_replica_count(all);
    if available <= min_available {
        return Vec::new();
    }
    let to_scale_down = available - min_available;
    let mut steps = Vec::new();
    let mut total = 0;
    for rs in sorted(old, by_creation) {
        if total >= to_scale_down {
            break;
        }
        let replicas = rs_replicas(rs);
        if replicas == 0 {
            continue;
        }
        let count = replicas.min(to_scale_down - total);
        steps.push((name(&rs.metadata).to_owned(), replicas - count));
        total += count;
    }
    steps
}

/// rolling.go `reconcileOldReplicaSets`' bound: how many replicas the old sets may lose now
/// (all pods over [`min_available`], less the new set's unavailable ones); `None` when the
/// old sets are empty or nothing may go.
pub fn max_scaled_down(d: &Deployment, old: &[&ReplicaSet], new_rs: &ReplicaSet) -> Option<i32> {
    let old_pods = replica_count(old);
    if old_pods == 0 {
        return None;
    }
    let all_pods = old_pods + rs_replicas(new_rs);
    let min_available = deployment_replicas(d) - max_unavailable(d);
    let new_unavailable = rs_replicas(new_rs) - rs_available_replicas(new_rs);
    let max = all_pods - min_available - new_unavailable;
    (max > 0).then_some(max)
}

/// rolling.go `reconcileOldReplicaSets` for the old sets and the new one: up to
/// [`max_scaled_down`], [`cleanup_unhealthy`] followed by [`scale_down_old_for_rolling_update`] on the
/// cleaned-up sizes. The steps are in kube's order and may name a set twice (once per event
/// kube records); apply them in turn, ending at the first failure (kube then reports no scaling).
pub fn old_replicas_to_scale_down(
    d: &Deployment,
    old: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Vec<Scale> {
    let Some(max_scaled_down) = max_scaled_down(d, old, new_rs) else {
        return Vec::new();
    };
    let (mut steps, failed) = cleanup_steps(old, max_scaled_down);
    if failed {
        return steps;
    }
    let cleaned: Vec<ReplicaSet> = old
        .iter()
        .map(|rs| {
            let step = steps.iter().find(|(n, _)| n == name(&rs.metadata));
            step.map_or_else(|| (*rs).clone(), |(_, size)| with_replicas(rs, *size))
        })
        .collect();
    let cleaned_old: Vec<&ReplicaSet> = cleaned.iter().collect();
    let mut cleaned_all = cleaned_old.clone();
    cleaned_all.push(new_rs);
    steps.extend(scale_down_old_for_rolling_update(
        &cleaned_all,
        &cleaned_old,
        d,
    ));
    steps
}

#[cfg(test)]
mod tests;
