//! Container validation: the checks common to regular and init containers (name,
//! image, ports, env, volume mounts, pull policy; resources and securityContext through
//! their modules), plus the list rules (unique names, host port conflicts, sidecars,
//! which of them may carry probes and hooks).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Container, EnvFromSource, EnvVar, VolumeMount};

use super::handlers::{forbid_handlers, validate_handlers};
use super::names;
use super::resources::validate_resources;
use super::runtime::{nul_bytes, proc_mount};
use super::security::validate_security_context;
use super::volume::local_descending_path;
use super::{FieldError, FieldPath};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
/// Field labels the v1 downward API converts (pods.ConvertDownwardAPIFieldLabel).
const DOWNWARD_API_LABELS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
    "spec.host",
];

/// What the container checks need from the pod around them.
pub struct PodContext<'a> {
    pub volumes: &'a HashSet<String>,
    /// spec.terminationGracePeriodSeconds, bounding lifecycle sleep actions.
    pub grace_period: Option<i64>,
    /// false when spec.hostUsers is false (procMount Unmasked needs it).
    pub host_users: bool,
}

/// validateContainers: regular containers.
pub fn validate_containers(
    containers: &[Container],
    pod: &PodContext,
    path: &FieldPath,
) -> Vec<FieldError> {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let c_path = path.index(i);
        errs.extend(validate_common(c, pod, &c_path));
        if !seen.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&c_path.child("name"), &c.name));
        }
        errs.extend(validate_handlers(c, pod.grace_period, &c_path));
        if c.restart_policy.is_some() {
            let detail = "may not be set for non-init containers";
            errs.push(FieldError::forbidden(
                &c_path.child("restartPolicy"),
                detail,
            ));
        }
    }
    errs.extend(host_port_conflicts(containers.iter().enumerate(), path));
    errs
}

/// validateInitContainers: names must also be unique against `regular`.
pub fn validate_init_containers(
    containers: &[Container],
    regular: &[Container],
    pod: &PodContext,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: HashSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in containers.iter().enumerate() {
        let c_path = path.index(i);
        errs.extend(validate_common(c, pod, &c_path));
        let policy = c.restart_policy.as_deref();
        if let Some(policy) = policy.filter(|p| *p != "Always") {
            let field = c_path.child("restartPolicy");
            errs.push(FieldError::not_supported(&field, policy, &["Always"]));
        }
        if seen.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(&c_path.child("name"), &c.name));
        } else if !c.name.is_empty() {
            seen.insert(&c.name);
        }
        // Init containers run one by one, so only conflicts within one count.
        errs.extend(host_port_conflicts(std::iter::once((i, c)), path));
        if policy == Some("Always") {
            errs.extend(validate_handlers(c, pod.grace_period, &c_path));
        } else {
            errs.extend(forbid_handlers(c, &c_path));
        }
    }
    errs
}

/// validateContainerCommon
fn validate_common(c: &Container, pod: &PodContext, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        for msg in names::dns1123_label(&c.name) {
            errs.push(FieldError::invalid(&name_path, &c.name, &msg));
        }
    }
    let image = c.image.as_deref().unwrap_or_default();
    if image.is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    errs.extend(nul_bytes(c, path));
    errs.extend(required_enum(
        c.termination_message_policy.as_deref(),
        TERMINATION_MESSAGE_POLICIES,
        &path.child("terminationMessagePolicy"),
    ));
    errs.extend(validate_ports(c, &path.child("ports")));
    errs.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &path.child("env"),
    ));
    errs.extend(validate_env_from(
        c.env_from.as_deref().unwrap_or_default(),
        &path.child("envFrom"),
    ));
    let mounts = c.volume_mounts.as_deref().unwrap_or_default();
    errs.extend(validate_volume_mounts(
        mounts,
        pod.volumes,
        &path.child("volumeMounts"),
    ));
    errs.extend(required_enum(
        c.image_pull_policy.as_deref(),
        PULL_POLICIES,
        &path.child("imagePullPolicy"),
    ));
    if let Some(resources) = &c.resources {
        errs.extend(validate_resources(
            resources.limits.as_ref(),
            resources.requests.as_ref(),
            &path.child("resources"),
        ));
    }
    if let Some(sc) = &c.security_context {
        errs.extend(validate_security_context(
            sc,
            pod.host_users,
            &path.child("securityContext"),
        ));
    }
    errs
}

/// validateContainersOnlyForPod: images may not carry surrounding whitespace.
pub fn image_whitespace(containers: &[Container], path: &FieldPath) -> Vec<FieldError> {
    let detail = "must not have leading or trailing whitespace";
    containers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.image.as_deref().map(|image| (i, image)))
        .filter(|(_, image)| image.len() != image.trim().len())
        .map(|(i, image)| FieldError::invalid(&path.index(i).child("image"), image, detail))
        .collect()
}

/// Required when empty, NotSupported when not one of `supported`.
fn required_enum(value: Option<&str>, supported: &[&str], path: &FieldPath) -> Vec<FieldError> {
    match value.unwrap_or_default() {
        "" => vec![FieldError::required(path, "")],
        v if supported.contains(&v) => Vec::new(),
        v => vec![FieldError::not_supported(path, v, supported)],
    }
}

/// validateContainerPorts
fn validate_ports(c: &Container, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut port_names = HashSet::new();
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let p_path = path.index(i);
        let name = port.name.as_deref().unwrap_or_default();
        if !name.is_empty() {
            let msgs = names::port_name(name);
            for msg in &msgs {
                errs.push(FieldError::invalid(&p_path.child("name"), name, msg));
            }
            if msgs.is_empty() && !port_names.insert(name) {
                errs.push(FieldError::duplicate(&p_path.child("name"), name));
            }
        }
        let container_port = p_path.child("containerPort");
        if port.container_port == 0 {
            errs.push(FieldError::required(&container_port, ""));
        } else {
            for msg in names::port_num(port.container_port.into()) {
                errs.push(FieldError::invalid(
                    &container_port,
                    port.container_port,
                    &msg,
                ));
            }
        }
        let host_port = port.host_port.unwrap_or(0);
        if host_port != 0 {
            for msg in names::port_num(host_port.into()) {
                errs.push(FieldError::invalid(
                    &p_path.child("hostPort"),
                    host_port,
                    &msg,
                ));
            }
        }
        errs.extend(required_enum(
            port.protocol.as_deref(),
            PROTOCOLS,
            &p_path.child("protocol"),
        ));
    }
    errs
}

/// AccumulateUniqueHostPorts: a (protocol, hostIP, hostPort) may be bound once.
fn host_port_conflicts<'a>(
    containers: impl Iterator<Item = (usize, &'a Container)>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut seen = HashSet::new();
    let mut errs = Vec::new();
    for (ci, c) in containers {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let host_port = port.host_port.unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{host_port}",
                port.protocol.as_deref().unwrap_or_default(),
                port.host_ip.as_deref().unwrap_or_default()
            );
            if !seen.insert(key.clone()) {
                let field = path.index(ci).child("ports").index(pi).child("hostPort");
                errs.push(FieldError::duplicate(&field, key));
            }
        }
    }
    errs
}

/// ValidateEnv, with 1.32's relaxed names.
fn validate_env(vars: &[EnvVar], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, var) in vars.iter().enumerate() {
        let v_path = path.index(i);
        if var.name.is_empty() {
            errs.push(FieldError::required(&v_path.child("name"), ""));
        }
        for msg in names::relaxed_env_var_name(&var.name) {
            errs.push(FieldError::invalid(&v_path.child("name"), &var.name, &msg));
        }
        errs.extend(validate_value_from(var, &v_path.child("valueFrom")));
    }
    errs
}

/// ValidateEnvFrom: a relaxed prefix and exactly one source, named as a DNS subdomain (kube
/// reports the source count on the list's path).
fn validate_env_from(sources: &[EnvFromSource], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let s_path = path.index(i);
        if let Some(prefix) = source.prefix.as_deref().filter(|p| !p.is_empty()) {
            for msg in names::relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(&s_path.child("prefix"), prefix, &msg));
            }
        }
        let named = [
            (
                "configMapRef",
                source.config_map_ref.as_ref().map(|r| &r.name),
            ),
            ("secretRef", source.secret_ref.as_ref().map(|r| &r.name)),
        ];
        let mut count = 0;
        for (field, name) in named {
            let Some(name) = name else { continue };
            count += 1;
            let name_path = s_path.child(field).child("name");
            if name.is_empty() {
                errs.push(FieldError::required(&name_path, ""));
            }
            for msg in names::dns1123_subdomain(name)
                .into_iter()
                .filter(|_| !name.is_empty())
            {
                errs.push(FieldError::invalid(&name_path, name.as_str(), &msg));
            }
        }
        match count {
            0 => errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            1 => {}
            _ => errs.push(FieldError::forbidden(
                path,
                "may not have more than one field specified at a time",
            )),
        }
    }
    errs
}

fn validate_value_from(var: &EnvVar, path: &FieldPath) -> Vec<FieldError> {
    let Some(from) = &var.value_from else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    if let Some(field_ref) = &from.field_ref {
        let api_version = field_ref.api_version.as_deref().unwrap_or_default();
        errs.extend(validate_field_ref(
            api_version,
            &field_ref.field_path,
            &path.child("fieldRef"),
        ));
    }
    if let Some(r) = &from.config_map_key_ref {
        errs.extend(key_required(&r.key, &path.child("configMapKeyRef")));
    }
    if let Some(r) = &from.secret_key_ref {
        errs.extend(key_required(&r.key, &path.child("secretKeyRef")));
    }
    let sources = [
        from.field_ref.is_some(),
        from.resource_field_ref.is_some(),
        from.config_map_key_ref.is_some(),
        from.secret_key_ref.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    let detail = match sources {
        0 => Some("must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"),
        _ if !var.value.as_deref().unwrap_or_default().is_empty() => {
            Some("may not be specified when `value` is not empty")
        }
        1 => None,
        _ => Some("may not have more than one field specified at a time"),
    };
    errs.extend(detail.map(|d| FieldError::invalid(path, "", d)));
    errs
}

fn key_required(key: &str, path: &FieldPath) -> Vec<FieldError> {
    if key.is_empty() {
        return vec![FieldError::required(&path.child("key"), "")];
    }
    Vec::new()
}

/// `metadata.labels['k']` → ("metadata.labels", "k")
fn split_subscript(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (path, subscript) = inner.split_once("['")?;
    (!path.is_empty()).then_some((path, subscript))
}

/// validateObjectFieldSelector for env vars.
fn validate_field_ref(api_version: &str, field_path: &str, path: &FieldPath) -> Vec<FieldError> {
    if api_version.is_empty() {
        return vec![FieldError::required(&path.child("apiVersion"), "")];
    }
    if field_path.is_empty() {
        return vec![FieldError::required(&path.child("fieldPath"), "")];
    }
    if let Err(e) = convert_field_label(api_version, field_path) {
        let detail = format!("error converting fieldPath: {e}");
        return vec![FieldError::invalid(
            &path.child("fieldPath"),
            field_path,
            &detail,
        )];
    }
    let field_path = if field_path == "spec.host" {
        "spec.nodeName"
    } else {
        field_path
    };
    match split_subscript(field_path) {
        Some(("metadata.annotations", key)) => names::qualified_name(&key.to_lowercase())
            .iter()
            .map(|m| FieldError::invalid(path, key.to_lowercase(), m))
            .collect(),
        Some((_, key)) => names::qualified_name(key)
            .iter()
            .map(|m| FieldError::invalid(path, key, m))
            .collect(),
        None if !ENV_FIELD_PATHS.contains(&field_path) => {
            let field = path.child("fieldPath");
            vec![FieldError::not_supported(
                &field,
                field_path,
                ENV_FIELD_PATHS,
            )]
        }
        None => Vec::new(),
    }
}

fn convert_field_label(api_version: &str, label: &str) -> Result<(), String> {
    if api_version != "v1" {
        return Err(format!("unsupported pod version: {api_version}"));
    }
    if let Some((path, _)) = split_subscript(label) {
        return match path {
            "metadata.annotations" | "metadata.labels" => Ok(()),
            _ => Err(format!("field label does not support subscript: {label}")),
        };
    }
    if DOWNWARD_API_LABELS.contains(&label) {
        return Ok(());
    }
    Err(format!("field label not supported: {label}"))
}

/// ValidateVolumeMounts
fn validate_volume_mounts(
    mounts: &[VolumeMount],
    volumes: &HashSet<String>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_points = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let m_path = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&m_path.child("name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(FieldError::not_found(&m_path.child("name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&m_path.child("mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            let field = m_path.child("mountPath");
            errs.push(FieldError::invalid(&field, &m.mount_path, "must be unique"));
        }
        errs.extend(proc_mount(m, &m_path.child("mountPath")));
        errs.extend(validate_sub_paths(m, path, &m_path));
    }
    errs
}

/// Kubernetes reports subPath problems at the unindexed `volumeMounts.subPath`
/// path; kept so messages match the API server's.
fn validate_sub_paths(
    m: &VolumeMount,
    list_path: &FieldPath,
    m_path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sub_path = m.sub_path.as_deref().unwrap_or_default();
    let sub_path_expr = m.sub_path_expr.as_deref().unwrap_or_default();
    if !sub_path.is_empty() {
        errs.extend(local_descending_path(sub_path, &list_path.child("subPath")));
    }
    if !sub_path_expr.is_empty() {
        if !sub_path.is_empty() {
            let detail = "subPathExpr and subPath are mutually exclusive";
            errs.push(FieldError::invalid(
                &m_path.child("subPathExpr"),
                sub_path_expr,
                detail,
            ));
        }
        errs.extend(local_descending_path(
            sub_path_expr,
            &list_path.child("subPathExpr"),
        ));
    }
    errs
}
