//! Pod phase and conditions, decided from container statuses exactly as kubelet decides them
//! (pkg/kubelet/kubelet_pods.go getPhase and pkg/kubelet/status/generate.go).

use k8s_openapi::api::core::v1::{Container, ContainerStatus, PodCondition, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

fn running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

fn terminated_code(s: &ContainerStatus) -> Option<i32> {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

fn waiting(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.waiting.is_some())
}

fn last_terminated_code(s: &ContainerStatus) -> Option<i32> {
    s.last_state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

pub fn has_any_regular_container_started(spec: &PodSpec, statuses: &[ContainerStatus]) -> bool {
    spec.containers.iter().any(|c| {
        find(statuses, &c.name).is_some_and(|s| {
            running(s) || terminated_code(s).is_some() || last_terminated_code(s).is_some()
        })
    })
}

/// The pod phase. `init` and `app` are the init and regular container statuses.
/// `terminal` is true once kubelet has decided the pod will not run again.
pub fn phase(
    spec: &PodSpec,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    terminal: bool,
) -> &'static str {
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init_containers = spec.init_containers.as_deref().unwrap_or_default();
    let (mut pending_init, mut failed_init) = (0, 0);
    for c in init_containers.iter().filter(|c| !is_sidecar(c)) {
        match find(init, &c.name) {
            None => pending_init += 1,
            Some(s) if running(s) => pending_init += 1,
            Some(s) if terminated_code(s).is_some() => {
                if terminated_code(s) != Some(0) {
                    failed_init += 1
                }
            }
            Some(s) if waiting(s) => match last_terminated_code(s) {
                Some(code) if code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            },
            Some(_) => pending_init += 1,
        }
    }
    let (mut unknown, mut running_n, mut waiting_n, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for c in init_containers.iter().filter(|c| is_sidecar(c)) {
        match find(init, &c.name) {
            None => {
                pending_init += 1;
                unknown += 1
            }
            Some(s) if running(s) => {
                if s.started != Some(true) {
                    pending_init += 1;
                }
                running_n += 1
            }
            Some(s) if terminated_code(s).is_some() => {}
            Some(s) if waiting(s) => {
                if last_terminated_code(s).is_none() {
                    pending_init += 1;
                    waiting_n += 1
                }
            }
            Some(_) => {
                pending_init += 1;
                unknown += 1
            }
        }
    }
    for c in &spec.containers {
        match find(app, &c.name) {
            None => unknown += 1,
            Some(s) if running(s) => running_n += 1,
            Some(s) if terminated_code(s).is_some() => {
                stopped += 1;
                if terminated_code(s) == Some(0) {
                    succeeded += 1
                }
            }
            Some(s) if waiting(s) => {
                if last_terminated_code(s).is_some() {
                    stopped += 1
                } else {
                    waiting_n += 1
                }
            }
            Some(_) => unknown += 1,
        }
    }
    if failed_init > 0 && restart_policy == "Never" {
        return "Failed";
    }
    if (pending_init > 0 && !has_any_regular_container_started(spec, app)) || waiting_n > 0 {
        return "Pending";
    }
    if running_n > 0 && unknown == 0 {
        return "Running";
    }
    if running_n == 0 && stopped > 0 && unknown == 0 {
        if terminal {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        return match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

/// A regular init container is ready once it exited 0, and not before, even while it runs
/// (kubelet's prober manager, `UpdatePodStatus`); sidecars keep the readiness their probes
/// give them.
pub fn set_init_readiness(spec: &PodSpec, init: &mut [ContainerStatus]) {
    for container in spec.init_containers.iter().flatten() {
        if is_sidecar(container) {
            continue;
        }
        if let Some(status) = init.iter_mut().find(|s| s.name == container.name) {
            status.ready = terminated_code(status) == Some(0);
        }
    }
}

/// The phase the kubelet reports: Failed whatever the containers say once the kubelet failed
/// the pod itself (admission, active deadline, eviction), even while its containers are still
/// being stopped, as `generateAPIPodStatus` overrides it for its pod sync handlers; else
/// [`phase`].
pub fn reported_phase(
    spec: &PodSpec,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    terminal: bool,
    failed_by_kubelet: bool,
) -> &'static str {
    if failed_by_kubelet {
        return "Failed";
    }
    phase(spec, init, app, terminal)
}

/// Names of the containers that hold initialization back (regular init containers not yet
/// exited 0, sidecars not yet started).
pub fn uninitialized(spec: &PodSpec, init: &[ContainerStatus]) -> Vec<String> {
    spec.init_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|c| {
            let status = find(init, &c.name);
            if is_sidecar(c) {
                status.is_none_or(|s| s.started != Some(true))
            } else {
                status.is_none_or(|s| terminated_code(s) != Some(0))
            }
        })
        .map(|c| c.name.clone())
        .collect()
}

/// Names of the containers (regular and sidecars) that are not ready.
pub fn unready(spec: &PodSpec, init: &[ContainerStatus], app: &[ContainerStatus]) -> Vec<String> {
    let sidecars = spec
        .init_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|c| is_sidecar(c))
        .map(|c| (c, find(init, &c.name)));
    let regular = spec.containers.iter().map(|c| (c, find(app, &c.name)));
    sidecars
        .chain(regular)
        .filter(|(_, s)| !s.is_some_and(|s| s.ready))
        .map(|(c, _)| c.name.clone())
        .collect()
}

/// A condition, keeping the previous transition time while its status is unchanged.
pub fn condition(
    previous: &[PodCondition],
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let transition = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(transition),
        last_probe_time: None,
        observed_generation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).unwrap()
    }

    fn status(value: serde_json::Value) -> ContainerStatus {
        let mut v =
            json!({"name": "", "image": "i", "imageID": "", "ready": false, "restartCount": 0});
        for (k, val) in value.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn two() -> PodSpec {
        spec(json!({"containers": [{"name": "a"}, {"name": "b"}], "restartPolicy": "Never"}))
    }

    #[test]
    fn running_when_all_started_and_one_runs() {
        let app = [
            status(json!({"name": "a", "state": {"running": {}}})),
            status(json!({"name": "b", "state": {"terminated": {"exitCode": 0}}})),
        ];
        assert_eq!(phase(&two(), &[], &app, false), "Running");
    }

    #[test]
    fn never_policy_ends_failed_or_succeeded_by_exit_codes() {
        let ok = [
            status(json!({"name": "a", "state": {"terminated": {"exitCode": 0}}})),
            status(json!({"name": "b", "state": {"terminated": {"exitCode": 0}}})),
        ];
        assert_eq!(phase(&two(), &[], &ok, false), "Succeeded");
        let bad = [
            status(json!({"name": "a", "state": {"terminated": {"exitCode": 0}}})),
            status(json!({"name": "b", "state": {"terminated": {"exitCode": 2}}})),
        ];
        assert_eq!(phase(&two(), &[], &bad, false), "Failed");
    }

    #[test]
    fn always_policy_stays_running_while_restarting() {
        let s = spec(json!({"containers": [{"name": "a"}], "restartPolicy": "Always"}));
        let app = [status(
            json!({"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                 "lastState": {"terminated": {"exitCode": 1}}}),
        )];
        assert_eq!(phase(&s, &[], &app, false), "Running");
        assert_eq!(phase(&s, &[], &app, true), "Failed");
    }

    #[test]
    fn init_failure_with_never_fails_the_pod_otherwise_pending() {
        let mut s = spec(
            json!({"initContainers": [{"name": "i"}], "containers": [{"name": "a"}],
                                "restartPolicy": "Never"}),
        );
        let init = [status(
            json!({"name": "i", "state": {"terminated": {"exitCode": 1}}}),
        )];
        let app = [status(
            json!({"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}),
        )];
        assert_eq!(phase(&s, &init, &app, false), "Failed");
        s.restart_policy = Some("OnFailure".into());
        assert_eq!(phase(&s, &init, &app, false), "Pending");
        assert_eq!(uninitialized(&s, &init), vec!["i".to_string()]);
    }

    #[test]
    fn sidecars_count_once_started() {
        let s = spec(
            json!({"initContainers": [{"name": "log", "restartPolicy": "Always"}],
                            "containers": [{"name": "a"}]}),
        );
        let init = [status(
            json!({"name": "log", "state": {"running": {}}, "started": true, "ready": true}),
        )];
        assert!(uninitialized(&s, &init).is_empty());
        let app = [status(
            json!({"name": "a", "state": {"running": {}}, "ready": true}),
        )];
        assert_eq!(phase(&s, &init, &app, false), "Running");
        assert!(unready(&s, &init, &app).is_empty());
        let app = [status(
            json!({"name": "a", "state": {"running": {}}, "ready": false}),
        )];
        assert_eq!(unready(&s, &init, &app), vec!["a".to_string()]);
    }

    #[test]
    fn init_containers_are_ready_once_exited_0_not_while_running_sidecars_untouched() {
        let s = spec(json!({"initContainers": [
                                {"name": "ok"}, {"name": "bad"}, {"name": "run"},
                                {"name": "log", "restartPolicy": "Always"}],
                            "containers": [{"name": "a"}]}));
        let mut init = [
            status(json!({"name": "ok", "state": {"terminated": {"exitCode": 0}}})),
            status(json!({"name": "bad", "state": {"terminated": {"exitCode": 1}}})),
            status(json!({"name": "run", "state": {"running": {}}, "ready": true})),
            status(json!({"name": "log", "state": {"terminated": {"exitCode": 0}}})),
        ];
        set_init_readiness(&s, &mut init);
        let ready: Vec<bool> = init.iter().map(|s| s.ready).collect();
        assert_eq!(ready, [true, false, false, false]);
    }

    #[test]
    fn a_pod_the_kubelet_failed_reads_failed_while_its_containers_still_run() {
        let s = spec(json!({"containers": [{"name": "a"}], "restartPolicy": "Always"}));
        let app = [status(
            json!({"name": "a", "state": {"running": {}}, "ready": true}),
        )];
        assert_eq!(reported_phase(&s, &[], &app, false, false), "Running");
        assert_eq!(reported_phase(&s, &[], &app, false, true), "Failed");
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let t0 = Time("2026-01-01T00:00:00Z".parse().unwrap());
        let t1 = Time("2026-01-01T00:01:00Z".parse().unwrap());
        let first = condition(&[], "Ready", false, None, None, &t0);
        let same = condition(
            std::slice::from_ref(&first),
            "Ready",
            false,
            None,
            None,
            &t1,
        );
        assert_eq!(same.last_transition_time, Some(t0));
        let flipped = condition(&[first], "Ready", true, None, None, &t1);
        assert_eq!(flipped.last_transition_time, Some(t1));
    }
}
