//! `kubectl get poddisruptionbudgets` columns (kube's printPodDisruptionBudget): Name, Min
//! Available, Max Unavailable (`N/A` when unset), Allowed Disruptions, Age.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new(
            "Min Available",
            "string",
            "The minimum number of pods that must be available",
        ),
        Column::new(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable",
        ),
        Column::new(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time",
        ),
        AGE,
    ]
}

pub fn cells(pdb: &PodDisruptionBudget) -> Vec<Value> {
    let spec = pdb.spec.as_ref();
    let shown = |value: Option<&IntOrString>| match value {
        Some(IntOrString::Int(n)) => n.to_string(),
        Some(IntOrString::String(text)) => text.clone(),
        None => "N/A".to_owned(),
    };
    let allowed = pdb.status.as_ref().map_or(0, |s| s.disruptions_allowed);
    vec![
        name_cell(&pdb.metadata),
        json!(shown(spec.and_then(|s| s.min_available.as_ref()))),
        json!(shown(spec.and_then(|s| s.max_unavailable.as_ref()))),
        json!(allowed),
        age_cell(&pdb.metadata),
    ]
}
