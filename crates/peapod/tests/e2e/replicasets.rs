//! apps/v1 ReplicaSets through the real kubectl: api-resources lists them, a ReplicaSet is
//! applied, read as kubectl's table (and `-o wide`), described, scaled with `kubectl scale` and
//! through its `scale` subresource (an autoscaling/v1 Scale, a stale resourceVersion and
//! negative replicas refused with kube's messages), refused when its selector misses the
//! template's labels or changes, and deleted. No controller runs yet, so no pods appear: the
//! counts observed stay at zero.

use serde_json::Value;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

fn replica_set(name: &str, replicas: i32, selector: &str, labels: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {selector}\n  template:\n    metadata:\n      labels: {labels}\n    spec:\n      containers:\n      - name: app\n        image: busybox\n        command: [sleep, '3600']\n"
    )
}

/// A line of kubectl's table split on its column gaps.
fn columns(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn replica_sets_are_served_scaled_and_refused_as_a_cluster_does() {
    let (agent, kubectl) = start_with_kubectl();
    let resources = kubectl.ok(&["api-resources", "--api-group=apps"]);
    let row = resources
        .lines()
        .find(|line| line.starts_with("replicasets"))
        .unwrap_or_else(|| panic!("no replicasets in api-resources:\n{resources}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["replicasets", "rs", "apps/v1", "true", "ReplicaSet"]
    );

    let created = kubectl.apply(&replica_set("web", 2, "{app: web}", "{app: web}"));
    assert_eq!(created.trim(), "replicaset.apps/web created");
    tables_and_describe(&kubectl);
    scaling(&kubectl);
    refusals(&kubectl);
    template_warnings(&kubectl);

    let pods = kubectl.run(&["get", "pods"], None);
    assert!(
        text(&pods.stderr).contains("No resources found in default namespace."),
        "no controller makes pods yet: {}",
        text(&pods.stdout)
    );
    let deleted = kubectl.ok(&["delete", "rs", "web"]);
    assert_eq!(deleted.trim(), r#"replicaset.apps "web" deleted"#);
    let gone = kubectl.fails(&["get", "rs", "web"]);
    assert!(
        gone.contains(r#"replicasets.apps "web" not found"#),
        "{gone}"
    );
    drop(agent);
}

fn tables_and_describe(kubectl: &Kubectl) {
    let table = kubectl.ok(&["get", "rs"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        columns(lines[0]),
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    );
    assert_eq!(columns(lines[1])[..4], ["web", "2", "0", "0"]);

    let wide = kubectl.ok(&["get", "rs", "web", "-o", "wide"]);
    let lines: Vec<&str> = wide.lines().collect();
    assert_eq!(
        columns(lines[0]),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let cells = columns(lines[1]);
    assert_eq!(cells[..4], ["web", "2", "0", "0"]);
    assert_eq!(cells[5..], ["app", "busybox", "app=web"]);

    let all = kubectl.ok(&["get", "all"]);
    assert!(all.contains("replicaset.apps/web"), "{all}");

    let described = kubectl.ok(&["describe", "rs", "web"]);
    for expected in [
        "Name:         web",
        "Namespace:    default",
        "Selector:     app=web",
        "Replicas:     0 current / 2 desired",
        "Pods Status:  0 Running / 0 Waiting / 0 Succeeded / 0 Failed",
        "    Image:      busybox",
    ] {
        assert!(
            described.contains(expected),
            "{expected:?} in:\n{described}"
        );
    }
}

fn scaling(kubectl: &Kubectl) {
    let scaled = kubectl.ok(&["scale", "rs/web", "--replicas=3"]);
    assert_eq!(scaled.trim(), "replicaset.apps/web scaled");
    let rs = kubectl.json(&["get", "rs", "web"]);
    assert_eq!(rs["spec"]["replicas"], 3);
    assert_eq!(rs["metadata"]["generation"], 2, "a spec change: {rs}");

    let scale = kubectl.json(&["get", "rs/web", "--subresource=scale"]);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["metadata"]["name"], "web");
    assert_eq!(scale["metadata"]["uid"], rs["metadata"]["uid"]);
    assert_eq!(
        scale["metadata"]["resourceVersion"],
        rs["metadata"]["resourceVersion"]
    );
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(
        scale["status"],
        serde_json::json!({"replicas": 0, "selector": "app=web"})
    );

    let negative = kubectl.fails(&[
        "patch",
        "rs",
        "web",
        "--subresource=scale",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":-1}}"#,
    ]);
    assert!(
        negative.contains(r#"The Scale "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#),
        "{negative}"
    );

    let stale = kubectl.fails(&[
        "patch",
        "rs",
        "web",
        "--subresource=scale",
        "--type=merge",
        "-p",
        r#"{"metadata":{"resourceVersion":"1"},"spec":{"replicas":5}}"#,
    ]);
    assert!(
        stale.contains(r#"Operation cannot be fulfilled on replicasets.apps "web": the object has been modified; please apply your changes to the latest version and try again"#),
        "{stale}"
    );
    let mut fresh = scale;
    fresh["spec"]["replicas"] = Value::from(1);
    let replaced = kubectl.with_manifest(
        &[
            "replace",
            "--raw",
            "/apis/apps/v1/namespaces/default/replicasets/web/scale",
        ],
        &fresh.to_string(),
    );
    let replaced: Value = serde_json::from_str(&replaced).unwrap();
    assert_eq!(replaced["kind"], "Scale");
    assert_eq!(replaced["spec"]["replicas"], 1);
    let rs = kubectl.json(&["get", "rs", "web"]);
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(rs["metadata"]["generation"], 3);
}

fn refusals(kubectl: &Kubectl) {
    let out = kubectl.run(
        &["apply", "-f", "-"],
        Some(&replica_set("bad", 1, "{app: web}", "{app: other}")),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(r#"The ReplicaSet "bad" is invalid: spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`"#),
        "{}",
        text(&out.stderr)
    );

    let unselected = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: bare\nspec:\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - {name: app, image: busybox}\n";
    let out = kubectl.run(&["apply", "-f", "-"], Some(unselected));
    assert!(!out.status.success());
    let refused = text(&out.stderr);
    assert!(
        refused.contains(r#"The ReplicaSet "bare" is invalid:"#)
            && refused.contains("* spec.selector: Required value")
            && refused.contains(r#"* spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`"#),
        "{refused}"
    );

    let moved = replica_set(
        "web",
        1,
        "{app: web, tier: front}",
        "{app: web, tier: front}",
    );
    let out = kubectl.run(&["apply", "-f", "-"], Some(&moved));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(r#"spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"front"}}: field is immutable"#),
        "{}",
        text(&out.stderr)
    );
}

/// A template field peapod ignores warns under `spec.template`, as it does for a pod.
fn template_warnings(kubectl: &Kubectl) {
    let manifest = replica_set("warned", 0, "{app: warned}", "{app: warned}").replace(
        "    spec:\n      containers:",
        "    spec:\n      affinity:\n        podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: k}]}\n      containers:",
    );
    let out = kubectl.run(&["apply", "-f", "-"], Some(&manifest));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("Warning: spec.template.spec.affinity: not supported by peapod, ignored"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("Warning: peapod runs no ReplicaSet controller yet"),
        "{}",
        text(&out.stderr)
    );
    kubectl.ok(&["delete", "rs", "warned"]);
}
