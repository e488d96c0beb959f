//! `kubectl get jobs` columns (kube 1.32's printJob): Name, Status, Completions, Duration, Age,
//! and with `-o wide` Containers, Images, Selector.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Container;
use peapod_api::label_selector::format_label_selector;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Status", "string", "Status of the job."),
        Column::new("Completions", "string", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
        Column::new("Duration", "string", "Time required to complete the job."),
        AGE,
        Column::new("Containers", "string", "Names of each container in the template.").wide(),
        Column::new("Images", "string", "Images referenced by each container in the template.").wide(),
        Column::new("Selector", "string", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
    ]
}

pub fn cells(job: &Job) -> Vec<Value> {
    let spec = job.spec.clone().unwrap_or_default();
    let containers = spec
        .template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let (names, images) = container_cells(containers);
    vec![
        name_cell(&job.metadata),
        json!(status(job)),
        json!(completions(job)),
        json!(duration(job, Timestamp::now())),
        age_cell(&job.metadata),
        json!(names),
        json!(images),
        json!(format_label_selector(spec.selector.as_ref())),
    ]
}

/// The first that holds: a terminal condition, deletion, then the interim conditions.
fn status(job: &Job) -> &'static str {
    let has = |kind: &str| {
        let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
        conditions
            .into_iter()
            .flatten()
            .any(|c| c.type_ == kind && c.status == "True")
    };
    match () {
        _ if has("Complete") => "Complete",
        _ if has("Failed") => "Failed",
        _ if job.metadata.deletion_timestamp.is_some() => "Terminating",
        _ if has("Suspended") => "Suspended",
        _ if has("FailureTarget") => "FailureTarget",
        _ if has("SuccessCriteriaMet") => "SuccessCriteriaMet",
        _ => "Running",
    }
}

/// `succeeded/completions`, or for a work queue `succeeded/1` (`of <parallelism>` when parallel).
fn completions(job: &Job) -> String {
    let succeeded = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
    let spec = job.spec.as_ref();
    if let Some(completions) = spec.and_then(|s| s.completions) {
        return format!("{succeeded}/{completions}");
    }
    match spec.and_then(|s| s.parallelism).unwrap_or(0) {
        parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        _ => format!("{succeeded}/1"),
    }
}

/// From the start to completion, or to `now` while running; empty before it starts.
pub(super) fn duration(job: &Job, now: Timestamp) -> String {
    let status = job.status.as_ref();
    let Some(start) = status.and_then(|s| s.start_time.as_ref()) else {
        return String::new();
    };
    let end = status
        .and_then(|s| s.completion_time.as_ref())
        .map_or(now, |t| t.0);
    peapod_printers::since(Some(start.0), end)
}

/// layoutContainerCells: the names and images, comma-separated.
pub(crate) fn container_cells(containers: &[Container]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or_default())
        .collect();
    (names.join(","), images.join(","))
}
