//! `kubectl get deployments` columns (kube's printDeployment, described by the
//! extensions/v1beta1 docs it uses): Name, Ready (ready/desired), Up-to-date, Available, Age,
//! and with `-o wide` Containers, Images, Selector.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use peapod_api::label_selector::to_selector_string;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use crate::apps::v1::workload;

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Ready", "string", "Number of the pod with ready state"),
        Column::new("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
        Column::new("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
        AGE,
        Column::new("Containers", "string", "Names of each container in the template.").wide(),
        Column::new("Images", "string", "Images referenced by each container in the template.").wide(),
        Column::new("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.").wide(),
    ]
}

pub fn cells(deployment: &Deployment) -> Vec<Value> {
    let spec = deployment.spec.as_ref();
    let status = deployment.status.as_ref();
    let count = |field: fn(&DeploymentStatus) -> Option<i32>| status.and_then(field).unwrap_or(0);
    let desired = spec.and_then(|s| s.replicas).unwrap_or(0);
    let ready = count(|s| s.ready_replicas);
    let [names, images] = workload::container_cells(spec.map(|s| &s.template));
    // LabelSelectorAsSelector(...).String(): empty for no selector, `<invalid>` for one that
    // does not convert.
    let selector = spec.map_or(Ok(String::new()), |s| to_selector_string(&s.selector));
    vec![
        name_cell(&deployment.metadata),
        json!(format!("{ready}/{desired}")),
        json!(count(|s| s.updated_replicas)),
        json!(count(|s| s.available_replicas)),
        age_cell(&deployment.metadata),
        names,
        images,
        json!(selector.unwrap_or_else(|_| "<invalid>".to_owned())),
    ]
}
