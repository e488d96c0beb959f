//! kube-scheduler's priority queue and DefaultPreemption on one node. Pods waiting to be
//! scheduled are tried in the queue's order (priority, then age): those ahead of a pod that fit
//! take their room first. A pod that fails only filters preemption may resolve is nominated to
//! the node when removing pods of lower priority makes room: all of them are removed, then
//! reprieved from the most important down while the pod still fits (those whose eviction would
//! violate a disruption budget first); the rest are its victims.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::Pod;

use super::filters::{Code, Refusal};
use super::{uid, unavailable};

/// `v1.DisruptionTarget`, the condition a victim gets.
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";
/// `v1.PodReasonPreemptionByScheduler`.
pub const PREEMPTION_BY_SCHEDULER: &str = "PreemptionByScheduler";

/// The filters of one scheduling cycle: whether `pod` fits beside `on_node`.
pub type Filter<'a> = dyn Fn(&Pod, &[&Pod]) -> Result<(), Refusal> + 'a;

/// `corev1helpers.PodPriority`: the priority admission gave the pod, else 0.
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// The queue's PrioritySort: higher priority first, then the pod waiting longest.
pub fn queue_order(a: &Pod, b: &Pod) -> Ordering {
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    priority(b)
        .cmp(&priority(a))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// `util.MoreImportantPod`: higher priority first, then the one started earlier. The copies
/// the scheduler holds may predate a pod's start: those count from their creation.
pub fn more_important(a: &Pod, b: &Pod) -> Ordering {
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let started = |p: &Pod| {
        let start = p.status.as_ref().and_then(|s| s.start_time.as_ref());
        start.map(|t| t.0).or_else(|| created(p))
    };
    priority(b)
        .cmp(&priority(a))
        .then_with(|| started(a).cmp(&started(b)))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Whether the pod is going because the scheduler preempted it.
fn terminating_by_preemption(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    pod.metadata.deletion_timestamp.is_some()
        && conditions.into_iter().flatten().any(|c| {
            c.type_ == DISRUPTION_TARGET && c.reason.as_deref() == Some(PREEMPTION_BY_SCHEDULER)
        })
}

/// What `SelectVictimsOnNode` found.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// No pod of lower priority is on the node.
    NoneLower,
    /// The pod does not fit even without them: the filters' refusal.
    Unfit(Refusal),
    /// The fewest pods to remove, most important first.
    Victims(Vec<Pod>),
}

/// kube's `SelectVictimsOnNode` over the pods bound to the node; `ahead` (the pods waiting
/// before this one that fit) stay. `violates_budget` is asked of the potential victims in
/// order, as `filterPodsWithPDBViolation` takes one disruption from each budget per pod.
pub fn select_victims(
    pod: &Pod,
    bound: &[&Pod],
    ahead: &[&Pod],
    filter: &Filter<'_>,
    violates_budget: &mut dyn FnMut(&Pod) -> bool,
) -> Selection {
    let preemptor = priority(pod);
    let (mut potential, mut on_node): (Vec<&Pod>, Vec<&Pod>) =
        bound.iter().partition(|p| priority(p) < preemptor);
    if potential.is_empty() {
        return Selection::NoneLower;
    }
    on_node.extend_from_slice(ahead);
    if let Err(refusal) = filter(pod, &on_node) {
        return Selection::Unfit(refusal);
    }
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, non_violating): (Vec<&Pod>, Vec<&Pod>) =
        potential.into_iter().partition(|p| violates_budget(p));
    let mut victims = Vec::new();
    for candidate in violating.into_iter().chain(non_violating) {
        on_node.push(candidate);
        if filter(pod, &on_node).is_err() {
            on_node.pop();
            victims.push(candidate.clone());
        }
    }
    Selection::Victims(victims)
}

/// What DefaultPreemption's PostFilter decided for a pod the filters refused.
#[derive(Debug, Clone, PartialEq)]
pub enum PostFilter {
    /// No preemption: the message after "preemption: ".
    NotHelpful(String),
    /// The pod is nominated to the node; these go first.
    Victims(Vec<Pod>),
}

/// The pods waiting to be scheduled, and the preemptions under way.
#[derive(Debug, Default)]
pub struct Queue {
    waiting: HashMap<String, Pod>,
    /// Preemptors waiting for their victims to go.
    nominated: HashSet<String>,
    /// Victims still on the node.
    preempted: HashSet<String>,
}

impl Queue {
    /// Puts the pod (its latest copy) in the queue.
    pub fn wait(&mut self, pod: &Pod) {
        self.waiting.insert(uid(pod), pod.clone());
    }

    /// Takes a pod bound to the node out of the queue.
    pub fn placed(&mut self, uid: &str) {
        self.waiting.remove(uid);
        self.nominated.remove(uid);
    }

    /// Takes a pod gone out, as preemptor or victim; whether it was waiting.
    pub fn forget(&mut self, uid: &str) -> bool {
        self.nominated.remove(uid);
        self.preempted.remove(uid);
        self.waiting.remove(uid).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The pods waiting before `pod` that fit, each taking its room before the next is tried.
    pub fn ahead_of(&self, pod: &Pod, bound: &[&Pod], filter: &Filter<'_>) -> Vec<Pod> {
        let mut before: Vec<&Pod> = self
            .waiting
            .values()
            .filter(|other| uid(other) != uid(pod) && queue_order(other, pod).is_lt())
            .collect();
        before.sort_by(|a, b| queue_order(a, b));
        let mut on_node = bound.to_vec();
        let mut placed = Vec::new();
        for other in before {
            if filter(other, &on_node).is_ok() {
                on_node.push(other);
                placed.push(other.clone());
            }
        }
        placed
    }

    /// DefaultPreemption's PostFilter for a refused pod: whether it may preempt, and whom.
    /// Victims chosen are remembered, and the pod as nominated.
    pub fn post_filter(
        &mut self,
        pod: &Pod,
        refusal: &Refusal,
        (bound, ahead): (&[&Pod], &[&Pod]),
        filter: &Filter<'_>,
        violates_budget: &mut dyn FnMut(&Pod) -> bool,
    ) -> PostFilter {
        let policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref());
        if policy == Some("Never") {
            return PostFilter::NotHelpful("not eligible due to preemptionPolicy=Never.".into());
        }
        if self.is_nominated(pod) && self.victim_terminating(pod, bound) {
            let why = "not eligible due to a terminating pod on the nominated node.";
            return PostFilter::NotHelpful(why.into());
        }
        if refusal.code == Code::UnschedulableAndUnresolvable {
            return no_candidate("Preemption is not helpful for scheduling");
        }
        match select_victims(pod, bound, ahead, filter, violates_budget) {
            Selection::NoneLower => no_candidate("No preemption victims found for incoming pod"),
            Selection::Unfit(refusal) => {
                PostFilter::NotHelpful(format!("{}.", unavailable(&refusal)))
            }
            Selection::Victims(victims) => {
                self.nominated.insert(uid(pod));
                self.preempted.extend(victims.iter().map(uid));
                PostFilter::Victims(victims)
            }
        }
    }

    fn is_nominated(&self, pod: &Pod) -> bool {
        let nominated = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref());
        self.nominated.contains(&uid(pod)) || nominated.is_some_and(|n| !n.is_empty())
    }

    /// `podTerminatingByPreemption` of a pod of lower priority on the node.
    fn victim_terminating(&self, pod: &Pod, bound: &[&Pod]) -> bool {
        bound.iter().any(|p| {
            priority(p) < priority(pod)
                && (self.preempted.contains(&uid(p)) || terminating_by_preemption(p))
        })
    }
}

/// The FitError of a preemption that found no candidate on the one node.
fn no_candidate(why: &str) -> PostFilter {
    PostFilter::NotHelpful(format!("0/1 nodes are available: 1 {why}."))
}

#[cfg(test)]
mod tests;
