//! `kubectl get statefulsets` columns (kube's printStatefulSet): Name, Ready (ready of
//! desired), Age, and with `-o wide` Containers and Images.

use k8s_openapi::api::apps::v1::StatefulSet;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use crate::apps::v1::workload;

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Ready", "string", "Number of the pod with ready state"),
        AGE,
        Column::new(
            "Containers",
            "string",
            "Names of each container in the template.",
        )
        .wide(),
        Column::new(
            "Images",
            "string",
            "Images referenced by each container in the template.",
        )
        .wide(),
    ]
}

pub fn cells(sts: &StatefulSet) -> Vec<Value> {
    let spec = sts.spec.as_ref();
    let desired = spec.and_then(|s| s.replicas).unwrap_or(0);
    let ready = sts
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let [names, images] = workload::container_cells(spec.map(|s| &s.template));
    vec![
        name_cell(&sts.metadata),
        json!(format!("{ready}/{desired}")),
        age_cell(&sts.metadata),
        names,
        images,
    ]
}
