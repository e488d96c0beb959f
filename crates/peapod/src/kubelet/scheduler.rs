//! Binding pods to this node, as kube-scheduler does for a one-node cluster. The one filter
//! that can fail here is NodePorts: a (protocol, hostIP, hostPort) another pod holds. Such a
//! pod stays Pending, unbound, with PodScheduled=False, and is retried when a port is freed.
//! A pod that names this node itself skips the scheduler, and kubelet's admission rejects it
//! on a conflict, as a cluster's kubelet would.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use peapod_apiserver::client::LocalClient;
use peapod_apiserver::status::ApiError;
use serde_json::json;
use tokio::sync::watch;

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
    /// The FailedScheduling message, kube-scheduler's wording with the port named.
    pub fn scheduler_message(&self) -> String {
        format!(
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod \
             ports ({} is used by pod {}). preemption: 0/1 nodes are available: 1 Preemption is \
             not helpful for scheduling.",
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

struct Holder {
    pod: String,
    claims: Vec<PortClaim>,
}

/// The host ports held by the pods bound to this node.
pub struct Scheduler {
    held: Mutex<HashMap<String, Holder>>,
    freed: watch::Sender<u64>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler {
            held: Mutex::new(HashMap::new()),
            freed: watch::channel(0).0,
        }
    }
}

impl Scheduler {
    /// Records the ports of pods already bound and not finished (after an agent restart),
    /// before any new pod is scheduled.
    pub fn restore(&self, pods: &[Pod]) {
        for pod in pods.iter().filter(|p| is_bound(p) && !is_terminal(p)) {
            let mut held = self.held.lock().expect("scheduler lock");
            held.insert(uid(pod), holder(pod));
        }
    }

    /// Takes the pod's host ports, or names the first one another pod holds. Idempotent.
    pub fn reserve(&self, pod: &Pod) -> Result<(), Conflict> {
        let mut held = self.held.lock().expect("scheduler lock");
        let uid = uid(pod);
        if held.contains_key(&uid) {
            return Ok(());
        }
        let wanted = holder(pod);
        for (other_uid, other) in held.iter() {
            if *other_uid == uid {
                continue;
            }
            for claim in &wanted.claims {
                if other.claims.iter().any(|c| c.conflicts_with(claim)) {
                    return Err(Conflict {
                        claim: claim.clone(),
                        holder: other.pod.clone(),
                    });
                }
            }
        }
        held.insert(uid, wanted);
        Ok(())
    }

    /// Frees the pod's ports and wakes the pods waiting for one.
    pub fn release(&self, uid: &str) {
        let removed = self.held.lock().expect("scheduler lock").remove(uid);
        if removed.is_some_and(|h| !h.claims.is_empty()) {
            self.freed.send_modify(|n| *n += 1);
        }
    }

    /// Changes whenever ports are freed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.freed.subscribe()
    }
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

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn holder(pod: &Pod) -> Holder {
    Holder {
        pod: format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or_default()
        ),
        claims: claims_of(pod),
    }
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
        assert_eq!(err.claim.to_string(), "TCP/0.0.0.0:8001");
        assert_eq!(err.holder, "default/web");
        assert!(err.scheduler_message().contains("didn't have free ports"));
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
}
