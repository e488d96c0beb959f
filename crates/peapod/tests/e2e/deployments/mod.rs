//! apps/v1 Deployments through the real kubectl, as kube's test/e2e/apps/deployment.go and
//! scenario S17 drive them. Here, at the API: served with kube's defaults (`kubectl create
//! deployment --dry-run=server`), listed with kubectl's columns, scaled, paused and resumed,
//! given a new image (a new generation), refused when both rollout bounds are 0 or the
//! selector changes, and deleted. The controller's rollouts are in the submodules:
//!
//! - [`rolling`]: RollingUpdate within its bounds, pause, resume and restart, Recreate, rollover;
//! - [`history`]: `rollout history` and `undo`, revisionHistoryLimit;
//! - [`stalls`]: the progress deadline of a bad image, proportional scaling mid-rollout;
//! - [`ownership`]: adoption, orphaning and cascading deletes, an agent restart mid-rollout;
//! - [`iterative`]: kube's iterative rollouts, deprecated rollbacks included.

mod history;
mod iterative;
mod ownership;
mod rolling;
mod stalls;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// How long the pods a controller may have made get to go.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);

fn deployment(name: &str, selector: &str, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {selector}\n  strategy: {strategy}\n  template:\n    metadata:\n      labels: {selector}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: app\n        image: busybox\n        command: [sleep, '3600']\n"
    )
}

/// A line of kubectl's table split on its column gaps.
fn columns(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn generation(kubectl: &Kubectl) -> i64 {
    let web = kubectl.json(&["get", "deploy", "web"]);
    web["metadata"]["generation"].as_i64().unwrap_or_default()
}

#[test]
fn deployment_api_serves_defaults_columns_and_updates_as_a_cluster_does() {
    let (agent, kubectl) = start_with_kubectl();
    let resources = kubectl.ok(&["api-resources", "--api-group=apps"]);
    let row = resources
        .lines()
        .find(|line| line.starts_with("deployments"))
        .unwrap_or_else(|| panic!("no deployments in api-resources:\n{resources}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    server_dry_run_shows_the_defaults(&kubectl);

    let created = kubectl.apply(&deployment("web", "{app: web}", "{}"));
    assert_eq!(created.trim(), "deployment.apps/web created");
    assert_eq!(generation(&kubectl), 1);
    tables(&kubectl);
    spec_changes(&kubectl);
    refusals(&kubectl);

    let mut seen: BTreeSet<String> = pod_uids(&kubectl);
    let deleted = kubectl.ok(&["delete", "deploy", "web"]);
    assert_eq!(deleted.trim(), r#"deployment.apps "web" deleted"#);
    let gone = kubectl.fails(&["get", "deploy", "web"]);
    assert!(
        gone.contains(r#"deployments.apps "web" not found"#),
        "{gone}"
    );
    wait_until(SETTLE_WITHIN, "the pods of web to go", || {
        let now = pod_uids(&kubectl);
        seen.extend(now.iter().cloned());
        now.is_empty()
    });
    for uid in &seen {
        agent.leak_check(uid);
    }
}

fn server_dry_run_shows_the_defaults(kubectl: &Kubectl) {
    let dry = kubectl.ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
        "--dry-run=server",
        "-o",
        "yaml",
    ]);
    for expected in [
        "kind: Deployment",
        "  generation: 1",
        "  progressDeadlineSeconds: 600",
        "  replicas: 2",
        "  revisionHistoryLimit: 10",
        "  strategy:\n    rollingUpdate:\n      maxSurge: 25%\n      maxUnavailable: 25%\n    type: RollingUpdate",
        "      restartPolicy: Always",
        "      terminationGracePeriodSeconds: 30",
    ] {
        assert!(dry.contains(expected), "{expected:?} in:\n{dry}");
    }
    let nothing = kubectl.fails(&["get", "deploy", "web"]);
    assert!(
        nothing.contains(r#"deployments.apps "web" not found"#),
        "a dry run stores nothing: {nothing}"
    );
}

/// The counts are the controller's to fill (if it runs); the desired count is the spec's.
fn tables(kubectl: &Kubectl) {
    let table = kubectl.ok(&["get", "deploy"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        columns(lines[0]),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    let row = columns(lines[1]);
    assert_eq!(row[0], "web");
    assert!(row[1].ends_with("/2"), "{table}");

    let wide = kubectl.ok(&["get", "deploy", "web", "-o", "wide"]);
    let lines: Vec<&str> = wide.lines().collect();
    assert_eq!(
        columns(lines[0]),
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(columns(lines[1])[5..], ["app", "busybox", "app=web"]);

    let all = kubectl.ok(&["get", "all"]);
    assert!(all.contains("deployment.apps/web"), "{all}");

    let described = kubectl.ok(&["describe", "deploy", "web"]);
    for expected in [
        "Selector:               app=web",
        "StrategyType:           RollingUpdate",
        "MinReadySeconds:        0",
        "RollingUpdateStrategy:  25% max unavailable, 25% max surge",
        "    Image:      busybox",
    ] {
        assert!(
            described.contains(expected),
            "{expected:?} in:\n{described}"
        );
    }
}

/// Each spec change is a new generation; the scale subresource answers the new count.
fn spec_changes(kubectl: &Kubectl) {
    let scaled = kubectl.ok(&["scale", "deploy", "web", "--replicas=3"]);
    assert_eq!(scaled.trim(), "deployment.apps/web scaled");
    let web = kubectl.json(&["get", "deploy", "web"]);
    assert_eq!(web["spec"]["replicas"], 3);
    assert_eq!(web["metadata"]["generation"], 2);
    let scale = kubectl.json(&["get", "deploy/web", "--subresource=scale"]);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");

    let paused = kubectl.ok(&["rollout", "pause", "deploy/web"]);
    assert_eq!(paused.trim(), "deployment.apps/web paused");
    let web = kubectl.json(&["get", "deploy", "web"]);
    assert_eq!(web["spec"]["paused"], true);
    assert_eq!(web["metadata"]["generation"], 3);
    let resumed = kubectl.ok(&["rollout", "resume", "deploy/web"]);
    assert_eq!(resumed.trim(), "deployment.apps/web resumed");
    let web = kubectl.json(&["get", "deploy", "web"]);
    assert_ne!(web["spec"]["paused"], true, "{web}");
    assert_eq!(web["metadata"]["generation"], 4);

    let updated = kubectl.ok(&["set", "image", "deploy/web", "app=busybox:latest"]);
    assert_eq!(updated.trim(), "deployment.apps/web image updated");
    let web = kubectl.json(&["get", "deploy", "web"]);
    let image = &web["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, "busybox:latest");
    assert_eq!(web["metadata"]["generation"], 5);

    kubectl.ok(&["label", "deploy", "web", "tier=front"]);
    assert_eq!(generation(kubectl), 5, "labels are no spec change");
}

fn refusals(kubectl: &Kubectl) {
    let frozen = deployment(
        "frozen",
        "{app: frozen}",
        "{rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}",
    );
    let out = kubectl.run(&["apply", "-f", "-"], Some(&frozen));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(r#"The Deployment "frozen" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0"#),
        "{}",
        text(&out.stderr)
    );

    let recreate = deployment(
        "recreated",
        "{app: recreated}",
        "{type: Recreate, rollingUpdate: {maxSurge: 1}}",
    );
    let out = kubectl.run(&["apply", "-f", "-"], Some(&recreate));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(r#"The Deployment "recreated" is invalid: spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"#),
        "{}",
        text(&out.stderr)
    );

    let moved = deployment("web", "{app: web, tier: front}", "{}");
    let out = kubectl.run(&["apply", "-f", "-"], Some(&moved));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(r#"spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"front"}}: field is immutable"#),
        "{}",
        text(&out.stderr)
    );
}

/// The uids of the pods web selects, should a controller have made some.
fn pod_uids(kubectl: &Kubectl) -> BTreeSet<String> {
    let pods = kubectl.json(&["get", "pods", "-l", "app=web"]);
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|pod| pod["metadata"]["uid"].as_str().map(str::to_owned))
        .collect()
}
