//! `kubectl get pods` rows: READY, STATUS, RESTARTS and AGE computed as kubectl's printPod does.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerStateTerminated, ContainerStatus, Pod, PodSpec, PodStatus,
};

use crate::duration::since;
use crate::table::align;

/// Status reason the node lifecycle controller sets on pods of an unreachable node.
const NODE_UNREACHABLE_REASON: &str = "NodeLost";

/// The aggregate numbers of one pod row.
struct PodSummary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<Timestamp>,
}

/// Restart count and the latest `lastState.terminated.finishedAt` over some containers.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, status: &ContainerStatus) {
        self.count += i64::from(status.restart_count);
        let finished = last_terminated(status).and_then(|t| t.finished_at.as_ref());
        if let Some(finished) = finished {
            if self.last.is_none_or(|last| last < finished.0) {
                self.last = Some(finished.0);
            }
        }
    }
}

/// `kubectl get pods` table incl. header. wide adds IP NODE NOMINATED NODE READINESS GATES.
/// show_namespace prepends NAMESPACE (for -A). Empty list → "".
pub fn pod_table(pods: &[Pod], wide: bool, show_namespace: bool, now: Timestamp) -> String {
    if pods.is_empty() {
        return String::new();
    }
    let mut rows = Vec::with_capacity(pods.len() + 1);
    rows.push(pod_table_header(wide, show_namespace));
    rows.extend(
        pods.iter()
            .map(|pod| pod_row(pod, wide, show_namespace, now)),
    );
    align(&rows)
}

pub fn pod_table_header(wide: bool, show_namespace: bool) -> Vec<String> {
    let mut header = Vec::new();
    if show_namespace {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    if wide {
        header.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
    }
    header.into_iter().map(str::to_string).collect()
}

/// One row's cells, for tests and for `get -w` streaming (rows without header).
pub fn pod_row(pod: &Pod, wide: bool, show_namespace: bool, now: Timestamp) -> Vec<String> {
    let summary = summarize(pod);
    let mut row = Vec::new();
    if show_namespace {
        row.push(pod.metadata.namespace.clone().unwrap_or_default());
    }
    row.push(pod.metadata.name.clone().unwrap_or_default());
    row.push(format!("{}/{}", summary.ready, summary.total));
    row.push(summary.reason);
    row.push(restarts_cell(summary.restarts, summary.last_restart, now));
    row.push(since(
        pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        now,
    ));
    if wide {
        row.extend(wide_cells(pod));
    }
    row
}

/// The STATUS column (kubectl's reason logic).
pub fn pod_status(pod: &Pod) -> String {
    summarize(pod).reason
}

fn restarts_cell(restarts: i64, last: Option<Timestamp>, now: Timestamp) -> String {
    match last {
        Some(last) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(last), now)),
        _ => restarts.to_string(),
    }
}

fn wide_cells(pod: &Pod) -> Vec<String> {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let ip = status.and_then(|s| {
        let first = s
            .pod_ips
            .as_ref()
            .and_then(|ips| ips.first())
            .map(|ip| ip.ip.clone());
        first.or_else(|| s.pod_ip.clone())
    });
    let node = spec.and_then(|s| s.node_name.clone());
    let nominated = status.and_then(|s| s.nominated_node_name.clone());
    vec![
        or_none(ip),
        or_none(node),
        or_none(nominated),
        readiness_gates(pod),
    ]
}

fn or_none(value: Option<String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "<none>".to_string())
}

fn readiness_gates(pod: &Pod) -> String {
    let gates = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_deref())
        .unwrap_or_default();
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conditions = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let passed = gates
        .iter()
        .filter(|gate| {
            let first = conditions.iter().find(|c| c.type_ == gate.condition_type);
            first.is_some_and(|c| c.status == "True")
        })
        .count();
    format!("{passed}/{}", gates.len())
}

fn summarize(pod: &Pod) -> PodSummary {
    let default_spec = PodSpec::default();
    let default_status = PodStatus::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    let status = pod.status.as_ref().unwrap_or(&default_status);
    let phase = status.phase.clone().unwrap_or_default();

    let mut reason = initial_reason(status, &phase);
    let init_specs: HashMap<&str, &Container> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let sidecars = init_specs
        .values()
        .filter(|c| is_restartable(Some(c)))
        .count();
    let mut summary = PodSummary {
        ready: 0,
        total: spec.containers.len() + sidecars,
        reason: String::new(),
        restarts: 0,
        last_restart: None,
    };

    let init = walk_init_containers(spec, status, &init_specs);
    summary.ready += init.ready;
    let mut restarts = init.all;
    if let Some(init_reason) = &init.reason {
        reason = init_reason.clone();
    }
    if init.reason.is_none() || has_true_condition(status, "Initialized") {
        restarts = init.sidecars;
        let main = walk_containers(status, &mut reason, &mut restarts);
        summary.ready += main.ready;
        if reason == "Completed" && main.has_running {
            reason = running_or_not_ready(status);
        }
    }
    summary.reason = terminating_override(pod, status, &phase).unwrap_or(reason);
    summary.restarts = restarts.count;
    summary.last_restart = restarts.last;
    summary
}

fn initial_reason(status: &PodStatus, phase: &str) -> String {
    let mut reason = status
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or(phase.to_string());
    let gated = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"));
    if gated {
        reason = "SchedulingGated".to_string();
    }
    reason
}

struct InitWalk {
    /// Set while initialization is still under way or has failed.
    reason: Option<String>,
    ready: usize,
    all: Restarts,
    sidecars: Restarts,
}

fn walk_init_containers(
    spec: &PodSpec,
    status: &PodStatus,
    init_specs: &HashMap<&str, &Container>,
) -> InitWalk {
    let mut walk = InitWalk {
        reason: None,
        ready: 0,
        all: Restarts::default(),
        sidecars: Restarts::default(),
    };
    let declared = spec.init_containers.as_ref().map_or(0, Vec::len);
    for (index, container) in status.init_container_statuses.iter().flatten().enumerate() {
        walk.all.add(container);
        let restartable = is_restartable(init_specs.get(container.name.as_str()).copied());
        if restartable {
            walk.sidecars.add(container);
        }
        let state = container.state.as_ref();
        let terminated = state.and_then(|s| s.terminated.as_ref());
        if terminated.is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if restartable && container.started == Some(true) {
            if container.ready {
                walk.ready += 1;
            }
            continue;
        }
        let waiting = state
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        walk.reason = Some(match (terminated, waiting) {
            (Some(t), _) => init_failure_reason(t),
            (None, Some(w)) if !w.is_empty() && w != "PodInitializing" => format!("Init:{w}"),
            _ => format!("Init:{index}/{declared}"),
        });
        break;
    }
    walk
}

fn init_failure_reason(terminated: &ContainerStateTerminated) -> String {
    match terminated.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(reason) => format!("Init:{reason}"),
        None => format!("Init:{}", exit_description(terminated)),
    }
}

fn exit_description(terminated: &ContainerStateTerminated) -> String {
    match terminated.signal.filter(|s| *s != 0) {
        Some(signal) => format!("Signal:{signal}"),
        None => format!("ExitCode:{}", terminated.exit_code),
    }
}

struct MainWalk {
    ready: usize,
    has_running: bool,
}

/// kubectl walks the containers last to first, so the first container's state wins.
fn walk_containers(status: &PodStatus, reason: &mut String, restarts: &mut Restarts) -> MainWalk {
    let mut walk = MainWalk {
        ready: 0,
        has_running: false,
    };
    for container in status.container_statuses.iter().flatten().rev() {
        restarts.add(container);
        let state = container.state.as_ref();
        let waiting = state
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        let terminated = state.and_then(|s| s.terminated.as_ref());
        let running = state.is_some_and(|s| s.running.is_some());
        if let Some(waiting) = waiting.filter(|w| !w.is_empty()) {
            *reason = waiting.to_string();
        } else if let Some(terminated) = terminated {
            *reason = match terminated.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => r.to_string(),
                None => exit_description(terminated),
            };
        } else if container.ready && running {
            walk.has_running = true;
            walk.ready += 1;
        }
    }
    walk
}

fn running_or_not_ready(status: &PodStatus) -> String {
    if has_true_condition(status, "Ready") {
        "Running".to_string()
    } else {
        "NotReady".to_string()
    }
}

fn terminating_override(pod: &Pod, status: &PodStatus, phase: &str) -> Option<String> {
    pod.metadata.deletion_timestamp.as_ref()?;
    if status.reason.as_deref() == Some(NODE_UNREACHABLE_REASON) {
        Some("Unknown".to_string())
    } else if phase != "Failed" && phase != "Succeeded" {
        Some("Terminating".to_string())
    } else {
        None
    }
}

pub(crate) fn is_restartable(container: Option<&Container>) -> bool {
    container.and_then(|c| c.restart_policy.as_deref()) == Some("Always")
}

fn has_true_condition(status: &PodStatus, condition_type: &str) -> bool {
    let conditions = status.conditions.iter().flatten();
    conditions
        .filter(|c| c.type_ == condition_type)
        .any(|c| c.status == "True")
}

fn last_terminated(status: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NOW: i64 = 1_700_000_000;

    fn now() -> Timestamp {
        Timestamp::from_second(NOW).unwrap()
    }

    /// RFC 3339 time `ago` seconds before NOW.
    fn ago(seconds: i64) -> String {
        Timestamp::from_second(NOW - seconds).unwrap().to_string()
    }

    fn pod(spec: Value, status: Value) -> Pod {
        let mut value = json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(300)},
            "spec": spec,
            "status": status,
        });
        if value["spec"]["containers"].is_null() {
            value["spec"]["containers"] = json!([{"name": "app", "image": "nginx"}]);
        }
        serde_json::from_value(value).unwrap()
    }

    fn two_containers() -> Value {
        json!({"containers": [{"name": "a"}, {"name": "b"}]})
    }

    fn two_inits() -> Value {
        json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "app"}]})
    }

    fn running(name: &str, ready: bool) -> Value {
        json!({"name": name, "image": "", "imageID": "", "ready": ready, "restartCount": 0,
               "state": {"running": {"startedAt": ago(60)}}})
    }

    fn waiting(name: &str, reason: &str) -> Value {
        json!({"name": name, "image": "", "imageID": "", "ready": false, "restartCount": 0,
               "state": {"waiting": {"reason": reason}}})
    }

    fn terminated(name: &str, exit_code: i32, reason: Option<&str>) -> Value {
        json!({"name": name, "image": "", "imageID": "", "ready": false, "restartCount": 0,
               "state": {"terminated": {"exitCode": exit_code, "reason": reason}}})
    }

    fn cond(kind: &str, status: &str) -> Value {
        json!({"type": kind, "status": status})
    }

    /// (case, pod, READY, STATUS, RESTARTS)
    fn cases() -> Vec<(&'static str, Pod, &'static str, &'static str, &'static str)> {
        vec![
            (
                "pending",
                pod(json!({}), json!({"phase": "Pending"})),
                "0/1",
                "Pending",
                "0",
            ),
            (
                "container creating",
                pod(
                    json!({}),
                    json!({"phase": "Pending",
                    "containerStatuses": [waiting("app", "ContainerCreating")]}),
                ),
                "0/1",
                "ContainerCreating",
                "0",
            ),
            (
                "first init container running",
                pod(
                    two_inits(),
                    json!({"phase": "Pending",
                    "initContainerStatuses": [running("i1", false), waiting("i2", "PodInitializing")],
                    "containerStatuses": [waiting("app", "PodInitializing")]}),
                ),
                "0/1",
                "Init:0/2",
                "0",
            ),
            (
                "second init container waiting on PodInitializing",
                pod(
                    two_inits(),
                    json!({"phase": "Pending",
                    "initContainerStatuses": [terminated("i1", 0, Some("Completed")),
                        waiting("i2", "PodInitializing")]}),
                ),
                "0/1",
                "Init:1/2",
                "0",
            ),
            (
                "init container failed",
                pod(
                    two_inits(),
                    json!({"phase": "Pending",
                    "initContainerStatuses": [terminated("i1", 1, Some("Error"))]}),
                ),
                "0/1",
                "Init:Error",
                "0",
            ),
            (
                "init container failed without reason",
                pod(
                    two_inits(),
                    json!({"phase": "Pending",
                    "initContainerStatuses": [terminated("i1", 2, None)]}),
                ),
                "0/1",
                "Init:ExitCode:2",
                "0",
            ),
            (
                "init container crash looping",
                pod(
                    two_inits(),
                    json!({"phase": "Pending",
                    "initContainerStatuses": [waiting("i1", "CrashLoopBackOff")]}),
                ),
                "0/1",
                "Init:CrashLoopBackOff",
                "0",
            ),
            (
                "pod initializing",
                pod(
                    two_inits(),
                    json!({"phase": "Pending",
                    "conditions": [cond("Initialized", "True")],
                    "initContainerStatuses": [terminated("i1", 0, Some("Completed")),
                        terminated("i2", 0, Some("Completed"))],
                    "containerStatuses": [waiting("app", "PodInitializing")]}),
                ),
                "0/1",
                "PodInitializing",
                "0",
            ),
            (
                "running 2/2",
                pod(
                    two_containers(),
                    json!({"phase": "Running",
                    "conditions": [cond("Ready", "True")],
                    "containerStatuses": [running("a", true), running("b", true)]}),
                ),
                "2/2",
                "Running",
                "0",
            ),
            (
                "running but one container not ready",
                pod(
                    two_containers(),
                    json!({"phase": "Running",
                    "containerStatuses": [running("a", true), running("b", false)]}),
                ),
                "1/2",
                "Running",
                "0",
            ),
            (
                "completed container beside a running one without Ready",
                pod(
                    two_containers(),
                    json!({"phase": "Running",
                    "containerStatuses": [terminated("a", 0, Some("Completed")), running("b", true)]}),
                ),
                "1/2",
                "NotReady",
                "0",
            ),
            (
                "completed container beside a running one with Ready",
                pod(
                    two_containers(),
                    json!({"phase": "Running",
                    "conditions": [cond("Ready", "True")],
                    "containerStatuses": [terminated("a", 0, Some("Completed")), running("b", true)]}),
                ),
                "1/2",
                "Running",
                "0",
            ),
            (
                "sidecar counted in READY",
                pod(
                    json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                        "containers": [{"name": "app"}]}),
                    json!({"phase": "Running", "conditions": [cond("Initialized", "True")],
                        "initContainerStatuses": [{"name": "proxy", "image": "", "imageID": "",
                            "ready": true, "started": true, "restartCount": 0,
                            "state": {"running": {"startedAt": ago(60)}}}],
                        "containerStatuses": [running("app", true)]}),
                ),
                "2/2",
                "Running",
                "0",
            ),
            (
                "completed",
                pod(
                    json!({}),
                    json!({"phase": "Succeeded",
                    "containerStatuses": [terminated("app", 0, Some("Completed"))]}),
                ),
                "0/1",
                "Completed",
                "0",
            ),
            (
                "error",
                pod(
                    json!({}),
                    json!({"phase": "Failed",
                    "containerStatuses": [terminated("app", 1, Some("Error"))]}),
                ),
                "0/1",
                "Error",
                "0",
            ),
            (
                "killed by signal without reason",
                pod(
                    json!({}),
                    json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                    "image": "", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
                ),
                "0/1",
                "Signal:9",
                "0",
            ),
            (
                "crash loop with restarts",
                pod(
                    json!({}),
                    json!({"phase": "Running", "containerStatuses": [{"name": "app",
                    "image": "", "imageID": "", "ready": false, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(12)}}}]}),
                ),
                "0/1",
                "CrashLoopBackOff",
                "3 (12s ago)",
            ),
            (
                "evicted reason overrides phase",
                pod(json!({}), json!({"phase": "Failed", "reason": "Evicted"})),
                "0/1",
                "Evicted",
                "0",
            ),
            (
                "scheduling gated",
                pod(
                    json!({}),
                    json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
                    "status": "False", "reason": "SchedulingGated"}]}),
                ),
                "0/1",
                "SchedulingGated",
                "0",
            ),
        ]
    }

    #[test]
    fn ready_status_and_restarts_follow_kubectl() {
        for (case, pod, ready, status, restarts) in cases() {
            let row = pod_row(&pod, false, false, now());
            assert_eq!(row[1], ready, "{case}: READY");
            assert_eq!(row[2], status, "{case}: STATUS");
            assert_eq!(row[3], restarts, "{case}: RESTARTS");
            assert_eq!(pod_status(&pod), status, "{case}: pod_status");
        }
    }

    fn deleted(phase: &str, reason: Option<&str>) -> Pod {
        let mut pod = pod(json!({}), json!({"phase": phase, "reason": reason}));
        pod.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
        pod
    }

    #[test]
    fn deletion_shows_terminating_unless_terminal() {
        assert_eq!(pod_status(&deleted("Running", None)), "Terminating");
        assert_eq!(pod_status(&deleted("Succeeded", None)), "Succeeded");
        assert_eq!(pod_status(&deleted("Running", Some("NodeLost"))), "Unknown");
    }

    #[test]
    fn restart_age_uses_the_latest_termination() {
        let pod = pod(
            two_containers(),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "image": "", "imageID": "", "ready": true, "restartCount": 1,
                 "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(600)}}},
                {"name": "b", "image": "", "imageID": "", "ready": true, "restartCount": 2,
                 "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(90)}}},
            ]}),
        );
        assert_eq!(pod_row(&pod, false, false, now())[3], "3 (90s ago)");
    }

    #[test]
    fn wide_columns_show_none_when_unset() {
        let row = pod_row(
            &pod(json!({}), json!({"phase": "Pending"})),
            true,
            false,
            now(),
        );
        assert_eq!(
            row,
            ["web", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"]
        );
    }

    #[test]
    fn wide_columns_show_ip_node_and_gates() {
        let pod = pod(
            json!({"nodeName": "host", "readinessGates": [{"conditionType": "x/ok"}, {"conditionType": "x/lb"}],
                   "containers": [{"name": "app"}]}),
            json!({"phase": "Running", "podIP": "10.88.0.5", "conditions": [cond("x/ok", "True")]}),
        );
        let row = pod_row(&pod, true, false, now());
        assert_eq!(row[5..], ["10.88.0.5", "host", "<none>", "1/2"]);
    }

    #[test]
    fn table_has_header_namespace_and_alignment() {
        let pods = [pod(json!({}), json!({"phase": "Pending"}))];
        let want = "NAMESPACE   NAME   READY   STATUS    RESTARTS   AGE\n\
                    default     web    0/1     Pending   0          5m\n";
        assert_eq!(pod_table(&pods, false, true, now()), want);
    }

    #[test]
    fn wide_header_adds_four_columns() {
        let header = pod_table_header(true, false);
        assert_eq!(
            header[5..],
            ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
        );
        assert_eq!(pod_table_header(false, false).len(), 5);
    }

    #[test]
    fn empty_pod_list_prints_nothing() {
        assert_eq!(pod_table(&[], true, true, now()), "");
    }

    #[test]
    fn missing_creation_time_is_unknown_age() {
        let mut pod = pod(json!({}), json!({}));
        pod.metadata.creation_timestamp = None;
        assert_eq!(pod_row(&pod, false, false, now())[4], "<unknown>");
    }
}
