//! Kubernetes' pod QoS classes (BestEffort, Burstable, Guaranteed) from requests and limits.

use k8s_openapi::api::core::v1::PodSpec;

/// Kubernetes' QoS class from the containers' requests and limits.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let mut any = false;
    let mut guaranteed = true;
    for container in containers {
        let resources = container.resources.clone().unwrap_or_default();
        let limits = resources.limits.unwrap_or_default();
        let requests = resources.requests.unwrap_or_default();
        if !limits.is_empty() || !requests.is_empty() {
            any = true;
        }
        for resource in ["cpu", "memory"] {
            // Compared as amounts, not text: requests 1000m and limits 1 are equal.
            let amount = |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| {
                q.0.parse::<crate::quantity::Quantity>().ok()
            };
            let limit = limits.get(resource).and_then(amount);
            let request = requests.get(resource).and_then(amount).or(limit.clone());
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        let spec = |v: serde_json::Value| -> PodSpec { serde_json::from_value(v).unwrap() };
        assert_eq!(
            qos_class(&spec(serde_json::json!({"containers": [{"name": "a"}]}))),
            "BestEffort"
        );
        let g = spec(serde_json::json!({"containers": [{"name": "a", "resources":
            {"limits": {"cpu": "1", "memory": "1Gi"}}}]}));
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = spec(serde_json::json!({"containers": [{"name": "a", "resources":
            {"requests": {"cpu": "1"}}}]}));
        assert_eq!(qos_class(&b), "Burstable");
        let same = spec(
            serde_json::json!({"containers": [{"name": "a", "resources": {
            "requests": {"cpu": "1000m", "memory": "1Gi"},
            "limits": {"cpu": "1", "memory": "1024Mi"}}}]}),
        );
        assert_eq!(qos_class(&same), "Guaranteed");
    }
}
