//! From the replicas the metrics ask for to the replicas to set, as horizontal.go's
//! `normalizeDesiredReplicas` (no behavior: the highest recommendation of the downscale
//! stabilization window, at most twice the replicas or 4, within min and max) and
//! `normalizeDesiredReplicasWithBehaviors` (each direction's stabilization window over the
//! recommendations kept, then its policies' rate over the scale events kept, selectPolicy
//! picking among them), with the AbleToScale and ScalingLimited verdicts kube records.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscalerBehavior,
};

/// `--horizontal-pod-autoscaler-downscale-stabilization`.
pub const DOWNSCALE_STABILIZATION_WINDOW_SECONDS: i32 = 300;
const SCALE_UP_LIMIT_FACTOR: f64 = 2.0;
const SCALE_UP_LIMIT_MINIMUM: f64 = 4.0;

#[derive(Debug, Clone, Copy)]
struct Recommendation {
    replicas: i32,
    at: Timestamp,
}

#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    /// Replicas added or removed, never negative.
    change: i32,
    at: Timestamp,
    outdated: bool,
}

/// What the controller keeps of one HPA between its syncs: its unstabilized
/// recommendations and its recent scale events.
#[derive(Debug, Clone, Default)]
pub struct History {
    recommendations: Vec<Recommendation>,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

/// A condition normalization decides: its status, reason and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub status: &'static str,
    pub reason: &'static str,
    pub message: &'static str,
}

impl Verdict {
    const READY_FOR_NEW_SCALE: Verdict =
        Verdict::able("ReadyForNewScale", "recommended size matches current size");
    const SCALE_DOWN_STABILIZED: Verdict = Verdict::able(
        "ScaleDownStabilized",
        "recent recommendations were higher than current one, applying the highest recent recommendation",
    );
    const SCALE_UP_STABILIZED: Verdict = Verdict::able(
        "ScaleUpStabilized",
        "recent recommendations were lower than current one, applying the lowest recent recommendation",
    );

    const fn able(reason: &'static str, message: &'static str) -> Verdict {
        Verdict {
            status: "True",
            reason,
            message,
        }
    }
}

/// A limit on the replicas: its reason and message, kube's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limit(&'static str, &'static str);

const SCALE_UP_LIMIT: Limit = Limit(
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const SCALE_DOWN_LIMIT: Limit = Limit(
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);
const TOO_MANY_REPLICAS: Limit = Limit(
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW_REPLICAS: Limit = Limit(
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);
const DESIRED_WITHIN_RANGE: Limit = Limit(
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);

/// The replicas to set, with the AbleToScale and ScalingLimited conditions to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalized {
    pub replicas: i32,
    pub able_to_scale: Verdict,
    pub scaling_limited: Verdict,
}

/// The bounds and counts one normalization works on.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub current_replicas: i32,
    pub desired_replicas: i32,
}

/// A behavior with every gap filled as kube's API defaults it
/// (`SetDefaults_HorizontalPodAutoscalerBehavior`) and the controller's downscale window.
pub fn with_defaults(
    behavior: &HorizontalPodAutoscalerBehavior,
) -> (HPAScalingRules, HPAScalingRules) {
    let policy = |type_: &str, value, period_seconds| HPAScalingPolicy {
        type_: type_.to_owned(),
        value,
        period_seconds,
    };
    let up_default = [policy("Pods", 4, 15), policy("Percent", 100, 15)];
    let down_default = [policy("Percent", 100, 15)];
    let fill = |rules: &Option<HPAScalingRules>, window: i32, policies: &[HPAScalingPolicy]| {
        let mut rules = rules.clone().unwrap_or_default();
        rules.stabilization_window_seconds.get_or_insert(window);
        rules.select_policy.get_or_insert_with(|| "Max".to_owned());
        rules.policies.get_or_insert_with(|| policies.to_vec());
        rules
    };
    (
        fill(&behavior.scale_up, 0, &up_default),
        fill(
            &behavior.scale_down,
            DOWNSCALE_STABILIZATION_WINDOW_SECONDS,
            &down_default,
        ),
    )
}

fn seconds_before(now: Timestamp, seconds: i32) -> Timestamp {
    now - SignedDuration::from_secs(i64::from(seconds))
}

impl History {
    /// `recordInitialRecommendation`: the first sync starts from the current replicas.
    pub fn record_initial_recommendation(&mut self, current_replicas: i32, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommendation {
                replicas: current_replicas,
                at: now,
            });
        }
    }

    /// `normalizeDesiredReplicas` or, with a behavior, `...WithBehaviors`.
    pub fn normalize(
        &mut self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
        bounds: Bounds,
        now: Timestamp,
    ) -> Normalized {
        match behavior {
            None => self.normalize_without_behavior(bounds, now),
            Some(behavior) => {
                let (up, down) = with_defaults(behavior);
                self.normalize_with_behaviors(&up, &down, bounds, now)
            }
        }
    }

    fn normalize_without_behavior(&mut self, bounds: Bounds, now: Timestamp) -> Normalized {
        let window = DOWNSCALE_STABILIZATION_WINDOW_SECONDS;
        let stabilized = self.stabilize(bounds.desired_replicas, window, now);
        let able_to_scale = if stabilized != bounds.desired_replicas {
            Verdict::SCALE_DOWN_STABILIZED
        } else {
            Verdict::READY_FOR_NEW_SCALE
        };
        let (replicas, limit) = limit_with_rules(bounds, stabilized);
        Normalized {
            replicas,
            able_to_scale,
            scaling_limited: limited(replicas != stabilized, limit),
        }
    }

    fn normalize_with_behaviors(
        &mut self,
        up: &HPAScalingRules,
        down: &HPAScalingRules,
        bounds: Bounds,
        now: Timestamp,
    ) -> Normalized {
        let (stabilized, stabilized_verdict) = self.stabilize_with_behaviors(up, down, bounds, now);
        let able_to_scale = if stabilized != bounds.desired_replicas {
            stabilized_verdict
        } else {
            Verdict::READY_FOR_NEW_SCALE
        };
        let bounds = Bounds {
            desired_replicas: stabilized,
            ..bounds
        };
        let (replicas, limit) = self.limit_with_behavior_rate(up, down, bounds, now);
        Normalized {
            replicas,
            able_to_scale,
            scaling_limited: limited(replicas != stabilized, limit),
        }
    }

    /// `stabilizeRecommendation`: the highest recommendation of the window, this one
    /// recorded in place of one older than the window.
    fn stabilize(&mut self, desired: i32, window_seconds: i32, now: Timestamp) -> i32 {
        let cutoff = seconds_before(now, window_seconds);
        let mut highest = desired;
        let mut old = None;
        for (i, rec) in self.recommendations.iter().enumerate() {
            if rec.at < cutoff {
                old = Some(i);
            } else if rec.replicas > highest {
                highest = rec.replicas;
            }
        }
        self.record(old, desired, now);
        highest
    }

    fn record(&mut self, old: Option<usize>, replicas: i32, now: Timestamp) {
        let new = Recommendation { replicas, at: now };
        match old {
            Some(i) => self.recommendations[i] = new,
            None => self.recommendations.push(new),
        }
    }

    /// `stabilizeRecommendationWithBehaviors`: the current replicas brought within the lowest
    /// recommendation of the scale-up window and the highest of the scale-down one.
    fn stabilize_with_behaviors(
        &mut self,
        up: &HPAScalingRules,
        down: &HPAScalingRules,
        bounds: Bounds,
        now: Timestamp,
    ) -> (i32, Verdict) {
        let desired = bounds.desired_replicas;
        let up_cutoff = seconds_before(now, up.stabilization_window_seconds.unwrap_or(0));
        let down_cutoff = seconds_before(now, down.stabilization_window_seconds.unwrap_or(0));
        let (mut up_recommendation, mut down_recommendation) = (desired, desired);
        let mut old = None;
        for (i, rec) in self.recommendations.iter().enumerate() {
            if rec.at > up_cutoff {
                up_recommendation = up_recommendation.min(rec.replicas);
            }
            if rec.at > down_cutoff {
                down_recommendation = down_recommendation.max(rec.replicas);
            }
            if rec.at < up_cutoff && rec.at < down_cutoff {
                old = Some(i);
            }
        }
        let recommendation = bounds
            .current_replicas
            .max(up_recommendation)
            .min(down_recommendation);
        self.record(old, desired, now);
        let verdict = if desired >= bounds.current_replicas {
            Verdict::SCALE_UP_STABILIZED
        } else {
            Verdict::SCALE_DOWN_STABILIZED
        };
        (recommendation, verdict)
    }

    /// `convertDesiredReplicasWithBehaviorRate`.
    fn limit_with_behavior_rate(
        &self,
        up: &HPAScalingRules,
        down: &HPAScalingRules,
        bounds: Bounds,
        now: Timestamp,
    ) -> (i32, Limit) {
        let Bounds {
            current_replicas: current,
            desired_replicas: desired,
            ..
        } = bounds;
        let events = (&self.scale_up_events[..], &self.scale_down_events[..]);
        if desired > current {
            let rate = scale_up_limit(current, events, up, now).max(current);
            let (allowed, limit) = if bounds.max_replicas > rate {
                (rate, SCALE_UP_LIMIT)
            } else {
                (bounds.max_replicas, TOO_MANY_REPLICAS)
            };
            if desired > allowed {
                return (allowed, limit);
            }
        } else if desired < current {
            let rate = scale_down_limit(current, events, down, now).min(current);
            let (allowed, limit) = if bounds.min_replicas < rate {
                (rate, SCALE_DOWN_LIMIT)
            } else {
                (bounds.min_replicas, TOO_FEW_REPLICAS)
            };
            if desired < allowed {
                return (allowed, limit);
            }
        }
        (desired, DESIRED_WITHIN_RANGE)
    }

    /// `storeScaleEvent`: kept only with a behavior, in place of one older than the
    /// direction's longest policy period.
    pub fn store_scale_event(
        &mut self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
        previous: i32,
        new: i32,
        now: Timestamp,
    ) {
        let Some(behavior) = behavior else {
            return;
        };
        let (up, down) = with_defaults(behavior);
        let (rules, events, change) = if new > previous {
            (up, &mut self.scale_up_events, new - previous)
        } else {
            (down, &mut self.scale_down_events, previous - new)
        };
        let longest = rules
            .policies
            .iter()
            .flatten()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(0);
        let cutoff = seconds_before(now, longest);
        for event in events.iter_mut() {
            if event.at < cutoff {
                event.outdated = true;
            }
        }
        let event = ScaleEvent {
            change,
            at: now,
            outdated: false,
        };
        match events.iter().rposition(|e| e.outdated) {
            Some(i) => events[i] = event,
            None => events.push(event),
        }
    }
}

fn limited(is_limited: bool, Limit(reason, message): Limit) -> Verdict {
    Verdict {
        status: if is_limited { "True" } else { "False" },
        reason,
        message,
    }
}

/// `convertDesiredReplicasWithRules`.
fn limit_with_rules(bounds: Bounds, desired: i32) -> (i32, Limit) {
    let current = f64::from(bounds.current_replicas);
    let scale_up_limit = (SCALE_UP_LIMIT_FACTOR * current).max(SCALE_UP_LIMIT_MINIMUM) as i32;
    let (maximum, limit) = if bounds.max_replicas > scale_up_limit {
        (scale_up_limit, SCALE_UP_LIMIT)
    } else {
        (bounds.max_replicas, TOO_MANY_REPLICAS)
    };
    if desired < bounds.min_replicas {
        (bounds.min_replicas, TOO_FEW_REPLICAS)
    } else if desired > maximum {
        (maximum, limit)
    } else {
        (desired, DESIRED_WITHIN_RANGE)
    }
}

/// `getReplicasChangePerPeriod`.
fn change_in_period(period_seconds: i32, events: &[ScaleEvent], now: Timestamp) -> i32 {
    let cutoff = seconds_before(now, period_seconds);
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| e.change)
        .sum()
}

/// Each policy's proposal from the replicas at its period's start, picked by selectPolicy
/// (`None` when scaling this way is disabled).
fn select_proposal(
    current: i32,
    (up_events, down_events): (&[ScaleEvent], &[ScaleEvent]),
    rules: &HPAScalingRules,
    now: Timestamp,
    propose: impl Fn(&HPAScalingPolicy, i32) -> i32,
    prefer_larger: bool,
) -> Option<i32> {
    let larger = match rules.select_policy.as_deref() {
        Some("Disabled") => return None,
        Some("Min") => !prefer_larger,
        _ => prefer_larger,
    };
    let proposals = rules.policies.iter().flatten().map(|policy| {
        let added = change_in_period(policy.period_seconds, up_events, now);
        let deleted = change_in_period(policy.period_seconds, down_events, now);
        propose(policy, current - added + deleted)
    });
    let picked = if larger {
        proposals.max()
    } else {
        proposals.min()
    };
    Some(picked.unwrap_or(if larger { i32::MIN } else { i32::MAX }))
}

/// `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(
    current: i32,
    events: (&[ScaleEvent], &[ScaleEvent]),
    rules: &HPAScalingRules,
    now: Timestamp,
) -> i32 {
    let propose = |policy: &HPAScalingPolicy, start: i32| match policy.type_.as_str() {
        "Pods" => start + policy.value,
        _ => (f64::from(start) * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i32,
    };
    select_proposal(current, events, rules, now, propose, true).unwrap_or(current)
}

/// `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(
    current: i32,
    events: (&[ScaleEvent], &[ScaleEvent]),
    rules: &HPAScalingRules,
    now: Timestamp,
) -> i32 {
    let propose = |policy: &HPAScalingPolicy, start: i32| match policy.type_.as_str() {
        "Pods" => start - policy.value,
        _ => (f64::from(start) * (1.0 - f64::from(policy.value) / 100.0)) as i32,
    };
    select_proposal(current, events, rules, now, propose, false).unwrap_or(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T01:00:00Z".parse().unwrap()
    }

    fn ago(seconds: i32) -> Timestamp {
        seconds_before(now(), seconds)
    }

    fn history(recommendations: &[(i32, i32)]) -> History {
        History {
            recommendations: recommendations
                .iter()
                .map(|&(replicas, seconds)| Recommendation {
                    replicas,
                    at: ago(seconds),
                })
                .collect(),
            ..History::default()
        }
    }

    fn events(changes: &[(i32, i32)]) -> Vec<ScaleEvent> {
        changes
            .iter()
            .map(|&(change, seconds)| ScaleEvent {
                change,
                at: ago(seconds),
                outdated: false,
            })
            .collect()
    }

    fn bounds(min: i32, max: i32, current: i32, desired: i32) -> Bounds {
        Bounds {
            min_replicas: min,
            max_replicas: max,
            current_replicas: current,
            desired_replicas: desired,
        }
    }

    fn rules(
        window: Option<i32>,
        select: Option<&str>,
        policies: &[(&str, i32, i32)],
    ) -> HPAScalingRules {
        HPAScalingRules {
            stabilization_window_seconds: window,
            select_policy: select.map(str::to_owned),
            policies: Some(
                policies
                    .iter()
                    .map(|&(type_, value, period_seconds)| HPAScalingPolicy {
                        type_: type_.to_owned(),
                        value,
                        period_seconds,
                    })
                    .collect(),
            ),
            ..HPAScalingRules::default()
        }
    }

    /// kube's `TestNormalizeDesiredReplicas`: the highest recommendation of five minutes,
    /// this one recorded in place of an older one.
    #[test]
    fn without_behavior_the_highest_recent_recommendation_wins() {
        type Case<'a> = (&'a [(i32, i32)], i32, i32, usize);
        let cases: [Case; 5] = [
            (&[], 5, 5, 1),
            (&[(4, 120), (5, 60)], 3, 5, 3),
            (&[(1, 120), (2, 60)], 3, 3, 3),
            (&[(10, 600), (9, 540)], 3, 3, 2),
            (&[(10, 600), (4, 60), (5, 120), (9, 540)], 3, 5, 4),
        ];
        for (recommendations, desired, expected, kept) in cases {
            let mut history = history(recommendations);
            let stabilized =
                history.stabilize(desired, DOWNSCALE_STABILIZATION_WINDOW_SECONDS, now());
            assert_eq!(stabilized, expected, "{recommendations:?}");
            assert_eq!(history.recommendations.len(), kept, "{recommendations:?}");
        }
    }

    #[test]
    fn without_behavior_the_replicas_are_bounded() {
        let limit = |current, desired, min, max| {
            let found =
                History::default().normalize(None, bounds(min, max, current, desired), now());
            (
                found.replicas,
                found.scaling_limited.status,
                found.scaling_limited.reason,
            )
        };
        assert_eq!(limit(1, 10, 1, 10), (4, "True", "ScaleUpLimit"));
        assert_eq!(limit(3, 10, 1, 5), (5, "True", "TooManyReplicas"));
        assert_eq!(limit(3, 5, 1, 10), (5, "False", "DesiredWithinRange"));
        let mut stabilized = history(&[(3, 10)]);
        let found = stabilized.normalize(None, bounds(2, 10, 3, 1), now());
        assert_eq!(found.replicas, 3);
        assert_eq!(found.able_to_scale.reason, "ScaleDownStabilized");
        let found = History::default().normalize(None, bounds(2, 10, 3, 1), now());
        assert_eq!(found.replicas, 2);
        assert_eq!(found.scaling_limited.reason, "TooFewReplicas");
        assert_eq!(found.able_to_scale, Verdict::READY_FOR_NEW_SCALE);
    }

    /// kube's `TestNormalizeDesiredReplicasWithBehavior`.
    #[test]
    fn each_direction_has_its_stabilization_window() {
        let up = rules(Some(180), Some("Max"), &[("Percent", 1000, 15)]);
        let down = rules(Some(180), Some("Max"), &[("Percent", 100, 15)]);
        let mut fresh = History::default();
        let (replicas, _) =
            fresh.stabilize_with_behaviors(&up, &down, bounds(1, 200, 100, 5), now());
        assert_eq!(replicas, 5);
        let mut down_only = history(&[(4, 60), (5, 120)]);
        let (replicas, verdict) =
            down_only.stabilize_with_behaviors(&up, &down, bounds(1, 200, 100, 3), now());
        assert_eq!((replicas, verdict.reason), (5, "ScaleDownStabilized"));
        let mut up_only = history(&[(4, 60), (5, 120)]);
        let (replicas, verdict) =
            up_only.stabilize_with_behaviors(&up, &down, bounds(1, 200, 1, 7), now());
        assert_eq!((replicas, verdict.reason), (4, "ScaleUpStabilized"));
        let no_window = rules(Some(0), None, &[("Percent", 100, 15)]);
        let mut old = history(&[(4, 600)]);
        let (replicas, _) =
            old.stabilize_with_behaviors(&no_window, &no_window, bounds(1, 9, 3, 7), now());
        assert_eq!(replicas, 7);
        assert_eq!(old.recommendations.len(), 1);
    }

    /// kube's `TestCalculateScaleUpLimitWithScalingRules` and its scale-down twin.
    #[test]
    fn policies_limit_the_change_per_period() {
        let none: (&[ScaleEvent], &[ScaleEvent]) = (&[], &[]);
        let pods = rules(None, Some("Max"), &[("Pods", 4, 60)]);
        assert_eq!(scale_up_limit(5, none, &pods, now()), 9);
        let percent = rules(None, Some("Max"), &[("Percent", 100, 60)]);
        assert_eq!(scale_up_limit(5, none, &percent, now()), 10);
        let added = events(&[(2, 30), (5, 120)]);
        assert_eq!(scale_up_limit(5, (&added, &[]), &pods, now()), 7);
        let both = [("Pods", 4, 60), ("Percent", 100, 60)];
        assert_eq!(
            scale_up_limit(1, none, &rules(None, Some("Max"), &both), now()),
            5
        );
        assert_eq!(
            scale_up_limit(1, none, &rules(None, Some("Min"), &both), now()),
            2
        );
        let disabled = rules(None, Some("Disabled"), &both);
        assert_eq!(scale_up_limit(3, none, &disabled, now()), 3);
        let down = [("Percent", 50, 60), ("Pods", 2, 60)];
        assert_eq!(
            scale_down_limit(10, none, &rules(None, Some("Max"), &down), now()),
            5
        );
        assert_eq!(
            scale_down_limit(10, none, &rules(None, Some("Min"), &down), now()),
            8
        );
        let removed = events(&[(4, 10)]);
        let pods_down = rules(None, None, &[("Pods", 2, 60)]);
        assert_eq!(scale_down_limit(6, (&[], &removed), &pods_down, now()), 8);
    }

    #[test]
    fn behaviors_bound_the_stabilized_count() {
        let default = HorizontalPodAutoscalerBehavior::default();
        let found = History::default().normalize(Some(&default), bounds(1, 10, 1, 10), now());
        assert_eq!(found.replicas, 5);
        assert_eq!(found.scaling_limited.reason, "ScaleUpLimit");
        let found = History::default().normalize(Some(&default), bounds(1, 3, 1, 10), now());
        assert_eq!(
            (found.replicas, found.scaling_limited.reason),
            (3, "TooManyReplicas")
        );
        let quick_down = HorizontalPodAutoscalerBehavior {
            scale_down: Some(rules(Some(0), None, &[("Percent", 100, 15)])),
            ..HorizontalPodAutoscalerBehavior::default()
        };
        let mut kept = history(&[(3, 5)]);
        let found = kept.normalize(Some(&quick_down), bounds(1, 3, 3, 1), now());
        assert_eq!(found.replicas, 1);
        assert_eq!(found.scaling_limited.status, "False");
        let found = History::default().normalize(Some(&default), bounds(1, 3, 3, 1), now());
        assert_eq!(
            found.replicas, 1,
            "a first recommendation has nothing to stabilize"
        );
        let mut kept = history(&[(3, 5)]);
        let found = kept.normalize(Some(&default), bounds(1, 3, 3, 1), now());
        assert_eq!(
            (found.replicas, found.able_to_scale.reason),
            (3, "ScaleDownStabilized")
        );
    }

    #[test]
    fn scale_events_are_kept_with_a_behavior_and_reuse_outdated_slots() {
        let behavior = HorizontalPodAutoscalerBehavior::default();
        let mut history = History::default();
        history.store_scale_event(None, 1, 4, now());
        assert!(history.scale_up_events.is_empty());
        history.scale_up_events = events(&[(1, 100), (2, 5)]);
        history.store_scale_event(Some(&behavior), 1, 4, now());
        let changes: Vec<i32> = history.scale_up_events.iter().map(|e| e.change).collect();
        assert_eq!(changes, [3, 2]);
        history.store_scale_event(Some(&behavior), 4, 2, now());
        assert_eq!(history.scale_down_events.len(), 1);
        assert_eq!(history.scale_down_events[0].change, 2);
    }
}
