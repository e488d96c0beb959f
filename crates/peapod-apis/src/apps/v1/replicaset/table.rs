//! `kubectl get replicasets` columns (kube's printReplicaSet, described by the extensions/v1beta1
//! docs it uses): Name, Desired, Current, Ready, Age, and with `-o wide` Containers, Images,
//! Selector.

use k8s_openapi::api::apps::v1::ReplicaSet;
use peapod_api::label_selector::format_label_selector;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use crate::apps::v1::workload;

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Desired", "integer", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"),
        Column::new("Current", "integer", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"),
        Column::new("Ready", "integer", "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready Condition."),
        AGE,
        Column::new("Containers", "string", "Names of each container in the template.").wide(),
        Column::new("Images", "string", "Images referenced by each container in the template.").wide(),
        Column::new("Selector", "string", "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
    ]
}

pub fn cells(rs: &ReplicaSet) -> Vec<Value> {
    let spec = rs.spec.as_ref();
    let status = rs.status.as_ref();
    let desired = spec.and_then(|s| s.replicas).unwrap_or(0);
    let current = status.map_or(0, |s| s.replicas);
    let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
    let [names, images] = workload::container_cells(spec.and_then(|s| s.template.as_ref()));
    vec![
        name_cell(&rs.metadata),
        json!(desired),
        json!(current),
        json!(ready),
        age_cell(&rs.metadata),
        names,
        images,
        json!(format_label_selector(spec.map(|s| &s.selector))),
    ]
}
