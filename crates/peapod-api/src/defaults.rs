//! Kubernetes defaulting as the API server applies it on create
//! (`pkg/apis/core/v1/defaults.go` and the declarative defaults). Idempotent.

use k8s_openapi::api::core::v1::{
    Container, HTTPGetAction, Lifecycle, LifecycleHandler, Pod, PodSecurityContext, PodSpec, Probe,
    ResourceRequirements, Volume,
};

pub const DEFAULT_NAMESPACE: &str = "default";
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// 0644, the default mode of secret, configMap, downwardAPI and projected volumes.
const DEFAULT_VOLUME_MODE: i32 = 0o644;

fn set_if_none<T>(field: &mut Option<T>, value: impl FnOnce() -> T) {
    if field.is_none() {
        *field = Some(value());
    }
}

fn set_str_if_empty(field: &mut Option<String>, value: &str) {
    if field.as_deref().unwrap_or_default().is_empty() {
        *field = Some(value.to_string());
    }
}

/// Applies SetDefaults_Pod, SetDefaults_PodSpec and the defaults of everything in it;
/// also sets `metadata.namespace` to `default` when missing.
pub fn default_pod(pod: &mut Pod) {
    set_str_if_empty(&mut pod.metadata.namespace, DEFAULT_NAMESPACE);
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    default_pod_spec(spec);
    // SetDefaults_Pod: these apply to pods only, never to the pod templates of workloads.
    set_if_none(&mut spec.enable_service_links, || true);
    let host_network = spec.host_network == Some(true);
    let containers = spec.containers.iter_mut();
    for c in containers.chain(spec.init_containers.iter_mut().flatten()) {
        default_requests_from_limits(c);
        if host_network {
            default_host_network_ports(c);
        }
    }
}

/// SetDefaults_PodSpec and the defaults of everything in it: what a workload's pod template
/// spec gets (a pod gets these and SetDefaults_Pod's, see [`default_pod`]).
pub fn default_pod_spec(spec: &mut PodSpec) {
    set_str_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_str_if_empty(&mut spec.restart_policy, "Always");
    set_if_none(&mut spec.security_context, PodSecurityContext::default);
    set_if_none(&mut spec.termination_grace_period_seconds, || {
        DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
    });
    set_str_if_empty(&mut spec.scheduler_name, DEFAULT_SCHEDULER_NAME);
    let containers = spec.containers.iter_mut();
    for c in containers.chain(spec.init_containers.iter_mut().flatten()) {
        default_container(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
}

fn default_container(c: &mut Container) {
    if c.image_pull_policy
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        let policy = default_pull_policy(c.image.as_deref().unwrap_or_default());
        c.image_pull_policy = Some(policy.to_string());
    }
    set_str_if_empty(&mut c.termination_message_path, TERMINATION_MESSAGE_PATH);
    set_str_if_empty(&mut c.termination_message_policy, "File");
    set_if_none(&mut c.resources, ResourceRequirements::default);
    for port in c.ports.iter_mut().flatten() {
        set_str_if_empty(&mut port.protocol, "TCP");
    }
    for var in c.env.iter_mut().flatten() {
        let field_ref = var.value_from.as_mut().and_then(|f| f.field_ref.as_mut());
        if let Some(field_ref) = field_ref {
            set_str_if_empty(&mut field_ref.api_version, "v1");
        }
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ] {
        probe.as_mut().map(default_probe);
    }
    if let Some(lifecycle) = &mut c.lifecycle {
        default_lifecycle(lifecycle);
    }
}

/// `Always` for `:latest` or no tag, else `IfNotPresent` (digests included).
pub fn default_pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag an image reference resolves to: the explicit tag, `latest` when there is
/// neither tag nor digest, `None` for a digest-only reference or an empty image.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => Some(tag.to_string()),
        None if digest.is_some() => None,
        None => Some("latest".to_string()),
    }
}

/// SetDefaults_Pod: requests default to limits for resources with no request.
fn default_requests_from_limits(c: &mut Container) {
    let Some(resources) = &mut c.resources else {
        return;
    };
    let Some(limits) = &resources.limits else {
        return;
    };
    let requests = resources.requests.get_or_insert_with(Default::default);
    for (name, value) in limits {
        requests
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
}

fn default_host_network_ports(c: &mut Container) {
    for port in c.ports.iter_mut().flatten() {
        if port.host_port.unwrap_or(0) == 0 {
            port.host_port = Some(port.container_port);
        }
    }
}

fn default_probe(probe: &mut Probe) {
    let zero_to = |field: &mut Option<i32>, value: i32| {
        if field.unwrap_or(0) == 0 {
            *field = Some(value);
        }
    };
    zero_to(&mut probe.timeout_seconds, 1);
    zero_to(&mut probe.period_seconds, 10);
    zero_to(&mut probe.success_threshold, 1);
    zero_to(&mut probe.failure_threshold, 3);
    if let Some(http) = &mut probe.http_get {
        default_http_get(http);
    }
}

fn default_lifecycle(lifecycle: &mut Lifecycle) {
    let handlers = [&mut lifecycle.post_start, &mut lifecycle.pre_stop];
    for handler in handlers.into_iter().flatten() {
        let LifecycleHandler { http_get, .. } = handler;
        if let Some(http) = http_get {
            default_http_get(http);
        }
    }
}

fn default_http_get(http: &mut HTTPGetAction) {
    set_str_if_empty(&mut http.path, "/");
    set_str_if_empty(&mut http.scheme, "HTTP");
}

fn default_volume(v: &mut Volume) {
    if !has_source(v) {
        v.empty_dir = Some(Default::default());
    }
    if let Some(host_path) = &mut v.host_path {
        set_if_none(&mut host_path.type_, String::new);
    }
    if let Some(secret) = &mut v.secret {
        set_if_none(&mut secret.default_mode, || DEFAULT_VOLUME_MODE);
    }
    if let Some(config_map) = &mut v.config_map {
        set_if_none(&mut config_map.default_mode, || DEFAULT_VOLUME_MODE);
    }
    if let Some(downward) = &mut v.downward_api {
        set_if_none(&mut downward.default_mode, || DEFAULT_VOLUME_MODE);
        default_downward_items(downward.items.iter_mut().flatten());
    }
    if let Some(projected) = &mut v.projected {
        set_if_none(&mut projected.default_mode, || DEFAULT_VOLUME_MODE);
        for source in projected.sources.iter_mut().flatten() {
            if let Some(downward) = &mut source.downward_api {
                default_downward_items(downward.items.iter_mut().flatten());
            }
            if let Some(token) = &mut source.service_account_token {
                set_if_none(&mut token.expiration_seconds, || 3600);
            }
        }
    }
}

/// SetDefaults_ObjectFieldSelector: a fieldRef's apiVersion is v1.
fn default_downward_items<'a>(
    items: impl Iterator<Item = &'a mut k8s_openapi::api::core::v1::DownwardAPIVolumeFile>,
) {
    for item in items {
        if let Some(field_ref) = &mut item.field_ref {
            set_str_if_empty(&mut field_ref.api_version, "v1");
        }
    }
}

/// Whether any volume source is set (everything but `name` is a source).
fn has_source(v: &Volume) -> bool {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().any(|k| k != "name"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn bare() -> Pod {
        pod(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
    }

    #[test]
    fn bare_pod_gets_api_server_defaults() {
        let mut p = bare();
        default_pod(&mut p);
        let got = serde_json::to_value(&p).unwrap();
        let want = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {
                "containers": [{
                    "name": "c", "image": "busybox",
                    "imagePullPolicy": "Always",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst",
                "enableServiceLinks": true,
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30
            }
        });
        assert_eq!(got, want);
    }

    #[test]
    fn defaulting_is_idempotent() {
        let mut once = bare();
        default_pod(&mut once);
        let mut twice = once.clone();
        default_pod(&mut twice);
        assert_eq!(once, twice);
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(
            default_pull_policy("localhost:5000/nginx:1"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("nginx@sha256:abc"), "IfNotPresent");
        assert_eq!(default_pull_policy("nginx:latest@sha256:abc"), "Always");
        assert_eq!(default_pull_policy(""), "IfNotPresent");
    }

    #[test]
    fn nested_defaults() {
        let mut p = pod(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "ns"},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "i", "image": "x:1", "imagePullPolicy": "Never"}],
                "containers": [{
                    "name": "c", "image": "x:1",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Mi"}},
                    "livenessProbe": {"httpGet": {"port": 80}}
                }],
                "volumes": [
                    {"name": "empty"},
                    {"name": "host", "hostPath": {"path": "/tmp"}},
                    {"name": "cm", "configMap": {"name": "x"}},
                    {"name": "p", "projected": {"sources": [
                        {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                        {"serviceAccountToken": {"path": "t"}}
                    ]}}
                ]
            }
        }));
        default_pod(&mut p);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["metadata"]["namespace"], "ns");
        assert_eq!(v["spec"]["restartPolicy"], "Never");
        assert_eq!(v["spec"]["initContainers"][0]["imagePullPolicy"], "Never");
        let c = &v["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Mi"})
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        let vols = &v["spec"]["volumes"];
        assert_eq!(vols[0]["emptyDir"], json!({}));
        assert_eq!(vols[1]["hostPath"]["type"], "");
        assert_eq!(vols[2]["configMap"]["defaultMode"], 420);
        let projected = &vols[3]["projected"];
        assert_eq!(projected["defaultMode"], 420);
        let field_ref = &projected["sources"][0]["downwardAPI"]["items"][0]["fieldRef"];
        assert_eq!(field_ref["apiVersion"], "v1");
        assert_eq!(
            projected["sources"][1]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
    }

    #[test]
    fn host_network_ports() {
        let mut p = pod(json!({"apiVersion": "v1", "kind": "Pod", "spec": {
            "hostNetwork": true,
            "containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]
        }}));
        default_pod(&mut p);
        let port = &p.spec.unwrap().containers[0].ports.clone().unwrap()[0];
        assert_eq!(port.host_port, Some(8080));
    }

    /// kube's SetDefaults_Pod runs on pods only: a template's spec keeps its requests, host
    /// ports and enableServiceLinks unset.
    #[test]
    fn a_pod_template_spec_gets_the_pod_spec_defaults_only() {
        let mut spec: PodSpec = serde_json::from_value(json!({
            "hostNetwork": true,
            "containers": [{"name": "c", "image": "busybox",
                            "ports": [{"containerPort": 8080}],
                            "resources": {"limits": {"cpu": "1"}}}]
        }))
        .unwrap();
        default_pod_spec(&mut spec);
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["restartPolicy"], "Always");
        assert_eq!(v["dnsPolicy"], "ClusterFirst");
        assert_eq!(v["terminationGracePeriodSeconds"], 30);
        assert_eq!(v["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(v["containers"][0]["ports"][0]["protocol"], "TCP");
        assert!(v.get("enableServiceLinks").is_none());
        assert!(v["containers"][0]["ports"][0].get("hostPort").is_none());
        assert!(v["containers"][0]["resources"].get("requests").is_none());
    }
}
