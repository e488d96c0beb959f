//! `kubectl get daemonsets` columns (kube's printDaemonSet, described by the
//! extensions/v1beta1 docs it uses): Name, Desired, Current, Ready, Up-to-date, Available,
//! Node Selector, Age, and with `-o wide` Containers, Images, Selector.

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use peapod_api::label_selector::format_label_selector;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use crate::apps::v1::workload;

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
        Column::new("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
        Column::new("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
        Column::new("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
        Column::new("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
        Column::new("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
        AGE,
        Column::new("Containers", "string", "Names of each container in the template.").wide(),
        Column::new("Images", "string", "Images referenced by each container in the template.").wide(),
        Column::new("Selector", "string", "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
    ]
}

pub fn cells(ds: &DaemonSet) -> Vec<Value> {
    let spec = ds.spec.as_ref();
    let status = ds.status.clone().unwrap_or_default();
    let optional = |field: fn(&DaemonSetStatus) -> Option<i32>| field(&status).unwrap_or(0);
    let template = spec.map(|s| &s.template);
    let node_selector = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.node_selector.clone())
        .unwrap_or_default();
    let [names, images] = workload::container_cells(template);
    vec![
        name_cell(&ds.metadata),
        json!(status.desired_number_scheduled),
        json!(status.current_number_scheduled),
        json!(status.number_ready),
        json!(optional(|s| s.updated_number_scheduled)),
        json!(optional(|s| s.number_available)),
        json!(format_labels(&node_selector)),
        age_cell(&ds.metadata),
        names,
        images,
        json!(format_label_selector(spec.map(|s| &s.selector))),
    ]
}

/// `labels.FormatLabels`: `k=v` pairs by key, `<none>` for none.
fn format_labels(labels: &std::collections::BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".to_owned();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}
