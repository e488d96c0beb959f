//! PodSpec validation (ValidatePodSpec and the pod-only checks of ValidatePodCreate).

use k8s_openapi::api::core::v1::{HostAlias, PodSpec};

use super::container::{
    image_whitespace, validate_containers, validate_init_containers, PodContext,
};
use super::dns::validate_pod_dns_config;
use super::names;
use super::security::{validate_host_users, validate_pod_security_context};
use super::volume::validate_volumes;
use super::{FieldError, FieldPath};

pub const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
pub const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const MAX_INT32: i64 = i32::MAX as i64;

/// ValidatePodSpec followed by the pod-only container checks.
pub fn validate_pod_spec(spec: &PodSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(validate_grace_period(
        spec.termination_grace_period_seconds,
        path,
    ));
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    let (volume_names, volume_errs) = validate_volumes(volumes, &path.child("volumes"));
    errs.extend(volume_errs);
    let containers_path = path.child("containers");
    let init_path = path.child("initContainers");
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let pod = PodContext {
        volumes: &volume_names,
        grace_period: spec.termination_grace_period_seconds,
        host_users: spec.host_users != Some(false),
    };
    errs.extend(validate_containers(
        &spec.containers,
        &pod,
        &containers_path,
    ));
    errs.extend(validate_init_containers(
        init,
        &spec.containers,
        &pod,
        &init_path,
    ));
    errs.extend(enum_field(
        spec.restart_policy.as_deref(),
        RESTART_POLICIES,
        &path.child("restartPolicy"),
    ));
    errs.extend(enum_field(
        spec.dns_policy.as_deref(),
        DNS_POLICIES,
        &path.child("dnsPolicy"),
    ));
    if let Some(sc) = &spec.security_context {
        errs.extend(validate_pod_security_context(
            sc,
            spec,
            &path.child("securityContext"),
        ));
    }
    errs.extend(validate_pod_dns_config(
        spec.dns_config.as_ref(),
        spec.dns_policy.as_deref(),
        &path.child("dnsConfig"),
    ));
    errs.extend(validate_host_users(spec, path));
    errs.extend(validate_names(spec, path));
    errs.extend(validate_active_deadline(spec.active_deadline_seconds, path));
    errs.extend(validate_host_aliases(
        spec.host_aliases.as_deref().unwrap_or_default(),
        path,
    ));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        let field = path.child("ephemeralContainers");
        errs.push(FieldError::forbidden(&field, "cannot be set on create"));
    }
    errs.extend(image_whitespace(&spec.containers, &containers_path));
    errs.extend(image_whitespace(init, &init_path));
    errs
}

fn validate_grace_period(seconds: Option<i64>, path: &FieldPath) -> Vec<FieldError> {
    let field = path.child("terminationGracePeriodSeconds");
    match seconds {
        None => vec![FieldError::required(&field, "")],
        Some(s) if s < 0 => vec![FieldError::invalid(
            &field,
            s,
            "must be greater than or equal to 0",
        )],
        Some(_) => Vec::new(),
    }
}

fn enum_field(value: Option<&str>, supported: &[&str], path: &FieldPath) -> Vec<FieldError> {
    match value.unwrap_or_default() {
        "" => vec![FieldError::required(path, "")],
        v if supported.contains(&v) => Vec::new(),
        v => vec![FieldError::not_supported(path, v, supported)],
    }
}

/// serviceAccountName and nodeName are subdomains; hostname and subdomain labels.
fn validate_names(spec: &PodSpec, path: &FieldPath) -> Vec<FieldError> {
    type Check = fn(&str) -> Vec<String>;
    let fields: [(&str, &Option<String>, Check); 4] = [
        (
            "serviceAccountName",
            &spec.service_account_name,
            names::dns1123_subdomain,
        ),
        ("nodeName", &spec.node_name, names::dns1123_subdomain),
        ("hostname", &spec.hostname, names::dns1123_label),
        ("subdomain", &spec.subdomain, names::dns1123_label),
    ];
    let mut errs = Vec::new();
    for (field, value, check) in fields {
        let value = value.as_deref().unwrap_or_default();
        if value.is_empty() {
            continue;
        }
        for msg in check(value) {
            errs.push(FieldError::invalid(&path.child(field), value, &msg));
        }
    }
    errs
}

fn validate_active_deadline(seconds: Option<i64>, path: &FieldPath) -> Vec<FieldError> {
    match seconds {
        Some(s) if !(1..=MAX_INT32).contains(&s) => {
            let detail = names::inclusive_range_error(1, MAX_INT32);
            vec![FieldError::invalid(
                &path.child("activeDeadlineSeconds"),
                s,
                &detail,
            )]
        }
        _ => Vec::new(),
    }
}

fn validate_host_aliases(aliases: &[HostAlias], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, alias) in aliases.iter().enumerate() {
        let a_path = path.child("hostAliases").index(i);
        for msg in names::ip(&alias.ip) {
            errs.push(FieldError::invalid(&a_path.child("ip"), &alias.ip, &msg));
        }
        for (j, hostname) in alias.hostnames.iter().flatten().enumerate() {
            for msg in names::dns1123_subdomain(hostname) {
                errs.push(FieldError::invalid(
                    &a_path.child("hostnames").index(j),
                    hostname,
                    &msg,
                ));
            }
        }
    }
    errs
}
