//! kubelet's admission of a pod bound to this node without the scheduler (`nodeName` in its
//! spec, or another scheduler's binding), as its predicate admit handler runs kube-scheduler's
//! `AdmissionCheck` (NodeResourcesFit with the amounts, NodeAffinity, NodePorts) and then the
//! NoExecute taints: the first failure rejects the pod with kubelet's reason (`OutOfcpu`,
//! `OutOfmemory`, `OutOfpods`, or the predicate's name) and message.

use k8s_openapi::api::core::v1::{Node, Pod};

use super::filters::{self, Insufficient};

/// Why kubelet refuses to run a pod it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The pod's `status.reason`: `OutOfcpu`, `NodePorts`, ...
    pub reason: String,
    /// The pod's `status.message`.
    pub message: String,
}

impl Rejection {
    fn predicate(name: &str, description: &str) -> Rejection {
        Rejection {
            reason: name.to_owned(),
            message: format!("Predicate {name} failed: {description}"),
        }
    }

    fn out_of(short: &Insufficient) -> Rejection {
        Rejection {
            reason: format!("OutOf{}", short.resource),
            message: format!(
                "Node didn't have enough resource: {}, requested: {}, used: {}, capacity: {}",
                short.resource, short.requested, short.used, short.capacity
            ),
        }
    }
}

/// The first reason kubelet has to refuse `pod` beside the pods already bound. Without a
/// Node (not registered yet) only the host ports are checked.
pub fn check(pod: &Pod, node: Option<&Node>, bound: &[&Pod]) -> Result<(), Rejection> {
    if let Some(node) = node {
        if let Some(short) = filters::insufficient_resources(pod, node, bound).first() {
            return Err(Rejection::out_of(short));
        }
        if let Err(refusal) = filters::node_affinity(pod, node) {
            return Err(Rejection::predicate("NodeAffinity", &refusal.reasons[0]));
        }
    }
    if let Some(conflict) = filters::port_conflict(pod, bound) {
        return Err(Rejection {
            reason: "NodePorts".into(),
            message: conflict.admission_message(),
        });
    }
    match node {
        Some(node) if untolerated_no_execute(pod, node) => Err(Rejection::predicate(
            "TaintToleration",
            "node(s) had taints that the pod didn't tolerate",
        )),
        _ => Ok(()),
    }
}

/// kubelet looks at NoExecute taints only: NoSchedule ones are the scheduler's business.
fn untolerated_no_execute(pod: &Pod, node: &Node) -> bool {
    filters::untolerated_taint(pod, node, &["NoExecute"]).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "resources": spec["resources"].clone(),
                                     "ports": spec["ports"].clone()}]);
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": spec,
        }))
        .unwrap()
    }

    fn node(spec: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"disk": "hdd"}},
            "spec": spec,
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "3"}},
        }))
        .unwrap()
    }

    fn cpu(millis: &str) -> serde_json::Value {
        json!({"resources": {"requests": {"cpu": millis}}})
    }

    #[test]
    fn resources_are_rejected_with_kubelet_s_amounts() {
        let held = pod("held", cpu("500m"));
        let big = pod("big", cpu("1800m"));
        assert_eq!(
            check(&big, Some(&node(json!({}))), &[&held]),
            Err(Rejection {
                reason: "OutOfcpu".into(),
                message: "Node didn't have enough resource: cpu, requested: 1800, used: 500, \
                          capacity: 2000"
                    .into(),
            })
        );
        let small = pod("small", cpu("1500m"));
        assert_eq!(check(&small, Some(&node(json!({}))), &[&held]), Ok(()));
        let full: Vec<Pod> = (0..3).map(|i| pod(&format!("p{i}"), json!({}))).collect();
        let full: Vec<&Pod> = full.iter().collect();
        let rejected = check(&small, Some(&node(json!({}))), &full).unwrap_err();
        assert_eq!(rejected.reason, "OutOfpods");
    }

    #[test]
    fn node_selector_ports_and_no_execute_taints_are_checked() {
        let mut picky = pod("picky", json!({}));
        picky.spec.as_mut().unwrap().node_selector =
            Some([("disk".to_string(), "ssd".to_string())].into());
        let rejected = check(&picky, Some(&node(json!({}))), &[]).unwrap_err();
        assert_eq!(rejected.reason, "NodeAffinity");
        assert_eq!(
            rejected.message,
            "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
        );
        let port = json!({"ports": [{"containerPort": 80, "hostPort": 8080}]});
        let (a, b) = (pod("a", port.clone()), pod("b", port));
        assert_eq!(check(&b, None, &[&a]).unwrap_err().reason, "NodePorts");
        let tainted = node(json!({"taints": [
            {"key": "k", "value": "v", "effect": "NoSchedule"}]}));
        assert_eq!(check(&pod("p", json!({})), Some(&tainted), &[]), Ok(()));
        let evicting = node(json!({"taints": [
            {"key": "k", "value": "v", "effect": "NoExecute"}]}));
        let rejected = check(&pod("p", json!({})), Some(&evicting), &[]).unwrap_err();
        assert_eq!(rejected.reason, "TaintToleration");
    }
}
