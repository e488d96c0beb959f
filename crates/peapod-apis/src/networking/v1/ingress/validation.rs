//! kube's `ValidateIngressCreate`/`ValidateIngressUpdate` (pkg/apis/networking/validation):
//! hosts (DNS names, `*.` wildcards, no IPs), paths (absolute, no `//` or `/../`), a known
//! pathType, backends naming exactly one of service or resource, a service port by name or
//! number, TLS hosts and secret names, load-balancer IPs and hostnames in the status. An
//! update keeps accepting the invalid wildcard rules and secret names the old object already
//! held, as kube does for old data.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::TypedLocalObjectReference;
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend, IngressSpec};
use peapod_api::validation::meta::validate_object_meta_update;
use peapod_api::validation::{names, BadValue, FieldError, FieldPath};
use peapod_apiserver::registry::validate_meta;

use crate::core::v1::service::validation::dns1035_label;
use crate::networking::v1::ingressclass::path_segment_name;

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];
const WILDCARD_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";
const WILDCARD_FMT: &str = "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

/// A value Kubernetes prints with Go's `%#v`, spelled out.
struct GoValue(&'static str);

impl BadValue for GoValue {
    fn render(&self) -> String {
        self.0.to_owned()
    }
}

/// kube's `IngressValidationOptions`: leniencies for data an update carries over.
#[derive(Default, Clone, Copy)]
pub struct Options {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
}

pub fn validate(ingress: &Ingress, options: Options) -> Vec<FieldError> {
    let mut errors = validate_meta(ingress, true);
    let spec = ingress.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, &FieldPath::new("spec"), options));
    errors
}

pub fn validate_update(new: &Ingress, old: &Ingress) -> Vec<FieldError> {
    let old_spec = old.spec.clone().unwrap_or_default();
    let options = Options {
        allow_invalid_secret_name: old_spec
            .tls
            .iter()
            .flatten()
            .any(|tls| !secret_name_errors(tls.secret_name.as_deref()).is_empty()),
        allow_invalid_wildcard_host_rule: old_spec.rules.iter().flatten().any(|rule| {
            let wildcard = rule.host.as_deref().is_some_and(|h| h.contains('*'));
            let http = rule.http.as_ref().map(|h| h.paths.as_slice());
            wildcard && !validate_paths(http, &FieldPath::new("")).is_empty()
        }),
    };
    let mut errors =
        validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
    let spec = new.spec.clone().unwrap_or_default();
    errors.extend(validate_spec(&spec, &FieldPath::new("spec"), options));
    errors.extend(validate_load_balancer_status(new));
    errors
}

/// kube's `ValidateIngressLoadBalancerStatus`: IPs that parse, hostnames that are DNS names.
fn validate_load_balancer_status(ingress: &Ingress) -> Vec<FieldError> {
    let path = FieldPath::new("status")
        .child("loadBalancer")
        .child("ingress");
    let points = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default();
    let mut errors = Vec::new();
    for (i, point) in points.iter().enumerate() {
        let point_path = path.index(i);
        if let Some(ip) = point.ip.as_deref().filter(|ip| !ip.is_empty()) {
            for msg in names::ip(ip) {
                errors.push(FieldError::invalid(&point_path.child("ip"), ip, &msg));
            }
        }
        if let Some(host) = point.hostname.as_deref().filter(|h| !h.is_empty()) {
            let host_path = point_path.child("hostname");
            for msg in names::dns1123_subdomain(host) {
                errors.push(FieldError::invalid(&host_path, host, &msg));
            }
            if host.parse::<IpAddr>().is_ok() {
                let detail = "must be a DNS name, not an IP address";
                errors.push(FieldError::invalid(&host_path, host, detail));
            }
        }
    }
    errors
}

fn validate_spec(spec: &IngressSpec, path: &FieldPath, options: Options) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let rules = spec.rules.as_deref().unwrap_or_default();
    if rules.is_empty() && spec.default_backend.is_none() {
        let shown = if spec.rules.is_some() {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        let detail = "either `defaultBackend` or `rules` must be specified";
        errors.push(FieldError::invalid(path, GoValue(shown), detail));
    }
    if let Some(backend) = &spec.default_backend {
        errors.extend(validate_backend(backend, &path.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rule_path = path.child("rules").index(i);
        let host = rule.host.as_deref().unwrap_or_default();
        let wildcard = host.contains('*');
        errors.extend(host_errors(host, &rule_path.child("host")));
        if !wildcard || !options.allow_invalid_wildcard_host_rule {
            let paths = rule.http.as_ref().map(|h| h.paths.as_slice());
            errors.extend(validate_paths(paths, &rule_path.child("http")));
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        let tls_path = path.child("tls").index(i);
        for (j, host) in tls.hosts.iter().flatten().enumerate() {
            let host_path = tls_path.child("hosts").index(j);
            for msg in subdomain_or_wildcard(host) {
                errors.push(FieldError::invalid(&host_path, host, &msg));
            }
        }
        if !options.allow_invalid_secret_name {
            let secret = tls.secret_name.as_deref().unwrap_or_default();
            for msg in secret_name_errors(Some(secret)) {
                errors.push(FieldError::invalid(
                    &tls_path.child("secretName"),
                    secret,
                    &msg,
                ));
            }
        }
    }
    if let Some(class) = &spec.ingress_class_name {
        for msg in names::object_name(class, false) {
            errors.push(FieldError::invalid(
                &path.child("ingressClassName"),
                class,
                &msg,
            ));
        }
    }
    errors
}

fn host_errors(host: &str, path: &FieldPath) -> Vec<FieldError> {
    if host.is_empty() {
        return Vec::new();
    }
    let mut errors = Vec::new();
    if host.parse::<IpAddr>().is_ok() {
        errors.push(FieldError::invalid(
            path,
            host,
            "must be a DNS name, not an IP address",
        ));
    }
    for msg in subdomain_or_wildcard(host) {
        errors.push(FieldError::invalid(path, host, &msg));
    }
    errors
}

/// IsWildcardDNS1123Subdomain for hosts with a `*`, IsDNS1123Subdomain for the rest.
pub fn subdomain_or_wildcard(host: &str) -> Vec<String> {
    if !host.contains('*') {
        return names::dns1123_subdomain(host);
    }
    let mut errors = Vec::new();
    if host.len() > names::DNS1123_SUBDOMAIN_MAX {
        errors.push(names::max_len_error(names::DNS1123_SUBDOMAIN_MAX));
    }
    let rest = host.strip_prefix("*.").unwrap_or("*");
    if rest.contains('*') || !names::dns1123_subdomain(rest).is_empty() {
        errors.push(names::regex_error(
            WILDCARD_MSG,
            WILDCARD_FMT,
            &["*.example.com"],
        ));
    }
    errors
}

fn secret_name_errors(name: Option<&str>) -> Vec<String> {
    match name {
        None | Some("") => Vec::new(),
        Some(name) => names::object_name(name, false),
    }
}

fn validate_paths(paths: Option<&[HTTPIngressPath]>, path: &FieldPath) -> Vec<FieldError> {
    let Some(paths) = paths else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    if paths.is_empty() {
        errors.push(FieldError::required(&path.child("paths"), ""));
    }
    for (i, http_path) in paths.iter().enumerate() {
        errors.extend(validate_path(http_path, &path.child("paths").index(i)));
    }
    errors
}

/// kube's `validateHTTPIngressPath`.
fn validate_path(http_path: &HTTPIngressPath, path: &FieldPath) -> Vec<FieldError> {
    let value = http_path.path.as_deref().unwrap_or_default();
    let value_path = path.child("path");
    let mut errors = Vec::new();
    match http_path.path_type.as_str() {
        "" => {
            let detail = "pathType must be specified";
            return vec![FieldError::required(&path.child("pathType"), detail)];
        }
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errors.push(FieldError::invalid(
                    &value_path,
                    value,
                    "must be an absolute path",
                ));
            }
            for bad in INVALID_PATH_SEQUENCES.iter().filter(|s| value.contains(*s)) {
                let detail = format!("must not contain '{bad}'");
                errors.push(FieldError::invalid(&value_path, value, &detail));
            }
            for bad in INVALID_PATH_SUFFIXES.iter().filter(|s| value.ends_with(*s)) {
                let detail = format!("cannot end with '{bad}'");
                errors.push(FieldError::invalid(&value_path, value, &detail));
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errors.push(FieldError::invalid(
                    &value_path,
                    value,
                    "must be an absolute path",
                ));
            }
        }
        other => {
            let type_path = path.child("pathType");
            errors.push(FieldError::not_supported(&type_path, other, PATH_TYPES));
        }
    }
    errors.extend(validate_backend(&http_path.backend, &path.child("backend")));
    errors
}

/// kube's `validateIngressBackend`.
fn validate_backend(backend: &IngressBackend, path: &FieldPath) -> Vec<FieldError> {
    match (&backend.service, &backend.resource) {
        (Some(_), Some(_)) => {
            let detail = "cannot set both resource and service backends";
            vec![FieldError::invalid(path, "", detail)]
        }
        (None, Some(resource)) => validate_resource(resource, &path.child("resource")),
        (Some(service), None) => {
            let mut errors = Vec::new();
            let name_path = path.child("service").child("name");
            if service.name.is_empty() {
                errors.push(FieldError::required(&name_path, ""));
            }
            for msg in dns1035_label(&service.name)
                .iter()
                .filter(|_| !service.name.is_empty())
            {
                errors.push(FieldError::invalid(&name_path, &service.name, msg));
            }
            let port = service.port.clone().unwrap_or_default();
            let port_path = path.child("service").child("port");
            match (
                port.name.as_deref().unwrap_or_default(),
                port.number.unwrap_or(0),
            ) {
                ("", 0) => errors.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
                (name, 0) => errors.extend(
                    names::port_name(name)
                        .iter()
                        .map(|msg| FieldError::invalid(&port_path.child("name"), name, msg)),
                ),
                ("", number) => errors.extend(
                    names::port_num(number.into())
                        .iter()
                        .map(|msg| FieldError::invalid(&port_path.child("number"), number, msg)),
                ),
                _ => errors.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
            }
            errors
        }
        (None, None) => {
            vec![FieldError::invalid(
                path,
                "",
                "resource or service backend is required",
            )]
        }
    }
}

/// kube's `validateIngressTypedLocalObjectReference`.
fn validate_resource(resource: &TypedLocalObjectReference, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(group) = &resource.api_group {
        for msg in names::dns1123_subdomain(group) {
            errors.push(FieldError::invalid(&path.child("apiGroup"), group, &msg));
        }
    }
    errors.extend(path_segment_name(&path.child("kind"), &resource.kind));
    errors.extend(path_segment_name(&path.child("name"), &resource.name));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingress(spec: serde_json::Value) -> Ingress {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}),
        )
        .unwrap()
    }

    fn messages(spec: serde_json::Value) -> Vec<String> {
        let errors = validate(&ingress(spec), Options::default());
        errors.iter().map(ToString::to_string).collect()
    }

    fn rule(host: &str, path: serde_json::Value) -> serde_json::Value {
        json!({"rules": [{"host": host, "http": {"paths": [path]}}]})
    }

    fn service_path(path: &str, path_type: &str) -> serde_json::Value {
        json!({"path": path, "pathType": path_type,
               "backend": {"service": {"name": "web", "port": {"number": 80}}}})
    }

    #[test]
    fn a_valid_ingress_passes() {
        assert!(messages(rule("foo.example.com", service_path("/app", "Prefix"))).is_empty());
        assert!(messages(rule("*.example.com", service_path("/", "Exact"))).is_empty());
        assert!(messages(rule("", service_path("", "ImplementationSpecific"))).is_empty());
    }

    #[test]
    fn rules_or_a_default_backend_are_required() {
        assert_eq!(
            messages(json!({})),
            ["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]
        );
    }

    #[test]
    fn paths_must_be_absolute_and_clean() {
        assert_eq!(
            messages(rule("a.io", service_path("app", "Prefix"))),
            ["spec.rules[0].http.paths[0].path: Invalid value: \"app\": must be an absolute path"]
        );
        assert_eq!(
            messages(rule("a.io", service_path("/a//b/..", "Exact"))),
            [
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/..\": must not contain '//'",
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/..\": cannot end with '/..'",
            ]
        );
    }

    #[test]
    fn path_type_is_required_and_known() {
        assert_eq!(
            messages(rule("a.io", service_path("/", ""))),
            ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]
        );
        assert_eq!(
            messages(rule("a.io", service_path("/", "Regex"))),
            ["spec.rules[0].http.paths[0].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""]
        );
    }

    #[test]
    fn hosts_are_names_or_one_leading_wildcard() {
        assert_eq!(
            messages(rule("10.0.0.1", service_path("/", "Prefix")))[0],
            "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"
        );
        let wildcard = messages(rule("foo.*.io", service_path("/", "Prefix")));
        assert_eq!(wildcard.len(), 1);
        assert!(
            wildcard[0].contains("a wildcard DNS-1123 subdomain must start with '*.'"),
            "{wildcard:?}"
        );
        assert_eq!(
            messages(rule("*.*.io", service_path("/", "Prefix"))).len(),
            1
        );
    }

    #[test]
    fn backends_name_one_target_and_one_port() {
        let both = json!({"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": "web", "port": {"number": 80, "name": "http"}}}});
        assert_eq!(
            messages(rule("a.io", both)),
            ["spec.rules[0].http.paths[0].backend: Invalid value: \"\": cannot set both port name & port number"]
        );
        let neither =
            json!({"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web"}}});
        assert_eq!(
            messages(rule("a.io", neither)),
            ["spec.rules[0].http.paths[0].backend: Required value: port name or number is required"]
        );
        let empty = json!({"path": "/", "pathType": "Prefix", "backend": {}});
        assert_eq!(
            messages(rule("a.io", empty)),
            ["spec.rules[0].http.paths[0].backend: Invalid value: \"\": resource or service backend is required"]
        );
    }

    #[test]
    fn tls_hosts_and_secret_names_are_checked() {
        let spec = json!({"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
                          "tls": [{"hosts": ["Bad_Host"], "secretName": "ok-secret"}]});
        let shown = messages(spec);
        assert_eq!(shown.len(), 1);
        assert!(shown[0].starts_with("spec.tls[0].hosts[0]: Invalid value: \"Bad_Host\""));
    }

    #[test]
    fn load_balancer_addresses_are_ips_and_dns_names() {
        let old = ingress(rule("a.io", service_path("/", "Prefix")));
        let mut new = old.clone();
        new.status = serde_json::from_value(json!({"loadBalancer": {"ingress": [
            {"ip": "192.0.2.1"}, {"ip": "not-an-ip"}, {"hostname": "10.0.0.1"},
        ]}}))
        .unwrap();
        let shown: Vec<String> = validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "status.loadBalancer.ingress[1].ip: Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "status.loadBalancer.ingress[2].hostname: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
            ]
        );
    }

    #[test]
    fn updates_keep_old_invalid_wildcard_rules() {
        let old = ingress(rule("*.a.io", service_path("a", "Prefix")));
        assert!(validate_update(&old, &old).is_empty());
        let fresh = ingress(rule("b.io", service_path("/", "Prefix")));
        assert_eq!(validate_update(&old, &fresh).len(), 1);
    }
}
