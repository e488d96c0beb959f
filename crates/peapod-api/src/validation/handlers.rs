//! Probe and lifecycle-hook validation (validateProbe, validateLifecycle, validateHandler
//! and its actions), with one check stricter than Kubernetes: a named port must exist.

use std::collections::HashSet;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{
    Container, ExecAction, GRPCAction, HTTPGetAction, Lifecycle, LifecycleHandler, Probe,
    SleepAction, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use regex::Regex;

use super::{names, FieldError, FieldPath};

const NON_NEGATIVE: &str = "must be greater than or equal to 0";
const INIT_ONLY: &str = "may not be set for init containers without restartPolicy=Always";
const HTTP_SCHEMES: &[&str] = &["HTTP", "HTTPS"];
const HTTP_HEADER_NAME_FMT: &str = "[-A-Za-z0-9]+";
const HTTP_HEADER_NAME_MSG: &str =
    "a valid HTTP header must consist of alphanumeric characters or '-'";
const UNKNOWN_PORT_NAME: &str = "must be a port number or the name of one of the container's ports";

static HTTP_HEADER_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{HTTP_HEADER_NAME_FMT}$")).expect("static regex"));

/// What an action is checked against: the container's port names and the pod's
/// terminationGracePeriodSeconds (for sleep actions).
struct Context<'a> {
    port_names: HashSet<&'a str>,
    grace_period: Option<i64>,
}

impl<'a> Context<'a> {
    fn new(c: &'a Container, grace_period: Option<i64>) -> Self {
        let port_names = c
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.name.as_deref())
            .filter(|n| !n.is_empty())
            .collect();
        Self {
            port_names,
            grace_period,
        }
    }
}

/// Probes and lifecycle hooks of regular containers and sidecars.
pub fn validate_handlers(
    c: &Container,
    grace_period: Option<i64>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let ctx = Context::new(c, grace_period);
    let mut errs = Vec::new();
    if let Some(lifecycle) = &c.lifecycle {
        errs.extend(validate_lifecycle(
            lifecycle,
            &ctx,
            &path.child("lifecycle"),
        ));
    }
    let probes = [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ];
    for (field, probe) in probes {
        let Some(probe) = probe else { continue };
        let p_path = path.child(field);
        errs.extend(validate_probe(probe, &ctx, &p_path));
        if field == "readinessProbe" {
            if let Some(seconds) = probe.termination_grace_period_seconds {
                let field = p_path.child("terminationGracePeriodSeconds");
                let detail = "must not be set for readinessProbes";
                errs.push(FieldError::invalid(&field, seconds, detail));
            }
        } else {
            let success = probe.success_threshold.unwrap_or(1);
            if success != 1 {
                let field = p_path.child("successThreshold");
                errs.push(FieldError::invalid(&field, success, "must be 1"));
            }
        }
    }
    errs
}

/// Regular init containers may have neither probes nor lifecycle hooks.
pub fn forbid_handlers(c: &Container, path: &FieldPath) -> Vec<FieldError> {
    let present = [
        ("lifecycle", c.lifecycle.is_some()),
        ("livenessProbe", c.liveness_probe.is_some()),
        ("readinessProbe", c.readiness_probe.is_some()),
        ("startupProbe", c.startup_probe.is_some()),
    ];
    present
        .iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| FieldError::forbidden(&path.child(field), INIT_ONLY))
        .collect()
}

fn validate_lifecycle(lifecycle: &Lifecycle, ctx: &Context, path: &FieldPath) -> Vec<FieldError> {
    let hooks = [
        ("postStart", &lifecycle.post_start),
        ("preStop", &lifecycle.pre_stop),
    ];
    let mut errs = Vec::new();
    for (field, hook) in hooks {
        let Some(LifecycleHandler {
            exec,
            http_get,
            tcp_socket,
            sleep,
        }) = hook
        else {
            continue;
        };
        let h_path = path.child(field);
        let actions = [
            (
                "exec",
                exec.as_ref().map(|a| exec_errors(a, &h_path.child("exec"))),
            ),
            (
                "httpGet",
                http_get
                    .as_ref()
                    .map(|a| http_get_errors(a, ctx, &h_path.child("httpGet"))),
            ),
            (
                "tcpSocket",
                tcp_socket
                    .as_ref()
                    .map(|a| tcp_socket_errors(a, ctx, &h_path.child("tcpSocket"))),
            ),
            (
                "sleep",
                sleep
                    .as_ref()
                    .map(|a| sleep_errors(a, ctx, &h_path.child("sleep"))),
            ),
        ];
        errs.extend(handler_errors(actions, &h_path));
    }
    errs
}

fn validate_probe(probe: &Probe, ctx: &Context, path: &FieldPath) -> Vec<FieldError> {
    let actions = [
        (
            "exec",
            probe
                .exec
                .as_ref()
                .map(|a| exec_errors(a, &path.child("exec"))),
        ),
        (
            "httpGet",
            probe
                .http_get
                .as_ref()
                .map(|a| http_get_errors(a, ctx, &path.child("httpGet"))),
        ),
        (
            "tcpSocket",
            probe
                .tcp_socket
                .as_ref()
                .map(|a| tcp_socket_errors(a, ctx, &path.child("tcpSocket"))),
        ),
        (
            "grpc",
            probe
                .grpc
                .as_ref()
                .map(|a| grpc_errors(a, &path.child("grpc"))),
        ),
    ];
    let mut errs = handler_errors(actions, path);
    let numbers = [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ];
    for (field, value) in numbers {
        if let Some(v) = value.filter(|v| *v < 0) {
            errs.push(FieldError::invalid(&path.child(field), v, NON_NEGATIVE));
        }
    }
    if let Some(seconds) = probe.termination_grace_period_seconds.filter(|s| *s <= 0) {
        let field = path.child("terminationGracePeriodSeconds");
        errs.push(FieldError::invalid(
            &field,
            seconds,
            "must be greater than 0",
        ));
    }
    errs
}

/// validateHandler: exactly one action; only the first one set is checked further,
/// each later one is Forbidden. `actions` holds the errors of every action that is set.
fn handler_errors<const N: usize>(
    actions: [(&str, Option<Vec<FieldError>>); N],
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = false;
    for (field, action_errs) in actions {
        let Some(action_errs) = action_errs else {
            continue;
        };
        if seen {
            let detail = "may not specify more than 1 handler type";
            errs.push(FieldError::forbidden(&path.child(field), detail));
        } else {
            seen = true;
            errs.extend(action_errs);
        }
    }
    if !seen {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

fn exec_errors(exec: &ExecAction, path: &FieldPath) -> Vec<FieldError> {
    if exec.command.as_ref().is_none_or(Vec::is_empty) {
        return vec![FieldError::required(&path.child("command"), "")];
    }
    Vec::new()
}

fn http_get_errors(http: &HTTPGetAction, ctx: &Context, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if http.path.as_deref().unwrap_or_default().is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(port_errors(&http.port, ctx, &path.child("port")));
    let scheme = http.scheme.as_deref().unwrap_or_default();
    if !HTTP_SCHEMES.contains(&scheme) {
        let field = path.child("scheme");
        errs.push(FieldError::not_supported(&field, scheme, HTTP_SCHEMES));
    }
    let headers_path = path.child("httpHeaders");
    for header in http.http_headers.iter().flatten() {
        if !HTTP_HEADER_NAME.is_match(&header.name) {
            let detail = names::regex_error(
                HTTP_HEADER_NAME_MSG,
                HTTP_HEADER_NAME_FMT,
                &["X-Header-Name"],
            );
            errs.push(FieldError::invalid(&headers_path, &header.name, &detail));
        }
    }
    errs
}

fn tcp_socket_errors(tcp: &TCPSocketAction, ctx: &Context, path: &FieldPath) -> Vec<FieldError> {
    port_errors(&tcp.port, ctx, &path.child("port"))
}

fn grpc_errors(grpc: &GRPCAction, path: &FieldPath) -> Vec<FieldError> {
    let port = path.child("port");
    names::port_num(grpc.port.into())
        .iter()
        .map(|msg| FieldError::invalid(&port, grpc.port, msg))
        .collect()
}

/// PodLifecycleSleepActionAllowZero wording (GA in 1.34); skipped without a grace period,
/// which is reported on its own.
fn sleep_errors(sleep: &SleepAction, ctx: &Context, path: &FieldPath) -> Vec<FieldError> {
    let Some(grace) = ctx.grace_period else {
        return Vec::new();
    };
    if (0..=grace).contains(&sleep.seconds) {
        return Vec::new();
    }
    let detail =
        format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})");
    vec![FieldError::invalid(path, sleep.seconds, &detail)]
}

/// ValidatePortNumOrName. Stricter than Kubernetes, which accepts any valid port name
/// here and only fails when the kubelet resolves it: a name that none of the
/// container's ports carries is refused, since such a probe or hook can never succeed.
fn port_errors(port: &IntOrString, ctx: &Context, path: &FieldPath) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => names::port_num((*n).into())
            .iter()
            .map(|msg| FieldError::invalid(path, *n, msg))
            .collect(),
        IntOrString::String(name) => {
            let msgs = names::port_name(name);
            if msgs.is_empty() && !ctx.port_names.contains(name.as_str()) {
                return vec![FieldError::invalid(path, name, UNKNOWN_PORT_NAME)];
            }
            msgs.iter()
                .map(|msg| FieldError::invalid(path, name, msg))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn container(extra: Value) -> Container {
        let mut c =
            json!({"name": "c", "image": "x", "ports": [{"name": "web", "containerPort": 80}]});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(c).unwrap()
    }

    fn errors(extra: Value) -> Vec<String> {
        let path = FieldPath::new("spec").child("containers").index(0);
        validate_handlers(&container(extra), Some(30), &path)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn liveness(handler: Value) -> Vec<String> {
        errors(json!({"livenessProbe": handler}))
    }

    #[test]
    fn valid_handlers_pass() {
        let errs = errors(json!({
            "livenessProbe": {"httpGet": {"path": "/", "port": "web", "scheme": "HTTPS",
                                          "httpHeaders": [{"name": "X-Token", "value": "a b"}]}},
            "readinessProbe": {"tcpSocket": {"port": 80}},
            "startupProbe": {"grpc": {"port": 9000}, "terminationGracePeriodSeconds": 5},
            "lifecycle": {"postStart": {"exec": {"command": ["true"]}},
                          "preStop": {"sleep": {"seconds": 30}}}
        }));
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn exec_needs_a_command() {
        assert_eq!(
            liveness(json!({"exec": {"command": []}})),
            vec!["spec.containers[0].livenessProbe.exec.command: Required value"]
        );
        assert_eq!(
            errors(json!({"lifecycle": {"preStop": {"exec": {}}}})),
            vec!["spec.containers[0].lifecycle.preStop.exec.command: Required value"]
        );
    }

    #[test]
    fn http_get_rules() {
        let errs = liveness(json!({"httpGet": {
            "path": "", "port": 0, "scheme": "FTP",
            "httpHeaders": [{"name": "bad name", "value": ""}, {"name": "Ok-1", "value": ""}]
        }}));
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].livenessProbe.httpGet.path: Required value",
                "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
                r#"spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS""#,
                r#"spec.containers[0].livenessProbe.httpGet.httpHeaders: Invalid value: "bad name": a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')"#,
            ]
        );
    }

    #[test]
    fn port_names_follow_iana_rules() {
        let errs = liveness(json!({"tcpSocket": {"port": "8080"}}));
        assert_eq!(
            errs,
            vec![
                r#"spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: "8080": must contain at least one letter (a-z)"#
            ]
        );
        let errs = liveness(json!({"tcpSocket": {"port": "Bad--name-too-long"}}));
        assert_eq!(
            errs,
            vec![
                r#"spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: "Bad--name-too-long": must be no more than 15 characters"#,
                r#"spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: "Bad--name-too-long": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
                r#"spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: "Bad--name-too-long": must not contain consecutive hyphens"#,
            ]
        );
    }

    #[test]
    fn unknown_port_name_is_refused() {
        assert_eq!(
            liveness(json!({"httpGet": {"path": "/", "port": "metrics", "scheme": "HTTP"}})),
            vec![
                r#"spec.containers[0].livenessProbe.httpGet.port: Invalid value: "metrics": must be a port number or the name of one of the container's ports"#
            ]
        );
        assert_eq!(
            errors(json!({"lifecycle": {"postStart": {"tcpSocket": {"port": "admin"}}}})),
            vec![
                r#"spec.containers[0].lifecycle.postStart.tcpSocket.port: Invalid value: "admin": must be a port number or the name of one of the container's ports"#
            ]
        );
    }

    #[test]
    fn grpc_port_range() {
        assert_eq!(
            liveness(json!({"grpc": {"port": 70000}})),
            vec!["spec.containers[0].livenessProbe.grpc.port: Invalid value: 70000: must be between 1 and 65535, inclusive"]
        );
    }

    #[test]
    fn only_the_first_handler_is_checked_and_others_forbidden() {
        let errs =
            liveness(json!({"exec": {"command": []}, "httpGet": {"port": 0}, "grpc": {"port": 1}}));
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].livenessProbe.exec.command: Required value",
                "spec.containers[0].livenessProbe.httpGet: Forbidden: may not specify more than 1 handler type",
                "spec.containers[0].livenessProbe.grpc: Forbidden: may not specify more than 1 handler type",
            ]
        );
        assert_eq!(
            errors(json!({"lifecycle": {"preStop": {}}})),
            vec![
                "spec.containers[0].lifecycle.preStop: Required value: must specify a handler type"
            ]
        );
    }

    #[test]
    fn probe_numbers_and_grace_period() {
        let errs = errors(json!({
            "livenessProbe": {"exec": {"command": ["x"]}, "periodSeconds": -1,
                              "terminationGracePeriodSeconds": 0, "successThreshold": 2},
            "readinessProbe": {"exec": {"command": ["x"]}, "terminationGracePeriodSeconds": -5},
            "startupProbe": {"exec": {"command": ["x"]}, "failureThreshold": -3}
        }));
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
                "spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0",
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: -5: must be greater than 0",
                "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: -5: must not be set for readinessProbes",
                "spec.containers[0].startupProbe.failureThreshold: Invalid value: -3: must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn sleep_within_grace_period() {
        let sleep = |s: i64| errors(json!({"lifecycle": {"preStop": {"sleep": {"seconds": s}}}}));
        assert!(sleep(0).is_empty());
        assert!(sleep(30).is_empty());
        assert_eq!(
            sleep(40),
            vec!["spec.containers[0].lifecycle.preStop.sleep: Invalid value: 40: must be non-negative and less than terminationGracePeriodSeconds (30)"]
        );
        assert_eq!(sleep(-1).len(), 1);
        let c = container(json!({"lifecycle": {"preStop": {"sleep": {"seconds": 99}}}}));
        assert!(validate_handlers(&c, None, &FieldPath::new("c")).is_empty());
    }

    #[test]
    fn regular_init_containers_forbid_handlers() {
        let c = container(json!({"startupProbe": {"exec": {"command": ["x"]}}}));
        let errs: Vec<String> =
            forbid_handlers(&c, &FieldPath::new("spec").child("initContainers").index(0))
                .iter()
                .map(ToString::to_string)
                .collect();
        assert_eq!(
            errs,
            vec!["spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always"]
        );
    }
}
