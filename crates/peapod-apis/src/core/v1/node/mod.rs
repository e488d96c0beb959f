//! Node: cluster-scoped with a status subresource, kubectl's node columns, `spec.unschedulable`
//! as a field label.

use k8s_openapi::api::core::v1::Node;
use peapod_api::validation::FieldError;
use peapod_apiserver::registry::{validate_meta, Kind, KindStrategy};
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

pub fn kind() -> Kind {
    Kind::of(NodeStrategy).short_names(&["no"]).with_status()
}

pub struct NodeStrategy;

impl KindStrategy for NodeStrategy {
    type Object = Node;

    fn validate(&self, node: &Node) -> Vec<FieldError> {
        validate_meta(node, false)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            Column::new("Status", "string", "The status of the node"),
            Column::new("Roles", "string", "The roles of the node"),
            AGE,
            Column::new("Version", "string", "Kubelet Version reported by the node."),
            Column::new("Internal-IP", "string", "List of internal IPs in the node.").wide(),
            Column::new("External-IP", "string", "List of external IPs in the node.").wide(),
            Column::new("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).").wide(),
            Column::new("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).").wide(),
            Column::new("Container-Runtime", "string", "Container Runtime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).").wide(),
        ]
    }

    fn cells(&self, node: &Node) -> Vec<Value> {
        let status = node.status.clone().unwrap_or_default();
        let info = status.node_info.clone().unwrap_or_default();
        let address = |kind: &str| {
            status
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == kind)
                .map_or_else(|| "<none>".to_owned(), |a| a.address.clone())
        };
        vec![
            name_cell(&node.metadata),
            json!(ready_status(node)),
            json!(roles(node)),
            age_cell(&node.metadata),
            json!(info.kubelet_version),
            json!(address("InternalIP")),
            json!(address("ExternalIP")),
            json!(info.os_image),
            json!(info.kernel_version),
            json!(info.container_runtime_version),
        ]
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }

    fn field(&self, node: &Node, label: &str) -> Option<String> {
        (label == "spec.unschedulable").then(|| {
            node.spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false)
                .to_string()
        })
    }
}

/// kube's node STATUS: Ready/NotReady/Unknown, with SchedulingDisabled when cordoned.
fn ready_status(node: &Node) -> String {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| {
            if c.status == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .unwrap_or("Unknown");
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if cordoned {
        format!("{ready},SchedulingDisabled")
    } else {
        ready.to_owned()
    }
}

/// Roles from `node-role.kubernetes.io/<role>` labels, `<none>` without.
fn roles(node: &Node) -> String {
    let roles: Vec<&str> = node
        .metadata
        .labels
        .iter()
        .flatten()
        .filter_map(|(key, _)| key.strip_prefix("node-role.kubernetes.io/"))
        .filter(|role| !role.is_empty())
        .collect();
    if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.join(",")
    }
}
