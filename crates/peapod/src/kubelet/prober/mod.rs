//! One probe run, as kubelet's prober does it: the handler (exec, httpGet, tcpSocket, grpc) with
//! the probe's timeout, retried only when it errored, and the result mapped to kubelet's event.

pub mod exec;
mod grpc;
pub mod http;
mod tcp;

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};

use crate::shim::client::ShimClient;
/// Go's `%q`, as kubelet's messages quote values.
pub(crate) use peapod_api::validation::go_quote;

/// The Kubernetes minor version peapod reports in User-Agent headers.
pub const KUBE_VERSION: &str = "1.33";
/// The User-Agent of probes (httpGet, grpc).
pub const PROBE_USER_AGENT: &str = "kube-probe/1.33";
/// The User-Agent of lifecycle httpGet hooks.
pub const LIFECYCLE_USER_AGENT: &str = "kube-lifecycle/1.33";

/// kubelet's maxProbeRetries: attempts when the action errored.
const MAX_PROBE_RETRIES: usize = 3;
/// timeoutSeconds when unset.
const DEFAULT_TIMEOUT_SECONDS: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeType {
    Liveness,
    Readiness,
    Startup,
}

impl fmt::Display for ProbeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeType::Liveness => "Liveness",
            ProbeType::Readiness => "Readiness",
            ProbeType::Startup => "Startup",
        })
    }
}

/// What one probe run concluded; the strings are kubelet's probe output or error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    Success,
    /// Counts as success but is reported (an HTTP redirect that was not followed).
    Warning(String),
    Failure(String),
    /// The probe could not run (unknown port name, exec impossible): the result is discarded.
    Errored(String),
}

impl ProbeOutcome {
    /// kubelet's event for this result: Some(("Unhealthy", "Liveness probe failed: <out>")),
    /// Some(("ProbeWarning", "Readiness probe warning: <out>")),
    /// Some(("Unhealthy", "Startup probe errored and resulted in unknown state: <err>")), None
    /// for Success.
    pub fn event(&self, kind: ProbeType) -> Option<(&'static str, String)> {
        match self {
            ProbeOutcome::Success => None,
            ProbeOutcome::Warning(out) => {
                Some(("ProbeWarning", format!("{kind} probe warning: {out}")))
            }
            ProbeOutcome::Failure(out) => {
                Some(("Unhealthy", format!("{kind} probe failed: {out}")))
            }
            ProbeOutcome::Errored(err) => Some((
                "Unhealthy",
                format!("{kind} probe errored and resulted in unknown state: {err}"),
            )),
        }
    }

    /// Success and Warning count as success; Failure as failure; Errored: None (discarded).
    pub fn passed(&self) -> Option<bool> {
        match self {
            ProbeOutcome::Success | ProbeOutcome::Warning(_) => Some(true),
            ProbeOutcome::Failure(_) => Some(false),
            ProbeOutcome::Errored(_) => None,
        }
    }
}

/// Where a probe runs.
pub struct ProbeTarget<'a> {
    pub shim: &'a ShimClient,
    /// The shim's container id (no "peapod://").
    pub container_id: &'a str,
    /// Its ports resolve named ports, its env `$(VAR)` in exec commands.
    pub container: &'a Container,
    /// The default host of httpGet and tcpSocket, and grpc's host (hostNetwork pods: the node IP).
    pub pod_ip: Option<&'a str>,
}

/// One probe run as kubelet's prober.runProbeWithRetries: the handler (exec, httpGet, tcpSocket,
/// grpc) with timeoutSeconds (default 1), retried up to 3 times only when it errored.
pub async fn run_probe(probe: &Probe, target: &ProbeTarget<'_>) -> ProbeOutcome {
    let timeout = probe_timeout(probe);
    let mut outcome = run_once(probe, target, timeout).await;
    for _ in 1..MAX_PROBE_RETRIES {
        if !matches!(outcome, ProbeOutcome::Errored(_)) {
            break;
        }
        outcome = run_once(probe, target, timeout).await;
    }
    outcome
}

fn probe_timeout(probe: &Probe) -> Duration {
    let seconds = probe
        .timeout_seconds
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
        .max(1);
    Duration::from_secs(seconds as u64)
}

async fn run_once(probe: &Probe, target: &ProbeTarget<'_>, timeout: Duration) -> ProbeOutcome {
    if let Some(action) = &probe.exec {
        let command = exec::expand_static(
            action.command.as_deref().unwrap_or_default(),
            target.container,
        );
        return exec_outcome(
            exec::exec_in_container(target.shim, target.container_id, &command, Some(timeout))
                .await,
        );
    }
    if let Some(action) = &probe.http_get {
        let answer = http::get(action, target.container, target.pod_ip, Some(timeout)).await;
        return match answer {
            Ok(answer) => http::probe_outcome(&answer),
            Err(err) if err.is_setup() => ProbeOutcome::Errored(err.to_string()),
            Err(err) => ProbeOutcome::Failure(err.to_string()),
        };
    }
    if let Some(action) = &probe.tcp_socket {
        let port = match http::resolve_port(&action.port, target.container) {
            Ok(port) => port,
            Err(err) => return ProbeOutcome::Errored(err),
        };
        let host = action
            .host
            .as_deref()
            .filter(|h| !h.is_empty())
            .or(target.pod_ip);
        return match host {
            Some(host) => tcp::probe(host, port, timeout).await,
            None => ProbeOutcome::Errored(NO_POD_IP.into()),
        };
    }
    if let Some(action) = &probe.grpc {
        let Some(host) = target.pod_ip else {
            return ProbeOutcome::Errored(NO_POD_IP.into());
        };
        let service = action.service.as_deref().unwrap_or_default();
        return match u16::try_from(action.port) {
            Ok(port) if port > 0 => grpc::probe(host, port, service, timeout).await,
            _ => ProbeOutcome::Errored(format!("invalid port number: {}", action.port)),
        };
    }
    ProbeOutcome::Errored(format!(
        "missing probe handler for container {:?}",
        target.container.name
    ))
}

const NO_POD_IP: &str = "no host to probe: the pod has no IP address";

/// kubelet's exec prober: exit 0 succeeds, another code fails with the output, a timeout fails
/// with the CRI's timeout text, anything else errored.
fn exec_outcome(result: Result<exec::ExecOutput, exec::ExecError>) -> ProbeOutcome {
    match result {
        Ok(out) if out.exit_code == 0 => ProbeOutcome::Success,
        Ok(out) => ProbeOutcome::Failure(out.output),
        Err(err @ exec::ExecError::TimedOut { .. }) => ProbeOutcome::Failure(err.to_string()),
        Err(err) => ProbeOutcome::Errored(err.to_string()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A port on 127.0.0.1 where nothing listens.
    pub(crate) fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn probe_types_print_like_kubelet() {
        assert_eq!(ProbeType::Liveness.to_string(), "Liveness");
        assert_eq!(ProbeType::Readiness.to_string(), "Readiness");
        assert_eq!(ProbeType::Startup.to_string(), "Startup");
    }

    #[test]
    fn events_carry_kubelet_reasons_and_texts() {
        assert_eq!(ProbeOutcome::Success.event(ProbeType::Liveness), None);
        assert_eq!(
            ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into())
                .event(ProbeType::Liveness),
            Some((
                "Unhealthy",
                "Liveness probe failed: HTTP probe failed with statuscode: 500".into()
            ))
        );
        assert_eq!(
            ProbeOutcome::Warning("Probe terminated redirects, Response body: x".into())
                .event(ProbeType::Readiness),
            Some((
                "ProbeWarning",
                "Readiness probe warning: Probe terminated redirects, Response body: x".into()
            ))
        );
        assert_eq!(
            ProbeOutcome::Errored("port web not found".into()).event(ProbeType::Startup),
            Some((
                "Unhealthy",
                "Startup probe errored and resulted in unknown state: port web not found".into()
            ))
        );
    }

    #[test]
    fn warnings_pass_and_errors_are_discarded() {
        assert_eq!(ProbeOutcome::Success.passed(), Some(true));
        assert_eq!(ProbeOutcome::Warning(String::new()).passed(), Some(true));
        assert_eq!(ProbeOutcome::Failure(String::new()).passed(), Some(false));
        assert_eq!(ProbeOutcome::Errored(String::new()).passed(), None);
    }

    #[test]
    fn exec_results_map_like_the_exec_prober() {
        let out = |code: i32| {
            Ok(exec::ExecOutput {
                exit_code: code,
                output: "boom\n".into(),
                stderr: String::new(),
            })
        };
        assert_eq!(exec_outcome(out(0)), ProbeOutcome::Success);
        assert_eq!(exec_outcome(out(1)), ProbeOutcome::Failure("boom\n".into()));
        let timed_out = Err(exec::ExecError::TimedOut {
            command: "sh -c sleep 10".into(),
        });
        assert_eq!(
            exec_outcome(timed_out),
            ProbeOutcome::Failure("command \"sh -c sleep 10\" timed out".into())
        );
        let gone = Err(exec::ExecError::Failed {
            container: "c1".into(),
            message: "container c1 is not running".into(),
        });
        assert!(
            matches!(exec_outcome(gone), ProbeOutcome::Errored(m) if m.contains("not running"))
        );
    }

    #[test]
    fn go_quoting_escapes_quotes_and_controls() {
        assert_eq!(go_quote("sh -c sleep 10"), "\"sh -c sleep 10\"");
        assert_eq!(go_quote("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\x01\"");
        assert_eq!(go_quote("héllo"), "\"héllo\"");
    }

    #[tokio::test]
    async fn run_probe_dispatches_to_the_handler() {
        let dir = tempfile::tempdir().unwrap();
        let shim = ShimClient::new(dir.path());
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "closed", "containerPort": closed_port()}]
        }))
        .unwrap();
        let target = ProbeTarget {
            shim: &shim,
            container_id: "c1",
            container: &container,
            pod_ip: Some("127.0.0.1"),
        };
        let probe = |v: serde_json::Value| -> Probe { serde_json::from_value(v).unwrap() };
        let port = closed_port();
        let refused = run_probe(
            &probe(serde_json::json!({"tcpSocket": {"port": "closed"}})),
            &target,
        )
        .await;
        assert!(
            matches!(&refused, ProbeOutcome::Failure(m) if m.ends_with("connect: connection refused")),
            "{refused:?}"
        );
        let unnamed = run_probe(
            &probe(serde_json::json!({"httpGet": {"port": "web"}})),
            &target,
        )
        .await;
        assert_eq!(
            unnamed,
            ProbeOutcome::Errored("strconv.Atoi: parsing \"web\": invalid syntax".into())
        );
        let http = run_probe(
            &probe(serde_json::json!({"httpGet": {"port": port, "path": "/"}})),
            &target,
        )
        .await;
        assert_eq!(
            http,
            ProbeOutcome::Failure(format!(
                "Get \"http://127.0.0.1:{port}/\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
        let no_ip = ProbeTarget {
            pod_ip: None,
            ..target
        };
        let grpc = run_probe(&probe(serde_json::json!({"grpc": {"port": port}})), &no_ip).await;
        assert!(matches!(grpc, ProbeOutcome::Errored(_)), "{grpc:?}");
        let none = run_probe(&Probe::default(), &no_ip).await;
        assert_eq!(
            none,
            ProbeOutcome::Errored("missing probe handler for container \"c\"".into())
        );
    }

    #[test]
    fn timeout_defaults_to_one_second() {
        let mut probe = Probe::default();
        assert_eq!(probe_timeout(&probe), Duration::from_secs(1));
        probe.timeout_seconds = Some(5);
        assert_eq!(probe_timeout(&probe), Duration::from_secs(5));
    }
}
