//! Pod validation with Kubernetes' field paths and messages: `validate_pod`
//! (ValidatePodCreate, after defaulting) and `validate_pod_update` (ValidatePodUpdate).

mod api_data_volume;
mod container;
mod dns;
mod errors;
mod handlers;
pub mod meta;
pub mod names;
mod path;
mod resources;
mod runtime;
mod security;
mod spec;
mod update;
mod volume;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use errors::{go_quote, BadValue, ErrorKind, FieldError, ValidationErrors};
pub use path::FieldPath;
pub use resources::name_errors as container_resource_name_errors;
pub use security::{dotted_sysctl_name, is_known_capability, LINUX_CAPABILITIES};
pub use spec::{DNS_POLICIES, RESTART_POLICIES};
pub use volume::{no_backsteps, validate_host_path, HOST_PATH_TYPES};

use crate::quantity::{Quantity, QUANTITY_FORMAT_ERROR};

/// Validates a pod as the API server does on create; call after defaulting.
pub fn validate_pod(pod: &Pod) -> Result<(), ValidationErrors> {
    ValidationErrors::check("Pod", &display_name(pod), pod_errors(pod))
}

/// ValidatePodUpdate: only images of (init)containers, activeDeadlineSeconds (set or
/// lowered), tolerations additions and metadata labels/annotations may change.
/// Both pods should be defaulted. (`metadata.resourceVersion` is not required.)
pub fn validate_pod_update(new: &Pod, old: &Pod) -> Result<(), ValidationErrors> {
    let meta_path = FieldPath::new("metadata");
    let mut errs = meta::validate_object_meta_update(&new.metadata, &old.metadata, &meta_path);
    errs.extend(pod_errors(new));
    let empty = PodSpec::default();
    let new_spec = new.spec.as_ref().unwrap_or(&empty);
    let old_spec = old.spec.as_ref().unwrap_or(&empty);
    errs.extend(update::validate_spec_update(new_spec, old_spec));
    ValidationErrors::check("Pod", &display_name(new), errs)
}

/// ValidatePodTemplateSpec: a workload's pod template at `path` (`spec.template`), its labels
/// and annotations (at `path.labels`, as kube names them) and its spec as a pod's.
pub fn validate_pod_template_spec(template: &PodTemplateSpec, path: &FieldPath) -> Vec<FieldError> {
    let empty_meta = ObjectMeta::default();
    let meta = template.metadata.as_ref().unwrap_or(&empty_meta);
    let mut errs = meta::validate_labels(meta.labels.as_ref(), &path.child("labels"));
    errs.extend(meta::validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    let empty = PodSpec::default();
    let spec = template.spec.as_ref().unwrap_or(&empty);
    let spec_path = path.child("spec");
    errs.extend(spec::validate_pod_spec(spec, &spec_path));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        errs.push(FieldError::forbidden(
            &spec_path.child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

fn display_name(pod: &Pod) -> String {
    let meta = &pod.metadata;
    meta.name
        .clone()
        .or_else(|| meta.generate_name.clone())
        .unwrap_or_default()
}

fn pod_errors(pod: &Pod) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&pod.metadata, &FieldPath::new("metadata"));
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    errs.extend(spec::validate_pod_spec(spec, &FieldPath::new("spec")));
    errs
}

/// Invalid for a malformed quantity string.
pub(crate) fn quantity_errors(value: &str, path: &FieldPath) -> Vec<FieldError> {
    if value.parse::<Quantity>().is_ok() {
        return Vec::new();
    }
    vec![FieldError::invalid(path, value, QUANTITY_FORMAT_ERROR)]
}

/// Every quantity in a pod with its field path (resources, emptyDir sizeLimit, overhead).
pub(crate) fn pod_quantities(pod: &Pod) -> Vec<(String, String)> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let spec_path = FieldPath::new("spec");
    let mut out = Vec::new();
    let lists = [
        ("containers", spec.containers.as_slice()),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    for (field, containers) in lists {
        for (i, c) in containers.iter().enumerate() {
            container_quantities(c, &spec_path.child(field).index(i), &mut out);
        }
    }
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        if let Some(limit) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
            let path = spec_path
                .child("volumes")
                .index(i)
                .child("emptyDir")
                .child("sizeLimit");
            out.push((path.to_string(), limit.0.clone()));
        }
    }
    for (name, q) in spec.overhead.iter().flatten() {
        out.push((
            spec_path.child("overhead").key(name).to_string(),
            q.0.clone(),
        ));
    }
    out
}

fn container_quantities(c: &Container, path: &FieldPath, out: &mut Vec<(String, String)>) {
    let Some(resources) = &c.resources else {
        return;
    };
    let lists = [
        ("limits", &resources.limits),
        ("requests", &resources.requests),
    ];
    for (field, list) in lists {
        for (name, q) in list.iter().flatten() {
            let p = path.child("resources").child(field).key(name);
            out.push((p.to_string(), q.0.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::default_pod;
    use serde_json::{json, Value};

    /// A defaulted pod from `spec`, named `p` in `default`.
    fn pod(spec: Value) -> Pod {
        let mut p: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec
        }))
        .unwrap();
        default_pod(&mut p);
        p
    }

    fn errors(spec: Value) -> Vec<String> {
        match validate_pod(&pod(spec)) {
            Ok(()) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn container(extra: Value) -> Value {
        let mut c = json!({"name": "c", "image": "busybox"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    fn one_container(extra: Value) -> Vec<String> {
        errors(json!({"containers": [container(extra)]}))
    }

    #[test]
    fn a_sub_path_mount_over_proc_in_an_init_container_is_refused_with_its_field_path() {
        let errs = errors(json!({
            "volumes": [{"name": "v", "emptyDir": {}}],
            "initContainers": [container(json!({
                "name": "init",
                "volumeMounts": [{"name": "v", "mountPath": "/proc/self", "subPath": "x"}]
            }))],
            "containers": [container(json!({}))]
        }));
        assert_eq!(
            errs,
            [
                r#"spec.initContainers[0].volumeMounts[0].mountPath: Invalid value: "/proc/self": must not be /proc or below it: the container runtime mounts procfs there"#
            ]
        );
    }

    #[test]
    fn a_nul_byte_in_a_command_is_refused_with_its_field_path() {
        let errs = one_container(json!({"command": ["sle\u{0}ep", "1"]}));
        assert_eq!(
            errs,
            [
                r#"spec.containers[0].command[0]: Invalid value: "sle\x00ep": must not contain a NUL byte"#
            ]
        );
    }

    #[test]
    fn valid_pod_passes() {
        let errs = errors(json!({
            "containers": [container(json!({
                "ports": [{"name": "http", "containerPort": 80}],
                "env": [{"name": "A", "value": "1"},
                        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}],
                "volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": "x"}],
                "resources": {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "500m"}}
            }))],
            "initContainers": [{"name": "sidecar", "image": "x", "restartPolicy": "Always",
                                "readinessProbe": {"exec": {"command": ["true"]}}}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "activeDeadlineSeconds": 10,
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db.local"]}]
        }));
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn aggregate_message() {
        let p = pod(json!({"containers": [{"name": "c"}, {"name": "c", "image": "x"}]}));
        let e = validate_pod(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"Pod "p" is invalid: [spec.containers[0].image: Required value, spec.containers[1].name: Duplicate value: "c"]"#
        );
    }

    #[test]
    fn needs_a_container() {
        assert_eq!(
            errors(json!({"containers": []})),
            vec!["spec.containers: Required value"]
        );
    }

    #[test]
    fn container_names() {
        let errs = errors(json!({
            "initContainers": [{"name": "web", "image": "x"}, {"name": "Init", "image": "x"}],
            "containers": [{"name": "web", "image": "x"}, {"name": "", "image": "x"}]
        }));
        assert_eq!(errs[0], "spec.containers[1].name: Required value");
        assert_eq!(
            errs[1],
            r#"spec.initContainers[0].name: Duplicate value: "web""#
        );
        assert!(errs[2].starts_with(
            r#"spec.initContainers[1].name: Invalid value: "Init": a lowercase RFC 1123 label"#
        ));
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn image_required_and_trimmed() {
        assert_eq!(
            errors(json!({"containers": [{"name": "c"}]})),
            vec!["spec.containers[0].image: Required value"]
        );
        assert_eq!(
            one_container(json!({"image": " busybox"})),
            vec![
                r#"spec.containers[0].image: Invalid value: " busybox": must not have leading or trailing whitespace"#
            ]
        );
    }

    #[test]
    fn ports() {
        let errs = one_container(json!({"ports": [
            {"containerPort": 0},
            {"containerPort": 70000, "hostPort": 70000},
            {"containerPort": 80, "protocol": "HTTP", "name": "web"},
            {"containerPort": 81, "name": "web"},
            {"containerPort": 82, "name": "Web_Port"}
        ]}));
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].ports[0].containerPort: Required value",
                "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].hostPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                r#"spec.containers[0].ports[2].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP""#,
                r#"spec.containers[0].ports[3].name: Duplicate value: "web""#,
                r#"spec.containers[0].ports[4].name: Invalid value: "Web_Port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
            ]
        );
    }

    #[test]
    fn host_port_conflicts() {
        let errs = errors(json!({"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080},
                                                 {"containerPort": 82, "hostPort": 8080, "protocol": "UDP"}]}
        ]}));
        assert_eq!(
            errs,
            vec![r#"spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080""#]
        );
    }

    #[test]
    fn volumes_and_mounts() {
        let errs = errors(json!({
            "containers": [container(json!({"volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "missing", "mountPath": "/data"},
                {"name": "data", "mountPath": ""},
                {"name": "data", "mountPath": "/a", "subPath": "/abs"},
                {"name": "data", "mountPath": "/b", "subPath": "a/../b"},
                {"name": "data", "mountPath": "/c", "subPath": "x", "subPathExpr": "$(POD)"}
            ]}))],
            "volumes": [{"name": "data", "hostPath": {"path": "/srv"}}]
        }));
        assert_eq!(
            errs,
            vec![
                r#"spec.containers[0].volumeMounts[1].name: Not found: "missing""#,
                r#"spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique"#,
                "spec.containers[0].volumeMounts[2].mountPath: Required value",
                r#"spec.containers[0].volumeMounts.subPath: Invalid value: "/abs": must be a relative path"#,
                r#"spec.containers[0].volumeMounts.subPath: Invalid value: "a/../b": must not contain '..'"#,
                r#"spec.containers[0].volumeMounts[5].subPathExpr: Invalid value: "$(POD)": subPathExpr and subPath are mutually exclusive"#,
            ]
        );
    }

    #[test]
    fn mounts_of_invalid_volumes_are_not_found() {
        let errs = errors(json!({
            "containers": [container(json!({"volumeMounts": [{"name": "v", "mountPath": "/v"}]}))],
            "volumes": [{"name": "v", "hostPath": {"path": "/x", "type": "Nope"}}]
        }));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(
            errs[1],
            r#"spec.containers[0].volumeMounts[0].name: Not found: "v""#
        );
    }

    #[test]
    fn restart_and_dns_policies() {
        let errs = errors(json!({"containers": [container(json!({}))],
                                 "restartPolicy": "Sometimes", "dnsPolicy": "Google"}));
        assert_eq!(
            errs,
            vec![
                r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
                r#"spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None""#,
            ]
        );
    }

    #[test]
    fn container_restart_policy_only_always_on_init() {
        let errs = errors(json!({
            "containers": [container(json!({"restartPolicy": "Always"}))],
            "initContainers": [{"name": "i", "image": "x", "restartPolicy": "OnFailure"}]
        }));
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers",
                r#"spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always""#,
            ]
        );
    }

    #[test]
    fn probes_not_allowed_on_regular_init_containers() {
        let errs = errors(json!({
            "containers": [container(json!({}))],
            "initContainers": [{"name": "i", "image": "x",
                                "livenessProbe": {"exec": {"command": ["true"]}},
                                "lifecycle": {"postStart": {"exec": {"command": ["true"]}}}}]
        }));
        assert_eq!(
            errs,
            vec![
                "spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always",
                "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
            ]
        );
    }

    #[test]
    fn probe_rules_on_regular_containers() {
        let errs = one_container(json!({
            "livenessProbe": {"successThreshold": 2, "exec": {"command": ["x"]}},
            "readinessProbe": {"periodSeconds": -1}
        }));
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.containers[0].readinessProbe: Required value: must specify a handler type",
                "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn handlers_and_security_contexts_are_checked_in_pod_order() {
        let errs = errors(json!({
            "terminationGracePeriodSeconds": 10,
            "hostNetwork": true,
            "securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
            "containers": [container(json!({
                "securityContext": {"runAsUser": -1},
                "lifecycle": {"preStop": {"sleep": {"seconds": 20}}},
                "livenessProbe": {"httpGet": {"port": "web"}}
            }))],
            "initContainers": [{"name": "side", "image": "x", "restartPolicy": "Always",
                                "securityContext": {"procMount": "Unmasked"},
                                "readinessProbe": {"exec": {"command": []}}}]
        }));
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
                "spec.containers[0].lifecycle.preStop.sleep: Invalid value: 20: must be non-negative and less than terminationGracePeriodSeconds (10)",
                r#"spec.containers[0].livenessProbe.httpGet.port: Invalid value: "web": must be a port number or the name of one of the container's ports"#,
                r#"spec.initContainers[0].securityContext.procMount: Invalid value: "Unmasked": `hostUsers` must be false to use `Unmasked`"#,
                "spec.initContainers[0].readinessProbe.exec.command: Required value",
                r#"spec.securityContext.sysctls[0].name: Invalid value: "net.core.somaxconn": may not be specified when 'hostNetwork' is true"#,
            ]
        );
    }

    #[test]
    fn unsafe_but_valid_sysctls_pass_the_api() {
        let errs = errors(json!({"containers": [container(json!({}))],
            "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}));
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn grace_period_and_deadline() {
        let errs = errors(json!({"containers": [container(json!({}))],
                                 "terminationGracePeriodSeconds": -1, "activeDeadlineSeconds": 0}));
        assert_eq!(
            errs,
            vec![
                "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0",
                "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
            ]
        );
        let mut p = pod(json!({"containers": [container(json!({}))]}));
        p.spec.as_mut().unwrap().termination_grace_period_seconds = None;
        let e = validate_pod(&p).unwrap_err();
        assert_eq!(
            e.errors[0].to_string(),
            "spec.terminationGracePeriodSeconds: Required value"
        );
    }

    #[test]
    fn env_names_and_sources() {
        let errs = one_container(json!({"env": [
            {"name": "1=BAD"},
            {"name": ""},
            {"name": "A", "valueFrom": {}},
            {"name": "B", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"},
                                        "secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "spec.schedulerName"}}},
            {"name": "E", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}
        ]}));
        assert_eq!(
            errs,
            vec![
                r#"spec.containers[0].env[0].name: Invalid value: "1=BAD": a valid environment variable name must consist only of printable ASCII characters other than '='"#,
                "spec.containers[0].env[1].name: Required value",
                r#"spec.containers[0].env[1].name: Invalid value: "": environment variable name must be non-empty"#,
                r#"spec.containers[0].env[2].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"#,
                r#"spec.containers[0].env[3].valueFrom: Invalid value: "": may not be specified when `value` is not empty"#,
                r#"spec.containers[0].env[4].valueFrom: Invalid value: "": may not have more than one field specified at a time"#,
                r#"spec.containers[0].env[5].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.schedulerName": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs""#,
                r#"spec.containers[0].env[6].valueFrom.fieldRef.fieldPath: Invalid value: "spec.bogus": error converting fieldPath: field label not supported: spec.bogus"#,
            ]
        );
    }

    #[test]
    fn env_from_prefixes_and_sources() {
        let errs = one_container(json!({"envFrom": [
            {"prefix": "1 relaxed-", "configMapRef": {"name": "cm"}},
            {"prefix": "A=", "secretRef": {"name": "Bad_Name"}},
            {},
            {"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}
        ]}));
        assert_eq!(
            errs,
            vec![
                r#"spec.containers[0].envFrom[1].prefix: Invalid value: "A=": a valid environment variable name must consist only of printable ASCII characters other than '='"#,
                r#"spec.containers[0].envFrom[1].secretRef.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                r#"spec.containers[0].envFrom: Invalid value: "": must specify one of: `configMapRef` or `secretRef`"#,
                "spec.containers[0].envFrom: Forbidden: may not have more than one field specified at a time",
            ]
        );
    }

    #[test]
    fn resources_limit_at_least_request() {
        let errs = one_container(json!({"resources": {
            "limits": {"cpu": "500m", "memory": "1Gi", "gpu": "1"},
            "requests": {"cpu": "1", "memory": "1073741824", "example.com/dev": "-1"}
        }}));
        assert_eq!(
            errs,
            vec![
                r#"spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource type or fully qualified"#,
                r#"spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource for containers"#,
                r#"spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal to cpu limit of 500m"#,
                r#"spec.containers[0].resources.requests[example.com/dev]: Invalid value: "-1": must be greater than or equal to 0"#,
                "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
                // Defaulting copied the gpu limit into requests.
                r#"spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource type or fully qualified"#,
                r#"spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource for containers"#,
            ]
        );
        let errs = one_container(
            json!({"resources": {"limits": {"memory": "1e3"}, "requests": {"memory": "1k"}}}),
        );
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn hugepages_request_must_equal_limit() {
        let errs = one_container(json!({"resources": {
            "limits": {"hugepages-2Mi": "4Mi", "memory": "1Gi"}, "requests": {"hugepages-2Mi": "2Mi"}
        }}));
        assert_eq!(
            errs,
            vec![
                r#"spec.containers[0].resources.requests: Invalid value: "2Mi": must be equal to hugepages-2Mi limit of 4Mi"#
            ]
        );
    }

    #[test]
    fn malformed_quantity_is_invalid() {
        let errs = one_container(json!({"resources": {"requests": {"cpu": "x"}}}));
        assert_eq!(
            errs,
            vec![format!(
                r#"spec.containers[0].resources.requests[cpu]: Invalid value: "x": {QUANTITY_FORMAT_ERROR}"#
            )]
        );
    }

    #[test]
    fn spec_names_and_host_aliases() {
        let errs = errors(json!({"containers": [container(json!({}))],
            "hostname": "a.b", "subdomain": "ok", "nodeName": "Node_1",
            "hostAliases": [{"ip": "300.1.1.1", "hostnames": ["ok.local", "Bad_Host"]}]}));
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with(r#"spec.nodeName: Invalid value: "Node_1""#));
        assert_eq!(
            errs[1],
            r#"spec.hostname: Invalid value: "a.b": must not contain dots"#
        );
        assert_eq!(
            errs[2],
            r#"spec.hostAliases[0].ip: Invalid value: "300.1.1.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#
        );
        assert!(
            errs[3].starts_with(r#"spec.hostAliases[0].hostnames[1]: Invalid value: "Bad_Host""#)
        );
    }

    #[test]
    fn metadata_is_validated() {
        let mut p = pod(json!({"containers": [container(json!({}))]}));
        p.metadata.name = Some("Bad".to_string());
        let e = validate_pod(&p).unwrap_err();
        assert_eq!(e.name, "Bad");
        assert!(e.errors[0]
            .to_string()
            .starts_with(r#"metadata.name: Invalid value: "Bad""#));
    }

    #[test]
    fn undefaulted_fields_are_required() {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}))
        .unwrap();
        let errs: Vec<String> = validate_pod(&p)
            .unwrap_err()
            .errors
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "metadata.namespace: Required value",
                "spec.terminationGracePeriodSeconds: Required value",
                "spec.containers[0].terminationMessagePolicy: Required value",
                "spec.containers[0].imagePullPolicy: Required value",
                "spec.restartPolicy: Required value",
                "spec.dnsPolicy: Required value",
            ]
        );
    }

    fn update_errors(old: &Pod, change: impl FnOnce(&mut Pod)) -> Vec<String> {
        let mut new = old.clone();
        change(&mut new);
        match validate_pod_update(&new, old) {
            Ok(()) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn running() -> Pod {
        pod(json!({
            "containers": [container(json!({}))],
            "initContainers": [{"name": "i", "image": "x"}],
            "activeDeadlineSeconds": 100,
            "tolerations": [{"key": "k", "operator": "Exists"}]
        }))
    }

    fn spec_mut(p: &mut Pod) -> &mut PodSpec {
        p.spec.as_mut().unwrap()
    }

    #[test]
    fn update_allows_images_deadline_tolerations_and_labels() {
        let old = running();
        let errs = update_errors(&old, |p| {
            spec_mut(p).containers[0].image = Some("busybox:2".to_string());
            spec_mut(p).init_containers.as_mut().unwrap()[0].image = Some("y".to_string());
            spec_mut(p).active_deadline_seconds = Some(50);
            let more =
                serde_json::from_value(json!({"key": "other", "operator": "Exists"})).unwrap();
            spec_mut(p).tolerations.as_mut().unwrap().push(more);
            p.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        });
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn update_forbids_other_spec_changes() {
        let errs = update_errors(&running(), |p| {
            spec_mut(p).restart_policy = Some("Never".to_string());
        });
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0],
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n- spec.restartPolicy: \"Always\"\n+ spec.restartPolicy: \"Never\""
        );
    }

    #[test]
    fn update_deadline_rules() {
        let raise = update_errors(&running(), |p| {
            spec_mut(p).active_deadline_seconds = Some(200)
        });
        assert_eq!(
            raise,
            vec!["spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"]
        );
        let unset = update_errors(&running(), |p| spec_mut(p).active_deadline_seconds = None);
        assert_eq!(
            unset,
            vec!["spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"]
        );
    }

    #[test]
    fn update_container_count_and_tolerations() {
        let errs = update_errors(&running(), |p| {
            let extra = spec_mut(p).containers[0].clone();
            spec_mut(p).containers.push(Container {
                name: "d".to_string(),
                ..extra
            });
        });
        assert_eq!(
            errs,
            vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
        let errs = update_errors(&running(), |p| spec_mut(p).tolerations = Some(Vec::new()));
        assert_eq!(
            errs,
            vec!["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]
        );
    }

    #[test]
    fn update_keeps_identity() {
        let errs = update_errors(&running(), |p| {
            p.metadata.namespace = Some("other".to_string())
        });
        assert_eq!(
            errs[0],
            r#"metadata.namespace: Invalid value: "other": field is immutable"#
        );
    }
}
