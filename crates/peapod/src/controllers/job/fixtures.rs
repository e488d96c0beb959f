//! Pods and Jobs for the unit tests, built as kube's job_controller_test.go builds them
//! (`buildPod().uid("a").index("0").phase(v1.PodFailed).trackingFinalizer()`).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::indexes::{COMPLETION_INDEX, INDEX_FAILURE_COUNT};
use super::pods::TRACKING_FINALIZER;

/// A Job from its spec (template labels and batch/v1's main defaults filled in).
pub fn job(spec: Value) -> Job {
    let mut full = json!({
        "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
        "selector": {"matchLabels": {"job": "pi"}},
        "template": {"metadata": {"labels": {"job": "pi"}},
                     "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
    });
    for (key, value) in spec.as_object().cloned().unwrap_or_default() {
        full[key] = value;
    }
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"namespace": "default", "name": "pi", "uid": "job-uid"},
        "spec": full,
    }))
    .expect("a valid job")
}

/// An Indexed Job of `completions`.
pub fn indexed(completions: i32, more: Value) -> Job {
    let mut spec = json!({"completionMode": "Indexed", "completions": completions});
    for (key, value) in more.as_object().cloned().unwrap_or_default() {
        spec[key] = value;
    }
    job(spec)
}

/// kube's `buildPod()`.
pub struct PodBuilder(Value);

pub fn build_pod() -> PodBuilder {
    PodBuilder(json!({
        "metadata": {"namespace": "default", "name": "p", "uid": "p-uid", "annotations": {}, "labels": {"job": "pi"}},
        "spec": {"containers": [{"name": "c"}]},
        "status": {},
    }))
}

impl PodBuilder {
    pub fn uid(mut self, uid: &str) -> Self {
        self.0["metadata"]["uid"] = json!(uid);
        self.0["metadata"]["name"] = json!(uid);
        self
    }

    pub fn index(mut self, index: &str) -> Self {
        self.0["metadata"]["annotations"][COMPLETION_INDEX] = json!(index);
        self
    }

    pub fn index_failure_count(mut self, count: &str) -> Self {
        self.0["metadata"]["annotations"][INDEX_FAILURE_COUNT] = json!(count);
        self
    }

    pub fn phase(mut self, phase: &str) -> Self {
        self.0["status"]["phase"] = json!(phase);
        self
    }

    pub fn tracking_finalizer(mut self) -> Self {
        self.0["metadata"]["finalizers"] = json!([TRACKING_FINALIZER]);
        self
    }

    pub fn deleted_at(mut self, at: &str) -> Self {
        self.0["metadata"]["deletionTimestamp"] = json!(at);
        self
    }

    pub fn created_at(mut self, at: &str) -> Self {
        self.0["metadata"]["creationTimestamp"] = json!(at);
        self
    }

    pub fn node(mut self, node: &str) -> Self {
        self.0["spec"]["nodeName"] = json!(node);
        self
    }

    /// A container `name` terminated with `code` at `at`.
    pub fn exited(mut self, name: &str, code: i32, at: &str) -> Self {
        let status = json!({"name": name, "image": "busybox", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": code, "finishedAt": at}}});
        push(&mut self.0["status"]["containerStatuses"], status);
        self
    }

    pub fn init_exited(mut self, name: &str, code: i32) -> Self {
        let status = json!({"name": name, "image": "busybox", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": code}}});
        push(&mut self.0["status"]["initContainerStatuses"], status);
        self
    }

    pub fn running_container(mut self, name: &str, restarts: i32) -> Self {
        let status = json!({"name": name, "image": "busybox", "imageID": "", "ready": true,
            "restartCount": restarts, "state": {"running": {}}});
        push(&mut self.0["status"]["containerStatuses"], status);
        self
    }

    pub fn condition(mut self, type_: &str, status: &str, at: Option<&str>) -> Self {
        let mut condition = json!({"type": type_, "status": status});
        if let Some(at) = at {
            condition["lastTransitionTime"] = json!(at);
        }
        push(&mut self.0["status"]["conditions"], condition);
        self
    }

    pub fn pod(self) -> Pod {
        serde_json::from_value(self.0).expect("a valid pod")
    }
}

fn push(list: &mut Value, item: Value) {
    match list.as_array_mut() {
        Some(items) => items.push(item),
        None => *list = json!([item]),
    }
}
