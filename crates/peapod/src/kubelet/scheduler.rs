//! Binding pods to this node, as kube-scheduler does for a one-node cluster: the [`filters`]
//! over the pod, the Node as the API shows it and the pods bound here; a pod that fails one
//! stays Pending, unbound, with PodScheduled=False and kube's FitError message, and is retried
//! when a bound pod goes or the Node changes. Pods meant for another scheduler are left to
//! it. A pod that names this node itself skips the scheduler, and kubelet's admission rejects
//! it on a port conflict, as a cluster's kubelet would.
//! Pending pods are tried in kube's queue order (priority, then age), and a pod refused for
//! room may preempt pods of lower priority ([`preemption`], [`victims`]).

pub mod admission_check;
pub mod budgets;
pub mod filters;
pub mod inter_pod_affinity;
pub mod preemption;
pub mod topology_spread;
pub mod victims;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Node, Pod};
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::status::ApiError;
use serde_json::json;
use tokio::sync::watch;

use filters::Refusal;
use inter_pod_affinity::NamespaceLabels;
use peapod_apis::policy::v1::poddisruptionbudget::budget::RemainingDisruptions;
use preemption::{PostFilter, Queue};

/// The scheduler a pod with no `schedulerName` gets, and the one this is.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// One host port a pod asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortClaim {
    pub protocol: String,
    /// "0.0.0.0" means every address of the node.
    pub host_ip: String,
    pub host_port: i32,
    /// Where the port leads inside the pod (not part of the claim's identity).
    pub container_port: i32,
}

impl PortClaim {
    /// kube-scheduler's HostPortInfo rule: the same protocol and port, and the same address
    /// or either one is the wildcard.
    fn conflicts_with(&self, other: &PortClaim) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip == other.host_ip
                || self.host_ip == "0.0.0.0"
                || other.host_ip == "0.0.0.0")
    }
}

impl fmt::Display for PortClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.protocol, self.host_ip, self.host_port)
    }
}

/// A port that is taken, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub claim: PortClaim,
    /// namespace/name of the pod holding it.
    pub holder: String,
}

impl Conflict {
    /// NodePorts' reason, kube-scheduler's wording with the port named.
    pub fn reason(&self) -> String {
        format!(
            "node(s) didn't have free ports for the requested pod ports ({} is used by pod {})",
            self.claim, self.holder
        )
    }

    /// kubelet's rejection of a pod bound to this node whose port is taken.
    pub fn admission_message(&self) -> String {
        format!(
            "Predicate NodePorts failed: node(s) didn't have free ports for \
             the requested pod ports ({} is used by pod {})",
            self.claim, self.holder
        )
    }
}

/// Why a pod was not bound.
#[derive(Debug, Clone, PartialEq)]
pub enum NotScheduled {
    /// The Node is not known yet (or is gone): nothing to filter against.
    NoNode,
    /// A filter refused the pod; the FailedScheduling message.
    Unfit(String),
    /// The pod preempts: nominated to this node, it waits for its victims to go.
    Preempting { message: String, victims: Vec<Pod> },
}

/// The pods bound to this node (reserved before their binding shows), the Node, and the
/// namespaces' labels.
pub struct Scheduler {
    bound: Mutex<HashMap<String, Pod>>,
    node: Mutex<Option<Node>>,
    namespaces: Mutex<NamespaceLabels>,
    queue: Mutex<Queue>,
    budgets: budgets::Budgets,
    changed: watch::Sender<u64>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler {
            bound: Mutex::new(HashMap::new()),
            node: Mutex::new(None),
            namespaces: Mutex::new(NamespaceLabels::new()),
            queue: Mutex::new(Queue::default()),
            budgets: budgets::Budgets::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl Scheduler {
    /// Records the pods already bound and not finished (after an agent restart), before any
    /// new pod is scheduled.
    pub fn restore(&self, pods: &[Pod]) {
        let mut bound = self.bound.lock().expect("scheduler lock");
        for pod in pods.iter().filter(|p| is_bound(p) && !is_terminal(p)) {
            bound.insert(uid(pod), pod.clone());
        }
    }

    /// Counts a pod bound here (by anyone), unless kubelet's admission refuses it beside the
    /// pods counted already ([`admission_check`]). Idempotent; a pod counted already is
    /// refreshed (its labels matter to pod affinity), and a change the filters read wakes the
    /// pods waiting.
    pub fn reserve(&self, pod: &Pod) -> Result<(), admission_check::Rejection> {
        let mut bound = self.bound.lock().expect("scheduler lock");
        self.queue.lock().expect("scheduler lock").placed(&uid(pod));
        if let Some(held) = bound.get_mut(&uid(pod)) {
            let relabelled = held.metadata.labels != pod.metadata.labels
                || held.metadata.deletion_timestamp != pod.metadata.deletion_timestamp;
            *held = pod.clone();
            drop(bound);
            if relabelled {
                self.changed.send_modify(|n| *n += 1);
            }
            return Ok(());
        }
        let others: Vec<&Pod> = bound.values().collect();
        let node = self.node.lock().expect("scheduler lock").clone();
        admission_check::check(pod, node.as_ref(), &others)?;
        bound.insert(uid(pod), pod.clone());
        drop(bound);
        // A pod waiting for pod affinity may fit now.
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// kube-scheduler's cycle for an unbound pod on this node: the filters, with the pods
    /// queued ahead of it that fit counted as placed, then preemption when they refuse it;
    /// the pod assumed bound when it fits, so that the next pod sees it. Idempotent.
    pub fn schedule(&self, pod: &Pod) -> Result<(), NotScheduled> {
        let node = self.node.lock().expect("scheduler lock").clone();
        let node = node.ok_or(NotScheduled::NoNode)?;
        let budgets = self.budgets.all();
        let mut bound = self.bound.lock().expect("scheduler lock");
        if bound.contains_key(&uid(pod)) {
            return Ok(());
        }
        let others: Vec<&Pod> = bound.values().collect();
        let namespaces = self.namespaces.lock().expect("scheduler lock");
        let filter = |pod: &Pod, on_node: &[&Pod]| filters::run(pod, &node, on_node, &namespaces);
        let mut queue = self.queue.lock().expect("scheduler lock");
        queue.wait(pod);
        let placed_ahead = queue.ahead_of(pod, &others, &filter);
        let ahead: Vec<&Pod> = placed_ahead.iter().collect();
        let on_node = [others.as_slice(), ahead.as_slice()].concat();
        if let Err(refusal) = filter(pod, &on_node) {
            let mut disruptions = RemainingDisruptions::new(&budgets);
            let violates = &mut |victim: &Pod| disruptions.take(victim);
            let outcome = queue.post_filter(pod, &refusal, (&others, &ahead), &filter, violates);
            let message = fit_error(&refusal, &outcome);
            return Err(match outcome {
                PostFilter::NotHelpful(_) => NotScheduled::Unfit(message),
                PostFilter::Victims(victims) => NotScheduled::Preempting { message, victims },
            });
        }
        queue.placed(&uid(pod));
        drop((queue, namespaces));
        bound.insert(uid(pod), pod.clone());
        drop(bound);
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Forgets a pod gone or finished, and wakes the pods waiting for room (or queued
    /// behind it).
    pub fn release(&self, uid: &str) {
        let removed = self.bound.lock().expect("scheduler lock").remove(uid);
        let queued = self.queue.lock().expect("scheduler lock").forget(uid);
        if removed.is_some() || queued {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Takes the Node as the API shows it now; a change to what the filters read (labels,
    /// taints, cordon, allocatable) wakes the pods waiting.
    pub fn set_node(&self, node: Option<Node>) {
        let mut held = self.node.lock().expect("scheduler lock");
        let changed = held.as_ref().map(scheduling_view) != node.as_ref().map(scheduling_view);
        *held = node;
        drop(held);
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Takes a namespace's labels (None: the namespace is gone); a change wakes the pods
    /// waiting, whose affinity terms may select namespaces by label.
    pub fn set_namespace(&self, name: &str, labels: Option<BTreeMap<String, String>>) {
        let mut namespaces = self.namespaces.lock().expect("scheduler lock");
        let changed = match labels {
            Some(labels) => namespaces.insert(name.to_owned(), labels.clone()) != Some(labels),
            None => namespaces.remove(name).is_some(),
        };
        drop(namespaces);
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// The disruption budgets preemption respects.
    pub fn budgets(&self) -> &budgets::Budgets {
        &self.budgets
    }

    /// Changes whenever a pod is bound, relabelled or released, or the Node or a
    /// namespace's labels change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// What of a Node the filters read.
fn scheduling_view(node: &Node) -> serde_json::Value {
    let spec = node.spec.as_ref();
    json!({
        "name": node.metadata.name,
        "labels": node.metadata.labels,
        "taints": spec.and_then(|s| s.taints.as_ref()),
        "unschedulable": spec.and_then(|s| s.unschedulable),
        "allocatable": node.status.as_ref().and_then(|s| s.allocatable.as_ref()),
    })
}

/// kube's `FitError` for one node after the default preemption's PostFilter: the filters'
/// reasons, then why nothing was preempted (nothing when victims were found).
pub fn fit_error(refusal: &Refusal, post_filter: &PostFilter) -> String {
    match post_filter {
        PostFilter::NotHelpful(why) => format!("{}. preemption: {why}", unavailable(refusal)),
        PostFilter::Victims(_) => format!("{}.", unavailable(refusal)),
    }
}

/// The FitError's reasons (`0/1 nodes are available: 1 Insufficient cpu`): counted and
/// sorted, or a PreFilter's as they are.
pub fn unavailable(refusal: &Refusal) -> String {
    if refusal.pre_filter {
        return format!("0/1 nodes are available: {}", refusal.reasons.join(", "));
    }
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in &refusal.reasons {
        *histogram.entry(reason).or_default() += 1;
    }
    let mut reasons: Vec<String> = histogram
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    reasons.sort();
    format!("0/1 nodes are available: {}", reasons.join(", "))
}

/// Whether this scheduler places the pod: its `schedulerName` is the default one.
pub fn is_ours(pod: &Pod) -> bool {
    let name = pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref());
    name.is_none_or(|n| n.is_empty() || n == DEFAULT_SCHEDULER)
}

/// kube-scheduler's binding of `pod` to `node` through the API (pods/binding), the pod's uid
/// in the Binding as the scheduler sends it.
pub async fn bind(client: &LocalClient, pod: &Pod, node: &str) -> Result<(), ApiError> {
    let (namespace, name) = (
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default(),
    );
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace, "uid": pod.metadata.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let path = format!("/api/v1/namespaces/{namespace}/pods/{name}/binding");
    let body = Some(("application/json", binding));
    client
        .send(axum::http::Method::POST, &path, body)
        .await
        .map(drop)
}

/// Whether the pod has a node already (bound by us earlier, or named by the user).
pub fn is_bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// `namespace/name`, as messages name a pod.
pub fn namespaced_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The host ports of every container (init containers too: sidecars publish ports).
pub fn claims_of(pod: &Pod) -> Vec<PortClaim> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| PortClaim {
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            host_ip: p
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into()),
            host_port: p.host_port.unwrap_or(0),
            container_port: p.container_port,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use filters::Code;

    /// The FitError when nothing on the node may be preempted.
    fn fit_error(pod: &Pod, refusal: &Refusal) -> String {
        let nothing = |_: &Pod, _: &[&Pod]| Ok(());
        let outcome =
            Queue::default().post_filter(pod, refusal, (&[], &[]), &nothing, &mut |_| false);
        super::fit_error(refusal, &outcome)
    }

    fn pod(name: &str, ports: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "ports": ports}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_taken_port_is_refused_naming_it_and_its_holder() {
        let scheduler = Scheduler::default();
        scheduler
            .reserve(&pod(
                "web",
                serde_json::json!([{"containerPort": 80, "hostPort": 8001}]),
            ))
            .unwrap();
        let err = scheduler
            .reserve(&pod(
                "web2",
                serde_json::json!([{"containerPort": 8080, "hostPort": 8001}]),
            ))
            .unwrap_err();
        assert_eq!(err.reason, "NodePorts");
        assert_eq!(
            err.message,
            "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod \
             ports (TCP/0.0.0.0:8001 is used by pod default/web)"
        );
    }

    #[test]
    fn protocols_and_distinct_addresses_do_not_conflict_but_the_wildcard_does() {
        let scheduler = Scheduler::default();
        let specific =
            serde_json::json!([{"containerPort": 53, "hostPort": 53, "hostIP": "127.0.0.1"}]);
        scheduler.reserve(&pod("a", specific)).unwrap();
        scheduler
            .reserve(&pod(
                "b",
                serde_json::json!([{"containerPort": 53, "hostPort": 53, "hostIP": "192.0.2.2"}]),
            ))
            .unwrap();
        scheduler
            .reserve(&pod(
                "c",
                serde_json::json!([{"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]),
            ))
            .unwrap();
        assert!(scheduler
            .reserve(&pod(
                "d",
                serde_json::json!([{"containerPort": 53, "hostPort": 53}])
            ))
            .is_err());
    }

    #[test]
    fn release_frees_the_port_and_wakes_waiters() {
        let scheduler = Scheduler::default();
        let first = pod(
            "web",
            serde_json::json!([{"containerPort": 80, "hostPort": 8001}]),
        );
        let second = pod(
            "web2",
            serde_json::json!([{"containerPort": 80, "hostPort": 8001}]),
        );
        scheduler.reserve(&first).unwrap();
        scheduler.reserve(&first).unwrap();
        let freed = scheduler.subscribe();
        assert!(scheduler.reserve(&second).is_err());
        scheduler.release("uid-web");
        assert!(freed.has_changed().unwrap());
        scheduler.reserve(&second).unwrap();
    }

    #[test]
    fn restore_counts_bound_running_pods_only() {
        let mut bound = pod(
            "web",
            serde_json::json!([{"containerPort": 80, "hostPort": 8001}]),
        );
        bound.spec.as_mut().unwrap().node_name = Some("node".into());
        let mut done = pod(
            "old",
            serde_json::json!([{"containerPort": 80, "hostPort": 8002}]),
        );
        done.spec.as_mut().unwrap().node_name = Some("node".into());
        done.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        let scheduler = Scheduler::default();
        scheduler.restore(&[bound, done]);
        assert!(scheduler
            .reserve(&pod(
                "x",
                serde_json::json!([{"containerPort": 1, "hostPort": 8001}])
            ))
            .is_err());
        scheduler
            .reserve(&pod(
                "y",
                serde_json::json!([{"containerPort": 1, "hostPort": 8002}]),
            ))
            .unwrap();
    }

    fn node(spec: serde_json::Value) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node1", "labels": {"kubernetes.io/hostname": "node1"}},
            "spec": spec,
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "110"}},
        }))
        .unwrap()
    }

    fn cpu_pod(name: &str, cpu: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn nothing_is_scheduled_before_the_node_is_known() {
        let scheduler = Scheduler::default();
        assert_eq!(
            scheduler.schedule(&cpu_pod("a", "1")),
            Err(NotScheduled::NoNode)
        );
    }

    #[test]
    fn a_scheduled_pod_counts_against_the_next_until_released() {
        let scheduler = Scheduler::default();
        scheduler.set_node(Some(node(serde_json::json!({}))));
        scheduler.schedule(&cpu_pod("a", "1500m")).unwrap();
        scheduler.schedule(&cpu_pod("a", "1500m")).unwrap();
        let message = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are \
                       available: 1 No preemption victims found for incoming pod.";
        assert_eq!(
            scheduler.schedule(&cpu_pod("b", "1")),
            Err(NotScheduled::Unfit(message.into()))
        );
        let changed = scheduler.subscribe();
        scheduler.release("uid-a");
        assert!(changed.has_changed().unwrap());
        scheduler.schedule(&cpu_pod("b", "1")).unwrap();
    }

    #[test]
    fn only_what_the_filters_read_of_the_node_wakes_waiters() {
        let scheduler = Scheduler::default();
        scheduler.set_node(Some(node(serde_json::json!({}))));
        let mut changed = scheduler.subscribe();
        let mut heartbeat = node(serde_json::json!({}));
        heartbeat.status.as_mut().unwrap().phase = Some("Running".into());
        scheduler.set_node(Some(heartbeat));
        assert!(!changed.has_changed().unwrap());
        scheduler.set_node(Some(node(serde_json::json!({"unschedulable": true}))));
        assert!(changed.has_changed().unwrap());
        changed.mark_unchanged();
        scheduler.set_node(None);
        assert!(changed.has_changed().unwrap());
    }

    #[test]
    fn fit_errors_as_kube_prints_them() {
        let refusal = |code, reasons: &[&str]| Refusal {
            plugin: "Test",
            code,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            pre_filter: false,
        };
        let plain = cpu_pod("a", "1");
        assert_eq!(
            fit_error(
                &plain,
                &refusal(
                    Code::Unschedulable,
                    &["Insufficient memory", "Insufficient cpu"]
                )
            ),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: \
             0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        assert_eq!(
            fit_error(
                &plain,
                &refusal(
                    Code::UnschedulableAndUnresolvable,
                    &["node(s) were unschedulable"]
                )
            ),
            "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are \
             available: 1 Preemption is not helpful for scheduling."
        );
        let conflict = Refusal {
            pre_filter: true,
            ..refusal(
                Code::UnschedulableAndUnresolvable,
                &["pod affinity terms conflict"],
            )
        };
        assert_eq!(
            fit_error(&plain, &conflict),
            "0/1 nodes are available: pod affinity terms conflict. preemption: 0/1 nodes are \
             available: 1 Preemption is not helpful for scheduling."
        );
        let mut never = plain.clone();
        never.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        assert_eq!(
            fit_error(&never, &refusal(Code::Unschedulable, &["Too many pods"])),
            "0/1 nodes are available: 1 Too many pods. preemption: not eligible due to \
             preemptionPolicy=Never."
        );
    }

    #[test]
    fn only_the_default_scheduler_s_pods_are_ours() {
        let mut pod = cpu_pod("a", "1");
        assert!(is_ours(&pod));
        pod.spec.as_mut().unwrap().scheduler_name = Some(DEFAULT_SCHEDULER.into());
        assert!(is_ours(&pod));
        pod.spec.as_mut().unwrap().scheduler_name = Some("my-scheduler".into());
        assert!(!is_ours(&pod));
    }
}
