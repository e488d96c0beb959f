//! `kubectl get pods` columns (kube's printPod): Name, Ready, Status, Restarts, Age, and with
//! `-o wide` IP, Node, Nominated Node, Readiness Gates.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use peapod_apiserver::table::{Column, AGE, NAME};
use serde_json::Value;

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        Column::new("Status", "string", "The aggregate status of the containers in this pod."),
        Column::new("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
        AGE,
        Column::new("IP", "string", "The IP address assigned to the pod.").wide(),
        Column::new("Node", "string", "The name of the node to which this pod is scheduled.").wide(),
        Column::new("Nominated Node", "string", "The name of the node nominated by the scheduler to run this pod.").wide(),
        Column::new("Readiness Gates", "string", "The status of the readiness gates.").wide(),
    ]
}

/// The cells, as peapod's printers (a port of printPod) render them.
pub fn cells(pod: &Pod) -> Vec<Value> {
    peapod_printers::pod_row(pod, true, false, Timestamp::now())
        .into_iter()
        .map(Value::from)
        .collect()
}
