//! The API server's own warnings for a (defaulted) pod, from Kubernetes'
//! `pkg/api/pod/warnings.go`: duplicate or overlapping ports, env vars hiding an
//! earlier definition, duplicate host alias IPs.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod};

use crate::validation::FieldPath;

/// Warnings Kubernetes would return when creating `pod`.
pub fn pod_warnings(pod: &Pod) -> Vec<String> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let mut out = Vec::new();
    host_alias_warnings(spec.host_aliases.as_deref().unwrap_or_default(), &mut out);
    let containers = containers_with_paths(spec);
    for (c, path) in &containers {
        env_warnings(c, path, &mut out);
    }
    port_warnings(&containers, &mut out);
    out
}

/// Init containers first, then containers, as Kubernetes visits them.
fn containers_with_paths(
    spec: &k8s_openapi::api::core::v1::PodSpec,
) -> Vec<(&Container, FieldPath)> {
    let spec_path = FieldPath::new("spec");
    let init = spec.init_containers.iter().flatten().enumerate();
    let init = init.map(|(i, c)| (c, spec_path.child("initContainers").index(i)));
    let regular = spec.containers.iter().enumerate();
    let regular = regular.map(|(i, c)| (c, spec_path.child("containers").index(i)));
    init.chain(regular).collect()
}

fn host_alias_warnings(aliases: &[k8s_openapi::api::core::v1::HostAlias], out: &mut Vec<String>) {
    let mut seen = HashSet::new();
    for (i, alias) in aliases.iter().enumerate() {
        if !seen.insert(alias.ip.as_str()) {
            let path = FieldPath::new("spec")
                .child("hostAliases")
                .index(i)
                .child("ip");
            out.push(format!("{path}: duplicate ip {:?}", alias.ip));
        }
    }
}

fn env_warnings(c: &Container, path: &FieldPath, out: &mut Vec<String>) {
    let mut seen = HashSet::new();
    for (i, var) in c.env.iter().flatten().enumerate() {
        if seen.insert(var.name.as_str()) {
            continue;
        }
        let reference = format!("$({})", var.name);
        let value = var.value.as_deref().unwrap_or_default();
        let hides = var.value_from.is_some() || value == reference || !value.contains(&reference);
        if hides {
            out.push(format!(
                "{}: hides previous definition of {:?}, which may be dropped when using apply",
                path.child("env").index(i),
                var.name
            ));
        }
    }
}

fn port_warnings(containers: &[(&Container, FieldPath)], out: &mut Vec<String>) {
    let mut seen: BTreeMap<String, Vec<(FieldPath, &ContainerPort)>> = BTreeMap::new();
    for (c, path) in containers {
        for (i, port) in c.ports.iter().flatten().enumerate() {
            let here = path.child("ports").index(i);
            let host_port = port.host_port.unwrap_or(0);
            let host_ip = port.host_ip.as_deref().unwrap_or_default();
            if !host_ip.is_empty() && host_port == 0 {
                out.push(format!(
                    "{here}: hostIP set without hostPort: {}",
                    describe(port)
                ));
            }
            let key = format!(
                "{}/{}",
                port.container_port,
                port.protocol.as_deref().unwrap_or_default()
            );
            let others = seen.entry(key).or_default();
            for (other_path, other) in others.iter() {
                let other_host_port = other.host_port.unwrap_or(0);
                if host_ip == other.host_ip.as_deref().unwrap_or_default()
                    && host_port == other_host_port
                {
                    out.push(format!(
                        "{here}: duplicate port definition with {other_path}"
                    ));
                } else if host_port == 0 || other_host_port == 0 {
                    out.push(format!(
                        "{here}: overlapping port definition with {other_path}"
                    ));
                }
            }
            others.push((here, port));
        }
    }
}

/// Go's `%+v` of a ContainerPort.
fn describe(p: &ContainerPort) -> String {
    format!(
        "{{Name:{} HostPort:{} ContainerPort:{} Protocol:{} HostIP:{}}}",
        p.name.as_deref().unwrap_or_default(),
        p.host_port.unwrap_or(0),
        p.container_port,
        p.protocol.as_deref().unwrap_or_default(),
        p.host_ip.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "spec": spec})).unwrap()
    }

    #[test]
    fn duplicate_and_overlapping_ports() {
        let p = pod(json!({
            "initContainers": [{"name": "i", "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
            "containers": [{"name": "c", "ports": [
                {"containerPort": 80, "protocol": "TCP"},
                {"containerPort": 80, "protocol": "TCP", "hostPort": 8080},
                {"containerPort": 80, "protocol": "UDP"}
            ]}]
        }));
        assert_eq!(
            pod_warnings(&p),
            vec![
                "spec.containers[0].ports[0]: duplicate port definition with spec.initContainers[0].ports[0]",
                "spec.containers[0].ports[1]: overlapping port definition with spec.initContainers[0].ports[0]",
                "spec.containers[0].ports[1]: overlapping port definition with spec.containers[0].ports[0]",
            ]
        );
    }

    #[test]
    fn host_ip_without_host_port() {
        let p = pod(json!({"containers": [{"name": "c", "ports": [
            {"containerPort": 80, "protocol": "TCP", "hostIP": "127.0.0.1"}
        ]}]}));
        assert_eq!(
            pod_warnings(&p),
            vec!["spec.containers[0].ports[0]: hostIP set without hostPort: {Name: HostPort:0 ContainerPort:80 Protocol:TCP HostIP:127.0.0.1}"]
        );
    }

    #[test]
    fn env_hiding_previous_definition() {
        let p = pod(json!({"containers": [{"name": "c", "env": [
            {"name": "A", "value": "1"},
            {"name": "A", "value": "$(A)-suffix"},
            {"name": "A", "value": "2"}
        ]}], "hostAliases": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.1"}]}));
        assert_eq!(
            pod_warnings(&p),
            vec![
                "spec.hostAliases[1].ip: duplicate ip \"10.0.0.1\"",
                "spec.containers[0].env[2]: hides previous definition of \"A\", which may be dropped when using apply",
            ]
        );
    }
}
