//! HorizontalPodAutoscalers through the real kubectl, as scenario S18 and kube's
//! test/e2e/autoscaling drive them, the controller syncing every second
//! (`PEAPOD_HPA_SYNC_PERIOD=1`).
//!
//! Kinds (`kinds_*`): `kubectl autoscale` posts an autoscaling/v1 HPA as protobuf and the
//! object reads back at v2 (kubectl's preferred version) with the cpu metric and at v1 with
//! targetCPUUtilizationPercentage; `kubectl get hpa` prints kube's columns; bad bounds are
//! refused by kubectl, bad objects by the server, in kube's words.
//!
//! Controlled: S18's Deployment grows while its pods burn cpu and shrinks once the load stops,
//! after the scale-down window; `kubectl autoscale` of a Deployment whose pod burns cpu (a small request, a
//! small limit) grows it to its max (SuccessfulRescale, the utilization in the status and in
//! `kubectl get hpa`, ScalingLimited TooManyReplicas); an autoscaling/v2 HPA with no scale-down
//! window shrinks an idle Deployment to its min; an HPA naming a ConfigMap (no scale
//! subresource) or a missing Deployment cannot get the scale (AbleToScale False,
//! FailedGetScale) and scales nothing; a pods metric (no custom metrics API here) and a cpu
//! target on pods without a cpu request fail with kube's conditions and events, and a target
//! scaled to zero disables scaling.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::common::kubectl::{free_port, Kubectl};
use crate::common::*;

/// How long pods get to start or go, and an HPA to act on a few syncs.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);

fn start() -> (Agent, Kubectl) {
    let listen = format!("127.0.0.1:{}", free_port());
    let agent = Agent::start_with_env(&[
        ("PEAPOD_API_LISTEN", &listen),
        ("PEAPOD_HPA_SYNC_PERIOD", "1"),
    ]);
    let kubectl = Kubectl::for_agent(&agent);
    (agent, kubectl)
}

/// A Deployment `name` of `replicas` pods requesting 50m of cpu (at most 100m), running
/// `command`.
fn deployment(name: &str, replicas: i32, command: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: busybox\n        command: [sh, -c, '{command}']\n        resources:\n          requests: {{cpu: 50m}}\n          limits: {{cpu: 100m}}\n"
    )
}

fn hpa_v2(name: &str, target_kind: &str, target_api: &str, behavior: &str) -> String {
    format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\nspec:\n  scaleTargetRef: {{apiVersion: {target_api}, kind: {target_kind}, name: {name}}}\n  minReplicas: 1\n  maxReplicas: 3\n  metrics:\n  - type: Resource\n    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}\n{behavior}"
    )
}

fn pod_uids(kubectl: &Kubectl, app: &str) -> BTreeSet<String> {
    let pods = kubectl.json(&["get", "pods", "-l", &format!("app={app}")]);
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|pod| pod["metadata"]["uid"].as_str().map(str::to_owned))
        .collect()
}

fn spec_replicas(kubectl: &Kubectl, deployment: &str) -> i64 {
    let d = kubectl.json(&["get", "deploy", deployment]);
    d["spec"]["replicas"].as_i64().unwrap_or_default()
}

fn hpa_condition(hpa: &Value, type_: &str) -> (String, String, String) {
    let found = condition(hpa, type_);
    let field = |f: &str| found[f].as_str().unwrap_or_default().to_owned();
    (field("status"), field("reason"), field("message"))
}

/// The messages of the events of `reason` on HPA `name`.
fn events(kubectl: &Kubectl, name: &str, reason: &str) -> Vec<String> {
    let listed = kubectl.json(&["get", "events"]);
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == "HorizontalPodAutoscaler")
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn rolled_out(kubectl: &Kubectl, name: &str) {
    let deploy = format!("deploy/{name}");
    kubectl.ok(&["rollout", "status", &deploy, "--timeout=90s"]);
}

/// Deletes the HPA and Deployment `name`, waits for its pods to go and leak-checks them.
fn tear_down(agent: &Agent, kubectl: &Kubectl, name: &str, mut seen: BTreeSet<String>) {
    kubectl.ok(&["delete", "hpa", name]);
    kubectl.ok(&["delete", "deploy", name]);
    wait_until(SETTLE_WITHIN, "the pods to go", || {
        let now = pod_uids(kubectl, name);
        seen.extend(now.iter().cloned());
        now.is_empty()
    });
    for uid in &seen {
        agent.leak_check(uid);
    }
}

#[test]
fn controller_grows_a_busy_deployment_to_its_max() {
    let (agent, kubectl) = start();
    kubectl.apply(&deployment("burn", 1, "while :; do :; done"));
    rolled_out(&kubectl, "burn");
    let autoscaled = kubectl.ok(&[
        "autoscale",
        "deployment",
        "burn",
        "--min=1",
        "--max=3",
        "--cpu-percent=50",
    ]);
    assert_eq!(
        autoscaled.trim(),
        "horizontalpodautoscaler.autoscaling/burn autoscaled"
    );
    let mut seen = pod_uids(&kubectl, "burn");
    wait_until(SETTLE_WITHIN, "burn to be scaled to 3", || {
        seen.extend(pod_uids(&kubectl, "burn"));
        spec_replicas(&kubectl, "burn") == 3
    });
    let rescaled = events(&kubectl, "burn", "SuccessfulRescale");
    assert!(
        rescaled.iter().any(|m| {
            m
            == "New size: 3; reason: cpu resource utilization (percentage of request) above target"
        }),
        "{rescaled:?}"
    );
    wait_until(SETTLE_WITHIN, "the HPA to be limited at its max", || {
        let hpa = kubectl.json(&["get", "hpa", "burn"]);
        hpa_condition(&hpa, "ScalingLimited").1 == "TooManyReplicas"
    });
    let hpa = kubectl.json(&["get", "hpa", "burn"]);
    let (status, _, message) = hpa_condition(&hpa, "ScalingLimited");
    assert_eq!(status, "True");
    assert_eq!(
        message,
        "the desired replica count is more than the maximum replica count"
    );
    let active = hpa_condition(&hpa, "ScalingActive");
    assert_eq!(active.1, "ValidMetricFound", "{hpa:#}");
    let current = &hpa["status"]["currentMetrics"][0];
    assert_eq!(current["type"], "Resource", "{hpa:#}");
    let utilization = current["resource"]["current"]["averageUtilization"].as_i64();
    assert!(utilization.is_some_and(|u| u > 50), "{hpa:#}");
    assert_eq!(hpa["status"]["desiredReplicas"], 3, "{hpa:#}");
    assert!(hpa["status"]["lastScaleTime"].is_string(), "{hpa:#}");
    let table = kubectl.ok(&["get", "hpa", "burn"]);
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains("Deployment/burn") && row.contains("%/50%"),
        "{table}"
    );
    seen.extend(pod_uids(&kubectl, "burn"));
    tear_down(&agent, &kubectl, "burn", seen);
}

/// S18: an autoscaling/v2 HPA grows a Deployment while its pods burn cpu (switched by a
/// ConfigMap they mount), then, once the load stops, shrinks it back, but only after its
/// scale-down stabilization window.
#[test]
fn controller_follows_the_load_up_and_back_down_after_the_window() {
    let (agent, kubectl) = start();
    kubectl.ok(&["create", "configmap", "load", "--from-literal=on=yes"]);
    let switched = "while :; do if [ \"$(cat /load/on)\" = yes ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 1; fi; done";
    let manifest = deployment("wave", 1, switched).replace(
        "        resources:",
        "        volumeMounts: [{name: load, mountPath: /load}]\n        resources:",
    ) + "      volumes: [{name: load, configMap: {name: load}}]\n";
    kubectl.apply(&manifest);
    rolled_out(&kubectl, "wave");
    let window = "  behavior:\n    scaleDown: {stabilizationWindowSeconds: 10}\n";
    kubectl.apply(&hpa_v2("wave", "Deployment", "apps/v1", window));
    let mut seen = pod_uids(&kubectl, "wave");
    wait_until(SETTLE_WITHIN, "wave to grow to 3", || {
        seen.extend(pod_uids(&kubectl, "wave"));
        spec_replicas(&kubectl, "wave") == 3
    });
    rolled_out(&kubectl, "wave");
    seen.extend(pod_uids(&kubectl, "wave"));

    kubectl.ok(&[
        "patch",
        "configmap",
        "load",
        "-p",
        r#"{"data":{"on":"no"}}"#,
    ]);
    let stopped = std::time::Instant::now();
    wait_until(SETTLE_WITHIN, "wave to shrink to 1", || {
        seen.extend(pod_uids(&kubectl, "wave"));
        spec_replicas(&kubectl, "wave") == 1
    });
    let waited = stopped.elapsed();
    assert!(
        waited >= Duration::from_secs(8),
        "shrunk {waited:?} after the load stopped, inside the 10 s window"
    );
    let rescaled = events(&kubectl, "wave", "SuccessfulRescale");
    assert!(
        rescaled
            .iter()
            .any(|m| m == "New size: 1; reason: All metrics below target"),
        "{rescaled:?}"
    );
    tear_down(&agent, &kubectl, "wave", seen);
    kubectl.ok(&["delete", "configmap", "load"]);
}

#[test]
fn controller_shrinks_an_idle_deployment_to_its_min() {
    let (agent, kubectl) = start();
    kubectl.apply(&deployment("idle", 3, "sleep 3600"));
    rolled_out(&kubectl, "idle");
    let mut seen = pod_uids(&kubectl, "idle");
    let no_window = "  behavior:\n    scaleDown: {stabilizationWindowSeconds: 0}\n";
    let created = kubectl.apply(&hpa_v2("idle", "Deployment", "apps/v1", no_window));
    assert_eq!(
        created.trim(),
        "horizontalpodautoscaler.autoscaling/idle created"
    );
    wait_until(SETTLE_WITHIN, "idle to be scaled to 1", || {
        seen.extend(pod_uids(&kubectl, "idle"));
        spec_replicas(&kubectl, "idle") == 1
    });
    let rescaled = events(&kubectl, "idle", "SuccessfulRescale");
    assert!(
        rescaled
            .iter()
            .any(|m| m == "New size: 1; reason: All metrics below target"),
        "{rescaled:?}"
    );
    let hpa = kubectl.json(&["get", "hpa", "idle"]);
    let limited = hpa_condition(&hpa, "ScalingLimited");
    assert_eq!(
        (limited.0.as_str(), limited.1.as_str()),
        ("True", "TooFewReplicas"),
        "{hpa:#}"
    );
    seen.extend(pod_uids(&kubectl, "idle"));
    tear_down(&agent, &kubectl, "idle", seen);
}

#[test]
fn controller_cannot_scale_a_target_without_a_scale() {
    let (_agent, kubectl) = start();
    kubectl.ok(&["create", "configmap", "settings", "--from-literal=a=b"]);
    kubectl.apply(&hpa_v2("settings", "ConfigMap", "v1", ""));
    kubectl.apply(&hpa_v2("missing", "Deployment", "apps/v1", ""));
    for (name, cause) in [
        (
            "settings",
            "the server could not find the requested resource",
        ),
        ("missing", r#"deployments/scale.apps "missing" not found"#),
    ] {
        wait_until(SETTLE_WITHIN, "FailedGetScale", || {
            let hpa = kubectl.json(&["get", "hpa", name]);
            hpa_condition(&hpa, "AbleToScale").1 == "FailedGetScale"
        });
        let hpa = kubectl.json(&["get", "hpa", name]);
        let (status, _, message) = hpa_condition(&hpa, "AbleToScale");
        assert_eq!(status, "False");
        assert_eq!(
            message,
            format!("the HPA controller was unable to get the target's current scale: {cause}")
        );
        wait_until(SETTLE_WITHIN, "the FailedGetScale event", || {
            events(&kubectl, name, "FailedGetScale").contains(&cause.to_owned())
        });
    }
    kubectl.ok(&["delete", "hpa", "settings", "missing"]);
    kubectl.ok(&["delete", "configmap", "settings"]);
}

#[test]
fn controller_reports_metrics_it_cannot_get_and_a_target_scaled_to_zero() {
    let (agent, kubectl) = start();
    let unrequested = deployment("quiet", 1, "sleep 3600").replace(
        "        resources:\n          requests: {cpu: 50m}\n          limits: {cpu: 100m}\n",
        "",
    );
    kubectl.apply(&unrequested);
    rolled_out(&kubectl, "quiet");
    let mut seen = pod_uids(&kubectl, "quiet");
    let pods_metric = "  - type: Pods\n    pods: {metric: {name: qps}, target: {type: AverageValue, averageValue: '10'}}\n";
    let hpa = hpa_v2("quiet", "Deployment", "apps/v1", "")
        .replace("  metrics:\n", &format!("  metrics:\n{pods_metric}"));
    kubectl.apply(&hpa);
    wait_until(SETTLE_WITHIN, "ScalingActive to be False", || {
        let hpa = kubectl.json(&["get", "hpa", "quiet"]);
        hpa_condition(&hpa, "ScalingActive").0 == "False"
    });
    let hpa = kubectl.json(&["get", "hpa", "quiet"]);
    let (_, reason, message) = hpa_condition(&hpa, "ScalingActive");
    assert_eq!(reason, "FailedGetPodsMetric", "{hpa:#}");
    let fetch = "the HPA was unable to compute the replica count: unable to get metric qps: unable to fetch metrics from custom metrics API: ";
    assert!(message.starts_with(fetch), "{message}");
    let pod = pod_uids(&kubectl, "quiet").len();
    assert_eq!(pod, 1);
    let pod_name = kubectl.ok(&["get", "pods", "-l", "app=quiet", "-o", "name"]);
    let pod_name = pod_name.trim().trim_start_matches("pod/");
    let missing = format!(
        "failed to get cpu utilization: missing request for cpu in container app of Pod {pod_name}"
    );
    wait_until(SETTLE_WITHIN, "the FailedGetResourceMetric event", || {
        events(&kubectl, "quiet", "FailedGetResourceMetric").contains(&missing)
    });
    let computed = events(&kubectl, "quiet", "FailedComputeMetricsReplicas");
    let first = "invalid metrics (2 invalid out of 2), first error is: failed to get pods metric value: unable to get metric qps: ";
    assert!(
        computed.iter().any(|m| m.starts_with(first)),
        "{computed:?}"
    );
    assert_eq!(spec_replicas(&kubectl, "quiet"), 1);

    kubectl.ok(&["scale", "deploy", "quiet", "--replicas=0"]);
    wait_until(SETTLE_WITHIN, "ScalingDisabled", || {
        let hpa = kubectl.json(&["get", "hpa", "quiet"]);
        hpa_condition(&hpa, "ScalingActive").1 == "ScalingDisabled"
    });
    let hpa = kubectl.json(&["get", "hpa", "quiet"]);
    let message = hpa_condition(&hpa, "ScalingActive").2;
    assert_eq!(
        message,
        "scaling is disabled since the replica count of the target is zero"
    );
    assert_eq!(spec_replicas(&kubectl, "quiet"), 0);
    seen.extend(pod_uids(&kubectl, "quiet"));
    tear_down(&agent, &kubectl, "quiet", seen);
}

/// `kubectl create deployment web` of pods that sleep, rolled out; their uids.
fn sleeping_web(kubectl: &Kubectl) -> BTreeSet<String> {
    kubectl.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--",
        "sleep",
        "3600",
    ]);
    rolled_out(kubectl, "web");
    pod_uids(kubectl, "web")
}

#[test]
fn kinds_kubectl_autoscale_serves_one_hpa_at_v1_and_v2() {
    let (agent, kubectl) = crate::common::kubectl::start_with_kubectl();
    let seen = sleeping_web(&kubectl);
    let args = [
        "autoscale",
        "deployment",
        "web",
        "--min=2",
        "--max=5",
        "--cpu-percent=50",
    ];
    let output = kubectl.run(&[&args[..], &["-v=8"]].concat(), None);
    let (stdout, log) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{log}");
    assert_eq!(
        stdout.trim(),
        "horizontalpodautoscaler.autoscaling/web autoscaled"
    );
    let post = log
        .lines()
        .skip_while(|line| !line.contains("POST https://"))
        .take_while(|line| !line.contains("Response Status"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        post.contains("/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers")
            && post.contains("application/vnd.kubernetes.protobuf")
            && post.contains("fieldManager=kubectl-autoscale"),
        "kubectl autoscale posts a v1 protobuf body: {post}"
    );

    let v2 = kubectl.json(&["get", "hpa", "web", "--show-managed-fields"]);
    assert_eq!(v2["apiVersion"], "autoscaling/v2", "{v2:#}");
    let spec = &v2["spec"];
    assert_eq!(spec["scaleTargetRef"]["kind"], "Deployment", "{v2:#}");
    assert_eq!(spec["scaleTargetRef"]["name"], "web");
    assert_eq!(
        (spec["minReplicas"].as_i64(), spec["maxReplicas"].as_i64()),
        (Some(2), Some(5))
    );
    let metric = &spec["metrics"][0];
    assert_eq!(metric["type"], "Resource", "{v2:#}");
    assert_eq!(metric["resource"]["name"], "cpu");
    assert_eq!(metric["resource"]["target"]["type"], "Utilization");
    assert_eq!(metric["resource"]["target"]["averageUtilization"], 50);
    // kube sorts managedFields by operation, second, then manager: the controller's status
    // entry of the same second comes first, so look the creator up by name.
    let managers = v2["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|entry| entry["manager"] == "kubectl-autoscale" && entry["subresource"].is_null()),
        "{v2:#}"
    );

    // kubectl expands a short name to the group's preferred version (`hpa.v1.autoscaling`
    // reads v2, as against kube); the full resource name keeps the version asked for.
    let through_short_name = kubectl.json(&["get", "hpa.v1.autoscaling", "web"]);
    assert_eq!(through_short_name["apiVersion"], "autoscaling/v2");
    let v1 = kubectl.json(&["get", "horizontalpodautoscalers.v1.autoscaling", "web"]);
    assert_eq!(v1["apiVersion"], "autoscaling/v1", "{v1:#}");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50, "{v1:#}");
    assert_eq!(v1["metadata"]["uid"], v2["metadata"]["uid"]);

    let table = kubectl.ok(&["get", "hpa"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row[..2], ["web", "Deployment/web"], "{table}");
    assert!(
        row[2..].starts_with(&["cpu:"]) && row[3].ends_with("/50%"),
        "{table}"
    );
    assert_eq!(row[4..6], ["2", "5"], "{table}");
    tear_down(&agent, &kubectl, "web", seen);
}

#[test]
fn kinds_bad_hpas_are_refused_in_kubes_words() {
    let (_agent, kubectl) = crate::common::kubectl::start_with_kubectl();
    // kubectl checks the bounds before it reads the Deployment.
    let refused = kubectl.fails(&["autoscale", "deployment", "web", "--max=1", "--min=3"]);
    assert!(
        refused.contains("--max=MAXPODS must be larger or equal to --min=MINPODS, max: 1, min: 3"),
        "{refused}"
    );
    let manifest = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: bad\nspec:\n  scaleTargetRef: {kind: Deployment, name: web}\n  minReplicas: 0\n  maxReplicas: 0\n  metrics:\n  - type: Resource\n    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}\n";
    let output = kubectl.run(&["create", "-f", "-"], Some(manifest));
    let refused = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        refused.contains(r#"The HorizontalPodAutoscaler "bad" is invalid: "#)
            && refused
                .contains("spec.minReplicas: Invalid value: 0: must be greater than or equal to 1")
            && refused.contains("spec.maxReplicas: Invalid value: 0: must be greater than 0"),
        "{refused}"
    );
    assert!(kubectl.fails(&["get", "hpa", "bad"]).contains("NotFound"));
}
