//! Pod: decode checks, defaults, create/update rules and validation from peapod-api, graceful
//! deletion handed to the kubelet, kubectl's columns, and kube-apiserver's pod field labels.

mod affinity_keys;
pub mod default_tolerations;
mod table;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use peapod_api::validation::{FieldError, FieldPath};
use peapod_apiserver::registry::{
    Action, DeleteDecision, GroupVersionKind, Kind, KindStrategy, Subresource,
};
use peapod_apiserver::status::ApiError;
use peapod_apiserver::table::Column;
use serde_json::{json, Value};

use crate::policy::v1::poddisruptionbudget::eviction;
use crate::NodeInfo;

/// Seconds a pod gets to stop when neither the request nor its spec says.
const DEFAULT_GRACE_SECONDS: i64 = 30;

pub fn kind(node: NodeInfo) -> Kind {
    let connect = |name, kind: &str| Subresource {
        name,
        response: GroupVersionKind::new("", "v1", kind),
        verbs: &["create", "get"],
    };
    let bind_to = node.name.clone();
    Kind::of(PodStrategy { node })
        .short_names(&["po"])
        .categories(&["all"])
        .with_status()
        .subresource(Subresource {
            name: "binding",
            response: GroupVersionKind::new("", "v1", "Binding"),
            verbs: &["create"],
        })
        .subresource(Subresource {
            name: "eviction",
            response: GroupVersionKind::new("policy", "v1", "Eviction"),
            verbs: &["create"],
        })
        .subresource(Subresource {
            name: "log",
            response: GroupVersionKind::new("", "v1", "Pod"),
            verbs: &["get"],
        })
        .action(
            "binding",
            Action::UpdateParent(Arc::new(move |pod, binding| bind(pod, binding, &bind_to))),
        )
        .action(
            "eviction",
            Action::DeleteParent(Arc::new(eviction::guard), Arc::new(eviction::mark)),
        )
        .subresource(connect("exec", "PodExecOptions"))
        .subresource(connect("attach", "PodAttachOptions"))
        .subresource(connect("portforward", "PodPortForwardOptions"))
}

pub struct PodStrategy {
    node: NodeInfo,
}

impl KindStrategy for PodStrategy {
    type Object = Pod;

    /// kube's podStatusStrategy keeps the owners: old kubelets wrote them back corrupted
    /// through status writes, breaking garbage collection.
    fn status_write_metadata(&self) -> &'static [&'static str] {
        &["labels", "annotations", "finalizers"]
    }

    fn default(&self, pod: &mut Pod) {
        peapod_api::defaults::default_pod(pod);
        if let Some(spec) = pod.spec.as_mut() {
            mirror_deprecated_service_account(spec);
        }
    }

    /// A new pod is Pending and unscheduled until the scheduler binds it.
    fn prepare_for_create(&self, pod: &mut Pod) {
        let qos_class = pod
            .spec
            .as_ref()
            .map(|spec| peapod_api::qos::qos_class(spec).to_owned());
        pod.status = Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class,
            ..Default::default()
        });
        if let Some(spec) = pod.spec.as_mut() {
            if spec.node_name.as_deref() == Some("") {
                spec.node_name = None;
            }
        }
        affinity_keys::merge_into_selectors(pod);
    }

    /// Priority admission on update: a priority or preemption policy left out keeps the one
    /// admission gave the pod (neither may change).
    fn prepare_for_update(&self, new: &mut Pod, old: &Pod) {
        if let (Some(spec), Some(old)) = (new.spec.as_mut(), old.spec.as_ref()) {
            spec.priority = spec.priority.or(old.priority);
            if spec.preemption_policy.is_none() {
                spec.preemption_policy.clone_from(&old.preemption_policy);
            }
        }
        default_tolerations::keep_on_update(new, old);
    }

    fn validate(&self, pod: &Pod) -> Vec<FieldError> {
        let mut errors = match peapod_api::validation::validate_pod(pod) {
            Ok(()) => Vec::new(),
            Err(invalid) => invalid.errors,
        };
        errors.extend(self.node_errors(pod));
        errors
    }

    fn validate_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        match peapod_api::validation::validate_pod_update(new, old) {
            Ok(()) => Vec::new(),
            Err(invalid) => invalid.errors,
        }
    }

    fn warnings(&self, pod: &Pod) -> Vec<String> {
        let value = serde_json::to_value(pod).unwrap_or(Value::Null);
        let mut warnings = peapod_api::support::unsupported_pod_fields(&value);
        warnings.extend(peapod_api::warnings::pod_warnings(pod));
        warnings
    }

    fn columns(&self) -> Vec<Column> {
        table::columns()
    }

    fn cells(&self, pod: &Pod) -> Vec<Value> {
        table::cells(pod)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }

    fn field(&self, pod: &Pod, label: &str) -> Option<String> {
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        match label {
            "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
            "spec.restartPolicy" => spec.and_then(|s| s.restart_policy.clone()),
            "spec.schedulerName" => spec.and_then(|s| s.scheduler_name.clone()),
            "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
            "spec.hostNetwork" => Some(
                spec.and_then(|s| s.host_network)
                    .unwrap_or(false)
                    .to_string(),
            ),
            "status.phase" => status.and_then(|s| s.phase.clone()),
            "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
            "status.nominatedNodeName" => status.and_then(|s| s.nominated_node_name.clone()),
            _ => None,
        }
    }

    /// Every pod stops through its kubelet, which removes it once its containers are gone:
    /// the grace period is the request's, else the spec's, else 30 s.
    fn delete(&self, pod: &Pod, grace_period_seconds: Option<i64>) -> DeleteDecision {
        let grace = grace_period_seconds
            .or(pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        DeleteDecision::Graceful(grace.max(0))
    }

    fn return_deleted_object(&self) -> bool {
        true
    }
}

/// kube's v1 conversion of the deprecated `serviceAccount`: it stands in for an empty
/// `serviceAccountName`, and always reads as `serviceAccountName` afterwards.
fn mirror_deprecated_service_account(spec: &mut PodSpec) {
    let non_empty = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if !non_empty(&spec.service_account_name) && non_empty(&spec.service_account) {
        spec.service_account_name = spec.service_account.clone();
    }
    spec.service_account = spec
        .service_account_name
        .clone()
        .filter(|name| !name.is_empty());
}

/// pods/binding: assigns an unbound pod to this node and marks it scheduled, as
/// kube-apiserver's `assignPod` does.
fn bind(pod: &mut Value, binding: &Value, this_node: &str) -> Result<(), ApiError> {
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let conflict = |why: String| ApiError::conflict("", "pods", &name, &why);
    let Some(node) = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        let path = FieldPath::new("target").child("name");
        return Err(ApiError::invalid(
            "",
            "Binding",
            &name,
            vec![FieldError::required(&path, "")],
        ));
    };
    if node != this_node {
        let detail = format!("this peapod node is \"{this_node}\"");
        let path = FieldPath::new("target").child("name");
        return Err(ApiError::invalid(
            "",
            "Binding",
            &name,
            vec![FieldError::invalid(&path, node, &detail)],
        ));
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(conflict(format!(
            "pod {name} is being deleted, cannot be assigned to a host"
        )));
    }
    if let Some(bound) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Err(conflict(format!(
            "pod {name} is already assigned to node \"{bound}\""
        )));
    }
    pod["spec"]["nodeName"] = json!(node);
    let condition = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    });
    let conditions = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut conditions: Vec<Value> = conditions
        .into_iter()
        .filter(|c| c["type"] != "PodScheduled")
        .collect();
    conditions.push(condition);
    pod["status"]["conditions"] = json!(conditions);
    Ok(())
}

impl PodStrategy {
    /// A pod may name only this node, and publish hostPorts only on its addresses.
    fn node_errors(&self, pod: &Pod) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let Some(spec) = &pod.spec else {
            return errors;
        };
        if let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
            if node != self.node.name {
                let detail = format!("this peapod node is \"{}\"", self.node.name);
                errors.push(FieldError::invalid(
                    &FieldPath::new("spec").child("nodeName"),
                    node,
                    &detail,
                ));
            }
        }
        errors.extend(host_ip_errors(pod, &(self.node.addresses)()));
        errors
    }
}

fn host_ip_errors(pod: &Pod, node_addresses: &[std::net::Ipv4Addr]) -> Vec<FieldError> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let lists = [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", spec.containers.as_slice()),
    ];
    let addresses: Vec<String> = node_addresses.iter().map(ToString::to_string).collect();
    let detail = format!(
        "must be 0.0.0.0 or an IPv4 address of this node ({})",
        addresses.join(", ")
    );
    let mut errors = Vec::new();
    for (list, containers) in lists {
        for (i, container) in containers.iter().enumerate() {
            for (j, port) in container.ports.iter().flatten().enumerate() {
                let Some(host_ip) = port.host_ip.as_deref().filter(|ip| !ip.is_empty()) else {
                    continue;
                };
                let known = host_ip
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_unspecified() || node_addresses.contains(&ip));
                if !known {
                    let path = FieldPath::new("spec")
                        .child(list)
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostIP");
                    errors.push(FieldError::invalid(&path, host_ip, &detail));
                }
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_leaving_out_the_priority_keeps_it() {
        let spec = |priority: Option<i32>, policy: Option<&str>| PodSpec {
            priority,
            preemption_policy: policy.map(str::to_owned),
            ..PodSpec::default()
        };
        let pod = |spec| Pod {
            spec: Some(spec),
            ..Pod::default()
        };
        let strategy = PodStrategy {
            node: NodeInfo {
                name: "node".into(),
                addresses: Vec::new,
            },
        };
        let old = pod(spec(Some(1000), Some("Never")));
        let mut new = pod(spec(None, None));
        strategy.prepare_for_update(&mut new, &old);
        assert_eq!(new, old);
        let mut changed = pod(spec(Some(5), Some("PreemptLowerPriority")));
        strategy.prepare_for_update(&mut changed, &old);
        assert_eq!(changed.spec.unwrap().priority, Some(5));
    }

    #[test]
    fn the_deprecated_service_account_mirrors_service_account_name() {
        let spec = |name: Option<&str>, deprecated: Option<&str>| PodSpec {
            service_account_name: name.map(str::to_owned),
            service_account: deprecated.map(str::to_owned),
            ..PodSpec::default()
        };
        let cases = [
            (spec(None, Some("old")), spec(Some("old"), Some("old"))),
            (
                spec(Some("new"), Some("old")),
                spec(Some("new"), Some("new")),
            ),
            (spec(Some("new"), None), spec(Some("new"), Some("new"))),
            (spec(None, None), spec(None, None)),
        ];
        for (mut given, expected) in cases {
            mirror_deprecated_service_account(&mut given);
            assert_eq!(
                (given.service_account_name, given.service_account),
                (expected.service_account_name, expected.service_account)
            );
        }
    }
}
