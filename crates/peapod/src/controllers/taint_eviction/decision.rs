//! What kube's `processPodOnNode` decides for one pod on a node with NoExecute taints: evict
//! now, at a time, or never.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Taint, Toleration};
use tokio::time::Instant;

use crate::controllers::daemonset::placement::tolerates;

const NO_EXECUTE: &str = "NoExecute";

/// An eviction waiting for its time: when the pod was first found tolerating the taints, and
/// when it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub created: Instant,
    pub fire_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Drop any scheduled eviction: no NoExecute taint, or tolerated forever.
    Cancel,
    /// Not every taint is tolerated: delete the pod now.
    EvictNow,
    /// Delete the pod at this time (replacing any scheduled eviction).
    Schedule(Scheduled),
    /// The scheduled eviction stays: a re-evaluation never postpones it.
    Keep,
}

/// `getNoExecuteTaints`.
pub fn no_execute_taints(taints: &[Taint]) -> Vec<Taint> {
    taints
        .iter()
        .filter(|taint| taint.effect == NO_EXECUTE)
        .cloned()
        .collect()
}

/// `GetMatchingTolerations`: the first toleration of each taint, or `None` if one is untolerated.
pub fn matching_tolerations<'a>(
    taints: &[Taint],
    tolerations: &'a [Toleration],
) -> Option<Vec<&'a Toleration>> {
    taints
        .iter()
        .map(|taint| tolerations.iter().find(|t| tolerates(t, taint)))
        .collect()
}

/// `getMinTolerationTime`: the shortest `tolerationSeconds` of the used tolerations, zero for
/// none used or a non-positive one, `None` (forever) when none has seconds.
pub fn min_toleration_time(used: &[&Toleration]) -> Option<Duration> {
    if used.is_empty() {
        return Some(Duration::ZERO);
    }
    let seconds = used.iter().filter_map(|t| t.toleration_seconds);
    match seconds.min()? {
        s if s <= 0 => Some(Duration::ZERO),
        s => Some(Duration::from_secs(s.unsigned_abs())),
    }
}

/// `processPodOnNode` for a pod with `tolerations` on a node with NoExecute `taints`.
pub fn decide(
    taints: &[Taint],
    tolerations: &[Toleration],
    scheduled: Option<&Scheduled>,
    now: Instant,
) -> Decision {
    if taints.is_empty() {
        return Decision::Cancel;
    }
    let Some(used) = matching_tolerations(taints, tolerations) else {
        return Decision::EvictNow;
    };
    let Some(min) = min_toleration_time(&used) else {
        return Decision::Cancel;
    };
    let fire_at = now + min;
    let created = match scheduled {
        Some(existing) if existing.created + min < fire_at => return Decision::Keep,
        Some(existing) => existing.created,
        None => now,
    };
    Decision::Schedule(Scheduled { created, fire_at })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.to_owned(),
            value: Some("value".to_owned()),
            effect: effect.to_owned(),
            time_added: None,
        }
    }

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        serde_json::from_value(json!({
            "key": key, "operator": "Equal", "value": "value", "effect": "NoExecute",
            "tolerationSeconds": seconds,
        }))
        .unwrap()
    }

    fn at(now: Instant, seconds: u64) -> Instant {
        now + Duration::from_secs(seconds)
    }

    #[test]
    fn only_no_execute_taints_count() {
        let taints = [taint("a", "NoSchedule"), taint("b", "NoExecute")];
        assert_eq!(no_execute_taints(&taints), vec![taint("b", "NoExecute")]);
    }

    /// kube's TestCreatePod "not scheduled on tainted Node" / "with no tolerations".
    #[test]
    fn a_pod_not_tolerating_every_taint_goes_now() {
        let now = Instant::now();
        let taints = [
            taint("testTaint1", NO_EXECUTE),
            taint("testTaint2", NO_EXECUTE),
        ];
        assert_eq!(decide(&taints, &[], None, now), Decision::EvictNow);
        let one = [toleration("testTaint1", None)];
        assert_eq!(decide(&taints, &one, None, now), Decision::EvictNow);
        let existing = Scheduled {
            created: now,
            fire_at: at(now, 100),
        };
        assert_eq!(
            decide(&taints, &one, Some(&existing), now),
            Decision::EvictNow
        );
    }

    /// kube's TestMinTolerationTime and "scheduled on tainted Node with finite toleration".
    #[test]
    fn tolerated_with_seconds_goes_at_the_shortest() {
        let now = Instant::now();
        let taints = [
            taint("testTaint1", NO_EXECUTE),
            taint("testTaint2", NO_EXECUTE),
        ];
        let tolerations = [
            toleration("testTaint1", Some(20)),
            toleration("testTaint2", Some(5)),
        ];
        assert_eq!(
            decide(&taints, &tolerations, None, now),
            Decision::Schedule(Scheduled {
                created: now,
                fire_at: at(now, 5),
            })
        );
        let mixed = [
            toleration("testTaint1", None),
            toleration("testTaint2", Some(7)),
        ];
        assert_eq!(
            decide(&taints, &mixed, None, now),
            Decision::Schedule(Scheduled {
                created: now,
                fire_at: at(now, 7),
            })
        );
        let negative = [
            toleration("testTaint1", Some(-3)),
            toleration("testTaint2", None),
        ];
        assert_eq!(
            decide(&taints, &negative, None, now),
            Decision::Schedule(Scheduled {
                created: now,
                fire_at: now,
            })
        );
    }

    /// kube's "scheduled on tainted Node with infinite toleration".
    #[test]
    fn tolerations_without_seconds_tolerate_forever() {
        let now = Instant::now();
        let taints = [taint("testTaint1", NO_EXECUTE)];
        let forever = [toleration("testTaint1", None)];
        assert_eq!(decide(&taints, &forever, None, now), Decision::Cancel);
        assert_eq!(min_toleration_time(&[]), Some(Duration::ZERO));
        assert_eq!(min_toleration_time(&[&forever[0]]), None);
    }

    /// kube's TestUpdateNode "Removed taint" / "Added toleration": nothing left to evict for.
    #[test]
    fn a_removed_taint_cancels_the_eviction() {
        let now = Instant::now();
        let existing = Scheduled {
            created: now,
            fire_at: at(now, 5),
        };
        let tolerations = [toleration("testTaint1", Some(5))];
        assert_eq!(
            decide(&[], &tolerations, Some(&existing), now),
            Decision::Cancel
        );
    }

    /// kube's "Pod with toleration seconds ... not postponed" (processPodOnNode's
    /// scheduledEviction check): a later re-evaluation keeps the earlier time.
    #[test]
    fn a_re_evaluation_never_postpones_a_scheduled_eviction() {
        let first = Instant::now();
        let taints = [taint("testTaint1", NO_EXECUTE)];
        let tolerations = [toleration("testTaint1", Some(10))];
        let Decision::Schedule(scheduled) = decide(&taints, &tolerations, None, first) else {
            panic!("expected a scheduled eviction");
        };
        let later = at(first, 3);
        assert_eq!(
            decide(&taints, &tolerations, Some(&scheduled), later),
            Decision::Keep
        );
        assert_eq!(
            decide(&taints, &tolerations, Some(&scheduled), first),
            Decision::Schedule(scheduled)
        );
    }
}
