//! The table of Pod schema fields peapod implements, and the walk that turns any
//! other field present in a manifest into a warning
//! (`spec.affinity.podAffinity: not supported by peapod, ignored`).
//!
//! The table is data: to support a field, add it to the `Node::Object` of its parent.

use serde_json::Value;

const NOT_SUPPORTED: &str = "not supported by peapod, ignored";

/// How peapod treats a field and what lies under it.
#[derive(Debug)]
pub enum Node {
    /// Implemented, with everything under it.
    Leaf,
    /// Implemented; only the listed children are, any other child warns.
    Object(&'static [(&'static str, Node)]),
    /// Implemented list whose items follow the node.
    List(&'static Node),
    /// Present in the schema, not implemented: warns with this message.
    Warn(&'static str),
    /// Implemented, but some values are not: returns the message for a value that warns.
    /// Also called for zero values (`false`, `""`), which can matter here.
    Check(fn(&Value) -> Option<String>),
    /// A map whose keys are implemented when the function says so; any other key warns
    /// (`path[key]`).
    Keys(fn(&str) -> bool),
}

use Node::{Check, Keys, Leaf, List, Object, Warn};

/// The Pod object, from its root.
pub static POD: Node = Object(&[
    ("apiVersion", Leaf),
    ("kind", Leaf),
    ("metadata", METADATA),
    ("spec", POD_SPEC),
    // Server-set; ignored on input.
    ("status", Leaf),
]);

const METADATA: Node = Object(&[
    ("name", Leaf),
    ("generateName", Leaf),
    ("namespace", Leaf),
    ("labels", Leaf),
    ("annotations", Keys(is_implemented_annotation)),
    // Server-set fields, ignored on input.
    ("uid", Leaf),
    ("resourceVersion", Leaf),
    ("generation", Leaf),
    ("creationTimestamp", Leaf),
    ("deletionTimestamp", Leaf),
    ("deletionGracePeriodSeconds", Leaf),
    ("managedFields", Leaf),
    ("selfLink", Leaf),
]);

const POD_SPEC: Node = Object(&[
    ("containers", List(&CONTAINER)),
    ("initContainers", List(&CONTAINER)),
    ("volumes", List(&VOLUME)),
    ("restartPolicy", Leaf),
    ("terminationGracePeriodSeconds", Leaf),
    ("shareProcessNamespace", Leaf),
    ("hostname", Leaf),
    ("subdomain", Leaf),
    ("nodeName", Leaf),
    ("dnsPolicy", Leaf),
    ("dnsConfig", Leaf),
    ("hostNetwork", Leaf),
    ("setHostnameAsFQDN", Leaf),
    ("schedulerName", Leaf),
    ("enableServiceLinks", Leaf),
    ("serviceAccountName", Leaf),
    ("serviceAccount", Leaf),
    ("automountServiceAccountToken", Leaf),
    ("imagePullSecrets", Leaf),
    ("securityContext", POD_SECURITY_CONTEXT),
    ("hostAliases", Leaf),
    ("activeDeadlineSeconds", Leaf),
    ("hostUsers", Check(host_users_warning)),
    // The scheduler's filters for its one node (preferred terms and ScheduleAnyway spread
    // only score nodes, and one node needs no ranking).
    ("nodeSelector", Leaf),
    ("tolerations", Leaf),
    ("affinity", Leaf),
    ("topologySpreadConstraints", Leaf),
    // Priority admission fills priority and preemptionPolicy from the class; the scheduler
    // queues and preempts by them.
    ("priorityClassName", Leaf),
    ("priority", Leaf),
    ("preemptionPolicy", Leaf),
]);

const POD_SECURITY_CONTEXT: Node = Object(&[
    ("runAsUser", Leaf),
    ("runAsGroup", Leaf),
    ("runAsNonRoot", Leaf),
    ("supplementalGroups", Leaf),
    (
        "supplementalGroupsPolicy",
        Check(supplemental_groups_policy_warning),
    ),
    ("fsGroup", Leaf),
    ("fsGroupChangePolicy", Leaf),
    ("seccompProfile", Leaf),
    ("sysctls", Leaf),
]);

const SECURITY_CONTEXT: Node = Object(&[
    ("runAsUser", Leaf),
    ("runAsGroup", Leaf),
    ("runAsNonRoot", Leaf),
    ("capabilities", Leaf),
    ("privileged", Leaf),
    ("readOnlyRootFilesystem", Leaf),
    ("allowPrivilegeEscalation", Leaf),
    ("seccompProfile", Leaf),
    ("procMount", Check(proc_mount_warning)),
]);

/// peapod enforces cpu and memory only.
const RESOURCES: Node = Object(&[
    ("limits", Keys(is_enforced_resource)),
    ("requests", Keys(is_enforced_resource)),
]);

const CONTAINER: Node = Object(&[
    ("name", Leaf),
    ("image", Leaf),
    ("command", Leaf),
    ("args", Leaf),
    ("workingDir", Leaf),
    ("env", List(&ENV_VAR)),
    ("envFrom", Leaf),
    ("ports", Leaf),
    ("volumeMounts", List(&VOLUME_MOUNT)),
    ("imagePullPolicy", Leaf),
    ("restartPolicy", Leaf),
    ("terminationMessagePath", Leaf),
    ("terminationMessagePolicy", Leaf),
    ("securityContext", SECURITY_CONTEXT),
    ("tty", Leaf),
    ("stdin", Leaf),
    ("stdinOnce", Leaf),
    ("resources", RESOURCES),
    ("livenessProbe", Leaf),
    ("readinessProbe", Leaf),
    ("startupProbe", Leaf),
    ("lifecycle", Leaf),
]);

const ENV_VAR: Node = Object(&[
    ("name", Leaf),
    ("value", Leaf),
    (
        "valueFrom",
        Object(&[
            (
                "fieldRef",
                Object(&[
                    ("apiVersion", Leaf),
                    ("fieldPath", Check(field_path_warning)),
                ]),
            ),
            ("resourceFieldRef", Leaf),
            ("configMapKeyRef", Leaf),
            ("secretKeyRef", Leaf),
        ]),
    ),
]);

const VOLUME_MOUNT: Node = Object(&[
    ("name", Leaf),
    ("mountPath", Leaf),
    ("readOnly", Leaf),
    ("subPath", Leaf),
    ("subPathExpr", Leaf),
]);

const VOLUME: Node = Object(&[
    ("name", Leaf),
    ("emptyDir", Object(&[("medium", Leaf), ("sizeLimit", Leaf)])),
    ("hostPath", Object(&[("path", Leaf), ("type", Leaf)])),
    (
        "persistentVolumeClaim",
        Object(&[("claimName", Leaf), ("readOnly", Leaf)]),
    ),
    ("configMap", Leaf),
    ("secret", Leaf),
    ("downwardAPI", Leaf),
    (
        "projected",
        Object(&[("defaultMode", Leaf), ("sources", List(&VOLUME_PROJECTION))]),
    ),
]);

/// Projected sources peapod writes; clusterTrustBundle (alpha, off by default in 1.32) warns.
const VOLUME_PROJECTION: Node = Object(&[
    ("configMap", Leaf),
    ("secret", Leaf),
    ("downwardAPI", Leaf),
    ("serviceAccountToken", Leaf),
]);

/// The downward-API field paths peapod can resolve for env values.
pub const SUPPORTED_ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.podIP",
    "status.podIPs",
    "status.hostIP",
    "status.hostIPs",
];

fn field_path_warning(value: &Value) -> Option<String> {
    let path = value.as_str().filter(|p| !p.is_empty())?;
    let subscripted = ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .any(|p| path.starts_with(p) && path.ends_with("']"));
    if subscripted || SUPPORTED_ENV_FIELD_PATHS.contains(&path) {
        return None;
    }
    Some(format!("field path {path:?} {NOT_SUPPORTED}"))
}

fn is_enforced_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory")
}

/// The deprecated seccomp and AppArmor annotations, which the API server turns into
/// securityContext fields; peapod reads the fields only.
fn is_implemented_annotation(key: &str) -> bool {
    let ignored_prefixes = [
        "container.seccomp.security.alpha.kubernetes.io/",
        "container.apparmor.security.beta.kubernetes.io/",
    ];
    key != "seccomp.security.alpha.kubernetes.io/pod"
        && !ignored_prefixes.iter().any(|p| key.starts_with(p))
}

fn value_warning(value: &Value) -> String {
    format!("value {value} {NOT_SUPPORTED}")
}

/// `hostUsers: false` asks for a user namespace, which peapod does not create.
fn host_users_warning(value: &Value) -> Option<String> {
    (value == &Value::Bool(false)).then(|| value_warning(value))
}

/// `true` asks for the service account token kube-apiserver's admission would mount.
/// `Unmasked` (with `hostUsers: false`) would drop the masked /proc paths.
fn proc_mount_warning(value: &Value) -> Option<String> {
    (value.as_str() == Some("Unmasked")).then(|| value_warning(value))
}

/// `Strict` would leave out the image's groups; peapod always merges them.
fn supplemental_groups_policy_warning(value: &Value) -> Option<String> {
    (value.as_str() == Some("Strict")).then(|| value_warning(value))
}

/// Zero values mean the same as an absent field, so they never warn.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

/// Warnings for every field of `value` (a Pod as JSON) that `POD` does not implement.
pub fn unsupported_pod_fields(value: &Value) -> Vec<String> {
    let mut warnings = Vec::new();
    walk(&POD, value, "", &mut warnings);
    warnings
}

/// Warnings for fields of `value` that `node` does not implement; `path` is the
/// field path of `value`.
pub fn unsupported_fields(node: &Node, value: &Value, path: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    walk(node, value, path, &mut warnings);
    warnings
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn walk(node: &Node, value: &Value, path: &str, out: &mut Vec<String>) {
    if let Check(check) = node {
        out.extend(check(value).map(|m| format!("{path}: {m}")));
        return;
    }
    if is_empty(value) {
        return;
    }
    match node {
        Leaf | Check(_) => {}
        Warn(message) => out.push(format!("{path}: {message}")),
        Keys(implemented) => {
            let mut keys: Vec<_> = value.as_object().into_iter().flatten().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            for (key, v) in keys {
                if !is_empty(v) && !implemented(key) {
                    out.push(format!("{path}[{key}]: {NOT_SUPPORTED}"));
                }
            }
        }
        List(item) => {
            for (i, v) in value.as_array().into_iter().flatten().enumerate() {
                walk(item, v, &format!("{path}[{i}]"), out);
            }
        }
        Object(children) => {
            let mut fields: Vec<_> = value.as_object().into_iter().flatten().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            for (name, v) in fields {
                let child = join(path, name);
                match children.iter().find(|(n, _)| n == name) {
                    Some((_, node)) => walk(node, v, &child, out),
                    None if is_empty(v) => {}
                    None => out.push(format!("{child}: {NOT_SUPPORTED}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn warns_for_unimplemented_fields_only() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "labels": {"x": "y"}, "finalizers": ["f"]},
            "spec": {
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}]}},
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "k"}]}},
                "nodeSelector": {"disk": "ssd"},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule"}],
                "priorityClassName": "high",
                "hostNetwork": false,
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "securityContext": {"runAsUser": 1000},
                "containers": [{
                    "name": "c", "image": "i",
                    "livenessProbe": {"exec": {"command": ["true"]}},
                    "resources": {"limits": {"cpu": "1"}},
                    "securityContext": {"allowPrivilegeEscalation": false, "privileged": true},
                    "volumeMounts": [{"name": "v", "mountPath": "/v", "mountPropagation": "None"}],
                    "env": [
                        {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "spec.schedulerName"}}},
                        {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                    ]
                }],
                "volumes": [{"name": "v", "projected": {"sources": [
                    {"configMap": {"name": "cm"}}, {"clusterTrustBundle": {"path": "t", "name": "b"}}
                ]}}]
            }
        });
        let warnings = unsupported_pod_fields(&pod);
        assert_eq!(
            warnings,
            vec![
                "metadata.finalizers: not supported by peapod, ignored",
                "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: field path \"spec.schedulerName\" not supported by peapod, ignored",
                "spec.containers[0].volumeMounts[0].mountPropagation: not supported by peapod, ignored",
                "spec.volumes[0].projected.sources[1].clusterTrustBundle: not supported by peapod, ignored",
            ]
        );
    }

    #[test]
    fn probes_hooks_resources_and_security_are_implemented() {
        let c = json!({
            "name": "c",
            "livenessProbe": {"httpGet": {"port": 80, "httpHeaders": [{"name": "A", "value": "b"}]}},
            "readinessProbe": {"tcpSocket": {"port": 80}},
            "startupProbe": {"grpc": {"port": 80, "service": "s"}, "terminationGracePeriodSeconds": 5},
            "lifecycle": {"postStart": {"exec": {"command": ["x"]}}, "preStop": {"sleep": {"seconds": 1}}},
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1"}},
            "securityContext": {
                "runAsUser": 1, "runAsGroup": 1, "runAsNonRoot": true,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}, "privileged": true,
                "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
                "procMount": "Default"
            }
        });
        assert_eq!(
            unsupported_fields(&CONTAINER, &c, "c"),
            Vec::<String>::new()
        );
        let sc = json!({
            "runAsUser": 1, "runAsGroup": 1, "runAsNonRoot": true, "supplementalGroups": [1],
            "supplementalGroupsPolicy": "Merge", "fsGroup": 1, "fsGroupChangePolicy": "Always",
            "seccompProfile": {"type": "RuntimeDefault"},
            "sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]
        });
        assert_eq!(
            unsupported_fields(&POD_SECURITY_CONTEXT, &sc, "sc"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn names_what_peapod_still_ignores() {
        let pod = json!({
            "metadata": {"annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
                "container.apparmor.security.beta.kubernetes.io/c": "unconfined",
                "note": "kept"
            }},
            "spec": {
                "hostUsers": false,
                "automountServiceAccountToken": true,
                "securityContext": {"supplementalGroupsPolicy": "Strict",
                                    "seLinuxOptions": {"level": "s0"}, "appArmorProfile": {"type": "Unconfined"}},
                "containers": [{
                    "name": "c",
                    "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                    "resources": {"limits": {"memory": "1Gi", "ephemeral-storage": "1Gi"},
                                  "requests": {"example.com/dev": "1"}, "claims": [{"name": "x"}]},
                    "securityContext": {"procMount": "Unmasked", "windowsOptions": {"runAsUserName": "u"}}
                }]
            }
        });
        assert_eq!(
            unsupported_pod_fields(&pod),
            vec![
                "metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]: not supported by peapod, ignored",
                "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: not supported by peapod, ignored",
                "spec.containers[0].resizePolicy: not supported by peapod, ignored",
                "spec.containers[0].resources.claims: not supported by peapod, ignored",
                "spec.containers[0].resources.limits[ephemeral-storage]: not supported by peapod, ignored",
                "spec.containers[0].resources.requests[example.com/dev]: not supported by peapod, ignored",
                "spec.containers[0].securityContext.procMount: value \"Unmasked\" not supported by peapod, ignored",
                "spec.containers[0].securityContext.windowsOptions: not supported by peapod, ignored",
                "spec.hostUsers: value false not supported by peapod, ignored",
                "spec.securityContext.appArmorProfile: not supported by peapod, ignored",
                "spec.securityContext.seLinuxOptions: not supported by peapod, ignored",
                "spec.securityContext.supplementalGroupsPolicy: value \"Strict\" not supported by peapod, ignored",
            ]
        );
        let fine = json!({"spec": {"hostUsers": true, "automountServiceAccountToken": true,
            "serviceAccountName": "builder", "serviceAccount": "builder", "imagePullSecrets": [{"name": "pull"}],
            "containers": [{"name": "c", "env": [
            {"name": "E", "valueFrom": {"fieldRef": {"fieldPath": ""}}}]}]}});
        assert_eq!(unsupported_pod_fields(&fine), Vec::<String>::new());
    }

    #[test]
    fn env_sources_are_implemented() {
        let c = json!({"name": "c",
        "envFrom": [{"prefix": "P_", "configMapRef": {"name": "cm", "optional": true}},
                    {"secretRef": {"name": "s"}}],
        "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": true}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "C", "valueFrom": {"resourceFieldRef": {"containerName": "c",
                                        "resource": "limits.memory", "divisor": "1Mi"}}}
        ]});
        assert_eq!(
            unsupported_fields(&CONTAINER, &c, "c"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn empty_resources_do_not_warn() {
        let node = &CONTAINER;
        let c = json!({"name": "c", "resources": {"limits": {}, "requests": {}}});
        assert!(unsupported_fields(node, &c, "c").is_empty());
    }
}

#[cfg(test)]
mod defaulted_tests {
    use super::*;
    use crate::defaults::default_pod;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    #[test]
    fn defaulted_fields_never_warn() {
        let mut pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {
                "initContainers": [{"name": "i", "image": "x", "ports": [{"containerPort": 1}]}],
                "containers": [{
                    "name": "c", "image": "busybox",
                    "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}, {"name": "h", "mountPath": "/h"}]
                }],
                "volumes": [{"name": "v"}, {"name": "h", "hostPath": {"path": "/tmp"}}]
            }
        }))
        .unwrap();
        default_pod(&mut pod);
        let value = serde_json::to_value(&pod).unwrap();
        assert_eq!(unsupported_pod_fields(&value), Vec::<String>::new());
    }
}
