//! The downward API's values: what a `fieldRef` and a `resourceFieldRef` read from the pod,
//! the node and the container's resources, formatted as Kubernetes formats them, for
//! environment variables and downwardAPI volumes alike.
//!
//! Quantities are k8s-openapi's (the strings of the API objects), parsed with
//! `peapod_api::quantity` where a value is computed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use peapod_api::quantity::Quantity as Exact;
use peapod_api::validation::go_quote;

/// What the pod knows about itself beyond its object, which fieldRefs can read.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    pub node_name: String,
    pub host_ip: String,
    pub pod_ip: Option<String>,
}

/// The node's allocatable, which a resourceFieldRef reads when the container sets no limit.
#[derive(Clone, Debug, Default)]
pub struct NodeAllocatable {
    pub cpu: Quantity,
    pub memory: Quantity,
    pub ephemeral_storage: Option<Quantity>,
}

impl NodeAllocatable {
    /// From a Node's `status.allocatable`.
    pub fn from_list(allocatable: &BTreeMap<String, Quantity>) -> NodeAllocatable {
        let get = |name: &str| allocatable.get(name).cloned();
        NodeAllocatable {
            cpu: get("cpu").unwrap_or_else(|| Quantity("0".into())),
            memory: get("memory").unwrap_or_else(|| Quantity("0".into())),
            ephemeral_storage: get("ephemeral-storage"),
        }
    }

    /// The resources MergeContainerResourceLimits defaults a missing limit to.
    fn limit_default(&self, resource: &str) -> Option<&Quantity> {
        match resource {
            "cpu" => Some(&self.cpu),
            "memory" => Some(&self.memory),
            "ephemeral-storage" => self.ephemeral_storage.as_ref(),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DownwardError {
    #[error("container {0} not found")]
    ContainerNotFound(String),
    /// Go's text, its space before the colon included.
    #[error("unsupported container resource : {0}")]
    UnsupportedResource(String),
    #[error("invalid quantity {value:?} for resource {resource}")]
    Quantity { resource: String, value: String },
}

/// The value of a fieldRef path (kubelet's podFieldSelectorRuntimeValue and
/// fieldpath.ExtractFieldPathAsString); an unknown path reads as empty.
pub fn field_value(pod: &Pod, facts: &PodFacts, path: &str) -> String {
    let meta = &pod.metadata;
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(key) = subscript("metadata.labels['") {
        return meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&key).cloned())
            .unwrap_or_default();
    }
    if let Some(key) = subscript("metadata.annotations['") {
        return meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(&key).cloned())
            .unwrap_or_default();
    }
    let spec = pod.spec.as_ref();
    match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => facts.node_name.clone(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone().unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        _ => String::new(),
    }
}

/// fieldpath.FormatMap: `key="value"` lines in key order, values quoted as Go's %q.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of a resourceFieldRef (kubelet's containerResourceRuntimeValue): the named
/// container's request or limit divided by the divisor, rounded up; an unset cpu, memory or
/// ephemeral-storage limit reads as the node's allocatable. `container_name` is the
/// container whose environment is made, used when the selector names none.
pub fn resource_field_value(
    pod: &Pod,
    container_name: &str,
    selector: &ResourceFieldSelector,
    allocatable: &NodeAllocatable,
) -> Result<String, DownwardError> {
    let name = selector
        .container_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(container_name);
    let container =
        find_container(pod, name).ok_or_else(|| DownwardError::ContainerNotFound(name.into()))?;
    let unsupported = || DownwardError::UnsupportedResource(selector.resource.clone());
    let (kind, resource) = selector.resource.split_once('.').ok_or_else(unsupported)?;
    let standard = matches!(resource, "cpu" | "memory" | "ephemeral-storage");
    if !standard && !resource.starts_with("hugepages-") {
        return Err(unsupported());
    }
    let resources = container.resources.as_ref();
    let amount = match kind {
        "limits" => {
            let set = resources
                .and_then(|r| r.limits.as_ref())
                .and_then(|l| l.get(resource));
            let set = set.filter(|q| !parse(resource, q).is_ok_and(|q| q.is_zero()));
            set.or_else(|| allocatable.limit_default(resource))
        }
        "requests" => resources
            .and_then(|r| r.requests.as_ref())
            .and_then(|l| l.get(resource)),
        _ => return Err(unsupported()),
    };
    let amount = match amount {
        Some(q) => parse(resource, q)?,
        None => "0".parse().expect("the quantity 0"),
    };
    let divisor = match selector
        .divisor
        .as_ref()
        .map(|d| parse(resource, d))
        .transpose()?
    {
        Some(d) if !d.is_zero() => d,
        _ => "1".parse().expect("the quantity 1"),
    };
    let units = |q: &Exact| {
        if resource == "cpu" {
            q.milli_value()
        } else {
            q.value()
        }
    };
    let overflow = || DownwardError::Quantity {
        resource: resource.into(),
        value: amount.to_string(),
    };
    let (amount, divisor) = (
        units(&amount).ok_or_else(overflow)?,
        units(&divisor).ok_or_else(overflow)?,
    );
    Ok(ceil_div(amount, divisor.max(1)).to_string())
}

fn parse(resource: &str, quantity: &Quantity) -> Result<Exact, DownwardError> {
    quantity.0.parse().map_err(|_| DownwardError::Quantity {
        resource: resource.into(),
        value: quantity.0.clone(),
    })
}

/// Go's `int64(math.Ceil(float64(a) / float64(b)))` for a positive `b`.
fn ceil_div(a: i128, b: i128) -> i128 {
    let quotient = a.div_euclid(b);
    quotient + i128::from(a.rem_euclid(b) != 0)
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u",
                         "labels": {"app": "x", "tier": "be"}, "annotations": {"a/b": "y\"z"}},
            "spec": {"serviceAccountName": "builder", "containers": [
                {"name": "app", "resources": resources},
                {"name": "side"}
            ]}
        }))
        .unwrap()
    }

    fn facts() -> PodFacts {
        PodFacts {
            node_name: "node".into(),
            host_ip: "10.0.0.1".into(),
            pod_ip: Some("10.42.0.2".into()),
        }
    }

    fn allocatable() -> NodeAllocatable {
        NodeAllocatable {
            cpu: Quantity("4".into()),
            memory: Quantity("8Gi".into()),
            ephemeral_storage: Some(Quantity("100Gi".into())),
        }
    }

    fn value(pod: &Pod, container: &str, resource: &str, divisor: Option<&str>) -> String {
        let selector = ResourceFieldSelector {
            container_name: None,
            resource: resource.into(),
            divisor: divisor.map(|d| Quantity(d.into())),
        };
        resource_field_value(pod, container, &selector, &allocatable()).unwrap()
    }

    #[test]
    fn field_refs_read_the_pod_and_its_facts() {
        let pod = pod(json!({}));
        let facts = facts();
        let read = |path| field_value(&pod, &facts, path);
        assert_eq!(read("metadata.name"), "web");
        assert_eq!(read("metadata.namespace"), "ns");
        assert_eq!(read("metadata.uid"), "u");
        assert_eq!(read("metadata.labels['app']"), "x");
        assert_eq!(read("metadata.labels['missing']"), "");
        assert_eq!(read("metadata.annotations['a/b']"), "y\"z");
        assert_eq!(read("metadata.labels"), "app=\"x\"\ntier=\"be\"");
        assert_eq!(read("metadata.annotations"), "a/b=\"y\\\"z\"");
        assert_eq!(read("spec.nodeName"), "node");
        assert_eq!(read("spec.serviceAccountName"), "builder");
        assert_eq!(read("status.podIP"), "10.42.0.2");
        assert_eq!(read("status.hostIPs"), "10.0.0.1");
    }

    #[test]
    fn resource_values_divide_and_round_up_as_kubernetes() {
        let pod = pod(json!({
            "limits": {"cpu": "1250m", "memory": "64Mi"},
            "requests": {"cpu": "250m", "memory": "32Mi"}
        }));
        assert_eq!(value(&pod, "app", "limits.cpu", None), "2");
        assert_eq!(value(&pod, "app", "limits.cpu", Some("1m")), "1250");
        assert_eq!(value(&pod, "app", "requests.cpu", None), "1");
        assert_eq!(value(&pod, "app", "requests.cpu", Some("1m")), "250");
        assert_eq!(value(&pod, "app", "limits.memory", None), "67108864");
        assert_eq!(value(&pod, "app", "limits.memory", Some("1Mi")), "64");
        assert_eq!(value(&pod, "app", "requests.memory", Some("1M")), "34");
        assert_eq!(value(&pod, "app", "requests.memory", Some("0")), "33554432");
    }

    #[test]
    fn unset_limits_read_the_node_allocatable_and_unset_requests_zero() {
        let pod = pod(json!({}));
        assert_eq!(value(&pod, "side", "limits.cpu", None), "4");
        assert_eq!(value(&pod, "side", "limits.cpu", Some("1m")), "4000");
        assert_eq!(value(&pod, "side", "limits.memory", Some("1Mi")), "8192");
        assert_eq!(
            value(&pod, "side", "limits.ephemeral-storage", Some("1Gi")),
            "100"
        );
        assert_eq!(value(&pod, "side", "requests.cpu", None), "0");
        assert_eq!(value(&pod, "side", "limits.hugepages-2Mi", None), "0");
    }

    #[test]
    fn the_selector_may_name_another_container_and_bad_ones_fail() {
        let pod = pod(json!({"limits": {"memory": "1Gi"}}));
        let mut selector = ResourceFieldSelector {
            container_name: Some("app".into()),
            resource: "limits.memory".into(),
            divisor: Some(Quantity("1Gi".into())),
        };
        let read =
            |s: &ResourceFieldSelector| resource_field_value(&pod, "side", s, &allocatable());
        assert_eq!(read(&selector).unwrap(), "1");
        selector.container_name = Some("nope".into());
        assert_eq!(
            read(&selector).unwrap_err().to_string(),
            "container nope not found"
        );
        selector.container_name = None;
        selector.resource = "limits.nvidia.com/gpu".into();
        assert_eq!(
            read(&selector).unwrap_err().to_string(),
            "unsupported container resource : limits.nvidia.com/gpu"
        );
    }
}
