//! Kinds answered by the agent's own routes rather than the object store: the metrics API
//! (`kubectl top`) and peapod's image API. They are listed here so discovery shows them.

use peapod_apiserver::registry::{GroupVersionKind, Kind};

const READ: &[&str] = &["get", "list"];

pub fn pod_metrics() -> Kind {
    let gvk = GroupVersionKind::new("metrics.k8s.io", "v1beta1", "PodMetrics");
    Kind::external_named(gvk, "pods", true, READ)
}

pub fn node_metrics() -> Kind {
    let gvk = GroupVersionKind::new("metrics.k8s.io", "v1beta1", "NodeMetrics");
    Kind::external_named(gvk, "nodes", false, READ)
}

pub fn images() -> Kind {
    let gvk = GroupVersionKind::new("images.peapod.io", "v1", "Image");
    Kind::external_named(gvk, "images", false, &["create", "delete", "list"])
}
